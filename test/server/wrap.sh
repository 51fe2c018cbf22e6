#!/usr/bin/env bash
# Wrap/unwrap (docs/smartkey-api.md §4.4): RSA-OAEP of raw key bytes, AES KW/KWP
# (RFC 3394/5649) byte-identical to `openssl enc -id-aes256-wrap[-pad]`,
# PKCS#8 KWP of an EC key, AES-GCM wrap, permission and combination rules.
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth

# wrap_req KEY_KID SUBJECT_KID ALG MODE [extra json members]
wrap_req() {
    printf '{"key":{"kid":"%s"},"subject":{"kid":"%s"},"alg":"%s","mode":%s%s}' \
        "$1" "$2" "$3" "$4" "${5:+,$5}"
}

# -- keys -------------------------------------------------------------------------
generate_key '{"name":"wrapping-rsa","obj_type":"RSA","key_size":3072,"key_ops":["WRAPKEY","UNWRAPKEY","EXPORT"]}'
check_status "generate RSA-3072 wrapping key" 201
RSA_KID=$KID
export_value "$RSA_KID" "$WORK/rsa.der"
openssl pkey -inform DER -in "$WORK/rsa.der" -out "$WORK/rsa.pem"

generate_key '{"name":"subject-aes","obj_type":"AES","key_size":256,"key_ops":["ENCRYPT","DECRYPT","EXPORT"]}'
check_status "generate exportable AES-256 subject" 201
AES_KID=$KID
export_value "$AES_KID" "$WORK/aes.key"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/local-rsa.pem" 2>/dev/null
import_key "{\"name\":\"wrapping-rsa-public\",\"obj_type\":\"RSA\",\"value\":\"$(openssl pkey -in "$WORK/local-rsa.pem" -pubout -outform DER | base64 -w0)\",\"key_ops\":[\"WRAPKEY\",\"ENCRYPT\"]}"
check_status "import public-only RSA wrapping key" 201
PUB_KID=$KID

counters
exports_before=$(counter_field exports)

# -- RSA-OAEP wrap ----------------------------------------------------------------
for md in SHA1 SHA256; do
    for wrapping in "$RSA_KID:$WORK/rsa.pem:generated" \
        "$PUB_KID:$WORK/local-rsa.pem:imported public-only"; do
        IFS=: read -r kid pem what <<<"$wrapping"
        api POST /crypto/v1/wrapkey "$(wrap_req "$kid" "$AES_KID" RSA "$(oaep $md)")"
        check_status "wrapkey RSA-OAEP $md under a $what key answers 200" 200
        unb64 "$(field wrapped_key)" "$WORK/wrapped"
        openssl pkeyutl -decrypt -inkey "$pem" -in "$WORK/wrapped" \
            -out "$WORK/unwrapped" -pkeyopt rsa_padding_mode:oaep \
            -pkeyopt "rsa_oaep_md:$(ossl_md $md)" \
            -pkeyopt "rsa_mgf1_md:$(ossl_md $md)" 2>/dev/null ||
            : >"$WORK/unwrapped"
        check "wrapkey RSA-OAEP $md ($what): openssl recovers the AES key bytes" \
            cmp -s "$WORK/aes.key" "$WORK/unwrapped"
    done
done
counters
check_eq "server-side wrapping exports nothing in plaintext" \
    "$exports_before" "$(counter_field exports)"

api POST /crypto/v1/wrapkey "{\"key\":{\"kid\":\"$RSA_KID\"},\"kid\":\"$AES_KID\",\"alg\":\"RSA\",\"mode\":$(oaep SHA256)}"
check_status "wrapkey with the legacy kid field answers 200" 200

# unwrap back into a new AES key and compare with the original
api POST /crypto/v1/wrapkey "$(wrap_req "$RSA_KID" "$AES_KID" RSA "$(oaep SHA256)")"
wrapped=$(field wrapped_key)
api POST /crypto/v1/unwrapkey "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"mode\":$(oaep SHA256),\"obj_type\":\"AES\",\"wrapped_key\":\"$wrapped\",\"name\":\"unwrapped-aes\",\"key_ops\":[\"ENCRYPT\",\"DECRYPT\",\"EXPORT\"]}"
check "unwrapkey RSA-OAEP answers 2xx" is_2xx
check "unwrapkey returns a new AES-256 Sobject" \
    json_is '.obj_type == "AES" and .key_size == 256 and (.kid|type=="string") and .name == "unwrapped-aes"'
export_value "$(field kid)" "$WORK/aes2.key"
check "unwrapped key has the original key bytes" \
    cmp -s "$WORK/aes.key" "$WORK/aes2.key"
api POST /crypto/v1/unwrapkey "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"mode\":$(oaep SHA256),\"wrapped_key\":\"$wrapped\",\"name\":\"unwrapped-2\"}"
check_status "unwrapkey without obj_type is refused with 400" 400
api POST /crypto/v1/unwrapkey "{\"key\":{\"kid\":\"$PUB_KID\"},\"alg\":\"RSA\",\"mode\":$(oaep SHA256),\"obj_type\":\"AES\",\"wrapped_key\":\"$wrapped\",\"name\":\"unwrapped-3\"}"
check_status "unwrapkey with a key without UNWRAPKEY is refused with 403" 403

# -- permissions and combinations ---------------------------------------------------
generate_key '{"name":"aes-not-exportable","obj_type":"AES","key_size":128,"key_ops":["ENCRYPT","DECRYPT"]}'
api POST /crypto/v1/wrapkey "$(wrap_req "$RSA_KID" "$KID" RSA "$(oaep SHA256)")"
check_status "wrapping a subject without EXPORT is refused with 403" 403
generate_key '{"name":"rsa-no-wrapkey","obj_type":"RSA","key_size":2048,"key_ops":["ENCRYPT","DECRYPT"]}'
api POST /crypto/v1/wrapkey "$(wrap_req "$KID" "$AES_KID" RSA "$(oaep SHA256)")"
check_status "wrapping with a key without WRAPKEY is refused with 403" 403
generate_key '{"name":"rsa-subject","obj_type":"RSA","key_size":2048,"key_ops":["SIGN","EXPORT"]}'
RSA_SUBJECT=$KID
check_statuses \
    "400|wrapping an RSA subject under an RSA key is refused with 400|POST|/crypto/v1/wrapkey|$(wrap_req "$RSA_KID" "$RSA_SUBJECT" RSA "$(oaep SHA256)")" \
    "404|wrapping an unknown subject answers 404|POST|/crypto/v1/wrapkey|$(wrap_req "$RSA_KID" 00000000-0000-4000-8000-000000000000 RSA "$(oaep SHA256)")" \
    "400|wrapkey without subject is refused with 400|POST|/crypto/v1/wrapkey|{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"mode\":$(oaep SHA256)}"

# -- AES KW / KWP -----------------------------------------------------------------
generate_key '{"name":"wrapping-aes","obj_type":"AES","key_size":256,"key_ops":["WRAPKEY","UNWRAPKEY","EXPORT"]}'
check_status "generate AES-256 wrapping key" 201
KEK_KID=$KID
export_value "$KEK_KID" "$WORK/kek"
KEK_HEX=$(hex_file "$WORK/kek")

generate_key '{"name":"subject-aes128","obj_type":"AES","key_size":128,"key_ops":["EXPORT"]}'
A128_KID=$KID
export_value "$A128_KID" "$WORK/a128"
openssl rand 21 >"$WORK/secret21"
import_key "{\"name\":\"subject-secret21\",\"obj_type\":\"SECRET\",\"value\":\"$(b64_file "$WORK/secret21")\",\"key_ops\":[\"EXPORT\"]}"
S21_KID=$KID

api POST /crypto/v1/wrapkey "$(wrap_req "$KEK_KID" "$A128_KID" AES '"KW"')"
check_status "wrapkey AES KW answers 200" 200
check_eq "AES KW equals openssl enc -id-aes256-wrap byte for byte" \
    "$(openssl enc -id-aes256-wrap -K "$KEK_HEX" -iv A6A6A6A6A6A6A6A6 -in "$WORK/a128" | base64 -w0)" \
    "$(field wrapped_key)"
kw=$(field wrapped_key)
api POST /crypto/v1/unwrapkey "{\"key\":{\"kid\":\"$KEK_KID\"},\"alg\":\"AES\",\"mode\":\"KW\",\"obj_type\":\"AES\",\"wrapped_key\":\"$kw\",\"name\":\"unwrapped-kw\",\"key_ops\":[\"EXPORT\"]}"
check "unwrapkey AES KW answers 2xx" is_2xx
export_value "$(field kid)" "$WORK/a128b"
check "unwrapkey AES KW recovers the key bytes" cmp -s "$WORK/a128" "$WORK/a128b"
api POST /crypto/v1/wrapkey "$(wrap_req "$KEK_KID" "$S21_KID" AES '"KW"')"
check_status "AES KW of a 21-byte secret (not a multiple of 8) is refused with 400" 400

for s in "$A128_KID:$WORK/a128:AES-128" "$S21_KID:$WORK/secret21:21-byte SECRET"; do
    IFS=: read -r kid file what <<<"$s"
    api POST /crypto/v1/wrapkey "$(wrap_req "$KEK_KID" "$kid" AES '"KWP"')"
    check_status "wrapkey AES KWP of a $what answers 200" 200
    check_eq "AES KWP of a $what equals openssl enc -id-aes256-wrap-pad" \
        "$(openssl enc -id-aes256-wrap-pad -K "$KEK_HEX" -iv A65959A6 -in "$file" | base64 -w0)" \
        "$(field wrapped_key)"
done
api POST /crypto/v1/unwrapkey "{\"key\":{\"kid\":\"$KEK_KID\"},\"alg\":\"AES\",\"mode\":\"KWP\",\"obj_type\":\"SECRET\",\"wrapped_key\":\"$(field wrapped_key)\",\"name\":\"unwrapped-kwp\",\"key_ops\":[\"EXPORT\"]}"
check "unwrapkey AES KWP answers 2xx" is_2xx
export_value "$(field kid)" "$WORK/s21b"
check "unwrapkey AES KWP recovers the secret" cmp -s "$WORK/secret21" "$WORK/s21b"
api POST /crypto/v1/unwrapkey "{\"key\":{\"kid\":\"$KEK_KID\"},\"alg\":\"AES\",\"mode\":\"KW\",\"obj_type\":\"AES\",\"wrapped_key\":\"$(openssl rand 24 | base64 -w0)\",\"name\":\"bad-kw\"}"
check_status "unwrapkey of garbage fails its integrity check with 400" 400

# -- asymmetric subject under a symmetric key, PKCS#8 ---------------------------------
generate_key '{"name":"subject-ec","obj_type":"EC","elliptic_curve":"NistP256","key_ops":["SIGN","EXPORT"]}'
EC_KID=$KID
ec_pub=$(field pub_key)
api POST /crypto/v1/wrapkey "$(wrap_req "$KEK_KID" "$EC_KID" AES '"KWP"' '"key_format":"Pkcs8"')"
check_status "wrapkey KWP of an EC key as Pkcs8 answers 200" 200
unb64 "$(field wrapped_key)" "$WORK/ec.wrapped"
openssl enc -d -id-aes256-wrap-pad -K "$KEK_HEX" -iv A65959A6 \
    -in "$WORK/ec.wrapped" -out "$WORK/ec.p8" 2>/dev/null || : >"$WORK/ec.p8"
check "openssl unwraps it to a PKCS#8 PrivateKeyInfo" \
    openssl pkcs8 -nocrypt -inform DER -in "$WORK/ec.p8" -out "$WORK/ec.pem"
check_eq "the unwrapped EC key's public key matches pub_key" "$ec_pub" \
    "$(openssl pkey -in "$WORK/ec.pem" -pubout -outform DER 2>/dev/null | base64 -w0)"
api POST /crypto/v1/wrapkey "$(wrap_req "$KEK_KID" "$EC_KID" AES '"KWP"')"
check_status "wrapkey KWP of an EC key in the Default format answers 200" 200
unb64 "$(field wrapped_key)" "$WORK/ec.wrapped"
openssl enc -d -id-aes256-wrap-pad -K "$KEK_HEX" -iv A65959A6 \
    -in "$WORK/ec.wrapped" -out "$WORK/ec.der" 2>/dev/null || : >"$WORK/ec.der"
check "Default format of an EC key is an RFC 5915 ECPrivateKey" \
    eval 'openssl ec -inform DER -in "$WORK/ec.der" -noout 2>/dev/null'
api POST /crypto/v1/wrapkey "$(wrap_req "$RSA_KID" "$EC_KID" RSA "$(oaep SHA256)")"
check_status "wrapping an EC key under an RSA key is refused with 400" 400

# -- AES-GCM wrap ---------------------------------------------------------------------
IV=$(openssl rand 12 | base64 -w0)
AD=$(b64_str 'wrap ad')
api POST /crypto/v1/wrapkey "$(wrap_req "$KEK_KID" "$AES_KID" AES '"GCM"' "\"iv\":\"$IV\",\"ad\":\"$AD\",\"tag_len\":128")"
check_status "wrapkey AES-GCM with iv, ad and tag_len answers 200" 200
check_eq "AES-GCM wrap uses the given iv" "$IV" "$(field iv)"
check_eq "AES-GCM wrap returns a 16-byte tag" 16 "$(field tag | base64 -d | wc -c)"
plain=$(python3 - "$KEK_HEX" "$IV" "$(field tag)" "$(field wrapped_key)" "$AD" <<'EOF' 2>/dev/null
import base64, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
key = bytes.fromhex(sys.argv[1])
iv, tag, ct, ad = (base64.b64decode(a) for a in sys.argv[2:6])
d = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
d.authenticate_additional_data(ad)
print(base64.b64encode(d.update(ct) + d.finalize()).decode())
EOF
)
check_eq "AES-GCM wrap: OpenSSL decrypts to the AES key bytes" \
    "$(b64_file "$WORK/aes.key")" "$plain"
api POST /crypto/v1/unwrapkey "{\"key\":{\"kid\":\"$KEK_KID\"},\"alg\":\"AES\",\"mode\":\"GCM\",\"obj_type\":\"AES\",\"wrapped_key\":\"$(field wrapped_key)\",\"iv\":\"$IV\",\"ad\":\"$AD\",\"tag\":\"$(field tag)\",\"name\":\"unwrapped-gcm\",\"key_ops\":[\"EXPORT\"]}"
check "unwrapkey AES-GCM answers 2xx" is_2xx
export_value "$(field kid)" "$WORK/aes3.key"
check "unwrapkey AES-GCM recovers the key bytes" cmp -s "$WORK/aes.key" "$WORK/aes3.key"

finish
