#!/usr/bin/env bash
# Sign/verify (docs/smartkey-api.md §4.3): RSA PKCS#1 v1.5 and PSS, ECDSA on the
# NIST curves, hash and data forms; signatures checked with stock openssl.
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth

openssl rand 1000 >"$WORK/data.bin"
DATA=$(b64_file "$WORK/data.bin")
hash_of() { openssl dgst -"$(ossl_md "$1")" -binary "$WORK/data.bin" | base64 -w0; }
# sign_req KID HASH_ALG FORM [MODE]: a SignRequest in the hash or data form.
sign_req() {
    local kid=$1 md=$2 form=$3 mode=${4:-}
    local value=$DATA
    [[ $form == hash ]] && value=$(hash_of "$md")
    printf '{"key":{"kid":"%s"},"hash_alg":"%s","%s":"%s"%s}' \
        "$kid" "$md" "$form" "$value" "${mode:+,\"mode\":$mode}"
}
# ossl_verify PUBPEM MD SIGFILE [sigopts...]: openssl dgst -verify of data.bin.
ossl_verify() {
    local pub=$1 md=$2 sig=$3
    shift 3
    openssl dgst -"$(ossl_md "$md")" -verify "$pub" -signature "$sig" "$@" \
        "$WORK/data.bin" >/dev/null 2>&1
}
# -- RSA ------------------------------------------------------------------------
generate_key '{"name":"rsa-sign","obj_type":"RSA","key_size":2048,"key_ops":["SIGN","VERIFY","EXPORT"]}'
check_status "generate RSA signing key" 201
RSA_KID=$KID
save_public "$WORK/rsa-pub.pem"
export_value "$RSA_KID" "$WORK/rsa.der"
openssl pkey -inform DER -in "$WORK/rsa.der" -out "$WORK/rsa.pem"

for md in SHA1 SHA256 SHA384 SHA512; do
    for form in hash data; do
        api POST /crypto/v1/sign "$(sign_req "$RSA_KID" $md $form '{"PKCS1_V15":{}}')"
        check_status "RSA PKCS1_V15 $md ($form) sign answers 200" 200
        check_eq "sign echoes the kid" "$RSA_KID" "$(field kid)"
        unb64 "$(field signature)" "$WORK/sig"
        check "RSA PKCS1_V15 $md ($form): openssl dgst -verify accepts it" \
            ossl_verify "$WORK/rsa-pub.pem" $md "$WORK/sig"
        openssl dgst -"$(ossl_md $md)" -sign "$WORK/rsa.pem" \
            -out "$WORK/ossl.sig" "$WORK/data.bin"
        check "RSA PKCS1_V15 $md ($form) equals openssl's signature byte for byte" \
            cmp -s "$WORK/sig" "$WORK/ossl.sig"

        api POST /crypto/v1/sign "$(sign_req "$RSA_KID" $md $form "$(pss $md)")"
        check_status "RSA PSS $md ($form) sign answers 200" 200
        unb64 "$(field signature)" "$WORK/sig"
        check_eq "RSA PSS signature is modulus-length" 256 \
            "$(stat -c %s "$WORK/sig")"
        check "RSA PSS $md ($form): openssl verifies with salt = digest length" \
            ossl_verify "$WORK/rsa-pub.pem" $md "$WORK/sig" \
            -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
    done
done

# hash form checked with pkeyutl too (the way a provider hands over a digest)
openssl dgst -sha256 -binary "$WORK/data.bin" >"$WORK/h256"
api POST /crypto/v1/sign "$(sign_req "$RSA_KID" SHA256 hash "$(pss SHA256)")"
unb64 "$(field signature)" "$WORK/sig"
check "RSA PSS SHA256: openssl pkeyutl -verify accepts it" \
    eval 'openssl pkeyutl -verify -pubin -inkey "$WORK/rsa-pub.pem" -in "$WORK/h256" -sigfile "$WORK/sig" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest >/dev/null 2>&1'

check_statuses \
    "400|RSA sign with a hash of the wrong length is refused with 400|POST|/crypto/v1/sign|{\"key\":{\"kid\":\"$RSA_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$(b64_str short)\",\"mode\":{\"PKCS1_V15\":{}}}" \
    "400|sign with both hash and data is refused with 400|POST|/crypto/v1/sign|{\"key\":{\"kid\":\"$RSA_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$(hash_of SHA256)\",\"data\":\"$DATA\",\"mode\":{\"PKCS1_V15\":{}}}" \
    "400|sign with neither hash nor data is refused with 400|POST|/crypto/v1/sign|{\"key\":{\"kid\":\"$RSA_KID\"},\"hash_alg\":\"SHA256\",\"mode\":{\"PKCS1_V15\":{}}}" \
    "400|sign without hash_alg is refused with 400|POST|/crypto/v1/sign|{\"key\":{\"kid\":\"$RSA_KID\"},\"hash\":\"$(hash_of SHA256)\",\"mode\":{\"PKCS1_V15\":{}}}" \
    "400|sign with an unknown hash_alg is refused with 400|POST|/crypto/v1/sign|{\"key\":{\"kid\":\"$RSA_KID\"},\"hash_alg\":\"SHA257\",\"hash\":\"$(hash_of SHA256)\",\"mode\":{\"PKCS1_V15\":{}}}"

# Wildcard signature policy: an omitted mode resolves to PKCS#1 v1.5 (§4.1).
api POST /crypto/v1/sign "$(sign_req "$RSA_KID" SHA256 hash)"
check_status "RSA sign without mode answers 200" 200
unb64 "$(field signature)" "$WORK/sig"
check "RSA sign without mode under a wildcard policy is PKCS1_V15" \
    ossl_verify "$WORK/rsa-pub.pem" SHA256 "$WORK/sig"

generate_key '{"name":"rsa-pss-only","obj_type":"RSA","key_size":2048,"key_ops":["SIGN","VERIFY"],"rsa":{"signature_policy":[{"padding":{"PSS":{}}}]}}'
check_status "generate RSA with a PSS-only signature policy" 201
PSS_ONLY=$KID
save_public "$WORK/pss-pub.pem"
check_statuses \
    "400|PKCS1_V15 sign is refused by a PSS-only policy (400)|POST|/crypto/v1/sign|$(sign_req "$PSS_ONLY" SHA256 hash '{"PKCS1_V15":{}}')" \
    "200|PSS sign is allowed by a PSS-only policy|POST|/crypto/v1/sign|$(sign_req "$PSS_ONLY" SHA384 hash "$(pss SHA384)")" \
    "200|RSA sign without mode under a PSS policy answers 200|POST|/crypto/v1/sign|$(sign_req "$PSS_ONLY" SHA256 hash)"
unb64 "$(field signature)" "$WORK/sig"
check "omitted mode under a bare PSS policy is PSS MGF1-SHA256" \
    ossl_verify "$WORK/pss-pub.pem" SHA256 "$WORK/sig" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -sigopt rsa_mgf1_md:sha256

# -- RSA verify -------------------------------------------------------------------
openssl dgst -sha256 -sign "$WORK/rsa.pem" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:digest -out "$WORK/ossl-pss.sig" "$WORK/data.bin"
verify_pss=$(jq -c --arg s "$(b64_file "$WORK/ossl-pss.sig")" '. + {signature:$s}' \
    <<<"$(sign_req "$RSA_KID" SHA256 hash "$(pss SHA256)")")
api POST /crypto/v1/verify "$verify_pss"
check_status "verify of an openssl PSS signature answers 200" 200
check "verify of an openssl PSS signature is true" json_is '.result == true'
check_eq "verify echoes the kid" "$RSA_KID" "$(field kid)"
openssl dgst -sha384 -sign "$WORK/rsa.pem" -out "$WORK/ossl-v15.sig" "$WORK/data.bin"
api POST /crypto/v1/verify "$(jq -c --arg s "$(b64_file "$WORK/ossl-v15.sig")" '. + {signature:$s}' \
    <<<"$(sign_req "$RSA_KID" SHA384 data '{"PKCS1_V15":{}}')")"
check "verify (data form) of an openssl PKCS1_V15 signature is true" \
    json_is '.result == true'
api POST /crypto/v1/verify "$(jq -c --arg s "$(b64_file "$WORK/ossl-v15.sig")" '. + {signature:$s}' \
    <<<"$(sign_req "$RSA_KID" SHA384 data "$(pss SHA384)")")"
check_status "verify with the wrong padding answers 200" 200
check "verify with the wrong padding is false" json_is '.result == false'
printf 'x' | dd of="$WORK/ossl-pss.sig" bs=1 seek=10 conv=notrunc 2>/dev/null
api POST /crypto/v1/verify "$(jq -c --arg s "$(b64_file "$WORK/ossl-pss.sig")" '.signature=$s' <<<"$verify_pss")"
check_status "verify of a corrupted signature answers 200" 200
check "verify of a corrupted signature is false" json_is '.result == false'

import_key "{\"name\":\"rsa-pub-only\",\"obj_type\":\"RSA\",\"value\":\"$(openssl pkey -pubin -in "$WORK/rsa-pub.pem" -outform DER | base64 -w0)\",\"key_ops\":[\"VERIFY\"]}"
PUB_KID=$KID
api POST /crypto/v1/verify "$(jq -c --arg k "$PUB_KID" '.key.kid=$k' <<<"$verify_pss" |
    jq -c --arg s "$(openssl dgst -sha256 -sign "$WORK/rsa.pem" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest "$WORK/data.bin" | base64 -w0)" '.signature=$s')"
check "verify with a public-only key is true" json_is '.result == true'
api POST /crypto/v1/sign "$(sign_req "$PUB_KID" SHA256 hash '{"PKCS1_V15":{}}')"
check_status "sign with a public-only key is refused with 403" 403

generate_key '{"name":"rsa-nosign","obj_type":"RSA","key_size":2048,"key_ops":["ENCRYPT","DECRYPT"]}'
api POST /crypto/v1/sign "$(sign_req "$KID" SHA256 hash '{"PKCS1_V15":{}}')"
check_status "sign with a key without SIGN is refused with 403" 403
check "403 text says the operation is not allowed" \
    grep -q 'Requested operation is not allowed' <<<"$BODY"

# -- ECDSA ------------------------------------------------------------------------
declare -A curve_md=([NistP256]=SHA256 [NistP384]=SHA384 [NistP521]=SHA512)
for curve in NistP256 NistP384 NistP521; do
    md=${curve_md[$curve]}
    generate_key "{\"name\":\"ec-$curve\",\"obj_type\":\"EC\",\"elliptic_curve\":\"$curve\"}"
    check_status "generate EC $curve" 201
    EC_KID=$KID
    save_public "$WORK/ec-pub.pem"
    for form in hash data; do
        api POST /crypto/v1/sign "$(sign_req "$EC_KID" $md $form)"
        check_status "ECDSA $curve $md ($form) sign answers 200" 200
        unb64 "$(field signature)" "$WORK/sig"
        check "ECDSA $curve signature is DER SEQUENCE{r,s}" \
            eval 'openssl asn1parse -inform DER -in "$WORK/sig" | grep -c "prim: INTEGER" | grep -qx 2'
        check "ECDSA $curve $md ($form): openssl dgst -verify accepts it" \
            ossl_verify "$WORK/ec-pub.pem" $md "$WORK/sig"
    done
    api POST /crypto/v1/verify "$(jq -c --arg s "$(b64_file "$WORK/sig")" '. + {signature:$s}' <<<"$(sign_req "$EC_KID" $md hash)")"
    check "ECDSA $curve verify of its own signature is true" json_is '.result == true'
    api POST /crypto/v1/verify "$(jq -c --arg s "$(b64_file "$WORK/sig")" '. + {signature:$s}' <<<"$(sign_req "$EC_KID" SHA1 hash)")"
    check "ECDSA $curve verify against another hash is false" json_is '.result == false'
done
check_statuses \
    "200|ECDSA P-521 with a SHA256 hash (any hash_alg) answers 200|POST|/crypto/v1/sign|$(sign_req "$EC_KID" SHA256 hash)" \
    "400|sign with mode on an EC key is refused with 400|POST|/crypto/v1/sign|$(sign_req "$EC_KID" SHA512 hash '{"PKCS1_V15":{}}')" \
    "400|ECDSA with a hash of the wrong length is refused with 400|POST|/crypto/v1/sign|{\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA512\",\"hash\":\"$(hash_of SHA256)\"}"

generate_key '{"name":"aes-nosign","obj_type":"AES","key_size":128}'
api POST /crypto/v1/sign "$(sign_req "$KID" SHA256 hash)"
check "sign with an AES key is refused (400/403)" \
    eval '[[ "$STATUS" == 400 || "$STATUS" == 403 ]]'
api POST /crypto/v1/sign "$(sign_req 00000000-0000-4000-8000-000000000000 SHA256 hash)"
check_status "sign with an unknown kid answers 404" 404

finish
