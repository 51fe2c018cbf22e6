#!/usr/bin/env bash
# -pubin works with a public-only key imported into SmartKey as an SPKI:
# `openssl pkey -pubin -in 'smartkey:name=pub' -pubout` prints that key; and
# with `-pubin` (or ;type=public) a key with a private half yields its
# public key too.
# Usage: pubin.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"

# Public keys generated here, imported without their private half.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/rsa-local.pem" 2>/dev/null ||
        fatal "could not make a local key with openssl"
openssl pkey -in "$WORK/rsa-local.pem" -pubout -outform DER \
    -out "$WORK/rsa-pub.der" || fatal "could not make a local key with openssl"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
    -out "$WORK/ec-local.pem" 2>/dev/null ||
        fatal "could not make a local key with openssl"
openssl pkey -in "$WORK/ec-local.pem" -pubout -outform DER \
    -out "$WORK/ec-pub.der" || fatal "could not make a local key with openssl"
rsa_kid=$(import_public pub RSA "$WORK/rsa-pub.der") ||
    fatal "could not import a public key into the emulator"
import_public "pub ec" EC "$WORK/ec-pub.der" NistP384 >/dev/null ||
    fatal "could not import a public key into the emulator"
server_public_key pub "$WORK/rsa-server.der"
check "emulator holds the imported RSA public key" \
    same_bytes "$WORK/rsa-server.der" "$WORK/rsa-pub.der"

pubin_matches() {
    run ossl pkey -pubin -in "$1" -pubout
    [[ $RC -eq 0 ]] || return 1
    pem_to_der "$OUT" "$WORK/pubin.der" && cmp -s "$WORK/pubin.der" "$2"
}

check "public-only RSA by name with -pubin" \
    pubin_matches smartkey:name=pub "$WORK/rsa-pub.der"
check "public-only RSA by kid with -pubin" \
    pubin_matches "smartkey:kid=$rsa_kid" "$WORK/rsa-pub.der"
check "public-only RSA as smartkey:// with -pubin" \
    pubin_matches smartkey://name=pub "$WORK/rsa-pub.der"
check "public-only RSA with ;type=public" \
    pubin_matches "smartkey:name=pub;type=public" "$WORK/rsa-pub.der"
check "public-only EC (name with a space) with -pubin" \
    pubin_matches "smartkey:name=pub ec" "$WORK/ec-pub.der"

run ossl pkey -pubin -in smartkey:name=pub -text_pub -noout
check "-pubin -text_pub shows the modulus" stdout_has '^Modulus:'

# A key with a private half: -pubin asks the store for its public key
# (docs/openssl-dispatch.md §1: expect=PUBKEY must yield a public object, not be dropped).
create_ec pair NistP256 >/dev/null ||
    fatal "could not create the test keys in the emulator"
server_public_key pair "$WORK/pair.der"
check "-pubin on a key with a private half" \
    pubin_matches smartkey:name=pair "$WORK/pair.der"
check "-pubin with ;type=public on a key with a private half" \
    pubin_matches "smartkey:name=pair;type=public" "$WORK/pair.der"

finish
