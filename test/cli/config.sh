#!/usr/bin/env bash
# The provider works when activated only through an openssl.cnf generated
# from the snippet users copy (openssl.cnf.d/smartkey.cnf): no -provider
# flags and no environment variables.
# Usage: config.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_init "$@"
emulator_start

rsa_kid=$(create_rsa cfg-rsa 2048)
ec_kid=$(create_ec cfg-ec NistP384)
[[ -n $rsa_kid && -n $ec_kid ]] ||
    fatal "could not create the test keys in the emulator"
server_public_key cfg-rsa "$WORK/rsa.der"
server_public_key cfg-ec "$WORK/ec.der"

# The snippet itself: default is activated, and listed before smartkey
# (docs/openssl-dispatch.md §3, §8).
provider_lines=$(sed -n '/^\[ *provider_sect *\]/,/^\[/p' "$CONFIG_SNIPPET" |
    grep -E '^(default|smartkey) *=' | cut -d' ' -f1 | tr '\n' ' ')
check "snippet lists default before smartkey" \
    equals "$provider_lines" "default smartkey "
check "snippet activates default" \
    grep -Eq '^activate *= *1' \
    <(sed -n '/^\[ *default_sect *\]/,/^\[/p' "$CONFIG_SNIPPET")

make_config "$WORK/openssl.cnf" ||
    fatal "could not generate openssl.cnf from the snippet"
check "generated config reads the API key from a file" \
    grep -Fq "api_key = file:$API_KEY_FILE" "$WORK/openssl.cnf"
export OPENSSL_CONF=$WORK/openssl.cnf
clear_env_config
RUNNER=ossl_plain

# Loading the provider costs no request: the backend starts at first use
# (docs/openssl-dispatch.md §8), so every OpenSSL program reading this file is not slowed.
counters_reset
run ossl_plain list -providers
check "openssl list -providers succeeds" succeeded
check "loading the provider sends nothing to SmartKey" \
    equals "$(counter requests_total)" 0
check "smartkey is listed" stdout_has '^  smartkey$'
check "default is listed" stdout_has '^  default$'
check "smartkey is active" \
    grep -Eq 'status: active' <(sed -n '/^  smartkey$/,/^  [a-z]/p' "$OUT")

check "RSA by name through openssl.cnf only" \
    pubout_matches smartkey:name=cfg-rsa "$WORK/rsa.der"
check "RSA by kid through openssl.cnf only" \
    pubout_matches "smartkey:kid=$rsa_kid" "$WORK/rsa.der"
check "EC by name through openssl.cnf only" \
    pubout_matches smartkey:name=cfg-ec "$WORK/ec.der"
check "EC as smartkey://kid= through openssl.cnf only" \
    pubout_matches "smartkey://kid=$ec_kid" "$WORK/ec.der"

run ossl_plain pkey -in smartkey:name=cfg-ec -text_pub -noout
check "-text_pub through openssl.cnf only" stdout_has 'NIST CURVE: P-384'

# A configuration without `activate` keeps the provider opt-in: the section
# still supplies the module and parameters to `-provider smartkey` (see
# docs/openssl-dispatch.md §8).
grep -v '^activate' "$WORK/openssl.cnf" >"$WORK/opt-in.cnf"
sed -i '/^\[ *default_sect *\]/a activate = 1' "$WORK/opt-in.cnf"
export OPENSSL_CONF=$WORK/opt-in.cnf
run ossl_plain list -providers
check "without activate, smartkey is not loaded" \
    stdout_lacks smartkey
run ossl_plain pkey -provider default -provider smartkey \
    -in smartkey:name=cfg-rsa -pubout
check "without activate, -provider smartkey takes the section's parameters" \
    succeeded

finish
