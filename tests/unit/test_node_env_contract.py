"""The contract between each node's rendered node.env and the boot step, declared once: the `: "${NAME:?}"` lines at
the top of wso2am-boot.sh (the EFS and rsync blocks for their mode only). Every variable the script requires is
rendered for every node of every mode, and node.env carries nothing the script does not declare."""
from __future__ import annotations

import re
import tomllib

import pytest

from apim_active_active.renderers.boot_script import boot_script_source, render_node_env
from apim_active_active.settings import parse_settings
from tests.conftest import DEPLOYED, EXAMPLES

REQUIRED = re.compile(r'"\$\{([A-Z_]+):?\?\}"')


def declared() -> dict[str, set[str]]:
    """Required names: always, and per content_sync mode (the script's `if efs ... else ... fi` block)."""
    head = boot_script_source().split("\nlog() ", 1)[0]
    names: dict[str, set[str]] = {"always": set(), "efs": set(), "rsync": set()}
    block = "always"
    for line in head.splitlines():
        if line.startswith('if [[ "$CONTENT_SYNC" == efs ]]'):
            block = "efs"
        elif line == "else" and block == "efs":
            block = "rsync"
        elif line == "fi":
            block = "always"
        elif line.lstrip().startswith(": "):
            names[block] |= set(REQUIRED.findall(line))
    return names


def test_the_contract_is_declared():
    names = declared()
    assert {"APIM_HOME", "CONFIG_SOURCE", "FIRST_NODE_URL"} <= names["always"]
    assert "EFS_DNS" in names["efs"] and "PEER_IP" in names["rsync"]


@pytest.mark.parametrize("env", ["local", "dev", "legacy32", "prod", "rsync"])
@pytest.mark.parametrize("node", [0, 1])
def test_node_env_renders_exactly_what_the_boot_step_declares(environments, env, node):
    settings = environments[env] if env != "rsync" else parse_settings(
        tomllib.loads((EXAMPLES / "rsync.toml").read_text()), environ={})
    rendered = {line.split("=", 1)[0] for line in render_node_env(settings, DEPLOYED, node).splitlines()}
    names = declared()
    wanted = names["always"] | names[settings.content_sync]
    # SYNC_ROLE is optional in EFS mode (the script defaults it) and rendered in rsync mode, where it is required.
    assert rendered - {"SYNC_ROLE"} == wanted - {"SYNC_ROLE"}, (sorted(rendered - wanted), sorted(wanted - rendered))
