#!/usr/bin/env bash
# Batch sign/verify/encrypt/decrypt (docs/smartkey-api.md §4.6): per-item status with a
# mix of good and bad items; good items checked with stock openssl.
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth

item() { jq -r ".[$1]$2 // empty" <<<"$BODY"; }
NOKEY=00000000-0000-4000-8000-000000000000

generate_key '{"name":"batch-ec","obj_type":"EC","elliptic_curve":"NistP256"}'
EC_KID=$KID
save_public "$WORK/ec-pub.pem"
generate_key '{"name":"batch-rsa","obj_type":"RSA","key_size":2048,"key_ops":["ENCRYPT","DECRYPT","SIGN","VERIFY","EXPORT"]}'
RSA_KID=$KID
export_value "$RSA_KID" "$WORK/rsa.der"
openssl pkey -inform DER -in "$WORK/rsa.der" -out "$WORK/rsa.pem"
generate_key '{"name":"batch-verify-only","obj_type":"EC","elliptic_curve":"NistP256","key_ops":["VERIFY"]}'
VERIFY_ONLY=$KID

printf 'first message' >"$WORK/m1"
printf 'second message' >"$WORK/m2"
h1=$(openssl dgst -sha256 -binary "$WORK/m1" | base64 -w0)
h2=$(openssl dgst -sha256 -binary "$WORK/m2" | base64 -w0)

# -- batch sign ----------------------------------------------------------------------
api POST /crypto/v1/keys/batch/sign "[
 {\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$h1\"},
 {\"key\":{\"kid\":\"$NOKEY\"},\"hash_alg\":\"SHA256\",\"hash\":\"$h1\"},
 {\"key\":{\"kid\":\"$RSA_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$h2\",\"mode\":{\"PKCS1_V15\":{}}},
 {\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$(b64_str short)\"},
 {\"key\":{\"kid\":\"$VERIFY_ONLY\"},\"hash_alg\":\"SHA256\",\"hash\":\"$h1\"}
]"
check "batch sign answers 2xx even with failing items" \
    is_2xx
check "batch sign returns one item per request, in order" \
    json_is 'type == "array" and length == 5'
check_eq "batch sign item 1 (good EC) status" 200 "$(item 0 .status)"
check "batch sign item 1 has no error" json_is '.[0].error == null'
unb64 "$(item 0 .body.signature)" "$WORK/s1"
check "batch sign item 1 verifies with openssl" \
    eval 'openssl dgst -sha256 -verify "$WORK/ec-pub.pem" -signature "$WORK/s1" "$WORK/m1" >/dev/null 2>&1'
check_eq "batch sign item 1 body echoes the kid" "$EC_KID" "$(item 0 .body.kid)"
check_eq "batch sign item 2 (unknown kid) status 404" 404 "$(item 1 .status)"
check "batch sign item 2 has an error text and no body" \
    json_is '(.[1].error|type=="string") and .[1].body == null'
check_eq "batch sign item 3 (good RSA) status" 200 "$(item 2 .status)"
unb64 "$(item 2 .body.signature)" "$WORK/s3"
check "batch sign item 3 verifies with openssl" \
    eval 'openssl dgst -sha256 -prverify "$WORK/rsa.pem" -signature "$WORK/s3" "$WORK/m2" >/dev/null 2>&1'
check_eq "batch sign item 4 (wrong hash length) status 400" 400 "$(item 3 .status)"
check_eq "batch sign item 5 (key without SIGN) status 403" 403 "$(item 4 .status)"

# -- batch verify --------------------------------------------------------------------
s1=$(b64_file "$WORK/s1")
s3=$(b64_file "$WORK/s3")
api POST /crypto/v1/keys/batch/verify "[
 {\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$h1\",\"signature\":\"$s1\"},
 {\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$h2\",\"signature\":\"$s1\"},
 {\"key\":{\"kid\":\"$NOKEY\"},\"hash_alg\":\"SHA256\",\"hash\":\"$h1\",\"signature\":\"$s1\"},
 {\"key\":{\"kid\":\"$RSA_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$h2\",\"signature\":\"$s3\",\"mode\":{\"PKCS1_V15\":{}}}
]"
check "batch verify answers 2xx" is_2xx
check "batch verify returns 4 items" json_is 'length == 4'
check "batch verify item 1 (good signature) is true" \
    json_is '.[0].status == 200 and .[0].body.result == true'
check "batch verify item 2 (other message) is false" \
    json_is '.[1].status == 200 and .[1].body.result == false'
check_eq "batch verify item 3 (unknown kid) status 404" 404 "$(item 2 .status)"
check "batch verify item 4 (RSA) is true" \
    json_is '.[3].status == 200 and .[3].body.result == true'

# -- batch encrypt / decrypt ---------------------------------------------------------
p1=$(b64_file "$WORK/m1")
oaep256=$(oaep SHA256)
api POST /crypto/v1/keys/batch/encrypt "[
 {\"kid\":\"$RSA_KID\",\"request\":{\"alg\":\"RSA\",\"plain\":\"$p1\",\"mode\":$oaep256}},
 {\"kid\":\"$NOKEY\",\"request\":{\"alg\":\"RSA\",\"plain\":\"$p1\",\"mode\":$oaep256}},
 {\"kid\":\"$EC_KID\",\"request\":{\"alg\":\"RSA\",\"plain\":\"$p1\",\"mode\":$oaep256}},
 {\"kid\":\"$RSA_KID\",\"request\":{\"alg\":\"RSA\",\"plain\":\"$p1\",\"mode\":{\"PKCS1_V15\":{}}}}
]"
check "batch encrypt answers 2xx" is_2xx
check "batch encrypt returns 4 items" json_is 'length == 4'
check_eq "batch encrypt item 1 (good) status" 200 "$(item 0 .status)"
unb64 "$(item 0 .body.cipher)" "$WORK/c1"
check "batch encrypt item 1: openssl decrypts it" \
    eval 'openssl pkeyutl -decrypt -inkey "$WORK/rsa.pem" -in "$WORK/c1" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 2>/dev/null | cmp -s - "$WORK/m1"'
check_eq "batch encrypt item 2 (unknown kid) status 404" 404 "$(item 1 .status)"
check "batch encrypt item 3 (EC key) fails with 400/403" \
    eval '[[ "$(item 2 .status)" == 400 || "$(item 2 .status)" == 403 ]]'
check_eq "batch encrypt item 4 (PKCS1_V15 not in policy) status 400" 400 \
    "$(item 3 .status)"

openssl pkeyutl -encrypt -inkey "$WORK/rsa.pem" -in "$WORK/m2" -out "$WORK/c2" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 \
    -pkeyopt rsa_mgf1_md:sha1
c1=$(b64_file "$WORK/c1")
c2=$(b64_file "$WORK/c2")
api POST /crypto/v1/keys/batch/decrypt "[
 {\"kid\":\"$RSA_KID\",\"request\":{\"alg\":\"RSA\",\"cipher\":\"$c2\",\"mode\":$(oaep SHA1)}},
 {\"kid\":\"$RSA_KID\",\"request\":{\"alg\":\"RSA\",\"cipher\":\"$c2\",\"mode\":$oaep256}},
 {\"kid\":\"$RSA_KID\",\"request\":{\"alg\":\"RSA\",\"cipher\":\"$c1\",\"mode\":$oaep256}},
 {\"kid\":\"$NOKEY\",\"request\":{\"alg\":\"RSA\",\"cipher\":\"$c1\",\"mode\":$oaep256}}
]"
check "batch decrypt answers 2xx" is_2xx
check "batch decrypt returns 4 items" json_is 'length == 4'
check_eq "batch decrypt item 1 recovers openssl's plaintext" \
    "$(b64_file "$WORK/m2")" "$(item 0 .body.plain)"
check_eq "batch decrypt item 2 (wrong OAEP hash) status 400" 400 "$(item 1 .status)"
check "batch decrypt item 2 has an error text" json_is '.[1].error|type=="string"'
check_eq "batch decrypt item 3 recovers batch encrypt's plaintext" \
    "$p1" "$(item 2 .body.plain)"
check_eq "batch decrypt item 4 (unknown kid) status 404" 404 "$(item 3 .status)"

# -- malformed batches ---------------------------------------------------------------
api POST /crypto/v1/keys/batch/sign '{"not":"an array"}'
check_status "batch sign with a non-array body is refused with 400" 400
api POST /crypto/v1/keys/batch/sign '[]'
check "batch sign of an empty array answers 2xx with []" \
    eval '[[ "$STATUS" == 2?? ]] && json_is "length == 0"'
counters
check_eq "batch sign calls are counted by path" 3 \
    "$(counter 'POST /crypto/v1/keys/batch/sign')"

finish
