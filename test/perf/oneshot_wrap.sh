#!/usr/bin/env bash
# One-shot server-side wrap as a user runs it (issue #7): a fresh
# `openssl pkeyutl` process wraps an AES key under an RSA key held in
# SmartKey. Server counters for the whole process, default (auto) mode:
# 1 TLS handshake and 2 HTTP requests (key lookup, wrapkey), both carrying
# the API key; no session. auth = session (openssl.cnf or SMARTKEY_AUTH)
# adds the session request; auth = api-key never makes one, and `pkey
# -pubout` costs the lookup alone. A server that refuses the API key on a
# call gets a session in auto mode. A wrap under a key from a local file
# still works in api-key mode: its transient registration needs a
# session, made for it. Counts only, never timings.
# Usage: oneshot_wrap.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/../cli/lib.sh"
cli_start "$@"

rest POST /crypto/v1/keys '{"name":"oneshot-kek","obj_type":"RSA",
    "key_size":2048,"key_ops":["WRAPKEY","ENCRYPT","APPMANAGEABLE"]}' \
    >/dev/null || fatal "cannot create the wrapping key"
rest POST /crypto/v1/keys '{"name":"oneshot-aes","obj_type":"AES",
    "key_size":256,"key_ops":["EXPORT","ENCRYPT","APPMANAGEABLE"]}' \
    >/dev/null || fatal "cannot create the AES key"

# oneshot_wrap RUNNER [INKEY ARGS...]: the documented one-shot command.
oneshot_wrap() {
    local runner=$1
    shift
    local inkey=("$@")
    ((${#inkey[@]})) || inkey=(-inkey smartkey:name=oneshot-kek)
    rm -f "$WORK/wrapped.bin"
    run "$runner" pkeyutl -encrypt -propquery '?provider=smartkey' \
        "${inkey[@]}" -in /dev/null \
        -out "$WORK/wrapped.bin" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
        -pkeyopt rsa_mgf1_md:sha256 \
        -pkeyopt smartkey-wrap-subject:smartkey:name=oneshot-aes
}

counters_reset
oneshot_wrap ossl
check "one-shot pkeyutl wrap succeeds" succeeded
check "one-shot pkeyutl wrap writes one RSA-2048 block" \
    equals "$(stat -c %s "$WORK/wrapped.bin" 2>/dev/null)" 256
requests=$(counter requests_total)
handshakes=$(counter tls_handshakes)
echo "       requests: $(counter '.requests | tostring')"
check "one-shot pkeyutl wrap costs at most 2 requests (got $requests)" \
    at_most "$requests" 2
check "one-shot pkeyutl wrap makes no session (auth = auto)" \
    equals "$(counter '.requests["POST /sys/v1/session/auth"]')" 0
check "one-shot pkeyutl wrap looks the wrapping key up once" \
    equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 1
check "one-shot pkeyutl wrap costs 1 TLS handshake (got $handshakes)" \
    equals "$handshakes" 1
check "one-shot pkeyutl wrap sends one wrapkey request" \
    equals "$(counter '.requests["POST /crypto/v1/wrapkey"]')" 1

# ---- auth = session through the environment ----
counters_reset
SMARTKEY_AUTH=session oneshot_wrap ossl
check "session (env): one-shot wrap succeeds" succeeded
echo "       requests: $(counter '.requests | tostring')"
check "session (env): one-shot wrap costs session, info and wrapkey" \
    equals "$(counter requests_total)/$(counter \
        '.requests["POST /sys/v1/session/auth"]')/$(counter \
        '.requests["POST /crypto/v1/keys/info"]')/$(counter \
        '.requests["POST /crypto/v1/wrapkey"]')" 3/1/1/1
check "session (env): one-shot wrap costs 1 TLS handshake" \
    equals "$(counter tls_handshakes)" 1

# ---- auth = auto against a server that refuses the API key on calls ----
counters_reset
control POST /_emulator/faults '{"path":"/crypto/v1/keys/info","count":1,
  "action":"status","status":401}' >/dev/null ||
    fatal "could not set a fault in the emulator"
oneshot_wrap ossl
check "auto, API key refused on a call: one-shot wrap succeeds" succeeded
echo "       requests: $(counter '.requests | tostring')"
check "auto, API key refused on a call: one session, then info and wrapkey" \
    equals "$(counter '.requests["POST /sys/v1/session/auth"]')/$(counter \
        '.requests["POST /crypto/v1/keys/info"]')/$(counter \
        '.requests["POST /crypto/v1/wrapkey"]')" 1/2/1
control DELETE /_emulator/faults >/dev/null

# ---- auth = api-key through the environment ----
counters_reset
SMARTKEY_AUTH=api-key oneshot_wrap ossl
check "api-key (env): one-shot wrap succeeds" succeeded
check "api-key (env): one-shot wrap writes one RSA-2048 block" \
    equals "$(stat -c %s "$WORK/wrapped.bin" 2>/dev/null)" 256
echo "       requests: $(counter '.requests | tostring')"
check "api-key (env): one-shot wrap costs 2 requests, info and wrapkey" \
    equals "$(counter requests_total)/$(counter \
        '.requests["POST /crypto/v1/keys/info"]')/$(counter \
        '.requests["POST /crypto/v1/wrapkey"]')" 2/1/1
check "api-key (env): one-shot wrap makes no session" \
    equals "$(counter '.requests["POST /sys/v1/session/auth"]')" 0
check "api-key (env): one-shot wrap costs 1 TLS handshake" \
    equals "$(counter tls_handshakes)" 1

# ---- auth = api-key in openssl.cnf ----
clear_env_config
make_config "$WORK/api-key.cnf" "auth=api-key" ||
    fatal "cannot write the configuration"
counters_reset
OPENSSL_CONF=$WORK/api-key.cnf oneshot_wrap ossl_plain
check "api-key (openssl.cnf): one-shot wrap succeeds" succeeded
check "api-key (openssl.cnf): one-shot wrap costs 2 requests, no session" \
    equals "$(counter requests_total)/$(counter \
        '.requests["POST /sys/v1/session/auth"]')" 2/0
check "api-key (openssl.cnf): one-shot wrap costs 1 TLS handshake" \
    equals "$(counter tls_handshakes)" 1

counters_reset
OPENSSL_CONF=$WORK/api-key.cnf run ossl_plain pkey \
    -in smartkey:name=oneshot-kek -pubout
check "api-key (openssl.cnf): pkey -pubout succeeds" \
    eval 'succeeded && stdout_has "^-----BEGIN PUBLIC KEY-----$"'
check "api-key (openssl.cnf): pkey -pubout costs 1 request, the lookup" \
    equals "$(counter requests_total)/$(counter \
        '.requests["POST /crypto/v1/keys/info"]')" 1/1
use_env_config

# ---- a key from a local file needs a session even in api-key mode ----
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/cloud.pem" 2>/dev/null &&
    openssl pkey -in "$WORK/cloud.pem" -pubout -out "$WORK/cloud-pub.pem" ||
    fatal "cannot make a local RSA key"
counters_reset
SMARTKEY_AUTH=api-key oneshot_wrap ossl -pubin -inkey "$WORK/cloud-pub.pem"
check "api-key (env): wrap under a local file key succeeds" succeeded
check "api-key (env): the file key's wrap recovers with the local key" \
    eval 'openssl pkeyutl -decrypt -inkey "$WORK/cloud.pem" \
        -in "$WORK/wrapped.bin" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 \
        -out "$WORK/unwrapped.bin" 2>/dev/null &&
        equals "$(stat -c %s "$WORK/unwrapped.bin")" 32'
echo "       requests: $(counter '.requests | tostring')"
check "api-key (env): the file key's registration gets one session" \
    equals "$(counter '.requests["POST /sys/v1/session/auth"]')/$(counter \
        '.requests["PUT /crypto/v1/keys"]')/$(counter \
        '.requests["POST /crypto/v1/wrapkey"]')" 1/1/1

# ---- auto mode: a wrong key fails after one session attempt ----
counters_reset
SMARTKEY_API_KEY=bm90OnRoZS1rZXk= oneshot_wrap ossl
check "auto, wrong key: fails cleanly" failed_cleanly
check "auto, wrong key: the message is about the API key" \
    stderr_has "api key"
check "auto, wrong key: the refused call, then one refused session" \
    equals "$(counter requests_total)/$(counter \
        '.requests["POST /sys/v1/session/auth"]')" 2/1

# ---- api-key mode: a refused key is final, and never logged ----
counters_reset
SMARTKEY_AUTH=api-key SMARTKEY_API_KEY=bm90OnRoZS1rZXk= \
    SMARTKEY_DEBUG="level:3,file:$WORK/debug.log" oneshot_wrap ossl
check "api-key (env), wrong key: fails cleanly" failed_cleanly
check "api-key (env), wrong key: the message is about the API key" \
    stderr_has "api key"
check "api-key (env), wrong key: one refused request, no session attempt" \
    equals "$(counter requests_total)/$(counter \
        '.requests["POST /sys/v1/session/auth"]')" 1/0
check "api-key (env): the debug log never shows the API key" \
    eval 'test -s "$WORK/debug.log" && ! grep -Fq -e bm90OnRoZS1rZXk= \
        -e "$SMARTKEY_API_KEY" "$WORK/debug.log"'

# ---- a bad auth value is a configuration error ----
counters_reset
SMARTKEY_AUTH=token oneshot_wrap ossl
check "auth = token: fails cleanly" failed_cleanly
check "auth = token: the message names the parameter" \
    stderr_has "auth.*auto, session or api-key"
finish
