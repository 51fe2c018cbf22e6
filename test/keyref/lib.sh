# shellcheck shell=bash
# Helpers of the key-reference tests, on top of the CLI tests' lib.sh
# (sourced, not changed): emulator start/stop, rest, control, counters,
# make_config, run, check, finish.
#
#   source "$(dirname "$0")/lib.sh"
#   keyref_init "$@"      # MODULE_DIR EMULATOR LEGACY_PROGRAM
#   emulator_start

KEYREF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cli/lib.sh
source "$KEYREF_DIR/../cli/lib.sh"

keyref_init() {
    need_args 3 "MODULE_DIR EMULATOR LEGACY_PROGRAM" "$@"
    LEGACY=$3
    cli_init "$1" "$2"
    need_built "$LEGACY"
}

# The documented genpkey command (provider-smartkey(7), smartkey.h) with
# the provider flags of $GENPKEY_PROVIDERS (default then smartkey unless
# the test says otherwise).
GENPKEY_PROVIDERS=(-provider default -provider smartkey)
genpkey_in_smartkey() {
    timeout "$CLI_TIMEOUT" openssl genpkey -provider-path "$MODULE_DIR" \
        "${GENPKEY_PROVIDERS[@]}" -propquery '?provider=smartkey' "$@"
}

# config_only_activation: OPENSSL_CONF generated from the shipped snippet
# (default first, then smartkey) and nothing in the environment: the way a
# legacy application gets the provider.
config_only_activation() {
    make_config "$WORK/openssl.cnf" ||
        fatal "could not generate openssl.cnf from the snippet"
    export OPENSSL_CONF=$WORK/openssl.cnf
    clear_env_config
}

# make_test_ca: a local CA (key made by the default provider) in
# $WORK/ca.pem / ca.key; certificates for SmartKey keys are issued by it
# from their public key, so no SmartKey signature is needed to get one.
make_test_ca() {
    # CA:TRUE explicitly: without a configuration OpenSSL 3.0 makes a v1
    # certificate (a CA by default), 3.5 a v3 one that is no CA without it.
    OPENSSL_CONF=$WORK/empty.cnf timeout "$CLI_TIMEOUT" openssl req -x509 \
        -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -subj /CN=keyref-test-ca \
        -addext basicConstraints=critical,CA:TRUE -days 2 >/dev/null 2>&1
}

# issue_cert PUBKEY_PEM OUT_CERT CN [EXTENSIONS]: a certificate from the
# test CA for a public key.
issue_cert() {
    local ext=${4:-subjectAltName=DNS:localhost,IP:127.0.0.1}
    printf '%s\n' "$ext" >"$WORK/ext.cnf"
    OPENSSL_CONF=$WORK/empty.cnf timeout "$CLI_TIMEOUT" openssl req -new \
        -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout /dev/null -subj "/CN=$3" -out "$WORK/cert.csr" \
        >/dev/null 2>&1 &&
        OPENSSL_CONF=$WORK/empty.cnf timeout "$CLI_TIMEOUT" openssl x509 \
            -req -in "$WORK/cert.csr" -CA "$WORK/ca.pem" \
            -CAkey "$WORK/ca.key" -CAcreateserial -force_pubkey "$1" \
            -days 2 -extfile "$WORK/ext.cnf" -out "$2" >/dev/null 2>&1
}

# wait_for_port PORT PID: until something listens on 127.0.0.1:PORT, or
# the process PID exits.
wait_for_port() {
    local tries=0
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || return 1
        ((++tries > 600)) && return 1
        sleep 0.1
    done
}

# ---- nginx (keyref/nginx.sh, stress/nginx_prefork.sh) ----

# nginx_require: Debian's nginx on PATH (it lives in /usr/sbin), or exit 2.
nginx_require() {
    command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
    if ! command -v nginx >/dev/null; then
        echo "missing tool: nginx (see scripts/setup)" >&2
        exit 2
    fi
}

# nginx_server_keys NAME: an RSA-2048 and an ECDSA P-256 key made in
# SmartKey by genpkey ($WORK/NAME-rsa.pem, NAME-ec.pem: key-reference
# files) and their certificates from the test CA (NAME-rsa.crt, NAME-ec.crt,
# CA in $WORK/ca.pem). Stops the test when any step fails.
nginx_server_keys() {
    local name=$1 kind
    for kind in rsa ec; do
        local opts=(-algorithm RSA -pkeyopt bits:2048)
        [[ $kind == ec ]] && opts=(-algorithm EC -pkeyopt group:P-256)
        genpkey_in_smartkey "${opts[@]}" -pkeyopt "smartkey-name:$name-$kind" \
            -out "$WORK/$name-$kind.pem" 2>/dev/null ||
            fatal "genpkey could not make the server keys"
        ossl pkey -in "$WORK/$name-$kind.pem" -pubout \
            -out "$WORK/$name-$kind.pub" ||
            fatal "could not read the public keys"
    done
    make_test_ca || fatal "could not make the test CA"
    for kind in rsa ec; do
        issue_cert "$WORK/$name-$kind.pub" "$WORK/$name-$kind.crt" localhost ||
            fatal "could not issue the server certificates"
    done
}

# nginx_prepare: the provider activated through openssl.cnf only, nginx's
# prefix in $NGINX_PREFIX. nginx started as root runs its workers as an
# unprivileged user: they inherit the key handles and the SmartKey session
# from the master but open new HTTPS connections to SmartKey themselves, so
# they must be able to read the CA file (not the API key: the master read
# it).
nginx_prepare() {
    config_only_activation
    NGINX_PREFIX=$WORK/nginx
    mkdir -p "$NGINX_PREFIX/logs"
    NGINX_USER_LINE=""
    if [[ $(id -u) -eq 0 ]]; then
        NGINX_USER_LINE="user nobody nogroup;"
        chmod 711 "$WORK"
        mkdir -m 755 "$WORK/public"
        cp "$CA_FILE" "$WORK/public/smartkey-ca.pem"
        chmod 644 "$WORK/public/smartkey-ca.pem"
        make_config "$WORK/openssl.cnf" "ca_file=$WORK/public/smartkey-ca.pem"
    fi
}

# nginx_server PORT KEY LISTEN_OPTIONS BODY: a server block answering BODY
# over TLS with $WORK/KEY.pem (a key-reference file) and KEY.crt.
nginx_server() {
    cat <<CONF
    server {
        listen 127.0.0.1:$1 ssl $3;
        server_name localhost;
        ssl_certificate $WORK/$2.crt;
        ssl_certificate_key $WORK/$2.pem;
        location / { return 200 "$4\n"; }
    }
CONF
}

# nginx_start NAME WORKERS LISTEN_OPTIONS HTTP_EXTRA RSA_BODY EC_BODY:
# nginx in the foreground with WORKERS workers, serving RSA_BODY with the
# key NAME-rsa on $RSA_PORT and EC_BODY with NAME-ec on $EC_PORT (two free
# loopback ports); LISTEN_OPTIONS are added to both listen lines,
# HTTP_EXTRA to the http block. A port taken between the probe and
# nginx's bind is retried. Sets NGINX_PID; stops the test on failure.
nginx_start() {
    local name=$1 workers=$2 listen=$3 extra=$4 rsa_body=$5 ec_body=$6
    local prefix=$NGINX_PREFIX attempt
    for attempt in 1 2 3; do
        RSA_PORT=$(closed_port)
        EC_PORT=$(closed_port)
        cat >"$prefix/nginx.conf" <<CONF
$NGINX_USER_LINE
daemon off;
master_process on;
worker_processes $workers;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log info;
# nginx clears the environment of its workers; OpenSSL and the provider
# are set up in the master (which reads OPENSSL_CONF), but keep it for
# anything that reads it later.
env OPENSSL_CONF;
events { worker_connections 64; }
http {
    $extra
    client_body_temp_path $prefix/body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
$(nginx_server "$RSA_PORT" "$name-rsa" "$listen" "$rsa_body")
$(nginx_server "$EC_PORT" "$name-ec" "$listen" "$ec_body")
}
CONF
        nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
            >"$prefix/logs/stdout" 2>&1 &
        NGINX_PID=$!
        BACKGROUND_PIDS+=("$NGINX_PID")
        if wait_for_port "$RSA_PORT" "$NGINX_PID" &&
            wait_for_port "$EC_PORT" "$NGINX_PID"; then
            return 0
        fi
        grep -q 'Address already in use' "$prefix/logs/error.log" || break
    done
    echo "--- nginx error log ---"
    tail -n 20 "$prefix/logs/error.log"
    fatal "nginx did not start"
}

# nginx_stop: stops nginx (background_stop) and checks that no worker crashed.
nginx_stop() {
    background_stop
    check "no worker crashed" \
        bash -c "! grep -Eq 'exited on signal|\\[(alert|emerg)\\]' '$NGINX_PREFIX/logs/error.log'"
}
