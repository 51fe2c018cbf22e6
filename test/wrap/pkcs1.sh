#!/usr/bin/env bash
# PKCS#1 v1.5 decryption (issue 12, items 6 and 9): like the default
# provider of the running OpenSSL, a bad padding is an error on 3.0 and an
# implicit rejection on 3.2+ (a deterministic pseudo-random message of a
# valid length, twice the same; an error again with implicit-rejection 0);
# the TLS 1.2 RSA key exchange works through s_server and never reports a
# bad block (pkcs1_tls.c); a key whose policy refuses PKCS#1 v1.5 says so
# in words, on the error queue and, for cms and TLS which hide errors, in
# one error line per key on stderr.
# Usage: pkcs1.sh MODULE_DIR EMULATOR PKCS1_TLS_PROGRAM
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../sign/lib.sh"
program=${3:?usage: $0 MODULE_DIR EMULATOR PKCS1_TLS_PROGRAM}
sign_test_start "$1" "$2"

refusal="SmartKey's policy for this key does not allow PKCS#1 v1.5 decryption"
implicit=0
[[ $(openssl version -v) =~ OpenSSL\ 3\.([0-9]+) ]] &&
    ((BASH_REMATCH[1] >= 2)) && implicit=1
echo "# $(openssl version -v): implicit rejection expected: $implicit"

ops='["SIGN", "VERIFY", "ENCRYPT", "DECRYPT", "APPMANAGEABLE"]'
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/p1.pem" 2>/dev/null &&
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$WORK/strict.pem" 2>/dev/null || fatal "cannot make RSA keys"
import_rsa_pair p1 "$WORK/p1.pem" "$ops" \
    '[{"padding": {"OAEP": {}}}, {"padding": {"PKCS1_V15": {}}}]' \
    >/dev/null &&
    strict_kid=$(import_rsa_pair strict "$WORK/strict.pem" "$ops") ||
    fatal "cannot import the keys into the emulator"

head -c 32 /dev/urandom >"$WORK/secret.bin"
openssl pkeyutl -encrypt -inkey "$WORK/p1.pem" -in "$WORK/secret.bin" \
    -pkeyopt rsa_padding_mode:pkcs1 -out "$WORK/good.bin" &&
    # raw blocks 00 01 ...: no encryption padding inside
    for n in 1 2; do
        { printf '\000\001'; head -c 254 /dev/urandom; } >"$WORK/block$n.bin"
        openssl pkeyutl -encrypt -inkey "$WORK/p1.pem" \
            -in "$WORK/block$n.bin" -pkeyopt rsa_padding_mode:none \
            -out "$WORK/bad$n.bin" || exit 1
    done || fatal "cannot make the ciphertexts"

decrypt() { # IN OUT [options]
    local in=$1 out=$2
    shift 2
    run ossl pkeyutl -decrypt -inkey smartkey:name=p1 -in "$in" -out "$out" \
        -pkeyopt rsa_padding_mode:pkcs1 "$@"
}

decrypt "$WORK/good.bin" "$WORK/good.out"
check "a good PKCS#1 v1.5 block gives the plaintext" \
    eval 'succeeded && same_bytes "$WORK/good.out" "$WORK/secret.bin"'

decrypt "$WORK/bad1.bin" "$WORK/bad1.out"
if ((implicit)); then
    check "a bad block: implicit rejection succeeds (OpenSSL >= 3.2)" \
        succeeded
    check "the synthetic message fits PKCS#1 v1.5 (at most k - 11 bytes)" \
        at_most "$(stat -c %s "$WORK/bad1.out")" 245
    decrypt "$WORK/bad1.bin" "$WORK/bad1-again.out"
    check "the same bad block gives the same message" \
        eval 'succeeded && same_bytes "$WORK/bad1.out" "$WORK/bad1-again.out"'
    decrypt "$WORK/bad2.bin" "$WORK/bad2.out"
    check "another bad block gives another message" \
        eval 'succeeded && ! same_bytes "$WORK/bad1.out" "$WORK/bad2.out"'
    decrypt "$WORK/bad1.bin" "$WORK/explicit.out" \
        -pkeyopt rsa_pkcs1_implicit_rejection:0
    check "with implicit-rejection 0 a bad block is an error" failed_cleanly
else
    check "a bad block is an error (OpenSSL 3.0/3.1: explicit rejection)" \
        failed_cleanly
fi

# the key's policy allows OAEP only
openssl pkeyutl -encrypt -inkey "$WORK/strict.pem" -in "$WORK/secret.bin" \
    -pkeyopt rsa_padding_mode:pkcs1 -out "$WORK/strict.bin" ||
    fatal "cannot make the ciphertexts"
run ossl pkeyutl -decrypt -inkey smartkey:name=strict -in "$WORK/strict.bin" \
    -pkeyopt rsa_padding_mode:pkcs1
check "PKCS#1 v1.5 refused by the key's policy fails" failed_cleanly
check "the error says the policy refuses PKCS#1 v1.5, for which key" \
    stderr_has_text "key 'strict' ($strict_kid): $refusal"
check "and how to fix it" \
    stderr_has_text 'add {"padding":{"PKCS1_V15":{}}} to the key'"'"'s RSA encryption_policy'

# cms clears the error queue after a failed decryption: the line on stderr
run openssl req -new -x509 -key "$WORK/strict.pem" -subj /CN=strict -days 2 \
    -out "$WORK/strict.crt"
run openssl cms -encrypt -aes256 -in "$WORK/secret.bin" \
    -out "$WORK/strict.cms" "$WORK/strict.crt"
succeeded || fatal "cannot make the CMS message"
run ossl cms -decrypt -in "$WORK/strict.cms" -recip "$WORK/strict.crt" \
    -inkey smartkey:name=strict -out "$WORK/cms.out"
check "cms -decrypt with a key refusing PKCS#1 v1.5 fails" failed_cleanly
check "cms -decrypt says why on stderr" stderr_has_text "$refusal"

# TLS 1.2 with the RSA key exchange (static RSA)
# static_rsa_handshake NAME CERT N: s_server with the SmartKey key NAME and a
# new self-signed CERT over TLS 1.2, accepting N connections, and one static
# RSA handshake with it.
static_rsa_handshake() {
    self_signed "$1" "$2" || fatal "no certificate for $1"
    server_start "smartkey:name=$1" "$2" "$3" -tls1_2 ||
        fatal "s_server did not start: $(cat "$WORK/server.err")"
    handshake "$2" -tls1_2 -cipher AES128-SHA256
}
static_rsa_handshake p1 "$WORK/p1.crt" 1
check "TLS 1.2 static RSA (AES128-SHA256) with the SmartKey key completes" \
    succeeded
check "the RSA key exchange was used" stderr_has '^Ciphersuite: AES128-SHA256'
server_stop

static_rsa_handshake strict "$WORK/strict-server.crt" 2
check "static RSA with a key refusing PKCS#1 v1.5: the handshake fails" \
    failed_cleanly
handshake "$WORK/strict-server.crt" -tls1_2 -cipher AES128-SHA256
server_stop
check "the server logs why, once for the key, without SMARTKEY_DEBUG" \
    equals "$(grep -c "^smartkey: error: .*$refusal" "$WORK/server.err")" 1

# the pre-master secret through the EVP API as libssl asks for it
export SMARTKEY_TEST_ENDPOINT=$ENDPOINT SMARTKEY_TEST_CA=$CA_FILE \
    SMARTKEY_TEST_API_KEY_FILE=$API_KEY_FILE SMARTKEY_TEST_STATE=$STATE
run timeout 120 "$program" "$MODULE_DIR" smartkey:name=p1 "$WORK/p1.pem"
cat "$OUT"
check "the TLS pre-master checks pass" succeeded
finish
