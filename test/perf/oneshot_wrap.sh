#!/usr/bin/env bash
# One-shot server-side wrap as a user runs it (issue #7): a fresh
# `openssl pkeyutl` process wraps an AES key under an RSA key held in
# SmartKey. Server counters for the whole process: 1 TLS handshake and 3
# HTTP requests (session, key lookup, wrapkey), no more. Issue #7 asks for
# at most 2: that needs the session-less API-key mode on a process's first
# calls (docs/performance.md, "One-shot"), not done yet; this test pins
# today's cost so that nothing adds to it. Counts only, never timings.
# Usage: oneshot_wrap.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/../cli/lib.sh"
cli_init "$@"
emulator_start
use_env_config

rest POST /crypto/v1/keys '{"name":"oneshot-kek","obj_type":"RSA",
    "key_size":2048,"key_ops":["WRAPKEY","ENCRYPT","APPMANAGEABLE"]}' \
    >/dev/null || fatal "cannot create the wrapping key"
rest POST /crypto/v1/keys '{"name":"oneshot-aes","obj_type":"AES",
    "key_size":256,"key_ops":["EXPORT","ENCRYPT","APPMANAGEABLE"]}' \
    >/dev/null || fatal "cannot create the AES key"

counters_reset
run ossl pkeyutl -encrypt -propquery '?provider=smartkey' \
    -inkey smartkey:name=oneshot-kek -in /dev/null -out "$WORK/wrapped.bin" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
    -pkeyopt rsa_mgf1_md:sha256 \
    -pkeyopt smartkey-wrap-subject:smartkey:name=oneshot-aes
check "one-shot pkeyutl wrap succeeds" succeeded
check "one-shot pkeyutl wrap writes one RSA-2048 block" \
    equals "$(stat -c %s "$WORK/wrapped.bin" 2>/dev/null)" 256
requests=$(counter requests_total)
handshakes=$(counter tls_handshakes)
echo "       requests: $(counter '.requests | tostring')"
check "one-shot pkeyutl wrap costs at most 3 requests (got $requests)" \
    at_most "$requests" 3
check "one-shot pkeyutl wrap authenticates once" \
    equals "$(counter '.requests["POST /sys/v1/session/auth"]')" 1
check "one-shot pkeyutl wrap looks the wrapping key up once" \
    equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 1
check "one-shot pkeyutl wrap costs 1 TLS handshake (got $handshakes)" \
    equals "$handshakes" 1
check "one-shot pkeyutl wrap sends one wrapkey request" \
    equals "$(counter '.requests["POST /crypto/v1/wrapkey"]')" 1
finish
