# --- secure vault (secure_vault.enabled: SECURE_VAULT=1): no secrets file, deployment.toml sealed ---------------
# WSO2's cipher tool (bin/ciphertool.sh -Dconfigure) encrypts each `alias = "[value]"` of deployment.toml's [secrets]
# in place with the primary keystore's certificate; API-M resolves `$secret{alias}` with the keystore's key, opened with
# the password it reads from <API-M home>/password-tmp at start and then deletes (carbon-kernel
# DefaultSecretCallbackHandler). Sources and the tool's traps: docs/secure-vault.md.

# vault_value NAME: a secret value by its secrets-file name (APIM_...), read from Secrets Manager where it is needed
# (secret_env's way with the vault on: no secrets file).
vault_value() {
  local value
  case $1 in
    APIM_ADMIN_PASSWORD) set -- "$ADMIN_SECRET_ARN" password ;;
    APIM_DB_USERNAME) set -- "${DB_APP_SECRET_ARN:-$DB_SECRET_ARN}" username ;;
    APIM_DB_PASSWORD) set -- "${DB_APP_SECRET_ARN:-$DB_SECRET_ARN}" password ;;
    APIM_KEYSTORE_PASSWORD) set -- "$KEYSTORE_SECRET_ARN" password ;;
    APIM_ENCRYPTION_KEY) set -- "$ENCRYPTION_KEY_SECRET_ARN" key ;;
  esac
  value=$(retry "$RETRY_TRIES" 2 secret_string "$1") || { log "cannot read $1"; return 1; }
  json_field "$2" <<<"$value"
}

# The aliases deployment_toml.SECRETS names, each with its value's name here.
VAULT_ALIASES="admin_password=APIM_ADMIN_PASSWORD db_username=APIM_DB_USERNAME db_password=APIM_DB_PASSWORD"
VAULT_ALIASES+=" keystore_password=APIM_KEYSTORE_PASSWORD${ENCRYPTION_KEY_SECRET_ARN:+ encryption_key=APIM_ENCRYPTION_KEY}"

# seal_secrets CONF: the product's deployment.toml (root-only until sealed): [secrets] appended last (the cipher tool of
# 4.2-4.7 takes every line after [secrets] for a secret: wso2/api-manager#4561), the tool run, nothing left in clear.
# Any failure removes CONF (a later boot step merges it anew): no half-sealed file stays.
seal_secrets() {
  local conf=$1 pair value dir code=0
  dir=$(mktemp -d)
  (
    umask 077
    printf '\n[secrets]\n' >"$dir/secrets"
    for pair in $VAULT_ALIASES; do
      value=$(secret_env "${pair#*=}")
      # The tool takes what is between the brackets as it stands: no TOML escapes.
      if [[ -z "$value" || "$value" == *[]\"\\[]* || "$value" == *[[:cntrl:]]* ]]; then
        log "not starting API-M: the secret behind ${pair%%=*} is empty or holds a character the cipher tool cannot take"
        exit 1
      fi
      printf '%s = "[%s]"\n' "${pair%%=*}" "$value" >>"$dir/secrets"
    done
  ) || code=$?
  if ((code == 0)); then
    cat "$dir/secrets" >>"$conf"
    # The password as the tool reads it (the system property keystore.password) through JAVA_TOOL_OPTIONS, which every
    # JVM reads (Java 8's too; JDK_JAVA_OPTIONS is 9+): in no command line; the JVM's "Picked up" note stays in the
    # root-only folder, out of the log.
    JAVA_TOOL_OPTIONS="-Dkeystore.password=$(secret_env APIM_KEYSTORE_PASSWORD)" JAVA_HOME=$JAVA_HOME \
      "$APIM_HOME/bin/ciphertool.sh" -Dconfigure >"$dir/out" 2>&1 || code=$?
    # What is left in brackets in [secrets] (the file's last table) was not encrypted.
    if ((code != 0)) || sed '1,/^\[secrets\]$/d' "$conf" | grep -q '= *"\['; then
      log "not starting API-M: the cipher tool did not seal deployment.toml (exit $code): $(grep -iv 'JAVA_TOOL_OPTIONS\|password' "$dir/out" | tail -n 3 | tr '\n' ' ')"
      code=1
    fi
  fi
  rm -rf "$dir"
  if ((code != 0)); then
    rm -f "$conf"
    return 1
  fi
  chown root:"$OS_USER" "$APIM_HOME/repository/conf/security/secret-conf.properties"
  chmod 0640 "$APIM_HOME/repository/conf/security/secret-conf.properties"
  log "sealed deployment.toml: its secrets encrypted by the cipher tool with the pair's keystore"
}

# The unit's ExecStartPre (as root) at every start: the keystore password where API-M reads it once and deletes it;
# the unit's ExecStopPost removes one a failed start left.
vault_password() {
  (
    umask 077
    secret_env APIM_KEYSTORE_PASSWORD >"$APIM_HOME/password-tmp.part"
  ) || { log "not starting API-M: no keystore password for it ($KEYSTORE_SECRET_ARN)"; rm -f "$APIM_HOME/password-tmp.part"; return 1; }
  chown "$OS_USER:$OS_USER" "$APIM_HOME/password-tmp.part"
  mv "$APIM_HOME/password-tmp.part" "$APIM_HOME/password-tmp"
}
