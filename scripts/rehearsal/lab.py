"""Rehearsal hosts: network namespaces made for this run, joined by a bridge that has no address.

Each node gets its own network namespace (its private address from the stack, no default route),
its own mount namespace and an overlay root (lower: this machine's /, upper: a tmpfs), so what its
boot writes stays on that node. An "efs" namespace holds the EFS mount targets' addresses. The
EFS export is one folder on this machine, bind-mounted into every node. Everything is removed by
close(), which the rehearsal calls even when a check fails.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts import commands

READY_SECONDS = 20
HOLDER_SECONDS = 3600  # a node host never outlives this, even if cleanup is skipped
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    if check:
        return commands.run(argv, text=True, timeout=timeout)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@dataclass
class NodeHost:
    name: str  # network namespace name
    address: str
    holder: subprocess.Popen | None = None
    background: list[subprocess.Popen] = field(default_factory=list)

    @property
    def merged(self) -> str:
        return f"/run/rehearsal/{self.name}/merged"

    def path(self, inside: str) -> Path:
        """A path on the node, seen from this machine (through the holder's mount namespace)."""
        return Path(f"/proc/{self.holder.pid}/root{self.merged}{inside}")

    def argv(self, *command: str, env: dict[str, str] | None = None) -> list[str]:
        variables = [f"{k}={v}" for k, v in {"PATH": NODE_PATH, **(env or {})}.items()]
        return [
            "nsenter",
            f"--target={self.holder.pid}",
            "--mount",
            "--net",
            "--",
            "chroot",
            self.merged,
            "/usr/bin/env",
            "-i",
            *variables,
            *command,
        ]

    def run(self, *command: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*command, env=env), capture_output=True, text=True, timeout=timeout)


class Lab:
    def __init__(self, tag: str, prefix_length: int, work: Path) -> None:
        self.tag = tag  # short: interface names are at most 15 characters
        self.prefix_length = prefix_length
        self.work = work
        self.bridge = f"{tag}br"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.nodes: list[NodeHost] = []
        self.interfaces = 0

    # network -------------------------------------------------------------------------------
    def _namespace(self, suffix: str, addresses: list[str]) -> str:
        name = f"{self.tag}-{suffix}"
        index = self.interfaces = self.interfaces + 1
        outside, inside = f"{self.tag}v{index}", f"{self.tag}p{index}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", name)
        sh("ip", "link", "set", outside, "master", self.bridge, "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        for address in addresses:
            sh("ip", "-n", name, "addr", "add", f"{address}/{self.prefix_length}", "dev", inside)
        sh("ip", "-n", name, "link", "set", inside, "up")
        return name

    def open_network(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "link", "set", self.bridge, "up")

    def add_host(self, suffix: str, addresses: list[str]) -> str:
        """A plain host (a namespace with these addresses) for a service the nodes reach."""
        return self._namespace(suffix, addresses)

    def in_namespace(self, namespace: str, *command: str) -> subprocess.Popen:
        process = subprocess.Popen(["ip", "netns", "exec", namespace, *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    # node hosts ----------------------------------------------------------------------------
    def add_node(self, number: int, address: str, stage: Path, efs_export: Path, project: Path) -> NodeHost:
        """A node host: its namespace, and a holder process keeping its mount namespace alive. The project
        (its tools: cloud-init's code, the AWS CLI) is bound in read-only at its own path, wherever it is."""
        node = NodeHost(self._namespace(f"n{number}", [address]), address)
        root = f"/run/rehearsal/{node.name}"
        setup = f"""set -e
mkdir -p {root}
mount -t tmpfs rehearsal {root}
mkdir -p {root}/upper {root}/work {node.merged}
cp -a {stage}/. {root}/upper/
mount -t overlay overlay -o lowerdir=/,upperdir={root}/upper,workdir={root}/work {node.merged}
mount -t proc proc {node.merged}/proc
mount --rbind /dev {node.merged}/dev
mount -t tmpfs tmp {node.merged}/tmp
mkdir -p {node.merged}{project}
mount --bind {project} {node.merged}{project}
mount -o remount,bind,ro {node.merged}{project}
mkdir -p {node.merged}/run/rehearsal-efs
mount --bind {efs_export} {node.merged}/run/rehearsal-efs
echo ready
exec sleep {HOLDER_SECONDS}
"""
        node.holder = subprocess.Popen(
            ["ip", "netns", "exec", node.name, "unshare", "--mount", "--propagation", "private", "bash", "-c", setup],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.nodes.append(node)
        deadline = time.monotonic() + READY_SECONDS
        line = node.holder.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            raise RuntimeError(f"node host {node.name} did not start: {node.holder.stderr.read()}")
        return node

    def _drop_namespace(self, namespace: str) -> None:
        """Kill whatever still runs in a namespace (its mounts go with its last process), then delete it."""
        for pid in sh("ip", "netns", "pids", namespace, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "delete", namespace, check=False)

    def remove_node(self, node: NodeHost) -> None:
        """Take a node host away entirely (its processes, mounts and namespace)."""
        self._drop_namespace(node.name)
        node.holder.wait(timeout=10)
        self.namespaces.remove(node.name)
        self.nodes.remove(node)

    def close(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(timeout=10)
        for namespace in self.namespaces:
            self._drop_namespace(namespace)
        for node in self.nodes:
            node.holder.wait(timeout=10)
        sh("ip", "link", "delete", self.bridge, check=False)
        shutil.rmtree(self.work, ignore_errors=True)
