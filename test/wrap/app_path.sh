#!/usr/bin/env bash
# Never a silent local result on the C API path (issue 12, item 2): the
# program app_path.c wraps through EVP_PKEY_CTX_set_params() without a
# property query, in both provider orders, under a key SmartKey holds only
# the public half of, the public handle of a pair and the pair itself.
# Usage: app_path.sh MODULE_DIR EMULATOR APP_PATH_PROGRAM
source "$(dirname "$0")/lib.sh"
program=${3:?usage: $0 MODULE_DIR EMULATOR APP_PATH_PROGRAM}
cli_start "$1" "$2"

ops='["WRAPKEY", "ENCRYPT", "VERIFY", "APPMANAGEABLE"]'
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/pair.pem" 2>/dev/null &&
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$WORK/pub.pem" 2>/dev/null &&
    openssl pkey -in "$WORK/pub.pem" -pubout -outform DER \
        -out "$WORK/pub.der" ||
    fatal "cannot make local RSA keys"
import_rsa_pair pair "$WORK/pair.pem" "$ops" >/dev/null &&
    rest PUT /crypto/v1/keys "$(jq -nc --arg value "$(base64 -w0 \
        "$WORK/pub.der")" --argjson ops "$ops" \
        '{name: "public wrap", obj_type: "RSA", value: $value,
          key_ops: $ops}')" >/dev/null &&
    create_aes "My AES" 256 >/dev/null &&
    export_value "My AES" "$WORK/aes.bin" ||
    fatal "cannot create the test keys in the emulator"

# what the emulator helpers of app_path.c read (test/client/emu.h)
export SMARTKEY_TEST_ENDPOINT=$ENDPOINT SMARTKEY_TEST_CA=$CA_FILE \
    SMARTKEY_TEST_API_KEY_FILE=$API_KEY_FILE SMARTKEY_TEST_STATE=$STATE
# the program prints its own checks and "N passed, N failed"
run timeout 300 "$program" "$MODULE_DIR" 'smartkey:name=My%20AES' \
    "$WORK/aes.bin" \
    'smartkey:name=public%20wrap' "$WORK/pub.pem" \
    'smartkey:name=pair;type=public' "$WORK/pair.pem" \
    'smartkey:name=pair' "$WORK/pair.pem"
cat "$OUT" "$ERR"
check "the C API path: never a local result, public key operations work" \
    succeeded

# An EC public key held in SmartKey stays usable as another provider's
# ECDH peer (it has no smartkey parameters to lose).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$WORK/local-ec.pem" 2>/dev/null &&
    create_ec "peer ec" NistP256 >/dev/null &&
    server_public_key "peer ec" "$WORK/peer.der" ||
    fatal "cannot make the EC keys"
openssl pkeyutl -derive -inkey "$WORK/local-ec.pem" -peerkey "$WORK/peer.der" \
    -peerform DER -out "$WORK/z-local.bin" || fatal "no local ECDH"
for uri in 'smartkey:name=peer%20ec' 'smartkey:name=peer%20ec;type=public'; do
    run ossl pkeyutl -derive -inkey "$WORK/local-ec.pem" -peerkey "$uri" \
        -out "$WORK/z.bin"
    check "ECDH with the SmartKey EC key $uri as the peer" \
        eval 'succeeded && same_bytes "$WORK/z.bin" "$WORK/z-local.bin"'
done
finish
