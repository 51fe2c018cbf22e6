#!/usr/bin/env bash
# `openssl s_server` with a key held in SmartKey completes TLS 1.2 and TLS
# 1.3 handshakes with a stock `openssl s_client`: RSA with PKCS#1 v1.5
# (TLS 1.2, -sigalgs RSA+SHA256) and PSS sigalgs, and ECDSA P-256 (also
# with a client that offers P-256 only, the provider-order trap of
# docs/openssl-dispatch.md §3), and s_client presents a client certificate whose key is in
# SmartKey. The provider is loaded as documented: default first, then
# smartkey. Every handshake costs exactly one sign request; the session
# and the key lookup happen once per process. A server whose key lacks the
# SIGN permission says so on stderr, once, without SMARTKEY_DEBUG.
source "$(dirname "$0")/lib.sh"
sign_test_start "$@"

create_rsa tls-rsa 2048 >/dev/null || fatal "cannot create the RSA key"
create_ec tls-p256 NistP256 >/dev/null || fatal "cannot create the EC key"
self_signed tls-rsa "$WORK/rsa.crt" || fatal "no RSA certificate"
self_signed tls-p256 "$WORK/p256.crt" || fatal "no EC certificate"

# one counter set for the server's whole life: sign, auth, key lookups
server_requests() {
    counter '.requests | [.["POST /crypto/v1/sign"],
        .["POST /sys/v1/session/auth"], .["POST /crypto/v1/keys/info"]]
        | map(. // 0 | tostring) | join(",")'
}

# ---- RSA ----
counters_reset
server_start smartkey:name=tls-rsa "$WORK/rsa.crt" 4 ||
    fatal "s_server with the RSA key did not start: $(cat "$WORK/server.err")"

handshake "$WORK/rsa.crt" -tls1_2 -sigalgs RSA+SHA256
check "TLS 1.2 with RSA PKCS#1 sigalgs completes" succeeded
check "it is TLS 1.2" stderr_has '^Protocol version: TLSv1.2'
# s_client names the signature type "RSA" up to OpenSSL 3.3 and by its TLS
# name (rsa_pkcs1_sha256, rsa_pss_rsae_sha256, ecdsa_...) from 3.5 on.
check "the server signed with RSA PKCS#1 v1.5" \
    stderr_has '^Signature type: (RSA|rsa_pkcs1_sha[0-9]+)$'
check "the page arrived" stdout_has '^HTTP/1.0 200'

handshake "$WORK/rsa.crt" -tls1_2 -sigalgs rsa_pss_rsae_sha256
check "TLS 1.2 with RSA-PSS sigalgs completes" succeeded
check "the server signed with RSA-PSS" stderr_has '^Signature type: (RSA-PSS|rsa_pss_rsae_sha[0-9]+)$'

handshake "$WORK/rsa.crt" -tls1_3
check "TLS 1.3 with the RSA key completes" succeeded
check "it is TLS 1.3" stderr_has '^Protocol version: TLSv1.3'
check "the server signed with RSA-PSS (TLS 1.3)" \
    stderr_has '^Signature type: (RSA-PSS|rsa_pss_rsae_sha[0-9]+)$'

handshake "$WORK/rsa.crt" -tls1_3 -sigalgs rsa_pss_rsae_sha384
check "TLS 1.3 with rsa_pss_rsae_sha384 completes" succeeded
check "the server hashed with SHA-384" stderr_has '^Hash used: SHA384$'

server_stop
check "four RSA handshakes: four signs, one session, one key lookup" \
    equals "$(server_requests)" "4,1,1"

# ---- ECDSA P-256 ----
counters_reset
server_start smartkey:name=tls-p256 "$WORK/p256.crt" 3 ||
    fatal "s_server with the EC key did not start: $(cat "$WORK/server.err")"

handshake "$WORK/p256.crt" -tls1_2 -sigalgs ECDSA+SHA256
check "TLS 1.2 with the P-256 key completes" succeeded
check "it is TLS 1.2 with ECDSA" \
    bash -c "grep -q '^Protocol version: TLSv1.2' '$ERR' &&
             grep -Eq '^Signature type: (ECDSA|ecdsa_[a-z0-9_]+)$' '$ERR'"

handshake "$WORK/p256.crt" -tls1_3
check "TLS 1.3 with the P-256 key completes" succeeded
check "it is TLS 1.3 with ECDSA" \
    bash -c "grep -q '^Protocol version: TLSv1.3' '$ERR' &&
             grep -Eq '^Signature type: (ECDSA|ecdsa_[a-z0-9_]+)$' '$ERR'"

handshake "$WORK/p256.crt" -tls1_3 -groups P-256
check "TLS 1.3 with a client offering only the P-256 group completes" \
    succeeded

server_stop
check "three EC handshakes: three signs, one session, one key lookup" \
    equals "$(server_requests)" "3,1,1"

# ---- a client certificate whose key is in SmartKey ----
verifying_server_start rsa:2048 "$WORK/p256.crt" 2
client_handshake "$WORK/tls-server.crt" "$WORK/p256.crt" smartkey:name=tls-p256 \
    -tls1_2
check "TLS 1.2 client authentication with the P-256 key completes" \
    succeeded
check "the server page arrived" stdout_has '^HTTP/1.0 200'
client_handshake "$WORK/tls-server.crt" "$WORK/p256.crt" smartkey:name=tls-p256 \
    -tls1_3
check "TLS 1.3 client authentication with the P-256 key completes" \
    succeeded
server_stop
check "the server verified the SmartKey client certificate" \
    grep -Eq 'depth=0 CN ?= ?tls-p256' "$WORK/server.err"
check "two client handshakes cost two sign requests" \
    equals "$(sign_requests)" 2

# ---- a key without the SIGN permission (issue 12, item 9a) ----
# s_server starts (loading a key needs no signature), then every handshake
# fails with "no suitable signature algorithm" on the client side; the
# server says why on stderr, without SMARTKEY_DEBUG, once for the key.
rest POST /crypto/v1/keys "$(jq -nc '{name: "tls-nosign", obj_type: "RSA",
    key_size: 2048, pub_exponent: 65537,
    key_ops: ["VERIFY", "APPMANAGEABLE"]}')" >/dev/null ||
    fatal "cannot create the key without SIGN"
public_pem tls-nosign "$WORK/nosign.pub" &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout /dev/null -subj /CN=tls-nosign -out "$WORK/nosign.csr" \
        2>/dev/null &&
    run ossl x509 -req -in "$WORK/nosign.csr" -CA "$WORK/rsa.crt" \
        -CAkey smartkey:name=tls-rsa -CAcreateserial \
        -force_pubkey "$WORK/nosign.pub" -days 2 -out "$WORK/nosign.crt" &&
    succeeded || fatal "no certificate for the key without SIGN"
[[ -z ${SMARTKEY_DEBUG:-} ]] || fatal "SMARTKEY_DEBUG must not be set here"
counters_reset
server_start smartkey:name=tls-nosign "$WORK/nosign.crt" 2 ||
    fatal "s_server with the key without SIGN did not start: $(cat "$WORK/server.err")"
handshake "$WORK/rsa.crt" -tls1_3
check "a handshake with a key lacking SIGN fails" failed_cleanly
handshake "$WORK/rsa.crt" -tls1_2
check "so does a second one (TLS 1.2)" failed_cleanly
server_stop
nosign_line='lacks the SIGN permission in SmartKey'
check "the server's stderr names the missing SIGN permission, without debug" \
    grep -Eq "^smartkey: error: key 'tls-nosign' \(kid [0-9a-f-]+\) $nosign_line.*grant SIGN" \
    "$WORK/server.err"
check "  once for the key, not once per probe or handshake" \
    equals "$(grep -c "$nosign_line" "$WORK/server.err")" 1
check "  and no sign request reached SmartKey" equals "$(sign_requests)" 0

# The same check without TLS: the error is on the queue (and stderr).
run ossl dgst -sha256 -sign smartkey:name=tls-nosign -out "$WORK/nosign.sig" \
    "$WORK/nosign.csr"
check "dgst -sign with the key lacking SIGN fails" failed_cleanly
check "  with the cause and the fix on the error queue" \
    grep -Eq ':error:[0-9A-F]+:smartkey:.*lacks the SIGN permission.*grant SIGN' \
    "$ERR"

finish
