#!/usr/bin/env bash
# A Salesforce cache-only key service written in C against the EVP API
# (test/byok/key_service.c, the names of <smartkey/smartkey.h>) answers the
# callout: python3-jwcrypto decrypts the JWE with the stand-in private key
# of the BYOK certificate to the key held in SmartKey, the header carries
# the kid and the replay nonce, and nothing is exported.
# Usage: key_service.sh MODULE_DIR EMULATOR KEY_SERVICE_PROGRAM
source "$(dirname "$0")/lib.sh"
program=${3:?usage: $0 MODULE_DIR EMULATOR KEY_SERVICE_PROGRAM}
find_python
cli_start "$1" "$2"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 \
    -out "$WORK/sf.pem" 2>/dev/null &&
    openssl req -x509 -new -key "$WORK/sf.pem" -subj /CN=byok -days 2 \
        -out "$WORK/sf.crt" 2>/dev/null ||
    fatal "cannot make the stand-in BYOK certificate"
openssl rand -out "$WORK/dek.bin" 32
import_key "Cache Only" AES "$WORK/dek.bin" >/dev/null ||
    fatal "cannot import the key"
counters_reset

for nonce in "" "RequestIdentifier-42"; do
    what="key service answer${nonce:+ with jti}"
    # shellcheck disable=SC2086
    run timeout "$CLI_TIMEOUT" "$program" "$MODULE_DIR" "$WORK/sf.crt" \
        'smartkey:name=Cache%20Only' key-1 $nonce
    check "$what: the program succeeds" succeeded
    cp "$OUT" "$WORK/answer.json"
    check "$what: jwcrypto decrypts it to the key" \
        verify jwe "$WORK/sf.pem" "$WORK/answer.json" "$WORK/dek.bin" \
        --kid key-1 ${nonce:+--jti "$nonce"} --salesforce
done
check "three SmartKey calls per answer (transient key, two wraps)" \
    equals "$(counter '.requests["POST /crypto/v1/keys"]'),$(counter \
        '.requests["POST /crypto/v1/wrapkey"]')" "2,4"
check "nothing was exported" equals "$(counter exports)" 0
finish
