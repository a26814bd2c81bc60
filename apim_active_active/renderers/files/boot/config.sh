# --- the node's configuration: deployment.toml (the product's, the pair's merged over it), heap, /etc/hosts ---
install_config() {
  # The product's own file with the pair's settings merged over it; the shipped file, kept beside it at install,
  # is what every boot merges from again.
  local conf="$APIM_HOME/repository/conf" merged
  if [[ ! -e "$conf/deployment.toml.shipped" ]]; then
    log "not starting API-M: $conf/deployment.toml.shipped (the pack's own, kept at install) is missing: replace the node"
    return 1
  fi
  merged=$(mktemp)
  if ! "$MERGE_CONFIG" "$conf/deployment.toml.shipped" "$CONFIG_SOURCE" >"$merged"; then
    rm -f "$merged"
    log "not starting API-M: no deployment.toml from $conf/deployment.toml.shipped and $CONFIG_SOURCE"
    return 1
  fi
  # Root-only until sealed (vault.sh, with the vault on), then readable by API-M.
  install -m 0600 -o root -g root "$merged" "$conf/deployment.toml"
  rm -f "$merged"
  [[ -z "$SECURE_VAULT" ]] || seal_secrets "$conf/deployment.toml" || return 1
  chgrp "$OS_USER" "$conf/deployment.toml"
  chmod 0640 "$conf/deployment.toml"
  log "installed $conf/deployment.toml: the product's, with the pair's settings merged over it"
}

write_runtime_env() {
  local mem_kib heap_mib
  mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
  heap_mib=$((mem_kib * HEAP_PERCENT / 100 / 1024))
  umask 022
  printf 'JAVA_HOME=%s\nJVM_MEM_OPTS=-Xms%sm -Xmx%sm\n' "$JAVA_HOME" "$heap_mib" "$heap_mib" >"$RUNTIME_ENV"
  # The kid of the API keys and internal keys this node signs (install_keystores; deployment.toml's api_key_alias).
  echo "APIM_API_KEY_ALIAS=${API_KEY_ALIAS:-gateway_certificate_alias}" >>"$RUNTIME_ENV"
}

map_public_name() {
  # The node's own calls to its public name (e.g. the JWKS endpoint at https://<name>:9443) stay on the node; a
  # gateway node's go to the node of the pair it chose (PUBLIC_NAME_ADDRESS). Unless only lines of that address name
  # it, the name is taken off every line (a line left with no name goes; the resolver takes the first line naming
  # it) and mapped on a line of its own at the end; everything else stays. The awk exits 1 when nothing is to change.
  local address=${PUBLIC_NAME_ADDRESS:-127.0.0.1} others
  if others=$(awk -v name="$PUBLIC_NAME" -v address="$address" '/^[[:space:]]*#/ { print; next }
      { kept = $1; hit = 0; for (i = 2; i <= NF; i++) if ($i == name) hit = 1; else kept = kept " " $i }
      !hit { print; next } { if ($1 == address) found = 1; else other = 1 } kept != $1 { print kept }
      END { exit found && !other }' "$HOSTS_FILE"); then
    printf '%s%s %s\n' "${others:+$others$'\n'}" "$address" "$PUBLIC_NAME" >"$HOSTS_FILE"
    log "mapped $PUBLIC_NAME to $([[ "$address" == 127.0.0.1 ]] && echo this node || echo "$address") in $HOSTS_FILE"
  fi
}
