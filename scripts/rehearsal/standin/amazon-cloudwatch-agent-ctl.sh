#!/bin/bash
# STAND-IN for the CloudWatch agent's control script (Amazon Linux 2023's amazon-cloudwatch-agent package): accepts
# only `-a fetch-config -m ec2 -s -c file:PATH` with PATH an existing JSON file, and records each call.
set -euo pipefail
CALLS=/var/lib/rehearsal/agent-ctl.calls
mkdir -p "${CALLS%/*}"
echo "$*" >>"$CALLS"
[[ "$*" =~ ^-a\ fetch-config\ -m\ ec2\ -s\ -c\ file:(/[^ ]+)$ ]] || { echo "stand-in agent ctl: unexpected: $*" >&2; exit 1; }
python3 -m json.tool "${BASH_REMATCH[1]}" >/dev/null || { echo "stand-in agent ctl: no JSON at ${BASH_REMATCH[1]}" >&2; exit 1; }
echo "stand-in agent ctl: configuration ${BASH_REMATCH[1]} fetched, agent started"
