#!/bin/bash
# STAND-IN for the product's bin/ciphertool.sh (wso2/cipher-tool): the real script runs $JAVA_HOME/bin/java, so the
# stand-in needs JAVA_HOME too; the tool itself is standin_ciphertool.py beside this file.
set -euo pipefail
[[ -n "${JAVA_HOME:-}" ]] || { echo "You must set the JAVA_HOME variable before running CipherTool." >&2; exit 1; }
exec python3 "$(dirname "$0")/standin_ciphertool.py" "$@"
