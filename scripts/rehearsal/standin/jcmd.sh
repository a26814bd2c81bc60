#!/bin/bash
# STAND-IN for the JDK's jcmd (Amazon Corretto's -devel package on Amazon Linux 2023; the stand-in product is no JVM):
# accepts only `jcmd PID ManagementAgent.start OPTIONS...` for a live process of the calling user, as the attach API
# would, and records the call.
set -euo pipefail
CALLS=/tmp/rehearsal-jcmd.calls  # it runs as API-M's user: a folder anyone may write to
[[ $# -ge 2 && "$2" == ManagementAgent.start ]] || { echo "stand-in jcmd: unexpected: $*" >&2; exit 1; }
owner=$(stat -c %U "/proc/$1" 2>/dev/null) || { echo "stand-in jcmd: no process $1" >&2; exit 1; }
[[ "$owner" == "$(id -un)" ]] || { echo "stand-in jcmd: process $1 is $owner's, not $(id -un)'s" >&2; exit 1; }
echo "$*" >>"$CALLS"
echo "$1:"
echo "Command executed successfully"
