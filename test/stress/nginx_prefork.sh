#!/usr/bin/env bash
# A prefork nginx (master + 4 workers) whose ssl_certificate_key is a
# key-reference file, the provider activated only through openssl.cnf,
# serves many full TLS handshakes from separate curl processes (4 at a
# time, TLS 1.3 and 1.2, an RSA and an ECDSA key) with 0 failures. The
# workers are forked after the master loaded the keys: each signs through
# its inherited provider (auth = auto: the master's two key lookups carried
# the API key, so each worker opens at most one session of its own).
# Usage: nginx_prefork.sh MODULE_DIR EMULATOR [HANDSHAKES]
# Set-up shared with test/keyref/nginx.sh (the nginx_* helpers of
# test/keyref/lib.sh).
source "$(dirname "$0")/../keyref/lib.sh"
cli_init "$1" "$2"
HANDSHAKES=${3:-400}
WORKERS=4
nginx_require
emulator_start
use_env_config
nginx_server_keys prefork
nginx_prepare

# reuseport: the kernel spreads the connections over the workers
nginx_start prefork "$WORKERS" reuseport \
    "log_format worker '\$pid \$ssl_protocol \$status';
    access_log $NGINX_PREFIX/logs/access.log worker;
    ssl_session_cache off;
    ssl_session_tickets off;" rsa ec
workers=0
# up to 60 s: 2 cores run ctest -j
for ((i = 0; i < 600; i++)); do
    workers=$(ps -o pid= --ppid "$NGINX_PID" | wc -l)
    [[ $workers -ge $WORKERS ]] && break
    sleep 0.1
done
check "nginx runs a master and $WORKERS workers" equals "$workers" "$WORKERS"

# handshake N: one curl process, one full handshake (no provider in curl;
# no session resumption across processes). Odd numbers use TLS 1.2, every
# third one the ECDSA server. Prints the HTTP status or "failed".
handshake() {
    local n=$1 port=$RSA_PORT body=rsa tls=()
    ((n % 3 == 0)) && port=$EC_PORT body=ec
    ((n % 2 == 1)) && tls=(--tlsv1.2 --tls-max 1.2)
    if OPENSSL_CONF=$WORK/empty.cnf timeout "$CLI_TIMEOUT" curl -sS \
        --cacert "$WORK/ca.pem" --resolve "localhost:$port:127.0.0.1" \
        "${tls[@]}" "https://localhost:$port/" 2>>"$WORK/curl.err" |
        grep -qx "$body"; then
        echo ok
    else
        echo failed
    fi
}
export -f handshake
export RSA_PORT EC_PORT WORK CLI_TIMEOUT

counters_reset
seq 1 "$HANDSHAKES" | xargs -P 4 -I{} bash -c 'handshake {}' \
    >"$WORK/handshakes"
served=$(grep -cx ok "$WORK/handshakes")
failures=$(grep -cx failed "$WORK/handshakes")
signs=$(counter '.requests["POST /crypto/v1/sign"]')
serving_workers=$(awk '{print $1}' "$NGINX_PREFIX/logs/access.log" | sort -u | wc -l)
echo "# $HANDSHAKES handshakes: $served served, $failures failed;" \
    "$signs signatures in SmartKey; served by $serving_workers workers:" \
    "$(awk '{print $1}' "$NGINX_PREFIX/logs/access.log" | sort | uniq -c |
        awk '{printf "%s ", $1}')"
if [[ -s $WORK/curl.err ]]; then
    sed -n '1,5s/^/       curl: /p' "$WORK/curl.err"
fi
check "prefork nginx served all $HANDSHAKES handshakes (0 failures)" \
    equals "$served" "$HANDSHAKES"
check "each handshake cost exactly one signature in SmartKey" \
    equals "$signs" "$HANDSHAKES"
check "the handshakes were served by more than one worker" \
    between "$serving_workers" 2 "$WORKERS"
check "the workers never looked a key up again" \
    equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 0
check "each worker opened at most one session" \
    between "$(counter '.requests["POST /sys/v1/session/auth"]')" 0 "$WORKERS"

nginx_stop

finish
