#!/bin/bash
# One step of a rotation of the pair's keystore with a grace period (docs/keystore.md), run as root on a node through the
# node shell (scripts/rotate_keystore.py's node_script: this file written to a root-only file there and run as
#   bash FILE PHASE [GRACE_DAYS FORCE]; the rehearsal sends it the same way). Not in any node's user data.
#   status   the pair's keystore secret as it stands (names, aliases, fingerprints, dates), and whether this node runs it
#   stage    the new key into the keystore as an extra private key entry ("next": every node's JWKS then serves its
#            kid), its certificate trusted under a new alias; what signs is unchanged
#   switch   the new key signs ("wso2carbon"), the old one kept as "previous" (its JWT access tokens still verify), API
#            keys and internal keys signed under the new alias (the old certificate still trusted under its alias);
#            grace_until set GRACE_DAYS from now
#   finish   after grace_until (or FORCE=1): the old key and its certificate's alias removed
#   rekey    this node onto the secret as it stands (the boot step's `rekey`: keystore, truststore, deployment.toml,
#            API keys' alias, API-M restarted; pair node or gateway node)
# Each secret-changing step looks at the secret first: done already, it says so and changes nothing (a rotation that
# stopped resumes). The secret's values only ever sit in this root-only folder; what is printed (the last stdout line,
# JSON, for rotate_keystore.py) and logged (the boot log) names aliases, fingerprints and dates, never a value.
set -euo pipefail
phase=${1:?phase} grace_days=${2:-30} force=${3:-0}
set --
# Sourced, the boot step only defines its steps (and reads /etc/wso2am/node.env): its helpers are this node's own.
# shellcheck source=/dev/null
. "${BOOT_SCRIPT:-/usr/local/sbin/wso2am-boot}"
NEXT=next
PREVIOUS=previous

answer() { python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])))' "$1"; }
fail() {
  log "keystore rotation: $phase: $1"
  python3 -c 'import json, sys; print(json.dumps({"ok": False, "saw": sys.argv[1]}))' "$1"
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077
cd "$work"

# install_keystores (format 2: "trusted", "api_key_alias"), rekey and keystore_expiry came with rotation: an older boot
# step would install the stores without the new alias.
if ! declare -F rekey >/dev/null || ! declare -F keystore_expiry >/dev/null; then
  fail "this node's boot step predates keystore rotation: roll the nodes onto the toolkit's (scripts/roll.py) first"
fi

if [[ "$phase" == rekey ]]; then
  rekey
  answer "{\"ok\": true, \"phase\": \"rekey\", \"api_key_alias\": \"$API_KEY_ALIAS\"}"
  exit 0
fi

secret_string "$KEYSTORE_SECRET_ARN" >secret.json 2>error || fail "cannot read the keystore secret: $(tail -1 error)"

# The rotation's bookkeeping, on the files in this folder: secret.json <-> pair.jks, store.pass and meta.json (the
# secret's other keys); certificates as PEM files named after their alias.
book() {
  python3 - "$@" <<'PY'
import base64, datetime, hashlib, json, os, re, sys

ALIAS = re.compile(r"[a-z0-9_.-]+")
DEFAULT_ALIAS = "gateway_certificate_alias"  # carbon-apimgt's default api_key_alias and key_alias


def fingerprint(pem):
    """SHA-256 of the certificate's DER, hex: what a JWKS kid is made from (with the algorithm)."""
    body = "".join(line for line in pem.strip().splitlines() if "-----" not in line)
    return hashlib.sha256(base64.b64decode(body)).hexdigest()


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def read(name):
    return open(name).read()


def meta():
    return json.load(open("meta.json"))


def save(value):
    with open("meta.json", "w") as handle:
        json.dump(value, handle)


def trusted(value):
    """The secret's trusted certificates, or what a secret without them means: the signing one, default alias."""
    return dict(value.get("trusted") or {DEFAULT_ALIAS: read("wso2carbon.pem")})


def stop(message):
    print(message, file=sys.stderr)
    sys.exit(3)


step, args = sys.argv[1], sys.argv[2:]
if step == "split":
    secret = json.load(open("secret.json"))
    if not isinstance(secret, dict) or not secret.get("keystore") or not secret.get("password"):
        stop("the keystore secret holds no keystore yet (the pair's first boot makes it)")
    open("pair.jks", "wb").write(base64.b64decode(secret.pop("keystore")))
    open("store.pass", "w").write(secret.pop("password"))
    save(secret)
elif step == "join":
    secret = {"password": read("store.pass"), "keystore": base64.b64encode(open("pair.jks", "rb").read()).decode(), **meta()}
    for alias in secret.get("trusted", {}):
        if not ALIAS.fullmatch(alias):
            stop(f"alias {alias!r}: lower case letters, digits, _ . - only")
    with open("new-secret.json", "w") as handle:
        json.dump(secret, handle)
elif step == "status":
    held = meta()
    certificates = {alias: json.loads(read(alias + ".json")) for alias in args}
    print(json.dumps({
        "signing": certificates.get("wso2carbon"),
        "next": certificates.get("next"),
        "previous": certificates.get("previous"),
        "api_key_alias": held.get("api_key_alias", DEFAULT_ALIAS),
        "trusted": {alias: fingerprint(pem) for alias, pem in trusted(held).items()},
        "grace_until": held.get("grace_until"),
    }))
elif step == "certificate":  # ALIAS: ALIAS.json, what status shows of ALIAS.pem (and its dates, from openssl)
    alias = args[0]
    dates = dict(line.split("=", 1) for line in read(alias + ".dates").splitlines() if "=" in line)
    json.dump({"alias": alias, "sha256": fingerprint(read(alias + ".pem")), "not_before": dates.get("notBefore"),
               "not_after": dates.get("notAfter")}, open(alias + ".json", "w"))
elif step == "stage":  # NEW_ALIAS: next.pem trusted under it, beside what is trusted now
    held = meta()
    held["trusted"] = {**trusted(held), args[0]: read("next.pem")}
    held.setdefault("api_key_alias", DEFAULT_ALIAS)
    save(held)
    print(args[0])
elif step == "switch":  # GRACE_DAYS: API keys signed under next.pem's alias from now on; the grace period's end
    held, wanted = meta(), fingerprint(read("next.pem"))
    aliases = [alias for alias, pem in trusted(held).items() if fingerprint(pem) == wanted]
    if not aliases:
        stop("the new key's certificate is trusted under no alias (the secret was changed by hand since the stage?)")
    held["api_key_alias"] = aliases[0]
    held["grace_until"] = (now() + datetime.timedelta(days=int(args[0]))).isoformat().replace("+00:00", "Z")
    save(held)
    print(json.dumps({"api_key_alias": aliases[0], "grace_until": held["grace_until"]}))
elif step == "finish":  # FORCE: previous.pem's aliases removed, and the grace period with them
    held, force = meta(), args[0] == "1"
    until = held.get("grace_until")
    if until and not force and now() < datetime.datetime.fromisoformat(until.replace("Z", "+00:00")):
        stop(f"the grace period runs until {until}: tokens and API keys the old key signed may still be in use "
             "(force it to finish now)")
    old = fingerprint(read("previous.pem"))
    kept = {alias: pem for alias, pem in trusted(held).items() if fingerprint(pem) != old}
    removed = sorted(set(trusted(held)) - set(kept))
    if held.get("api_key_alias", DEFAULT_ALIAS) in removed:
        stop(f"api_key_alias {held.get('api_key_alias', DEFAULT_ALIAS)} still names the old certificate: switch first")
    held["trusted"] = kept
    held.pop("grace_until", None)
    save(held)
    print(json.dumps({"removed": removed, "grace_until": until}))
else:
    stop(f"no step {step}")
PY
}

# bookkeeping STEP ARGS...: its answer on stdout; its refusal in ./error (callers: || fail "$(tail -1 error)").
bookkeeping() { book "$@" 2>error; }
refused() { fail "$(tail -1 error)"; }
# done_already WHY: the phase finds its work done (a rotation run again resumes): said, and nothing changed.
done_already() {
  log "keystore rotation: $phase: $1: nothing to do"
  answer "{\"ok\": true, \"phase\": \"$phase\", \"done\": false, \"state\": \"$state\"}"
  exit 0
}

keystore() { keytool "$@" -keystore pair.jks -storepass:file store.pass; }
private_keys() { keystore -list 2>/dev/null | awk -F', ' '/, PrivateKeyEntry, / { print $1 }'; }
has_key() { grep -qx "$1" <<<"$keys"; }
export_certificate() {
  keystore -exportcert -rfc -alias "$1" >"$1.pem" 2>/dev/null
  openssl x509 -in "$1.pem" -noout -dates >"$1.dates"
  bookkeeping certificate "$1" || refused
}

put_secret() {
  bookkeeping join || refused
  put_secret_file "$KEYSTORE_SECRET_ARN" "$work/new-secret.json"
}

bookkeeping split || refused
keys=$(private_keys) || fail "the keystore in the secret does not open with its password"
has_key "$KEYSTORE_ALIAS" || fail "the keystore in the secret has no private key under $KEYSTORE_ALIAS"
present=()
for alias in "$KEYSTORE_ALIAS" "$NEXT" "$PREVIOUS"; do
  if has_key "$alias"; then
    export_certificate "$alias"
    present+=("$alias")
  fi
done
if has_key "$NEXT" && has_key "$PREVIOUS"; then
  fail "the keystore holds both $NEXT and $PREVIOUS: not a state a rotation leaves; look at the secret's versions"
fi
state=base
if has_key "$NEXT"; then state=staged; elif has_key "$PREVIOUS"; then state=switched; fi

# Where the pair's keystore comes from (keystore.source), as this node's boot step has it: keystore-brought.sh's setting
# in node.env when brought.
case "${KEYSTORE_SOURCE_SETTING:-}" in
  keystore.secret_arn) source=secrets_manager ;;
  keystore.certificate_authority_arn) source=private_ca ;;
  *) source=generated ;;
esac

# make_next_key: the new key and its certificate into pair.jks under NEXT, from where the pair's keystore comes from:
# generated here, or keystore-brought.sh's make_brought_keystore (the brought secret's current value, or a certificate
# the private CA issues now), whose checks it must pass.
make_next_key() {
  if [[ "$source" == generated ]]; then
    keystore -genkeypair -alias "$NEXT" -keyalg RSA -keysize 2048 -validity "$KEYSTORE_VALIDITY_DAYS" -dname "CN=$CERT_NAME" \
      -ext "SAN=$CERT_SAN" -storetype JKS -keypass:file store.pass 2>/dev/null
    return
  fi
  declare -F make_brought_keystore >/dev/null || fail "this node's boot step cannot make a $source keystore"
  make_brought_keystore "$work/brought" 2>error || fail "the new key from $source: $(tail -1 error)"
  keytool -importkeystore -noprompt -srckeystore brought/"$KEYSTORE_FILE" -srcstorepass:file brought/store.pass \
    -srckeypass:file brought/store.pass -srcalias "$KEYSTORE_ALIAS" -destkeystore pair.jks -deststorepass:file store.pass \
    -destkeypass:file store.pass -destalias "$NEXT" >/dev/null 2>&1 || fail "the new key did not go into the keystore"
}

sha256_of() { openssl x509 -in "$1.pem" -noout -fingerprint -sha256; }

rename_key() {
  keystore -changealias -alias "$1" -destalias "$2" -keypass:file store.pass 2>/dev/null || fail "cannot rename $1 to $2"
}

case "$phase" in
  status)
    held=$(bookkeeping status "${present[@]}") || refused
    signs=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["api_key_alias"])' "$held")
    # This node runs the secret as it stands: the same keystore installed, API keys signed under its alias, and
    # API-M started (its PID file written) after the keystore was installed.
    current=false active=false
    if cmp -s pair.jks "$SECURITY/$KEYSTORE_FILE" && grep -qx "APIM_API_KEY_ALIAS=$signs" "$RUNTIME_ENV" &&
      [[ "$APIM_HOME/wso2carbon.pid" -nt "$SECURITY/$KEYSTORE_FILE" ]]; then current=true; fi
    if systemctl is-active --quiet "$SERVICE" 2>/dev/null; then active=true; fi
    node="{\"current\": $current, \"active\": $active}"
    answer "{\"ok\": true, \"phase\": \"status\", \"state\": \"$state\", \"source\": \"$source\", \"node\": $node, \"secret\": $held}"
    ;;
  stage)
    [[ "$state" != base ]] && done_already "already $state"
    make_next_key
    export_certificate "$NEXT"
    if [[ "$(sha256_of "$NEXT")" == "$(sha256_of "$KEYSTORE_ALIAS")" ]]; then
      fail "the new certificate is the one that signs now ($source: put the new key and certificate in" \
        "${KEYSTORE_SOURCE_ARN:-its source} first)"
    fi
    alias=$(bookkeeping stage "signing-$(date -u +%Y%m%d%H%M%S)") || refused
    put_secret
    log "keystore rotation: staged: the new key as $NEXT ($(openssl x509 -in "$NEXT.pem" -noout -enddate)), trusted under $alias"
    answer "{\"ok\": true, \"phase\": \"stage\", \"done\": true, \"state\": \"staged\", \"alias\": \"$alias\",
      \"next\": $(<"$NEXT.json")}"
    ;;
  switch)
    [[ "$state" == switched ]] && done_already "already switched"
    [[ "$state" == staged ]] || fail "nothing staged: stage a new key first"
    switched=$(bookkeeping switch "$grace_days") || refused
    rename_key "$KEYSTORE_ALIAS" "$PREVIOUS"
    rename_key "$NEXT" "$KEYSTORE_ALIAS"
    put_secret
    log "keystore rotation: switched: the new key signs, the old one kept as $PREVIOUS: $switched"
    answer "{\"ok\": true, \"phase\": \"switch\", \"done\": true, \"state\": \"switched\", \"switched\": $switched}"
    ;;
  finish)
    [[ "$state" == base ]] && done_already "no old key in the keystore"
    [[ "$state" == switched ]] || fail "a new key is staged, not switched: switch (and roll) before finishing"
    finished=$(bookkeeping finish "$force") || refused
    keystore -delete -alias "$PREVIOUS" 2>/dev/null || fail "cannot remove $PREVIOUS"
    put_secret
    log "keystore rotation: finished: the old key and its certificate's alias removed: $finished"
    answer "{\"ok\": true, \"phase\": \"finish\", \"done\": true, \"state\": \"base\", \"finished\": $finished}"
    ;;
  *) fail "no phase $phase (status, stage, switch, finish, rekey)" ;;
esac
