# shellcheck shell=bash
# Helpers of the event-loop server tests and of test/bench/run-haproxy-bench,
# on top of the key-reference tests' lib.sh (sourced, not changed), itself
# on top of the CLI tests' lib.sh: emulator start/stop, counters,
# make_config, genpkey_in_smartkey, make_test_ca, issue_cert,
# wait_for_port, run, check, finish, and BACKGROUND_PIDS (servers
# stopped on any exit, before the emulator).
#
#   source "$(dirname "$0")/lib.sh"
#   async_init "$@"       # MODULE_DIR EMULATOR TLS_LOAD
#   emulator_start --latency-ms 20
#   ...
#   haproxy_start CRT_PEM on|off
#   tls_load 16 48
#   haproxy_stop

ASYNC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../keyref/lib.sh
source "$ASYNC_DIR/../keyref/lib.sh"

async_init() {
    need_args 3 "MODULE_DIR EMULATOR TLS_LOAD" "$@"
    # keyref_init's program is the load generator here
    keyref_init "$@"
    TLS_LOAD=$LEGACY
    command -v haproxy >/dev/null || PATH=$PATH:/usr/sbin
    need_tools haproxy
    # An instrumented smartkey.so (scripts/check-sanitizers) can only be
    # loaded by the stock haproxy with the sanitizer's runtime preloaded.
    # Leak checking is off in haproxy: what it leaves allocated at exit is
    # not the provider's (the provider's leaks are caught by the openssl
    # runs).
    HAPROXY=(haproxy)
    local runtime
    runtime=$(ldd "$MODULE" 2>/dev/null |
        awk '/lib[at]san\.so/ { print $3; exit }')
    if [[ -n $runtime ]]; then
        HAPROXY=(env "LD_PRELOAD=$runtime${LD_PRELOAD:+:$LD_PRELOAD}"
            "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
            haproxy)
    fi
}

# server_key smartkey|local ec|rsa NAME: an EC P-256 or RSA-2048 key,
# generated in SmartKey (its key-reference file in $WORK/NAME.key) or
# locally by the default provider (the reference: HAProxy signing by
# itself), a certificate for it from the test CA (make_test_ca first) and
# the file HAProxy's `crt` takes, the certificate then the key:
# $WORK/NAME.pem.
server_key() {
    local where=$1 type=$2 name=$3 args
    case $type in
    ec) args=(-algorithm EC -pkeyopt group:P-256) ;;
    rsa) args=(-algorithm RSA -pkeyopt bits:2048) ;;
    *) return 1 ;;
    esac
    case $where in
    smartkey)
        genpkey_in_smartkey "${args[@]}" -pkeyopt "smartkey-name:$name" \
            -out "$WORK/$name.key" 2>"$WORK/$name.err" &&
            ossl pkey -in "$WORK/$name.key" -pubout -out "$WORK/$name.pub" \
                2>>"$WORK/$name.err"
        ;;
    local)
        OPENSSL_CONF=$WORK/empty.cnf timeout "$CLI_TIMEOUT" openssl genpkey \
            "${args[@]}" -out "$WORK/$name.key" 2>"$WORK/$name.err" &&
            OPENSSL_CONF=$WORK/empty.cnf openssl pkey -in "$WORK/$name.key" \
                -pubout -out "$WORK/$name.pub" 2>>"$WORK/$name.err"
        ;;
    *) return 1 ;;
    esac &&
        issue_cert "$WORK/$name.pub" "$WORK/$name.crt" localhost &&
        cat "$WORK/$name.crt" "$WORK/$name.key" >"$WORK/$name.pem"
}

# haproxy_start CRT_PEM on|off: HAProxy in the foreground (-db: no daemon,
# no master process), one thread, with `ssl-mode-async` when on, one HTTPS
# frontend on a free loopback port that answers every request itself
# (`http-request return`, no backend). Its configuration, pid and stderr
# live in $WORK/haproxy; the provider comes from $OPENSSL_CONF as for any
# program (config_only_activation). Sets HAPROXY_PID and HAPROXY_PORT.
# A port taken between the probe and HAProxy's bind is retried.
HAPROXY_PID=""
HAPROXY_PORT=""
haproxy_start() {
    local crt=$1 mode=$2 dir=$WORK/haproxy _ async_line=""
    case $mode in
    on) async_line="    ssl-mode-async" ;;
    off) ;;
    *) return 1 ;;
    esac
    mkdir -p "$dir"
    for _ in 1 2 3; do
        HAPROXY_PORT=$(closed_port)
        cat >"$dir/haproxy.cfg" <<CONF
global
    nbthread 1
$async_line
    maxconn 2000
    pidfile $dir/haproxy.pid
defaults
    mode http
    timeout connect 10s
    timeout client 60s
    timeout server 60s
frontend tls
    bind 127.0.0.1:$HAPROXY_PORT ssl crt $crt
    http-request return status 200 content-type text/plain string "hello from HAProxy\n"
CONF
        "${HAPROXY[@]}" -db -f "$dir/haproxy.cfg" \
            >"$dir/stdout" 2>"$dir/stderr" </dev/null &
        HAPROXY_PID=$!
        BACKGROUND_PIDS+=("$HAPROXY_PID")
        if wait_for_port "$HAPROXY_PORT" "$HAPROXY_PID"; then
            return 0
        fi
        wait "$HAPROXY_PID" 2>/dev/null
        HAPROXY_PID=""
        grep -qi 'address already in use\|cannot bind' "$dir/stderr" ||
            break
    done
    echo "--- haproxy stderr ---"
    tail -n 20 "$dir/stderr"
    return 1
}

# haproxy_stop: a hard stop (SIGTERM) of the HAProxy started last; its
# exit status lands in HAPROXY_STATUS (143 for the signal; a crash shows
# as 134 or 139).
HAPROXY_STATUS=""
haproxy_stop() {
    [[ -n $HAPROXY_PID ]] || return 0
    kill -TERM "$HAPROXY_PID" 2>/dev/null
    wait "$HAPROXY_PID" 2>/dev/null
    # shellcheck disable=SC2034 # read by the scripts that source this file
    HAPROXY_STATUS=$?
    local pids=() pid
    for pid in "${BACKGROUND_PIDS[@]}"; do
        [[ $pid == "$HAPROXY_PID" ]] || pids+=("$pid")
    done
    BACKGROUND_PIDS=("${pids[@]}")
    HAPROXY_PID=""
}

# haproxy_quiet: HAProxy wrote no alert (nor anything else) on stderr.
haproxy_quiet() {
    ! grep -Eq '\[(ALERT|EMERG)\]|FATAL|[Ss]egmentation' \
        "$WORK/haproxy/stderr"
}

# tls_load CONCURRENCY COUNT [tls-load options...]: COUNT full handshakes
# (each followed by GET /, a 200 required) by CONCURRENCY concurrent
# clients against HAProxy, verified against the test CA; the clients load
# no provider. The summary line lands in $OUT (load_field reads it).
tls_load() {
    local concurrency=$1 count=$2
    shift 2
    run env OPENSSL_CONF="$WORK/empty.cnf" timeout "$CLI_TIMEOUT" \
        "$TLS_LOAD" --connect "127.0.0.1:$HAPROXY_PORT" \
        --concurrency "$concurrency" --count "$count" \
        --cafile "$WORK/ca.pem" --servername localhost --request "$@"
}

# load_field NAME: a field of tls-load's summary (handshakes, failures,
# seconds, rate, mean_ms, max_ms).
load_field() {
    sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" "$OUT" | head -n 1
}

# cpu_ticks PID: user + system CPU time of a process (all its threads) in
# clock ticks, from /proc/PID/stat (fields 14 and 15, counted after the
# command name, which may hold spaces).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat") || return 1
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# sign_requests: POST /crypto/v1/sign requests since the last reset.
sign_requests() {
    counter '.requests["POST /crypto/v1/sign"]'
}

# ---- the asynchronous engine (issue 13) ------------------------------------
#
# signs_in_flight_at_once MIN MAX: the emulator saw between MIN and MAX API
# requests being answered at the same time since the last counters_reset.
# It needs an emulator counter `max_in_flight` (the highest number of API
# requests in progress at once since the last reset) that the emulator
# does not have yet; an absent counter fails the check.
#
# haproxy.sh calls it unless ASYNC_EXPECT_IN_FLIGHT=0: with ssl-mode-async
# on, more than one sign must be in flight at once; with it off, exactly
# one (a synchronous provider, one thread).
signs_in_flight_at_once() {
    local max
    max=$(control GET /_emulator/counters | jq -r '.max_in_flight // "absent"')
    if [[ $max == absent ]]; then
        echo "       the emulator has no max_in_flight counter" >&2
        return 1
    fi
    between "$max" "$1" "$2"
}

expect_in_flight() {
    [[ ${ASYNC_EXPECT_IN_FLIGHT:-1} == 1 ]]
}
