#!/usr/bin/env bash
# A prefork nginx (master + 4 workers) whose ssl_certificate_key is a
# key-reference file, the provider activated only through openssl.cnf,
# serves many full TLS handshakes from separate curl processes (4 at a
# time, TLS 1.3 and 1.2, an RSA and an ECDSA key) with 0 failures. The
# workers are forked after the master loaded the keys: each signs through
# its inherited provider (auth = auto: the master's two key lookups carried
# the API key, so each worker opens at most one session of its own).
# Usage: nginx_prefork.sh MODULE_DIR EMULATOR [HANDSHAKES]
# Set-up as test/keyref/nginx.sh (its helpers are sourced, not changed).
source "$(dirname "$0")/../keyref/lib.sh"
cli_init "$1" "$2"
trap keyref_cleanup EXIT
HANDSHAKES=${3:-400}
WORKERS=4
command -v nginx >/dev/null ||
    PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null; then
    echo "missing tool: nginx (see scripts/setup)" >&2
    exit 2
fi
emulator_start
use_env_config

genpkey_in_smartkey -algorithm RSA -pkeyopt bits:2048 \
    -pkeyopt smartkey-name:prefork-rsa -out "$WORK/prefork-rsa.pem" \
    2>/dev/null &&
    genpkey_in_smartkey -algorithm EC -pkeyopt group:P-256 \
        -pkeyopt smartkey-name:prefork-ec -out "$WORK/prefork-ec.pem" \
        2>/dev/null ||
    fatal "genpkey could not make the server keys"
ossl pkey -in "$WORK/prefork-rsa.pem" -pubout -out "$WORK/prefork-rsa.pub" &&
    ossl pkey -in "$WORK/prefork-ec.pem" -pubout -out "$WORK/prefork-ec.pub" ||
    fatal "could not read the public keys"
make_test_ca || fatal "could not make the test CA"
issue_cert "$WORK/prefork-rsa.pub" "$WORK/prefork-rsa.crt" localhost &&
    issue_cert "$WORK/prefork-ec.pub" "$WORK/prefork-ec.crt" localhost ||
    fatal "could not issue the server certificates"

config_only_activation

prefix=$WORK/nginx
mkdir -p "$prefix/logs"
# Started as root, nginx runs its workers as nobody: they open their own
# connections to SmartKey and must be able to read the CA file.
user_line=""
if [[ $(id -u) -eq 0 ]]; then
    user_line="user nobody nogroup;"
    chmod 711 "$WORK"
    mkdir -m 755 "$WORK/public"
    cp "$CA_FILE" "$WORK/public/smartkey-ca.pem"
    chmod 644 "$WORK/public/smartkey-ca.pem"
    make_config "$WORK/openssl.cnf" "ca_file=$WORK/public/smartkey-ca.pem"
fi

start_nginx() {
    local attempt
    for attempt in 1 2 3; do
        RSA_PORT=$(closed_port)
        EC_PORT=$(closed_port)
        # reuseport: the kernel spreads the connections over the workers
        cat >"$prefix/nginx.conf" <<CONF
$user_line
daemon off;
master_process on;
worker_processes $WORKERS;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log info;
env OPENSSL_CONF;
events { worker_connections 64; }
http {
    log_format worker '\$pid \$ssl_protocol \$status';
    access_log $prefix/logs/access.log worker;
    client_body_temp_path $prefix/body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:$RSA_PORT ssl reuseport;
        server_name localhost;
        ssl_certificate $WORK/prefork-rsa.crt;
        ssl_certificate_key $WORK/prefork-rsa.pem;
        location / { return 200 "rsa\n"; }
    }
    server {
        listen 127.0.0.1:$EC_PORT ssl reuseport;
        server_name localhost;
        ssl_certificate $WORK/prefork-ec.crt;
        ssl_certificate_key $WORK/prefork-ec.pem;
        location / { return 200 "ec\n"; }
    }
}
CONF
        nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
            >"$prefix/logs/stdout" 2>&1 &
        NGINX_PID=$!
        EXTRA_PIDS+=("$NGINX_PID")
        if wait_for_port "$RSA_PORT" "$NGINX_PID" &&
            wait_for_port "$EC_PORT" "$NGINX_PID"; then
            return 0
        fi
        grep -q 'Address already in use' "$prefix/logs/error.log" || break
    done
    return 1
}

if ! start_nginx; then
    echo "--- nginx error log ---"
    tail -n 20 "$prefix/logs/error.log"
    fatal "nginx did not start"
fi
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
serving_workers=$(awk '{print $1}' "$prefix/logs/access.log" | sort -u | wc -l)
echo "# $HANDSHAKES handshakes: $served served, $failures failed;" \
    "$signs signatures in SmartKey; served by $serving_workers workers:" \
    "$(awk '{print $1}' "$prefix/logs/access.log" | sort | uniq -c |
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

kill -TERM "$NGINX_PID" 2>/dev/null
wait "$NGINX_PID" 2>/dev/null
EXTRA_PIDS=()
check "no worker crashed" \
    bash -c "! grep -Eq 'exited on signal|\\[(alert|emerg)\\]' '$prefix/logs/error.log'"

finish
