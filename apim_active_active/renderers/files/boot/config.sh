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
  install -m 0640 -o root -g "$OS_USER" "$merged" "$conf/deployment.toml"
  rm -f "$merged"
  log "installed $conf/deployment.toml: the product's, with the pair's settings merged over it"
}

write_runtime_env() {
  local mem_kib heap_mib
  mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
  heap_mib=$((mem_kib * HEAP_PERCENT / 100 / 1024))
  umask 022
  printf 'JAVA_HOME=%s\nJVM_MEM_OPTS=-Xms%sm -Xmx%sm\n' "$JAVA_HOME" "$heap_mib" "$heap_mib" >"$RUNTIME_ENV"
}

map_public_name() {
  # The node's own calls to its public name (e.g. the JWKS endpoint at https://<name>:9443) stay on the node.
  if ! awk -v name="$PUBLIC_NAME" '$1 == "127.0.0.1" { for (i = 2; i <= NF; i++) if ($i == name) found = 1 }
      END { exit !found }' /etc/hosts; then
    echo "127.0.0.1 $PUBLIC_NAME" >>/etc/hosts
    log "mapped $PUBLIC_NAME to this node in /etc/hosts"
  fi
}
