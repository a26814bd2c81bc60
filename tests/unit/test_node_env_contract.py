"""The contract between each node's rendered node.env and the boot step, declared once: the `: "${NAME:?}"` lines of
the boot step's header part (every mode) and at the top of each mode's part (efs.sh, rsync.sh). Every variable a
node's assembled script requires is rendered for that node, and node.env carries nothing its script does not declare."""

from __future__ import annotations

import re
import tomllib

import pytest

from apim_active_active.renderers.boot_script import BOOT_PARTS, boot_part, boot_script_source, render_node_env
from apim_active_active.settings import parse_settings
from tests.conftest import DEPLOYED, EXAMPLES

REQUIRED = re.compile(r'"\$\{([A-Z_]+):?\?\}"')
MODE_PARTS = {"efs": "efs.sh", "rsync": "rsync.sh"}


def declared(text: str) -> set[str]:
    """The names a script (or part) requires: its top-level `: "${NAME:?}"` lines."""
    return {name for line in text.splitlines() if line.startswith(": ") for name in REQUIRED.findall(line)}


def test_the_contract_is_declared_in_the_header_and_the_mode_parts_only():
    assert {"APIM_HOME", "CONFIG_SOURCE", "FIRST_NODE_URL", "CONTENT_SYNC"} <= declared(boot_part("header.sh"))
    assert "EFS_DNS" in declared(boot_part("efs.sh")) and "SYNC_USER" in declared(boot_part("rsync.sh"))
    assert "SYNC_ROLE" in declared(boot_part("rsync.sh")), "node 1 or 2: the rsync mode's roles"
    for mode, parts in BOOT_PARTS.items():
        assert MODE_PARTS[mode] in parts
        for name in set(parts) - {"header.sh", MODE_PARTS[mode]}:
            assert not declared(boot_part(name)), f"{name}: the contract belongs in header.sh or {MODE_PARTS[mode]}"


@pytest.mark.parametrize("env", ["local", "dev", "legacy32", "prod", "rsync"])
@pytest.mark.parametrize("node", [0, 1])
def test_node_env_renders_exactly_what_the_nodes_boot_step_declares(environments, env, node):
    settings = environments[env] if env != "rsync" else parse_settings(tomllib.loads((EXAMPLES / "rsync.toml").read_text()), environ={})
    rendered = {line.split("=", 1)[0] for line in render_node_env(settings, DEPLOYED, node).splitlines()}
    wanted = declared(boot_script_source(settings.content_sync))
    assert wanted == declared(boot_part("header.sh")) | declared(boot_part(MODE_PARTS[settings.content_sync]))
    assert rendered == wanted, (sorted(rendered - wanted), sorted(wanted - rendered))
