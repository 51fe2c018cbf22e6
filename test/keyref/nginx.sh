#!/usr/bin/env bash
# Debian's nginx serves HTTPS with `ssl_certificate_key` pointing at a
# key-reference file, the provider activated only through openssl.cnf
# (the shipped snippet: default first, then smartkey), and `curl
# --cacert` fetches a page over TLS 1.3 and 1.2, with an RSA and an ECDSA
# P-256 key. nginx runs in the foreground with its own prefix, config,
# pid and logs in the test's directory, on loopback ports.
# Usage: nginx.sh MODULE_DIR EMULATOR LEGACY_PROGRAM
source "$(dirname "$0")/lib.sh"
keyref_init "$@"
nginx_require
emulator_start
use_env_config
nginx_server_keys nginx
nginx_prepare

counters_reset
nginx_start nginx 2 "" "access_log $NGINX_PREFIX/logs/access.log;" \
    "hello from an RSA key in SmartKey" "hello from an EC key in SmartKey"
check "nginx started with key-reference files (config-only activation)" \
    kill -0 "$NGINX_PID"
check "nginx looked each key up once, at start-up" \
    equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 2

# fetch PORT [CURL ARGS...]: curl the page as a client with no provider.
fetch() {
    local port=$1
    shift
    run env OPENSSL_CONF="$WORK/empty.cnf" timeout "$CLI_TIMEOUT" curl -sS \
        --cacert "$WORK/ca.pem" --resolve "localhost:$port:127.0.0.1" \
        "$@" "https://localhost:$port/"
}

counters_reset
fetch "$RSA_PORT"
check "curl --cacert fetches the page from the RSA key (TLS 1.3)" \
    stdout_has_text "hello from an RSA key in SmartKey"
fetch "$RSA_PORT" --tlsv1.2 --tls-max 1.2
check "curl fetches the page from the RSA key over TLS 1.2" \
    stdout_has_text "hello from an RSA key in SmartKey"
fetch "$EC_PORT"
check "curl --cacert fetches the page from the ECDSA P-256 key (TLS 1.3)" \
    stdout_has_text "hello from an EC key in SmartKey"
fetch "$EC_PORT" --tlsv1.2 --tls-max 1.2
check "curl fetches the page from the ECDSA key over TLS 1.2" \
    stdout_has_text "hello from an EC key in SmartKey"
check "each handshake cost exactly one signature request" \
    equals "$(counter '.requests["POST /crypto/v1/sign"]')" 4
check "the workers looked no key up again" \
    equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 0

fetch "$RSA_PORT" --cacert "$WORK/nginx-ec.crt"
check "a client that does not trust the CA is refused (the check is real)" \
    failed_cleanly

nginx_stop

finish
