# --- main: the boot step in order, and the commands ------------------------------------------------------
# The mode's part (efs.sh or rsync.sh) defines the steps that differ by content_sync: join_share,
# ensure_pair_secrets and start_content_sync here, follow_peer_key and share_reachable for the share watch.
boot() {
  trap say_if_boot_failed EXIT
  start_agent
  ensure_user
  install_product
  ensure_shared_folders
  join_share
  install_jdbc_driver
  ensure_pair_secrets
  write_secrets_env
  install_keystores
  [[ "$SYNC_ROLE" == worker ]] || ensure_schema
  install_config
  [[ -z "${RESTORE_GENERATION:-}" ]] || rebuild_after_restore
  bound_log_rotation
  write_runtime_env
  map_public_name
  start_content_sync
  # customize.sh's, where the settings have it (its node.env names the node's role): last before API-M starts.
  [[ -z "${NODE_ROLE:-}" ]] || customize
  start_service
  mkdir -p "$(dirname "$BOOT_DONE")"
  date -u +%FT%TZ >"$BOOT_DONE"
  log "done"
}

# This node onto the pair's keystore as its secret holds it now (scripts/rotate_keystore.py runs it on each node in
# turn, through the node shell): the secrets file, the stores and deployment.toml made again as a boot makes them,
# runtime.env's API keys' alias line replaced (its other lines, customize.sh's JAVA_OPTS, kept), API-M restarted.
rekey() {
  write_secrets_env
  install_keystores
  install_config
  sed -i "s/^APIM_API_KEY_ALIAS=.*/APIM_API_KEY_ALIAS=$API_KEY_ALIAS/" "$RUNTIME_ENV"
  systemctl stop "$SERVICE"
  systemctl start "$SERVICE"
  log "rekey: API-M restarted on the pair's keystore as its secret holds it (API keys' alias $API_KEY_ALIAS)"
  keystore_expiry || true
}

# Sourced (by the tests), it only defines the steps.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  case "${1:-boot}" in
    boot) boot ;;
    wait-key-manager) wait_for_key_manager ;;
    check-share) check_share ;;
    gate) gate ;;
    jmx) start_jmx ;;
    rekey) rekey ;;
    keystore-expiry) keystore_expiry ;;
    # a gateway node's only (gateway.sh)
    gateway-watch) gateway_watch ;;
    # with the secure vault only (vault.sh): the unit's ExecStartPre
    vault-password) vault_password ;;
    # rsync's only (an EFS node's script has no push: bash answers "command not found").
    push) push ;;
    *) log "usage: $0 [boot|wait-key-manager|check-share|gate|jmx|push|gateway-watch|rekey|keystore-expiry|merge-config SHIPPED PAIR]"; exit 2 ;;
  esac
fi
