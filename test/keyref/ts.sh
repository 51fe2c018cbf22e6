#!/usr/bin/env bash
# `openssl ts -reply` (a time-stamping authority) opens its signer key with
# fopen, so `-inkey smartkey:...` cannot work; docs/legacy-apps.md gives a
# key-reference file instead, with -provider flags or with the provider
# activated through openssl.cnf alone. Both sign in SmartKey and the reply
# verifies with stock openssl.
# Usage: ts.sh MODULE_DIR EMULATOR LEGACY_PROGRAM
source "$(dirname "$0")/lib.sh"
keyref_init "$@"
emulator_start

create_rsa tsa 2048 >/dev/null || fatal "could not create the TSA key"
use_env_config
run ossl pkey -in smartkey:name=tsa -out "$WORK/tsa.ref.pem"
succeeded || fatal "could not write the key-reference file"
run ossl req -new -x509 -key smartkey:name=tsa -subj /CN=smartkey-tsa \
    -days 2 -addext extendedKeyUsage=critical,timeStamping \
    -out "$WORK/tsa.crt"
succeeded || fatal "could not make the TSA certificate"

cat >"$WORK/ts.cnf" <<CNF
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
serial = $WORK/tsa.serial
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
ess_cert_id_alg = sha256
CNF
echo 01 >"$WORK/tsa.serial"
echo 'data to time-stamp' >"$WORK/data"
OPENSSL_CONF=$WORK/empty.cnf openssl ts -query -data "$WORK/data" -sha256 \
    -cert -out "$WORK/query.tsq" 2>/dev/null || fatal "no time-stamp query"

verify_reply() {
    OPENSSL_CONF=$WORK/empty.cnf timeout "$CLI_TIMEOUT" openssl ts -verify \
        -queryfile "$WORK/query.tsq" -in "$1" -CAfile "$WORK/tsa.crt" \
        -untrusted "$WORK/tsa.crt" >/dev/null 2>&1
}

run ossl ts -reply -config "$WORK/ts.cnf" -queryfile "$WORK/query.tsq" \
    -signer "$WORK/tsa.crt" -inkey smartkey:name=tsa -out "$WORK/uri.tsr"
check "ts -reply -inkey smartkey:... fails (ts opens the key with fopen)" \
    failed_cleanly

counters_reset
run ossl ts -reply -config "$WORK/ts.cnf" -queryfile "$WORK/query.tsq" \
    -signer "$WORK/tsa.crt" -inkey "$WORK/tsa.ref.pem" -out "$WORK/flags.tsr"
check "ts -reply -inkey KEY-REFERENCE-FILE with -provider flags succeeds" \
    succeeded
check "  signed in SmartKey" equals "$(counter '.requests["POST /crypto/v1/sign"]')" 1
check "  and the reply verifies" verify_reply "$WORK/flags.tsr"

config_only_activation
{
    cat "$WORK/openssl.cnf"
    printf '\n[ tsa ]\ndefault_tsa = tsa_config1\n[ tsa_config1 ]\n'
    printf 'serial = %s\nsigner_digest = sha256\n' "$WORK/tsa.serial"
    printf 'default_policy = 1.2.3.4.1\ndigests = sha256\n'
    printf 'signer_cert = %s\nsigner_key = %s\n' "$WORK/tsa.crt" \
        "$WORK/tsa.ref.pem"
} >"$WORK/tsa-all.cnf"
run env OPENSSL_CONF="$WORK/tsa-all.cnf" timeout "$CLI_TIMEOUT" openssl ts \
    -reply -queryfile "$WORK/query.tsq" -out "$WORK/cnf.tsr"
check "ts -reply with signer_key = KEY-REFERENCE-FILE, provider from openssl.cnf only" \
    succeeded
check "  and the reply verifies" verify_reply "$WORK/cnf.tsr"

finish
