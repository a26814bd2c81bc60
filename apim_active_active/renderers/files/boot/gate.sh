# --- gate: is this node in service? scripts/roll.py asks before it touches the other node ---------------------
# API-M running and answering (GATE_URLS: the management version service and, where the version has it, the gateway's
# readiness), the gateway's traffic ports accepting (GATE_PORTS: 8243, 8099), the peer's ports reached (9443, 9611, 9711, 5672: both nodes hold a peer's place in deployment.toml), and
# the share there (not on node 1 with rsync: it is the source). Prints each check; non-zero when one fails.
# gate_check OK FAILED COMMAND...: one check, logged either way; non-zero when it fails.
gate_check() {
  if "${@:3}"; then log "gate: ok: $1"; else log "gate: FAILED: $2"; return 1; fi
}

gate() {
  local url port peer failed=0 reached=0 missing
  gate_check "$SERVICE active" "$SERVICE not active" systemctl is-active --quiet "$SERVICE" || failed=1
  for url in $GATE_URLS; do
    gate_check "$url answers" "$url does not answer 200" answers_200 "$url" || failed=1
  done
  for port in $GATE_PORTS; do
    gate_check "traffic port $port accepts" "traffic port $port does not accept" accepts 127.0.0.1 "$port" || failed=1
  done
  # PEER_IP: the other node of the pair; on a gateway node both nodes of the pair, one of them reached whole being
  # enough (the other may be rolling or down: new gateway nodes must still join).
  for peer in $PEER_IP; do
    missing=0
    for port in $PEER_PORTS; do
      gate_check "peer $peer:$port reached" "peer $peer:$port not reached" accepts "$peer" "$port" || missing=1
    done
    ((missing)) || reached=1
  done
  ((reached)) || failed=1
  if [[ "$SYNC_ROLE" != manager && "$CONTENT_SYNC" != none ]]; then
    gate_check "$SHARE_LABEL there" "$SHARE_LABEL unreachable" share_reachable || failed=1
  fi
  return "$failed"
}
