#!/usr/bin/env bash
# 8 threads x 200 server-side wraps through the EVP API, one HTTP request
# per wrap after warm-up (wrap_threads.c checks the emulator's counters).
# Usage: threads.sh MODULE_DIR EMULATOR WRAP_THREADS_PROGRAM
source "$(dirname "$0")/lib.sh"
program=${3:?usage: $0 MODULE_DIR EMULATOR WRAP_THREADS_PROGRAM}
cli_start "$1" "$2"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/kek.pem" 2>/dev/null || fatal "cannot make a local RSA key"
import_rsa_pair kek "$WORK/kek.pem" '["WRAPKEY", "APPMANAGEABLE"]' \
    >/dev/null && create_aes "My AES" 256 >/dev/null &&
    export_value "My AES" "$WORK/aes.bin" ||
    fatal "cannot create the test keys in the emulator"

# what the emulator helpers of wrap_threads.c read (test/client/emu.h)
export SMARTKEY_TEST_ENDPOINT=$ENDPOINT SMARTKEY_TEST_CA=$CA_FILE \
    SMARTKEY_TEST_API_KEY_FILE=$API_KEY_FILE SMARTKEY_TEST_STATE=$STATE
# the program prints its own checks and "N passed, N failed"
timeout 300 "$program" "$MODULE_DIR" smartkey:name=kek \
    'smartkey:name=My%20AES' "$WORK/kek.pem" "$WORK/aes.bin"
