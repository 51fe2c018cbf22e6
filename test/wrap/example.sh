#!/usr/bin/env bash
# The C example of docs/wrapping.md (EVP_PKEY_CTX_set_params with the names
# of <smartkey/smartkey.h>) wraps an AES key held in SmartKey under an RSA
# key held in SmartKey; the stand-in private key recovers the AES key.
# Usage: example.sh MODULE_DIR EMULATOR EXAMPLE_PROGRAM
source "$(dirname "$0")/lib.sh"
example=${3:?usage: $0 MODULE_DIR EMULATOR EXAMPLE_PROGRAM}
cli_start "$1" "$2"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 \
    -out "$WORK/kek.pem" 2>/dev/null || fatal "cannot make a local RSA key"
import_rsa_pair "cloud kek" "$WORK/kek.pem" \
    '["WRAPKEY", "APPMANAGEABLE"]' >/dev/null &&
    create_aes "My AES" 256 >/dev/null &&
    export_value "My AES" "$WORK/aes.bin" ||
    fatal "cannot create the test keys in the emulator"

counters_reset
run timeout "$CLI_TIMEOUT" "$example" "$MODULE_DIR" \
    'smartkey:name=cloud%20kek' 'smartkey:name=My%20AES' "$WORK/wrapped.bin"
check "the example program succeeds" succeeded
check "it reports the wrapped size" stdout_has_text "wrapped 384 bytes"
check "the stand-in key recovers the AES key (OAEP SHA-256)" \
    eval 'local_decrypt "$WORK/kek.pem" sha256 "$WORK/wrapped.bin" \
        "$WORK/recovered.bin" && cmp -s "$WORK/recovered.bin" "$WORK/aes.bin"'
check "one wrapkey request, no export" equals \
    "$(counter '.requests["POST /crypto/v1/wrapkey"]')/$(counter exports)" 1/0
finish
