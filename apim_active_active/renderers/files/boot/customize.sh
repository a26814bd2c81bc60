# --- the environment's customization (customization.*): JVM options, extra jars, the post-boot hook --------------
# Shipped only to the nodes of an environment that has some (boot_script.py's CUSTOMIZE_PART): main.sh runs customize
# last before API-M starts. EXTRA_JARS: URL[#SHA256] words; JVM_OPTIONS: the start script's JAVA_OPTS (the empty ones:
# nothing of that kind); NODE_ROLE: node-1, node-2 or gateway (the hook's environment).
: "${EXTRA_JARS?}" "${JVM_OPTIONS?}" "${POST_BOOT_HOOK?}" "${NODE_ROLE:?}"
HOOK_FILE=${HOOK_FILE:-/var/lib/wso2am/post-boot-hook}

# WSO2's rule for where a jar goes ("How to Add External Jar Libraries to WSO2 Carbon based Products",
# wso2.com/library/knowledgebase/add-external-jar-libraries-wso2-carbon-based-products): an OSGi bundle (its manifest
# has a Bundle-SymbolicName) in repository/components/dropins; any other jar in repository/components/lib, which
# Carbon turns into a bundle at its next start. A jar already there (either folder) is kept: a new jar is a new URL.
customize() {
  local entry url name folder components=$APIM_HOME/repository/components
  # write_runtime_env has just written the file afresh: added once per boot.
  [[ -z "$JVM_OPTIONS" ]] || echo "JAVA_OPTS=$JVM_OPTIONS" >>"$RUNTIME_ENV"
  for entry in $EXTRA_JARS; do
    url=${entry%%#*}
    name=${url##*/}
    [[ ! -s "$components/lib/$name" && ! -s "$components/dropins/$name" ]] || continue
    retry "$RETRY_TRIES" 2 fetch "$url" "$components/$name"
    if [[ "$entry" == *#* ]] && ! sha256sum --check --status <<<"${entry#*#}  $components/$name"; then
      log "not starting API-M: $url has sha256 $(sha256sum <"$components/$name" | cut -c1-64), not customization.extra_jars' ${entry#*#}"
      rm -f "$components/$name"
      return 1
    fi
    folder=lib
    if unzip -p "$components/$name" META-INF/MANIFEST.MF | grep '^Bundle-SymbolicName:' >/dev/null; then folder=dropins; fi
    # Carbon writes the bundles it makes of lib's jars into dropins: API-M's user's, as the pack's.
    [[ -d "$components/$folder" ]] || { mkdir -m 0750 "$components/$folder" && chown "$OS_USER:$OS_USER" "$components/$folder"; }
    chmod 0640 "$components/$name"
    chown "$OS_USER:$OS_USER" "$components/$name"
    mv "$components/$name" "$components/$folder/"
    log "installed $name in repository/components/$folder"
  done
  [[ -z "$POST_BOOT_HOOK" ]] || run_post_boot_hook
}

# The operator's script, run as root at the end of the boot step, before API-M starts, at every run of the boot step;
# its output line by line in the boot log. A failure stops the boot: API-M does not start.
run_post_boot_hook() {
  local status=0
  mkdir -p "${HOOK_FILE%/*}"
  retry "$RETRY_TRIES" 2 fetch "$POST_BOOT_HOOK" "$HOOK_FILE"
  chmod 0700 "$HOOK_FILE"
  log "post-boot hook: running $POST_BOOT_HOOK"
  APIM_HOME=$APIM_HOME OS_USER=$OS_USER NODE_ROLE=$NODE_ROLE AWS_REGION=$AWS_REGION "$HOOK_FILE" </dev/null 2>&1 |
    while IFS= read -r line || [[ -n "$line" ]]; do log "post-boot hook: $line"; done || status=${PIPESTATUS[0]}
  if ((status)); then
    log "not starting API-M: the post-boot hook $POST_BOOT_HOOK exited $status"
    return 1
  fi
  log "post-boot hook: $POST_BOOT_HOOK exited 0"
}
