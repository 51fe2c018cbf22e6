#!/usr/bin/env bash
# The EVP signing API as libssl and the apps drive it (test-sign-api):
# digest probes and the AlgorithmIdentifier never reach SmartKey; N
# signatures on a context re-initialised without a key, and one from a
# copied context, cost exactly N + 1 sign requests after a single session
# and key lookup.
# Usage: api.sh MODULE_DIR EMULATOR TEST_PROGRAM
source "$(dirname "$0")/lib.sh"
sign_program_start api "$@"

# requests: sign,auth,info since the last reset
requests() {
    counter '.requests | [.["POST /crypto/v1/sign"],
        .["POST /sys/v1/session/auth"], .["POST /crypto/v1/keys/info"]]
        | map(. // 0 | tostring) | join(",")'
}

for key in api-rsa api-p384; do
    counters_reset
    run timeout "$CLI_TIMEOUT" "$PROGRAM" probe "smartkey:name=$key"
    sed 's/^/    /' "$OUT"
    check "$key: probes and size queries pass" succeeded
    check "$key: they sent no sign request" equals "$(requests | cut -d, -f1)" 0

    counters_reset
    run timeout "$CLI_TIMEOUT" "$PROGRAM" sign "smartkey:name=$key" 20
    sed 's/^/    /' "$OUT"
    check "$key: 20 + 1 signatures verify" succeeded
    check "$key: the program made 21 signatures" \
        stdout_has_text 'signatures: 21'
    check "$key: 21 sign requests, one session, one key lookup" \
        equals "$(requests)" "21,1,1"
done

finish
