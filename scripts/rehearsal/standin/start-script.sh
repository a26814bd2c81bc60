#!/bin/bash
# STAND-IN for the product's start script (bin/api-manager.sh in 4.x, bin/wso2server.sh in 3.2):
# same `start` / `stop` interface and PID file that WSO2's systemd units use.
set -euo pipefail
HOME_DIR=$(cd "$(dirname "$0")/.." && pwd)
PID_FILE="$HOME_DIR/wso2carbon.pid"
# The console (WSO2's script sends it to /dev/null); wso2carbon.log is written by the server, in its layout.
LOG="$HOME_DIR/repository/logs/standin-console.log"
SECURITY="$HOME_DIR/repository/resources/security"

running() { [[ -f "$PID_FILE" ]] && ps -p "$(cat "$PID_FILE")" >/dev/null 2>&1; }

case "${1:-}" in
  start)
    # As WSO2's script: a PID file naming any live process means "running" (Carbon never removes the file).
    if running; then echo "Process is already running"; exit 0; fi
    mkdir -p "$HOME_DIR/repository/logs" "$SECURITY"
    if [[ ! -f "$SECURITY/standin.key" ]]; then
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$(hostname)" \
        -keyout "$SECURITY/standin.key" -out "$SECURITY/standin.crt" 2>/dev/null
    fi
    echo "JVM_MEM_OPTS=${JVM_MEM_OPTS:-unset} JAVA_HOME=${JAVA_HOME:-unset} JAVA_OPTS=${JAVA_OPTS:-unset}" >>"$LOG"
    # As WSO2's script: the other arguments go to the server (-D system properties, e.g. -DenableCorrelationLogs=true),
    # after the main class, which its command line names as the real JVM's does (`wso2am-boot jmx` looks for it).
    nohup python3 "$HOME_DIR/bin/standin_server.py" org.wso2.carbon.bootstrap.Bootstrap "${@:2}" >>"$LOG" 2>&1 &
    echo $! >"$PID_FILE"
    sleep 1
    running || { echo "STAND-IN API-M failed to start; see $LOG" >&2; exit 1; }
    ;;
  stop)
    if running; then kill "$(cat "$PID_FILE")"; fi
    rm -f "$PID_FILE"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
