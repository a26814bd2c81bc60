# --- gate: is this node in service? scripts/roll.py asks before it touches the other node ---------------------
# API-M running and answering (GATE_URLS: the management version service and, where the version has it, the gateway's
# readiness), the gateway's traffic ports accepting (GATE_PORTS: 8243, 8099), the peer's ports reached (9443, 9611, 9711, 5672: both nodes hold a peer's place in deployment.toml), and
# the share there (not on node 1 with rsync: it is the source). Prints each check; non-zero when one fails.
gate() {
  local url port failed=0
  if systemctl is-active --quiet "$SERVICE"; then log "gate: ok: $SERVICE active"; else log "gate: FAILED: $SERVICE not active"; failed=1; fi
  for url in $GATE_URLS; do
    if [[ "$(curl --silent --insecure --output /dev/null --write-out '%{http_code}' --max-time 10 "$url")" == 200 ]]; then
      log "gate: ok: $url answers"
    else
      log "gate: FAILED: $url does not answer 200"
      failed=1
    fi
  done
  for port in $GATE_PORTS; do
    if timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      log "gate: ok: traffic port $port accepts"
    else
      log "gate: FAILED: traffic port $port does not accept"
      failed=1
    fi
  done
  for port in $PEER_PORTS; do
    if timeout 5 bash -c "exec 3<>/dev/tcp/$PEER_IP/$port" 2>/dev/null; then
      log "gate: ok: peer $PEER_IP:$port reached"
    else
      log "gate: FAILED: peer $PEER_IP:$port not reached"
      failed=1
    fi
  done
  if [[ "$SYNC_ROLE" != manager ]]; then
    if share_reachable; then log "gate: ok: $SHARE_LABEL there"; else log "gate: FAILED: $SHARE_LABEL unreachable"; failed=1; fi
  fi
  return "$failed"
}
