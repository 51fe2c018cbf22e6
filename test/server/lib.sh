# shellcheck shell=bash
# Shared helpers for the smartkey-emulator integration tests.
#
# Usage, at the top of a test script:
#     . "$(dirname "$0")/lib.sh" "$1"      # $1 = path of smartkey-emulator
#     start_emulator [extra emulator options]
#     auth
#     api POST /crypto/v1/keys '{"obj_type":"AES",...}'
#     check_status "generate AES key" 201
#     ...
#     finish
#
# Every script starts its own emulator on an ephemeral loopback port with its
# own state directory, so ctest can run the scripts in parallel. Expectations
# come from SmartKey's wire facts (docs/smartkey-api.md), not from what the
# emulator happens to do.
set -u

EMULATOR=${1:?usage: $0 PATH-TO-smartkey-emulator}
[[ -x "$EMULATOR" ]] || { echo "not executable: $EMULATOR" >&2; exit 2; }

# shellcheck source=../common/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common/checks.sh"
FINISHED=0
EMU_PID=""
TOKEN=""
STATUS=""
BODY=""
WORK=$(mktemp -d -t smartkey-test.XXXXXX)   # mode 0700
STATE="$WORK/state"
CURL_TLS=()
TEST_CONTROLS=(--test-controls)   # emptied to check the controls are off
ENDPOINT=""
APIKEY=""

on_exit() {
    local rc=$?
    if [[ $FINISHED -eq 0 ]]; then
        stop_emulator
        # A script that dies half-way must not look like a success.
        record_failure "script ended early (exit status $rc)"
        show_emulator_stderr
        tally
    fi
    rm -rf "$WORK"
    [[ $failed -eq 0 ]] || exit 1
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---- emulator life cycle -------------------------------------------------

# start_emulator [options...]: starts the emulator on 127.0.0.1:0 with the
# test controls, waits (up to 60 s: 2 cores run ctest -j) until it is ready
# and sets ENDPOINT, CA, APIKEY and EMU_PID. STATE may be set before the call
# to reuse a state directory (persistence tests, a restart over the stale
# files of a killed instance); TEST_CONTROLS=() starts it without the test
# controls.
start_emulator() {
    mkdir -p "$STATE"
    "$EMULATOR" --state-dir "$STATE" --listen 127.0.0.1:0 \
        ${TEST_CONTROLS[@]+"${TEST_CONTROLS[@]}"} \
        --log "$WORK/emulator.log" "$@" 2>>"$WORK/emulator.stderr" &
    EMU_PID=$!
    if ! wait_until_ready "$EMU_PID"; then
        if ! kill -0 "$EMU_PID" 2>/dev/null; then
            echo "emulator exited during start-up:" >&2
            tail -n 20 "$WORK/emulator.stderr" >&2
            EMU_PID=""
        else
            echo "emulator not ready after 60 s" >&2
        fi
        exit 1
    fi
    APIKEY=$(head -n 1 "$STATE/api-key")
    CA="$STATE/ca.pem"
    CURL_TLS=(--cacert "$CA")
    [[ "$ENDPOINT" == https://* ]] || CURL_TLS=()
}

# wait_until_ready PID: until the emulator PID (started on $STATE) is ready,
# then sets ENDPOINT from its endpoint file. Fails if PID exits or after
# 60 s. A killed instance leaves a stale `endpoint` behind, which the new one
# unlinks at start-up, then writes `pid` and last `endpoint`: an endpoint
# file seen before `pid` names PID may be the dead instance's, or vanish
# between two reads. Once `pid` names PID, the endpoint file is the new one
# and is read once.
wait_until_ready() {
    local pid=$1 i seen_pid
    ENDPOINT=""
    for ((i = 0; i < 600; i++)); do
        seen_pid=$(head -n 1 "$STATE/pid" 2>/dev/null || true)
        if [[ "$seen_pid" == "$pid" ]]; then
            ENDPOINT=$(head -n 1 "$STATE/endpoint" 2>/dev/null || true)
            [[ -n "$ENDPOINT" ]] && return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_emulator: SIGTERM and wait. An emulator that died on its own (a crash,
# a sanitizer report) or does not exit cleanly is a failure.
stop_emulator() {
    [[ -n "$EMU_PID" ]] || return 0
    local pid=$EMU_PID rc=0 i
    EMU_PID=""
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || rc=$?
        record_failure "emulator died before it was stopped (exit status $rc)"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        record_failure "emulator did not exit within 10 s of SIGTERM"
    fi
    wait "$pid" 2>/dev/null || rc=$?
    [[ $rc -eq 0 ]] ||
        record_failure "emulator exit status after SIGTERM is $rc, not 0"
}

# ---- HTTP helpers ----------------------------------------------------------

# request AUTHORIZATION METHOD PATH [BODY [extra curl options...]]
# Sets STATUS (HTTP code, or 000 on transport failure), BODY, HEADERS (file)
# and CURL_RC. The body is sent byte for byte with Content-Type
# application/json unless the caller overrides it.
request() {
    local authz=$1 method=$2 path=$3
    shift 3
    local args=(-s -X "$method" -o "$WORK/body" -D "$WORK/headers"
        -w '%{http_code}' "${CURL_TLS[@]}")
    if [[ -n "$authz" ]]; then
        # From a file, so tokens and API keys stay out of `ps` output.
        printf 'Authorization: %s\n' "$authz" >"$WORK/authorization"
        args+=(-H @"$WORK/authorization")
    fi
    if [[ $# -gt 0 ]]; then
        printf '%s' "$1" >"$WORK/request"
        shift
        args+=(-H 'Content-Type: application/json'
            --data-binary @"$WORK/request")
    fi
    : >"$WORK/body"
    CURL_RC=0
    STATUS=$(curl "${args[@]}" "$@" "$ENDPOINT$path") || CURL_RC=$?
    BODY=$(cat "$WORK/body")
    HEADERS="$WORK/headers"
}

# api METHOD PATH [JSON [curl options]]: call with the session's bearer token.
api() { request "Bearer $TOKEN" "$@"; }
# apikey_api METHOD PATH [JSON]: session-less call with the app's API key.
apikey_api() { request "Basic $APIKEY" "$@"; }
# noauth_api METHOD PATH [JSON]: call without an Authorization header.
noauth_api() { request "" "$@"; }

# bearer_header: writes the session's Authorization header to $WORK/bearer for
# direct curl calls (-H @"$WORK/bearer").
bearer_header() {
    printf 'Authorization: Bearer %s\n' "$TOKEN" >"$WORK/bearer"
}

# auth: opens a session with the API key; sets TOKEN.
auth() {
    request "Basic $APIKEY" POST /sys/v1/session/auth
    TOKEN=$(jq -r '.access_token // empty' <<<"$BODY" 2>/dev/null)
    if [[ "$STATUS" != 200 || -z "$TOKEN" ]]; then
        echo "auth failed: HTTP $STATUS" >&2
        return 1
    fi
}

# counters: GET /_emulator/counters into COUNTERS.
counters() {
    COUNTERS=$(curl -s "${CURL_TLS[@]}" "$ENDPOINT/_emulator/counters")
}
# counter 'METHOD path': a request count from the last `counters` call.
counter() { jq -r --arg k "$1" '.requests[$k] // 0' <<<"$COUNTERS"; }
# counter_field NAME: a top-level number (connections, exports, ...).
counter_field() { jq -r --arg k "$1" '.[$k] // 0' <<<"$COUNTERS"; }
reset_counters() {
    curl -s -o /dev/null "${CURL_TLS[@]}" -X POST \
        "$ENDPOINT/_emulator/counters/reset"
}
# control METHOD PATH [JSON]: a test-control call; sets STATUS and BODY.
control() { request "" "$@"; }

# ---- JSON and encoding helpers ---------------------------------------------

# field NAME: a field of BODY (jq path without the leading dot, e.g. 'kid').
field() { jq -r ".$1 // empty" <<<"$BODY" 2>/dev/null; }
# json_is FILTER: the jq FILTER is true on BODY.
json_is() { jq -e "$1" <<<"$BODY" >/dev/null 2>&1; }
is_2xx() { [[ "$STATUS" == 2?? ]]; }
# ossl_md SHA256: the openssl digest name (sha256).
ossl_md() { tr '[:upper:]' '[:lower:]' <<<"$1"; }
b64_file() { base64 -w0 <"$1"; }
b64_str() { printf '%s' "$1" | base64 -w0; }
# unb64 B64 FILE: decodes standard base64 into FILE.
unb64() { printf '%s' "$1" | base64 -d >"$2"; }
hex_file() { xxd -p -c 100000 <"$1"; }
# uuid_like VALUE: lower-case hyphenated UUID.
uuid_like() {
    [[ "$1" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
}
# oaep HASH: the RSA-OAEP mode object.
oaep() { printf '{"OAEP":{"mgf":{"mgf1":{"hash":"%s"}}}}' "$1"; }
pss() { printf '{"PSS":{"mgf":{"mgf1":{"hash":"%s"}}}}' "$1"; }

# SOBJECT_ONLY_MODEL_FIELDS: a jq filter, true when an Sobject carries only
# fields of SmartKey's Sobject model (docs/smartkey-api.md §3.1).
SOBJECT_ONLY_MODEL_FIELDS='keys - ["kid","name","obj_type","key_size",
    "elliptic_curve","pub_key","value","transient_key","key_ops","enabled",
    "state","origin","public_only","acct_id","group_id","creator",
    "created_at","activation_date","deactivation_date","compromise_date",
    "destruction_date","deletion_date","scheduled_rotation","description",
    "custom_metadata","rsa","deterministic_signatures","never_exportable",
    "compliant_with_policies","kcv","links","publish_public_key",
    "export_policy","effective_key_policy","aes","des3","fpe"] == []'

# generate_key JSON: POST /crypto/v1/keys; sets KID (empty on failure).
generate_key() {
    api POST /crypto/v1/keys "$1"
    KID=$(field kid)
}
# import_key JSON: PUT /crypto/v1/keys; sets KID.
import_key() {
    api PUT /crypto/v1/keys "$1"
    KID=$(field kid)
}
# save_public PEM: the pub_key of the key in BODY as the PEM file PEM.
save_public() {
    unb64 "$(field pub_key)" "$WORK/pub.der"
    openssl pkey -pubin -inform DER -in "$WORK/pub.der" -out "$1"
}
# sha256_b64 TEXT: the SHA-256 digest of TEXT, base64 (a hash to sign).
sha256_b64() { printf '%s' "$1" | openssl dgst -sha256 -binary | base64 -w0; }
# export_value KID FILE: exports the key's value (decoded) into FILE.
export_value() {
    api POST /crypto/v1/keys/export "{\"kid\":\"$1\"}"
    unb64 "$(field value)" "$2"
}

# ---- assertions --------------------------------------------------------------

# check NAME COMMAND... (common/checks.sh): passes when COMMAND succeeds.

# check_status NAME EXPECTED: the last call answered EXPECTED. On failure the
# body is shown truncated (error bodies are plain text without secrets).
check_status() {
    if [[ "$STATUS" == "$2" ]]; then
        record_pass "$1"
    else
        record_failure "$1: expected HTTP $2, got $STATUS (curl $CURL_RC):" \
            "$(head -c 300 <<<"$BODY")"
    fi
}

# check_statuses CASE...: one request and its expected status a case, each
# "STATUS|NAME|METHOD|PATH|JSON": calls `api METHOD PATH JSON` and then
# `check_status NAME STATUS` (the table form of a run of api + check_status).
check_statuses() {
    local case status name method path json
    for case in "$@"; do
        IFS='|' read -r status name method path json <<<"$case"
        api "$method" "$path" "$json"
        check_status "$name" "$status"
    done
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [[ "$2" == "$3" ]]; then
        record_pass "$1"
    else
        record_failure "$1: expected '$(head -c 200 <<<"$2")'," \
            "got '$(head -c 200 <<<"$3")'"
    fi
}

# check_plain_text NAME: the body of the last call is not JSON (SmartKey's
# error bodies are plain text) and not empty.
check_plain_text() {
    check "$1" eval '[[ -n "$BODY" ]] && ! jq -e . <<<"$BODY" >/dev/null 2>&1'
}


# show_emulator_stderr: the end of the emulator's stderr (crash or sanitizer
# reports), shown when something failed.
show_emulator_stderr() {
    [[ -s "$WORK/emulator.stderr" ]] || return 0
    echo "--- last lines of the emulator's stderr:"
    tail -n 40 "$WORK/emulator.stderr"
}

# finish: stops the emulator, prints the tally and exits (non-zero on any
# failure).
finish() {
    stop_emulator
    FINISHED=1
    [[ $failed -eq 0 ]] || show_emulator_stderr
    tally
    exit $?
}
