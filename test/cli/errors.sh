#!/usr/bin/env bash
# Failures give clear, specific messages on stderr: an unknown key (named,
# "not found"/404), a bad API key (401/authentication), an unreachable
# server (connect), an untrusted server certificate, an API-key file that
# others can read (permissions, naming the file), a malformed URI; and no
# message, even at the highest debug level, contains the API key.
# Usage: errors.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"

create_rsa err-rsa 2048 >/dev/null ||
    fatal "could not create the test keys in the emulator"
api_key=$(<"$API_KEY_FILE")
api_secret=$(base64 -d <<<"$api_key" | cut -d: -f2-)
wrong_secret=not-the-secret-$RANDOM
wrong_key=$(printf '%s' "00000000-0000-0000-0000-000000000000:$wrong_secret" |
    base64 -w0)

no_secret_in_output() {
    stderr_lacks_text "$api_key" && stderr_lacks_text "$api_secret" &&
        stderr_lacks_text "$wrong_key" && stderr_lacks_text "$wrong_secret"
}

# ---- unknown key ----
run ossl pkey -in smartkey:name=no-such-key -pubout
check "unknown name: fails cleanly" failed_cleanly
check "unknown name: a message names the key and says not found" \
    stderr_line_has no-such-key 'not found|404'
check "unknown name: only the provider's error" only_provider_errors

missing_kid=0b5c1a2e-7f3d-4e8a-9c6b-5d4e3f2a1b0c
run ossl pkey -in smartkey:kid=$missing_kid -pubout
check "unknown kid: fails cleanly" failed_cleanly
check "unknown kid: a message names the kid and says not found" \
    stderr_line_has $missing_kid 'not found|404'

run ossl storeutl -keys -noout smartkey:name=no-such-key
# (storeutl exits 0 here: it stops at eof after printing the error)
check "storeutl, unknown name: message names the key, says not found" \
    stderr_line_has no-such-key 'not found|404'

# ---- bad API key ----
SMARTKEY_API_KEY=$wrong_key run ossl pkey -in smartkey:name=err-rsa -pubout
check "bad API key: fails cleanly" failed_cleanly
check "bad API key: message says 401/authentication" \
    stderr_has '401|authenticat'
check "bad API key: the key is not shown" no_secret_in_output
check "bad API key: only the provider's error" only_provider_errors

# ---- server unreachable ----
refused_port
nowhere=https://127.0.0.1:$REFUSED_PORT
SMARTKEY_API_ENDPOINT=$nowhere run ossl pkey -in smartkey:name=err-rsa -pubout
check "closed port: fails cleanly" failed_cleanly
check "closed port: message says it could not connect" \
    stderr_has 'connect|unreachable'
check "closed port: message names the endpoint's port" \
    stderr_has_text "${nowhere##*:}"
check "closed port: only the provider's error" only_provider_errors

# The same with a configured connect timeout (openssl.cnf only).
make_config "$WORK/unreachable.cnf" "api_endpoint=$nowhere" \
    "connect_timeout=1.5" ||
        fatal "could not generate openssl.cnf from the snippet"
clear_env_config
OPENSSL_CONF=$WORK/unreachable.cnf run ossl_plain pkey \
    -in smartkey:name=err-rsa -pubout
check "closed port, connect_timeout=1.5: fails cleanly" failed_cleanly
check "closed port, connect_timeout=1.5: connect message" \
    stderr_has 'connect|unreachable'
use_env_config

# ---- a server that stops answering: request_timeout ----
make_config "$WORK/stall.cnf" "request_timeout=1" "retries=0" ||
    fatal "could not generate openssl.cnf from the snippet"
clear_env_config
control POST /_emulator/faults \
    '{"path":"/crypto/v1/keys/info","count":1,"action":"stall","seconds":10}' \
    >/dev/null || fatal "could not set a fault in the emulator"
OPENSSL_CONF=$WORK/stall.cnf run ossl_plain pkey \
    -in smartkey:name=err-rsa -pubout
check "stalled answer, request_timeout=1: fails cleanly" failed_cleanly
check "stalled answer, request_timeout=1: message says timeout" \
    stderr_has 'timeout|timed out|in time'
check "stalled answer: only the provider's error" only_provider_errors
control DELETE /_emulator/faults >/dev/null
use_env_config

# ---- untrusted server certificate ----
unset SMARTKEY_CA_FILE
run ossl pkey -in smartkey:name=err-rsa -pubout
check "no ca_file: fails cleanly" failed_cleanly
check "no ca_file: message is about the server certificate" \
    stderr_has 'certificate'
check "no ca_file: only the provider's error" only_provider_errors
use_env_config

# ---- API-key file readable by others ----
cp "$API_KEY_FILE" "$WORK/lax-api-key"
chmod 644 "$WORK/lax-api-key"
make_config "$WORK/lax.cnf" "api_key=file:$WORK/lax-api-key" ||
    fatal "could not generate openssl.cnf from the snippet"
clear_env_config
counters_reset
OPENSSL_CONF=$WORK/lax.cnf run ossl_plain pkey \
    -in smartkey:name=err-rsa -pubout
check "API-key file mode 644: fails cleanly" failed_cleanly
check "API-key file mode 644: a message names the file and its permissions" \
    stderr_line_has "$WORK/lax-api-key" \
    'permission|mode 0?[0-7]{3}|readable by (group|others)'
check "API-key file mode 644: the key is not sent" \
    equals "$(counter requests_total)" 0
check "API-key file mode 644: the key is not shown" no_secret_in_output
check "API-key file mode 644: only the provider's error" only_provider_errors
chmod 600 "$WORK/lax-api-key"
OPENSSL_CONF=$WORK/lax.cnf run ossl_plain pkey \
    -in smartkey:name=err-rsa -pubout
check "API-key file mode 600: works" succeeded
use_env_config

# ---- malformed URIs: rejected before anything is sent ----
for uri in 'smartkey:colour=blue' 'smartkey:name=bad%zzescape' \
    'smartkey:name=err-rsa;type=secret' 'smartkey:name=' \
    'smartkey:kid=not-a-uuid'; do
    counters_reset
    run ossl pkey -in "$uri" -pubout
    check "$uri: fails cleanly" failed_cleanly
    check "$uri: message says the URI is malformed" \
        stderr_has 'malformed|invalid|syntax|unknown attribute'
    check "$uri: only the provider's error" only_provider_errors
    check "$uri: nothing is sent to SmartKey" \
        equals "$(counter requests_total)" 0
done

# ---- secrets stay out of the debug log ----
SMARTKEY_DEBUG=level:3 run ossl pkey -in smartkey:name=err-rsa -pubout
check "debug level 3: works" succeeded
check "debug level 3: the API key is not logged" no_secret_in_output
SMARTKEY_DEBUG=level:3 SMARTKEY_API_KEY=$wrong_key \
    run ossl pkey -in smartkey:name=err-rsa -pubout
check "debug level 3, bad key: the key is not logged" no_secret_in_output
SMARTKEY_DEBUG="level:2,file:$WORK/debug.log" \
    run ossl pkey -in smartkey:name=err-rsa -pubout
check "debug file: works" succeeded
check "debug file: written" test -s "$WORK/debug.log"
check "debug file: the API key is not logged" \
    bash -c '! grep -Fq -e "$1" -e "$2" "$3"' _ "$api_key" "$api_secret" \
    "$WORK/debug.log"

finish
