#!/usr/bin/env bash
# Server-side wrap with the stock `openssl pkeyutl`: an AES-256 key held in
# SmartKey is wrapped with RSA-OAEP (SHA-1, SHA-256, SHA-512) under an RSA
# key of BITS bits that is
#   (a) held in SmartKey: a key pair, and a public-only key read with -pubin;
#   (b) a cloud's public key in a local PEM file (-pubin);
#   (c) the same key in an X.509 certificate (-certin).
# The documented invocation (-propquery '?provider=smartkey') is run with
# both provider orders. The stand-in private key and the same hash recover
# exactly the AES key's bytes; the other hash fails. A SmartKey-held key
# costs one wrapkey request (plus the session and key lookup of a fresh
# process); a file key leaves no persistent object behind.
# Usage: wrap.sh MODULE_DIR EMULATOR BITS
source "$(dirname "$0")/lib.sh"
bits=${3:?usage: $0 MODULE_DIR EMULATOR BITS}
cli_start "$1" "$2"

# The cloud's key pair: the private half stays here as the stand-in.
cloud_kek "$bits"

create_aes "My AES" 256 >/dev/null || fatal "cannot create the AES key"
export_value "My AES" "$WORK/aes.bin" || fatal "cannot export the AES key"
import_rsa_pair "kek pair" "$WORK/cloud.pem" \
    '["WRAPKEY", "ENCRYPT", "DECRYPT", "APPMANAGEABLE"]' >/dev/null ||
    fatal "cannot import the key pair into the emulator"
rest PUT /crypto/v1/keys "$(jq -nc --arg value "$(base64 -w0 \
    "$WORK/cloud-pub.der")" '{name: "kek public", obj_type: "RSA",
    value: $value, key_ops: ["WRAPKEY", "ENCRYPT", "APPMANAGEABLE"]}')" \
    >/dev/null || fatal "cannot import the public key into the emulator"

declare -A source_args=(
    [smartkey-pair]="-inkey smartkey:name=kek%20pair"
    [smartkey-public]="-pubin -inkey smartkey:name=kek%20public"
    [pem-file]="-pubin -inkey $WORK/cloud-pub.pem"
    [certificate]="-certin -inkey $WORK/cloud.crt"
)
other_hash() { [[ $1 == sha1 ]] && echo sha256 || echo sha1; }

# wrap_with ORDER SOURCE HASH: the documented command; wrapped bytes in
# $WORK/wrapped.bin.
wrap_with() {
    rm -f "$WORK/wrapped.bin"
    # shellcheck disable=SC2046,SC2086
    run ossl_order "$1" pkeyutl -encrypt ${source_args[$2]} \
        -propquery "$SMARTKEY_PROPQ" -in /dev/null -out "$WORK/wrapped.bin" \
        $(oaep_opts "$3") \
        -pkeyopt 'smartkey-wrap-subject:smartkey:name=My%20AES'
}

recovers_aes_key() {
    local_decrypt "$WORK/cloud.pem" "$1" "$WORK/wrapped.bin" \
        "$WORK/recovered.bin" 2>/dev/null &&
        cmp -s "$WORK/recovered.bin" "$WORK/aes.bin"
}
other_hash_fails() {
    ! local_decrypt "$WORK/cloud.pem" "$(other_hash "$1")" \
        "$WORK/wrapped.bin" "$WORK/other.bin" 2>/dev/null ||
        ! cmp -s "$WORK/other.bin" "$WORK/aes.bin"
}
wrapped_is_modulus_long() {
    [[ $(stat -c %s "$WORK/wrapped.bin") -eq $((bits / 8)) ]]
}

for order in default-first smartkey-first; do
    for source in smartkey-pair smartkey-public pem-file certificate; do
        for hash in sha1 sha256 sha512; do
            what="RSA-$bits $source OAEP-$hash ($order)"
            before=$(key_count)
            counters_reset
            wrap_with "$order" "$source" "$hash"
            wraps=$(counter '.requests["POST /crypto/v1/wrapkey"]')
            others=$(counter '.requests_total
                - (.requests["POST /crypto/v1/wrapkey"] // 0)
                - (.requests["POST /sys/v1/session/auth"] // 0)
                - (.requests["POST /crypto/v1/keys/info"] // 0)
                - (.requests["PUT /crypto/v1/keys"] // 0)')
            exports=$(counter exports)
            registrations=$(counter '.requests["PUT /crypto/v1/keys"]')
            check "$what: wrap succeeds" succeeded
            check "$what: output is one modulus-long OAEP block" \
                wrapped_is_modulus_long
            check "$what: stand-in key and $hash recover the AES key" \
                recovers_aes_key "$hash"
            check "$what: the other hash does not" other_hash_fails "$hash"
            check "$what: exactly one wrapkey request" equals "$wraps" 1
            check "$what: no export, encrypt or other request" \
                equals "$exports/$others" 0/0
            case $source in
            smartkey-*)
                check "$what: no key registered" equals "$registrations" 0
                ;;
            *)
                check "$what: one transient registration" \
                    equals "$registrations" 1
                check "$what: no persistent object remains" \
                    equals "$(key_count)" "$before"
                ;;
            esac
        done
    done
done
finish
