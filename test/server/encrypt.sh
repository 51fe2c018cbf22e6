#!/usr/bin/env bash
# Encrypt/decrypt and digests (docs/smartkey-api.md §4.1, §4.2, §4.5), every result
# checked with stock openssl (python3-cryptography, itself OpenSSL, only for
# AES-GCM, which `openssl enc` cannot do).
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth

openssl rand 100 >"$WORK/plain.bin"
PLAIN=$(b64_file "$WORK/plain.bin")

# -- RSA-OAEP ------------------------------------------------------------------
generate_key '{"name":"rsa-enc","obj_type":"RSA","key_size":2048,"key_ops":["ENCRYPT","DECRYPT","EXPORT","APPMANAGEABLE"]}'
check_status "generate exportable RSA key" 201
RSA_KID=$KID
export_value "$RSA_KID" "$WORK/rsa.der"
check "exported RSA private key parses with openssl" \
    openssl pkey -inform DER -in "$WORK/rsa.der" -noout
openssl pkey -inform DER -in "$WORK/rsa.der" -out "$WORK/rsa.pem"

# decrypts_to_plain PEM PKEYOPT...: openssl pkeyutl decrypts $WORK/c.bin with
# the private key PEM (and the -pkeyopt options given) to plain.bin's bytes.
decrypts_to_plain() {
    local pem=$1
    shift
    openssl pkeyutl -decrypt -inkey "$pem" -in "$WORK/c.bin" \
        -out "$WORK/p.bin" "$@" 2>/dev/null &&
        cmp -s "$WORK/plain.bin" "$WORK/p.bin"
}

for md in SHA1 SHA224 SHA256 SHA384 SHA512; do
    api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":$(oaep $md)}"
    check_status "RSA-OAEP $md encrypt answers 200" 200
    check_eq "encrypt echoes the kid" "$RSA_KID" "$(field kid)"
    unb64 "$(field cipher)" "$WORK/c.bin"
    check_eq "RSA-OAEP $md ciphertext is modulus-length" 256 \
        "$(stat -c %s "$WORK/c.bin")"
    check "RSA-OAEP $md: openssl decrypts to the plaintext" \
        decrypts_to_plain "$WORK/rsa.pem" -pkeyopt rsa_padding_mode:oaep \
            -pkeyopt "rsa_oaep_md:$(ossl_md $md)" \
            -pkeyopt "rsa_mgf1_md:$(ossl_md $md)"

    openssl pkeyutl -encrypt -inkey "$WORK/rsa.pem" -in "$WORK/plain.bin" \
        -out "$WORK/c2.bin" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt "rsa_oaep_md:$(ossl_md $md)" \
        -pkeyopt "rsa_mgf1_md:$(ossl_md $md)"
    api POST /crypto/v1/decrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"cipher\":\"$(b64_file "$WORK/c2.bin")\",\"mode\":$(oaep $md)}"
    check_status "RSA-OAEP $md decrypt of openssl ciphertext answers 200" 200
    check_eq "RSA-OAEP $md: decrypt recovers openssl's plaintext" \
        "$PLAIN" "$(field plain)"
done

# OAEP label (newer servers): base64 `label` on both calls.
label_hex=$(printf 'my label' | xxd -p)
LABEL=$(b64_str 'my label')
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":$(oaep SHA256),\"label\":\"$LABEL\"}"
check_status "RSA-OAEP with label encrypt answers 200" 200
unb64 "$(field cipher)" "$WORK/c.bin"
check "RSA-OAEP with label: openssl decrypts with the same label" \
    decrypts_to_plain "$WORK/rsa.pem" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 \
        -pkeyopt "rsa_oaep_label:$label_hex"
api POST /crypto/v1/decrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"cipher\":\"$(b64_file "$WORK/c.bin")\",\"mode\":$(oaep SHA256),\"label\":\"$LABEL\"}"
check_eq "RSA-OAEP with label: decrypt with the label recovers it" \
    "$PLAIN" "$(field plain)"
api POST /crypto/v1/decrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"cipher\":\"$(b64_file "$WORK/c.bin")\",\"mode\":$(oaep SHA256)}"
check_status "RSA-OAEP decrypt without the label fails with 400" 400

check_statuses \
    "200|decrypt accepts a request without alg (optional)|POST|/crypto/v1/decrypt|{\"key\":{\"kid\":\"$RSA_KID\"},\"cipher\":\"$(b64_file "$WORK/c2.bin")\",\"mode\":$(oaep SHA512)}" \
    "400|decrypt with the wrong OAEP hash fails with 400|POST|/crypto/v1/decrypt|{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"cipher\":\"$(b64_file "$WORK/c2.bin")\",\"mode\":$(oaep SHA256)}" \
    "400|encrypt with an unknown hash is refused with 400|POST|/crypto/v1/encrypt|{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":{\"OAEP\":{\"mgf\":{\"mgf1\":{\"hash\":\"MD17\"}}}}}"
openssl rand 300 >"$WORK/big.bin"
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"plain\":\"$(b64_file "$WORK/big.bin")\",\"mode\":$(oaep SHA256)}"
check_status "RSA-OAEP of more than one block is refused with 400" 400

# A public-only key still encrypts (a public-key operation), never decrypts.
import_key "{\"name\":\"rsa-public\",\"obj_type\":\"RSA\",\"value\":\"$(openssl pkey -in "$WORK/rsa.pem" -pubout -outform DER | base64 -w0)\",\"key_ops\":[\"ENCRYPT\",\"DECRYPT\"]}"
check_status "import the RSA public key alone" 201
PUBLIC_KID=$KID
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$PUBLIC_KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":$(oaep SHA256)}"
check_status "RSA-OAEP encrypt with a public-only key answers 200" 200
unb64 "$(field cipher)" "$WORK/c.bin"
check "public-only encrypt: openssl decrypts with the private key" \
    decrypts_to_plain "$WORK/rsa.pem" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
api POST /crypto/v1/decrypt "{\"key\":{\"kid\":\"$PUBLIC_KID\"},\"alg\":\"RSA\",\"cipher\":\"$(b64_file "$WORK/c.bin")\",\"mode\":$(oaep SHA256)}"
check_status "decrypt with a public-only key is refused with 403" 403

# -- RSA PKCS#1 v1.5 and the encryption policy (§3.5) --------------------------
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":{\"PKCS1_V15\":{}}}"
check_status "PKCS1_V15 encrypt is refused by the default OAEP-only policy (400)" 400
openssl pkeyutl -encrypt -inkey "$WORK/rsa.pem" -in "$WORK/plain.bin" \
    -out "$WORK/c15.bin" -pkeyopt rsa_padding_mode:pkcs1
api POST /crypto/v1/decrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"cipher\":\"$(b64_file "$WORK/c15.bin")\",\"mode\":{\"PKCS1_V15\":{}}}"
check_status "PKCS1_V15 decrypt is refused by the default policy (400)" 400

policy='"rsa":{"encryption_policy":[{"padding":{"OAEP":{}}},{"padding":{"PKCS1_V15":{}}}]}'
generate_key "{\"name\":\"rsa-v15\",\"obj_type\":\"RSA\",\"key_size\":2048,\"key_ops\":[\"ENCRYPT\",\"DECRYPT\",\"EXPORT\"],$policy}"
check_status "generate RSA with a policy allowing PKCS1_V15" 201
check "the key reports its encryption policy" \
    eval 'jq -e "[.rsa.encryption_policy[].padding | keys[]] | index(\"PKCS1_V15\") != null" <<<"$BODY" >/dev/null'
V15_KID=$KID
export_value "$V15_KID" "$WORK/v15.der"
openssl pkey -inform DER -in "$WORK/v15.der" -out "$WORK/v15.pem"
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$V15_KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":{\"PKCS1_V15\":{}}}"
check_status "PKCS1_V15 encrypt allowed by policy answers 200" 200
unb64 "$(field cipher)" "$WORK/c.bin"
check "PKCS1_V15: openssl decrypts to the plaintext" \
    decrypts_to_plain "$WORK/v15.pem" -pkeyopt rsa_padding_mode:pkcs1

openssl pkeyutl -encrypt -inkey "$WORK/rsa.pem" -in "$WORK/plain.bin" \
    -out "$WORK/c15.bin" -pkeyopt rsa_padding_mode:pkcs1
import_key "{\"name\":\"rsa-v15-imported\",\"obj_type\":\"RSA\",\"value\":\"$(b64_file "$WORK/rsa.der")\",\"key_ops\":[\"DECRYPT\"],$policy}"
check_status "import RSA with a policy allowing PKCS1_V15" 201
api POST /crypto/v1/decrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"RSA\",\"cipher\":\"$(b64_file "$WORK/c15.bin")\",\"mode\":{\"PKCS1_V15\":{}}}"
check_status "PKCS1_V15 decrypt allowed by policy answers 200" 200
check_eq "PKCS1_V15 decrypt recovers openssl's plaintext" "$PLAIN" "$(field plain)"
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":$(oaep SHA256)}"
check_status "encrypt with a key without ENCRYPT is refused with 403" 403

# Wildcard policy [{}]: anything goes, and an omitted mode resolves to
# OAEP with MGF1-SHA256 (§4.1).
generate_key '{"name":"rsa-any","obj_type":"RSA","key_size":2048,"key_ops":["ENCRYPT","DECRYPT","EXPORT"],"rsa":{"encryption_policy":[{}]}}'
check_status "generate RSA with a wildcard encryption policy" 201
ANY_KID=$KID
export_value "$ANY_KID" "$WORK/any.der"
openssl pkey -inform DER -in "$WORK/any.der" -out "$WORK/any.pem"
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$ANY_KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\"}"
check_status "RSA encrypt without mode under a wildcard policy answers 200" 200
unb64 "$(field cipher)" "$WORK/c.bin"
check "omitted mode under a wildcard policy is OAEP MGF1-SHA256" \
    decrypts_to_plain "$WORK/any.pem" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$ANY_KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":{\"PKCS1_V15\":{}}}"
check_status "PKCS1_V15 is allowed by a wildcard policy" 200

generate_key '{"name":"rsa-sha256-only","obj_type":"RSA","key_size":2048,"key_ops":["ENCRYPT","DECRYPT"],"rsa":{"encryption_policy":[{"padding":{"OAEP":{"mgf":{"mgf1":{"hash":"SHA256"}}}}}]}}'
check_status "generate RSA with an OAEP-SHA256-only policy" 201
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":$(oaep SHA256)}"
check_status "OAEP SHA256 matches the OAEP-SHA256 policy" 200
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":$(oaep SHA1)}"
check_status "OAEP SHA1 is refused by an OAEP-SHA256-only policy (400)" 400

generate_key '{"name":"rsa-nothing","obj_type":"RSA","key_size":2048,"key_ops":["ENCRYPT","DECRYPT"],"rsa":{"encryption_policy":[]}}'
check_status "generate RSA with an empty encryption policy" 201
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"RSA\",\"plain\":\"$PLAIN\",\"mode\":$(oaep SHA256)}"
check_status "an empty encryption policy allows nothing (400)" 400

# -- AES ------------------------------------------------------------------------
generate_key '{"name":"aes-enc","obj_type":"AES","key_size":256,"key_ops":["ENCRYPT","DECRYPT","EXPORT"]}'
check_status "generate exportable AES-256 key" 201
AES_KID=$KID
export_value "$AES_KID" "$WORK/aes.key"
AES_HEX=$(hex_file "$WORK/aes.key")

AD=$(b64_str 'associated data')
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"GCM\",\"plain\":\"$PLAIN\",\"ad\":\"$AD\",\"tag_len\":128}"
check_status "AES-GCM encrypt answers 200" 200
gcm=$BODY
check "AES-GCM returns iv and a 16-byte tag" \
    eval '[[ -n "$(field iv)" && $(field tag | base64 -d | wc -c) == 16 ]]'
gcm_check() {   # key-hex iv tag cipher ad -> plaintext (base64) via OpenSSL
    python3 - "$@" <<'EOF'
import base64, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
key = bytes.fromhex(sys.argv[1])
iv, tag, ct, ad = (base64.b64decode(a) for a in sys.argv[2:6])
d = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=4)).decryptor()
d.authenticate_additional_data(ad)
print(base64.b64encode(d.update(ct) + d.finalize()).decode())
EOF
}
check_eq "AES-GCM: OpenSSL decrypts with key, iv, tag and ad" "$PLAIN" \
    "$(gcm_check "$AES_HEX" "$(field iv)" "$(field tag)" "$(field cipher)" "$AD" 2>/dev/null)"
dec="{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"GCM\",\"cipher\":\"$(field cipher)\",\"iv\":\"$(field iv)\",\"ad\":\"$AD\",\"tag\":\"$(field tag)\"}"
api POST /crypto/v1/decrypt "$dec"
check_status "AES-GCM decrypt answers 200" 200
check_eq "AES-GCM round trip" "$PLAIN" "$(field plain)"
BODY=$gcm
bad_tag=$(field tag | base64 -d | xxd -p | sed 's/^../00/' | xxd -r -p | base64 -w0)
[[ $bad_tag == "$(field tag)" ]] &&
    bad_tag=$(field tag | base64 -d | xxd -p | sed 's/^../01/' | xxd -r -p | base64 -w0)
api POST /crypto/v1/decrypt "$(jq -c --arg t "$bad_tag" '.tag=$t' <<<"$dec")"
check_status "AES-GCM with a wrong tag is refused with 400" 400
api POST /crypto/v1/decrypt "$(jq -c --arg a "$(b64_str other)" '.ad=$a' <<<"$dec")"
check_status "AES-GCM with wrong ad is refused with 400" 400

IV12=$(openssl rand 12 | base64 -w0)
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"GCM\",\"plain\":\"$PLAIN\",\"iv\":\"$IV12\",\"tag_len\":96}"
check_status "AES-GCM with a given iv and tag_len 96 answers 200" 200
check_eq "AES-GCM uses the given iv" "$IV12" "$(field iv)"
check_eq "AES-GCM tag_len is in bits (96 -> 12 bytes)" 12 \
    "$(field tag | base64 -d | wc -c)"
check_eq "AES-GCM tag_len 96: OpenSSL decrypts" "$PLAIN" \
    "$(gcm_check "$AES_HEX" "$(field iv)" "$(field tag)" "$(field cipher)" "" 2>/dev/null)"

api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"$PLAIN\"}"
check_status "AES-CBC encrypt answers 200" 200
unb64 "$(field cipher)" "$WORK/cbc.bin"
iv_hex=$(field iv | base64 -d | xxd -p)
check_eq "AES-CBC returns a 16-byte iv" 32 "${#iv_hex}"
openssl enc -d -aes-256-cbc -K "$AES_HEX" -iv "$iv_hex" -in "$WORK/cbc.bin" \
    -out "$WORK/p.bin" 2>/dev/null || : >"$WORK/p.bin"
check "AES-CBC: openssl enc decrypts (PKCS#7 padding)" \
    cmp -s "$WORK/plain.bin" "$WORK/p.bin"
IV16_HEX=$(openssl rand -hex 16)
openssl enc -aes-256-cbc -K "$AES_HEX" -iv "$IV16_HEX" -in "$WORK/plain.bin" \
    -out "$WORK/cbc2.bin"
api POST /crypto/v1/decrypt "{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"CBC\",\"cipher\":\"$(b64_file "$WORK/cbc2.bin")\",\"iv\":\"$(xxd -r -p <<<"$IV16_HEX" | base64 -w0)\"}"
check_status "AES-CBC decrypt of openssl ciphertext answers 200" 200
check_eq "AES-CBC decrypt recovers openssl's plaintext" "$PLAIN" "$(field plain)"

api POST /crypto/v1/encrypt "{\"key\":{\"inline\":{\"value\":\"$(b64_file "$WORK/aes.key")\",\"obj_type\":\"AES\"}},\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"$PLAIN\"}"
check_status "an inline AES key descriptor encrypts" 200
unb64 "$(field cipher)" "$WORK/inline.bin"
openssl enc -d -aes-256-cbc -K "$AES_HEX" -iv "$(field iv | base64 -d | xxd -p)" \
    -in "$WORK/inline.bin" -out "$WORK/p.bin" 2>/dev/null || : >"$WORK/p.bin"
check "inline AES-CBC: openssl decrypts with the inline key" \
    cmp -s "$WORK/plain.bin" "$WORK/p.bin"
check "no kid is echoed for an inline key" json_is '.kid == null'

check_statuses \
    "400|AES encrypt without mode is refused with 400|POST|/crypto/v1/encrypt|{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"plain\":\"$PLAIN\"}" \
    "400|AES-GCM decrypt without tag is refused with 400|POST|/crypto/v1/decrypt|$(jq -c 'del(.tag)' <<<"$dec")" \
    "400|AES-CBC with a 5-byte iv is refused with 400|POST|/crypto/v1/encrypt|{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"$PLAIN\",\"iv\":\"$(openssl rand 5 | base64 -w0)\"}" \
    "400|AES encrypt with an unknown mode is refused with 400|POST|/crypto/v1/encrypt|{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"XTS9\",\"plain\":\"$PLAIN\"}" \
    "404|encrypt with an unknown kid answers 404|POST|/crypto/v1/encrypt|{\"key\":{\"kid\":\"00000000-0000-4000-8000-000000000000\"},\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"$PLAIN\"}"

generate_key '{"name":"ec-noenc","obj_type":"EC","elliptic_curve":"NistP256"}'
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"EC\",\"plain\":\"$PLAIN\"}"
check "encrypt with an EC key is refused (400 or 403)" \
    eval '[[ "$STATUS" == 400 || "$STATUS" == 403 ]]'

# -- digests ----------------------------------------------------------------------
for md in SHA1 SHA224 SHA256 SHA384 SHA512 SHA3_256 SHA3_512; do
    api POST /crypto/v1/digest "{\"alg\":\"$md\",\"data\":\"$PLAIN\"}"
    check_status "digest $md answers 200" 200
    check_eq "digest $md equals openssl dgst" \
        "$(openssl dgst -"$(ossl_md "${md/_/-}")" -binary "$WORK/plain.bin" | base64 -w0)" \
        "$(field digest)"
done
api POST /crypto/v1/digest "{\"alg\":\"SHA999\",\"data\":\"$PLAIN\"}"
check_status "digest with an unknown alg is refused with 400" 400

api POST /crypto/v1/keys/digest "{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"SHA256\"}"
check_status "keys/digest of an AES key answers 200" 200
check_eq "keys/digest equals sha256 of the exported key bytes" \
    "$(openssl dgst -sha256 -binary "$WORK/aes.key" | base64 -w0)" \
    "$(field digest)"

finish
