#!/usr/bin/env bash
# Parameters never crash (issue 12, item 5): test_params.c sends every
# settable parameter of every operation with NULL data, wrong types and
# 1 MB values against a private smartkey-emulator.
# Usage: params.sh MODULE_DIR EMULATOR TEST_PROGRAM
source "$(dirname "$0")/../cli/lib.sh"
program=${3:?usage: $0 MODULE_DIR EMULATOR TEST_PROGRAM}
cli_start "$1" "$2"

create_rsa "param rsa" 2048 >/dev/null && create_ec "param ec" NistP256 \
    >/dev/null || fatal "cannot create the test keys in the emulator"
# the program prints its own checks and "N passed, N failed"
timeout 300 ${PARAMS_WRAPPER:-} "$program" "$MODULE_DIR" 'smartkey:name=param%20rsa' \
    'smartkey:name=param%20ec'
