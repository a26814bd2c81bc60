#!/usr/bin/python3
"""STAND-IN for systemctl on a rehearsal node: PID 1 here is not systemd, so this carries out the
few verbs the boot step uses, reading the unit file the boot artifact installed:
  daemon-reload | enable [--now] UNIT | start [--no-block] UNIT | stop UNIT | is-active UNIT | is-enabled UNIT
  | show --property=ActiveState --value UNIT (the share watch's look after a reboot)
`start` honours User/Group, EnvironmentFile, ExecStartPre, ExecStart, ExecStartPost (their prefixes `-`: the failure
ignored, `+`: run as root), ExecStopPost after a failed start and after `stop`,
PIDFile, RequiresMountsFor (refuses to start when a required path is not a mount point, as systemd's mount dependency
would) and AssertPathExists. Like systemd, it tracks the main PID itself (a PID file alone does not make a unit
active) and refuses a PID file that names a process which was running before the start (systemd: "New main PID ...
does not belong to service, and PID file is not owned by root. Refusing.").
"""

import configparser
import os
import subprocess
import sys
from pathlib import Path

UNITS = Path("/etc/systemd/system")
LOG = Path("/var/log/rehearsal-systemctl.log")
MAIN_PIDS = Path("/run/rehearsal-systemctl")


def log(message: str) -> None:
    with LOG.open("a") as handle:
        handle.write(message + "\n")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    if not parser.read(UNITS / name):
        sys.exit(f"Unit {name} not found.")
    return parser


def alive(pid: int | None) -> bool:
    try:
        os.kill(pid, 0)
        return pid is not None
    except (OSError, TypeError):
        return False


def pid_in_file(service: configparser.SectionProxy) -> int | None:
    try:
        return int(Path(service.get("PIDFile", "/nonexistent")).read_text().strip())
    except (OSError, ValueError):
        return None


def main_pid(name: str) -> int | None:
    try:
        return int((MAIN_PIDS / name).read_text())
    except (OSError, ValueError):
        return None


def active(name: str) -> bool:
    return alive(main_pid(name))


def lines(name: str, key: str) -> list[str]:
    """Every `key=` line of the unit, in order (configparser would keep only the last one)."""
    return [line.split("=", 1)[1] for line in (UNITS / name).read_text().splitlines() if line.startswith(f"{key}=")]


def environment(name: str) -> dict[str, str]:
    """Every EnvironmentFile= of the unit, in order (configparser would keep only the last one)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    for file in lines(name, "EnvironmentFile"):
        for entry in Path(file.lstrip("-")).read_text().splitlines():
            if "=" in entry and not entry.startswith("#"):
                key, value = entry.split("=", 1)
                env[key] = value
    return env


def run_as_user(name: str, service: configparser.SectionProxy, command: str) -> int:
    user, group = service.get("User", "root"), service.get("Group", service.get("User", "root"))
    argv = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", *command.split()]
    return subprocess.run(argv, env=environment(name)).returncode


def run_line(name: str, service: configparser.SectionProxy, command: str) -> tuple[int, bool]:
    """An Exec*= command line: `+` full privileges (as root), `-` its failure ignored (systemd.service, "Command lines");
    its exit code, and whether a failure counts."""
    flags = command[: len(command) - len(command.lstrip("-+"))]
    bare = command.lstrip("-+")
    code = subprocess.run(bare.split(), env=environment(name)).returncode if "+" in flags else run_as_user(name, service, bare)
    return code, "-" not in flags


def stop_post(name: str, service: configparser.SectionProxy) -> None:
    for command in lines(name, "ExecStopPost"):
        log(f"stop {name}: ExecStopPost={command} rc={run_line(name, service, command)[0]}")


def start(name: str) -> int:
    if name.endswith(".timer"):  # timers are not run here: the rehearsal runs their service itself
        log(f"start {name}: timer (not run by the stand-in)")
        return 0
    parser = unit(name)
    service = parser["Service"]
    if active(name):
        log(f"start {name}: already active")
        return 0
    for path in parser["Unit"].get("RequiresMountsFor", "").split():
        if subprocess.run(["mountpoint", "-q", path]).returncode != 0:
            log(f"start {name}: dependency failed: {path} is not mounted")
            print(f"A dependency job for {name} failed: {path} is not mounted.", file=sys.stderr)
            return 1
    for path in parser["Unit"].get("AssertPathExists", "").split():
        if not Path(path).exists():
            log(f"start {name}: assertion failed: {path} does not exist")
            print(f"Assertion failed on job for {name}: {path} does not exist.", file=sys.stderr)
            return 1
    before = pid_in_file(service) if alive(pid_in_file(service)) else None
    for command in lines(name, "ExecStartPre"):
        code, counts = run_line(name, service, command)
        log(f"start {name}: ExecStartPre={command} rc={code}")
        if code and counts:
            stop_post(name, service)
            return code
    code = run_as_user(name, service, service["ExecStart"])
    log(f"start {name}: ExecStart={service['ExecStart']} User={service.get('User')} rc={code}")
    pid = pid_in_file(service)
    if code or not alive(pid):
        stop_post(name, service)
        return code or 1
    if pid == before:
        log(f"start {name}: new main PID {pid} does not belong to the service (it ran before the start): refusing")
        print(f"Job for {name} failed: PID file names process {pid}, which is not the service's.", file=sys.stderr)
        return 1
    MAIN_PIDS.mkdir(parents=True, exist_ok=True)
    (MAIN_PIDS / name).write_text(str(pid))
    for command in lines(name, "ExecStartPost"):
        code, counts = run_line(name, service, command)
        log(f"start {name}: ExecStartPost={command} rc={code}")
        if code and counts:
            return code
    return 0


def enable(name: str) -> None:
    for target in unit(name)["Install"].get("WantedBy", "").split():
        link = UNITS / f"{target}.wants" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(UNITS / name)
            log(f"enable {name}: {link}")


def enabled(name: str) -> bool:
    return any((UNITS / f"{target}.wants" / name).is_symlink() for target in unit(name)["Install"].get("WantedBy", "").split())


def main(argv: list[str]) -> int:
    now = "--now" in argv
    args = [a for a in argv if not a.startswith("--")]
    verb, names = args[0], args[1:]
    if verb == "daemon-reload":
        return 0
    if verb == "enable":
        for name in names:
            enable(name)
        return max((start(n) for n in names), default=0) if now else 0
    if verb == "start":
        return max(start(n) for n in names)
    if verb == "stop":
        for name in names:
            service = unit(name)["Service"]
            if active(name):
                run_as_user(name, service, service["ExecStop"])
                stop_post(name, service)
            (MAIN_PIDS / name).unlink(missing_ok=True)
            log(f"stop {name}")
        return 0
    if verb == "is-active":
        return 0 if all(active(n) for n in names) else 3
    if verb == "is-enabled":
        return 0 if all(enabled(n) for n in names) else 1
    if verb == "show" and "--property=ActiveState" in argv and "--value" in argv:
        for name in names:  # no unit here keeps a failed state: a unit not running is inactive
            print("active" if active(name) else "inactive")
        return 0
    sys.exit(f"rehearsal systemctl stand-in: verb {verb!r} not supported")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
