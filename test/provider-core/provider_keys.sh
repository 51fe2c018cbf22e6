#!/usr/bin/env bash
# The provider core (store, key management, errors, key cache) against a
# private smartkey-emulator: creates the keys, runs test-provider-keys and
# checks the request counts a user pays for.
# Usage: provider_keys.sh EMULATOR TEST_PROGRAM MODULE_DIR
set -uo pipefail
emulator=${1:?usage: $0 EMULATOR TEST_PROGRAM MODULE_DIR}
program=${2:?usage: $0 EMULATOR TEST_PROGRAM MODULE_DIR}
module_dir=${3:?usage: $0 EMULATOR TEST_PROGRAM MODULE_DIR}

passed=0
failed=0
emulator_pid=""
work=$(mktemp -d -t smartkey-provider-core.XXXXXX)

cleanup() {
    local status=$?
    if [[ -n $emulator_pid ]]; then
        kill -TERM "$emulator_pid" 2>/dev/null
        wait "$emulator_pid" 2>/dev/null
    fi
    if [[ $status -ne 0 && -s $work/emulator.log ]]; then
        echo "--- emulator log (last 20 lines) ---"
        tail -n 20 "$work/emulator.log"
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() {
    local what=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   - $what"
    else
        failed=$((failed + 1))
        echo "FAIL - $what ($*)"
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit $?
}

fatal() {
    echo "FATAL - $*"
    failed=$((failed + 1))
    finish
}

# No user settings leak into what the test proves.
for var in $(compgen -e); do
    case $var in
    SMARTKEY_* | FORTANIX_* | OPENSSL_*) unset "$var" ;;
    esac
done
: >"$work/empty.cnf"
export OPENSSL_CONF=$work/empty.cnf

state=$work/state
mkdir -p "$state"
"$emulator" --state-dir "$state" --listen 127.0.0.1:0 --test-controls \
    --log "$work/emulator.log" &
emulator_pid=$!
for ((tries = 0; tries < 600; tries++)); do
    [[ -s $state/endpoint ]] && break
    kill -0 "$emulator_pid" 2>/dev/null || {
        emulator_pid=""
        fatal "the emulator exited during start-up"
    }
    sleep 0.1
done
[[ -s $state/endpoint ]] || fatal "the emulator was not ready"
endpoint=$(<"$state/endpoint")
(
    umask 077
    printf 'Authorization: Basic %s\n' "$(<"$state/api-key")" \
        >"$work/auth-header"
)

rest() {
    local args=(-sS --fail-with-body --cacert "$state/ca.pem"
        -H @"$work/auth-header" -X "$1")
    [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json'
        --data-binary "$3")
    curl "${args[@]}" "$endpoint$2"
}

control() {
    local args=(-sS --fail-with-body --cacert "$state/ca.pem" -X "$1")
    curl "${args[@]}" "$endpoint$2"
}

counter() {
    control GET /_emulator/counters | jq -r "($1) // 0"
}

# create LABEL JSON: keeps the kid and the server's pub_key for the tests
keys=$work/keys
mkdir -p "$keys"
create() {
    local answer
    answer=$(rest POST /crypto/v1/keys "$2") || return 1
    jq -re .kid <<<"$answer" >"$keys/$1.kid" || return 1
    if [[ $(jq -r '.pub_key // ""' <<<"$answer") != "" ]]; then
        jq -r .pub_key <<<"$answer" | base64 -d >"$keys/$1.der"
    fi
}
create rsa '{"name":"core rsa","obj_type":"RSA","key_size":2048,
    "key_ops":["SIGN","VERIFY","DECRYPT","APPMANAGEABLE"]}' &&
    create ec256 '{"name":"core-ec256","obj_type":"EC",
        "elliptic_curve":"NistP256","key_ops":["SIGN","VERIFY"]}' &&
    create ec384 '{"name":"core;ec%384","obj_type":"EC",
        "elliptic_curve":"NistP384","key_ops":["SIGN","VERIFY"]}' &&
    create aes '{"name":"core-aes","obj_type":"AES","key_size":256,
        "key_ops":["ENCRYPT","DECRYPT"]}' ||
    fatal "could not create the test keys"

export SMARTKEY_TEST_MODULE_DIR=$module_dir
export SMARTKEY_TEST_KEYS=$keys
export SMARTKEY_API_ENDPOINT=$endpoint
export SMARTKEY_API_KEY=file:$state/api-key
export SMARTKEY_CA_FILE=$state/ca.pem

"$program"
check "the provider key suite passes" test $? -eq 0

# One key-info request per key and process, however often it is loaded:
# store open, store load and keymgmt load share it, and later loads come
# from the cache.
control POST /_emulator/counters/reset >/dev/null
"$program" load 'smartkey:name=core%20rsa' 5
check "5 loads of one key: succeed" test $? -eq 0
check "5 loads of one key: 1 key-info request" \
    test "$(counter '.requests["POST /crypto/v1/keys/info"]')" -eq 1
check "5 loads of one key: 1 authentication at most" \
    test "$(counter '.requests["POST /sys/v1/session/auth"]')" -le 1

# The API key's file must be private; nothing is sent when it is not.
cp "$state/api-key" "$work/lax-api-key"
chmod 640 "$work/lax-api-key"
control POST /_emulator/counters/reset >/dev/null
SMARTKEY_API_KEY=file:$work/lax-api-key "$program" load \
    'smartkey:name=core-ec256' 1 2>"$work/lax.err"
check "group-readable API-key file: load fails" test $? -ne 0
check "group-readable API-key file: the error names the file and mode" \
    grep -q "$work/lax-api-key has mode 0640" "$work/lax.err"
check "group-readable API-key file: nothing is sent" \
    test "$(counter .requests_total)" -eq 0

finish
