"""STAND-IN for the RDS instance: a MariaDB server (MySQL protocol) in a namespace of its own.

It listens on an address in node 1's subnet that each node's /etc/hosts gives the RDS
endpoint name, and like the parameter group it refuses clients without TLS; its master user is the one in the secret
RDS manages (read from the emulator).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from scripts import commands
from scripts.rehearsal.lab import Lab

READY_SECONDS = 60


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MariaDbStandIn:
    def __init__(self, lab: Lab, work: Path, address: str, name: str = "db") -> None:
        self.lab, self.work, self.address, self.name = lab, work / ("mariadb" if name == "db" else f"mariadb-{name}"), address, name
        self.socket = self.work / "mysqld.sock"

    def start(self, username: str, password: str, initial_database: str) -> None:
        data, tmp = self.work / "data", self.work / "tmp"
        data.mkdir(parents=True)
        tmp.mkdir()
        # A tmpdir of its own: a MariaDB server starting removes every `#sql*` file in its tmpdir, so with the
        # default /tmp the other mode's server starting beside it deleted this one's temporary tables mid-bootstrap
        # (ERROR 1051 Unknown table 'mysql.tmp_user_sys': 4 of 80 concurrent installs on this machine; 0 of 80
        # with a tmpdir each).
        commands.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
                f"--tmpdir={tmp}",
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ],
            timeout=120,
        )
        commands.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=rds-stand-in",
                "-keyout",
                str(self.work / "key.pem"),
                "-out",
                str(self.work / "cert.pem"),
            ],
            timeout=60,
        )
        namespace = self.lab.add_host(self.name, [self.address])
        self.lab.in_namespace(
            namespace,
            "mariadbd",
            "--no-defaults",
            f"--datadir={data}",
            f"--tmpdir={tmp}",
            f"--socket={self.socket}",
            f"--pid-file={self.work / 'mysqld.pid'}",
            f"--bind-address={self.address}",
            "--port=3306",
            "--user=root",
            "--skip-name-resolve",
            f"--ssl-cert={self.work / 'cert.pem'}",
            f"--ssl-key={self.work / 'key.pem'}",
            "--require-secure-transport=ON",
            # MySQL 8's defaults, which RDS keeps: utf8mb4 (4 bytes a character) and InnoDB's 3072-byte key limit.
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--innodb-default-row-format=dynamic",
            f"--log-error={self.work / 'error.log'}",
        )
        deadline = time.monotonic() + READY_SECONDS
        while self.sql("SELECT 1;").returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"MariaDB did not start: {(self.work / 'error.log').read_text()[-1000:]}")
            time.sleep(0.5)
        user = f"{_sql_string(username)}@'%'"
        created = self.sql(
            f"CREATE USER {user} IDENTIFIED BY {_sql_string(password)};\n"
            f"GRANT ALL PRIVILEGES ON *.* TO {user} WITH GRANT OPTION;\n"
            f"CREATE DATABASE {initial_database};\n"  # RDS creates db_name itself
        )
        if created.returncode != 0:
            raise RuntimeError(f"could not create the master user: {created.stderr}")

    def sql(self, statements: str) -> subprocess.CompletedProcess:
        """Run SQL as root over the local socket (never over the network)."""
        return subprocess.run(
            ["mariadb", f"--socket={self.socket}", "--user=root", "--batch", "--skip-column-names"],
            input=statements,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def tables(self, database: str) -> list[str]:
        result = self.sql(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{database}';")
        return sorted(result.stdout.split())
