# --- keystore.source = "secrets_manager": the key and certificates the operator put in keystore.secret_arn -----------
# (keystore-brought.sh's source part.) The secret's JSON: {"pkcs12": base64, "password": ..., "alias": optional} (the
# entry named, or the only key it holds), or {"certificate": PEM, "private_key": PEM, "chain": optional PEM}.
bring_key_and_certificates() {
  local out alias
  secret_string "$KEYSTORE_SOURCE_ARN" >brought.json 2>error || keystore_refused "cannot read it: $(tail -1 error)" || return
  python3 - 2>/dev/null <<'PY' ||
import base64, json
brought = json.load(open("brought.json"))
if "pkcs12" in brought:
    open("in.p12", "wb").write(base64.b64decode(brought["pkcs12"], validate=True))
    brought = {"in.pass": brought["password"], "in.alias": brought.get("alias", "")}
else:
    brought = {"cert.pem": brought["certificate"], "key.pem": brought["private_key"], "chain.pem": brought.get("chain", "")}
for name, text in brought.items():
    open(name, "w").write(text)
PY
    keystore_refused 'it is not JSON with "pkcs12" (base64) and "password", or "certificate" and "private_key" (PEM)' || return
  [[ -e in.p12 ]] || return 0
  alias=$(<in.alias)
  # The entry named (or all of them) through keytool, which reads every PKCS#12 (openssl 3 no longer reads the older
  # ones); then its parts as PEM.
  out=$(keytool -importkeystore -noprompt -srckeystore in.p12 -srcstoretype PKCS12 -srcstorepass:file in.pass \
    ${alias:+-srcalias "$alias"} -destkeystore one.p12 -deststoretype PKCS12 -deststorepass:file in.pass 2>&1) ||
    keystore_refused "its PKCS#12: $(grep -m1 error <<<"$out")" || return
  openssl pkcs12 -in one.p12 -passin file:in.pass -nodes -nocerts -out key.pem 2>/dev/null
  openssl pkcs12 -in one.p12 -passin file:in.pass -nokeys -clcerts -out cert.pem 2>/dev/null
  openssl pkcs12 -in one.p12 -passin file:in.pass -nokeys -cacerts -out chain.pem 2>/dev/null
  (($(grep -c 'BEGIN .*PRIVATE KEY' key.pem) < 2)) || keystore_refused 'its PKCS#12 holds several keys: name one ("alias")'
}
