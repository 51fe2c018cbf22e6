#!/usr/bin/env bash
# `openssl s_server -async` (SSL_MODE_ASYNC: the handshake runs inside an
# OpenSSL ASYNC job) with keys held in SmartKey, SmartKey answering 10 ms
# late: a stock `openssl s_client` completes TLS 1.3 and 1.2 handshakes
# with an ECDSA P-256 key (smartkey: URI) and an RSA key (key-reference
# file), and a TLS 1.2 static-RSA key exchange, whose private-key
# operation is a decryption; `s_client -async` presents a client
# certificate whose key is in SmartKey. Each handshake costs exactly one
# sign (or decrypt) request. s_server serves one connection at a time:
# this proves correctness inside ASYNC jobs, not concurrency (haproxy.sh).
# The provider is loaded as documented: default first, then smartkey.
# Usage: s_server.sh MODULE_DIR EMULATOR [TLS_LOAD, unused]
source "$(cd "$(dirname "$0")/../sign" && pwd)/lib.sh"
sign_test_init "$1" "$2"
emulator_start --latency-ms 10
use_env_config

create_ec async-p256 NistP256 >/dev/null || fatal "cannot create the EC key"
# PKCS#1 v1.5 decryption allowed: TLS 1.2 RSA key exchange needs it.
rest POST /crypto/v1/keys "$(jq -nc '{name: "async-rsa", obj_type: "RSA",
    key_size: 2048, pub_exponent: 65537,
    key_ops: ["SIGN", "VERIFY", "ENCRYPT", "DECRYPT", "APPMANAGEABLE"],
    rsa: {encryption_policy: [{padding: {OAEP: {}}},
                              {padding: {PKCS1_V15: {}}}]}}')" >/dev/null ||
    fatal "cannot create the RSA key"
self_signed async-p256 "$WORK/p256.crt" || fatal "no EC certificate"
self_signed async-rsa "$WORK/rsa.crt" || fatal "no RSA certificate"
run ossl pkey -in smartkey:name=async-rsa -out "$WORK/rsa.ref.pem"
succeeded || fatal "no key-reference file for the RSA key"

# requests COUNTER...: the sign and decrypt counts since the last reset
private_key_requests() {
    counter '.requests | [.["POST /crypto/v1/sign"],
        .["POST /crypto/v1/decrypt"]] | map(. // 0 | tostring) | join(",")'
}

# ---- ECDSA P-256, smartkey: URI ----
server_start smartkey:name=async-p256 "$WORK/p256.crt" 2 -async ||
    fatal "s_server -async with the EC key did not start: $(cat "$WORK/server.err")"
counters_reset
handshake "$WORK/p256.crt" -tls1_3
check "s_server -async: TLS 1.3 with the P-256 key completes" succeeded
check "  signed with ECDSA, the page arrived" \
    bash -c "grep -Eq '^Signature type: (ECDSA|ecdsa_[a-z0-9_]+)$' '$ERR' &&
             grep -q '^HTTP/1.0 200' '$OUT'"
handshake "$WORK/p256.crt" -tls1_2 -sigalgs ECDSA+SHA256
check "s_server -async: TLS 1.2 with the P-256 key completes" succeeded
server_stop
check "  two handshakes: two sign requests" \
    equals "$(private_key_requests)" "2,0"

# ---- RSA 2048, key-reference file: signatures and a key exchange ----
server_start "$WORK/rsa.ref.pem" "$WORK/rsa.crt" 3 -async ||
    fatal "s_server -async with the RSA key-reference file did not start: $(cat "$WORK/server.err")"
counters_reset
handshake "$WORK/rsa.crt" -tls1_3
check "s_server -async: TLS 1.3 with the RSA key-reference file completes" \
    succeeded
check "  signed with RSA-PSS" \
    stderr_has '^Signature type: (RSA-PSS|rsa_pss_rsae_sha[0-9]+)$'
handshake "$WORK/rsa.crt" -tls1_2 -sigalgs RSA+SHA256
check "s_server -async: TLS 1.2 with RSA PKCS#1 v1.5 sigalgs completes" \
    succeeded
handshake "$WORK/rsa.crt" -tls1_2 -cipher AES128-GCM-SHA256
check "s_server -async: TLS 1.2 static-RSA key exchange (a remote decrypt) completes" \
    succeeded
check "  the cipher was AES128-GCM-SHA256, the page arrived" \
    bash -c "grep -q '^Ciphersuite: AES128-GCM-SHA256$' '$ERR' &&
             grep -q '^HTTP/1.0 200' '$OUT'"
server_stop
check "  two signatures and one decryption: 2 sign, 1 decrypt request" \
    equals "$(private_key_requests)" "2,1"

# ---- s_client -async with a client certificate whose key is in SmartKey ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/server.key" -subj /CN=local-server -days 2 \
    -out "$WORK/server.crt" 2>/dev/null ||
    fatal "cannot make the local server's certificate"
server_start "$WORK/server.key" "$WORK/server.crt" 1 -Verify 1 \
    -verify_return_error -CAfile "$WORK/p256.crt" ||
    fatal "s_server -Verify did not start: $(cat "$WORK/server.err")"
counters_reset
client_handshake "$WORK/server.crt" "$WORK/p256.crt" smartkey:name=async-p256 \
    -tls1_3 -async
check "s_client -async: TLS 1.3 client authentication with the P-256 key completes" \
    succeeded
server_stop
check "  the server verified the SmartKey client certificate" \
    grep -Eq 'depth=0 CN ?= ?async-p256' "$WORK/server.err"
check "  one sign request" equals "$(private_key_requests)" "1,0"

finish
