# --- the pair's secrets: generated once, written for systemd, the keystore and truststore made from them ----
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
