#!/usr/bin/env bash
# CERTIFICATE objects as SmartKey's data model has them: imported with one
# DER X.509 certificate in value (never generated), public only, pub_key the
# certified key's, the value shown (show_value, /keys/export) only to apps
# allowed EXPORT and not counted as an export of key material, listed with
# obj_type=CERTIFICATE, kept by --persist. And the checked fields of a new
# object: description (string), custom_metadata (string map), group_id
# (the app's group).
. "$(dirname "$0")/lib.sh" "$1"

start_emulator --persist
auth

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/rsa.key" \
    -subj /CN=rsa-cert -days 2 -outform DER -out "$WORK/rsa.der" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes \
    -keyout "$WORK/ec.key" -subj /CN=ec-cert -days 2 -outform DER \
    -out "$WORK/ec.der" 2>/dev/null
openssl pkey -in "$WORK/rsa.key" -pubout -outform DER -out "$WORK/rsa.spki"
rsa_b64=$(b64_file "$WORK/rsa.der")

import_key "{\"name\":\"rsa-cert\",\"obj_type\":\"CERTIFICATE\",\"value\":\"$rsa_b64\",\"key_ops\":[\"VERIFY\",\"EXPORT\"]}"
check_status "import of a DER certificate answers 201" 201
RSA_KID=$KID
check "it is public only, with the certified key as pub_key" json_is \
    ".obj_type == \"CERTIFICATE\" and .public_only == true and
     .pub_key == \"$(b64_file "$WORK/rsa.spki")\" and .key_size == 2048 and
     (has(\"value\") | not)"
import_key "{\"name\":\"ec-cert\",\"obj_type\":\"CERTIFICATE\",\"value\":\"$(b64_file "$WORK/ec.der")\"}"
check_status "an EC certificate without key_ops is imported" 201
check "it gets the public-key operations, not EXPORT" \
    json_is '.key_ops | sort == ["APPMANAGEABLE","ENCRYPT","VERIFY","WRAPKEY"]'

head -c 100 /dev/urandom >"$WORK/junk"
check_statuses \
    "400|a value that is no certificate is refused|PUT|/crypto/v1/keys|{\"name\":\"junk\",\"obj_type\":\"CERTIFICATE\",\"value\":\"$(b64_file "$WORK/junk")\"}" \
    "400|a certificate with bytes after it is refused|PUT|/crypto/v1/keys|{\"name\":\"trailing\",\"obj_type\":\"CERTIFICATE\",\"value\":\"$(cat "$WORK/rsa.der" "$WORK/junk" | base64 -w0)\"}" \
    "400|a certificate cannot be generated|POST|/crypto/v1/keys|{\"name\":\"gen\",\"obj_type\":\"CERTIFICATE\"}" \
    "400|rsa options do not apply to a certificate|PUT|/crypto/v1/keys|{\"name\":\"rsa-opts\",\"obj_type\":\"CERTIFICATE\",\"value\":\"$rsa_b64\",\"rsa\":{\"encryption_policy\":[{}]}}"

reset_counters
api POST '/crypto/v1/keys/info?show_value=true' "{\"kid\":\"$RSA_KID\"}"
check_status "show_value on a certificate with EXPORT" 200
check_eq "value is the DER certificate" "$rsa_b64" "$(field value)"
api POST '/crypto/v1/keys/info?show_value=true' '{"name":"ec-cert"}'
check "without EXPORT the value is left out" json_is 'has("value") | not'
api POST /crypto/v1/keys/export "{\"kid\":\"$RSA_KID\"}"
check_status "/keys/export of a certificate with EXPORT" 200
check_eq "export gives the certificate" "$rsa_b64" "$(field value)"
api POST /crypto/v1/keys/export '{"name":"ec-cert"}'
check_status "/keys/export without EXPORT is refused" 403
counters
check_eq "showing certificates is not counted as an export of key material" \
    0 "$(counter_field exports)"

api GET '/crypto/v1/keys?obj_type=CERTIFICATE'
check_eq "obj_type=CERTIFICATE lists the two certificates" \
    '["ec-cert","rsa-cert"]' "$(jq -c '[.[].name] | sort' <<<"$BODY")"

# ---- description, custom_metadata, group_id ----
api POST /crypto/v1/keys/info '{"name":"rsa-cert"}'
group=$(field group_id)
generate_key "{\"name\":\"meta\",\"obj_type\":\"EC\",\"elliptic_curve\":\"NistP256\",\"description\":\"d\",\"custom_metadata\":{\"a\":\"1\"},\"group_id\":\"$group\"}"
check_status "a key with description, custom_metadata and its group" 201
check "they are shown as sent" json_is \
    ".description == \"d\" and .custom_metadata == {\"a\":\"1\"} and .group_id == \"$group\""
check_statuses \
    '400|description must be a string|POST|/crypto/v1/keys|{"name":"m1","obj_type":"AES","key_size":128,"description":7}' \
    '400|custom_metadata must be an object|POST|/crypto/v1/keys|{"name":"m2","obj_type":"AES","key_size":128,"custom_metadata":["a"]}' \
    '400|custom_metadata values are strings|POST|/crypto/v1/keys|{"name":"m3","obj_type":"AES","key_size":128,"custom_metadata":{"a":1}}' \
    '400|group_id is a UUID|POST|/crypto/v1/keys|{"name":"m4","obj_type":"AES","key_size":128,"group_id":"web"}' \
    '404|a group the app is not in is not found|POST|/crypto/v1/keys|{"name":"m5","obj_type":"AES","key_size":128,"group_id":"0b5c1c0e-3c1f-4a5e-9f6d-2a4b6c8d0e1f"}'

# ---- --persist keeps certificates ----
stop_emulator
start_emulator --persist
auth
api POST '/crypto/v1/keys/info?show_value=true' '{"name":"rsa-cert"}'
check_status "the certificate is there after a restart" 200
check_eq "with the same value" "$rsa_b64" "$(field value)"
check_eq "and the same kid" "$RSA_KID" "$(field kid)"

finish
