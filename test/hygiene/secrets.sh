#!/usr/bin/env bash
# Secret hygiene: with debug logging at its highest level, neither the API
# key (nor its secret half) nor any session token appears in the debug log,
# on stderr or stdout, for successful operations, a session renewal and
# failures. API-key files readable by group or others are refused. Turning
# TLS verification off needs the explicit insecure_skip_verify parameter
# and is announced loudly.
#
# Usage: secrets.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/../cli/lib.sh"
cli_init "$@"
emulator_start

create_rsa "hygiene rsa" 2048 >/dev/null || fatal "cannot create the RSA key"
server_public_key "hygiene rsa" "$WORK/rsa.der" || fatal "no public key"
api_key=$(<"$API_KEY_FILE")
api_secret=$(base64 -d <<<"$api_key" | cut -d: -f2-)
[[ -n $api_secret ]] || fatal "cannot read the API key's secret half"

# Everything any run below prints, in one place.
ALL=$WORK/all-output
: >"$ALL"
collect() { cat "$OUT" "$ERR" >>"$ALL"; }

use_env_config
export SMARTKEY_DEBUG="level:3,file:$WORK/debug.log"
RUNNER=ossl
uri="smartkey:name=hygiene%20rsa"

check "debug level 3: pkey -pubout works" pubout_matches "$uri" "$WORK/rsa.der"
collect
control POST /_emulator/sessions/expire >/dev/null ||
    fatal "cannot expire the sessions"
check "debug level 3: works again after the session expired" \
    pubout_matches "$uri" "$WORK/rsa.der"
collect
run ossl storeutl -keys smartkey:
check "debug level 3: storeutl lists the keys" succeeded
collect
printf 'hygiene test data' | openssl dgst -sha256 -binary >"$WORK/digest"
run ossl pkeyutl -sign -inkey "$uri" -in "$WORK/digest" \
    -pkeyopt digest:sha256 -out "$WORK/signature"
collect # signing may not be there yet: its output is checked all the same
run ossl pkey -in "smartkey:name=no%20such%20key" -pubout
check "debug level 3: an unknown key fails cleanly" failed_cleanly
collect
SMARTKEY_API_KEY=$(base64 -w0 <<<"00000000-0000-0000-0000-000000000000:wrong") \
    run ossl pkey -in "$uri" -pubout
check "debug level 3: a wrong API key fails cleanly" failed_cleanly
collect
# A server error body that echoes the request must not be the one leaking
# the token: the provider never puts the Authorization header in messages.
control POST /_emulator/faults \
    '{"path":"*","count":3,"action":"status","status":500}' >/dev/null
run ossl pkey -in "$uri" -pubout
collect
control DELETE /_emulator/faults >/dev/null

check "the debug log was written (level 3 was active)" \
    test -s "$WORK/debug.log"
check "the debug log shows the requests" \
    grep -q 'keys/info' "$WORK/debug.log"
cat "$WORK/debug.log" >>"$ALL"
check "the API key appears nowhere" bash -c '! grep -Fq -- "$1" "$2"' _ \
    "$api_key" "$ALL"
check "the API key's secret half appears nowhere" \
    bash -c '! grep -Fq -- "$1" "$2"' _ "$api_secret" "$ALL"
# The emulator's tokens are 64 hex digits; kids are hyphenated UUIDs.
check "no session token appears anywhere" \
    bash -c '! grep -Eiq "[0-9a-f]{64}" "$1"' _ "$ALL"
check "no Authorization header appears anywhere" \
    bash -c '! grep -Eiq "authorization: |bearer [A-Za-z0-9]" "$1"' _ "$ALL"
unset SMARTKEY_DEBUG

# ---- API-key files: group or others may not read them ----
clear_env_config
for mode in 0640 0604 0660 0644; do
    cp "$API_KEY_FILE" "$WORK/key-$mode"
    chmod "$mode" "$WORK/key-$mode"
    make_config "$WORK/mode.cnf" "api_key=file:$WORK/key-$mode" ||
        fatal "cannot write the configuration"
    OPENSSL_CONF=$WORK/mode.cnf run ossl_plain pkey -in "$uri" -pubout
    check "API key file mode $mode is refused" failed_cleanly
    check "API key file mode $mode: the message says why and how to fix" \
        stderr_line_has "$WORK/key-$mode" 'group or others.*chmod 600'
    check "API key file mode $mode: the key is not shown" \
        stderr_lacks_text "$api_secret"
done
chmod 600 "$WORK/key-0640"
make_config "$WORK/mode.cnf" "api_key=file:$WORK/key-0640" ||
    fatal "cannot write the configuration"
RUNNER=ossl_plain
OPENSSL_CONF=$WORK/mode.cnf check "API key file mode 0600 is accepted" \
    pubout_matches "$uri" "$WORK/rsa.der"

# ---- TLS verification is only ever turned off explicitly ----
# No ca_file: the emulator's private CA is not in the system store.
make_config "$WORK/untrusted.cnf" "ca_file=" ||
    fatal "cannot write the configuration"
sed -i '/^ca_file = $/d' "$WORK/untrusted.cnf"
OPENSSL_CONF=$WORK/untrusted.cnf run ossl_plain pkey -in "$uri" -pubout
check "an untrusted server certificate is refused" failed_cleanly
check "an untrusted server certificate: the message says TLS/certificate" \
    stderr_has 'certificate|TLS'
check "an untrusted server certificate: no warning about skipping" \
    bash -c '! grep -q insecure_skip_verify "$1"' _ "$ERR"

make_config "$WORK/insecure.cnf" "insecure_skip_verify=yes" ||
    fatal "cannot write the configuration"
sed -i '/^ca_file = /d' "$WORK/insecure.cnf"
OPENSSL_CONF=$WORK/insecure.cnf run ossl_plain pkey -in "$uri" -pubout
check "insecure_skip_verify=yes connects to the untrusted server" succeeded
check "insecure_skip_verify=yes: a loud warning on stderr" \
    stderr_has 'WARNING.*verification.*OFF'

make_config "$WORK/maybe.cnf" "insecure_skip_verify=maybe" ||
    fatal "cannot write the configuration"
OPENSSL_CONF=$WORK/maybe.cnf run ossl_plain pkey -in "$uri" -pubout
check "insecure_skip_verify=maybe is a configuration error" failed_cleanly
check "insecure_skip_verify=maybe: the message names the parameter" \
    stderr_has 'insecure_skip_verify'

finish
