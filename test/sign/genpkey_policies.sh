#!/usr/bin/env bash
# Key policies set at creation with `openssl genpkey -pkeyopt`: the RSA
# encryption padding policy (PKCS#1 v1.5 allowed), the signature padding
# policy (PSS only), description, group and custom metadata reach SmartKey
# as its JSON (rsa.encryption_policy, rsa.signature_policy, description,
# group_id, custom_metadata), and the local server enforces them as
# SmartKey does: such a key decrypts a stock `openssl cms -encrypt`
# message (PKCS#1 v1.5 key transport) and serves a TLS 1.2 static-RSA
# handshake; a key made without the option refuses both; a PSS-only key
# refuses PKCS#1 v1.5 signatures with the reason and signs with PSS.
source "$(dirname "$0")/lib.sh"
sign_test_start "$@"

# the documented genpkey command (provider-smartkey(7))
genpkey_in_smartkey() {
    timeout "$CLI_TIMEOUT" openssl genpkey -provider-path "$MODULE_DIR" \
        -provider default -provider smartkey -propquery '?provider=smartkey' \
        "$@"
}
server_key() {
    rest POST /crypto/v1/keys/info "$(jq -nc --arg n "$1" '{name: $n}')"
}

# the app's group, as SmartKey shows it on any key
create_rsa probe 2048 >/dev/null || fatal "cannot create a key"
group=$(server_key probe | jq -re .group_id) || fatal "no group id"

# ---- PKCS#1 v1.5 decryption allowed ----
run genpkey_in_smartkey -algorithm RSA -pkeyopt smartkey-name:legacy \
    -pkeyopt smartkey-encryption-padding:oaep,pkcs1 \
    -pkeyopt 'smartkey-description:S/MIME and TLS 1.2' \
    -pkeyopt smartkey-metadata:owner=mail \
    -pkeyopt smartkey-metadata:env=test \
    -pkeyopt smartkey-group:"$group" -out "$WORK/legacy.pem"
check "genpkey with policy, description, metadata and group succeeds" \
    succeeded
server_key legacy >"$WORK/legacy.json"
check "rsa.encryption_policy allows OAEP and PKCS#1 v1.5" \
    jq -e '.rsa.encryption_policy == [{"padding": {"OAEP": {}}},
                                      {"padding": {"PKCS1_V15": {}}}]' \
    "$WORK/legacy.json"
check "the signature policy stays SmartKey's default (anything)" \
    jq -e '.rsa.signature_policy == [{}]' "$WORK/legacy.json"
check "description is set" \
    jq -e '.description == "S/MIME and TLS 1.2"' "$WORK/legacy.json"
check "custom_metadata holds both entries" \
    jq -e '.custom_metadata == {"owner": "mail", "env": "test"}' \
    "$WORK/legacy.json"
check "the key is in the group asked for" \
    jq -e --arg g "$group" '.group_id == $g' "$WORK/legacy.json"

run genpkey_in_smartkey -algorithm RSA -pkeyopt smartkey-name:default-policy \
    -out "$WORK/default.pem"
check "a key made without the option" succeeded
check "has SmartKey's default encryption policy (OAEP only)" \
    jq -e '.rsa.encryption_policy == [{"padding": {"OAEP": {}}}]' \
    <(server_key default-policy)

self_signed legacy "$WORK/legacy.crt" || fatal "no certificate for legacy"
self_signed default-policy "$WORK/default.crt" ||
    fatal "no certificate for default-policy"

# a stock S/MIME message: PKCS#1 v1.5 key transport is cms's default
head -c 3000 /dev/urandom | base64 >"$WORK/message.txt"
for who in legacy default; do
    openssl cms -encrypt -binary -aes256 -in "$WORK/message.txt" \
        -out "$WORK/$who.p7m" "$WORK/$who.crt" ||
        fatal "stock cms -encrypt failed"
done
counters_reset
run ossl cms -decrypt -binary -in "$WORK/legacy.p7m" -recip "$WORK/legacy.crt" \
    -inkey smartkey:name=legacy -out "$WORK/legacy.out"
check "cms -decrypt with the genpkey-made key succeeds" succeeded
check "it recovers the message" same_bytes "$WORK/legacy.out" "$WORK/message.txt"
check "one decrypt request" \
    equals "$(counter '.requests["POST /crypto/v1/decrypt"]')" 1

# -debug_decrypt: without it cms hides a failed key transport from
# Bleichenbacher-style probing (it goes on with a random content key), so
# its exit status would be 0 whenever the random key's padding happens to
# check out (about 1 run in 256)
run ossl cms -decrypt -debug_decrypt -in "$WORK/default.p7m" \
    -recip "$WORK/default.crt" -inkey smartkey:name=default-policy \
    -out "$WORK/default.out"
check "the key with SmartKey's default policy cannot decrypt it" failed_cleanly
check "and says its policy does not allow PKCS#1 v1.5" \
    stderr_has "policy for this key does not allow PKCS#1 v1.5 decryption"

# ---- TLS 1.2 static-RSA key exchange (the client encrypts the
# pre-master secret with PKCS#1 v1.5; the server decrypts in SmartKey) ----
counters_reset
server_start smartkey:name=legacy "$WORK/legacy.crt" 1 \
    -cipher AES128-SHA256 ||
    fatal "s_server did not start: $(cat "$WORK/server.err")"
handshake "$WORK/legacy.crt" -tls1_2 -cipher AES128-SHA256
check "a TLS 1.2 static-RSA handshake completes" succeeded
check "with the RSA key exchange suite" stderr_has '^Ciphersuite: AES128-SHA256$'
check "the page arrived" stdout_has '^HTTP/1.0 200'
server_stop
check "the key exchange cost one decrypt request and no signature" \
    equals "$(counter '.requests | [.["POST /crypto/v1/decrypt"],
        .["POST /crypto/v1/sign"]] | map(. // 0 | tostring) | join(",")')" \
    "1,0"

# ---- PSS-only signing ----
run genpkey_in_smartkey -algorithm RSA -pkeyopt smartkey-name:pss-only \
    -pkeyopt smartkey-signature-padding:pss -out "$WORK/pss.pem"
check "genpkey of a PSS-only key succeeds" succeeded
check "rsa.signature_policy allows PSS only" \
    jq -e '.rsa.signature_policy == [{"padding": {"PSS": {}}}]' \
    <(server_key pss-only)
public_pem pss-only "$WORK/pss.pub" || fatal "no public key"
printf 'to be signed\n' >"$WORK/data"
run ossl dgst -sha256 -sign smartkey:name=pss-only -out "$WORK/pkcs1.sig" \
    "$WORK/data"
check "a PKCS#1 v1.5 signature with the PSS-only key fails" failed_cleanly
check "and says the policy allows PSS only, and how to sign" \
    stderr_has "signature policy for this key does not allow PKCS#1 v1.5 signatures; sign with RSA-PSS"
run ossl dgst -sha256 -sign smartkey:name=pss-only \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -out "$WORK/pss.sig" "$WORK/data"
check "an RSA-PSS signature with it succeeds" succeeded
run openssl dgst -sha256 -verify "$WORK/pss.pub" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -signature "$WORK/pss.sig" "$WORK/data"
check "and stock openssl verifies it" succeeded

# ---- EC keys take description, group and metadata too ----
run genpkey_in_smartkey -algorithm EC -pkeyopt group:P-256 \
    -pkeyopt smartkey-name:ec-meta -pkeyopt smartkey-description:edge \
    -pkeyopt smartkey-metadata:site=eu -pkeyopt smartkey-metadata:site=us \
    -pkeyopt smartkey-group:"$group" -out "$WORK/ec-meta.pem"
check "genpkey EC with description, metadata and group succeeds" succeeded
check "a repeated metadata name keeps the last value" \
    jq -e --arg g "$group" '.description == "edge" and
        .custom_metadata == {"site": "us"} and .group_id == $g and
        (has("rsa") | not)' <(server_key ec-meta)

# ---- wrong values fail before any request ----
counters_reset
run genpkey_in_smartkey -algorithm RSA -pkeyopt smartkey-name:x \
    -pkeyopt smartkey-encryption-padding:pss
check "pss is no encryption padding" failed_cleanly
check "the error lists the choices" \
    stderr_has 'takes a comma list of oaep, pkcs1, none or any'
run genpkey_in_smartkey -algorithm RSA -pkeyopt smartkey-name:x \
    -pkeyopt smartkey-group:web-servers
check "a group is named by its id" failed_cleanly
check "the error says so" stderr_has 'smartkey-group takes a SmartKey group id'
run genpkey_in_smartkey -algorithm RSA -pkeyopt smartkey-name:x \
    -pkeyopt smartkey-metadata:owner
check "metadata without a value is refused" failed_cleanly
check "the error shows the form" stderr_has 'smartkey-metadata takes NAME=VALUE'
run genpkey_in_smartkey -algorithm EC -pkeyopt smartkey-name:x \
    -pkeyopt smartkey-encryption-padding:pkcs1
check "EC keys have no RSA padding policy" failed_cleanly
check "none of these sent a request" equals "$(counter requests_total)" 0

run genpkey_in_smartkey -algorithm RSA -pkeyopt smartkey-name:x \
    -pkeyopt smartkey-group:0b5c1c0e-3c1f-4a5e-9f6d-2a4b6c8d0e1f
check "a group the app is not in is refused by SmartKey" failed_cleanly
check "with SmartKey's answer" stderr_has 'HTTP 404: Group not found'

finish
