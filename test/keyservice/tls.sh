#!/usr/bin/env bash
# smartkey-keyservice's own TLS: its private key held in SmartKey (tls_key
# a smartkey: URI, then a key-reference file: the handshake is signed in
# SmartKey and curl verifies it against the certificate), and client
# certificate authentication (client_ca): without a certificate issued by
# that CA the handshake fails, with one the callout is answered.
# Usage: tls.sh MODULE_DIR EMULATOR KEYSERVICE
source "$(dirname "$0")/lib.sh"
ks_setup "$@"

# The TLS key pair goes into SmartKey; the certificate is made from it
# locally (the local private key is then deleted).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/tls-rsa.pem" 2>/dev/null &&
    openssl req -x509 -new -key "$WORK/tls-rsa.pem" -subj /CN=keyservice \
        -addext subjectAltName=IP:127.0.0.1 -days 2 \
        -out "$WORK/tls.crt" 2>/dev/null ||
    fatal "cannot make the TLS certificate"
import_rsa_pair "keyservice tls" "$WORK/tls-rsa.pem" \
    '["SIGN", "VERIFY", "APPMANAGEABLE"]' >/dev/null ||
    fatal "cannot import the TLS key into SmartKey"
rm -f "$WORK/tls-rsa.pem"

serves_with_tls_key() { # TLS_KEY WHAT
    local n
    KS_TLS_KEY=$1 ks_config "$WORK/ks.conf"
    counters_reset
    ks_start "$WORK/ks.conf" "$KEYSERVICE" --provider-path "$MODULE_DIR"
    n=$(nonce)
    check "$2: curl verifies the service's certificate and is answered" \
        equals "$(callout /keys/key-1 "$n")" 200
    check "$2: the answer decrypts to the key" answer_decrypts key-1 "$n"
    check "$2: the handshake was signed in SmartKey" \
        at_least_one "$(counter '.requests["POST /crypto/v1/sign"]')"
    ks_stop
}
at_least_one() { [[ $1 =~ ^[0-9]+$ && $1 -ge 1 ]]; }

serves_with_tls_key 'smartkey:name=keyservice%20tls' "tls_key smartkey: URI"
run ossl pkey -in 'smartkey:name=keyservice%20tls' -out "$WORK/tls.ref.pem"
check "a key-reference file of the TLS key is written" succeeded
serves_with_tls_key "$WORK/tls.ref.pem" "tls_key key-reference file"

# ---- client certificates ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/ca.key" -subj /CN=client-ca -days 2 \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$WORK/client-ca.crt" 2>/dev/null &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$WORK/client.key" -subj /CN=salesforce \
        -out "$WORK/client.csr" 2>/dev/null &&
    openssl x509 -req -in "$WORK/client.csr" -CA "$WORK/client-ca.crt" \
        -CAkey "$WORK/ca.key" -days 2 -out "$WORK/client.crt" 2>/dev/null ||
    fatal "cannot make the client certificates"
KS_TLS_KEY='smartkey:name=keyservice%20tls' ks_config "$WORK/ks.conf" \
    "client_ca = $WORK/client-ca.crt"
ks_start "$WORK/ks.conf" "$KEYSERVICE" --provider-path "$MODULE_DIR"
check "client_ca: a callout without a client certificate fails in TLS" \
    equals "$(callout /keys/key-1 "$(nonce)")" 000
n=$(nonce)
check "client_ca: with a certificate the CA issued it is answered" \
    equals "$(curl -sS --cacert "$WORK/tls.crt" -K "$WORK/curl-auth" \
        --cert "$WORK/client.crt" --key "$WORK/client.key" \
        -H "RequestIdentifier: $n" -o "$WORK/body" -w '%{http_code}' \
        "$KS_URL/keys/key-1")" 200
check "client_ca: its answer decrypts to the key" answer_decrypts key-1 "$n"
ks_stop
check "the log names the failed handshake" \
    grep -q 'TLS handshake failed' "$WORK/keyservice.log"
finish
