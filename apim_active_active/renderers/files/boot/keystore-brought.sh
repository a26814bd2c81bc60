# --- keystore.source other than generated: the pair's keystore made from what the operator brings ------------------
# Shipped only to the pair's nodes of such an environment (a restored one takes its source's keystore), with the part of
# its source (keystore-secret.sh or keystore-private-ca.sh), which defines bring_key_and_certificates: key.pem,
# cert.pem and chain.pem in the current folder. The first node, under the secrets lock (ensure_generated_secrets),
# fills the empty pair secret; nothing is put unless the result passed every check, so a refusal leaves the secret empty
# and the next boot tries again. KEYSTORE_SOURCE_SETTING: the setting every refusal names (keystore.secret_arn or
# keystore.certificate_authority_arn); KEYSTORE_SOURCE_ARN: its value.
: "${KEYSTORE_SOURCE_SETTING:?}" "${KEYSTORE_SOURCE_ARN:?}"

# make_brought_keystore DIR: DIR/KEYSTORE_FILE, the brought key and its certificate chain under KEYSTORE_ALIAS, and
# DIR/store.pass, a fresh password of the pair's (store and key), once what the product does not check passed: an RSA
# key (tokens and API keys are signed RS256), the certificate's own, its chain and dates (check_keystore). Also what
# scripts/rotate_keystore.py makes the next key with.
make_brought_keystore() {
  mkdir -p "$1"
  (
    cd "$1"
    umask 077
    KEYSTORE_NAMED="$KEYSTORE_SOURCE_SETTING $KEYSTORE_SOURCE_ARN"
    bring_key_and_certificates || return
    openssl x509 -in cert.pem -noout 2>/dev/null || keystore_refused "no certificate" || return
    grep -q 'PRIVATE KEY-----' key.pem || keystore_refused "no private key" || return
    openssl rsa -in key.pem -check -noout -passin pass: >/dev/null 2>&1 ||
      keystore_refused "its private key is not an unencrypted RSA key" || return
    [[ "$(openssl pkey -in key.pem -pubout)" == "$(openssl x509 -in cert.pem -noout -pubkey)" ]] ||
      keystore_refused "its private key is not the certificate's" || return
    # With the secure vault the cipher tool encrypts under this certificate (Cipher.init(Certificate)): Java refuses one
    # whose key usage is critical without dataEncipherment ("Wrong key usage").
    if [[ -n "${SECURE_VAULT:-}" ]] && openssl x509 -in cert.pem -noout -ext keyUsage 2>/dev/null | grep -q critical &&
      ! openssl x509 -in cert.pem -noout -ext keyUsage | grep -q 'Data Encipherment'; then
      keystore_refused "its certificate's key usage is critical without dataEncipherment, which the secure vault's cipher tool encrypts under" || return
    fi
    # As WSO2's "Creating New Keystores" makes a keystore from an existing certificate: openssl pkcs12 -export, then
    # keytool -importkeystore (apim.docs.wso2.com, Administer > Configuring Keystores).
    printf '%s\n' "$(<cert.pem)" "$(<chain.pem)" >bundle.pem  # a PEM without its last newline joins the next
    openssl rand -hex 16 >store.pass
    openssl pkcs12 -export -inkey key.pem -in bundle.pem -name "$KEYSTORE_ALIAS" -passout file:store.pass -out pair.p12
    keytool -importkeystore -noprompt -srckeystore pair.p12 -srcstoretype PKCS12 -srcstorepass:file store.pass \
      -destkeystore "$KEYSTORE_FILE" -deststoretype JKS -deststorepass:file store.pass -destkeypass:file store.pass \
      >/dev/null 2>&1
    check_keystore . || return
    # Java keeps in the key's chain only the certificates that issue one another (by name): any other is a broken link.
    (($(grep -c 'BEGIN CERT' chain.pem) == $(grep -c 'BEGIN CERT' bundle.pem))) ||
      keystore_refused "its chain is broken: of its $(grep -c 'BEGIN CERT' bundle.pem) certificates only $(grep -c \
        'BEGIN CERT' chain.pem) issue one another from the key's up" || return
  )
}

bring_keystore_secret() {
  local brought=$1/brought
  (
    # Whatever happens, no copy of the brought key stays on the node (the trap runs where the failure was: by name).
    trap 'rm -rf "$brought"' EXIT
    make_brought_keystore "$brought"
    put_keystore_secret "$brought"
  )
  log "made the keystore of the pair from $KEYSTORE_SOURCE_SETTING $KEYSTORE_SOURCE_ARN into Secrets Manager"
}
