#!/bin/bash
# Boot step of a WSO2 API-M active-active node, run by cloud-init (runcmd) on first boot.
# Safe to run again (reboot, re-run by hand): every step checks before it acts.
#   wso2am-boot [boot]             the whole boot step
#   wso2am-boot wait-key-manager   only wait for an external Key Manager (the unit's ExecStartPre)
#   wso2am-boot check-share        stop API-M while its share is unreachable, start it again once it is back
#                                  (the share watch timer, every 15 seconds)
#   wso2am-boot push               content_sync = rsync, node 1: one push of the artifacts to node 2 (its timer)
#   wso2am-boot gate               is this node in service? (scripts/roll.py runs it through Session Manager)
#   wso2am-boot jmx                the JVM's JMX agent on loopback in API-M's running JVM (the unit's ExecStartPost)
#   wso2am-boot gateway-watch      a gateway node: follow the pair, leave the group gracefully (its timer, every 15 s)
#   wso2am-boot rekey              this node onto the pair's keystore as its secret holds it, API-M restarted (a rotation)
#   wso2am-boot keystore-expiry    log the days left of the signing certificate (its timer: daily, and at API-M's start)
#   wso2am-boot merge-config SHIPPED PAIR
#                                  the product's deployment.toml with the pair's merged over it, on stdout
#                                  (on its own: no node environment, no network)
# Parameters come from the node's env file, written by cloud-init next to this script.
#
# Assembled from the parts in renderers/files/boot/ (boot_script.py's BOOT_PARTS): this header, the steps every node
# runs, the part of the node's content_sync mode (efs.sh or rsync.sh: only that one is shipped), a restored
# environment's parts (restore.sh, and with EFS restore-share.sh: shipped to its nodes only), the parts settings ask for
# (customize.sh, a brought keystore's keystore-*.sh), and main.sh. A gateway scale-out node (CONTENT_SYNC
# none) gets gateway.sh in place of the mode's part, and no database.sh. It reaches a node as an object of the stack's
# boot bucket, fetched and checked by the user data's loader (renderers/boot_loader.py).
set -euo pipefail

MERGE_CONFIG=${MERGE_CONFIG:-/usr/local/sbin/wso2am-merge-config}
if [[ "${BASH_SOURCE[0]}" == "$0" && "${1:-}" == merge-config ]]; then
  exec "$MERGE_CONFIG" "${@:2}"
fi

NODE_ENV=${NODE_ENV:-/etc/wso2am/node.env}
# shellcheck source=/dev/null
. "$NODE_ENV"
# The contract with the rendered node.env (checked by tests/unit/test_node_env_contract.py): what every node needs
# here, what only its mode needs at the top of the mode's part.
: "${APIM_HOME:?}" "${ARCHIVE_URL:?}" "${INSTALL_DIR:?}" "${OS_USER:?}" "${OS_UID:?}" "${CONTENT_SYNC:?}"
: "${SHARED_FOLDERS?}" "${CONFIG_SOURCE:?}" "${JAVA_HOME:?}" "${HEAP_PERCENT:?}" "${SERVICE:?}"
: "${RUNTIME_ENV:?}" "${AWS_REGION:?}" "${START_SCRIPT:?}" "${SECRETS_FILE:?}" "${JDBC_DRIVER_URL:?}"
: "${DB_ENGINE:?}" "${DB_HOST:?}" "${DB_PORT:?}" "${APIM_DB:?}" "${SHARED_DB:?}" "${DB_SCRIPT:?}" "${DB_SECRET_ARN:?}"
: "${ADMIN_SECRET_ARN:?}" "${KEYSTORE_SECRET_ARN:?}" "${KEYSTORE_FILE:?}" "${KEYSTORE_ALIAS:?}" "${TRUSTSTORE_FILE:?}"
: "${CERT_NAME:?}" "${CERT_SAN:?}" "${SHARED_DB_MARKER:?}" "${APIM_DB_MARKER:?}" "${PUBLIC_NAME:?}"
: "${KEY_MANAGER_URL?}" "${KEY_MANAGER_WAIT_SECONDS:?}" "${KEY_MANAGER_CA?}" "${DB_APP_SECRET_ARN?}" "${DB_APP_USER:?}"
: "${SHARE_WATCH_TIMER:?}" "${KEYSTORE_VALIDITY_DAYS:?}" "${FIRST_NODE_URL?}" "${FIRST_START_WAIT_SECONDS:?}"
: "${ENCRYPTION_KEY_SECRET_ARN?}" "${UPDATE_LEVEL?}" "${PEER_IP:?}" "${PEER_PORTS:?}" "${GATE_URLS:?}"
: "${GATE_PORTS:?}" "${AGENT_CONFIG?}" "${AGENT_CTL:?}" "${LOCAL_LOG_DAYS:?}" "${JMX_PORT:?}"
: "${SECURE_VAULT?}"
# SYNC_ROLE: rsync: manager (node 1) or worker (node 2); efs: none. (Comments here on lines of their own: only those
# are left out of what a node gets, whose user data is near EC2's 16 KB.)
SYNC_ROLE=${SYNC_ROLE:-}
# Under /var/lib: a hold made before a reboot (e.g. node 2 waiting for its first push) must survive it.
STOPPED_BY_WATCH=${STOPPED_BY_WATCH:-/var/lib/wso2am/stopped-by-share-watch}
KEY_MANAGER_POLL_SECONDS=${KEY_MANAGER_POLL_SECONDS:-5}
STARTED_ONCE=${STARTED_ONCE:-/var/lib/wso2am/started-once}
# BOOT_DONE: the boot step ran to its end on this disk. LOOKED_SINCE_BOOT: under /run, empty after each boot.
BOOT_DONE=${BOOT_DONE:-/var/lib/wso2am/boot-done}
LOOKED_SINCE_BOOT=${LOOKED_SINCE_BOOT:-/run/wso2am/share-watch-looked}
# BOOT_LOG: observability.BOOT_LOG, shipped by the CloudWatch agent. SAID_PRESENT: the share watch's last "present"
# verdict. SHARE_SEEN: the watch found the share there once on this disk. HOSTS_FILE: where map_public_name maps the
# public name (tests point these elsewhere).
BOOT_LOG=${BOOT_LOG:-/var/log/wso2am/boot.log}
SAID_PRESENT=${SAID_PRESENT:-/run/wso2am/share-watch-said-present}
SHARE_SEEN=${SHARE_SEEN:-/var/lib/wso2am/share-seen}
HOSTS_FILE=${HOSTS_FILE:-/etc/hosts}
RETRY_TRIES=${RETRY_TRIES:-10}
RETRY_MAX_DELAY=${RETRY_MAX_DELAY:-60}
SECURITY="$APIM_HOME/repository/resources/security"
