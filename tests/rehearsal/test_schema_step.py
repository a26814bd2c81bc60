"""The boot step's schema step, run for real against a MySQL-protocol server with MySQL 8's defaults (the rehearsal's
MariaDB stand-in: utf8mb4, InnoDB's 3072-byte key limit, TLS required), from a namespace of the test's own: both
databases latin1 with a case-sensitive collation (WSO2's "Changing to MySQL"), the 4.2+ key created, the scripts
run once, and a database an earlier run left half-made refused by name rather than run into again."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from apim_active_active.engines import ENGINES
from apim_active_active.renderers import boot_script
from scripts.rehearsal.database import MariaDbStandIn
from scripts.rehearsal.lab import Lab
from scripts.rehearsal.product import SCHEMA
from tests.conftest import DEPLOYED

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces); CI has it"),
]
MASTER, PASSWORD = "admin", "not-a-real-password"
DB_ADDRESS, CLIENT_ADDRESS = "10.77.0.200", "10.77.0.10"
ENGINE = ENGINES["mysql"]


@pytest.fixture(scope="module")
def database():
    work = Path(tempfile.mkdtemp(prefix="schema-step-", dir="/var/tmp"))
    lab = Lab(f"ss{os.getpid() % 4096:x}", 16, work / "lab")
    try:
        lab.open_network()
        server = MariaDbStandIn(lab, work, DB_ADDRESS)
        server.start(MASTER, PASSWORD, ENGINE.apim_db)  # RDS makes db_name itself, with the server's utf8mb4
        client = lab.add_host("client", [CLIENT_ADDRESS])
        yield {"server": server, "client": client, "work": work}
    finally:
        lab.close()
        subprocess.run(["rm", "-rf", str(work)], check=False)


def ensure_schema(environments, database, home: Path) -> subprocess.CompletedProcess:
    """The boot step's ensure_schema, its secrets read from stand-ins for Secrets Manager (the master user's)."""
    env_text = boot_script.render_node_env(environments["local"], DEPLOYED, 0)
    env_text = re.sub(r"^DB_HOST=.*$", f"DB_HOST={DB_ADDRESS}", env_text, flags=re.M)
    env_text = re.sub(r"^APIM_HOME=.*$", f"APIM_HOME={home}", env_text, flags=re.M)
    work = database["work"]
    (work / "node.env").write_text(env_text)
    (work / "wso2am-boot").write_text(boot_script.boot_script_text(environments["local"].content_sync))
    (work / "secrets.env").write_text("APIM_DB_PASSWORD=app-password\n")
    script = (
        f'. "{work / "wso2am-boot"}"\n'
        f"load_db_admin() {{ DB_ADMIN_USER={MASTER}; DB_ADMIN_PASSWORD={PASSWORD}; }}\n"
        # The secrets file's way (local's secure vault reads Secrets Manager instead: tests/unit/test_secure_vault.py).
        f'SECURE_VAULT="" SECRETS_FILE="{work / "secrets.env"}" LOCK_DIR="{work}" ensure_schema\n'
    )
    return subprocess.run(
        ["ip", "netns", "exec", database["client"], "bash", "-c", script],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NODE_ENV": str(work / "node.env"), "BOOT_LOG": str(work / "boot.log")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def product_home(tmp_path: Path) -> Path:
    for name, text in SCHEMA.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def schemata(server: MariaDbStandIn) -> dict[str, tuple[str, str]]:
    rows = server.sql(
        "SELECT schema_name, default_character_set_name, default_collation_name FROM "
        f"information_schema.schemata WHERE schema_name IN ('{ENGINE.apim_db}', '{ENGINE.shared_db}');"
    )
    return {name: (charset, collation) for name, charset, collation in (line.split() for line in rows.stdout.splitlines())}


def test_the_schema_runs_once_into_latin1_case_sensitive_databases(environments, database, tmp_path):
    server, home = database["server"], product_home(tmp_path)
    assert server.sql("SELECT @@character_set_server;").stdout.strip() == "utf8mb4", "MySQL 8's default"
    first = ensure_schema(environments, database, home)
    assert first.returncode == 0, first.stderr
    assert schemata(server) == {db: ("latin1", "latin1_general_cs") for db in (ENGINE.apim_db, ENGINE.shared_db)}
    assert "IDN_OAUTH2_TOKEN_BINDING" in server.tables(ENGINE.apim_db), "the 4.2+ key fits in latin1"
    assert first.stderr.count("created the schema of") == 2
    again = ensure_schema(environments, database, home)
    assert again.returncode == 0 and "created the schema of" not in again.stderr, again.stderr


def test_a_database_an_earlier_run_left_half_made_is_refused_by_name(environments, database, tmp_path):
    server = database["server"]
    server.sql(
        f"DROP DATABASE IF EXISTS {ENGINE.apim_db}; CREATE DATABASE {ENGINE.apim_db};"
        f"CREATE TABLE {ENGINE.apim_db}.IDN_BEFORE_THE_FAILURE (ID INTEGER);"
    )
    try:
        result = ensure_schema(environments, database, product_home(tmp_path))
        assert result.returncode != 0
        assert f"{ENGINE.apim_db} holds 1 tables but not AM_API" in result.stderr, result.stderr
        assert "drop the database" in result.stderr
        assert server.tables(ENGINE.apim_db) == ["IDN_BEFORE_THE_FAILURE"], "nothing run into it"
    finally:
        server.sql(f"DROP DATABASE {ENGINE.apim_db};")
