# shellcheck shell=bash
# Shared functions for the signing tests: the CLI test library (read-only,
# sourced from test/cli) plus helpers for keys, certificates and TLS.
#
# A test script does:
#   source "$(dirname "$0")/lib.sh"
#   sign_test_init "$@"      # MODULE_DIR EMULATOR (passed by CMake)
#   emulator_start; use_env_config
#   ...
#   finish

# shellcheck source=../cli/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../cli" && pwd)/lib.sh"

# sign_program_start PREFIX MODULE_DIR EMULATOR TEST_PROGRAM:
# sign_test_start for a script driving a C test program (PROGRAM; it finds
# the module through SMARTKEY_TEST_MODULE_DIR), with the keys PREFIX-rsa
# (RSA 2048) and PREFIX-p384 (EC P-384) in SmartKey.
sign_program_start() {
    local prefix=$1
    shift
    need_args 3 "MODULE_DIR EMULATOR TEST_PROGRAM" "$@"
    # shellcheck disable=SC2034 # read by the scripts that call this
    PROGRAM=$3
    sign_test_start "$1" "$2"
    export SMARTKEY_TEST_MODULE_DIR=$MODULE_DIR
    create_rsa "$prefix-rsa" 2048 >/dev/null ||
        fatal "cannot create the RSA key"
    create_ec "$prefix-p384" NistP384 >/dev/null ||
        fatal "cannot create the EC key"
}

# public_pem NAME OUT: the key's public half as PEM, from SmartKey's own
# copy (not through the provider under test).
public_pem() {
    server_public_key "$1" "$WORK/$1.spki.der" &&
        openssl pkey -pubin -inform DER -in "$WORK/$1.spki.der" -out "$2"
}

# sign_requests: POST /crypto/v1/sign requests since the last reset.
sign_requests() {
    counter '.requests["POST /crypto/v1/sign"]'
}

# self_signed NAME OUT [req options...]: a self-signed certificate whose
# key is the SmartKey key NAME.
self_signed() {
    local name=$1 out=$2
    shift 2
    run ossl req -new -x509 -key "smartkey:name=$name" -subj "/CN=$name" \
        -days 2 -out "$out" "$@"
    succeeded
}

# ---- TLS ----

SERVER_PID=""

# server_start KEY_URI CERT CONNECTIONS [s_server options...]: an
# `openssl s_server -www` with the SmartKey key on a free loopback port
# (sets PORT), answering CONNECTIONS connections then exiting. A port
# taken between choosing and binding it is retried with another one.
server_start() {
    local key=$1 cert=$2 count=$3
    shift 3
    local _
    for _ in 1 2 3 4 5; do
        PORT=$(closed_port)
        : >"$WORK/server.out"
        ossl s_server -accept "127.0.0.1:$PORT" -key "$key" -cert "$cert" \
            -naccept "$count" -www "$@" \
            >"$WORK/server.out" 2>"$WORK/server.err" </dev/null &
        SERVER_PID=$!
        local tries=0
        # s_server prints ACCEPT once it listens
        while ! grep -q '^ACCEPT' "$WORK/server.out"; do
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then
                wait "$SERVER_PID" 2>/dev/null
                SERVER_PID=""
                break
            fi
            if ((++tries > 600)); then
                server_stop
                return 1
            fi
            sleep 0.1
        done
        [[ -n $SERVER_PID ]] && return 0
        # a port clash shows as a bind error; anything else is final
        grep -qi 'address already in use\|bind' "$WORK/server.err" ||
            return 1
    done
    return 1
}

server_stop() { stop_process SERVER_PID; }

# verifying_server_start ALG CLIENT_CA CONNECTIONS: server_start with a
# local (not SmartKey) ALG key and certificate, $WORK/tls-server.crt, that
# demands a client certificate issued by CLIENT_CA; the emulator's counters
# are reset once it listens.
verifying_server_start() {
    openssl req -x509 -newkey "$1" -nodes -subj /CN=local-server -days 2 \
        -keyout "$WORK/tls-server.key" -out "$WORK/tls-server.crt" \
        2>/dev/null ||
        fatal "cannot make the local server's certificate"
    server_start "$WORK/tls-server.key" "$WORK/tls-server.crt" "$3" \
        -Verify 1 -verify_return_error -CAfile "$2" ||
        fatal "s_server -Verify did not start: $(cat "$WORK/server.err")"
    counters_reset
}

# handshake CA_CERT [s_client options...]: one HTTPS request through
# `openssl s_client` (stock openssl, no smartkey) to the server on PORT;
# the summary (-brief) lands in $ERR, the page in $OUT.
handshake() {
    local ca=$1
    shift
    run bash -c 'printf "GET / HTTP/1.0\r\n\r\n" |
        timeout "$0" openssl s_client -connect "127.0.0.1:$1" -CAfile "$2" \
            -verify_return_error -brief -ign_eof "${@:3}"' \
        "$CLI_TIMEOUT" "$PORT" "$ca" "$@"
}

# client_handshake CA_CERT CLIENT_CERT CLIENT_KEY [s_client options...]: as
# handshake, with `openssl s_client` presenting CLIENT_CERT and its key
# CLIENT_KEY (e.g. a smartkey: URI), providers loaded as documented.
client_handshake() {
    local ca=$1 cert=$2 key=$3
    shift 3
    run bash -c 'printf "GET / HTTP/1.0\r\n\r\n" |
        timeout "$0" openssl s_client -provider-path "$1" -provider default \
            -provider smartkey -connect "127.0.0.1:$2" -CAfile "$3" \
            -cert "$4" -key "$5" -verify_return_error -brief -ign_eof "${@:6}"' \
        "$CLI_TIMEOUT" "$MODULE_DIR" "$PORT" "$ca" "$cert" "$key" "$@"
}

# sign_test_init MODULE_DIR EMULATOR: cli_init, plus a TLS server that is
# stopped before the emulator whatever happens (the exit status is kept).
sign_test_init() {
    cli_init "$@"
    trap 'status=$?; server_stop; (exit $status); cli_cleanup' EXIT
}

# sign_test_start MODULE_DIR EMULATOR: sign_test_init, a private emulator,
# and the provider configured through the environment.
sign_test_start() {
    sign_test_init "$1" "$2"
    emulator_start
    use_env_config
}

# import_certificate NAME PEM [KEY_OPS_JSON]: puts a certificate into
# SmartKey as a CERTIFICATE object, as docs/legacy-apps.md tells users
# (PUT /crypto/v1/keys with the DER in value); prints its kid. KEY_OPS
# defaults to the documented list, which includes EXPORT: SmartKey shows a
# certificate's value only to apps allowed EXPORT on it.
import_certificate() {
    local ops=${3:-'["VERIFY","ENCRYPT","WRAPKEY","EXPORT","APPMANAGEABLE"]'}
    rest PUT /crypto/v1/keys "$(jq -nc --arg name "$1" \
        --arg value "$(openssl x509 -in "$2" -outform DER | base64 -w0)" \
        --argjson ops "$ops" \
        '{name: $name, obj_type: "CERTIFICATE", value: $value,
          key_ops: $ops}')" | jq -re .kid
}
