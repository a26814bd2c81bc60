# --- content_sync = efs: the file system at SHARE_ROOT, each shared folder bound from it ---------------------
: "${SHARE_ROOT:?}" "${EFS_ID:?}" "${EFS_DNS:?}" "${FSTAB_ENTRIES:?}"
LOCK_DIR=$SHARE_ROOT  # both nodes see the locks
SEED_LOCK="$SHARE_ROOT/.wso2am-seed.lock"
SHARE_LABEL="the share $SHARE_ROOT"
DIST_DIR="$APIM_HOME/.wso2am-dist"  # what the product itself has in each shared folder, to seed the share from

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

share_reachable() {
  # A hung NFS server blocks stat forever: every look at the share is bounded.
  local folder
  timeout 10 mountpoint -q "$SHARE_ROOT" || return 1
  for folder in $SHARED_FOLDERS; do
    timeout 10 mountpoint -q "${folder#*=}" || return 1
    timeout 10 test -e "$SHARE_ROOT/.wso2am-seeded-${folder%%=*}" || return 1
  done
}

# --- the steps main.sh leaves to the mode ---
join_share() {
  keep_distribution_copies
  ensure_fstab
  mount_share
  [[ -z "${RESTORE_GENERATION:-}" ]] || adopt_restored_share
  seed_share_once
  bind_shared_folders
}

ensure_pair_secrets() {
  mkdir -p "$LOCK_DIR"
  ensure_generated_secrets
}

start_content_sync() { :; }  # the share is there: nothing to start

follow_peer_key() { :; }  # no peer key: both nodes mount the same file system

mend_share() {
  # The share watch: mount what is not mounted, in /etc/fstab's order (the file system, then the folders bound from
  # it); bounded, as a hung NFS server blocks a mount.
  local entry point
  while read -r entry; do
    read -r _ point _ <<<"$entry"
    timeout 10 mountpoint -q "$point" && continue
    timeout 30 mount "$point" || return 1
    log "re-mounted $point"
  done <"$FSTAB_ENTRIES"
}
