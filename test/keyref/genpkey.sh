#!/usr/bin/env bash
# `openssl genpkey` makes RSA-3072 and EC P-256 keys inside SmartKey with
# the documented command (either provider order), writes a key-reference
# file that loads again and holds no secret, and can never make a key
# locally by accident.
# Usage: genpkey.sh MODULE_DIR EMULATOR LEGACY_PROGRAM
source "$(dirname "$0")/lib.sh"
keyref_init "$@"
emulator_start
use_env_config

# server_key NAME: the key's description in the server's list (or nothing)
server_key() {
    rest GET "/crypto/v1/keys?name=$1" | jq -c --arg n "$1" \
        '[.[] | select(.name == $n)] | .[0] // empty'
}

# no_secret_in FILE: neither the API key nor its secret half, and no
# private-key PEM block; the DER holds only version, type, kid and name.
no_secret_in() {
    local api_key secret
    api_key=$(<"$API_KEY_FILE")
    secret=$(base64 -d <"$API_KEY_FILE" | cut -d: -f2)
    ! grep -Fq -- "$api_key" "$1" &&
        ! grep -Fq -- "$secret" "$1" &&
        ! openssl base64 -d -in <(sed '/^-----/d' "$1") | grep -Fq -- "$secret" &&
        ! grep -q 'PRIVATE KEY' "$1" &&
        [[ $(grep -c '^-----BEGIN' "$1") -eq 1 ]]
}

# ---- RSA-3072 with the documented command --------------------------------
counters_reset
run genpkey_in_smartkey -algorithm RSA -pkeyopt bits:3072 \
    -pkeyopt smartkey-name:web-rsa -out "$WORK/web-rsa.pem"
check "genpkey RSA-3072 succeeds" succeeded
check "genpkey costs one generate request" \
    equals "$(counter '.requests["POST /crypto/v1/keys"]')" 1
check "genpkey sends no other key request" \
    equals "$(($(counter requests_total) - $(counter '.requests["POST /sys/v1/session/auth"]')))" 1
rsa=$(server_key web-rsa)
check "the server's list shows the RSA key" \
    equals "$(jq -r '"\(.obj_type) \(.key_size)"' <<<"$rsa")" "RSA 3072"
check "the RSA key is not exportable by default" \
    equals "$(jq -r '.key_ops | index("EXPORT")' <<<"$rsa")" null
check "the file is a key reference" \
    grep -q '^-----BEGIN SMARTKEY KEY REFERENCE-----$' "$WORK/web-rsa.pem"
check "the reference file holds no secret" no_secret_in "$WORK/web-rsa.pem"
check "the reference names the key's kid" \
    grep -Fq "$(jq -r .kid <<<"$rsa")" \
    <(openssl asn1parse -in "$WORK/web-rsa.pem")
server_public_key web-rsa "$WORK/web-rsa.der"
check "the reference loads with pkey -pubout as the server's public key" \
    pubout_matches "$WORK/web-rsa.pem" "$WORK/web-rsa.der"

# ---- EC P-256, smartkey first, key operations and exportability ----------
GENPKEY_PROVIDERS=(-provider smartkey -provider default)
run genpkey_in_smartkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt smartkey-name:web-ec -pkeyopt smartkey-key-ops:sign,verify \
    -pkeyopt smartkey-exportable:1 -out "$WORK/web-ec.pem"
check "genpkey EC P-256 succeeds with smartkey loaded first" succeeded
ec=$(server_key web-ec)
check "the server's list shows the EC P-256 key" \
    equals "$(jq -r '"\(.obj_type) \(.elliptic_curve)"' <<<"$ec")" \
    "EC NistP256"
check "smartkey-key-ops and smartkey-exportable reach SmartKey" \
    equals "$(jq -c '.key_ops | sort' <<<"$ec")" '["EXPORT","SIGN","VERIFY"]'
check "the EC reference file holds no secret" no_secret_in "$WORK/web-ec.pem"
server_public_key web-ec "$WORK/web-ec.der"
check "the EC reference loads with pkey -pubout as the server's public key" \
    pubout_matches "$WORK/web-ec.pem" "$WORK/web-ec.der"
run ossl pkey -in "$WORK/web-ec.pem" -text -noout
check "pkey -text on the reference describes the SmartKey key" \
    stdout_has_text "name: web-ec"
GENPKEY_PROVIDERS=(-provider default -provider smartkey)

run genpkey_in_smartkey -algorithm EC -pkeyopt group:P-384 \
    -pkeyopt smartkey-name:p384 -outform DER -out "$WORK/p384.der"
check "genpkey EC P-384 with -outform DER succeeds" succeeded
check "the DER reference loads" \
    pubout_matches "$WORK/p384.der" <(server_public_key p384 /dev/stdout)

# ---- never local ---------------------------------------------------------
# Without the property query, default's generator is picked: it refuses
# the smartkey-only parameter instead of making a local key.
keys_before=$(rest GET /crypto/v1/keys | jq length)
run ossl genpkey -algorithm RSA -pkeyopt bits:2048 \
    -pkeyopt smartkey-name:not-local -out "$WORK/not-local.pem"
check "without -propquery genpkey fails rather than generate locally" \
    failed_cleanly
check "  and names the parameter it refused" stderr_has 'smartkey-name'
check "  and writes no key file" test ! -s "$WORK/not-local.pem"
run ossl_plain genpkey -provider-path "$MODULE_DIR" -provider default \
    -algorithm EC -pkeyopt group:P-256 -pkeyopt smartkey-name:not-local \
    -out "$WORK/not-local.pem"
check "with smartkey not loaded at all genpkey fails too" failed_cleanly
check "  and writes no key file" test ! -s "$WORK/not-local.pem"
check "no key was made in SmartKey by the refused commands" \
    equals "$(rest GET /crypto/v1/keys | jq length)" "$keys_before"

# ---- refusals ------------------------------------------------------------
run genpkey_in_smartkey -algorithm RSA -pkeyopt bits:2048 \
    -out "$WORK/nameless.pem"
check "a key without smartkey-name is refused" failed_cleanly
check "  saying the name is required" stderr_has 'needs a name'
check "  and nothing is written" test ! -s "$WORK/nameless.pem"
run genpkey_in_smartkey -algorithm RSA -pkeyopt bits:2048 \
    -pkeyopt smartkey-name:web-rsa -out "$WORK/again.pem"
check "a name already in use is refused" failed_cleanly
check "  with SmartKey's reason" stderr_has 'already exists'
run genpkey_in_smartkey -algorithm EC -pkeyopt group:secp256k1 \
    -pkeyopt smartkey-name:k1 -out "$WORK/k1.pem"
check "an unsupported curve is refused" failed_cleanly
check "  naming the curves that work" stderr_has 'P-256, P-384 or P-521'
run genpkey_in_smartkey -algorithm RSA -pkeyopt smartkey-name:x \
    -pkeyopt smartkey-key-ops:EXPORT -pkeyopt smartkey-exportable:0 \
    -out "$WORK/x.pem"
check "EXPORT in key ops with exportable 0 is refused" failed_cleanly
check "no key was made by the refused commands" \
    equals "$(rest GET /crypto/v1/keys | jq length)" "$keys_before"

finish
