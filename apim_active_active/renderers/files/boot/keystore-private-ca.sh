# --- keystore.source = "private_ca": a key made on the node, its certificate issued by keystore.certificate_authority_arn
# (keystore-brought.sh's source part.) The key never leaves the node; the certificate names the pair as a generated one
# does (CERT_NAME, CERT_SAN), valid apim.keystore_validity_days (KEYSTORE_VALIDITY_DAYS).
bring_key_and_certificates() {
  local san=${CERT_SAN//dns:/DNS:} arn ca=(--region "$AWS_REGION" --certificate-authority-arn "$KEYSTORE_SOURCE_ARN")
  openssl req -new -newkey rsa:2048 -nodes -keyout key.pem -subj "/CN=$CERT_NAME" -addext "subjectAltName=${san//ip:/IP:}" \
    -out csr.pem 2>/dev/null
  # A leaf (the blank end-entity template: the node role may issue no other) with the CSR's names and a key usage the
  # pair needs: signing (tokens, TLS) and data encipherment, which WSO2's cipher tool (the secure vault) encrypts under
  # (Java refuses a critical key usage without it; EndEntityCertificate/V1's has none: acm-pca's template docs).
  arn=$(aws acm-pca issue-certificate "${ca[@]}" --csr fileb://csr.pem --signing-algorithm SHA256WITHRSA \
    --template-arn "${KEYSTORE_SOURCE_ARN%%:acm-pca:*}:acm-pca:::template/BlankEndEntityCertificate_APIPassthrough/V1" \
    --api-passthrough '{"Extensions": {"KeyUsage": {"DigitalSignature": true, "KeyEncipherment": true, "DataEncipherment": true},
      "ExtendedKeyUsage": [{"ExtendedKeyUsageType": "SERVER_AUTH"}, {"ExtendedKeyUsageType": "CLIENT_AUTH"}]}}' \
    --validity "Value=$KEYSTORE_VALIDITY_DAYS,Type=DAYS" --query CertificateArn --output text 2>&1) ||
    keystore_refused "it did not issue a certificate: ${arn##*$'\n'}" || return
  # The waiter is bounded (AWS CLI: GetCertificate until issued, at most 60 tries a second apart).
  aws acm-pca wait certificate-issued "${ca[@]}" --certificate-arn "$arn" 2>error ||
    keystore_refused "certificate $arn not issued: $(tail -1 error)" || return
  aws acm-pca get-certificate "${ca[@]}" --certificate-arn "$arn" --query Certificate --output text >cert.pem
  aws acm-pca get-certificate "${ca[@]}" --certificate-arn "$arn" --query CertificateChain --output text >chain.pem
  [[ "$(<chain.pem)" != None ]] || : >chain.pem
  log "keystore: $arn issued by $KEYSTORE_SOURCE_ARN for $CERT_NAME"
}
