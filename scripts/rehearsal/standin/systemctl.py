#!/usr/bin/python3
"""STAND-IN for systemctl on a rehearsal node: PID 1 here is not systemd, so this carries out the
few verbs the boot step uses, reading the unit file the boot artifact installed:
  daemon-reload | enable [--now] UNIT | start [--no-block] UNIT | stop UNIT | is-active UNIT
`start` honours User/Group, EnvironmentFile, ExecStart, PIDFile, RequiresMountsFor (refuses to
start when a required path is not a mount point, as systemd's mount dependency would) and AssertPathExists.
"""
import configparser
import os
import subprocess
import sys
from pathlib import Path

UNITS = Path("/etc/systemd/system")
LOG = Path("/var/log/rehearsal-systemctl.log")


def log(message: str) -> None:
    with LOG.open("a") as handle:
        handle.write(message + "\n")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    if not parser.read(UNITS / name):
        sys.exit(f"Unit {name} not found.")
    return parser


def pid_alive(service: configparser.SectionProxy) -> bool:
    pid_file = Path(service.get("PIDFile", "/nonexistent"))
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def environment(name: str) -> dict[str, str]:
    """Every EnvironmentFile= of the unit, in order (configparser would keep only the last one)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    for line in (UNITS / name).read_text().splitlines():
        if line.startswith("EnvironmentFile="):
            path = Path(line.split("=", 1)[1].lstrip("-"))
            for entry in path.read_text().splitlines():
                if "=" in entry and not entry.startswith("#"):
                    key, value = entry.split("=", 1)
                    env[key] = value
    return env


def run_as_user(name: str, service: configparser.SectionProxy, command: str) -> int:
    user, group = service.get("User", "root"), service.get("Group", service.get("User", "root"))
    argv = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", *command.split()]
    return subprocess.run(argv, env=environment(name)).returncode


def start(name: str) -> int:
    if name.endswith(".timer"):  # timers are not run here: the rehearsal runs their service itself
        log(f"start {name}: timer (not run by the stand-in)")
        return 0
    parser = unit(name)
    service = parser["Service"]
    if pid_alive(service):
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
    code = run_as_user(name, service, service["ExecStart"])
    log(f"start {name}: ExecStart={service['ExecStart']} User={service.get('User')} rc={code}")
    return code if code else (0 if pid_alive(service) else 1)


def enable(name: str) -> None:
    for target in unit(name)["Install"].get("WantedBy", "").split():
        link = UNITS / f"{target}.wants" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(UNITS / name)
            log(f"enable {name}: {link}")


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
            if pid_alive(service):
                run_as_user(name, service, service["ExecStop"])
            log(f"stop {name}")
        return 0
    if verb == "is-active":
        return 0 if all(pid_alive(unit(n)["Service"]) for n in names) else 3
    sys.exit(f"rehearsal systemctl stand-in: verb {verb!r} not supported")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
