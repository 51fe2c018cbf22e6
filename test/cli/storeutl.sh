#!/usr/bin/env bash
# `openssl storeutl -keys 'smartkey:'` lists the keys the app can see: one
# entry per key, and with -text each key's name and type.
# Usage: storeutl.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"

# name:type of every key with a private half (storeutl -keys expects
# private keys; OSSL_STORE drops other object types).
keys=("list-rsa-2048:RSA" "list-rsa-3072:RSA" "list-ec-p256:EC"
    "list-ec-p521:EC" "list key; with spaces:EC")
for entry in "${keys[@]}"; do
    name=${entry%:*}
    case ${name} in
    *rsa-3072) create_rsa "$name" 3072 ;;
    *rsa*) create_rsa "$name" 2048 ;;
    *p521) create_ec "$name" NistP521 ;;
    *) create_ec "$name" NistP256 ;;
    esac >/dev/null || fatal "could not create the test keys in the emulator"
done

run ossl storeutl -keys -noout smartkey:
check "storeutl -keys smartkey: succeeds" succeeded
# storeutl prints "N: Pkey" for each private key
check "one entry per key" \
    equals "$(grep -Ec '^[0-9]+: Pkey$' "$OUT")" "${#keys[@]}"
check "total matches the server's keys" stdout_has "^Total found: ${#keys[@]}$"

# "N: Pkey" says nothing about the key: its name and type can only come
# from the provider, either in the text form of the key (a TEXT encoder,
# docs/openssl-dispatch.md §5) or as name entries ("N: Name: smartkey:name=..."), where ';' is
# written %3B.
run ossl storeutl -keys -text -noout smartkey:
check "storeutl -keys -text smartkey: succeeds" succeeded
for entry in "${keys[@]}"; do
    name=${entry%:*}
    type=${entry##*:}
    uri_name=${name//;/%3B}
    check "'$name' appears in the listing" \
        grep -Fq -e "$name" -e "$uri_name" "$OUT"
    check "'$name' is shown with its type $type" \
        grep -Eq "\\<$type\\>" \
        <(grep -F -A3 -B3 -e "$name" -e "$uri_name" "$OUT")
done

finish
