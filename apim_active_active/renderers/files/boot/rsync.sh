# --- content_sync = rsync: node 1 pushes to node 2 over SSH; only public keys travel, through SSM ----------
: "${SYNC_ROLE:?}" "${SYNC_USER:?}" "${SYNC_HOME:?}" "${SYNC_MARKER:?}"
: "${SYNC_KEY_DIR:?}" "${SYNC_FORCED_COMMAND:?}" "${SYNC_WAIT_SECONDS:?}" "${SYNC_KEY_ARN:?}"
: "${MANAGER_KEY_PARAMETER:?}" "${WORKER_HOST_KEY_PARAMETER:?}" "${PUSH_TIMER:?}" "${SYNC_EXCLUDES:?}"
# Only node 1 does the one-time work (its locks here); node 2 waits for node 1's key. SYNC_STATE_DIR: node 2's `state`
# module. (Comments on lines of their own: only those are left out of what a node gets.)
LOCK_DIR=/run/lock/wso2am
SYNC_STATE_DIR=${SYNC_MARKER%/*}
SHARE_LABEL="node 1's push ($SYNC_MARKER)"
SYNC_POLL_SECONDS=${SYNC_POLL_SECONDS:-5}
SYNC_SSH_PORT=${SYNC_SSH_PORT:-22}
SSH_HOST_KEY=${SSH_HOST_KEY:-/etc/ssh/ssh_host_ed25519_key.pub}

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

share_reachable() {
  # node 2: the first complete push from node 1 has landed
  test -e "$SYNC_MARKER"
}

# --- the steps main.sh leaves to the mode ---
# Nothing to join: node 1's pushes bring the shared folders to node 2.
join_share() { :; }

ensure_pair_secrets() {
  if [[ "$SYNC_ROLE" == worker ]]; then
    prepare_receiver
    # node 1 publishes its key once the secrets and the schema exist
    authorize_manager
  else
    mkdir -p "$LOCK_DIR"
    ensure_generated_secrets
  fi
}

start_content_sync() {
  [[ "$SYNC_ROLE" != manager ]] || prepare_sender
}

follow_peer_key() {
  # A replaced node 1 has a new key: node 2 follows the parameter (a failed look keeps the key it has).
  [[ "$SYNC_ROLE" != worker ]] || refresh_manager_key || true
}

# Nothing to mount: node 1's next push brings the folders back.
mend_share() { return 1; }
