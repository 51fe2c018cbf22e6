#!/usr/bin/env bash
# curl presents a client certificate whose key is a key-reference file
# (`curl --cert client.crt --key ref.pem`, the provider activated through
# OPENSSL_CONF alone) to an `openssl s_server -Verify` peer, which accepts
# it; without the certificate the peer refuses the client. Debian's curl
# uses OpenSSL 3, and the provider's own HTTPS calls to SmartKey then run
# inside curl's handshake.
# Usage: curl_client.sh MODULE_DIR EMULATOR LEGACY_PROGRAM
source "$(dirname "$0")/lib.sh"
keyref_init "$@"
emulator_start
use_env_config

genpkey_in_smartkey -algorithm RSA -pkeyopt bits:2048 \
    -pkeyopt smartkey-name:client-rsa -out "$WORK/client-rsa.pem" \
    2>/dev/null &&
    genpkey_in_smartkey -algorithm EC -pkeyopt group:P-256 \
        -pkeyopt smartkey-name:client-ec -out "$WORK/client-ec.pem" \
        2>/dev/null ||
    fatal "genpkey could not make the client keys"
ossl pkey -in "$WORK/client-rsa.pem" -pubout -out "$WORK/client-rsa.pub" &&
    ossl pkey -in "$WORK/client-ec.pem" -pubout -out "$WORK/client-ec.pub" ||
    fatal "could not read the public keys"
make_test_ca || fatal "could not make the test CA"
client_ext="extendedKeyUsage=clientAuth"
issue_cert "$WORK/client-rsa.pub" "$WORK/client-rsa.crt" client-rsa \
    "$client_ext" &&
    issue_cert "$WORK/client-ec.pub" "$WORK/client-ec.crt" client-ec \
        "$client_ext" ||
    fatal "could not issue the client certificates"
# The peer's own key is an ordinary local one.
OPENSSL_CONF=$WORK/empty.cnf openssl genpkey -algorithm EC \
    -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/server.key" 2>/dev/null &&
    OPENSSL_CONF=$WORK/empty.cnf openssl pkey -in "$WORK/server.key" \
        -pubout -out "$WORK/server.pub" &&
    issue_cert "$WORK/server.pub" "$WORK/server.crt" localhost ||
    fatal "could not make the peer's certificate"

# start_peer: `openssl s_server -Verify 1` (client certificate required)
# answering with an HTML status page that names the client's subject.
start_peer() {
    local attempt
    for attempt in 1 2 3; do
        PEER_PORT=$(closed_port)
        OPENSSL_CONF=$WORK/empty.cnf openssl s_server \
            -accept "127.0.0.1:$PEER_PORT" -cert "$WORK/server.crt" \
            -key "$WORK/server.key" -CAfile "$WORK/ca.pem" -Verify 1 \
            -verify_return_error -www >"$WORK/peer.log" 2>&1 &
        PEER_PID=$!
        BACKGROUND_PIDS+=("$PEER_PID")
        wait_for_port "$PEER_PORT" "$PEER_PID" && return 0
        grep -qi 'in use' "$WORK/peer.log" || break
    done
    return 1
}
start_peer || fatal "s_server did not start: $(tail -n 3 "$WORK/peer.log")"

config_only_activation

# fetch [CURL ARGS...]: curl the peer's status page.
fetch() {
    run timeout "$CLI_TIMEOUT" curl -sS --cacert "$WORK/ca.pem" \
        --resolve "localhost:$PEER_PORT:127.0.0.1" "$@" \
        "https://localhost:$PEER_PORT/"
}

counters_reset
fetch --cert "$WORK/client-rsa.crt" --key "$WORK/client-rsa.pem"
check "curl --key ref.pem presents the RSA client certificate (TLS 1.3)" \
    stdout_has 'Client certificate'
check "  and the peer saw the client's subject" stdout_has 'CN *= *client-rsa'
check "  signed with exactly one SmartKey request" \
    equals "$(counter '.requests["POST /crypto/v1/sign"]')" 1

fetch --cert "$WORK/client-ec.crt" --key "$WORK/client-ec.pem" \
    --tlsv1.2 --tls-max 1.2
check "curl --key ref.pem presents the ECDSA client certificate (TLS 1.2)" \
    stdout_has 'CN *= *client-ec'

fetch
check "without a client certificate the peer refuses curl" failed_cleanly

fetch --cert "$WORK/client-ec.crt" --key "$WORK/client-rsa.pem"
check "a certificate that does not match the reference is refused by curl" \
    failed_cleanly

finish
