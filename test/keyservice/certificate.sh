#!/usr/bin/env bash
# smartkey-keyservice with the BYOK certificate held in SmartKey: the
# configuration's certificate is a smartkey: URI naming a CERTIFICATE
# object (by name or kid), read through OSSL_STORE with the provider. A
# key identifier served with it answers callouts that python3-jwcrypto
# decrypts with that certificate's private key (and not with the other
# key identifier's, whose certificate is a PEM file), nothing exported;
# a SIGHUP moves the other's certificate into SmartKey too. A URI that
# names no certificate (nothing there, an AES key, an RSA key with no
# certificate, an EC certificate, a listing of several) is refused at
# --check and at start, with the file, the line and the reason.
# Usage: certificate.sh MODULE_DIR EMULATOR KEYSERVICE
source "$(dirname "$0")/lib.sh"
ks_setup "$@"
# A second stand-in BYOK certificate, put into SmartKey as docs/legacy-apps.md
# tells users; its private key (Salesforce's side) stays here for the check.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/sf-held.pem" 2>/dev/null &&
    openssl req -x509 -new -key "$WORK/sf-held.pem" -subj /CN=byok-held \
        -days 2 -out "$WORK/sf-held.crt" 2>/dev/null ||
    fatal "cannot make the second stand-in certificate"
kid=$(ks_import_certificate "Salesforce BYOK" "$WORK/sf-held.crt") ||
    fatal "cannot put the certificate into SmartKey"

# with_key_2 OUT CERTIFICATE: the usual configuration (key-1, its
# certificate a file) plus key-2 (the same SmartKey key) with CERTIFICATE.
with_key_2() {
    ks_config "$1"
    printf '[key key-2]\nuri = smartkey:name=Cache%%20Only\ncertificate = %s\n' \
        "$2" >>"$1"
}

# ---- loaded through the store ----
with_key_2 "$WORK/ks.conf" 'smartkey:name=Salesforce%20BYOK'
run "$KEYSERVICE" -c "$WORK/ks.conf" --provider-path "$MODULE_DIR" --check
check "--check loads a BYOK certificate held in SmartKey (by name)" \
    bash -c "[[ $RC -eq 0 ]] && grep -q '2 key identifiers, OK' '$OUT'"
with_key_2 "$WORK/kid.conf" "smartkey:kid=$kid"
run "$KEYSERVICE" -c "$WORK/kid.conf" --provider-path "$MODULE_DIR" --check
check "--check loads it by kid" \
    bash -c "[[ $RC -eq 0 ]] && grep -q '2 key identifiers, OK' '$OUT'"

ks_start "$WORK/ks.conf" "$KEYSERVICE" --provider-path "$MODULE_DIR"
counters_reset
n=$(nonce)
check "key-2 (certificate held in SmartKey) is answered 200" \
    equals "$(callout /keys/key-2 "$n")" 200
check "jwcrypto decrypts key-2's answer with that certificate's key" \
    answer_decrypts key-2 "$n" "$WORK/sf-held.pem"
check "the file certificate's key does not decrypt it" \
    verify_fails jwe "$WORK/sf.pem" "$WORK/body" "$WORK/dek.bin" \
        --kid key-2 --jti "$n" --salesforce
n=$(nonce)
check "key-1 (certificate in a PEM file) is still answered 200" \
    equals "$(callout /keys/key-1 "$n")" 200
check "jwcrypto decrypts key-1's answer with the file certificate's key" \
    answer_decrypts key-1 "$n"
check "nothing was exported while serving" equals "$(counter exports)" 0
check "both answers were made in SmartKey: two wraps each" \
    equals "$(counter '.requests["POST /crypto/v1/wrapkey"]')" 4

# SIGHUP: key-1's certificate moves into SmartKey (by kid)
ks_config "$WORK/ks.conf"
sed -i "s|^certificate = .*|certificate = smartkey:kid=$kid|" "$WORK/ks.conf"
kill -HUP "$KS_PID"
check "SIGHUP reloads a configuration whose certificate is in SmartKey" \
    log_waits_for "reloaded"
n=$(nonce)
check "after the reload key-1 is answered 200" \
    equals "$(callout /keys/key-1 "$n")" 200
check "and its answer decrypts with the certificate held in SmartKey" \
    answer_decrypts key-1 "$n" "$WORK/sf-held.pem"
ks_stop
check "the service stops cleanly" equals "$KS_STATUS" 0

# ---- URIs that name no certificate: refused with the reason ----
# refused WHAT CERTIFICATE REASON: --check and a start both fail (exit
# status 1: LeakSanitizer's 23 under scripts/check-sanitizers is not a
# clean refusal), and say FILE:LINE, the URI and REASON.
refused() {
    local line
    with_key_2 "$WORK/bad.conf" "$2"
    line=$(grep -n '^certificate = smartkey:' "$WORK/bad.conf" | cut -d: -f1)
    run "$KEYSERVICE" -c "$WORK/bad.conf" --provider-path "$MODULE_DIR" --check
    check "$1: refused at --check" equals "$RC" 1
    check "$1: --check says where and why" \
        stderr_line_has "bad.conf:$line: " "$3"
    run timeout 60 "$KEYSERVICE" -c "$WORK/bad.conf" \
        --provider-path "$MODULE_DIR" --ready-file "$WORK/bad.addr"
    check "$1: the service does not start" \
        bash -c "[[ $RC -eq 1 && ! -s '$WORK/bad.addr' ]]"
    check "$1: and says why" stderr_line_has "bad.conf:$line: " "$3"
}
refused "no such object" 'smartkey:name=No%20Such%20Certificate' \
    "no certificate in SmartKey at smartkey:name=No%20Such%20Certificate.*No Such Certificate"
refused "an AES key" 'smartkey:name=Cache%20Only' \
    "no certificate in SmartKey at smartkey:name=Cache%20Only: .*is an AES key"
create_rsa "Uncertified" 2048 >/dev/null || fatal "cannot create the RSA key"
refused "type=cert of a key without a certificate" \
    'smartkey:name=Uncertified;type=cert' \
    "no certificate in SmartKey at smartkey:name=Uncertified;type=cert: .*no certificate held in SmartKey certifies key 'Uncertified'"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/ec.pem" -subj /CN=not-byok -days 2 \
    -out "$WORK/ec.crt" 2>/dev/null ||
    fatal "cannot make the EC certificate"
ks_import_certificate "EC certificate" "$WORK/ec.crt" >/dev/null ||
    fatal "cannot put the EC certificate into SmartKey"
refused "an EC certificate" 'smartkey:name=EC%20certificate' \
    "BYOK certificate's key is not RSA: smartkey:name=EC%20certificate"
refused "a listing of several certificates" 'smartkey:' \
    "names several certificates"
finish
