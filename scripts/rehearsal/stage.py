"""What a rehearsal node host starts with, besides this machine's own files (its overlay's upper layer).

Each item replaces something only AWS or a systemd-booted Amazon Linux has, and is named as such in
NOT_REHEARSED. The boot artifact itself (the user data read back from the emulator) is copied in as is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from apim_active_active.renderers.node_layout import AGENT_CTL
from scripts.local_stack import ROOT

STANDIN = Path(__file__).resolve().parent / "standin"
USER_DATA = "/var/lib/rehearsal/user-data.yaml"
AWS_RELAY_PORT = 4566
# One cloud-init module on the node's user data, as cloud-init runs it at boot: append the module's name.
CLOUD_INIT_MODULE = f"{ROOT}/.venv/bin/python -m cloudinit.cmd.main --file {USER_DATA} single --frequency always --name"
# The stand-in's /etc/cloud/cloud.cfg: no datasource to probe; /etc/hosts managed by cloud-init (rewritten from its
# template at every boot, as a distribution's cloud.cfg may ask) unless the user data says otherwise.
CLOUD_CFG = f"""datasource_list: [ None ]
manage_etc_hosts: true
system_info:
  paths:
    templates_dir: {ROOT}/.tools/cloud-init/etc/cloud/templates/
"""

NOT_REHEARSED = [
    "packages (dnf install nfs-utils, unzip, Corretto): this host is Debian; the stand-in product needs no JDK",
    "EFS over NFS with TLS (amazon-efs-utils, stunnel): this kernel has no NFS client and efs-utils is not in "
    "Debian; a stand-in mount.efs refuses a mount without `tls`, resolves the EFS name, needs the mount "
    "target's 2049 to answer, then bind-mounts one shared folder",
    "systemd as PID 1: a stand-in systemctl runs the installed unit's ExecStartPre and ExecStart as its User, honouring "
    "EnvironmentFile, PIDFile (tracking the main PID itself, refusing a PID file that names an older process), "
    "RequiresMountsFor and AssertPathExists",
    "the instance role: the AWS CLI gets the emulator's dummy credentials; S3 and Secrets Manager are the emulator, "
    "reached through a relay on the node's own loopback",
    "RDS: MariaDB (MySQL protocol, TLS) with MySQL 8's defaults (utf8mb4, InnoDB's 3072-byte key limit) in a namespace "
    "of its own, with the master user from the secret RDS manages",
    "WSO2 API-M itself: a stand-in product shaped like the pack (its deployment.toml's tables, its truststore's "
    "aliases, a schema key of the 4.2+ shape, a start script that trusts any live PID in its PID file); listens on "
    "9443/9611/9711/5672, connects to the peers it is given",
    "the CloudWatch agent (Amazon Linux's amazon-cloudwatch-agent): a stand-in amazon-cloudwatch-agent-ctl checks it "
    "is asked to fetch-config from an existing JSON file in EC2 mode and records the call; nothing is shipped",
    "the JDK's jcmd (Corretto's -devel package): a stand-in takes `ManagementAgent.start` for a live process of the "
    "calling user and records it; the stand-in product runs no JVM, so no JMX port opens and no JVM metric is read",
    "rsync mode: node 2's sshd is this machine's, run without PAM (a namespace has no login uid); the push timer "
    "is a bounded loop running the push service's command every rsync.interval_seconds; no security groups "
    "between the node hosts (the synth and e2e tests check port 22 is open from node 1's group to node 2's only)",
    "the gateway scale-out group itself: its launches, scaling, target registration and instance refresh (one node is "
    "booted from the launch template's user data); the gateway watch's lifecycle-hook path (IMDS's "
    "target-lifecycle-state: no metadata service in the namespaces); 4.5-4.7's Universal Gateway pack (no stand-in)",
]


# The instance role's stand-in: every process of the node that calls the AWS CLI (the boot step, a unit's ExecStartPre,
# a timer's command) reaches the emulator through the node's relay with its dummy credentials, whatever its environment.
AWS_CLI = f"""#!/bin/sh
export AWS_ENDPOINT_URL="${{AWS_ENDPOINT_URL:-http://127.0.0.1:{AWS_RELAY_PORT}}}"
export AWS_ACCESS_KEY_ID="${{AWS_ACCESS_KEY_ID:-test}}" AWS_SECRET_ACCESS_KEY="${{AWS_SECRET_ACCESS_KEY:-test}}"
exec "{ROOT}/.venv/bin/aws" "$@"
"""


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def stage_node(stage: Path, user_data: str, hosts: dict[str, str], java_home: str) -> None:
    """Fill `stage` with the files the node host starts with (copied into its overlay's upper layer)."""
    lines = ["127.0.0.1 localhost"] + [f"{address} {name}" for name, address in hosts.items()]
    _write(stage / "etc/hosts", "\n".join(lines) + "\n")
    # The node reads its user data from a file: no datasource to probe.
    _write(stage / "etc/cloud/cloud.cfg", CLOUD_CFG)
    _write(stage / USER_DATA.lstrip("/"), user_data, 0o600)
    _write(stage / "usr/bin/systemctl", (STANDIN / "systemctl.py").read_text(), 0o755)
    _write(stage / "usr/sbin/mount.efs", (STANDIN / "mount.efs.sh").read_text(), 0o755)
    _write(stage / AGENT_CTL.lstrip("/"), (STANDIN / "amazon-cloudwatch-agent-ctl.sh").read_text(), 0o755)
    _write(stage / java_home.lstrip("/") / "bin/jcmd", (STANDIN / "jcmd.sh").read_text(), 0o755)
    _write(stage / "usr/local/bin/aws", AWS_CLI, 0o755)


def fresh_stage(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
