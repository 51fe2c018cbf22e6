#!/usr/bin/env bash
# BYOK artifacts that cannot be made are refused with a message naming the
# cause, before any request when smartkey can tell locally; SmartKey's own
# refusals (a key without EXPORT) name the step that failed. Nothing is
# ever produced locally instead.
# Usage: errors.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
find_python
cli_start "$1" "$2"

local_rsa_key "$WORK/cloud.pem" "$WORK/cloud-pub.pem"
openssl rand -out "$WORK/aes.bin" 32
import_key Cloud-Secret-Key AES "$WORK/aes.bin" >/dev/null ||
    fatal "cannot import the AES key"
create_aes Locked 256 0 >/dev/null || fatal "cannot create the locked key"
PEM="-pubin -inkey $WORK/cloud-pub.pem"
KID=https://contoso.vault.azure.net/keys/kek/1

no_request_sent() { equals "$(counter requests_total)" 0; }
no_output() { [[ ! -s $WORK/artifact ]]; }

# refused_locally WHAT REGEX HASH SUBJECT FORMAT [-pkeyopt ...]
refused_locally() {
    local what=$1 regex=$2
    shift 2
    counters_reset
    byok_artifact "$WORK/artifact" "$PEM" "$@"
    check "$what: fails cleanly" failed_cleanly
    check "$what: says why" stderr_has "$regex"
    check "$what: no request sent" no_request_sent
    check "$what: no output" no_output
}

refused_locally "azure-byok without the KEK id" \
    'azure-byok needs smartkey-wrap-kid' sha1 Cloud-Secret-Key azure-byok
refused_locally "JWE with OAEP-SHA256" \
    'jwe uses RSA-OAEP with SHA-1' sha256 Cloud-Secret-Key jwe \
    -pkeyopt smartkey-wrap-kid:k1
refused_locally "base64 of a JSON document" \
    'azure-byok is a text document' sha1 Cloud-Secret-Key azure-byok \
    -pkeyopt "smartkey-wrap-kid:$KID" -pkeyopt smartkey-wrap-encoding:base64
refused_locally "an unknown format" \
    "smartkey-wrap-format 'gcp' is not one of rsa-oaep, rsa-aes-key-wrap" \
    sha1 Cloud-Secret-Key gcp

counters_reset
rm -f "$WORK/artifact"
run ossl pkeyutl -encrypt $PEM -propquery "$SMARTKEY_PROPQ" -in /dev/null \
    -out "$WORK/artifact" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt smartkey-wrap-format:rsa-aes-key-wrap
check "a format without a subject: fails cleanly" failed_cleanly
check "a format without a subject: names smartkey-wrap-subject" \
    stderr_has 'rsa-aes-key-wrap needs smartkey-wrap-subject'
check "a format without a subject: no request sent" no_request_sent

counters_reset
rm -f "$WORK/artifact"
# shellcheck disable=SC2046
run ossl pkeyutl -encrypt $PEM -propquery "$SMARTKEY_PROPQ" \
    -in "$WORK/aes.bin" -out "$WORK/artifact" $(oaep_opts sha1) \
    -pkeyopt 'smartkey-wrap-subject:smartkey:name=Cloud-Secret-Key' \
    -pkeyopt smartkey-wrap-format:rsa-aes-key-wrap
check "a format with input bytes: fails cleanly" failed_cleanly
check "a format with input bytes: asks for empty input" \
    stderr_has 'the input must be empty'
check "a format with input bytes: no output" no_output

counters_reset
rm -f "$WORK/artifact"
run ossl pkeyutl -encrypt $PEM -propquery "$SMARTKEY_PROPQ" -in /dev/null \
    -out "$WORK/artifact" \
    -pkeyopt 'smartkey-wrap-subject:smartkey:name=Cloud-Secret-Key' \
    -pkeyopt smartkey-wrap-format:rsa-aes-key-wrap
check "a format without OAEP: fails cleanly" failed_cleanly
check "a format without OAEP: asks for OAEP" \
    stderr_has 'add -pkeyopt rsa_padding_mode:oaep'
check "a format without OAEP: no request sent" no_request_sent

# Without the property query the default provider's cipher is picked for a
# key from a file, and it refuses smartkey's parameters.
rm -f "$WORK/artifact"
run ossl pkeyutl -encrypt $PEM -in /dev/null -out "$WORK/artifact" \
    -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt 'smartkey-wrap-subject:smartkey:name=Cloud-Secret-Key' \
    -pkeyopt smartkey-wrap-format:rsa-aes-key-wrap
check "another provider's cipher: fails cleanly" failed_cleanly
check "another provider's cipher: refuses the parameter" \
    stderr_has "Can't set parameter"
check "another provider's cipher: no output" no_output

# SmartKey refuses to wrap a key without EXPORT; the message names the
# step and SmartKey's reason, and no transient key outlives the session.
objects=$(key_count)
counters_reset
byok_artifact "$WORK/artifact" "$PEM" sha256 Locked rsa-aes-key-wrap
check "a key without EXPORT: fails cleanly" failed_cleanly
check "a key without EXPORT: names the step and SmartKey's reason" \
    stderr_has 'wrapping the key under the transient AES key.*EXPORT'
check "a key without EXPORT: no output" no_output
check "a key without EXPORT: no object persisted" \
    equals "$(key_count)" "$objects"
counters_reset
byok_artifact "$WORK/artifact" "$PEM" sha256 Locked sha256
check "hash of a key without EXPORT: refused by SmartKey" \
    stderr_has 'keys/digest.*EXPORT'
check "hash of a key without EXPORT: no output" no_output
# A transient key is lost when SmartKey renews the session between two
# calls (404): the sequence runs once more, once; a second loss is an error.
# wrap_losing_transient_keys N: the next N wrapkey calls answer 404, then a
# Cloud-Secret-Key artifact is made with the counters reset.
wrap_losing_transient_keys() {
    control POST /_emulator/faults "{\"path\": \"/crypto/v1/wrapkey\",
        \"count\": $1, \"action\": \"status\", \"status\": 404}" >/dev/null
    counters_reset
    byok_artifact "$WORK/artifact" "$PEM" sha256 Cloud-Secret-Key \
        rsa-aes-key-wrap
}
wrap_losing_transient_keys 1
check "a lost transient key: the sequence is run again" succeeded
check "a lost transient key: two transient keys, three wraps" \
    equals "$(counter '.requests["POST /crypto/v1/keys"]'),$(counter \
        '.requests["POST /crypto/v1/wrapkey"]')" "2,3"
check "a lost transient key: the artifact verifies" \
    verify rsa-aes "$WORK/cloud.pem" "$WORK/artifact" "$WORK/aes.bin" \
    --hash sha256
wrap_losing_transient_keys 2
check "a transient key lost twice: fails cleanly" failed_cleanly
check "a transient key lost twice: tried twice only" \
    equals "$(counter '.requests["POST /crypto/v1/wrapkey"]')" 2
control DELETE /_emulator/faults >/dev/null

# RSA and EC subjects: rsa-oaep cannot carry them (one OAEP block), jwe and
# sha256 are for AES and SECRET keys; each says so and points to
# rsa-aes-key-wrap, and nothing is written.
make_asymmetric_targets || fatal "cannot make the RSA and EC subjects"
import_key Target-RSA RSA "$WORK/rsa.p8" >/dev/null &&
    import_key Target-EC EC "$WORK/ec.p8" NistP256 >/dev/null ||
    fatal "cannot import the RSA and EC subjects"
declare -A kind=([Target-RSA]="an RSA" [Target-EC]="an EC")
for subject in Target-RSA Target-EC; do
    byok_artifact "$WORK/artifact" "$PEM" sha256 "$subject" rsa-oaep
    check "rsa-oaep of $subject: fails cleanly" failed_cleanly
    check "rsa-oaep of $subject: points to rsa-aes-key-wrap" \
        stderr_has_text "smartkey-wrap-format rsa-oaep: smartkey:name=$subject is ${kind[$subject]} private key, which does not fit in one RSA-OAEP block; use -pkeyopt smartkey-wrap-format:rsa-aes-key-wrap"
    check "rsa-oaep of $subject: no advice to wrap with an AES key" \
        stderr_lacks_text 'wrap it with an AES key'
    check "rsa-oaep of $subject: no output" no_output

    byok_artifact "$WORK/artifact" "$PEM" sha1 "$subject" jwe \
        -pkeyopt smartkey-wrap-kid:k1
    check "jwe of $subject: fails cleanly" failed_cleanly
    check "jwe of $subject: says jwe is for AES/SECRET keys" \
        stderr_has_text "smartkey-wrap-format jwe carries an AES or SECRET key; smartkey:name=$subject is ${kind[$subject]} key: nothing was made. For an RSA or EC private key use -pkeyopt smartkey-wrap-format:rsa-aes-key-wrap"
    check "jwe of $subject: no output" no_output

    byok_artifact "$WORK/artifact" "$PEM" sha1 "$subject" \
        salesforce-cache-only -pkeyopt smartkey-wrap-kid:k1
    check "salesforce-cache-only of $subject: refused the same way" \
        stderr_has_text "smartkey-wrap-format salesforce-cache-only carries an AES or SECRET key"
    check "salesforce-cache-only of $subject: no output" no_output

    byok_artifact "$WORK/artifact" "$PEM" sha1 "$subject" sha256
    check "sha256 of $subject: fails cleanly" failed_cleanly
    check "sha256 of $subject: says what would be hashed" \
        stderr_has_text "smartkey-wrap-format sha256 hashes the value of an AES or SECRET key (hash files); smartkey:name=$subject is ${kind[$subject]} key, whose SHA-256 in SmartKey would be of its PKCS#1/SEC1 form, not of the PKCS#8 a wrap carries: nothing was made"
    check "sha256 of $subject: no output" no_output
done

check "nothing was exported in the clear" equals "$(counter exports)" 0
finish
