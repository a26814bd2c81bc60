#!/bin/bash
# STAND-IN for mount.efs (amazon-efs-utils) on a rehearsal node: this kernel has no NFS client
# ("No such device") and efs-utils is not packaged for Debian. Like the real helper it resolves
# <fs-id>.efs.<region>.amazonaws.com and needs the mount target's 2049 to answer; like the file
# system policy it refuses a mount without TLS. Then it bind-mounts the folder that plays the export.
set -euo pipefail
spec=$1 target=$2
shift 2
options=""
while (($#)); do
  if [[ $1 == -o ]]; then options=$2; shift; fi
  shift
done
file_system=${spec%%:*} path=${spec#*:}
if [[ ",$options," != *,tls,* ]]; then
  echo "mount.efs: access denied by the file system policy: TLS is required" >&2
  exit 32
fi
# The node's /etc/hosts plays DNS here: find the file system's name in it.
name=$(awk -v prefix="$file_system.efs." 'index($2, prefix) == 1 { print $2; exit }' /etc/hosts)
address=$(getent hosts "${name:-$file_system.efs.unknown}" | awk '{ print $1; exit }') || true
if [[ -z "$address" ]]; then
  echo "mount.efs: Failed to resolve $file_system.efs.<region>.amazonaws.com" >&2
  exit 32
fi
if ! timeout 3 bash -c "exec 3<>/dev/tcp/$address/2049" 2>/dev/null; then
  echo "mount.efs: Connection timed out ($address:2049)" >&2
  exit 32
fi
exec mount --bind "/run/rehearsal-efs${path}" "$target"
