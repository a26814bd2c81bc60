"""Builds the STAND-IN product archive, laid out like the real wso2am-<version>.zip."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from apim_active_active.versions import GATEWAY_PROFILE, gateway_distribution, traits
from scripts import commands

STANDIN = Path(__file__).resolve().parent / "standin"
# What the real distribution has under repository/deployment/server (enough to see seeding work).
SERVER_FILES = {
    "synapse-configs/default/api/_TokenAPI_.xml": "<api name='_TokenAPI_'/>  <!-- stand-in -->\n",
    "synapse-configs/default/proxy-services/README": "stand-in\n",
    "executionplans/README": "stand-in\n",
    "userstores/README": "stand-in\n",
    "webapps/README": "stand-in\n",
    # Some of the webapps the 4.3.0 pack ships (its assembly bin.xml): the gateway's REST API (the readiness check's
    # webapp, which the gateway-worker profile keeps), and some a gateway-worker's profileSetup.sh removes.
    **{f"webapps/{war}": "stand-in webapp\n" for war in ("api#am#gateway#v2.war", "api#am#publisher.war", "api#am#devportal.war")},
    "webapps/oauth2.war": "stand-in webapp\n",
}
GATEWAY_WEBAPP = "api#am#gateway#v2.war"
# Where the 4.0-4.4 pack keeps the profiles' deployment.toml templates (bin.xml: src/main/resources/conf/deployment-templates).
DEPLOYMENT_TEMPLATES = "repository/resources/conf/deployment-templates"


# The shape of the keys in WSO2's dbscripts/apimgt/mysql.sql (4.2 and later) that MySQL 8's utf8mb4 cannot hold:
# 4 bytes a character, UNIQUE (255 + 32 + 1024) x 4 = 5244 bytes and IDX_TK_VALUE_TYPE (1024 + 32) x 4 = 4224 over
# InnoDB's 3072 (ERROR 1071; wso2/api-manager#945, #1105). MariaDB, unlike MySQL, keeps a long UNIQUE key as a hash,
# so here the index is the one that fails under utf8mb4, as both do on MySQL 8. Before the marker table, as the
# failing key is in WSO2's script, so that a failed run leaves no marker.
TOKEN_BINDING = (
    "CREATE TABLE IDN_OAUTH2_TOKEN_BINDING (TOKEN_ID VARCHAR(255), TOKEN_BINDING_TYPE VARCHAR(32), "
    "TOKEN_BINDING_REF VARCHAR(32), TOKEN_BINDING_VALUE VARCHAR(1024), TENANT_ID INTEGER DEFAULT -1, "
    "UNIQUE (TOKEN_ID, TOKEN_BINDING_TYPE, TOKEN_BINDING_VALUE)) ENGINE INNODB;\n"
    "CREATE INDEX IDX_TK_VALUE_TYPE ON IDN_OAUTH2_TOKEN_BINDING (TOKEN_BINDING_VALUE, TOKEN_BINDING_TYPE);\n"
)
SCHEMA = {
    "dbscripts/mysql.sql": "CREATE TABLE REG_RESOURCE (REG_PATH_ID INTEGER NOT NULL, REG_NAME VARCHAR(256));\n",
    "dbscripts/apimgt/mysql.sql": TOKEN_BINDING + "CREATE TABLE AM_API (API_ID INTEGER NOT NULL, API_NAME VARCHAR(256));\n",
    "dbscripts/postgresql.sql": "CREATE TABLE REG_RESOURCE (REG_PATH_ID INTEGER NOT NULL, REG_NAME VARCHAR(256));\n",
    "dbscripts/apimgt/postgresql.sql": "CREATE TABLE AM_API (API_ID INTEGER NOT NULL, API_NAME VARCHAR(256));\n",
}


def files_on_the_share(server_dir: str, folders: dict[str, str]) -> list[Path]:
    """Where the stand-in's files under each shared folder (name -> folder on the node) belong on the share,
    relative to its root."""
    server = Path(server_dir)
    return [
        Path(name) / (server / file).relative_to(folder)
        for name, folder in folders.items()
        for file in SERVER_FILES
        if (server / file).is_relative_to(folder)
    ]


# The entries of the product's client-truststore.jks this toolkit relies on: its default certificate under
# `wso2carbon` and, the same certificate, under `gateway_certificate_alias`, the alias the gateway checks API keys
# and internal keys against (every pack 3.2.0-4.7.0; carbon-apimgt's GATEWAY_PUBLIC_CERTIFICATE_ALIAS).
SHIPPED_TRUST_ALIASES = ("wso2carbon", "gateway_certificate_alias")


def product_truststore() -> bytes:
    """A small stand-in for the product's client-truststore.jks (its published default password): a stand-in
    default certificate under each of SHIPPED_TRUST_ALIASES, and a CA."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store, default = folder / "client-truststore.jks", folder / "default.jks"
        keytool = ["keytool", "-storepass", "wso2carbon", "-keypass", "wso2carbon", "-storetype", "JKS"]
        commands.run(
            [
                *keytool,
                "-genkeypair",
                "-alias",
                "standin-ca",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-dname",
                "CN=stand-in CA",
                "-keystore",
                str(store),
            ],
            timeout=120,
        )
        commands.run(
            [
                *keytool,
                "-genkeypair",
                "-alias",
                "wso2carbon",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-dname",
                "CN=localhost, OU=STAND-IN default",
                "-keystore",
                str(default),
            ],
            timeout=120,
        )
        commands.run(
            [*keytool, "-exportcert", "-alias", "wso2carbon", "-keystore", str(default), "-file", str(folder / "default.crt")], timeout=120
        )
        for alias in SHIPPED_TRUST_ALIASES:
            commands.run(
                [*keytool, "-importcert", "-noprompt", "-alias", alias, "-file", str(folder / "default.crt"), "-keystore", str(store)],
                timeout=120,
            )
        return store.read_bytes()


def shipped_deployment_toml(version: str) -> str:
    """The stand-in's repository/conf/deployment.toml, shaped like the one WSO2 ships with the version."""
    return (STANDIN / "conf" / ("deployment-3.2.toml" if version.startswith("3.") else "deployment-4.x.toml")).read_text()


def gateway_template() -> str:
    """The stand-in's gateway-worker.toml, shaped like the template WSO2's 4.x pack ships."""
    return (STANDIN / "conf" / "gateway-worker-4.x.toml").read_text()


def has_gateway_profile(version: str) -> bool:
    """Whether the version's pack carries profileSetup.sh and the gateway-worker template (4.0-4.4)."""
    try:
        return gateway_distribution(version) == "profile"
    except ValueError:  # 3.2
        return False


def build_jdbc_driver(name: str, destination: Path) -> Path:
    """A STAND-IN JDBC driver jar (a zip with a manifest), uploaded where the settings say the real one is."""
    jar = destination / name
    with zipfile.ZipFile(jar, "w") as zipped:
        zipped.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Title: STAND-IN JDBC driver\n")
    return jar


# A STAND-IN OSGi bundle (customization.extra_jars: the boot step puts it in repository/components/dropins), its bytes
# always the same (fixed entry times), so that the settings can name its sha256.
BUNDLE_MANIFEST = (
    "Manifest-Version: 1.0\nBundle-ManifestVersion: 2\nBundle-SymbolicName: org.example.rehearsal.bundle\nBundle-Version: 1.0.0\n"
)


def build_bundle_jar(name: str, destination: Path) -> Path:
    jar = destination / name
    with zipfile.ZipFile(jar, "w") as zipped:
        zipped.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", date_time=(2024, 1, 1, 0, 0, 0)), BUNDLE_MANIFEST)
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
        add("bin/standin_api.py", (STANDIN / "standin_api.py").read_text())
        add("bin/standin_jwt.py", (STANDIN / "standin_jwt.py").read_text())
        add("bin/standin_vault.py", (STANDIN / "standin_vault.py").read_text())
        add("bin/ciphertool.sh", (STANDIN / "ciphertool.sh").read_text(), 0o755)
        add("bin/standin_ciphertool.py", (STANDIN / "standin_ciphertool.py").read_text())
        add("repository/conf/deployment.toml", shipped_deployment_toml(version))
        if has_gateway_profile(version):
            add("bin/profileSetup.sh", (STANDIN / "profileSetup.sh").read_text(), 0o755)
            add(f"{DEPLOYMENT_TEMPLATES}/{GATEWAY_PROFILE}.toml", gateway_template())
        add("repository/conf/log4j2.properties", (STANDIN / "conf" / "log4j2.properties").read_text())
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
