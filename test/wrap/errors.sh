#!/usr/bin/env bash
# Every refusal of a wrap or decrypt is an error the user can act on, never a
# silent local result: SmartKey's own text for what SmartKey refuses (subject
# without EXPORT, wrapping key without WRAPKEY, subject too large for the
# modulus), the provider's for what it refuses before any request (input
# with a wrap subject, OAEP/MGF1 digest mismatch, padding or digest SmartKey
# does not offer, malformed subject URI), and OpenSSL's when another
# provider's cipher was selected and cannot take the smartkey parameters.
# Usage: errors.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"

local_rsa_key "$WORK/kek.pem" "$WORK/kek-pub.pem"
import_rsa_pair kek "$WORK/kek.pem" \
    '["WRAPKEY", "ENCRYPT", "DECRYPT", "APPMANAGEABLE"]' >/dev/null &&
    create_rsa "no wrap" 2048 >/dev/null &&
    create_aes aes 256 >/dev/null &&
    create_aes locked 256 0 >/dev/null &&
    head -c 200 /dev/urandom >"$WORK/big.bin" &&
    import_secret "big secret" "$WORK/big.bin" >/dev/null ||
    fatal "cannot create the test keys in the emulator"
echo "not empty" >"$WORK/data.txt"

# wrap [OPTIONS...]: the documented wrap under kek with OAEP SHA-256; the
# last options win.
wrap() {
    rm -f "$WORK/wrapped.bin"
    counters_reset
    # shellcheck disable=SC2046
    run ossl pkeyutl -encrypt -inkey smartkey:name=kek \
        -propquery "$SMARTKEY_PROPQ" -in /dev/null -out "$WORK/wrapped.bin" \
        $(oaep_opts sha256) "$@"
}
no_output() { [[ ! -s $WORK/wrapped.bin ]]; }
wrapkey_requests() { counter '.requests["POST /crypto/v1/wrapkey"]'; }

wrap -pkeyopt smartkey-wrap-subject:smartkey:name=locked
check "subject without EXPORT: fails" failed_cleanly
check "subject without EXPORT: SmartKey's reason" \
    stderr_has_text "does not have key operation EXPORT"
check "subject without EXPORT: names the subject, the key and the request" \
    stderr_line_has "wrapping smartkey:name=locked under key 'kek'" \
    'POST /crypto/v1/wrapkey -> HTTP 403'
check "subject without EXPORT: no output" no_output

rm -f "$WORK/wrapped.bin"
run ossl pkeyutl -encrypt -inkey 'smartkey:name=no wrap' \
    -propquery "$SMARTKEY_PROPQ" -in /dev/null -out "$WORK/wrapped.bin" \
    -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt smartkey-wrap-subject:smartkey:name=aes
check "wrapping key without WRAPKEY: fails" failed_cleanly
check "wrapping key without WRAPKEY: SmartKey's reason" \
    stderr_has_text "does not have key operation WRAPKEY"
check "wrapping key without WRAPKEY: names the wrapping key" \
    stderr_line_has "under key 'no wrap'" 'HTTP 403'
check "wrapping key without WRAPKEY: no output" no_output

wrap -pkeyopt 'smartkey-wrap-subject:smartkey:name=big%20secret'
check "subject too large for the modulus: fails" failed_cleanly
check "subject too large for the modulus: SmartKey's reason" \
    stderr_has 'subject key is 200 bytes but at most 190 bytes fit'
check "subject too large for the modulus: no output" no_output

counters_reset
# shellcheck disable=SC2046
run ossl pkeyutl -encrypt -inkey smartkey:name=kek \
    -propquery "$SMARTKEY_PROPQ" -in "$WORK/data.txt" \
    -out "$WORK/wrapped.bin" $(oaep_opts sha256) \
    -pkeyopt smartkey-wrap-subject:smartkey:name=aes
check "input with a wrap subject: fails" failed_cleanly
check "input with a wrap subject: says the input must be empty" \
    stderr_has_text "the input must be empty when smartkey-wrap-subject names a key to wrap (got 10 bytes)"
check "input with a wrap subject: no wrapkey request" \
    equals "$(wrapkey_requests)" 0

wrap -pkeyopt rsa_mgf1_md:sha1 -pkeyopt smartkey-wrap-subject:smartkey:name=aes
check "OAEP/MGF1 digest mismatch: fails" failed_cleanly
check "OAEP/MGF1 digest mismatch: refused when set" \
    stderr_has_text "Can't set parameter \"rsa_mgf1_md:sha1\""
check "OAEP/MGF1 digest mismatch: says SmartKey uses one hash" \
    stderr_has_text "OAEP digest SHA256 differs from MGF1 digest SHA1: SmartKey uses one hash for both"
check "OAEP/MGF1 digest mismatch: no wrapkey request" \
    equals "$(wrapkey_requests)" 0

# Only MGF1 given: OAEP stays SHA-1, so the effective pair differs.
counters_reset
run ossl pkeyutl -encrypt -inkey smartkey:name=kek \
    -propquery "$SMARTKEY_PROPQ" -in /dev/null -out "$WORK/wrapped.bin" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_mgf1_md:sha256 \
    -pkeyopt smartkey-wrap-subject:smartkey:name=aes
check "MGF1 digest alone (OAEP SHA-1): refused" \
    stderr_has_text "OAEP digest SHA1 differs from MGF1 digest SHA256"

timeout "$CLI_TIMEOUT" openssl pkeyutl -encrypt -pubin -inkey "$WORK/kek-pub.pem" \
    -in "$WORK/data.txt" -out "$WORK/cipher.bin" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 || fatal "stock openssl cannot encrypt"
counters_reset
run ossl pkeyutl -decrypt -inkey smartkey:name=kek -in "$WORK/cipher.bin" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
    -pkeyopt rsa_mgf1_md:sha384
check "decrypt with OAEP/MGF1 digest mismatch: refused, no request" \
    eval 'failed_cleanly && stderr_has_text "differs from MGF1 digest SHA384" &&
        [[ $(counter ".requests[\"POST /crypto/v1/decrypt\"]") == 0 ]]'

wrap -pkeyopt rsa_padding_mode:pkcs1 \
    -pkeyopt smartkey-wrap-subject:smartkey:name=aes
check "wrap with PKCS#1 v1.5 padding: refused, OAEP required" \
    stderr_has_text "server-side wrapping uses RSA-OAEP"

wrap -pkeyopt rsa_oaep_md:sha3-256 -pkeyopt smartkey-wrap-subject:smartkey:name=aes
check "digest SmartKey does not offer: refused with the list" \
    stderr_has_text "'sha3-256' is not one SmartKey's RSA OAEP offers"

wrap -pkeyopt 'smartkey-wrap-subject:smartkey:colour=blue'
check "malformed subject URI: refused, quoting it" \
    stderr_has_text "smartkey-wrap-subject 'smartkey:colour=blue'"
wrap -pkeyopt 'smartkey-wrap-subject:smartkey:name=missing'
check "unknown subject: SmartKey's 404, naming the subject" \
    stderr_line_has "wrapping smartkey:name=missing" 'HTTP 404'

# Without the property query and with default first, a key from a file
# stays in the default provider, whose cipher rejects the smartkey
# parameter: an error, never a local encryption of the empty input.
counters_reset
rm -f "$WORK/wrapped.bin"
# shellcheck disable=SC2046
run ossl pkeyutl -encrypt -pubin -inkey "$WORK/kek-pub.pem" -in /dev/null \
    -out "$WORK/wrapped.bin" $(oaep_opts sha256) \
    -pkeyopt smartkey-wrap-subject:smartkey:name=aes
check "another provider's cipher: the parameter is an error" \
    eval 'failed_cleanly &&
        stderr_has_text "Can'"'"'t set parameter \"smartkey-wrap-subject"'
check "another provider's cipher: no output, no request" \
    eval 'no_output && [[ $(counter requests_total) == 0 ]]'
finish
