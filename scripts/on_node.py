"""Running a shell script on a node and getting its exit status, stdout and stderr, bounded in time: through Session
Manager on AWS (no port opened), or in a rehearsal node host. The script's text is not secret: Session Manager keeps
it in the command's history, so a secret is only ever read on the node itself."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Protocol

from botocore.exceptions import ClientError

# AWS-RunShellScript's states: https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
WAITING = ("Pending", "InProgress", "Delayed")


@dataclass(frozen=True)
class Outcome:
    status: str  # "Success", or what went wrong: Session Manager's status ("Failed", "TimedOut"...) or "no answer"
    code: int | None  # the script's exit code, when it ran to its end
    stdout: str
    stderr: str

    @property
    def succeeded(self) -> bool:
        return self.status == "Success"


class NodeShell(Protocol):
    def run(self, node: int, script: str, seconds: float) -> Outcome:
        """Run `script` with bash as root on node 1 or 2, for at most `seconds`."""
        ...


def run_on_instance(ssm, instance_id: str, script: str, seconds: int, poll: float) -> Outcome:
    """One AWS-RunShellScript command on an instance, polled until it ends or `seconds` pass. `seconds` bounds both its
    delivery and its run: SendCommand's TimeoutSeconds only bounds the wait for the command to start (once reached, a
    command not yet running does not run); the run itself is bounded by the document's executionTimeout parameter (a
    String of seconds; 3600 when not given), a run past it ending as timed out. AWS Systems Manager User Guide,
    "Understanding command statuses" (monitor-commands.html#monitor-about-status-timeouts, the Timeout (seconds) and
    Execution timeout parameters) and the API Reference's SendCommand (TimeoutSeconds)."""
    command = ssm.send_command(
        InstanceIds=[instance_id],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": [script], "executionTimeout": [str(seconds)]},
        TimeoutSeconds=seconds,
    )["Command"]["CommandId"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(poll)
        try:
            result = ssm.get_command_invocation(CommandId=command, InstanceId=instance_id)
        except ssm.exceptions.InvocationDoesNotExist:
            continue
        if result["Status"] in WAITING:
            continue
        code = result.get("ResponseCode")
        return Outcome(
            result["Status"],
            code if code is not None and code >= 0 else None,
            result.get("StandardOutputContent", ""),
            result.get("StandardErrorContent", ""),
        )
    return Outcome("no answer", None, "", f"no answer from Session Manager within {seconds}s")


class SessionManagerShell:
    """The nodes of a deployment, by their instance ids (node 1 first), through Session Manager."""

    def __init__(self, ssm, instance_ids: list[str], poll: float = 2) -> None:
        self.ssm, self.instance_ids, self.poll = ssm, instance_ids, poll

    def run(self, node: int, script: str, seconds: float) -> Outcome:
        try:
            return run_on_instance(self.ssm, self.instance_ids[node - 1], script, max(30, int(seconds)), self.poll)
        except ClientError as error:  # the agent not online, throttling, denied
            return Outcome(f"Session Manager: {error.response['Error'].get('Code', error)}", None, "", str(error))


class RehearsalShell:
    """The rehearsal's node hosts (scripts/rehearsal/lab.py NodeHost), the script run with bash in each."""

    def __init__(self, nodes: list, env: dict[str, str]) -> None:
        self.nodes, self.env = nodes, env

    def run(self, node: int, script: str, seconds: float) -> Outcome:
        try:
            done = self.nodes[node - 1].run("bash", "-c", script, env=self.env, timeout=seconds)
        except subprocess.TimeoutExpired:
            return Outcome("TimedOut", None, "", f"no end within {seconds:.0f}s")
        return Outcome("Success" if done.returncode == 0 else "Failed", done.returncode, done.stdout, done.stderr)
