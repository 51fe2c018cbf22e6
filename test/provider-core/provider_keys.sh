#!/usr/bin/env bash
# The provider core (store, key management, errors, key cache) against a
# private smartkey-emulator: creates the keys, runs test-provider-keys and
# checks the request counts a user pays for.
# Usage: provider_keys.sh EMULATOR TEST_PROGRAM MODULE_DIR
source "$(dirname "$0")/../cli/lib.sh"
program=${2:?usage: $0 EMULATOR TEST_PROGRAM MODULE_DIR}
cli_init "${3:?usage: $0 EMULATOR TEST_PROGRAM MODULE_DIR}" "$1"
emulator_start

# create LABEL JSON: keeps the kid and the server's pub_key for the tests
keys=$WORK/keys
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

export SMARTKEY_TEST_MODULE_DIR=$MODULE_DIR
export SMARTKEY_TEST_KEYS=$keys
export SMARTKEY_API_ENDPOINT=$ENDPOINT
export SMARTKEY_API_KEY=file:$API_KEY_FILE
export SMARTKEY_CA_FILE=$CA_FILE

"$program"
check "the provider key suite passes" test $? -eq 0

# One key-info request per key and process, however often it is loaded:
# store open, store load and keymgmt load share it, and later loads come
# from the cache.
counters_reset
"$program" load 'smartkey:name=core%20rsa' 5
check "5 loads of one key: succeed" test $? -eq 0
check "5 loads of one key: 1 key-info request" \
    test "$(counter '.requests["POST /crypto/v1/keys/info"]')" -eq 1
check "5 loads of one key: 1 authentication at most" \
    test "$(counter '.requests["POST /sys/v1/session/auth"]')" -le 1

# The API key's file must be private; nothing is sent when it is not.
cp "$API_KEY_FILE" "$WORK/lax-api-key"
chmod 640 "$WORK/lax-api-key"
counters_reset
SMARTKEY_API_KEY=file:$WORK/lax-api-key "$program" load \
    'smartkey:name=core-ec256' 1 2>"$WORK/lax.err"
check "group-readable API-key file: load fails" test $? -ne 0
check "group-readable API-key file: the error names the file and mode" \
    grep -q "$WORK/lax-api-key has mode 0640" "$WORK/lax.err"
check "group-readable API-key file: nothing is sent" \
    test "$(counter .requests_total)" -eq 0

finish
