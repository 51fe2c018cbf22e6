#!/usr/bin/env bash
# A file in the current directory named like the URI does not shadow
# `smartkey://name=...`: OpenSSL tries the file: scheme first for
# `smartkey:name=...` (docs/openssl-dispatch.md §1), but never for the `//` form.
# Usage: shadow.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"

create_ec shadowed NistP256 >/dev/null ||
    fatal "could not create the test keys in the emulator"
server_public_key shadowed "$WORK/server.der"

# Decoys: a local key stored under every file name the URI could map to.
mkdir -p "$WORK/cwd/smartkey:"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$WORK/cwd/smartkey:/name=shadowed" 2>/dev/null ||
        fatal "could not make a local key with openssl"
cp "$WORK/cwd/smartkey:/name=shadowed" "$WORK/cwd/smartkey:name=shadowed"
openssl pkey -in "$WORK/cwd/smartkey:name=shadowed" -pubout -outform DER \
    -out "$WORK/decoy.der" || fatal "could not make a local key with openssl"
check "the decoy is a different key" \
    test "$(cmp -s "$WORK/decoy.der" "$WORK/server.der"; echo $?)" = 1

cd "$WORK/cwd" || fatal "no working directory"
check "smartkey://name= in a directory with decoys is SmartKey's key" \
    pubout_matches smartkey://name=shadowed "$WORK/server.der"
check "the decoy was not used" \
    test "$(cmp -s "$WORK/pubout.der" "$WORK/decoy.der"; echo $?)" = 1
# The decoy is live: the form without '//' does load it (OpenSSL's file:
# scheme first; provider-smartkey(7) warns about it). If OpenSSL ever
# stops doing that, this check fails and the warning can go.
run ossl pkey -in smartkey:name=shadowed -pubout
check "smartkey:name= (no //) is shadowed by the decoy, as documented" \
    bash -c 'sed "/^-----/d" "$1" | base64 -d | cmp -s - "$2"' _ \
    "$OUT" "$WORK/decoy.der"

counters_reset
run ossl pkey -in smartkey://name=shadowed -pubout
check "SmartKey was asked for the key" \
    between "$(counter requests_total)" 1 10

finish
