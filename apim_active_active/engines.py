"""What differs between the two database engines (pure facts; no cdktf import)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Engine:
    rds_engine: str
    rds_version: str
    port: int
    apim_db: str
    shared_db: str
    toml_type: str  # deployment.toml's [database.*] type
    # deployment.toml's [database.*] driver. Set, never left to the config mapper: for "mysql" it infers the old
    # com.mysql.jdbc.Driver (carbon-kernel's infer.json), which Connector/J 8 only keeps as a deprecated alias;
    # WSO2's 4.x active-active page sets com.mysql.cj.jdbc.Driver.
    jdbc_driver: str
    jdbc_scheme: str
    jdbc_tls: str  # query string that makes the driver require TLS
    script: str  # dbscripts/<script> (shared) and dbscripts/apimgt/<script> (API-M)
    client_package: str  # Amazon Linux 2023 package with the command-line client
    log_exports: tuple[str, ...]
    parameter_family: str
    # RDS parameters: TLS required of every client; slow queries (and DDL) logged.
    parameters: tuple[tuple[str, str], ...]


ENGINES = {
    "mysql": Engine(
        "mysql",
        "8.0",
        3306,
        "WSO2AM_DB",
        "WSO2SHARED_DB",
        "mysql",
        "com.mysql.cj.jdbc.Driver",
        "mysql",
        "sslMode=REQUIRED",
        "mysql.sql",
        "mariadb105",
        ("error", "slowquery"),
        "mysql8.0",
        (("require_secure_transport", "1"), ("slow_query_log", "1"), ("long_query_time", "2")),
    ),
    "postgres": Engine(
        "postgres",
        "16",
        5432,
        "wso2am_db",
        "wso2shared_db",
        "postgre",
        "org.postgresql.Driver",
        "postgresql",
        "sslmode=require",
        "postgresql.sql",
        "postgresql15",
        ("postgresql",),
        "postgres16",
        (("rds.force_ssl", "1"), ("log_statement", "ddl"), ("log_min_duration_statement", "2000")),
    ),
}
# API-M's own database user (with RDS): TLS only, rights on the two databases, a password nothing rotates.
APP_DB_USER = "wso2apim"
# A table each schema script creates: present means the script already ran.
SHARED_DB_MARKER_TABLE = "REG_RESOURCE"
APIM_DB_MARKER_TABLE = "AM_API"


def jdbc_url(engine: Engine, host: str, port: int, database: str) -> str:
    return f"jdbc:{engine.jdbc_scheme}://{host}:{port}/{database}?{engine.jdbc_tls}"
