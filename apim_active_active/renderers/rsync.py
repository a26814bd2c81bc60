"""content_sync = "rsync": node 1 (the manager) pushes its artifacts to node 2 over SSH, on a timer.

The receiving side is rsync's own "daemon over a remote shell": node 2's dedicated user has one authorized
key, and that key may only start `rsync --server --daemon` with the configuration rendered here. So node 1
can write into the synced folders and a state folder, never read, never run anything else; and the files
node 2 keeps for itself are excluded by the daemon, so `--delete` never touches them.
"""

from __future__ import annotations

from apim_active_active.renderers.shared_folders import shared_folders
from apim_active_active.settings import Settings

SYNC_USER = "wso2sync"
SYNC_HOME = "/var/lib/wso2am-sync"  # root-owned: the user cannot change its own authorized_keys
SYNC_STATE_DIR = f"{SYNC_HOME}/state"
# Written by node 1 after every complete push: node 2's API-M never runs before the first one.
SYNC_MARKER = f"{SYNC_STATE_DIR}/synced"
RSYNCD_CONF = "/etc/wso2am/rsyncd.conf"
SYNC_KEY_DIR = "/etc/wso2am/rsync"  # node 1: its private key (root only) and node 2's pinned host key
PUSH = "wso2am-rsync-push"  # .service (one push) and .timer
MANAGER_KEY = "manager-key"  # SSM parameters (names.rsync_parameter): public keys only, never a private one
WORKER_HOST_KEY = "worker-host-key"
# What each node keeps for itself: the boot step's own markers, editors' and Carbon's temporary files, and
# the web applications Tomcat unpacks from their .war on each node.
NODE_LOCAL = ("/.wso2am-*", "*.tmp", "*.swp", "/webapps/*/")


def forced_command() -> str:
    """The only command node 1's key may run on node 2."""
    return f"rsync --server --daemon --config={RSYNCD_CONF} ."


def render_rsyncd_conf(settings: Settings) -> str:
    modules = "".join(
        f"\n[{name}]\n    path = {path}\n    exclude = {' '.join(NODE_LOCAL)}\n" for name, path in shared_folders(settings).items()
    )
    return f"""# Node 2's side of the pushes from node 1: started per connection by the forced command of node 1's
# key ({forced_command()}); no rsync daemon listens.
# Runs as the receiving user ({SYNC_USER}), never as root: no chroot, and no uid/gid to switch to (a non-root
# daemon given them fails with "setgroups failed").
use chroot = no
numeric ids = yes
read only = no
write only = yes
list = no
# API-M's user ({settings.apim.os_user}) shares the group of the synced folders and must be able to read
# and write what arrives.
incoming chmod = Dug+rwx,Dg+s,Fug+rw,o-w
{modules}
[state]
    path = {SYNC_STATE_DIR}
"""
