"""Builds the STAND-IN product archive, laid out like the real wso2am-<version>.zip."""
from __future__ import annotations

import zipfile
from pathlib import Path

from apim_active_active.versions import traits

STANDIN = Path(__file__).resolve().parent / "standin"
# What the real distribution has under repository/deployment/server (enough to see seeding work).
SERVER_FILES = {
    "synapse-configs/default/api/_TokenAPI_.xml": "<api name='_TokenAPI_'/>  <!-- stand-in -->\n",
    "synapse-configs/default/proxy-services/README": "stand-in\n",
    "executionplans/README": "stand-in\n",
    "userstores/README": "stand-in\n",
    "webapps/README": "stand-in\n",
}


def build_archive(version: str, destination: Path) -> Path:
    """Write wso2am-<version>.zip (a stand-in) into destination and return its path."""
    top = f"wso2am-{version}"
    archive = destination / f"{top}.zip"
    start_script = traits(version).start_script
    with zipfile.ZipFile(archive, "w") as zipped:
        def add(name: str, text: str, mode: int = 0o644) -> None:
            info = zipfile.ZipInfo(f"{top}/{name}")
            info.external_attr = (0o100000 | mode) << 16
            zipped.writestr(info, text)

        add("STAND-IN.txt", "This is a stand-in for WSO2 API Manager, built for the boot rehearsal.\n")
        add(f"bin/{start_script}", (STANDIN / "start-script.sh").read_text(), 0o755)
        add("bin/standin_server.py", (STANDIN / "standin_server.py").read_text(), 0o755)
        add("repository/conf/README", "deployment.toml is written here by the boot step.\n")
        add("repository/logs/README", "logs\n")
        for name, text in SERVER_FILES.items():
            add(f"repository/deployment/server/{name}", text)
    return archive
