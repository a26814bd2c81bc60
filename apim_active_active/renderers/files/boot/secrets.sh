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
    -ext "SAN=$CERT_SAN" -keystore "$dir/$KEYSTORE_FILE" -storetype JKS \
    -storepass:file "$dir/store.pass" -keypass:file "$dir/store.pass" 2>/dev/null
  put_keystore_secret "$dir"
  log "generated the keystore of the pair into Secrets Manager"
}

# put_keystore_secret DIR: DIR/KEYSTORE_FILE and its password (DIR/store.pass) into the pair's keystore secret.
put_keystore_secret() {
  python3 - "$1" "$KEYSTORE_FILE" >"$1/keystore.json" <<'PY'
import base64, json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
print(json.dumps({"password": (folder / "store.pass").read_text().strip(),
                  "keystore": base64.b64encode((folder / sys.argv[2]).read_bytes()).decode()}))
PY
  put_secret_file "$KEYSTORE_SECRET_ARN" "$1/keystore.json"
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
    # keystore.source other than generated: keystore-brought.sh's (its node.env names where the keystore comes from).
    secret_has_value "$KEYSTORE_SECRET_ARN" ||
      if [[ -n "${KEYSTORE_SOURCE_ARN:-}" ]]; then bring_keystore_secret "$dir"; else generate_keystore_secret "$dir"; fi
    [[ -z "$DB_APP_SECRET_ARN" ]] || secret_has_value "$DB_APP_SECRET_ARN" || generate_db_app_secret "$dir"
    [[ -z "$ENCRYPTION_KEY_SECRET_ARN" ]] || secret_has_value "$ENCRYPTION_KEY_SECRET_ARN" ||
      generate_encryption_key_secret "$dir"
  ) 7>"$LOCK_DIR/.wso2am-secrets.lock"
  rm -rf "$dir"
}

write_secrets_env() {
  # With the secure vault, none (one left from before the vault was turned on goes): vault.sh.
  if [[ -n "$SECURE_VAULT" ]]; then
    rm -f "$SECRETS_FILE"
    return 0
  fi
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

secret_env() {
  if [[ -n "$SECURE_VAULT" ]]; then vault_value "$1"; return; fi
  awk -F= -v key="$1" '$1 == key { sub(/^[^=]*=/, ""); print; exit }' "$SECRETS_FILE"
}

# The pair's keystore, checked at every boot before API-M reads it (and a brought one before it is put): a failed check
# stops the boot with one line naming what is wrong and where the keystore comes from (KEYSTORE_NAMED, when brought).
keystore_refused() { log "keystore: $1 (${KEYSTORE_NAMED:-the keystore secret of the pair $KEYSTORE_SECRET_ARN})"; return 1; }

# check_keystore DIR [installed]: DIR/KEYSTORE_FILE opens with the password in DIR/store.pass and holds a private key
# under KEYSTORE_ALIAS whose certificate is valid today and signed by the next one of its chain, and so on (the chain's
# last one trusted as it is: a lone certificate passes, self-signed as generated). The chain left in DIR/chain.pem; the
# days left logged. The pair's installed keystore (installed) is not refused for its dates, only said to be out of them:
# a node replaced or launched then must still boot (the expiry alarm has warned; scripts/rotate_keystore.py mends it).
check_keystore() {
  local listed dates verdict when=()
  [[ -z "${2:-}" ]] || when=(-no_check_time)
  listed=$(keytool -list -rfc -alias "$KEYSTORE_ALIAS" -keystore "$1/$KEYSTORE_FILE" -storepass:file "$1/store.pass" 2>&1) ||
    keystore_refused "cannot read $KEYSTORE_ALIAS with its password: $(grep -m1 error <<<"$listed")" || return
  [[ "$listed" == *"Entry type: PrivateKeyEntry"* ]] || keystore_refused "no private key under $KEYSTORE_ALIAS" || return
  echo "$listed" >"$1/chain.pem"
  sed '/BEGIN CERT/h;//!H;$!d;x' "$1/chain.pem" >"$1/last.pem"
  dates=$(openssl x509 -in "$1/chain.pem" -noout -dates)
  verdict=$(openssl verify "${when[@]}" -partial_chain -CAfile "$1/last.pem" -untrusted "$1/chain.pem" "$1/chain.pem" 2>&1) ||
    keystore_refused "the certificate under $KEYSTORE_ALIAS (${dates//$'\n'/, }): $(grep -m1 'depth lookup' <<<"$verdict")" || return
  log "keystore: $KEYSTORE_ALIAS valid until ${dates#*notAfter=}, $((($(date -d "${dates#*notAfter=}" +%s) - $(date +%s)) / 86400)) days left"
}

install_keystores() {
  # The keystore from the secret; the truststore: the product's own, its default certificate (under wso2carbon and
  # gateway_certificate_alias) replaced by the pair's: the signing certificate under wso2carbon, and each of the
  # secret's "trusted" certificates under its alias (the kid the gateway checks API keys and internal keys against),
  # by default the signing certificate under gateway_certificate_alias (docs/keystore.md, the secret's format).
  # API_KEY_ALIAS: the alias API keys and internal keys are signed under (write_runtime_env).
  local dir alias
  dir=$(mktemp -d)
  (
    umask 077
    secret_env APIM_KEYSTORE_PASSWORD >"$dir/store.pass"
    secret_string "$KEYSTORE_SECRET_ARN" >"$dir/secret.json"
    json_field keystore <"$dir/secret.json" | base64 -d >"$dir/$KEYSTORE_FILE"
    check_keystore "$dir" installed
    [[ -e "$SECURITY/$TRUSTSTORE_FILE.dist" ]] || cp -p "$SECURITY/$TRUSTSTORE_FILE" "$SECURITY/$TRUSTSTORE_FILE.dist"
    cp "$SECURITY/$TRUSTSTORE_FILE.dist" "$dir/$TRUSTSTORE_FILE"
    # wso2carbon is the published default password of the product's shipped truststore.
    keytool -storepasswd -keystore "$dir/$TRUSTSTORE_FILE" -storepass wso2carbon -new:file "$dir/store.pass"
    mkdir "$dir/trust"
    keytool -exportcert -rfc -alias "$KEYSTORE_ALIAS" -keystore "$dir/$KEYSTORE_FILE" -storepass:file "$dir/store.pass" \
      -file "$dir/trust/$KEYSTORE_ALIAS" 2>/dev/null
    python3 - "$dir" <<'PY'
import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
stored = json.loads((folder / "secret.json").read_text())
for alias, pem in (stored.get("trusted") or {"gateway_certificate_alias": (folder / "trust/wso2carbon").read_text()}).items():
    (folder / "trust" / alias).write_text(pem)
(folder / "alias").write_text(stored.get("api_key_alias", "gateway_certificate_alias"))
PY
    for alias in gateway_certificate_alias "$dir"/trust/*; do
      alias=${alias##*/}
      keytool -delete -alias "$alias" -keystore "$dir/$TRUSTSTORE_FILE" -storepass:file "$dir/store.pass" \
        >/dev/null 2>&1 || true
      [[ ! -e "$dir/trust/$alias" ]] || keytool -importcert -noprompt -alias "$alias" -file "$dir/trust/$alias" \
        -keystore "$dir/$TRUSTSTORE_FILE" -storepass:file "$dir/store.pass" 2>/dev/null
    done
    if [[ -n "$KEY_MANAGER_CA" ]]; then
      keytool -importcert -noprompt -alias key-manager-ca -file "$KEY_MANAGER_CA" \
        -keystore "$dir/$TRUSTSTORE_FILE" -storepass:file "$dir/store.pass" 2>/dev/null
    fi
  )
  API_KEY_ALIAS=$(<"$dir/alias")
  install -m 0640 -o root -g "$OS_USER" "$dir/$KEYSTORE_FILE" "$SECURITY/$KEYSTORE_FILE"
  install -m 0640 -o root -g "$OS_USER" "$dir/$TRUSTSTORE_FILE" "$SECURITY/$TRUSTSTORE_FILE"
  rm -rf "$dir"
}
