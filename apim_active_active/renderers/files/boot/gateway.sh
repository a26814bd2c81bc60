# --- a gateway scale-out node (CONTENT_SYNC none): no share, no schema, the pair's secrets read and never made ------
# Its APIs come from the pair (the event hub), not from a share; the pair makes the schema and the secrets. Its
# public name points at a node of the pair that answers (the control plane's URL in its deployment.toml), and the
# gateway watch moves it when that node stops answering. The group holds a new node out of its target groups (the
# launch lifecycle hook, READY_HOOK) until the watch sees its gate pass; when the group terminates the node, the watch
# waits for the load balancer's drain, stops API-M and completes the termination lifecycle hook (LIFECYCLE_HOOK).
: "${PAIR_WAIT_SECONDS:?}" "${GATEWAY_GROUP:?}" "${LIFECYCLE_HOOK:?}" "${READY_HOOK:?}" "${DRAIN_WAIT_SECONDS:?}"
: "${GATEWAY_WATCH_TIMER:?}" "${PRODUCT_PROFILE?}"
METADATA_URL=${METADATA_URL:-http://169.254.169.254}
LEFT_GROUP=${LEFT_GROUP:-/var/lib/wso2am/left-group}
TOLD_READY=${TOLD_READY:-/var/lib/wso2am/told-ready}
SHARE_LABEL="no share (a gateway node)"
# The Universal Gateway pack (4.5+, no profile) has update levels of its own (check_update_level's advice).
[[ -n "$PRODUCT_PROFILE" ]] || UPDATE_LEVEL_SETTING=gateway_scale_out.update_level

join_share() { :; }
ensure_schema() { :; }  # the pair's first boot makes it
share_reachable() { :; }
follow_peer_key() { :; }
mend_share() { :; }

# Every secret the pair's first boot generates (ensure_generated_secrets) that this node reads.
pair_secrets_there() {
  secret_has_value "$ADMIN_SECRET_ARN" && secret_has_value "$KEYSTORE_SECRET_ARN" &&
    { [[ -z "$DB_APP_SECRET_ARN" ]] || secret_has_value "$DB_APP_SECRET_ARN"; } &&
    { [[ -z "$ENCRYPTION_KEY_SECRET_ARN" ]] || secret_has_value "$ENCRYPTION_KEY_SECRET_ARN"; }
}

# pair_node_answering: the first node of the pair whose API-M answers (node 1 first), on stdout.
pair_node_answering() {
  local ip
  for ip in $PEER_IP; do
    if answers_200 "https://$ip:9443/services/Version"; then
      echo "$ip"
      return 0
    fi
  done
  return 1
}

# mapped_pair_node: the address the public name resolves to here (the first line naming it), on stdout.
mapped_pair_node() {
  awk -v name="$PUBLIC_NAME" '/^[[:space:]]*#/ { next } { for (i = 2; i <= NF; i++) if ($i == name) { print $1; exit } }' "$HOSTS_FILE"
}

ensure_pair_secrets() {
  # A gateway may start before the pair's first boot has made the secrets and API-M: it waits for both (bounded).
  # It never generates one: only the pair does, under its lock.
  wait_until "$PAIR_WAIT_SECONDS" "the pair's secrets" "not starting API-M: the pair's first boot has not made them" \
    pair_secrets_there || return 1
  wait_until "$PAIR_WAIT_SECONDS" "a node of the pair ($PEER_IP)" "not starting API-M: no control plane" \
    pair_node_answering >/dev/null || return 1
  PUBLIC_NAME_ADDRESS=$(pair_node_answering) || return 1
}

start_content_sync() { systemctl enable --now "$GATEWAY_WATCH_TIMER"; }

follow_pair() {
  # The mapped node keeps the name while it answers; else the first that answers gets it (the JVM looks the hosts
  # file up again within its 30 s cache).
  local mapped
  mapped=$(mapped_pair_node)
  if [[ -n "$mapped" && " $PEER_IP " == *" $mapped "* ]] && answers_200 "https://$mapped:9443/services/Version"; then
    return 0
  fi
  if ! PUBLIC_NAME_ADDRESS=$(pair_node_answering); then
    log "gateway-watch: no node of the pair answers ($PEER_IP); $PUBLIC_NAME stays on ${mapped:-nothing}"
    return 0
  fi
  map_public_name
}

metadata() {
  local token
  token=$(curl --silent --fail --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" \
    "$METADATA_URL/latest/api/token") || return 1
  curl --silent --fail --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$METADATA_URL/latest/meta-data/$1"
}

# complete_hook HOOK INSTANCE: tell the group's lifecycle hook HOOK to go on. No action of it waiting for this node (the
# hook absent when the node launched, already completed, or timed out) counts as told: AWS answers ValidationError
# "No active Lifecycle Action found with instance ID ...".
complete_hook() {
  local answer
  answer=$(aws autoscaling complete-lifecycle-action --region "$AWS_REGION" --auto-scaling-group-name "$GATEWAY_GROUP" \
    --lifecycle-hook-name "$1" --instance-id "$2" --lifecycle-action-result CONTINUE 2>&1) && return 0
  if [[ "$answer" == *"No active Lifecycle Action found"* ]]; then
    log "gateway-watch: $1 has no action waiting for $2: nothing to tell"
    return 0
  fi
  log "gateway-watch: $answer"
  return 1
}

# The group's view of the node: Terminating:Wait once the load balancer has drained it (its deregistration delay).
terminating_wait() {
  [[ "$(aws autoscaling describe-auto-scaling-instances --region "$AWS_REGION" --instance-ids "$1" \
    --query 'AutoScalingInstances[0].LifecycleState' --output text)" == Terminating:Wait ]]
}

leave_group_if_terminating() {
  # IMDS says Terminated as soon as the group decides; the load balancer drains the node (its deregistration delay)
  # before the group enters Terminating:Wait (the termination hook): API-M serves its requests until then (bounded),
  # then stops gracefully, then the termination goes on. Said once; no answer from the metadata service: nothing to do.
  local state instance
  [[ ! -e "$LEFT_GROUP" ]] || return 0
  state=$(metadata autoscaling/target-lifecycle-state) || return 0
  [[ "$state" == Terminated ]] || return 0
  instance=$(metadata instance-id) || return 0
  wait_until "$DRAIN_WAIT_SECONDS" "the drain of $instance (Terminating:Wait)" "stopping API-M anyway" \
    terminating_wait "$instance" || true
  log "gateway-watch: the group terminates $instance: stopping API-M"
  systemctl stop "$SERVICE" || true
  retry "$RETRY_TRIES" 2 complete_hook "$LIFECYCLE_HOOK" "$instance"
  mkdir -p "$(dirname "$LEFT_GROUP")"
  date -u +%FT%TZ >"$LEFT_GROUP"
  log "gateway-watch: API-M stopped; told the lifecycle hook to go on"
}

tell_ready() {
  # Once the boot step is done and the gate passes (quietly: its failures in one line a look), the launch lifecycle
  # hook lets the group put the node in its target groups. Said once on this disk.
  local said instance
  [[ -e "$BOOT_DONE" && ! -e "$TOLD_READY" ]] || return 0
  if ! said=$(BOOT_LOG=/dev/null gate 2>&1); then
    said=$(sed -n 's/.*gate: FAILED: //p' <<<"$said")
    log "gateway-watch: not ready yet: ${said//$'\n'/; }"
    return 0
  fi
  instance=$(metadata instance-id) || return 0
  retry "$RETRY_TRIES" 2 complete_hook "$READY_HOOK" "$instance"
  mkdir -p "$(dirname "$TOLD_READY")"
  date -u +%FT%TZ >"$TOLD_READY"
  log "gateway-watch: the gate passed: told the launch lifecycle hook to go on"
}

gateway_watch() {
  leave_group_if_terminating
  [[ ! -e "$LEFT_GROUP" ]] || return 0
  follow_pair
  tell_ready
}
