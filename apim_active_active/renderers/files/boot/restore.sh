# --- a restored environment (settings [restore]; docs/backup-and-restore.md) ---------------------------------------
# Shipped only to a restored environment's nodes (an EFS node's restore-share.sh after it). Its database came from the
# source's backup (Terraform), its share (EFS) is filled by scripts/restore.py after the deploy (restore-share.sh).
: "${RESTORE_GENERATION:?}"
REBUILT=${REBUILT:-/var/lib/wso2am/rebuilt-after-restore}

rebuild_after_restore() {
  # The registry's search index (Solr, under APIM_HOME/solr) is each node's own and is not restored: WSO2's re-index is
  # the folder removed and [indexing] re_indexing raised (deployment.toml carries the generation), so API-M indexes
  # the restored registry again from the database at its start. Once per restore generation on this disk.
  [[ ! -e "$REBUILT-$RESTORE_GENERATION" ]] || return 0
  rm -rf "$APIM_HOME/solr"
  mkdir -p "$(dirname "$REBUILT")"
  date -u +%FT%TZ >"$REBUILT-$RESTORE_GENERATION"
  log "search index rebuilt at the next start (restore generation $RESTORE_GENERATION): $APIM_HOME/solr removed," \
    "[indexing] re_indexing = $RESTORE_GENERATION"
}
