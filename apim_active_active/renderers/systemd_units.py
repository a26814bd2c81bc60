"""The systemd units a node gets: API-M's service, the share watch and, on node 1 with rsync, the push (each with its
timer)."""

from __future__ import annotations

from apim_active_active.renderers import rsync, shared_folders
from apim_active_active.renderers.deployment_toml import access_log_has_max_days
from apim_active_active.renderers.node_layout import (
    BOOT_SCRIPT,
    KEYSTORE_EXPIRY,
    RUNTIME_ENV,
    SECRETS_FILE,
    gateway_home,
    gateway_start_script,
    sync_role,
)
from apim_active_active.settings import Settings
from apim_active_active.versions import GATEWAY_PROFILE, gateway_distribution, traits


def _never_without_the_share(settings: Settings, node_index: int) -> str:
    """Carbon undeploys the artifacts it no longer sees: API-M never starts without its share."""
    if settings.uses_efs:
        return f"RequiresMountsFor={' '.join(shared_folders.mount_points(settings))}\n"
    if sync_role(settings, node_index) == "worker":
        return f"# node 2 with rsync: not before the first complete push from node 1.\nAssertPathExists={rsync.SYNC_MARKER}\n"
    return ""


def _umask(settings: Settings, node_index: int) -> str:
    """Nothing API-M writes is for other users (the config mapper writes the values it resolves, secrets included,
    into the files it generates). Node 2 with rsync: what API-M creates in the synced folders stays writable for the
    receiving user (same group), or node 1's next push could neither replace nor delete it."""
    return "UMask=0007\n" if sync_role(settings, node_index) == "worker" else "UMask=0027\n"


# The start script hands its other arguments to Carbon's Bootstrap, which sets each -D one as a system property after
# the script's own -DenableCorrelationLogs=false (bin/api-manager.sh at v4.3.0, wso2server.sh at v3.2.0:
# `org.wso2.carbon.bootstrap.Bootstrap $*`); WSO2's "Monitoring correlation logs" names the property.
CORRELATION_LOGS_ON = "-DenableCorrelationLogs=true"


def start_arguments(settings: Settings) -> str:
    return f"start {CORRELATION_LOGS_ON}" if settings.observability.correlation_log else "start"


def _jmx(settings: Settings) -> str:
    """With the CloudWatch agent: the JVM's JMX agent started in API-M's JVM once it runs, as root (`+`; it starts it
    as the JVM's user), its failure only logged (`-`). Not in JAVA_OPTS: from 4.3.0 the start script hands those to
    WSO2's diagnostics tool too, a second JVM started just before Carbon's (bin/api-manager.sh at v4.3.0,
    diagnostics-tool/bin/diagnostics.sh), which would race it for the port."""
    if not settings.observability.agent:
        return ""
    return f"ExecStartPost=-+{BOOT_SCRIPT} jmx\n"


KEEP_RETRYING = "# Keep retrying (e.g. while an external Key Manager is down): never give up after a burst of failures."


def render_systemd_unit(settings: Settings, node_index: int = 0, gateway: bool = False) -> str:
    """API-M's unit on pair node node_index, or (gateway) on a gateway scale-out node: its own pack and start script,
    in the gateway profile up to 4.4 (WSO2 starts it with -Dprofile=gateway-worker after profileSetup.sh), no share."""
    home = gateway_home(settings) if gateway else settings.apim.home
    script = f"{home}/bin/{gateway_start_script(settings) if gateway else traits(settings.apim.version).start_script}"
    arguments = start_arguments(settings)
    if gateway and gateway_distribution(settings.apim.version) == "profile":
        arguments += f" -Dprofile={GATEWAY_PROFILE}"
    umask = "UMask=0027\n" if gateway else _umask(settings, node_index)
    secrets = _secrets(settings, home)
    start_seconds = 600
    wait = ""
    if settings.key_manager.type != "resident":
        # The seed: the Key Manager is up before API-M starts, on every start, not only the first boot.
        wait = f"ExecStartPre={BOOT_SCRIPT} wait-key-manager\n"
        start_seconds += settings.key_manager.wait_seconds
    return f"""[Unit]
Description=WSO2 API Manager {settings.apim.version} ({"gateway scale-out node" if gateway else "active-active node"})
Wants=network-online.target
Wants={KEYSTORE_EXPIRY}.timer
After=network-online.target remote-fs.target
{"" if gateway else _never_without_the_share(settings, node_index)}{KEEP_RETRYING}
StartLimitIntervalSec=0

[Service]
Type=forking
User={settings.apim.os_user}
Group={settings.apim.os_user}
EnvironmentFile={RUNTIME_ENV}
{secrets}{umask}# Carbon never removes its PID file: a stale one naming a live process makes `start` exit 0 "already running".
ExecStartPre=/usr/bin/rm -f {home}/wso2carbon.pid
{wait}ExecStart={script} {arguments}
{_jmx(settings)}ExecStop={script} stop
PIDFile={home}/wso2carbon.pid
Restart=on-failure
RestartSec=10
TimeoutStartSec={start_seconds}
LimitNOFILE=65535

[Install]
WantedBy=multi-user.target
"""


def _secrets(settings: Settings, home: str) -> str:
    """How API-M gets its secrets: the root-only environment file; with the secure vault, the keystore password in
    password-tmp (written as root, `+`, before each start; API-M deletes it once read; a failed start's removed)."""
    if not settings.secure_vault.enabled:
        return f"EnvironmentFile={SECRETS_FILE}\n"
    return f"ExecStartPre=+{BOOT_SCRIPT} vault-password\nExecStopPost=+/usr/bin/rm -f {home}/password-tmp\n"


def _timer(description: str, *, on_boot: int, every: int) -> str:
    """A timer unit: first run on_boot seconds after boot, then every seconds from one start to the next."""
    return f"""[Unit]
Description={description}

[Timer]
OnBootSec={on_boot}
OnUnitActiveSec={every}
AccuracySec=1

[Install]
WantedBy=timers.target
"""


def has_share_watch(settings: Settings, node_index: int) -> bool:
    """Every node with a share: both with EFS, node 2 with rsync (node 1 is the source)."""
    return settings.uses_efs or sync_role(settings, node_index) == "worker"


def render_share_watch(settings: Settings) -> tuple[str, str]:
    """(service, timer): every 15 s, stop API-M while its share is unreachable and start it again once it is back."""
    share = f"its share ({shared_folders.SHARE_ROOT})" if settings.uses_efs else f"the first push from node 1 ({rsync.SYNC_MARKER})"
    service = f"""[Unit]
Description=Stop WSO2 API-M while {share} is unreachable

[Service]
Type=oneshot
ExecStart={BOOT_SCRIPT} check-share
TimeoutStartSec=60
"""
    # First look after systemd's own mount jobs have run out (90 s by default): a share missing at the boot is then
    # re-mounted by the watch alone, never by both at once.
    return service, _timer("Watch the share of WSO2 API-M", on_boot=120, every=15)


def drain_wait_seconds(settings: Settings) -> int:
    """How long a leaving gateway node waits for the group's Terminating:Wait: the load balancer's drain (its
    deregistration delay, which the group waits out before the termination hook) and a minute for the group's steps."""
    return settings.load_balancer.deregistration_delay_seconds + 60


# What a leaving gateway node's watch does after the drain: API-M's stop (its unit's stop timeout: systemd's default,
# 90 s) and the termination hook's completion (RETRY_TRIES, 10: about 5 minutes of back-off, capped at 60 s).
LEAVE_STOP_SECONDS = 90
LEAVE_RETRY_SECONDS = 360


def render_gateway_watch(settings: Settings) -> tuple[str, str]:
    """(service, timer) on a gateway node: every 15 s, keep the public name on a node of the pair that answers, tell
    the launch lifecycle hook once the node's gate passes, and once the group terminates this node, wait for the load
    balancer's drain, stop API-M and tell the termination hook (`wso2am-boot gateway-watch`). One run may last the
    whole leaving: its timeout covers it."""
    timeout = drain_wait_seconds(settings) + LEAVE_STOP_SECONDS + LEAVE_RETRY_SECONDS
    service = f"""[Unit]
Description=Keep this WSO2 API-M gateway node on a node of the pair; join and leave the group gracefully

[Service]
Type=oneshot
ExecStart={BOOT_SCRIPT} gateway-watch
TimeoutStartSec={timeout}
"""
    return service, _timer("Watch the pair and this gateway node's lifecycle", on_boot=60, every=15)


def render_keystore_expiry(settings: Settings) -> tuple[str, str]:
    """(service, timer) on every node: the days left of the pair's signing certificate logged (`wso2am-boot
    keystore-expiry`; a metric filter makes it a metric), daily. Started by API-M's unit (Wants=), not enabled: each
    start of API-M starts it too, and a timer started past its OnBootSec runs at once, so the boot step needs no line of
    its own and a new certificate (a rotation's restart) is seen at once. As short as a unit may be: every node's user
    data holds both."""
    service = f"[Service]\nType=oneshot\nExecStart={BOOT_SCRIPT} keystore-expiry\n"
    return service, "[Timer]\nOnBootSec=60\nOnUnitActiveSec=1d\n"


def render_push_units(settings: Settings) -> tuple[str, str]:
    """(service, timer) on node 1 with rsync: push the artifacts to node 2 every rsync.interval_seconds."""
    interval = settings.rsync_settings.interval_seconds
    service = f"""[Unit]
Description=Push WSO2 API-M artifacts to node 2 (rsync over SSH)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart={BOOT_SCRIPT} push
TimeoutStartSec={max(300, 4 * interval)}
Nice=10
"""
    return service, _timer(f"Push WSO2 API-M artifacts to node 2 every {interval} s", on_boot=interval, every=interval)


def render_access_log_cleanup(settings: Settings) -> str:
    """API-M 3.2 and 4.0 only (later versions bound Tomcat's access log through deployment.toml's maxDays): the
    daily systemd-tmpfiles-clean removes what in repository/logs is untouched for observability.local_log_days
    (the rolled access logs, and anything else the product stopped writing to). Empty when not needed."""
    if access_log_has_max_days(settings.apim.version):
        return ""
    logs = f"{settings.apim.home}/repository/logs"
    days = settings.observability.local_log_days
    return f"# Age out what API-M stopped writing to in {logs} (tmpfiles.d(5), type e).\ne {logs} - - - {days}d\n"
