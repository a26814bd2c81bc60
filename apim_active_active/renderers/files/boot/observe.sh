# --- observability: the CloudWatch agent, API-M's rotated logs bounded (docs/observability.md, "On the nodes") ---
# The appenders of repository/conf/log4j2.properties whose files the agent ships, and the names their filePattern
# rolls them to (WSO2's file at v3.2.0 to v4.7.0: wso2carbon-%d..., audit-%d..., wso2-apigw-errors-%d...,
# correlation-%d...). Each gets log4j2's Delete action: at each rollover, its rolled files older than LOCAL_LOG_DAYS
# go (WSO2's "Managing log growth"; log4j2's DefaultRolloverStrategy with a Delete action).
ROLLED_LOGS="CARBON_LOGFILE=wso2carbon-* AUDIT_LOGFILE=audit-* ERROR_LOGFILE=wso2-apigw-errors-* CORRELATION=correlation-*"

# rotation_bound APPENDER GLOB: the Delete action's lines for one appender.
rotation_bound() {
  local action="appender.$1.strategy.action"
  printf '%s\n' "$action.type = Delete" "$action.basepath = \${sys:carbon.home}/repository/logs" \
    "$action.maxdepth = 1" "$action.ifFileName.type = IfFileName" "$action.ifFileName.glob = $2" \
    "$action.ifLastModified.type = IfLastModified" "$action.ifLastModified.age = ${LOCAL_LOG_DAYS}d"
}

bound_log_rotation() {
  # Every boot, from the file as it is: earlier bounds (another LOCAL_LOG_DAYS) replaced, the rest left alone.
  local conf="$APIM_HOME/repository/conf/log4j2.properties" edited item
  if [[ ! -f "$conf" ]]; then
    log "no $conf: API-M's rotated logs are not bounded"
    return 0
  fi
  edited=$(mktemp)
  grep -Ev '^appender\.(CARBON_LOGFILE|AUDIT_LOGFILE|ERROR_LOGFILE|CORRELATION)\.strategy\.action\.' "$conf" >"$edited" || true
  for item in $ROLLED_LOGS; do
    if grep -Eq "^appender\.${item%%=*}\.strategy\.type *= *DefaultRolloverStrategy" "$edited"; then
      rotation_bound "${item%%=*}" "${item#*=}" >>"$edited"
    fi
  done
  if ! cmp -s "$edited" "$conf"; then
    cat "$edited" >"$conf"  # in place: the file keeps its owner and mode
    log "bounded API-M's rotated logs in $conf to $LOCAL_LOG_DAYS days"
  fi
  rm -f "$edited"
}

start_agent() {
  # AGENT_CONFIG is empty with observability.agent = false. Written by cloud-init (nothing secret in it); the
  # agent's control script keeps it and enables the agent's service: starting it again at a reboot is harmless.
  [[ -n "$AGENT_CONFIG" ]] || return 0
  if [[ ! -s "$AGENT_CONFIG" ]] || ! retry 3 2 "$AGENT_CTL" -a fetch-config -m ec2 -s -c "file:$AGENT_CONFIG"; then
    log "the CloudWatch agent did not start with $AGENT_CONFIG: this node's logs and metrics are not shipped"
    return 0
  fi
  log "the CloudWatch agent ships this node's logs and metrics ($AGENT_CONFIG)"
}

# The JVM's own JMX agent in API-M's JVM, on loopback only, for the CloudWatch agent's JVM metrics (API-M's unit runs
# this after each start). Started in the running JVM with jcmd (HotSpot's ManagementAgent.start takes jmxremote.host:
# diagnosticCommand.cpp, JMXStartRemoteDCmd), as the JVM's own user (the attach API asks it). Without authentication:
# only a process on the node reaches 127.0.0.1, and no security group names the port (docs/observability.md).
CARBON_MAIN=org.wso2.carbon.bootstrap.Bootstrap
JMX_WAIT_SECONDS=${JMX_WAIT_SECONDS:-120}
start_jmx() {
  [[ -n "$AGENT_CONFIG" ]] || return 0
  local pid deadline=$((SECONDS + JMX_WAIT_SECONDS))
  until pid=$(pgrep -u "$OS_USER" -f "$CARBON_MAIN" | head -n 1) && [[ -n "$pid" ]]; do
    if ((SECONDS >= deadline)); then
      log "no API-M JVM ($CARBON_MAIN) within ${JMX_WAIT_SECONDS}s: its JMX metrics are not served"
      return 0
    fi
    sleep 2
  done
  if timeout 60 setpriv --reuid="$OS_USER" --regid="$OS_USER" --init-groups -- "$JAVA_HOME/bin/jcmd" "$pid" \
    ManagementAgent.start jmxremote.host=127.0.0.1 \
    "jmxremote.port=$JMX_PORT" "jmxremote.rmi.port=$JMX_PORT" jmxremote.authenticate=false jmxremote.ssl=false >/dev/null; then
    log "JMX on 127.0.0.1:$JMX_PORT in API-M's JVM ($pid) for the CloudWatch agent"
  else
    log "could not start JMX in API-M's JVM ($pid): its JMX metrics are not served"
  fi
}

# The days left of the pair's signing certificate, one line (observability.KEYSTORE_EXPIRY_LINE) that a metric filter on
# the boot log makes a metric (the alarm: keystore.expiry_warning_days). Run daily by its timer and at each start of
# API-M, whose unit wants the timer. The certificate is read without the store's password (JKS).
keystore_expiry() {
  local end
  end=$(keytool -exportcert -rfc -alias "$KEYSTORE_ALIAS" -keystore "$SECURITY/$KEYSTORE_FILE" </dev/null 2>/dev/null |
    openssl x509 -noout -enddate) && end=$(date -d "${end#*=}" +%s) || return 1
  log "keystore-expiry: $(((end - $(date +%s)) / 86400)) days"
}

# The boot step's exit: a failed boot says so in one line (set -e ends it at the failing command), which a metric
# filter on the boot log counts.
say_if_boot_failed() {
  local status=$?
  ((status == 0)) || log "boot failed (exit $status)"
}
