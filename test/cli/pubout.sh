#!/usr/bin/env bash
# `openssl pkey -in 'smartkey:...' -pubout` prints exactly the public key
# SmartKey holds, for RSA 2048/3072/4096 and EC P-256/384/521, whether the
# key is named by name, by kid or with the smartkey:// form; a name with
# spaces and ';' works when ';' is written %3B; -text_pub shows the key.
# Configuration: environment variables, provider loaded with -provider.
# Usage: pubout.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"

declare -A kid
kid[rsa-2048]=$(create_rsa rsa-2048 2048)
kid[rsa-3072]=$(create_rsa rsa-3072 3072)
kid[rsa-4096]=$(create_rsa rsa-4096 4096)
kid[ec-p256]=$(create_ec ec-p256 NistP256)
kid[ec-p384]=$(create_ec ec-p384 NistP384)
kid[ec-p521]=$(create_ec ec-p521 NistP521)
special="web server key; prod"
kid[$special]=$(create_ec "$special" NistP256)

for name in rsa-2048 rsa-3072 rsa-4096 ec-p256 ec-p384 ec-p521 "$special"; do
    [[ -n ${kid[$name]} ]] || fatal "could not create key '$name'"
    server_public_key "$name" "$WORK/$name.der"
done

for name in rsa-2048 rsa-3072 rsa-4096 ec-p256 ec-p384 ec-p521; do
    check "$name by name: -pubout is SmartKey's public key" \
        pubout_matches "smartkey:name=$name" "$WORK/$name.der"
    check "$name by kid: -pubout is SmartKey's public key" \
        pubout_matches "smartkey:kid=${kid[$name]}" "$WORK/$name.der"
    check "$name as smartkey://name=: -pubout is SmartKey's public key" \
        pubout_matches "smartkey://name=$name" "$WORK/$name.der"
done

check "smartkey://kid= form" \
    pubout_matches "smartkey://kid=${kid[rsa-2048]}" "$WORK/rsa-2048.der"

# ';' separates attributes, so inside a name it must be written %3B; spaces
# may stay literal or be percent-encoded.
check "name with spaces and %3B" \
    pubout_matches "smartkey:name=web server key%3B prod" "$WORK/$special.der"
check "name fully percent-encoded" \
    pubout_matches "smartkey:name=web%20server%20key%3B%20prod" \
    "$WORK/$special.der"
check "name with %3B in the smartkey:// form" \
    pubout_matches "smartkey://name=web%20server%20key%3B%20prod" \
    "$WORK/$special.der"
check "an attribute after a name with %3B (;type=private)" \
    pubout_matches "smartkey:name=web server key%3B prod;type=private" \
    "$WORK/$special.der"

# -text_pub goes through the default provider's TEXT encoder (docs/openssl-dispatch.md §5).
run ossl pkey -in smartkey:name=rsa-2048 -text_pub -noout
check "RSA -text_pub succeeds" succeeded
check "RSA -text_pub shows the size" stdout_has 'Public-Key: \(2048 bit\)'
check "RSA -text_pub shows the modulus" stdout_has '^Modulus:'
check "RSA -text_pub shows the exponent" stdout_has '^Exponent: 65537'

expected_modulus=$(openssl pkey -pubin -inform DER -in "$WORK/rsa-2048.der" \
    -text_pub -noout | sed -n '/^Modulus:/,/^Exponent/p')
check "RSA -text_pub modulus is SmartKey's" \
    equals "$(sed -n '/^Modulus:/,/^Exponent/p' "$OUT")" "$expected_modulus"

for curve in p256:P-256 p384:P-384 p521:P-521; do
    name=ec-${curve%%:*}
    run ossl pkey -in "smartkey:name=$name" -text_pub -noout
    check "$name -text_pub succeeds" succeeded
    check "$name -text_pub shows the point" stdout_has '^pub:'
    check "$name -text_pub names the curve" \
        stdout_has "NIST CURVE: ${curve#*:}"
done

finish
