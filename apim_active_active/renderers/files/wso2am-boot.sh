#!/bin/bash
# Boot step of a WSO2 API-M active-active node, run by cloud-init (runcmd) on first boot.
# Safe to run again (reboot, re-run by hand): every step checks before it acts.
#   wso2am-boot [boot]             the whole boot step
#   wso2am-boot wait-key-manager   only wait for an external Key Manager (the unit's ExecStartPre)
#   wso2am-boot check-share        stop API-M while its share is unreachable, start it again once it is back
#                                  (the share watch timer, every 15 seconds)
#   wso2am-boot push               content_sync = rsync, node 1: one push of the artifacts to node 2 (its timer)
#   wso2am-boot merge-config SHIPPED PAIR
#                                  the product's deployment.toml with the pair's merged over it, on stdout
#                                  (on its own: no node environment, no network)
# Parameters come from the node's env file, written by cloud-init next to this script.
set -euo pipefail

MERGE_CONFIG=${MERGE_CONFIG:-/usr/local/sbin/wso2am-merge-config}
if [[ "${BASH_SOURCE[0]}" == "$0" && "${1:-}" == merge-config ]]; then
  exec "$MERGE_CONFIG" "${@:2}"
fi

NODE_ENV=${NODE_ENV:-/etc/wso2am/node.env}
# shellcheck source=/dev/null
. "$NODE_ENV"
: "${APIM_HOME:?}" "${ARCHIVE_URL:?}" "${INSTALL_DIR:?}" "${OS_USER:?}" "${OS_UID:?}" "${CONTENT_SYNC:?}"
: "${SHARED_FOLDERS:?}" "${CONFIG_SOURCE:?}" "${JAVA_HOME:?}" "${HEAP_PERCENT:?}" "${SERVICE:?}"
: "${RUNTIME_ENV:?}" "${AWS_REGION:?}" "${START_SCRIPT:?}" "${SECRETS_FILE:?}" "${JDBC_DRIVER_URL:?}"
: "${DB_ENGINE:?}" "${DB_HOST:?}" "${DB_PORT:?}" "${APIM_DB:?}" "${SHARED_DB:?}" "${DB_SCRIPT:?}" "${DB_SECRET_ARN:?}"
: "${ADMIN_SECRET_ARN:?}" "${KEYSTORE_SECRET_ARN:?}" "${KEYSTORE_FILE:?}" "${KEYSTORE_ALIAS:?}" "${TRUSTSTORE_FILE:?}"
: "${CERT_NAME:?}" "${CERT_SAN:?}" "${SHARED_DB_MARKER:?}" "${APIM_DB_MARKER:?}" "${PUBLIC_NAME:?}"
: "${KEY_MANAGER_URL?}" "${KEY_MANAGER_WAIT_SECONDS:?}" "${KEY_MANAGER_CA?}" "${DB_APP_SECRET_ARN?}" "${DB_APP_USER:?}"
: "${SHARE_WATCH_TIMER:?}" "${KEYSTORE_VALIDITY_DAYS:?}" "${FIRST_NODE_URL?}" "${FIRST_START_WAIT_SECONDS:?}"
: "${ENCRYPTION_KEY_SECRET_ARN?}"
SYNC_ROLE=${SYNC_ROLE:-}
if [[ "$CONTENT_SYNC" == efs ]]; then
  : "${SHARE_ROOT:?}" "${EFS_ID:?}" "${EFS_DNS:?}" "${FSTAB_ENTRIES:?}"
  LOCK_DIR=$SHARE_ROOT  # both nodes see the locks
  SEED_LOCK="$SHARE_ROOT/.wso2am-seed.lock"
  SHARE_LABEL="the share $SHARE_ROOT"
else
  : "${SYNC_ROLE:?}" "${PEER_IP:?}" "${SYNC_USER:?}" "${SYNC_HOME:?}" "${SYNC_MARKER:?}"
  : "${SYNC_KEY_DIR:?}" "${SYNC_FORCED_COMMAND:?}" "${SYNC_WAIT_SECONDS:?}" "${SYNC_KEY_ARN:?}"
  : "${MANAGER_KEY_PARAMETER:?}" "${WORKER_HOST_KEY_PARAMETER:?}" "${PUSH_TIMER:?}" "${SYNC_EXCLUDES:?}"
  LOCK_DIR=/run/lock/wso2am  # only node 1 does the one-time work; node 2 waits for node 1's key
  SYNC_STATE_DIR=${SYNC_MARKER%/*}  # node 2's `state` module
  SHARE_LABEL="node 1's push ($SYNC_MARKER)"
fi
# Under /var/lib: a hold made before a reboot (e.g. node 2 waiting for its first push) must survive it.
STOPPED_BY_WATCH=${STOPPED_BY_WATCH:-/var/lib/wso2am/stopped-by-share-watch}
KEY_MANAGER_POLL_SECONDS=${KEY_MANAGER_POLL_SECONDS:-5}
STARTED_ONCE=${STARTED_ONCE:-/var/lib/wso2am/started-once}
RETRY_TRIES=${RETRY_TRIES:-10}
RETRY_MAX_DELAY=${RETRY_MAX_DELAY:-60}
SYNC_POLL_SECONDS=${SYNC_POLL_SECONDS:-5}
SYNC_SSH_PORT=${SYNC_SSH_PORT:-22}
SSH_HOST_KEY=${SSH_HOST_KEY:-/etc/ssh/ssh_host_ed25519_key.pub}
DIST_DIR="$APIM_HOME/.wso2am-dist"  # what the product itself has in each shared folder, to seed the share from
SECURITY="$APIM_HOME/repository/resources/security"

log() { echo "wso2am-boot: $*" >&2; }

# retry TRIES FIRST_DELAY COMMAND...: exponential back-off, capped at RETRY_MAX_DELAY seconds.
retry() {
  local tries=$1 delay=$2 attempt=1
  shift 2
  until "$@"; do
    if ((attempt >= tries)); then
      log "giving up after $attempt attempts: $*"
      return 1
    fi
    log "attempt $attempt failed, retrying in ${delay}s: $*"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2 > RETRY_MAX_DELAY ? RETRY_MAX_DELAY : delay * 2))
  done
}

ensure_user() {
  # A fixed uid/gid on both nodes, so ownership on the shared file system agrees.
  getent group "$OS_USER" >/dev/null || groupadd --system --gid "$OS_UID" "$OS_USER"
  getent passwd "$OS_USER" >/dev/null ||
    useradd --system --uid "$OS_UID" --gid "$OS_UID" --home-dir "$INSTALL_DIR" --no-create-home \
      --shell /sbin/nologin "$OS_USER"
}

# fetch URL FILE: from S3 with the instance role, or over HTTPS.
fetch() {
  case "$1" in
    s3://*) aws s3 cp --only-show-errors --region "$AWS_REGION" "$1" "$2" ;;
    https://*) curl --fail --silent --show-error --location --output "$2" "$1" ;;
    *) log "unsupported URL: $1"; return 1 ;;
  esac
}

install_product() {
  if [[ -x "$APIM_HOME/bin/$START_SCRIPT" ]]; then
    return 0
  fi
  local work
  work=$(mktemp -d)
  retry "$RETRY_TRIES" 2 fetch "$ARCHIVE_URL" "$work/product.zip"
  mkdir -p "$INSTALL_DIR"
  unzip -q "$work/product.zip" -d "$work/unpacked"
  # The pack's own deployment.toml, kept before anything can change it (every boot merges the pair's over it).
  cp -p "$work/unpacked/$(basename "$APIM_HOME")/repository/conf/deployment.toml"{,.shipped}
  # Nothing of API-M is for other users: the config mapper writes the values it resolves ($env{} secrets included)
  # into the files it generates.
  chmod -R o-rwx "$work/unpacked"
  mv "$work/unpacked/$(basename "$APIM_HOME")" "$APIM_HOME"
  rm -rf "$work"
  chown -R "$OS_USER:$OS_USER" "$APIM_HOME"
  log "installed $APIM_HOME"
}

ensure_shared_folders() {
  # A folder the product only creates once used (repository/tenants) is shared from the start, in both modes.
  local folder
  for folder in $SHARED_FOLDERS; do
    [[ -d "${folder#*=}" ]] || install -d -o "$OS_USER" -g "$OS_USER" "${folder#*=}"
  done
}

# --- content_sync = efs: the file system at SHARE_ROOT, each shared folder bound from it ---------------------
# copy_whole FOLDER COPY: all of it or nothing (through .<name>.part: a copy cut short is made again next time).
copy_whole() {
  local part
  part="$(dirname "$2")/.$(basename "$2").part"
  rm -rf "$part"
  cp -a "$1" "$part"
  chown -R "$OS_USER:$OS_USER" "$part"
  mv "$part" "$2"
}

keep_distribution_copies() {
  # The share hides what the product has in each shared folder once bound; keep a copy to seed from.
  local folder
  mkdir -p "$DIST_DIR"
  for folder in $SHARED_FOLDERS; do
    if [[ ! -d "$DIST_DIR/${folder%%=*}" ]] && ! mountpoint -q "${folder#*=}"; then
      copy_whole "${folder#*=}" "$DIST_DIR/${folder%%=*}"
    fi
  done
}

ensure_fstab() {
  # The file system, then each folder bound from it: one line per mount point, added once.
  local entry point
  while read -r entry; do
    read -r _ point _ <<<"$entry"
    if ! awk -v dir="$point" '$2 == dir { found = 1 } END { exit !found }' /etc/fstab; then
      echo "$entry" >>/etc/fstab
      log "added $point to /etc/fstab"
    fi
  done <"$FSTAB_ENTRIES"
}

mount_share() {
  if mountpoint -q "$SHARE_ROOT"; then
    return 0
  fi
  mkdir -p "$SHARE_ROOT"
  retry "$RETRY_TRIES" 2 getent hosts "$EFS_DNS" >/dev/null
  retry "$RETRY_TRIES" 2 mount "$SHARE_ROOT"
  log "mounted $EFS_ID at $SHARE_ROOT (TLS)"
}

adopt_earlier_layout() {
  # Shares made before the scope existed hold deployment/server itself at their root (marker .wso2am-seeded):
  # with scope server it moves into server/. (With artifacts its subfolders are already where they belong.)
  [[ -e "$SHARE_ROOT/.wso2am-seeded" && " $SHARED_FOLDERS" == *" server="* && ! -d "$SHARE_ROOT/server" ]] ||
    return 0
  mkdir -p "$SHARE_ROOT/.server.part"
  find "$SHARE_ROOT" -mindepth 1 -maxdepth 1 ! -name '.wso2am-*' ! -name '.*.part' ! -name tenants \
    -exec mv -t "$SHARE_ROOT/.server.part" {} +
  mv "$SHARE_ROOT/.server.part" "$SHARE_ROOT/server"
  log "moved the share's earlier layout (deployment/server at its root) into $SHARE_ROOT/server"
}

seed_share_once() {
  # Both nodes boot together: the lock on the share lets exactly one of them seed each folder, once. A folder
  # arrives whole or not at all; one already there (copied in by an operator, or the earlier layout's) is kept.
  (
    flock --timeout 600 9
    local folder name seeded=""
    adopt_earlier_layout
    for folder in $SHARED_FOLDERS; do
      name=${folder%%=*}
      [[ ! -e "$SHARE_ROOT/.wso2am-seeded-$name" ]] || continue
      if [[ ! -d "$SHARE_ROOT/$name" ]]; then
        copy_whole "$DIST_DIR/$name" "$SHARE_ROOT/$name"
        seeded+=" $name"
      fi
      date -u +%FT%TZ >"$SHARE_ROOT/.wso2am-seeded-$name"
    done
    [[ -z "$seeded" ]] || log "seeded the share from the distribution:$seeded"
  ) 9>"$SEED_LOCK"
}

bind_shared_folders() {
  local folder
  for folder in $SHARED_FOLDERS; do
    if ! mountpoint -q "${folder#*=}"; then
      mount "${folder#*=}"
      log "bound $SHARE_ROOT/${folder%%=*} at ${folder#*=}"
    fi
  done
}

install_jdbc_driver() {
  local jar
  jar="$APIM_HOME/repository/components/lib/$(basename "$JDBC_DRIVER_URL")"
  if [[ ! -s "$jar" ]]; then
    retry "$RETRY_TRIES" 2 fetch "$JDBC_DRIVER_URL" "$jar.part"
    mv "$jar.part" "$jar"
    chown "$OS_USER:$OS_USER" "$jar"
    log "installed the JDBC driver $(basename "$jar")"
  fi
}

# Secret values only ever pass through root-only files and pipes: never arguments, never the log.
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
secret_string() {
  aws secretsmanager get-secret-value --region "$AWS_REGION" --secret-id "$1" --query SecretString --output text
}
# secret_has_value ARN: 0 when it has a value, 1 when it has none yet; anything else (throttling, denied) aborts
# the boot rather than letting this node generate a second, different value.
secret_has_value() {
  local error
  if error=$(secret_string "$1" 2>&1 >/dev/null); then
    return 0
  elif [[ "$error" == *ResourceNotFoundException* ]]; then
    return 1
  fi
  log "cannot read $1: $error"
  exit 1
}
put_secret_file() {
  aws secretsmanager put-secret-value --region "$AWS_REGION" --secret-id "$1" --secret-string "file://$2" >/dev/null
}

generate_admin_secret() {
  local dir=$1
  printf '{"username": "admin", "password": "%s"}' "$(openssl rand -hex 16)" >"$dir/admin.json"
  put_secret_file "$ADMIN_SECRET_ARN" "$dir/admin.json"
  log "generated the API-M admin password into Secrets Manager"
}

generate_keystore_secret() {
  local dir=$1
  openssl rand -hex 16 >"$dir/store.pass"
  keytool -genkeypair -alias "$KEYSTORE_ALIAS" -keyalg RSA -keysize 2048 -validity "$KEYSTORE_VALIDITY_DAYS" \
    -dname "CN=$CERT_NAME" \
    -ext "SAN=$CERT_SAN" -keystore "$dir/keystore.jks" -storetype JKS \
    -storepass:file "$dir/store.pass" -keypass:file "$dir/store.pass" 2>/dev/null
  python3 - "$dir" >"$dir/keystore.json" <<'PY'
import base64, json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
print(json.dumps({"password": (folder / "store.pass").read_text().strip(),
                  "keystore": base64.b64encode((folder / "keystore.jks").read_bytes()).decode()}))
PY
  put_secret_file "$KEYSTORE_SECRET_ARN" "$dir/keystore.json"
  log "generated the keystore of the pair into Secrets Manager"
}

generate_encryption_key_secret() {
  local dir=$1
  printf '{"key": "%s"}' "$(openssl rand -hex 32)" >"$dir/encryption.json"
  put_secret_file "$ENCRYPTION_KEY_SECRET_ARN" "$dir/encryption.json"
  log "generated the internal encryption key of the pair into Secrets Manager"
}

generate_db_app_secret() {
  local dir=$1
  printf '{"username": "%s", "password": "%s"}' "$DB_APP_USER" "$(openssl rand -hex 24)" >"$dir/db-app.json"
  put_secret_file "$DB_APP_SECRET_ARN" "$dir/db-app.json"
  log "generated the password of API-M's own database user into Secrets Manager"
}

ensure_generated_secrets() {
  # Generated once for the pair: whichever node takes the lock first creates them; the other reads them.
  local dir
  dir=$(mktemp -d)
  (
    flock --timeout 600 7
    secret_has_value "$ADMIN_SECRET_ARN" || generate_admin_secret "$dir"
    secret_has_value "$KEYSTORE_SECRET_ARN" || generate_keystore_secret "$dir"
    [[ -z "$DB_APP_SECRET_ARN" ]] || secret_has_value "$DB_APP_SECRET_ARN" || generate_db_app_secret "$dir"
    [[ -z "$ENCRYPTION_KEY_SECRET_ARN" ]] || secret_has_value "$ENCRYPTION_KEY_SECRET_ARN" ||
      generate_encryption_key_secret "$dir"
  ) 7>"$LOCK_DIR/.wso2am-secrets.lock"
  rm -rf "$dir"
}

write_secrets_env() {
  # Root-only; systemd reads it before it drops to the API-M user. With RDS, API-M logs in as its own user
  # (a password nothing rotates); the master user, whose password RDS rotates, is only used at boot.
  local admin database keystore admin_password db_username db_password keystore_password encryption_key=""
  admin=$(retry "$RETRY_TRIES" 2 secret_string "$ADMIN_SECRET_ARN")
  database=$(retry "$RETRY_TRIES" 2 secret_string "${DB_APP_SECRET_ARN:-$DB_SECRET_ARN}")
  keystore=$(retry "$RETRY_TRIES" 2 secret_string "$KEYSTORE_SECRET_ARN")
  # Separate assignments, so a malformed secret stops the boot instead of writing an empty value.
  admin_password=$(json_field password <<<"$admin")
  db_username=$(json_field username <<<"$database")
  db_password=$(json_field password <<<"$database")
  keystore_password=$(json_field password <<<"$keystore")
  if [[ -n "$ENCRYPTION_KEY_SECRET_ARN" ]]; then
    encryption_key=$(retry "$RETRY_TRIES" 2 secret_string "$ENCRYPTION_KEY_SECRET_ARN")
    encryption_key=$(json_field key <<<"$encryption_key")
  fi
  (
    umask 077
    printf 'APIM_ADMIN_PASSWORD=%s\nAPIM_DB_USERNAME=%s\nAPIM_DB_PASSWORD=%s\nAPIM_KEYSTORE_PASSWORD=%s\n' \
      "$admin_password" "$db_username" "$db_password" "$keystore_password" >"$SECRETS_FILE.part"
    [[ -z "$encryption_key" ]] || printf 'APIM_ENCRYPTION_KEY=%s\n' "$encryption_key" >>"$SECRETS_FILE.part"
    mv "$SECRETS_FILE.part" "$SECRETS_FILE"
  )
}

secret_env() { awk -F= -v key="$1" '$1 == key { sub(/^[^=]*=/, ""); print; exit }' "$SECRETS_FILE"; }

install_keystores() {
  # The keystore from the secret; the truststore: the product's own, with the pair's certificate in place of the
  # product's default one under both aliases it ships it under: wso2carbon, and gateway_certificate_alias, which the
  # gateway checks API keys and internal keys against (signed with the pair's key).
  local dir alias
  dir=$(mktemp -d)
  (
    umask 077
    secret_env APIM_KEYSTORE_PASSWORD >"$dir/store.pass"
    secret_string "$KEYSTORE_SECRET_ARN" | json_field keystore | base64 -d >"$dir/$KEYSTORE_FILE"
    [[ -e "$SECURITY/$TRUSTSTORE_FILE.dist" ]] || cp -p "$SECURITY/$TRUSTSTORE_FILE" "$SECURITY/$TRUSTSTORE_FILE.dist"
    cp "$SECURITY/$TRUSTSTORE_FILE.dist" "$dir/$TRUSTSTORE_FILE"
    # wso2carbon is the published default password of the product's shipped truststore.
    keytool -storepasswd -keystore "$dir/$TRUSTSTORE_FILE" -storepass wso2carbon -new:file "$dir/store.pass"
    keytool -exportcert -alias "$KEYSTORE_ALIAS" -keystore "$dir/$KEYSTORE_FILE" -storepass:file "$dir/store.pass" \
      -file "$dir/pair.crt" 2>/dev/null
    for alias in "$KEYSTORE_ALIAS" gateway_certificate_alias; do
      keytool -delete -alias "$alias" -keystore "$dir/$TRUSTSTORE_FILE" -storepass:file "$dir/store.pass" \
        >/dev/null 2>&1 || true
      keytool -importcert -noprompt -alias "$alias" -file "$dir/pair.crt" \
        -keystore "$dir/$TRUSTSTORE_FILE" -storepass:file "$dir/store.pass" 2>/dev/null
    done
    if [[ -n "$KEY_MANAGER_CA" ]]; then
      keytool -importcert -noprompt -alias key-manager-ca -file "$KEY_MANAGER_CA" \
        -keystore "$dir/$TRUSTSTORE_FILE" -storepass:file "$dir/store.pass" 2>/dev/null
    fi
  )
  install -m 0640 -o root -g "$OS_USER" "$dir/$KEYSTORE_FILE" "$SECURITY/$KEYSTORE_FILE"
  install -m 0640 -o root -g "$OS_USER" "$dir/$TRUSTSTORE_FILE" "$SECURITY/$TRUSTSTORE_FILE"
  rm -rf "$dir"
}

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

install_config() {
  # The product's own file with the pair's settings merged over it; the shipped file, kept beside it at install,
  # is what every boot merges from again.
  local conf="$APIM_HOME/repository/conf" merged
  if [[ ! -e "$conf/deployment.toml.shipped" ]]; then
    log "not starting API-M: $conf/deployment.toml.shipped (the pack's own, kept at install) is missing: replace the node"
    return 1
  fi
  merged=$(mktemp)
  if ! "$MERGE_CONFIG" "$conf/deployment.toml.shipped" "$CONFIG_SOURCE" >"$merged"; then
    rm -f "$merged"
    log "not starting API-M: no deployment.toml from $conf/deployment.toml.shipped and $CONFIG_SOURCE"
    return 1
  fi
  install -m 0640 -o root -g "$OS_USER" "$merged" "$conf/deployment.toml"
  rm -f "$merged"
  log "installed $conf/deployment.toml: the product's, with the pair's settings merged over it"
}

write_runtime_env() {
  local mem_kib heap_mib
  mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
  heap_mib=$((mem_kib * HEAP_PERCENT / 100 / 1024))
  umask 022
  printf 'JAVA_HOME=%s\nJVM_MEM_OPTS=-Xms%sm -Xmx%sm\n' "$JAVA_HOME" "$heap_mib" "$heap_mib" >"$RUNTIME_ENV"
}

map_public_name() {
  # The node's own calls to its public name (e.g. the JWKS endpoint at https://<name>:9443) stay on the node.
  if ! awk -v name="$PUBLIC_NAME" '$1 == "127.0.0.1" { for (i = 2; i <= NF; i++) if ($i == name) found = 1 }
      END { exit !found }' /etc/hosts; then
    echo "127.0.0.1 $PUBLIC_NAME" >>/etc/hosts
    log "mapped $PUBLIC_NAME to this node in /etc/hosts"
  fi
}

key_manager_answers() {
  # Any HTTP answer below 500 (a login page, a 401) means it is up; 5xx is a server still starting.
  local code
  code=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 10 \
    ${KEY_MANAGER_CA:+--cacert "$KEY_MANAGER_CA"} "$KEY_MANAGER_URL/services/") || return 1
  [[ "$code" =~ ^[234][0-9][0-9]$ ]]
}

first_node_answers() {
  # Node 1 runs with the pair's certificate; only "is it up" is asked here (nothing is sent).
  [[ "$(curl --silent --insecure --output /dev/null --write-out '%{http_code}' --max-time 10 "$FIRST_NODE_URL")" == 200 ]]
}

# wait_until SECONDS WHAT OTHERWISE COMMAND...: poll COMMAND until it succeeds (0) or SECONDS have passed (1, saying
# what happens OTHERWISE), logging the wait.
wait_until() {
  local deadline=$((SECONDS + $1)) seconds=$1 what=$2 otherwise=$3
  shift 3
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "$what did not answer within ${seconds}s: $otherwise"
      return 1
    fi
    log "waiting for $what"
    sleep "$KEY_MANAGER_POLL_SECONDS"
  done
  log "$what answers"
}

wait_for_first_node() {
  # Node 2's first start: node 1 makes what an empty database needs on its first start (default policies,
  # registry entries); both doing it at once races. Bounded: node 1 may be gone for good. Later starts do not wait.
  [[ -n "$FIRST_NODE_URL" ]] || return 0
  wait_until "$FIRST_START_WAIT_SECONDS" "node 1's API-M ($FIRST_NODE_URL)" "starting API-M anyway" \
    first_node_answers || true
}

wait_for_key_manager() {
  # The seed: with WSO2 Identity Server as Key Manager, it must be up before API-M starts.
  [[ -n "$KEY_MANAGER_URL" ]] || return 0
  wait_until "$KEY_MANAGER_WAIT_SECONDS" "the key manager $KEY_MANAGER_URL" "not starting API-M" key_manager_answers
}

share_reachable() {
  if [[ "$CONTENT_SYNC" == rsync ]]; then
    test -e "$SYNC_MARKER"  # node 2: the first complete push from node 1 has landed
    return
  fi
  # A hung NFS server blocks stat forever: every look at the share is bounded.
  local folder
  timeout 10 mountpoint -q "$SHARE_ROOT" || return 1
  for folder in $SHARED_FOLDERS; do
    timeout 10 mountpoint -q "${folder#*=}" || return 1
    timeout 10 test -e "$SHARE_ROOT/.wso2am-seeded-${folder%%=*}" || return 1
  done
}

# hold_for_share WHY: leave API-M stopped, for the watch to start once the share is there.
hold_for_share() {
  mkdir -p "$(dirname "$STOPPED_BY_WATCH")"
  date -u +%FT%TZ >"$STOPPED_BY_WATCH"
  log "$1"
}

check_share() {
  # A replaced node 1 has a new key: node 2 follows the parameter (a failed look keeps the key it has).
  [[ "$SYNC_ROLE" != worker ]] || refresh_manager_key || true
  # Carbon undeploys the artifacts it no longer sees: never let it run without its share.
  if ! share_reachable; then
    if systemctl is-active --quiet "$SERVICE"; then
      # The hold first: a watch stopped by its own timeout while Carbon shuts down still gets it started again.
      hold_for_share "$SHARE_LABEL is unreachable: stopping API-M so that it cannot undeploy what it no longer sees"
      systemctl stop "$SERVICE"
    fi
    return 0
  fi
  # Only a stop made here is undone here: an operator's stop stays.
  if [[ -e "$STOPPED_BY_WATCH" ]]; then
    rm -f "$STOPPED_BY_WATCH"
    systemctl start "$SERVICE"
    log "$SHARE_LABEL is back: started API-M again"
  fi
}

# --- content_sync = rsync: node 1 pushes to node 2 over SSH; only public keys travel, through SSM ----------
ssm_get() {
  timeout 30 aws ssm get-parameter --region "$AWS_REGION" --name "$1" --with-decryption \
    --query Parameter.Value --output text
}
ssm_put_file() {
  timeout 30 aws ssm put-parameter --region "$AWS_REGION" --name "$1" --type SecureString \
    --key-id "$SYNC_KEY_ARN" --overwrite --value "file://$2" >/dev/null
}

# peer_key PARAMETER: "ssh-ed25519 <blob>" from the key in it, nothing else (no comment, no second line: the
# value ends up in authorized_keys); fails while it holds Terraform's placeholder or anything else.
peer_key() {
  local value
  value=$(ssm_get "$1" 2>/dev/null) || return 1
  [[ "$value" != *$'\n'* && "$value" =~ ^ssh-ed25519\ ([A-Za-z0-9+/]+={0,2})(\ [A-Za-z0-9@._-]+)?$ ]] || return 1
  printf 'ssh-ed25519 %s\n' "${BASH_REMATCH[1]}"
}

# wait_for_peer_key PARAMETER: bounded by SYNC_WAIT_SECONDS.
wait_for_peer_key() {
  local deadline=$((SECONDS + SYNC_WAIT_SECONDS))
  until peer_key "$1"; do
    if ((SECONDS >= deadline)); then
      log "no key in $1 after ${SYNC_WAIT_SECONDS}s: is the peer node up?"
      return 1
    fi
    sleep "$SYNC_POLL_SECONDS"
  done
}

# Node 2: a dedicated user that owns the synced folders (API-M's group may read and write them).
prepare_receiver() {
  local folder path
  getent passwd "$SYNC_USER" >/dev/null ||
    useradd --system --gid "$OS_USER" --home-dir "$SYNC_HOME" --no-create-home --shell /bin/sh \
      --password '*' "$SYNC_USER"
  install -d -m 0755 -o root -g root "$SYNC_HOME" "$SYNC_HOME/.ssh"
  install -d -m 2770 -o "$SYNC_USER" -g "$OS_USER" "$SYNC_STATE_DIR"
  for folder in $SHARED_FOLDERS; do
    path=${folder#*=}
    mkdir -p "$path"
    chown -R "$SYNC_USER:$OS_USER" "$path"
    chmod -R ug+rwX,o-w "$path"
    find "$path" -type d -exec chmod g+s {} +
  done
  retry "$RETRY_TRIES" 2 test -s "$SSH_HOST_KEY"
  retry "$RETRY_TRIES" 2 ssm_put_file "$WORKER_HOST_KEY_PARAMETER" "$SSH_HOST_KEY"
  log "published this node's SSH host key to $WORKER_HOST_KEY_PARAMETER"
}

# write_manager_key KEY: the one authorized key, allowed only the rsync daemon, only from node 1.
write_manager_key() {
  local file="$SYNC_HOME/.ssh/authorized_keys"
  # && chains: called where set -e does not hold (check-share's `|| true`).
  printf 'command="%s",restrict,from="%s" %s\n' "$SYNC_FORCED_COMMAND" "$PEER_IP" "$1" >"$file.part" &&
    chmod 0644 "$file.part" && mv "$file.part" "$file"
}

authorize_manager() {
  local key
  key=$(wait_for_peer_key "$MANAGER_KEY_PARAMETER")
  write_manager_key "$key"
  log "authorized node 1's key for pushes into $SHARED_FOLDERS"
}

refresh_manager_key() {
  local key file="$SYNC_HOME/.ssh/authorized_keys"
  key=$(peer_key "$MANAGER_KEY_PARAMETER") || return 1
  if ! grep -qF " $key" "$file" 2>/dev/null; then
    write_manager_key "$key" || return 1
    log "node 1's key changed in $MANAGER_KEY_PARAMETER: authorized the new one"
  fi
}

# Node 1: pins node 2's host key as published (never trust on first use, never skip the check).
pin_worker_host_key() {
  local type blob host=$PEER_IP
  read -r type blob _ <<<"$1"
  [[ "$SYNC_SSH_PORT" == 22 ]] || host="[$PEER_IP]:$SYNC_SSH_PORT"
  printf '%s %s %s\n' "$host" "$type" "$blob" >"$SYNC_KEY_DIR/known_hosts.part"
  mv "$SYNC_KEY_DIR/known_hosts.part" "$SYNC_KEY_DIR/known_hosts"
}

prepare_sender() {
  local key
  install -d -m 0700 -o root -g root "$SYNC_KEY_DIR"
  if [[ ! -s "$SYNC_KEY_DIR/id_ed25519" ]]; then
    ssh-keygen -q -t ed25519 -N "" -C "wso2am-rsync-push" -f "$SYNC_KEY_DIR/id_ed25519"
    log "created this node's push key (it never leaves $SYNC_KEY_DIR)"
  fi
  # Node 1 publishes and serves whatever node 2 does: without node 2's host key yet, each push looks again.
  if key=$(wait_for_peer_key "$WORKER_HOST_KEY_PARAMETER"); then
    pin_worker_host_key "$key"
  else
    log "no host key from node 2 yet: the pushes start once it publishes one"
  fi
  retry "$RETRY_TRIES" 2 ssm_put_file "$MANAGER_KEY_PARAMETER" "$SYNC_KEY_DIR/id_ed25519.pub"
  log "published this node's public push key to $MANAGER_KEY_PARAMETER"
  systemctl enable --now "$PUSH_TIMER"
}

push() {
  local ssh folder name key code excludes started=$SECONDS
  exec 6>"${PUSH_LOCK:-/run/lock/wso2am-rsync-push.lock}"
  if ! flock --nonblock 6; then
    log "the previous push is still running: skipped"
    return 0
  fi
  # A replaced node 2 has a new host key: follow the parameter (a failed look keeps the pinned key).
  if key=$(peer_key "$WORKER_HOST_KEY_PARAMETER"); then
    pin_worker_host_key "$key"
  fi
  ssh="ssh -i $SYNC_KEY_DIR/id_ed25519 -p $SYNC_SSH_PORT -o BatchMode=yes -o IdentitiesOnly=yes"
  ssh+=" -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$SYNC_KEY_DIR/known_hosts"
  ssh+=" -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10"
  # Node 2's daemon refuses these (exit 23): never send them. (read -a: no glob expansion of the patterns)
  read -r -a excludes <<<"$SYNC_EXCLUDES"
  for folder in $SHARED_FOLDERS; do
    name=${folder%%=*}
    code=0
    rsync -a --delete --timeout=120 --itemize-changes "${excludes[@]/#/--exclude=}" -e "$ssh" \
      "${folder#*=}/" "$SYNC_USER@$PEER_IP::$name/" || code=$?
    # 24: files vanished while being sent (Carbon at work); the next push takes them.
    if ((code != 0 && code != 24)); then
      log "push of $name to $PEER_IP failed (rsync exit $code)"
      return 1
    fi
  done
  date -u +%FT%TZ >"$SYNC_KEY_DIR/synced"
  rsync --timeout=60 -e "$ssh" "$SYNC_KEY_DIR/synced" "$SYNC_USER@$PEER_IP::state/${SYNC_MARKER##*/}"
  log "pushed $SHARED_FOLDERS to $PEER_IP in $((SECONDS - started))s"
}

start_service() {
  systemctl daemon-reload
  [[ "$SYNC_ROLE" == manager ]] || systemctl enable --now "$SHARE_WATCH_TIMER"
  systemctl enable "$SERVICE"
  if [[ ! -e "$STARTED_ONCE" ]]; then
    wait_for_first_node
    mkdir -p "$(dirname "$STARTED_ONCE")"
    date -u +%FT%TZ >"$STARTED_ONCE"
  fi
  if [[ "$SYNC_ROLE" == worker ]] && ! share_reachable; then
    hold_for_share "API-M starts once the first push from node 1 has landed ($SYNC_MARKER)"
    return 0
  fi
  # With an external Key Manager the unit itself waits for it on every start (ExecStartPre) and keeps
  # retrying (Restart=on-failure): a Key Manager that comes up late still gets this node started.
  if ! wait_for_key_manager; then
    systemctl start --no-block "$SERVICE"
    log "API-M starts once the key manager answers"
    return 0
  fi
  systemctl start "$SERVICE"
}

boot() {
  ensure_user
  install_product
  ensure_shared_folders
  if [[ "$CONTENT_SYNC" == efs ]]; then
    keep_distribution_copies
    ensure_fstab
    mount_share
    seed_share_once
    bind_shared_folders
  fi
  install_jdbc_driver
  if [[ "$SYNC_ROLE" == worker ]]; then
    prepare_receiver
    authorize_manager  # node 1 publishes its key once the secrets and the schema exist
  else
    mkdir -p "$LOCK_DIR"
    ensure_generated_secrets
  fi
  write_secrets_env
  install_keystores
  [[ "$SYNC_ROLE" == worker ]] || ensure_schema
  install_config
  write_runtime_env
  map_public_name
  [[ "$SYNC_ROLE" != manager ]] || prepare_sender
  start_service
  log "done"
}

# Sourced (by the tests), it only defines the steps.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  case "${1:-boot}" in
    boot) boot ;;
    wait-key-manager) wait_for_key_manager ;;
    check-share) check_share ;;
    push) push ;;
    *) log "usage: $0 [boot|wait-key-manager|check-share|push|merge-config SHIPPED PAIR]"; exit 2 ;;
  esac
fi
