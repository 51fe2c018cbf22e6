#!/usr/bin/env bash
# The emulator's command-line contract: --help, bad options, --http,
# --api-key, --cert/--key, --quiet, --latency-ms, the request log, SIGINT,
# and a restart over the stale files of a killed instance.
. "$(dirname "$0")/lib.sh" "$1"

# new_state: a fresh state directory for the next start_emulator.
n=0
new_state() { n=$((n + 1)); STATE="$WORK/state$n"; }

"$EMULATOR" --help >"$WORK/help" 2>&1
check_eq "--help exits 0" 0 $?
check "--help documents --state-dir" grep -q -- --state-dir "$WORK/help"
"$EMULATOR" --state-dir "$WORK/x" --no-such-option >/dev/null 2>&1
check "an unknown option exits non-zero" test $? -ne 0
"$EMULATOR" --listen 127.0.0.1:0 >/dev/null 2>&1
check "a missing --state-dir exits non-zero" test $? -ne 0

# -- --http -----------------------------------------------------------------------
new_state
start_emulator --http
check "--http: the endpoint is an http:// URL" \
    eval '[[ "$ENDPOINT" =~ ^http://127\.0\.0\.1:[0-9]+$ ]]'
check "--http: no ca.pem is written" test ! -e "$STATE/ca.pem"
check "--http: pid file names the emulator" \
    eval '[[ "$(head -n 1 "$STATE/pid")" == "$EMU_PID" ]]'
auth
check "--http: authentication works over plain HTTP" test -n "$TOKEN"
stop_emulator

# -- --api-key --------------------------------------------------------------------
new_state
given=$(b64_str "11111111-2222-4333-8444-555555555555:a-test-secret")
start_emulator --api-key "$given"
check_eq "--api-key: DIR/api-key holds the given key" "$given" "$APIKEY"
check "--api-key: DIR/api-key is mode 0600" \
    eval '[[ $(stat -c %a "$STATE/api-key") == 600 ]]'
request "Basic $given" POST /sys/v1/session/auth
check_status "--api-key: the given key authenticates" 200
check_eq "--api-key: entity_id is the app uuid of the key" \
    11111111-2222-4333-8444-555555555555 "$(field entity_id)"
request "Basic $(b64_str "11111111-2222-4333-8444-555555555555:other")" \
    POST /sys/v1/session/auth
check_status "--api-key: another secret is refused with 401" 401

# -- request log --------------------------------------------------------------------
auth
for i in 1 2 3; do api POST /crypto/v1/keys/info '{"name":"nothing"}'; done
api GET /crypto/v1/keys
stop_emulator
check_eq "the log has one line per keys/info request" 3 \
    "$(grep -c '/crypto/v1/keys/info' "$WORK/emulator.log")"
check "a log line has method, path, status and a duration" \
    grep -qE 'POST.*/crypto/v1/keys/info.*404.*[0-9]' "$WORK/emulator.log"
check "the log never contains the API key" \
    eval '! grep -qF "$given" "$WORK/emulator.log" "$WORK/emulator.stderr"'
check "the log never contains the secret" \
    eval '! grep -qF "a-test-secret" "$WORK/emulator.log" "$WORK/emulator.stderr"'

# -- --quiet, --latency-ms --------------------------------------------------------------
new_state
: >"$WORK/emulator.log"
start_emulator --quiet --latency-ms 100
auth
api GET /crypto/v1/keys
check_status "--latency-ms: requests still answer" 200
stop_emulator
check "--quiet: no request is logged" \
    eval '! grep -q "/crypto/v1/keys" "$WORK/emulator.log" "$WORK/emulator.stderr"'

# -- --cert / --key -----------------------------------------------------------------------
new_state
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/own-key.pem" -out "$WORK/own-cert.pem" -days 2 \
    -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
    2>/dev/null
start_emulator --cert "$WORK/own-cert.pem" --key "$WORK/own-key.pem"
check "--cert: no ca.pem is written" test ! -e "$STATE/ca.pem"
CURL_TLS=(--cacert "$WORK/own-cert.pem")
auth
check "--cert: the emulator serves the given certificate" test -n "$TOKEN"
stop_emulator

# -- generated CA: SAN localhost, 127.0.0.1 ----------------------------------------------
new_state
start_emulator
port=${ENDPOINT##*:}
check "the generated certificate is valid for localhost" \
    eval 'curl -s -o /dev/null --cacert "$CA" "https://localhost:$port/sys/v1/version"'
check "the generated CA is a CA certificate" \
    eval 'openssl x509 -in "$CA" -noout -text | grep -q "CA:TRUE"'

# -- SIGKILL leaves stale files; a restart must not be fooled by them ------------------
kill -KILL "$EMU_PID"
wait "$EMU_PID" 2>/dev/null
EMU_PID=""
check "after SIGKILL the stale endpoint file is still there" \
    test -s "$STATE/endpoint"
# start_emulator waits for the pid file to name the new process before it
# reads `endpoint`: the new instance unlinks the stale file first, and may
# well be given the same ephemeral port again.
start_emulator --quiet
check "a restart over stale files becomes ready" test -n "$ENDPOINT"
auth
check "the restarted emulator answers" test -n "$TOKEN"
kill -INT "$EMU_PID"
rc=0
wait "$EMU_PID" || rc=$?
EMU_PID=""
check_eq "SIGINT: clean exit status 0" 0 "$rc"
check "SIGINT: the endpoint file is removed" test ! -e "$STATE/endpoint"

finish
