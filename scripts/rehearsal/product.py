"""Builds the STAND-IN product archive, laid out like the real wso2am-<version>.zip."""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from apim_active_active.versions import traits
from scripts import commands

STANDIN = Path(__file__).resolve().parent / "standin"
# What the real distribution has under repository/deployment/server (enough to see seeding work).
SERVER_FILES = {
    "synapse-configs/default/api/_TokenAPI_.xml": "<api name='_TokenAPI_'/>  <!-- stand-in -->\n",
    "synapse-configs/default/proxy-services/README": "stand-in\n",
    "executionplans/README": "stand-in\n",
    "userstores/README": "stand-in\n",
    "webapps/README": "stand-in\n",
}


SCHEMA = {
    "dbscripts/mysql.sql": "CREATE TABLE REG_RESOURCE (REG_PATH_ID INTEGER NOT NULL, REG_NAME VARCHAR(256));\n",
    "dbscripts/apimgt/mysql.sql": "CREATE TABLE AM_API (API_ID INTEGER NOT NULL, API_NAME VARCHAR(256));\n",
    "dbscripts/postgresql.sql": "CREATE TABLE REG_RESOURCE (REG_PATH_ID INTEGER NOT NULL, REG_NAME VARCHAR(256));\n",
    "dbscripts/apimgt/postgresql.sql": "CREATE TABLE AM_API (API_ID INTEGER NOT NULL, API_NAME VARCHAR(256));\n",
}


def files_on_the_share(server_dir: str, folders: dict[str, str]) -> list[Path]:
    """Where the stand-in's files under each shared folder (name -> folder on the node) belong on the share,
    relative to its root."""
    server = Path(server_dir)
    return [Path(name) / (server / file).relative_to(folder)
            for name, folder in folders.items() for file in SERVER_FILES if (server / file).is_relative_to(folder)]


def product_truststore() -> bytes:
    """A small stand-in for the product's client-truststore.jks (its published default password)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "client-truststore.jks"
        commands.run(
            ["keytool", "-genkeypair", "-alias", "standin-ca", "-keyalg", "RSA", "-keysize", "2048", "-dname",
             "CN=stand-in CA", "-keystore", str(store), "-storetype", "JKS", "-storepass", "wso2carbon",
             "-keypass", "wso2carbon"],
            timeout=120,
        )
        return store.read_bytes()


def build_jdbc_driver(name: str, destination: Path) -> Path:
    """A STAND-IN JDBC driver jar (a zip with a manifest), uploaded where the settings say the real one is."""
    jar = destination / name
    with zipfile.ZipFile(jar, "w") as zipped:
        zipped.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Title: STAND-IN JDBC driver\n")
    return jar


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
        for name, text in SCHEMA.items():
            add(name, text)
        add("repository/components/lib/README", "JDBC drivers go here.\n")
        info = zipfile.ZipInfo(f"{top}/repository/resources/security/client-truststore.jks")
        info.external_attr = (0o100644) << 16
        zipped.writestr(info, product_truststore())
    return archive
