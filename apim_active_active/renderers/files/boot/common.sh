# --- what every node does, whatever its mode: the log, retries, the product, its shared folders, the driver --
# To stderr (cloud-init's output, the journal) and to BOOT_LOG, which the CloudWatch agent ships; BOOT_LOG kept
# under BOOT_LOG_MAX_BYTES by moving it to BOOT_LOG.1 (the agent follows the new file by its name).
BOOT_LOG_MAX_BYTES=${BOOT_LOG_MAX_BYTES:-10485760}
log() {
  echo "wso2am-boot: $*" >&2
  {
    mkdir -p "${BOOT_LOG%/*}"
    (($(stat -c %s "$BOOT_LOG" 2>/dev/null || echo 0) < BOOT_LOG_MAX_BYTES)) || mv -f "$BOOT_LOG" "$BOOT_LOG.1"
    echo "$(date -u +%FT%TZ) wso2am-boot: $*" >>"$BOOT_LOG"
  } 2>/dev/null || true
}

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

# fetch URL FILE: from S3 with the instance role, or over HTTPS.
fetch() {
  case "$1" in
    s3://*) aws s3 cp --only-show-errors --region "$AWS_REGION" "$1" "$2" ;;
    https://*) curl --fail --silent --show-error --location --output "$2" "$1" ;;
    *) log "unsupported URL: $1"; return 1 ;;
  esac
}

# pack_update_level HOME: the WSO2 Updates 2.0 level of an unpacked pack (updates/config.json's update-level);
# 0 for a GA pack (no file, or -1: the update tool ran and applied nothing).
pack_update_level() {
  local config="$1/updates/config.json"
  [[ -f "$config" ]] || { echo 0; return 0; }
  python3 -c 'import json, sys; print(max(0, int(json.load(open(sys.argv[1])).get("update-level", 0))))' "$config"
}

check_update_level() {
  # Both nodes run the level the settings name (apim.update_level): a pack at another level never starts.
  local level
  level=$(pack_update_level "$1")
  if [[ "$level" != "${UPDATE_LEVEL:-0}" ]]; then
    log "the pack at $ARCHIVE_URL is at update level $level; the settings say ${UPDATE_LEVEL:-GA (none)}:" \
      "build the pack at the level the settings name, or set ${UPDATE_LEVEL_SETTING:-apim.update_level} = $level"
    return 1
  fi
}

install_product() {
  if [[ -x "$APIM_HOME/bin/$START_SCRIPT" ]]; then
    check_update_level "$APIM_HOME"
    return 0
  fi
  local work
  work=$(mktemp -d)
  retry "$RETRY_TRIES" 2 fetch "$ARCHIVE_URL" "$work/product.zip"
  mkdir -p "$INSTALL_DIR"
  unzip -q "$work/product.zip" -d "$work/unpacked"
  if [[ ! -d "$work/unpacked/$(basename "$APIM_HOME")" ]]; then
    log "the pack at $ARCHIVE_URL has no top folder $(basename "$APIM_HOME") (an updated pack keeps the version's folder name)"
    return 1
  fi
  check_update_level "$work/unpacked/$(basename "$APIM_HOME")"
  if [[ -n "${PRODUCT_PROFILE:-}" ]]; then
    # WSO2's profile optimisation (a gateway node up to 4.4): the profile's deployment.toml template in place, the
    # other profiles' webapps removed. Once, here: the file it puts in place is the one every boot merges over.
    (cd "$work/unpacked/$(basename "$APIM_HOME")/bin" && sh profileSetup.sh "-Dprofile=$PRODUCT_PROFILE") >&2
    log "optimised the pack for the $PRODUCT_PROFILE profile (profileSetup.sh)"
  fi
  # The pack's own deployment.toml, kept before anything can change it (every boot merges the pair's over it).
  cp -p "$work/unpacked/$(basename "$APIM_HOME")/repository/conf/deployment.toml"{,.shipped}
  # Nothing of API-M is for other users: the config mapper writes the values it resolves ($env{} secrets included)
  # into the files it generates.
  chmod -R o-rwx "$work/unpacked"
  mv "$work/unpacked/$(basename "$APIM_HOME")" "$APIM_HOME"
  rm -rf "$work"
  chown -R "$OS_USER:$OS_USER" "$APIM_HOME"
  log "installed $APIM_HOME (update level ${UPDATE_LEVEL:-GA})"
}

ensure_shared_folders() {
  # A folder the product only creates once used (repository/tenants) is shared from the start, in both modes.
  local folder
  for folder in $SHARED_FOLDERS; do
    [[ -d "${folder#*=}" ]] || install -d -o "$OS_USER" -g "$OS_USER" "${folder#*=}"
  done
}

install_jdbc_driver() {
  local jar
  jar="$APIM_HOME/repository/components/lib/$(basename "$JDBC_DRIVER_URL")"
  if [[ ! -s "$jar" ]]; then
    retry "$RETRY_TRIES" 2 fetch "$JDBC_DRIVER_URL" "$jar.part"
    mv "$jar.part" "$jar"
    chown "$OS_USER:$OS_USER" "$jar"
    log "installed the JDBC driver $(basename "$jar")"
  fi
}

# answers_200 URL: it answers 200 (a node of the pair, under the pair's certificate: not verified, nothing is sent).
answers_200() {
  [[ "$(curl --silent --insecure --output /dev/null --write-out '%{http_code}' --max-time 10 "$1")" == 200 ]]
}

# accepts HOST PORT: a TCP connection is accepted there (bounded).
accepts() { timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# wait_until SECONDS WHAT OTHERWISE COMMAND...: poll COMMAND until it succeeds (0) or SECONDS have passed (1, saying
# what happens OTHERWISE), logging the wait.
wait_until() {
  local deadline=$((SECONDS + $1)) seconds=$1 what=$2 otherwise=$3
  shift 3
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "$what did not answer within ${seconds}s: $otherwise"
      return 1
    fi
    log "waiting for $what"
    sleep "$KEY_MANAGER_POLL_SECONDS"
  done
  log "$what answers"
}
