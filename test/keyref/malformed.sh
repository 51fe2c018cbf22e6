#!/usr/bin/env bash
# Damaged or foreign key-reference files fail with an error that says
# what is wrong, never a crash, a hang or a key other than the named one.
# Usage: malformed.sh MODULE_DIR EMULATOR LEGACY_PROGRAM
source "$(dirname "$0")/lib.sh"
keyref_init "$@"
emulator_start

rsa_kid=$(create_rsa bad-rsa 2048)
[[ -n $rsa_kid ]] || fatal "could not create the test key in the emulator"
use_env_config
run ossl pkey -in smartkey:name=bad-rsa -out "$WORK/good.pem"
[[ $RC -eq 0 ]] || fatal "could not write a reference file"

label="SMARTKEY KEY REFERENCE"

# ref_file NAME: writes $WORK/NAME.pem with the DER read from stdin.
ref_file() {
    {
        echo "-----BEGIN $label-----"
        openssl base64
        echo "-----END $label-----"
    } >"$WORK/$1.pem"
}

# der_of VERSION TYPE KID [NAME]: the DER of a reference, built with
# openssl asn1parse -genconf (independent of the provider's encoder).
der_of() {
    {
        echo "asn1 = SEQUENCE:ref"
        echo "[ref]"
        echo "version = INTEGER:$1"
        echo "type = UTF8String:$2"
        echo "kid = UTF8String:$3"
        [[ -n ${4:-} ]] && echo "name = EXPLICIT:0,UTF8String:$4"
    } >"$WORK/genconf"
    openssl asn1parse -genconf "$WORK/genconf" -noout -out /dev/stdout
}

# fails_clearly FILE REGEX: loading FILE fails (no crash/timeout) and some
# stderr line matches REGEX.
fails_clearly() {
    run ossl pkey -in "$1" -pubout
    failed_cleanly && stderr_has "$2"
}

# The genconf-built DER of the good key must load: it proves the tests
# below change one thing only.
der_of 1 RSA "$rsa_kid" bad-rsa | ref_file rebuilt
check "a reference built independently loads" \
    pubout_matches "$WORK/rebuilt.pem" <(server_public_key bad-rsa /dev/stdout)

printf 'not base64 at all !!!\n' | {
    echo "-----BEGIN $label-----"
    cat
    echo "-----END $label-----"
} >"$WORK/garbage.pem"
run ossl pkey -in "$WORK/garbage.pem" -pubout
check "a block that is not base64 fails cleanly" failed_cleanly

head -c 20 <(pem_to_der "$WORK/good.pem" /dev/stdout) | ref_file truncated
check "truncated DER is refused as a malformed reference" \
    fails_clearly "$WORK/truncated.pem" 'malformed SmartKey key reference'

{
    pem_to_der "$WORK/good.pem" /dev/stdout
    printf 'xx'
} | ref_file trailing
check "trailing bytes are refused" \
    fails_clearly "$WORK/trailing.pem" 'not DER of a SmartKey key reference'

der_of 2 RSA "$rsa_kid" | ref_file version2
check "an unknown version is refused, naming the version" \
    fails_clearly "$WORK/version2.pem" 'version is not 1'

der_of 1 DSA "$rsa_kid" | ref_file dsa
check "an unknown key type is refused" \
    fails_clearly "$WORK/dsa.pem" 'not RSA, EC or ED25519'

der_of 1 RSA "not-a-uuid" | ref_file badkid
check "a kid that is not a UUID is refused" \
    fails_clearly "$WORK/badkid.pem" 'kid is not a UUID'

counters_reset
der_of 1 RSA 01234567-89ab-cdef-0123-456789abcdef gone | ref_file unknown
check "a key SmartKey does not have is refused, naming the kid" \
    fails_clearly "$WORK/unknown.pem" '01234567-89ab-cdef-0123-456789abcdef'
check "  with SmartKey's answer" stderr_has 'no such key|404|not found'
check "  after one lookup, no retry loop" \
    at_most "$(counter '.requests["POST /crypto/v1/keys/info"]')" 1

der_of 1 EC "$rsa_kid" bad-rsa | ref_file wrongtype
check "a reference whose type differs from the key in SmartKey is refused" \
    fails_clearly "$WORK/wrongtype.pem" 'unlike what the key reference says'

: >"$WORK/empty-block.pem"
printf -- '-----BEGIN %s-----\n-----END %s-----\n' "$label" "$label" \
    >"$WORK/empty-block.pem"
run ossl pkey -in "$WORK/empty-block.pem" -pubout
check "an empty block fails cleanly" failed_cleanly

head -c 200000 /dev/zero | ref_file huge
run ossl pkey -in "$WORK/huge.pem" -pubout
check "a huge block fails cleanly" failed_cleanly

# The legacy path reports the same reasons.
config_only_activation
run "$LEGACY" pem "$WORK/version2.pem"
check "PEM_read_PrivateKey reports the malformed reference" failed_cleanly
check "  with the provider's reason" stderr_has 'version is not 1'
run "$LEGACY" pem "$WORK/unknown.pem"
check "PEM_read_PrivateKey names a key SmartKey does not have" \
    stderr_has '01234567-89ab-cdef-0123-456789abcdef'
run "$LEGACY" pem "$WORK/good.pem"
check "a good reference still loads afterwards" stdout_has_text "loaded RSA"

finish
