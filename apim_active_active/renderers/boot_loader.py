"""The boot step's loader: what a node's user data runs instead of carrying the boot step itself.

EC2 takes at most 16 KB of user data (raw, before base64: AWS's "Run commands when you launch an EC2 instance" page), and
the boot step with every part a setting can ask for is more than that gzipped. The stack puts each boot step in its S3
bucket under its SHA-256 (constructs/boot_assets.py); the loader fetches it (bounded: at a first boot the instance role
and the S3 endpoint can take a minute), refuses it unless its SHA-256 is the one the user data names, installs it where
the units and scripts call it, and runs it. A new boot step is a new key and a new user data: `scripts/roll.py` sees the
node differ.
"""

from __future__ import annotations

import hashlib

from apim_active_active.renderers.node_layout import BOOT_SCRIPT

BOOT_LOADER = "/usr/local/sbin/wso2am-fetch-boot"
FETCH_TRIES, FETCH_PAUSE_SECONDS = 30, 10


def digest(script: str) -> str:
    return hashlib.sha256(script.encode()).hexdigest()


def asset_key(script: str) -> str:
    """Where a boot step is in the stack's boot bucket: by its content, so a node only ever runs the step it was made for."""
    return f"boot/{digest(script)}.sh"


def render_loader(bucket: str, region: str, script: str) -> str:
    source = f"s3://{bucket}/{asset_key(script)}"
    return f"""#!/bin/bash
# {BOOT_LOADER}: fetch this node's boot step from {source}, check its SHA-256, install it as {BOOT_SCRIPT}, run it.
set -euo pipefail
for try in $(seq {FETCH_TRIES}); do
  aws s3 cp --only-show-errors --region {region} {source} {BOOT_SCRIPT}.part && break
  if [[ $try == {FETCH_TRIES} ]]; then echo "{BOOT_LOADER}: cannot fetch {source}" >&2; exit 1; fi
  sleep {FETCH_PAUSE_SECONDS}
done
if ! echo "{digest(script)}  {BOOT_SCRIPT}.part" | sha256sum --check --status; then
  echo "{BOOT_LOADER}: {source} is not the boot step this node was made for (SHA-256 differs)" >&2
  exit 1
fi
chmod 0755 {BOOT_SCRIPT}.part
mv {BOOT_SCRIPT}.part {BOOT_SCRIPT}
exec {BOOT_SCRIPT}
"""
