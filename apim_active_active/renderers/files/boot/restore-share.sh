# --- a restored environment's share (content_sync = efs) --------------------------------------------------------------
# Shipped only to a restored EFS environment's nodes (rsync has no share to restore: its part would only weigh on the
# user data). scripts/restore.py fills the share after the deploy: AWS Backup puts the recovery point into this file
# system under aws-backup-restore_<time>/, then restore.py sets RESTORE_SHARE_PARAMETER to "restored" (empty: no share
# restored, the share is seeded as a new one's).
: "${RESTORE_SHARE_PARAMETER?}" "${RESTORE_WAIT_SECONDS:?}"
RESTORE_POLL_SECONDS=${RESTORE_POLL_SECONDS:-30}

adopt_restored_share() {
  # Before seeding (an empty share would be seeded from the distribution): wait for the restore ("failed": stop
  # waiting), then copy what it put under aws-backup-restore_*/ up to the share's root, once, under the seed lock
  # (a copy cut short is finished by the next run; the locks stay ours: the other node may hold them open).
  [[ -n "$RESTORE_SHARE_PARAMETER" && ! -e "$SHARE_ROOT/.wso2am-restored-$RESTORE_GENERATION" ]] || return 0
  local deadline=$((SECONDS + RESTORE_WAIT_SECONDS)) state
  while :; do
    state=$(timeout 30 aws ssm get-parameter --region "$AWS_REGION" --name "$RESTORE_SHARE_PARAMETER" \
      --with-decryption --query Parameter.Value --output text 2>&1) || state="unreadable: ${state##*$'\n'}"
    [[ "$state" != restored ]] || break
    if [[ "$state" == failed ]] || ((SECONDS >= deadline)); then
      log "the share's restore did not finish within ${RESTORE_WAIT_SECONDS}s ($RESTORE_SHARE_PARAMETER: $state): not" \
        "seeding an empty share; once scripts/restore.py --resume has restored it, run wso2am-boot again"
      return 1
    fi
    log "waiting for the share's restore ($RESTORE_SHARE_PARAMETER: $state)"
    sleep "$RESTORE_POLL_SECONDS"
  done
  (
    flock --timeout 600 9
    [[ ! -e "$SHARE_ROOT/.wso2am-restored-$RESTORE_GENERATION" ]] || exit 0
    local restored=("$SHARE_ROOT"/aws-backup-restore_*)
    if [[ ${#restored[@]} -ne 1 || ! -d "${restored[0]}" ]]; then
      log "expected one aws-backup-restore_* folder on the share, found: ${restored[*]}"
      exit 1
    fi
    find "${restored[0]}" -mindepth 1 -maxdepth 1 ! -name '.wso2am-*.lock' -exec cp -a -t "$SHARE_ROOT" {} +
    date -u +%FT%TZ >"$SHARE_ROOT/.wso2am-restored-$RESTORE_GENERATION"
    rm -rf "${restored[0]}"
    log "moved the restored share (${restored[0]##*/}) to $SHARE_ROOT"
  ) 9>"$SEED_LOCK"
}
