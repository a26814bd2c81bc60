#!/bin/bash
# Boot step of a WSO2 API-M active-active node, run by cloud-init (runcmd) on first boot.
# Safe to run again (reboot, re-run by hand): every step checks before it acts.
# Parameters come from the node's env file, written by cloud-init next to this script.
set -euo pipefail

NODE_ENV=${NODE_ENV:-/etc/wso2am/node.env}
# shellcheck source=/dev/null
. "$NODE_ENV"
: "${APIM_HOME:?}" "${ARCHIVE_URL:?}" "${INSTALL_DIR:?}" "${OS_USER:?}" "${OS_UID:?}" "${EFS_DNS:?}"
: "${SHARE_DIR:?}" "${MOUNT_OPTIONS:?}" "${CONFIG_SOURCE:?}" "${JAVA_HOME:?}" "${HEAP_PERCENT:?}" "${SERVICE:?}"
: "${RUNTIME_ENV:?}" "${AWS_REGION:?}" "${START_SCRIPT:?}"
RETRY_TRIES=${RETRY_TRIES:-10}
RETRY_MAX_DELAY=${RETRY_MAX_DELAY:-60}
SEED_MARKER="$SHARE_DIR/.wso2am-seeded"
SEED_LOCK="$SHARE_DIR/.wso2am-seed.lock"
DIST_DIR="$APIM_HOME/repository/deployment/server.dist"

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

fetch_archive() {
  case "$ARCHIVE_URL" in
    s3://*) aws s3 cp --only-show-errors --region "$AWS_REGION" "$ARCHIVE_URL" "$1" ;;
    https://*) curl --fail --silent --show-error --location --output "$1" "$ARCHIVE_URL" ;;
    *) log "unsupported ARCHIVE_URL: $ARCHIVE_URL"; return 1 ;;
  esac
}

install_product() {
  if [[ -x "$APIM_HOME/bin/$START_SCRIPT" ]]; then
    return 0
  fi
  local work
  work=$(mktemp -d)
  retry "$RETRY_TRIES" 2 fetch_archive "$work/product.zip"
  mkdir -p "$INSTALL_DIR"
  unzip -q "$work/product.zip" -d "$work/unpacked"
  mv "$work/unpacked/$(basename "$APIM_HOME")" "$APIM_HOME"
  rm -rf "$work"
  chown -R "$OS_USER:$OS_USER" "$APIM_HOME"
  log "installed $APIM_HOME"
}

keep_distribution_copy() {
  # The share hides the product's own deployment/server once mounted; keep a copy to seed from.
  if [[ ! -d "$DIST_DIR" ]] && ! mountpoint -q "$SHARE_DIR"; then
    cp -a "$SHARE_DIR" "$DIST_DIR"
  fi
}

ensure_fstab() {
  if ! awk -v dir="$SHARE_DIR" '$2 == dir { found = 1 } END { exit !found }' /etc/fstab; then
    echo "$EFS_DNS:/ $SHARE_DIR nfs4 $MOUNT_OPTIONS 0 0" >>/etc/fstab
    log "added $SHARE_DIR to /etc/fstab"
  fi
}

mount_share() {
  if mountpoint -q "$SHARE_DIR"; then
    return 0
  fi
  retry "$RETRY_TRIES" 2 getent hosts "$EFS_DNS" >/dev/null
  retry "$RETRY_TRIES" 2 mount "$SHARE_DIR"
  log "mounted $EFS_DNS at $SHARE_DIR"
}

seed_share_once() {
  # Both nodes boot together: the lock on the share lets exactly one of them copy.
  (
    flock --timeout 600 9
    if [[ ! -e "$SEED_MARKER" ]]; then
      cp -a "$DIST_DIR/." "$SHARE_DIR/"
      chown -R "$OS_USER:$OS_USER" "$SHARE_DIR"
      date -u +%FT%TZ >"$SEED_MARKER"
      log "seeded the share from $DIST_DIR"
    fi
  ) 9>"$SEED_LOCK"
}

install_config() {
  install -m 0640 -o root -g "$OS_USER" "$CONFIG_SOURCE" "$APIM_HOME/repository/conf/deployment.toml"
}

write_runtime_env() {
  local mem_kib heap_mib
  mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
  heap_mib=$((mem_kib * HEAP_PERCENT / 100 / 1024))
  umask 022
  printf 'JAVA_HOME=%s\nJVM_MEM_OPTS=-Xms%sm -Xmx%sm\n' "$JAVA_HOME" "$heap_mib" "$heap_mib" >"$RUNTIME_ENV"
}

start_service() {
  systemctl daemon-reload
  systemctl enable --now "$SERVICE"
}

main() {
  ensure_user
  install_product
  keep_distribution_copy
  ensure_fstab
  mount_share
  seed_share_once
  install_config
  write_runtime_env
  start_service
  log "done"
}

main "$@"
