"""The rehearsal's look at the escape hatches (`[customization]`: local turns each on): on both pair nodes and the gateway
node, the overlay's keys in the deployment.toml API-M reads, each extra jar where WSO2 puts it, the JVM options in the
start script's JAVA_OPTS, the post-boot hook's lines in the boot log; and an overlay key the pair owns refused by name
by the real entry point (cdktf.json's app, which `cdktf synth/plan/deploy` run), before anything is synthesized. Mixed
into Rehearsal; each method records its checks with self.check."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

from apim_active_active.observability import BOOT_LOG
from apim_active_active.renderers.node_layout import gateway_home
from apim_active_active.renderers.overlay import leaves
from scripts.local_stack import ROOT, tool_env
from scripts.rehearsal.product import build_bundle_jar

# A STAND-IN hook: who runs it, with what, and whether API-M was running then (it must not be, at a first boot).
HOOK = """#!/bin/bash
# STAND-IN post-boot hook (customization.post_boot_hook), uploaded by the rehearsal where the settings say.
state=$(systemctl is-active --quiet wso2am.service && echo running || echo "not running")
echo "rehearsal hook as $(id -un) on $NODE_ROLE, $APIM_HOME for $OS_USER, API-M $state"
"""
OVERLAY = "customization: the overlay's keys are in the deployment.toml API-M reads"
JARS = "customization: each extra jar where WSO2 puts it (an OSGi bundle in repository/components/dropins), API-M's user's"
JVM = "customization: the JVM options reached the start script as JAVA_OPTS"
HOOK_RAN = "customization: the post-boot hook ran as root before API-M started, its lines and exit in the boot log"
NODE_CHECKS = (OVERLAY, JARS, JVM, HOOK_RAN)
REFUSED = "customization: an overlay key the pair owns is refused by name (exit 2) before anything is synthesized"
OWNED_KEY = ("server", "hostname")  # the public name: apim.hostname's
CONSOLE_LOG = "repository/logs/standin-console.log"  # where the stand-in start script writes what it was given


class Customization:
    def customization_artifacts(self) -> list[tuple[str, Path]]:
        """(s3:// URL, stand-in file) for what the nodes fetch for the customization: each jar an OSGi bundle, the hook."""
        customization, folder = self.settings.customization, self.work / "customization"
        folder.mkdir(exist_ok=True)
        artifacts = [(jar.url, build_bundle_jar(jar.file_name, folder)) for jar in customization.extra_jars]
        if customization.post_boot_hook:
            hook = folder / "post-boot-hook.sh"
            hook.write_text(HOOK)
            artifacts.append((customization.post_boot_hook, hook))
        return [(url, path) for url, path in artifacts if url.startswith("s3://")]

    def check_customization(self) -> None:
        hosts = [(str(number), node, self.settings.apim.home) for number, node in enumerate(self.nodes, start=1)]
        if self.gateway:
            hosts.append(("gw", self.gateway, gateway_home(self.settings)))
        for name, node, home in hosts:
            self._check_overlay(name, node, home)
            self._check_jars(name, node, home)
            self._check_jvm_options(name, node, home)
            self._check_hook(name, node, home)
        self._check_refused()

    def _check_overlay(self, name: str, node, home: str) -> None:
        installed_file = node.path(f"{home}/repository/conf/deployment.toml")
        installed = tomllib.loads(installed_file.read_text()) if installed_file.exists() else {}
        wanted = list(leaves(self.settings.customization.deployment_toml))
        missing = []
        for path, value in wanted:
            found = installed
            for key in path:
                found = found.get(key, {}) if isinstance(found, dict) else {}
            if found != value:
                missing.append(f"{'.'.join(path)} = {found!r}, not {value!r}")
        self.check(OVERLAY, name, installed and wanted and not missing, "; ".join(missing) or f"{len(wanted)} keys")

    def _check_jars(self, name: str, node, home: str) -> None:
        problems = []
        for jar in self.settings.customization.extra_jars:
            placed, elsewhere = (node.path(f"{home}/repository/components/{f}/{jar.file_name}") for f in ("dropins", "lib"))
            if not placed.exists():
                problems.append(f"{jar.file_name} not in dropins" + (" (in lib)" if elsewhere.exists() else ""))
                continue
            if placed.stat().st_uid != self.settings.apim.os_uid:
                problems.append(f"{jar.file_name} owned by uid {placed.stat().st_uid}")
            if jar.sha256 and hashlib.sha256(placed.read_bytes()).hexdigest() != jar.sha256:
                problems.append(f"{jar.file_name} is not the jar its sha256 names")
        self.check(JARS, name, not problems, "; ".join(problems) or ", ".join(j.file_name for j in self.settings.customization.extra_jars))

    def _check_jvm_options(self, name: str, node, home: str) -> None:
        console = node.path(f"{home}/{CONSOLE_LOG}")
        starts = [line for line in (console.read_text() if console.exists() else "").splitlines() if "JAVA_OPTS=" in line]
        wanted = "JAVA_OPTS=" + " ".join(self.settings.customization.jvm_options)
        self.check(JVM, name, bool(starts) and starts[-1].endswith(wanted), starts[-1] if starts else "no start recorded")

    def _check_hook(self, name: str, node, home: str) -> None:
        log = node.path(BOOT_LOG)
        text = log.read_text() if log.exists() else ""
        lines = [line.split("wso2am-boot: ", 1)[1] for line in text.splitlines() if "wso2am-boot: " in line]
        role = "gateway" if name == "gw" else f"node-{name}"
        said = [line for line in lines if line.startswith("post-boot hook: rehearsal hook as ")]
        first = f"post-boot hook: rehearsal hook as root on {role}, {home} for {self.settings.apim.os_user}, API-M not running"
        exited = f"post-boot hook: {self.settings.customization.post_boot_hook} exited 0"
        self.check(HOOK_RAN, name, said[:1] == [first] and exited in lines, said[0] if said else "no line of the hook's in the boot log")

    def _check_refused(self) -> None:
        """The settings with an overlay key the pair owns, run through cdktf.json's app as `cdktf plan` would."""
        folder, outdir = self.work / "refused-environments", self.work / "refused-cdktf.out"
        folder.mkdir()
        owned = f'deployment_toml = {{ {OWNED_KEY[0]} = {{ {OWNED_KEY[1]} = "elsewhere.example" }} }}'
        text, count = re.subn(r"^deployment_toml = .*$", owned, self.environment.read_text(), flags=re.M)
        (folder / self.environment.name).write_text(text)
        app = shlex.split(json.loads((ROOT / "cdktf.json").read_text())["app"])
        env = tool_env(APIM_ENVIRONMENTS_DIR=str(folder), CDKTF_OUTDIR=str(outdir), APIM_STATE_DIR=str(self.work / "refused-state"))
        result = subprocess.run(app, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        key = f"customization.deployment_toml.{'.'.join(OWNED_KEY)}"
        named = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith(key)]
        synthesized = sorted(str(p.relative_to(outdir)) for p in outdir.rglob("*")) if outdir.exists() else []
        self.check(
            REFUSED,
            "synth",
            count == 1 and result.returncode == 2 and named and "apim.hostname" in named[0] and not synthesized,
            f"exit {result.returncode}: {named[0] if named else result.stderr.strip()[-300:]}"
            + (f"; synthesized: {synthesized[:5]}" if synthesized else ""),
        )
