#!/usr/bin/env bash
# Ed25519 keys held in SmartKey (EC objects on curve Ed25519 there, ED25519
# keys in OpenSSL): `genpkey -algorithm ED25519` makes one in SmartKey, and
# `req -x509`, `pkeyutl -sign -rawin`, `cms -sign` and a TLS 1.3 server
# sign with it; stock openssl verifies every result. Each signature is one
# sign request carrying the message as `data` with hash_alg SHA512
# (docs/smartkey-api.md §4.3, §8), and the local server refuses the shapes
# SmartKey's model does not allow.
source "$(dirname "$0")/lib.sh"
sign_test_start "$@"

MESSAGE=$WORK/message.txt
printf 'pure EdDSA signs the message itself\n' >"$MESSAGE"

# ---- genpkey in SmartKey ----
counters_reset
check "genpkey -algorithm ED25519 makes the key in SmartKey" \
    run ossl genpkey -propquery '?provider=smartkey' -algorithm ED25519 \
    -pkeyopt smartkey-name:ed-signer -out "$WORK/ed-signer.ref"
check "what it writes is a key reference, not a private key" \
    bash -c "grep -q 'BEGIN SMARTKEY KEY REFERENCE' '$WORK/ed-signer.ref' &&
             ! grep -q 'BEGIN PRIVATE KEY' '$WORK/ed-signer.ref'"
check "one generate request" \
    equals "$(counter '.requests["POST /crypto/v1/keys"]')" 1
run rest POST '/crypto/v1/keys/info?show_pub_key=true' '{"name":"ed-signer"}'
check "SmartKey holds an EC object on curve Ed25519" \
    bash -c "jq -e '.obj_type == \"EC\" and .elliptic_curve == \"Ed25519\"
                    and (.key_ops | index(\"SIGN\") != null)' '$OUT' >/dev/null"

public_pem ed-signer "$WORK/server.pub" || fatal "no public key from SmartKey"
check "pkey -pubout gives SmartKey's public key (SPKI PEM)" \
    run ossl pkey -in smartkey:name=ed-signer -pubout -out "$WORK/ed.pub"
check "the two public keys are the same" same_bytes "$WORK/ed.pub" \
    "$WORK/server.pub"
check "the key reference file loads the same key" \
    run ossl pkey -in "$WORK/ed-signer.ref" -pubout
check "its public key is SmartKey's" same_bytes "$OUT" "$WORK/server.pub"
check "pkey -text describes the key without a private part" \
    run ossl pkey -in smartkey:name=ed-signer -text -noout
check "it is an Ed25519 key held in SmartKey" \
    stdout_has '^SmartKey Ed25519 private key$'
check "with OpenSSL's public key print" stdout_has '^ED25519 Public-Key:'
check "storeutl lists it" run ossl storeutl -keys -text -noout 'smartkey:'
check "as a private key" stdout_has '^0: Pkey$'
check "named, and described as Ed25519" \
    bash -c "grep -q 'ed-signer' '$OUT' && grep -q 'SmartKey Ed25519' '$OUT'"

# ---- a self-signed certificate ----
counters_reset
check "req -x509 with the Ed25519 key succeeds" \
    self_signed ed-signer "$WORK/ed.crt"
check "stock openssl verify accepts the certificate" \
    run openssl verify -CAfile "$WORK/ed.crt" "$WORK/ed.crt"
run openssl x509 -in "$WORK/ed.crt" -noout -text
check "it is signed ED25519" stdout_has 'Signature Algorithm: ED25519'
run openssl x509 -in "$WORK/ed.crt" -noout -pubkey
check "it certifies SmartKey's public key" same_bytes "$OUT" "$WORK/server.pub"
check "one certificate costs one sign request" equals "$(sign_requests)" 1
check "a CSR with the Ed25519 key is written" \
    run ossl req -new -key smartkey:name=ed-signer -subj /CN=ed-csr \
    -out "$WORK/ed.csr"
check "its self-signature verifies" \
    run openssl req -in "$WORK/ed.csr" -noout -verify
check "x509 -req issues a certificate from it, signed in SmartKey" \
    run ossl x509 -req -in "$WORK/ed.csr" -CA "$WORK/ed.crt" \
    -CAkey smartkey:name=ed-signer -days 2 -out "$WORK/leaf.crt"
check "the issued certificate verifies against the Ed25519 CA" \
    run openssl verify -CAfile "$WORK/ed.crt" "$WORK/leaf.crt"
counters_reset
run ossl pkeyutl -sign -rawin -digest sha256 -inkey smartkey:name=ed-signer \
    -in "$MESSAGE" -out "$WORK/bad.sig"
check "a digest with the Ed25519 key is refused" failed_cleanly
# (OpenSSL 3.5's pkeyutl refuses it itself; 3.0's asks the provider)
check "with a reason" \
    stderr_has 'Ed25519 signs the message itself|not supported with ED25519'
check "before any sign request" equals "$(sign_requests)" 0

# ---- pkeyutl -rawin: one-shot signature of the message ----
counters_reset
check "pkeyutl -sign -rawin succeeds" \
    run ossl pkeyutl -sign -rawin -inkey smartkey:name=ed-signer \
    -in "$MESSAGE" -out "$WORK/message.sig"
check "the signature is 64 bytes" equals "$(stat -c %s "$WORK/message.sig")" 64
check "stock pkeyutl -verify -rawin -pubin accepts it" \
    run openssl pkeyutl -verify -rawin -pubin -inkey "$WORK/server.pub" \
    -in "$MESSAGE" -sigfile "$WORK/message.sig"
check "it says so" stdout_has 'Signature Verified Successfully'
printf 'another message\n' >"$WORK/other.txt"
run openssl pkeyutl -verify -rawin -pubin -inkey "$WORK/server.pub" \
    -in "$WORK/other.txt" -sigfile "$WORK/message.sig"
check "it does not verify another message" failed_cleanly
check "one signature, one sign request" equals "$(sign_requests)" 1
counters_reset
check "verification with the SmartKey key is local" \
    run ossl pkeyutl -verify -rawin -inkey smartkey:name=ed-signer \
    -in "$MESSAGE" -sigfile "$WORK/message.sig"
check "and costs no sign request" equals "$(sign_requests)" 0
check "nor a verify request" \
    equals "$(counter '.requests["POST /crypto/v1/verify"]')" 0

# ---- cms -sign ----
# OpenSSL 3.0's CMS cannot sign with Ed25519 at all, whoever holds the key
# ("no default digest", and "invalid digest" with -md, for a key in a local
# file too); OpenSSL 3.5 can with -md sha512 (the digest of the signed
# attributes). Where the stock openssl can with a local key, the SmartKey
# key must do the same.
if ! openssl genpkey -algorithm ED25519 -out "$WORK/local.key" 2>/dev/null ||
    ! openssl req -new -x509 -key "$WORK/local.key" -subj /CN=local -days 2 \
        -out "$WORK/local.crt" 2>/dev/null; then
    fatal "cannot make a local Ed25519 certificate"
fi
if openssl cms -sign -in "$MESSAGE" -signer "$WORK/local.crt" \
    -inkey "$WORK/local.key" -md sha512 -binary -nodetach -outform PEM \
    -out "$WORK/local.p7m" 2>/dev/null; then
    counters_reset
    check "cms -sign with the Ed25519 key succeeds" \
        run ossl cms -sign -in "$MESSAGE" -signer "$WORK/ed.crt" \
        -inkey smartkey:name=ed-signer -md sha512 -binary -nodetach \
        -outform PEM -out "$WORK/ed.p7m"
    check "stock cms -verify accepts it and yields the content" \
        run openssl cms -verify -in "$WORK/ed.p7m" -inform PEM \
        -CAfile "$WORK/ed.crt" -binary -out "$WORK/ed.content"
    check "the content is the message" same_bytes "$WORK/ed.content" \
        "$MESSAGE"
    check "one CMS message costs one sign request" \
        equals "$(sign_requests)" 1
else
    echo "skip - cms -sign: this OpenSSL ($(openssl version)) cannot sign" \
        "CMS with Ed25519 even with a local key"
fi

# ---- TLS 1.3 with the Ed25519 certificate ----
counters_reset
server_start smartkey:name=ed-signer "$WORK/ed.crt" 2 ||
    fatal "s_server with the Ed25519 key did not start: $(cat "$WORK/server.err")"
handshake "$WORK/ed.crt" -tls1_3
check "a TLS 1.3 handshake with the Ed25519 certificate completes" succeeded
check "it is TLS 1.3" stderr_has '^Protocol version: TLSv1.3'
check "the server signed with Ed25519" \
    stderr_has '^(Peer signature|Signature) type: (Ed25519|ed25519)$'
check "the page arrived" stdout_has '^HTTP/1.0 200'
handshake "$WORK/ed.crt" -tls1_2
check "a TLS 1.2 handshake (RFC 8422) completes too" succeeded
server_stop
check "two handshakes cost two sign requests" equals "$(sign_requests)" 2

# a client certificate whose Ed25519 key is in SmartKey
verifying_server_start ed25519 "$WORK/ed.crt" 1
client_handshake "$WORK/tls-server.crt" "$WORK/ed.crt" smartkey:name=ed-signer \
    -tls1_3
check "TLS 1.3 client authentication with the Ed25519 key completes" \
    succeeded
server_stop
check "the server verified the SmartKey client certificate" \
    grep -Eq 'depth=0 CN ?= ?ed-signer' "$WORK/server.err"
check "one client handshake costs one sign request" \
    equals "$(sign_requests)" 1

# ---- the request on the wire, and the local server's strictness ----
check "SmartKey got the message as data with hash_alg SHA512" \
    bash -c "grep -q 'POST /crypto/v1/sign 200' '$WORK/emulator.log'"
b64() { base64 -w0 <"$1"; }
run rest POST /crypto/v1/sign "$(jq -nc --arg d "$(b64 "$MESSAGE")" \
    '{key: {name: "ed-signer"}, hash_alg: "SHA512", data: $d}')"
check "the server signs data with hash_alg SHA512" succeeded
jq -r .signature "$OUT" | base64 -d >"$WORK/rest.sig"
check "its signature verifies with stock openssl" \
    run openssl pkeyutl -verify -rawin -pubin -inkey "$WORK/server.pub" \
    -in "$MESSAGE" -sigfile "$WORK/rest.sig"
run rest POST /crypto/v1/sign "$(jq -nc --arg h "$(openssl dgst -sha512 \
    -binary "$MESSAGE" | base64 -w0)" \
    '{key: {name: "ed-signer"}, hash_alg: "SHA512", hash: $h}')"
check "a hash instead of data is refused (400)" \
    bash -c "! [[ $RC -eq 0 ]] && grep -q \"send 'data'\" '$OUT'"
run rest POST /crypto/v1/sign "$(jq -nc --arg d "$(b64 "$MESSAGE")" \
    '{key: {name: "ed-signer"}, hash_alg: "SHA256", data: $d}')"
check "another hash_alg is refused (400)" \
    bash -c "! [[ $RC -eq 0 ]] && grep -q 'SHA512' '$OUT'"
run rest POST /crypto/v1/sign "$(jq -nc --arg d "$(b64 "$MESSAGE")" \
    '{key: {name: "ed-signer"}, hash_alg: "SHA512", data: $d,
      mode: {PKCS1_V15: {}}}')"
check "a mode is refused (400)" failed_cleanly
run rest POST /crypto/v1/sign "$(jq -nc --arg d "$(b64 "$MESSAGE")" \
    '{key: {name: "ed-signer"}, hash_alg: "SHA512", data: $d,
      context: "Y3R4"}')"
check "a context (ML-DSA only) is refused (400)" \
    bash -c "! [[ $RC -eq 0 ]] && grep -q 'ML-DSA keys only' '$OUT'"
run rest POST /crypto/v1/verify "$(jq -nc --arg d "$(b64 "$MESSAGE")" \
    --arg s "$(b64 "$WORK/message.sig")" \
    '{key: {name: "ed-signer"}, hash_alg: "SHA512", data: $d,
      signature: $s}')"
check "the server verifies the provider's signature" \
    bash -c "jq -e '.result == true' '$OUT' >/dev/null"

# import: PKCS#8 (RFC 8410) with elliptic_curve Ed25519
openssl genpkey -algorithm ED25519 -outform DER -out "$WORK/imported.p8" ||
    fatal "cannot make a local Ed25519 key"
run rest PUT /crypto/v1/keys "$(jq -nc --arg v "$(b64 "$WORK/imported.p8")" \
    '{name: "ed-imported", obj_type: "EC", elliptic_curve: "Ed25519",
      value: $v, key_ops: ["SIGN", "VERIFY"]}')"
check "an Ed25519 PKCS#8 key imports as an EC object" succeeded
check "the imported key signs a certificate" \
    self_signed ed-imported "$WORK/imported.crt"
check "which verifies" \
    run openssl verify -CAfile "$WORK/imported.crt" "$WORK/imported.crt"
run openssl x509 -in "$WORK/imported.crt" -noout -pubkey
openssl pkey -inform DER -in "$WORK/imported.p8" -pubout -out "$WORK/imp.pub"
check "and certifies the imported public key" same_bytes "$OUT" \
    "$WORK/imp.pub"

# ---- ed25519_hash_alg: what the provider sends is configurable ----
make_config "$WORK/sha256.cnf" ed25519_hash_alg=SHA256 ||
    fatal "cannot write the configuration"
clear_env_config
run env OPENSSL_CONF="$WORK/sha256.cnf" timeout "$CLI_TIMEOUT" openssl \
    pkeyutl -sign -rawin -inkey smartkey:name=ed-signer -in "$MESSAGE" \
    -out "$WORK/sha256.sig"
check "ed25519_hash_alg = SHA256 reaches SmartKey (the local server refuses it)" \
    failed_cleanly
check "the error shows SmartKey's answer" stderr_has 'hash_alg SHA512'
make_config "$WORK/bad.cnf" ed25519_hash_alg=MD5 ||
    fatal "cannot write the configuration"
run env OPENSSL_CONF="$WORK/bad.cnf" timeout "$CLI_TIMEOUT" openssl \
    pkeyutl -sign -rawin -inkey smartkey:name=ed-signer -in "$MESSAGE" \
    -out "$WORK/md5.sig"
check "an unknown ed25519_hash_alg is a configuration error" failed_cleanly
check "which names the setting" stderr_has 'ed25519_hash_alg'

finish
