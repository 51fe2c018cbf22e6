#!/usr/bin/env bash
# The provider can be configured through environment variables alone
# (SMARTKEY_API_ENDPOINT, SMARTKEY_API_KEY, SMARTKEY_CA_FILE) or with the
# FORTANIX_* spellings; SMARTKEY_* wins over FORTANIX_*, and the environment
# overrides openssl.cnf: the endpoint and the CA file only together with
# the API key, or when openssl.cnf says env_overrides = yes (otherwise the
# environment could send a key read from a protected file elsewhere).
# Usage: env.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_init "$@"
emulator_start

create_rsa env-rsa 2048 >/dev/null ||
    fatal "could not create the test keys in the emulator"
create_ec env-ec NistP256 >/dev/null ||
    fatal "could not create the test keys in the emulator"
server_public_key env-rsa "$WORK/rsa.der"
server_public_key env-ec "$WORK/ec.der"

api_key=$(<"$API_KEY_FILE")
wrong_key=$(printf '%s' "00000000-0000-0000-0000-000000000000:wrong" |
    base64 -w0)
nowhere=https://127.0.0.1:$(closed_port)

# both_keys_with WHAT EC_URI VAR=VALUE...: with only these variables set,
# the RSA and the EC key (under EC_URI) give SmartKey's public keys.
both_keys_with() {
    local what=$1 ec_uri=$2
    shift 2
    clear_env_config
    export "$@"
    check "$what: RSA public key" \
        pubout_matches smartkey:name=env-rsa "$WORK/rsa.der"
    check "$what: EC public key" pubout_matches "$ec_uri" "$WORK/ec.der"
}
both_keys_with "SMARTKEY_* only" smartkey://name=env-ec \
    "SMARTKEY_API_ENDPOINT=$ENDPOINT" "SMARTKEY_API_KEY=$api_key" \
    "SMARTKEY_CA_FILE=$CA_FILE"
both_keys_with "FORTANIX_* spellings" smartkey:name=env-ec \
    "FORTANIX_API_ENDPOINT=$ENDPOINT" "FORTANIX_API_KEY=$api_key" \
    "SMARTKEY_CA_FILE=$CA_FILE"

clear_env_config
export SMARTKEY_API_ENDPOINT=$ENDPOINT SMARTKEY_API_KEY=$api_key \
    SMARTKEY_CA_FILE=$CA_FILE \
    FORTANIX_API_ENDPOINT=$nowhere FORTANIX_API_KEY=$wrong_key
check "SMARTKEY_* wins over FORTANIX_*" \
    pubout_matches smartkey:name=env-rsa "$WORK/rsa.der"

# openssl.cnf points at a closed port with a wrong key; the environment
# redirects it to the emulator.
clear_env_config
printf '%s\n' "$wrong_key" >"$WORK/wrong-api-key"
chmod 600 "$WORK/wrong-api-key"
make_config "$WORK/openssl.cnf" "api_endpoint=$nowhere" \
    "api_key=file:$WORK/wrong-api-key" ||
        fatal "could not generate openssl.cnf from the snippet"
export OPENSSL_CONF=$WORK/openssl.cnf
export SMARTKEY_API_ENDPOINT=$ENDPOINT SMARTKEY_API_KEY=$api_key
RUNNER=ossl_plain
check "environment overrides openssl.cnf" \
    pubout_matches smartkey:name=env-ec "$WORK/ec.der"

# The API key comes from openssl.cnf (file:): the environment alone may not
# send it to another endpoint or trust another CA.
clear_env_config
make_config "$WORK/protected.cnf" || fatal "could not generate openssl.cnf"
export OPENSSL_CONF=$WORK/protected.cnf
refused_env() {
    run ossl_plain pkey -in smartkey:name=env-ec -pubout
    failed_cleanly && stderr_has_text "$1" && stderr_has env_overrides
}
SMARTKEY_API_ENDPOINT=$nowhere check \
    "openssl.cnf key + SMARTKEY_API_ENDPOINT only: refused, naming it" \
    refused_env SMARTKEY_API_ENDPOINT
FORTANIX_API_ENDPOINT=$nowhere check \
    "openssl.cnf key + FORTANIX_API_ENDPOINT only: refused, naming it" \
    refused_env FORTANIX_API_ENDPOINT
cp "$CA_FILE" "$WORK/other-ca.pem"
SMARTKEY_CA_FILE=$WORK/other-ca.pem check \
    "openssl.cnf key + SMARTKEY_CA_FILE only: refused, naming it" \
    refused_env SMARTKEY_CA_FILE
SMARTKEY_API_ENDPOINT=$ENDPOINT check \
    "openssl.cnf key + the same endpoint in the environment: works" \
    pubout_matches smartkey:name=env-ec "$WORK/ec.der"
make_config "$WORK/overrides.cnf" "api_endpoint=$nowhere" \
    "env_overrides=yes" || fatal "could not generate openssl.cnf"
OPENSSL_CONF=$WORK/overrides.cnf SMARTKEY_API_ENDPOINT=$ENDPOINT check \
    "env_overrides = yes: SMARTKEY_API_ENDPOINT replaces api_endpoint" \
    pubout_matches smartkey:name=env-ec "$WORK/ec.der"

finish
