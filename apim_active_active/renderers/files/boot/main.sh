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
  start_service
  mkdir -p "$(dirname "$BOOT_DONE")"
  date -u +%FT%TZ >"$BOOT_DONE"
  log "done"
}

# Sourced (by the tests), it only defines the steps.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  case "${1:-boot}" in
    boot) boot ;;
    wait-key-manager) wait_for_key_manager ;;
    check-share) check_share ;;
    gate) gate ;;
    jmx) start_jmx ;;
    # a gateway node's only (gateway.sh)
    gateway-watch) gateway_watch ;;
    # rsync's only (an EFS node's script has no push: bash answers "command not found").
    push) push ;;
    *) log "usage: $0 [boot|wait-key-manager|check-share|gate|jmx|push|gateway-watch|merge-config SHIPPED PAIR]"; exit 2 ;;
  esac
fi
