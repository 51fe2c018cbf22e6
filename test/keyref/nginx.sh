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
command -v nginx >/dev/null ||
    PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null; then
    echo "missing tool: nginx (see scripts/setup)" >&2
    exit 2
fi
emulator_start
use_env_config

genpkey_in_smartkey -algorithm RSA -pkeyopt bits:2048 \
    -pkeyopt smartkey-name:nginx-rsa -out "$WORK/nginx-rsa.pem" 2>/dev/null &&
    genpkey_in_smartkey -algorithm EC -pkeyopt group:P-256 \
        -pkeyopt smartkey-name:nginx-ec -out "$WORK/nginx-ec.pem" \
        2>/dev/null ||
    fatal "genpkey could not make the server keys"
ossl pkey -in "$WORK/nginx-rsa.pem" -pubout -out "$WORK/nginx-rsa.pub" &&
    ossl pkey -in "$WORK/nginx-ec.pem" -pubout -out "$WORK/nginx-ec.pub" ||
    fatal "could not read the public keys"
make_test_ca || fatal "could not make the test CA"
issue_cert "$WORK/nginx-rsa.pub" "$WORK/nginx-rsa.crt" localhost &&
    issue_cert "$WORK/nginx-ec.pub" "$WORK/nginx-ec.crt" localhost ||
    fatal "could not issue the server certificates"

config_only_activation

prefix=$WORK/nginx
mkdir -p "$prefix/logs"
# nginx started as root runs its workers as an unprivileged user. They
# inherit the key handles and the SmartKey session from the master, but
# open new HTTPS connections to SmartKey themselves, so they must be able
# to read the CA file (not the API key: the master read it).
user_line=""
if [[ $(id -u) -eq 0 ]]; then
    user_line="user nobody nogroup;"
    chmod 711 "$WORK"
    mkdir -m 755 "$WORK/public"
    cp "$CA_FILE" "$WORK/public/smartkey-ca.pem"
    chmod 644 "$WORK/public/smartkey-ca.pem"
    make_config "$WORK/openssl.cnf" "ca_file=$WORK/public/smartkey-ca.pem"
fi

# start_nginx: picks two free loopback ports and starts nginx; retried
# when a port was taken between the probe and nginx's bind.
start_nginx() {
    local attempt
    for attempt in 1 2 3; do
        RSA_PORT=$(closed_port)
        EC_PORT=$(closed_port)
        cat >"$prefix/nginx.conf" <<CONF
$user_line
daemon off;
master_process on;
worker_processes 2;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log info;
# nginx clears the environment of its workers; OpenSSL and the provider
# are set up in the master (which reads OPENSSL_CONF), but keep it for
# anything that reads it later.
env OPENSSL_CONF;
events { worker_connections 64; }
http {
    access_log $prefix/logs/access.log;
    client_body_temp_path $prefix/body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:$RSA_PORT ssl;
        server_name localhost;
        ssl_certificate $WORK/nginx-rsa.crt;
        ssl_certificate_key $WORK/nginx-rsa.pem;
        location / { return 200 "hello from an RSA key in SmartKey\n"; }
    }
    server {
        listen 127.0.0.1:$EC_PORT ssl;
        server_name localhost;
        ssl_certificate $WORK/nginx-ec.crt;
        ssl_certificate_key $WORK/nginx-ec.pem;
        location / { return 200 "hello from an EC key in SmartKey\n"; }
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

counters_reset
if ! start_nginx; then
    echo "--- nginx error log ---"
    tail -n 20 "$prefix/logs/error.log"
    fatal "nginx did not start"
fi
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

kill -TERM "$NGINX_PID" 2>/dev/null
wait "$NGINX_PID" 2>/dev/null
EXTRA_PIDS=()
check "no worker crashed" \
    bash -c "! grep -Eq 'exited on signal|\\[(alert|emerg)\\]' '$prefix/logs/error.log'"

finish
