#!/usr/bin/env bash
# Remote RSA decryption with the stock `openssl pkeyutl -decrypt`: the
# ciphertexts are made by stock openssl with the public key, for every
# padding (OAEP with SHA-1/224/256/384/512, OAEP with a label, PKCS#1 v1.5
# where the key's policy allows it) and decrypted in SmartKey with one
# request each, whatever the provider order. PKCS#1 v1.5 on a key whose
# policy forbids it fails with SmartKey's own refusal. Encryption of the
# caller's data is local by default (no crypto request) and remote with
# smartkey-remote-encrypt:1.
# Usage: decrypt.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"

local_rsa_key "$WORK/pair.pem" "$WORK/pub.pem"
ops='["ENCRYPT", "DECRYPT", "APPMANAGEABLE"]'
import_rsa_pair lenient "$WORK/pair.pem" "$ops" \
    '[{"padding": {"OAEP": {}}}, {"padding": {"PKCS1_V15": {}}}]' \
    >/dev/null || fatal "cannot import the key into the emulator"
import_rsa_pair strict "$WORK/pair.pem" "$ops" >/dev/null ||
    fatal "cannot import the key into the emulator"
import_rsa_pair raw "$WORK/pair.pem" "$ops" \
    '[{"padding": {"RAW_DECRYPT": {}}}]' >/dev/null ||
    fatal "cannot import the key into the emulator"
head -c 32 /dev/urandom >"$WORK/secret.bin"

# remote_decrypt_round_trip ORDER KEY OPTIONS...: stock openssl encrypts
# with the public key (default provider only), smartkey decrypts.
remote_decrypt_round_trip() {
    local order=$1 key=$2
    shift 2
    timeout "$CLI_TIMEOUT" openssl pkeyutl -encrypt -pubin \
        -inkey "$WORK/pub.pem" -in "$WORK/secret.bin" \
        -out "$WORK/cipher.bin" "$@" || return 1
    counters_reset
    run ossl_order "$order" pkeyutl -decrypt -inkey "smartkey:name=$key" \
        -in "$WORK/cipher.bin" -out "$WORK/plain.bin" "$@"
    [[ $RC -eq 0 ]] && cmp -s "$WORK/plain.bin" "$WORK/secret.bin" &&
        [[ $(counter '.requests["POST /crypto/v1/decrypt"]') == 1 ]]
}

for order in default-first smartkey-first; do
    for hash in sha1 sha224 sha256 sha384 sha512; do
        # shellcheck disable=SC2046
        check "OAEP-$hash ciphertext decrypted in SmartKey ($order)" \
            remote_decrypt_round_trip "$order" strict \
            $(oaep_opts "$hash")
    done
    # shellcheck disable=SC2046
    check "OAEP-sha256 with a label decrypted in SmartKey ($order)" \
        remote_decrypt_round_trip "$order" strict $(oaep_opts sha256) \
        -pkeyopt rsa_oaep_label:0a0b0c0d
    check "OAEP with OpenSSL's default digest (SHA-1) ($order)" \
        remote_decrypt_round_trip "$order" strict \
        -pkeyopt rsa_padding_mode:oaep
    check "OAEP with raw parameter names (digest:SHA2-384) ($order)" \
        remote_decrypt_round_trip "$order" strict -pkeyopt pad-mode:oaep \
        -pkeyopt digest:SHA2-384
    check "PKCS#1 v1.5 decrypted where the policy allows it ($order)" \
        remote_decrypt_round_trip "$order" lenient \
        -pkeyopt rsa_padding_mode:pkcs1
    check "PKCS#1 v1.5 is OpenSSL's default padding ($order)" \
        remote_decrypt_round_trip "$order" lenient
done

# No padding (SmartKey's RAW_DECRYPT) where the policy allows it.
head -c 256 /dev/zero | tr '\0' '\1' >"$WORK/block.bin"
timeout "$CLI_TIMEOUT" openssl pkeyutl -encrypt -pubin -inkey "$WORK/pub.pem" \
    -in "$WORK/block.bin" -out "$WORK/raw.bin" -pkeyopt rsa_padding_mode:none ||
    fatal "stock openssl cannot encrypt"
run ossl pkeyutl -decrypt -inkey smartkey:name=raw -in "$WORK/raw.bin" \
    -out "$WORK/raw.out" -pkeyopt rsa_padding_mode:none
check "no padding: decrypted in SmartKey (RAW_DECRYPT)" \
    eval 'succeeded && cmp -s "$WORK/raw.out" "$WORK/block.bin"'

# PKCS#1 v1.5 on a key whose policy allows only OAEP: SmartKey's words.
timeout "$CLI_TIMEOUT" openssl pkeyutl -encrypt -pubin -inkey "$WORK/pub.pem" \
    -in "$WORK/secret.bin" -out "$WORK/pkcs1.bin" ||
    fatal "stock openssl cannot encrypt"
run ossl pkeyutl -decrypt -inkey smartkey:name=strict -in "$WORK/pkcs1.bin" \
    -pkeyopt rsa_padding_mode:pkcs1
check "PKCS#1 v1.5 refused by the key's policy fails" failed_cleanly
check "the refusal quotes SmartKey's text" \
    stderr_has_text "Padding PKCS1_V15 is not allowed by the key's encryption policy"
check "the refusal names the key and the request" \
    stderr_line_has "key 'strict'" 'POST /crypto/v1/decrypt -> HTTP 400'
check "no plaintext is written" stdout_lacks .

# Encryption of the caller's data: local by default, remote on request.
for order in default-first smartkey-first; do
    counters_reset
    # shellcheck disable=SC2046
    run ossl_order "$order" pkeyutl -encrypt -inkey smartkey:name=strict \
        -in "$WORK/secret.bin" -out "$WORK/local.bin" $(oaep_opts sha256)
    check "local encrypt with a SmartKey key succeeds ($order)" succeeded
    check "local encrypt sends no crypto request ($order)" equals \
        "$(counter '.requests["POST /crypto/v1/encrypt"]')/$(counter \
            '.requests["POST /crypto/v1/decrypt"]')" 0/0
    check "the stand-in private key decrypts it ($order)" \
        eval 'local_decrypt "$WORK/pair.pem" sha256 "$WORK/local.bin" \
            "$WORK/local.out" && cmp -s "$WORK/local.out" "$WORK/secret.bin"'

    counters_reset
    # shellcheck disable=SC2046
    run ossl_order "$order" pkeyutl -encrypt -inkey smartkey:name=strict \
        -propquery "$SMARTKEY_PROPQ" -in "$WORK/secret.bin" \
        -out "$WORK/remote.bin" $(oaep_opts sha256) \
        -pkeyopt smartkey-remote-encrypt:1
    check "remote encrypt succeeds ($order)" succeeded
    check "remote encrypt sends exactly one encrypt request ($order)" equals \
        "$(counter '.requests["POST /crypto/v1/encrypt"]')" 1
    check "the stand-in private key decrypts it ($order)" \
        eval 'local_decrypt "$WORK/pair.pem" sha256 "$WORK/remote.bin" \
            "$WORK/remote.out" && cmp -s "$WORK/remote.out" "$WORK/secret.bin"'
done

# Remote encryption under a public key from a file: registered as a
# transient key for the call, nothing persists.
before=$(key_count)
counters_reset
# shellcheck disable=SC2046
run ossl pkeyutl -encrypt -pubin -inkey "$WORK/pub.pem" \
    -propquery "$SMARTKEY_PROPQ" -in "$WORK/secret.bin" \
    -out "$WORK/remote-file.bin" $(oaep_opts sha256) \
    -pkeyopt smartkey-remote-encrypt:1
check "remote encrypt under a file key: one registration, one encrypt" \
    equals "$RC/$(counter '.requests["PUT /crypto/v1/keys"]')/$(counter \
        '.requests["POST /crypto/v1/encrypt"]')" 0/1/1
check "remote encrypt under a file key: the stand-in key decrypts it" \
    eval 'local_decrypt "$WORK/pair.pem" sha256 "$WORK/remote-file.bin" \
        "$WORK/remote-file.out" &&
        cmp -s "$WORK/remote-file.out" "$WORK/secret.bin"'
check "remote encrypt under a file key: no persistent object remains" \
    equals "$(key_count)" "$before"
finish
