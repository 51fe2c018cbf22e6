# shellcheck shell=bash
# Shared functions for the CLI tests: they drive the stock `openssl` program
# as a user would, against a private smartkey-emulator.
#
# A test script does:
#   source "$(dirname "$0")/lib.sh"
#   cli_init "$@"            # MODULE_DIR EMULATOR (passed by CMake)
#   emulator_start
#   ... create keys, run openssl, check ...
#   finish                   # prints "N passed, N failed", sets the exit code
#
# Every openssl run is bounded by a timeout so that a provider that loops
# (docs/openssl-dispatch.md §1: a store whose eof() stays 0 spins forever) fails the test
# instead of hanging ctest. No check ever asserts elapsed time.

set -uo pipefail

CLI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP_DIR=$(cd "$CLI_DIR/../.." && pwd)
CONFIG_SNIPPET=$TOP_DIR/openssl.cnf.d/smartkey.cnf
# Upper bound for one openssl run; generous because 2 cores run ctest -j.
CLI_TIMEOUT=${CLI_TIMEOUT:-60}

# shellcheck source=../common/checks.sh
source "$CLI_DIR/../common/checks.sh"
EMULATOR_PID=""
WORK=""

cli_init() {
    need_args 2 "MODULE_DIR EMULATOR" "$@"
    MODULE_DIR=$1
    EMULATOR=$2
    MODULE=$MODULE_DIR/smartkey.so
    need_tools openssl curl jq base64 timeout python3
    need_built "$MODULE" "$EMULATOR"
    WORK=$(mktemp -d -t smartkey-cli.XXXXXX)
    trap cli_cleanup EXIT
    trap 'exit 130' INT TERM

    # The user's environment must not leak into what a test proves: each
    # test states its configuration explicitly.
    local var
    for var in $(compgen -e); do
        case $var in
        SMARTKEY_* | FORTANIX_* | OPENSSL_* | SSL_CERT_*) unset "$var" ;;
        esac
    done
    # An empty configuration: the system openssl.cnf could activate other
    # providers or change their order.
    : >"$WORK/empty.cnf"
    export OPENSSL_CONF=$WORK/empty.cnf
}

cli_cleanup() {
    local status=$?
    background_stop
    stop_process REFUSER_PID
    emulator_stop
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $status -ne 0 && -s $WORK/emulator.log ]]; then
            echo "--- emulator log (last 30 lines) ---"
            tail -n 30 "$WORK/emulator.log"
        fi
        rm -rf "$WORK"
    fi
    exit "$status"
}

# cli_start MODULE_DIR EMULATOR: the usual start of a test: cli_init, a
# private emulator, and the provider configured through the environment.
cli_start() {
    cli_init "$1" "$2"
    emulator_start
    use_env_config
}

# Starts an emulator on an ephemeral loopback port with its own state dir.
# Sets ENDPOINT, CA_FILE, API_KEY_FILE, STATE. Extra arguments go to the
# emulator (e.g. --token-lifetime 5).
emulator_start() {
    STATE=$WORK/state
    mkdir -p "$STATE"
    "$EMULATOR" --state-dir "$STATE" --listen 127.0.0.1:0 --test-controls \
        --log "$WORK/emulator.log" "$@" &
    EMULATOR_PID=$!
    local tries=0
    # `endpoint` is written last, atomically: its presence means "ready".
    while [[ ! -s $STATE/endpoint ]]; do
        if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
            EMULATOR_PID=""
            fatal "the emulator exited before it was ready"
        fi
        if ((++tries > 600)); then
            fatal "the emulator was not ready after 60 s"
        fi
        sleep 0.1
    done
    ENDPOINT=$(<"$STATE/endpoint")
    CA_FILE=$STATE/ca.pem
    API_KEY_FILE=$STATE/api-key
    # curl reads the header from a file so the key never shows in `ps`.
    (
        umask 077
        printf 'Authorization: Basic %s\n' "$(<"$API_KEY_FILE")" \
            >"$WORK/auth-header"
    )
}

# stop_process VAR: ends the process whose pid the variable VAR holds, if
# any (SIGTERM, then waits for it), and empties VAR.
stop_process() {
    if [[ -n ${!1} ]]; then
        kill -TERM "${!1}" 2>/dev/null
        wait "${!1}" 2>/dev/null
        printf -v "$1" '%s' ""
    fi
}

# BACKGROUND_PIDS: further servers a test starts (emulator nodes, s_server
# instances); background_stop ends them, and cli_cleanup does at exit.
BACKGROUND_PIDS=()
background_stop() {
    local pid
    # shellcheck disable=SC2034 # stop_process reads pid by its name
    for pid in "${BACKGROUND_PIDS[@]}"; do
        stop_process pid
    done
    BACKGROUND_PIDS=()
}

emulator_stop() { stop_process EMULATOR_PID; }

# A loopback port nobody listens on (bound, then released): for a server
# about to bind it. Another test's server may be given it meanwhile, so a
# test that needs connections refused uses refused_port.
closed_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# refused_port: sets REFUSED_PORT to a loopback port that refuses
# connections until the test ends. A helper keeps a socket bound to it
# without listening, so the kernel cannot hand the port to a server of a
# test running in parallel; it exits with the test's shell.
REFUSED_PORT=""
REFUSER_PID=""
refused_port() {
    local file=$WORK/refused-port tries=0
    rm -f "$file"
    python3 -c 'import os, socket, sys, time
parent = os.getppid()
s = socket.socket()
s.bind(("127.0.0.1", 0))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while os.getppid() == parent:
    time.sleep(0.5)' "$file" </dev/null >/dev/null 2>&1 &
    REFUSER_PID=$!
    while [[ ! -s $file ]]; do
        kill -0 "$REFUSER_PID" 2>/dev/null ||
            fatal "could not hold a refused port"
        ((++tries > 600)) && fatal "could not hold a refused port in 60 s"
        sleep 0.1
    done
    REFUSED_PORT=$(<"$file")
}

# ---- the emulator's REST API (test set-up, not what is being tested) ----

# rest METHOD PATH [JSON]: prints the response body; fails on HTTP >= 400.
rest() {
    local args=(-sS --fail-with-body --cacert "$CA_FILE"
        -H @"$WORK/auth-header" -X "$1")
    if [[ $# -ge 3 ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$3")
    fi
    curl "${args[@]}" "$ENDPOINT$2"
}

# Test controls: no auth, not counted by the emulator.
control() {
    local args=(-sS --fail-with-body --cacert "$CA_FILE" -X "$1")
    if [[ $# -ge 3 ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$3")
    fi
    curl "${args[@]}" "$ENDPOINT$2"
}

# create_rsa NAME BITS: generates an RSA key in SmartKey, prints its kid.
create_rsa() {
    rest POST /crypto/v1/keys "$(jq -nc --arg name "$1" --argjson bits "$2" \
        '{name: $name, obj_type: "RSA", key_size: $bits,
          pub_exponent: 65537,
          key_ops: ["SIGN", "VERIFY", "ENCRYPT", "DECRYPT",
                    "APPMANAGEABLE"]}')" |
        jq -re .kid
}

# create_ec NAME CURVE (NistP256, NistP384, NistP521): prints the kid.
create_ec() {
    rest POST /crypto/v1/keys "$(jq -nc --arg name "$1" --arg curve "$2" \
        '{name: $name, obj_type: "EC", elliptic_curve: $curve,
          key_ops: ["SIGN", "VERIFY", "APPMANAGEABLE"]}')" |
        jq -re .kid
}

# import_public NAME OBJ_TYPE SPKI_DER_FILE [CURVE]: imports a public-only
# key, prints its kid.
import_public() {
    local body
    body=$(jq -nc --arg name "$1" --arg type "$2" \
        --arg value "$(base64 -w0 "$3")" --arg curve "${4:-}" \
        '{name: $name, obj_type: $type, value: $value,
          key_ops: ["VERIFY", "ENCRYPT", "APPMANAGEABLE"]}
         + (if $curve == "" then {} else {elliptic_curve: $curve} end)')
    rest PUT /crypto/v1/keys "$body" | jq -re .kid
}

# server_public_key NAME OUT_DER: the SubjectPublicKeyInfo SmartKey holds.
server_public_key() {
    rest POST '/crypto/v1/keys/info?show_pub_key=true' \
        "$(jq -nc --arg name "$1" '{name: $name}')" |
        jq -re .pub_key | base64 -d >"$2"
}

counters_reset() {
    control POST /_emulator/counters/reset >/dev/null
}

# counter EXPR: a jq expression on /_emulator/counters, e.g. requests_total
# or '.requests["POST /crypto/v1/keys/info"]'; absent counts print 0.
counter() {
    local expr=$1
    [[ $expr == .* ]] || expr=.$expr
    control GET /_emulator/counters | jq -r "($expr) // 0"
}

# ---- running openssl ----

# ossl COMMAND ARGS...: the stock openssl with the provider loaded as the
# documentation tells users: default FIRST, then smartkey
# (docs/openssl-dispatch.md §3: with
# smartkey first, libssl drops the NIST EC groups).
ossl() {
    local command=$1
    shift
    timeout "$CLI_TIMEOUT" openssl "$command" -provider-path "$MODULE_DIR" \
        -provider default -provider smartkey "$@"
}

# ossl_plain COMMAND ARGS...: openssl without -provider flags (activation
# through OPENSSL_CONF, or no provider at all).
ossl_plain() {
    timeout "$CLI_TIMEOUT" openssl "$@"
}

# Configuration through the environment only (the base case of most tests).
use_env_config() {
    export SMARTKEY_API_ENDPOINT=$ENDPOINT
    SMARTKEY_API_KEY=$(<"$API_KEY_FILE")
    export SMARTKEY_API_KEY
    export SMARTKEY_CA_FILE=$CA_FILE
}

clear_env_config() {
    unset SMARTKEY_API_ENDPOINT SMARTKEY_API_KEY SMARTKEY_CA_FILE \
        FORTANIX_API_ENDPOINT FORTANIX_API_KEY SMARTKEY_DEBUG
}

# make_config OUT [PARAM=VALUE ...]: a concrete openssl.cnf generated from
# the snippet users copy (openssl.cnf.d/smartkey.cnf): the module path, the
# emulator's endpoint, api_key=file:..., ca_file; extra parameters are added
# to (or replace those in) the smartkey section.
make_config() {
    local out=$1
    shift
    local overrides=("module=$MODULE" "api_endpoint=$ENDPOINT"
        "api_key=file:$API_KEY_FILE" "ca_file=$CA_FILE" "$@")
    local spec
    spec=$(printf '%s\n' "${overrides[@]}")
    awk -v spec="$spec" '
        BEGIN {
            n = split(spec, lines, "\n")
            for (i = 1; i <= n; i++) {
                if (lines[i] == "") continue
                eq = index(lines[i], "=")
                key = substr(lines[i], 1, eq - 1)
                value[key] = substr(lines[i], eq + 1)
                order[++count] = key
            }
        }
        /^\[/ { in_section = ($0 ~ /^\[ *smartkey_sect *\]/) }
        in_section {
            # a parameter line, active or commented out as an example
            if (match($0, /^#? *[a-z_]+ *=/)) {
                key = $0
                sub(/^#? */, "", key)
                sub(/ *=.*/, "", key)
                if (key in value) {
                    if (!(key in done)) print key " = " value[key]
                    done[key] = 1
                    next
                }
            }
        }
        { print }
        /^\[ *smartkey_sect *\]/ { header_seen = 1 }
        END {
            if (!header_seen) exit 1
        }
    ' "$CONFIG_SNIPPET" >"$out.tmp" || return 1
    # parameters the snippet does not mention at all go right after the
    # section header
    local key extra=()
    for spec in "${overrides[@]}"; do
        key=${spec%%=*}
        grep -Eq "^$key = " "$out.tmp" || extra+=("$key = ${spec#*=}")
    done
    if ((${#extra[@]})); then
        awk -v extra="$(printf '%s\n' "${extra[@]}")" '
            { print }
            /^\[ *smartkey_sect *\]/ { print extra }
        ' "$out.tmp" >"$out"
    else
        mv "$out.tmp" "$out"
    fi
    rm -f "$out.tmp"
}

# run CMD ARGS...: runs a command (usually ossl ...), keeping its stdout in
# $OUT, its stderr in $ERR and its exit status in $RC.
OUT=""
ERR=""
RC=0
LAST_COMMAND=""
run() {
    OUT=$WORK/out
    ERR=$WORK/err
    LAST_COMMAND="$*"
    "$@" >"$OUT" 2>"$ERR"
    RC=$?
}

# pem_to_der PEM DER: the DER inside a PEM file (a single object).
pem_to_der() {
    sed '/^-----/d' "$1" | base64 -d >"$2"
}

# ---- assertions ----

# check DESCRIPTION CMD ARGS... (common/checks.sh): one assertion; on
# failure this shows the last openssl command and its stderr.
check_failure_details() {
    echo "       assertion: $*"
    if [[ -n $LAST_COMMAND ]]; then
        echo "       last command: $LAST_COMMAND (exit $RC)"
        if [[ -s $ERR ]]; then
            sed -n '1,15s/^/       stderr: /p' "$ERR"
        fi
    fi
}

succeeded() { [[ $RC -eq 0 ]]; }
# A plain error exit: not a timeout (124) nor a crash (128 + signal).
failed_cleanly() { [[ $RC -ge 1 && $RC -lt 124 ]]; }
stderr_has() { grep -Eiq -- "$1" "$ERR"; }
stderr_has_text() { grep -Fq -- "$1" "$ERR"; }
# stderr_line_has TEXT REGEX: one line both quotes TEXT and matches REGEX
# (openssl's own "Could not read ... from URI" line quotes the URI, so
# quoting alone proves nothing about the provider's message).
stderr_line_has() {
    grep -F -- "$1" "$ERR" | grep -v '^Could' | grep -Eiq -- "$2"
}
stderr_lacks_text() { ! grep -Fq -- "$1" "$ERR" "$OUT"; }
# Every OpenSSL error line on stderr was raised by the provider: none left
# behind by its HTTPS client (libcurl shares OpenSSL's error queue) or by
# OpenSSL's file: loader trying the URI as a file name first.
only_provider_errors() {
    grep -q ':error:' "$ERR" &&
        ! grep ':error:' "$ERR" | grep -Evq ':error:[0-9A-F]+:smartkey:'
}
stdout_has() { grep -Eq -- "$1" "$OUT"; }
stdout_has_text() { grep -Fq -- "$1" "$OUT"; }
stdout_lacks() { ! grep -Eq -- "$1" "$OUT"; }
same_bytes() { cmp -s "$1" "$2"; }
equals() { [[ $1 == "$2" ]]; }
at_most() { [[ $1 =~ ^[0-9]+$ && $1 -le $2 ]]; }
between() { [[ $1 =~ ^[0-9]+$ && $1 -ge $2 && $1 -le $3 ]]; }

# pubout_matches URI SERVER_DER: `openssl pkey -in URI -pubout` prints a
# PEM public key whose DER is exactly the SPKI SmartKey holds. $RUNNER says
# how openssl is started (ossl: -provider flags; ossl_plain: none).
RUNNER=ossl
pubout_matches() {
    run "$RUNNER" pkey -in "$1" -pubout
    [[ $RC -eq 0 ]] || return 1
    grep -q '^-----BEGIN PUBLIC KEY-----$' "$OUT" || return 1
    pem_to_der "$OUT" "$WORK/pubout.der" || return 1
    cmp -s "$WORK/pubout.der" "$2"
}

# fatal MESSAGE: the set-up failed; nothing more can be checked.
fatal() {
    echo "FATAL - $*"
    failed=$((failed + 1))
    finish
}

finish() {
    tally
    exit $?
}
