#!/usr/bin/env bash
# A cold `openssl pkey -pubout` costs at most 2 HTTP requests over 1 TLS
# connection; a failing store load is not retried in a loop (docs/openssl-dispatch.md §1:
# a store whose eof() stays 0 after an error makes openssl call load()
# forever, hammering SmartKey).
# Usage: requests.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"
CLI_TIMEOUT=30

kid=$(create_rsa count-rsa 2048) ||
    fatal "could not create the test keys in the emulator"
create_ec count-ec NistP256 >/dev/null ||
    fatal "could not create the test keys in the emulator"

cold_pubout() {
    counters_reset
    run ossl pkey -in "$1" -pubout
    check "$1: cold -pubout succeeds" succeeded
    check "$1: at most 2 requests" at_most "$(counter requests_total)" 2
    check "$1: 1 TLS handshake" equals "$(counter tls_handshakes)" 1
    check "$1: 1 connection" equals "$(counter connections)" 1
}
cold_pubout smartkey:name=count-rsa
cold_pubout "smartkey:kid=$kid"
cold_pubout smartkey://name=count-ec

counters_reset
run ossl pkey -in smartkey:name=count-ec -text_pub -noout
check "cold -text_pub: at most 2 requests" at_most "$(counter requests_total)" 2

# ---- failures end the load: one request (two with authentication) ----
counters_reset
run ossl pkey -in smartkey:name=no-such-key -pubout
check "pkey, unknown key: fails cleanly (no endless loop)" failed_cleanly
check "pkey, unknown key: 1 or 2 requests" \
    between "$(counter requests_total)" 1 2

counters_reset
run ossl pkey -pubin -in smartkey:name=no-such-key -pubout
check "pkey -pubin, unknown key: fails cleanly" failed_cleanly
# OpenSSL 3.5's `pkey -pubin` opens the URI once more (for a private key)
# after the public-key load failed: one more lookup there, still no loop.
check "pkey -pubin, unknown key: 1 to 3 requests" \
    between "$(counter requests_total)" 1 3

counters_reset
run ossl storeutl -keys -noout smartkey:name=no-such-key
check "storeutl, unknown key: ends (no endless loop)" \
    between "$RC" 0 123
check "storeutl, unknown key: 1 or 2 requests" \
    between "$(counter requests_total)" 1 2

# A server error that keeps coming: the configured retries (default 2) and
# no more. 1 authentication + 3 attempts at most.
control POST /_emulator/faults \
    '{"path":"*","count":1000,"action":"status","status":503}' >/dev/null
counters_reset
run ossl pkey -in smartkey:name=count-rsa -pubout
check "persistent 503: fails cleanly" failed_cleanly
check "persistent 503: message gives the status" stderr_has '503'
check "persistent 503: at most 1 + 1 + retries requests" \
    between "$(counter requests_total)" 1 4
counters_reset
run ossl storeutl -keys -noout smartkey:
check "storeutl smartkey:, persistent 503: ends" between "$RC" 0 123
check "storeutl smartkey:, persistent 503: at most 1 + 1 + retries requests" \
    between "$(counter requests_total)" 1 4
control DELETE /_emulator/faults >/dev/null

finish
