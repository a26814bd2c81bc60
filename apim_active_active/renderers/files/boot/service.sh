# --- API-M's service: the waits before its start, the start, the share watch (check-share) -----------------
key_manager_answers() {
  # Any HTTP answer below 500 (a login page, a 401) means it is up; 5xx is a server still starting.
  local code
  code=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 10 \
    ${KEY_MANAGER_CA:+--cacert "$KEY_MANAGER_CA"} "$KEY_MANAGER_URL/services/") || return 1
  [[ "$code" =~ ^[234][0-9][0-9]$ ]]
}

first_node_answers() {
  # Node 1 runs with the pair's certificate; only "is it up" is asked here (nothing is sent).
  answers_200 "$FIRST_NODE_URL"
}

wait_for_first_node() {
  # Node 2's first start: node 1 makes what an empty database needs on its first start (default policies,
  # registry entries); both doing it at once races. Bounded: node 1 may be gone for good. Later starts do not wait.
  [[ -n "$FIRST_NODE_URL" ]] || return 0
  wait_until "$FIRST_START_WAIT_SECONDS" "node 1's API-M ($FIRST_NODE_URL)" "starting API-M anyway" \
    first_node_answers || true
}

wait_for_key_manager() {
  # The seed: with WSO2 Identity Server as Key Manager, it must be up before API-M starts.
  [[ -n "$KEY_MANAGER_URL" ]] || return 0
  wait_until "$KEY_MANAGER_WAIT_SECONDS" "the key manager $KEY_MANAGER_URL" "not starting API-M" key_manager_answers
}

# hold_for_share WHY: leave API-M stopped, for the watch to start once the share is there.
hold_for_share() {
  mkdir -p "$(dirname "$STOPPED_BY_WATCH")"
  date -u +%FT%TZ >"$STOPPED_BY_WATCH"
  log "$1"
}

# A reboot's first look: API-M enabled but not running (its unit requires the share's mounts, so a share missing at
# the reboot fails its start). It is held as if the watch had stopped it, so it starts once the share is back. Only
# after a completed boot step (at the first boot, the boot step itself decides when API-M starts).
held_since_reboot() {
  [[ ! -e "$LOOKED_SINCE_BOOT" && -e "$BOOT_DONE" ]] || return 1
  mkdir -p "$(dirname "$LOOKED_SINCE_BOOT")"
  : >"$LOOKED_SINCE_BOOT"
  systemctl is-enabled --quiet "$SERVICE" || return 1
  [[ "$(systemctl show --property=ActiveState --value "$SERVICE")" =~ ^(inactive|failed)$ ]]
}

# The share there: said at most once a minute (the watch runs every 15 s), so that its absence from the log means
# something. Once seen on this disk, its absence is news (before that, e.g. node 2 of rsync waiting for the first push,
# it is expected, and not said: no alarm at every new node).
say_present() {
  [[ -e "$SHARE_SEEN" ]] || { mkdir -p "$(dirname "$SHARE_SEEN")" && date -u +%FT%TZ >"$SHARE_SEEN"; }
  [[ -z "$(find "$SAID_PRESENT" -mmin -1 2>/dev/null)" ]] || return 0
  mkdir -p "$(dirname "$SAID_PRESENT")"
  : >"$SAID_PRESENT"
  log "share-watch verdict: present ($SHARE_LABEL)"
}

check_share() {
  follow_peer_key
  if held_since_reboot; then
    hold_for_share "API-M did not start at this boot ($SHARE_LABEL missing then?): it starts once the share is there"
  fi
  share_reachable || mend_share || true
  # Carbon undeploys the artifacts it no longer sees: never let it run without its share.
  if ! share_reachable; then
    [[ ! -e "$SHARE_SEEN" ]] || log "share-watch verdict: missing ($SHARE_LABEL)"
    if systemctl is-active --quiet "$SERVICE"; then
      # The hold first: a watch stopped by its own timeout while Carbon shuts down still gets it started again.
      hold_for_share "$SHARE_LABEL is unreachable: stopping API-M so that it cannot undeploy what it no longer sees"
      systemctl stop "$SERVICE"
    fi
    return 0
  fi
  say_present
  # Only a stop made here is undone here: an operator's stop stays.
  if [[ -e "$STOPPED_BY_WATCH" ]]; then
    rm -f "$STOPPED_BY_WATCH"
    systemctl start "$SERVICE"
    log "$SHARE_LABEL is back: started API-M again"
  fi
}

start_service() {
  systemctl daemon-reload
  [[ "$SYNC_ROLE" == manager || "$CONTENT_SYNC" == none ]] || systemctl enable --now "$SHARE_WATCH_TIMER"
  systemctl enable "$SERVICE"
  if [[ ! -e "$STARTED_ONCE" ]]; then
    wait_for_first_node
    mkdir -p "$(dirname "$STARTED_ONCE")"
    date -u +%FT%TZ >"$STARTED_ONCE"
  fi
  if [[ "$SYNC_ROLE" == worker ]] && ! share_reachable; then
    hold_for_share "API-M starts once the first push from node 1 has landed ($SYNC_MARKER)"
    return 0
  fi
  # With an external Key Manager the unit itself waits for it on every start (ExecStartPre) and keeps
  # retrying (Restart=on-failure): a Key Manager that comes up late still gets this node started.
  if ! wait_for_key_manager; then
    systemctl start --no-block "$SERVICE"
    log "API-M starts once the key manager answers"
    return 0
  fi
  systemctl start "$SERVICE"
}
