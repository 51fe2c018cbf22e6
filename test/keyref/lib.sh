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
    if [[ $# -lt 3 ]]; then
        echo "usage: $0 MODULE_DIR EMULATOR LEGACY_PROGRAM" >&2
        exit 2
    fi
    LEGACY=$3
    cli_init "$1" "$2"
    trap keyref_cleanup EXIT
    if [[ ! -x $LEGACY ]]; then
        echo "missing $LEGACY: build first" >&2
        exit 2
    fi
}

# Servers a test starts (nginx, s_server) are stopped on any exit, before
# the emulator.
EXTRA_PIDS=()
keyref_cleanup() {
    local status=$? pid
    for pid in "${EXTRA_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    (exit "$status")
    cli_cleanup
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
