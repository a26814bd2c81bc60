"""What the two nodes keep the same, folder by folder, in both content_sync modes.

With EFS each node mounts the file system at SHARE_ROOT and binds one of its folders over each shared
folder of the product; with rsync each name is a module of node 2's daemon.
"""

from __future__ import annotations

from apim_active_active.settings import Settings
from apim_active_active.versions import traits

SHARE_ROOT = "/mnt/wso2am-share"
# amazon-efs-utils: TLS in transit (the file system policy denies anything else), IAM authorization
# with the instance role; it applies AWS's recommended NFS options itself. _netdev waits for the network.
EFS_MOUNT_OPTIONS = "_netdev,noresvport,tls,iam"


def shared_folders(settings: Settings) -> dict[str, str]:
    """Name on the share (or rsync module) -> the folder on each node."""
    apim = settings.apim
    if settings.share_scope == "server":
        folders = {"server": apim.server_dir}
    else:
        folders = {name: f"{apim.server_dir}/{name}" for name in traits(apim.version).shared_artifacts}
    if apim.tenants:
        folders["tenants"] = apim.tenants_dir
    return folders


def env_value(settings: Settings) -> str:
    """The boot step's SHARED_FOLDERS: name=folder pairs, space-separated."""
    return " ".join(f"{name}={path}" for name, path in shared_folders(settings).items())


def mount_points(settings: Settings) -> list[str]:
    """content_sync = "efs": the file system's own mount, then each folder bound from it."""
    return [SHARE_ROOT, *shared_folders(settings).values()]


def render_fstab(settings: Settings, efs_id: str) -> str:
    """content_sync = "efs": the lines the boot step adds to /etc/fstab (once each).

    Each bind has _netdev: a bind from a network file system belongs under remote-fs.target (in local-fs.target
    it would make an ordering cycle); systemd orders it after the file system's own mount.
    """
    binds = "".join(
        f"{SHARE_ROOT}/{name} {path} none bind,_netdev,x-systemd.requires-mounts-for={SHARE_ROOT} 0 0\n"
        for name, path in shared_folders(settings).items()
    )
    return f"{efs_id}:/ {SHARE_ROOT} efs {EFS_MOUNT_OPTIONS} 0 0\n{binds}"
