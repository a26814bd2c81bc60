# --- the database: both databases and the product's schema, once for the pair; API-M's own user -------------
# The database's admin (the RDS master user, or the existing database's user), read when needed: RDS
# rotates the master password, so it is never kept.
load_db_admin() {
  local secret
  secret=$(retry "$RETRY_TRIES" 2 secret_string "$DB_SECRET_ARN")
  DB_ADMIN_USER=$(json_field username <<<"$secret")
  DB_ADMIN_PASSWORD=$(json_field password <<<"$secret")
}

# db_client DATABASE < SQL: the engine's client, as the database's admin, over TLS.
db_client() {
  local database=$1
  case "$DB_ENGINE" in
    mysql)
      MYSQL_PWD=$DB_ADMIN_PASSWORD mysql --host="$DB_HOST" --port="$DB_PORT" --ssl --batch \
        --skip-column-names --user="$DB_ADMIN_USER" ${database:+"--database=$database"} ;;
    postgres)
      PGPASSWORD=$DB_ADMIN_PASSWORD PGSSLMODE=require psql --host="$DB_HOST" --port="$DB_PORT" \
        --username="$DB_ADMIN_USER" --dbname="${database:-postgres}" --tuples-only --no-align \
        --quiet --set ON_ERROR_STOP=1 ;;
  esac
}

# MySQL: latin1, as WSO2's "Changing to MySQL" asks: with MySQL 8's utf8mb4 (4 bytes a character) the 4.2+ scripts'
# keys pass InnoDB's 3072 bytes (ERROR 1071; wso2/api-manager#945, #1105, #3555). Case-sensitive, as the same page
# asks (latin1's default, latin1_swedish_ci, is not: an API re-created in other letter case loses its permissions).
MYSQL_CHARSET="CHARACTER SET latin1 COLLATE latin1_general_cs"
create_database() {
  if [[ "$DB_ENGINE" == mysql ]]; then
    db_client "" <<<"CREATE DATABASE IF NOT EXISTS \`$1\` $MYSQL_CHARSET;"
  elif [[ -z "$(db_client "" <<<"SELECT 1 FROM pg_database WHERE datname = '$1';")" ]]; then
    db_client "" <<<"CREATE DATABASE $1;"
  fi
}

# table_count DATABASE [TABLE]: how many tables DATABASE holds (only TABLE, when given).
table_count() {
  local here=current_schema only=""
  [[ "$DB_ENGINE" != mysql ]] || here=database
  [[ -z "${2:-}" ]] || only=" AND upper(table_name) = '$2'"
  db_client "$1" <<<"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $here()$only;"
}

# API-M's own user: TLS only, all rights on the two databases and nothing else. Its password (hex) comes from
# its secret and reaches the client on stdin only. Re-applied on every boot, so the user always matches it.
ensure_app_user() {
  [[ -n "$DB_APP_SECRET_ARN" ]] || return 0
  local password
  password=$(secret_env APIM_DB_PASSWORD)
  if [[ "$DB_ENGINE" == mysql ]]; then
    db_client "" <<SQL
CREATE USER IF NOT EXISTS '$DB_APP_USER'@'%' IDENTIFIED BY '$password' REQUIRE SSL;
ALTER USER '$DB_APP_USER'@'%' IDENTIFIED BY '$password' REQUIRE SSL;
GRANT ALL PRIVILEGES ON \`$SHARED_DB\`.* TO '$DB_APP_USER'@'%';
GRANT ALL PRIVILEGES ON \`$APIM_DB\`.* TO '$DB_APP_USER'@'%';
SQL
  else
    db_client "" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_APP_USER') THEN CREATE ROLE $DB_APP_USER LOGIN; END IF;
END \$\$;
ALTER ROLE $DB_APP_USER PASSWORD '$password';
GRANT ALL PRIVILEGES ON DATABASE $SHARED_DB, $APIM_DB TO $DB_APP_USER;
SQL
    for database in "$SHARED_DB" "$APIM_DB"; do
      db_client "$database" <<SQL
GRANT ALL PRIVILEGES ON SCHEMA public TO $DB_APP_USER;
GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO $DB_APP_USER;
GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO $DB_APP_USER;
SQL
    done
  fi
  log "API-M's own database user $DB_APP_USER holds the rights on $SHARED_DB and $APIM_DB"
}

ensure_schema() {
  # The product's scripts run once for the pair: under a lock on the share, and only into empty databases.
  load_db_admin
  retry "$RETRY_TRIES" 2 db_client "" <<<"SELECT 1;" >/dev/null
  (
    flock --timeout 900 8
    local database script marker tables
    for entry in "$SHARED_DB dbscripts/$DB_SCRIPT $SHARED_DB_MARKER" "$APIM_DB dbscripts/apimgt/$DB_SCRIPT $APIM_DB_MARKER"; do
      read -r database script marker <<<"$entry"
      create_database "$database"
      tables=$(table_count "$database" "$marker")  # a failed query stops the boot here
      if [[ "$tables" == 0 ]]; then
        tables=$(table_count "$database")
        if [[ "$tables" != 0 ]]; then
          log "$database holds $tables tables but not $marker: an earlier run of $script stopped half-way. Nothing" \
            "of API-M can be in it yet: drop the database and boot again (the schema runs into empty databases only)"
          exit 1
        fi
        # The database RDS made (db_name) has the server's utf8mb4: only new tables follow this.
        [[ "$DB_ENGINE" != mysql ]] || db_client "" <<<"ALTER DATABASE \`$database\` $MYSQL_CHARSET;"
        db_client "$database" <"$APIM_HOME/$script"
        log "created the schema of $database from $script"
      fi
    done
    ensure_app_user
  ) 8>"$LOCK_DIR/.wso2am-schema.lock"
}
