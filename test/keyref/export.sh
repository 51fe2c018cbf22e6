#!/usr/bin/env bash
# Export attempts and key-reference failures say what is wrong (issue 12,
# item 9): the stock openssl commands that would write a SmartKey private
# key somewhere it cannot go say "the private key stays in SmartKey" and
# what to do instead, `ec -out` writes a key reference like `rsa -out`,
# and a wrong API key behind a key-reference file shows only the real
# cause.
# Usage: export.sh MODULE_DIR EMULATOR LEGACY_PROGRAM
source "$(dirname "$0")/lib.sh"
keyref_init "$@"
emulator_start

rsa_kid=$(create_rsa export-rsa 2048)
ec_kid=$(create_ec export-ec NistP256)
[[ -n $rsa_kid && -n $ec_kid ]] || fatal "could not create the test keys"
server_public_key export-rsa "$WORK/rsa.der"
server_public_key export-ec "$WORK/ec.der"
use_env_config

stays='the private key stays in SmartKey'
# refused_with WHAT: the run failed cleanly, and the provider's error
# (reason "cannot be exported") says the key stays in SmartKey, WHAT went
# wrong and where to go instead.
refused_with() {
    failed_cleanly &&
        grep -Eq ":error:[0-9A-F]+:smartkey:[^:]*:private key stays in SmartKey and cannot be exported:.*$stays.*$1" "$ERR" &&
        ! grep -q 'asn1 encoding routines' "$ERR"
}
no_reference_in() { ! grep -q 'SMARTKEY KEY REFERENCE' "$1" 2>/dev/null; }

run ossl pkey -in smartkey:name=export-rsa -out "$WORK/rsa.pem"
succeeded || fatal "pkey -out did not write a key reference"
run ossl req -new -x509 -key smartkey:name=export-rsa -subj /CN=export-rsa \
    -days 2 -out "$WORK/rsa.crt"
succeeded || fatal "no certificate for the RSA key"

# ---- pkcs12 -export ------------------------------------------------------
run ossl pkcs12 -export -in "$WORK/rsa.crt" -inkey smartkey:name=export-rsa \
    -passout pass:secret -out "$WORK/rsa.p12"
check "pkcs12 -export -inkey smartkey:... is refused: the key stays in SmartKey" \
    refused_with 'PKCS#12'
check "  and the message points to a key-reference file or BYOK wrapping" \
    stderr_has 'openssl pkey -in smartkey:\.\.\. -out FILE.*BYOK'
run ossl pkcs12 -export -in "$WORK/rsa.crt" -inkey "$WORK/rsa.pem" \
    -passout pass:secret -out "$WORK/rsa.p12"
check "pkcs12 -export -inkey REFERENCE-FILE is refused the same way" \
    refused_with 'PKCS#12'

# ---- pkcs8 -topk8 (it opens -in as a file: a key-reference file) ---------
run ossl pkcs8 -topk8 -in "$WORK/rsa.pem" -passout pass:secret \
    -out "$WORK/rsa.p8"
check "pkcs8 -topk8 on a key-reference file is refused: the key stays in SmartKey" \
    refused_with 'PKCS#8'
run ossl pkcs8 -topk8 -nocrypt -in "$WORK/rsa.pem" -out "$WORK/rsa.p8"
check "pkcs8 -topk8 -nocrypt too" refused_with 'PKCS#8'

# ---- a cipher on a key-reference file ------------------------------------
run ossl pkey -in smartkey:name=export-rsa -aes256 -passout pass:secret \
    -out "$WORK/rsa-aes.pem"
check "pkey -aes256 refuses instead of writing an unencrypted reference" \
    refused_with 'cannot be written encrypted \(cipher AES-256-CBC'
check "  and writes no key reference" no_reference_in "$WORK/rsa-aes.pem"
run ossl rsa -in smartkey:name=export-rsa -aes128 -passout pass:secret \
    -out "$WORK/rsa-aes.pem"
check "rsa -aes128 refuses too" refused_with 'cannot be written encrypted'
run ossl ec -in smartkey:name=export-ec -aes256 -passout pass:secret \
    -out "$WORK/ec-aes.pem"
check "ec -aes256 refuses too" refused_with 'cannot be written encrypted'
check "  and writes no key reference" no_reference_in "$WORK/ec-aes.pem"

# ---- ec -out writes a reference like rsa -out ----------------------------
run ossl ec -in smartkey:name=export-ec -out "$WORK/ec.pem"
check "ec -in smartkey:... -out writes a file" succeeded
check "  holding a key reference" \
    grep -q '^-----BEGIN SMARTKEY KEY REFERENCE-----$' "$WORK/ec.pem"
check "  that loads as the SmartKey key" \
    pubout_matches "$WORK/ec.pem" "$WORK/ec.der"
run ossl rsa -in smartkey:name=export-rsa -out "$WORK/rsa-rsa.pem"
check "rsa -out still writes the same reference as pkey -out" \
    same_bytes "$WORK/rsa.pem" "$WORK/rsa-rsa.pem"
run ossl pkey -in smartkey:name=export-ec -out "$WORK/ec-pkey.pem"
check "ec -out and pkey -out write the same reference" \
    same_bytes "$WORK/ec.pem" "$WORK/ec-pkey.pem"
run ossl ec -in smartkey:name=export-ec -outform DER -out "$WORK/ec.der-ref"
check "ec -outform DER writes the reference as DER" \
    same_bytes "$WORK/ec.der-ref" <(pem_to_der "$WORK/ec.pem" /dev/stdout)
run ossl pkey -in smartkey:name=export-ec -outform DER -out "$WORK/ec.der-ref2"
check "pkey -outform DER still writes the DER reference" \
    same_bytes "$WORK/ec.der-ref" "$WORK/ec.der-ref2"

# ---- a wrong API key behind a key-reference file -------------------------
counters_reset
run env SMARTKEY_API_KEY=d3Jvbmcta2V5 timeout "$CLI_TIMEOUT" openssl pkey \
    -provider-path "$MODULE_DIR" -provider default -provider smartkey \
    -in "$WORK/rsa.pem" -pubout
check "a wrong API key with a key-reference file fails" failed_cleanly
check "  naming the real cause" stderr_has 'SmartKey rejected the API key'
check "  and nothing misleading (no 'no such key')" \
    stderr_lacks_text 'no such key'
# A key deleted since the file was written: the file is named as the
# cause, with the fix.
rest DELETE "/crypto/v1/keys/$ec_kid" >/dev/null ||
    fatal "could not delete the EC key"
run ossl pkey -in "$WORK/ec.pem" -pubout
check "a reference to a deleted key fails" failed_cleanly
check "  saying SmartKey does not know the key and how to write a new file" \
    stderr_has "no such key in SmartKey:.*the key reference names EC key 'export-ec'.*write a new reference"

finish
