#!/usr/bin/env bash
# OpenSSL 3.5's message-signing API (test-message-sign): "RSA-SHA256",
# "RSA-SHA2-512", "ECDSA-SHA384", "ECDSA-SHA3-256" and "ED25519" fetched
# from smartkey sign messages (streaming and one-shot) and digests
# (EVP_PKEY_sign_init_ex2) in SmartKey, each signature verified by the
# default provider and costing one sign request; verification with the
# SmartKey key stays local. Skipped (exit 77) where OpenSSL is older than
# 3.5: the Debian 13 stage (scripts/check-openssl35) runs it.
# Usage: message_sign.sh MODULE_DIR EMULATOR TEST_PROGRAM
source "$(dirname "$0")/lib.sh"
sign_program_start msg "$@"
rest POST /crypto/v1/keys '{"name":"msg-ed25519","obj_type":"EC",
    "elliptic_curve":"Ed25519","key_ops":["SIGN","VERIFY"]}' >/dev/null ||
    fatal "cannot create the Ed25519 key"

counters_reset
run timeout "$CLI_TIMEOUT" "$PROGRAM" smartkey:name=msg-rsa \
    smartkey:name=msg-p384 smartkey:name=msg-ed25519
sed 's/^/    /' "$OUT"
if [[ $RC -eq 77 ]]; then
    echo "skip - $(head -n1 "$OUT")"
    exit 77
fi
check "every message-signing check passed" succeeded
# 4 digest algorithms x 3 signatures + Ed25519's one-shot
check "the program made 13 signatures" stdout_has_text 'signatures: 13'
check "13 sign requests" equals "$(sign_requests)" 13

finish
