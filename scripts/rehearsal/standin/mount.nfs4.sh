#!/bin/bash
# STAND-IN for mount.nfs4 on a rehearsal node: this kernel has no NFS client ("No such device").
# Like the real helper it resolves the server name and needs the server's port 2049 to answer;
# then it bind-mounts the shared folder that plays the EFS export.
set -euo pipefail
spec=$1 target=$2
server=${spec%%:*} path=${spec#*:}
address=$(getent hosts "$server" | awk '{ print $1; exit }') || true
if [[ -z "$address" ]]; then
  echo "mount.nfs4: Failed to resolve server $server" >&2
  exit 32
fi
if ! timeout 3 bash -c "exec 3<>/dev/tcp/$address/2049" 2>/dev/null; then
  echo "mount.nfs4: Connection timed out ($address:2049)" >&2
  exit 32
fi
exec mount --bind "/run/rehearsal-efs${path}" "$target"
