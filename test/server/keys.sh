#!/usr/bin/env bash
# Key management (docs/smartkey-api.md §3): generate, import, info, list, get, export,
# patch, delete, duplicate names, descriptors, transient keys. Key material is
# always checked with stock openssl.
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth
APP_ID=$(field entity_id)

# pub_key_text: `openssl pkey -text` of the pub_key of the Sobject in BODY
# (empty when pub_key is not a DER SubjectPublicKeyInfo).
pub_key_text() {
    unb64 "$(field pub_key)" "$WORK/pub.der" 2>/dev/null || return 0
    openssl pkey -pubin -inform DER -in "$WORK/pub.der" -noout -text \
        2>/dev/null
}
has_op() { jq -e --arg op "$1" '.key_ops | index($op) != null' \
    <<<"$BODY" >/dev/null; }

# check_sobject WHAT TYPE: the fields every Sobject must carry
# (docs/smartkey-api.md §3.1).
check_sobject() {
    local what=$1 type=$2
    check "$what: kid is a lower-case UUID" uuid_like "$(field kid)"
    check_eq "$what: obj_type" "$type" "$(field obj_type)"
    check "$what: created_at is YYYYMMDDThhmmssZ" \
        eval '[[ "$(field created_at)" =~ ^[0-9]{8}T[0-9]{6}Z$ ]]'
    check "$what: only fields of the Sobject model (no lastused_at)" \
        json_is "$SOBJECT_ONLY_MODEL_FIELDS"
    check "$what: required fields present" json_is \
        '(.acct_id|type=="string") and has("creator") and
         (.enabled==true) and (.key_ops|type=="array") and
         (.origin|type=="string") and (.public_only|type=="boolean")'
    [[ $type == SECRET ]] ||
        check "$what: key_ops default excludes EXPORT" eval '! has_op EXPORT'
    check "$what: no value without export" json_is '.value == null'
    check "$what: state is Active" json_is '.state == "Active"'
    check "$what: creator is this app" json_is \
        "(.creator | type == \"object\") and .creator.app == \"$APP_ID\""
    check "$what: acct_id is a UUID" uuid_like "$(field acct_id)"
}

# -- generate ---------------------------------------------------------------
for bits in 2048 3072 4096; do
    generate_key "{\"name\":\"gen-rsa-$bits\",\"obj_type\":\"RSA\",\"key_size\":$bits}"
    check_status "generate RSA $bits answers 201" 201
    check_sobject "RSA $bits" RSA
    check_eq "RSA $bits key_size" "$bits" "$(field key_size)"
    check "RSA $bits default key_ops include SIGN and DECRYPT" \
        eval 'has_op SIGN && has_op DECRYPT'
    check "RSA $bits pub_key is a $bits-bit RSA SPKI" \
        eval 'pub_key_text | grep -q "^Public-Key: ($bits bit)"'
    check "RSA $bits public_only is false" json_is '.public_only == false'
    check "RSA $bits generated key has origin FortanixHSM" \
        json_is '.origin == "FortanixHSM"'
    check "RSA $bits default key_ops include APPMANAGEABLE" has_op APPMANAGEABLE
done
RSA_KID=$(jq -r .kid <<<"$BODY")
check "RSA default encryption policy is OAEP only (docs/smartkey-api.md §3.5)" \
    json_is '.rsa.encryption_policy == [{"padding":{"OAEP":{}}}]'
check "RSA default signature policy is unconstrained" \
    json_is '.rsa.signature_policy == [{}]'
generate_key '{"name":"gen-rsa-e3","obj_type":"RSA","key_size":2048,"pub_exponent":3}'
check_status "generate RSA with pub_exponent 3 answers 201" 201
check "pub_exponent 3 is the key's public exponent" \
    eval 'pub_key_text | grep -q "^Exponent: 3 "'

declare -A ossl_curve=([NistP256]=prime256v1 [NistP384]=secp384r1
    [NistP521]=secp521r1)
for curve in NistP256 NistP384 NistP521; do
    generate_key "{\"name\":\"gen-ec-$curve\",\"obj_type\":\"EC\",\"elliptic_curve\":\"$curve\"}"
    check_status "generate EC $curve answers 201" 201
    check_sobject "EC $curve" EC
    check_eq "EC $curve elliptic_curve" "$curve" "$(field elliptic_curve)"
    check "EC $curve pub_key is an SPKI on ${ossl_curve[$curve]}" \
        eval 'pub_key_text | grep -q "ASN1 OID: ${ossl_curve[$curve]}"'
    check "EC $curve default key_ops include SIGN" has_op SIGN
done
EC_KID=$(jq -r .kid <<<"$BODY")

for bits in 128 192 256; do
    generate_key "{\"name\":\"gen-aes-$bits\",\"obj_type\":\"AES\",\"key_size\":$bits}"
    check_status "generate AES $bits answers 201" 201
    check_sobject "AES $bits" AES
    check_eq "AES $bits key_size" "$bits" "$(field key_size)"
    check "AES $bits default key_ops include ENCRYPT" has_op ENCRYPT
    check "AES $bits has no pub_key" json_is '.pub_key == null'
done
AES_KID=$(jq -r .kid <<<"$BODY")

generate_key '{"name":"gen-hmac","obj_type":"HMAC","key_size":256}'
check_status "generate HMAC answers 201" 201
check_sobject "HMAC" HMAC
check_eq "HMAC key_size" 256 "$(field key_size)"
check "HMAC default key_ops are MACGENERATE and MACVERIFY" \
    eval 'has_op MACGENERATE && has_op MACVERIFY && ! has_op SIGN'

api POST /crypto/v1/keys '{"name":"gen-secret","obj_type":"SECRET","key_size":256}'
check_status "generating a SECRET (POST) is refused with 400" 400
check_plain_text "400 body is plain text"
check_statuses \
    "400|unknown curve is refused with 400|POST|/crypto/v1/keys|{\"name\":\"gen-bad\",\"obj_type\":\"EC\",\"elliptic_curve\":\"NistP999\"}" \
    "400|AES key_size 100 is refused with 400|POST|/crypto/v1/keys|{\"name\":\"gen-bad2\",\"obj_type\":\"AES\",\"key_size\":100}" \
    "400|unknown key_ops spelling is refused with 400|POST|/crypto/v1/keys|{\"name\":\"gen-bad3\",\"obj_type\":\"AES\",\"key_size\":128,\"key_ops\":[\"FLY\"]}"

generate_key '{"name":"gen-ops","obj_type":"AES","key_size":128,"key_ops":["ENCRYPT","EXPORT"]}'
check_status "generate with explicit key_ops answers 201" 201
check "explicit key_ops are kept as given" \
    json_is '(.key_ops|sort) == ["ENCRYPT","EXPORT"]'

# -- import -----------------------------------------------------------------
openssl rand 32 >"$WORK/secret.bin"
import_key "{\"name\":\"imp-secret\",\"obj_type\":\"SECRET\",\"value\":\"$(b64_file "$WORK/secret.bin")\",\"key_ops\":[\"EXPORT\",\"APPMANAGEABLE\"]}"
check_status "import SECRET answers 201" 201
check_sobject "imported SECRET" SECRET
check_eq "imported SECRET key_size in bits" 256 "$(field key_size)"
check "imported key has origin External (docs/smartkey-api.md §3.1)" \
    json_is '.origin == "External"'
SECRET_KID=$KID

openssl rand 24 >"$WORK/aes192.bin"
import_key "{\"name\":\"imp-aes\",\"obj_type\":\"AES\",\"value\":\"$(b64_file "$WORK/aes192.bin")\",\"key_ops\":[\"ENCRYPT\",\"DECRYPT\",\"EXPORT\"]}"
check_status "import AES-192 raw answers 201" 201
check_eq "imported AES key_size" 192 "$(field key_size)"
IMP_AES_KID=$KID

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/rsa.pem" 2>/dev/null
openssl rsa -in "$WORK/rsa.pem" -outform DER -traditional \
    -out "$WORK/rsa.der" 2>/dev/null
openssl pkey -in "$WORK/rsa.pem" -pubout -outform DER -out "$WORK/rsa-pub.der"
import_key "{\"name\":\"imp-rsa\",\"obj_type\":\"RSA\",\"value\":\"$(b64_file "$WORK/rsa.der")\",\"key_ops\":[\"SIGN\",\"VERIFY\",\"DECRYPT\",\"EXPORT\"]}"
check_status "import RSA PKCS#1 DER answers 201" 201
check_eq "imported RSA key_size" 2048 "$(field key_size)"
check_eq "imported RSA pub_key is the key's SPKI" \
    "$(b64_file "$WORK/rsa-pub.der")" "$(field pub_key)"
check "imported RSA is not public_only" json_is '.public_only == false'
IMP_RSA_KID=$KID

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
    -out "$WORK/ec.pem" 2>/dev/null
openssl ec -in "$WORK/ec.pem" -outform DER -out "$WORK/ec.der" 2>/dev/null
openssl pkey -in "$WORK/ec.pem" -pubout -outform DER -out "$WORK/ec-pub.der"
import_key "{\"name\":\"imp-ec\",\"obj_type\":\"EC\",\"elliptic_curve\":\"NistP384\",\"value\":\"$(b64_file "$WORK/ec.der")\",\"key_ops\":[\"SIGN\",\"VERIFY\",\"EXPORT\"]}"
check_status "import EC RFC 5915 DER answers 201" 201
check_eq "imported EC curve" NistP384 "$(field elliptic_curve)"
check_eq "imported EC pub_key is the key's SPKI" \
    "$(b64_file "$WORK/ec-pub.der")" "$(field pub_key)"
IMP_EC_KID=$KID

import_key "{\"name\":\"imp-rsa-pub\",\"obj_type\":\"RSA\",\"value\":\"$(b64_file "$WORK/rsa-pub.der")\",\"key_ops\":[\"VERIFY\",\"ENCRYPT\",\"WRAPKEY\"]}"
check_status "import RSA public-only SPKI answers 201" 201
check "RSA SPKI import is public_only" json_is '.public_only == true'
check_eq "RSA SPKI import pub_key round-trips" \
    "$(b64_file "$WORK/rsa-pub.der")" "$(field pub_key)"
import_key "{\"name\":\"imp-ec-pub\",\"obj_type\":\"EC\",\"elliptic_curve\":\"NistP384\",\"value\":\"$(b64_file "$WORK/ec-pub.der")\",\"key_ops\":[\"VERIFY\"]}"
check_status "import EC public-only SPKI answers 201" 201
check "EC SPKI import is public_only" json_is '.public_only == true'
EC_PUB_KID=$KID

api PUT /crypto/v1/keys '{"name":"imp-bad","obj_type":"RSA","value":"AAAA"}'
check_status "import of garbage RSA material is refused with 400" 400
api PUT /crypto/v1/keys '{"name":"imp-bad2","obj_type":"AES","value":"not base64!"}'
check_status "import with invalid base64 is refused with 400" 400

# -- export -----------------------------------------------------------------
counters
exports_before=$(counter_field exports)
export_value "$SECRET_KID" "$WORK/secret.out"
check_status "export of a SECRET with EXPORT answers 200" 200
check "exported SECRET equals the imported bytes" \
    cmp -s "$WORK/secret.bin" "$WORK/secret.out"
export_value "$IMP_AES_KID" "$WORK/aes192.out"
check "exported AES equals the imported bytes" \
    cmp -s "$WORK/aes192.bin" "$WORK/aes192.out"
export_value "$IMP_RSA_KID" "$WORK/rsa.out"
check "exported RSA equals the imported PKCS#1 DER" \
    cmp -s "$WORK/rsa.der" "$WORK/rsa.out"
export_value "$IMP_EC_KID" "$WORK/ec.out"
check "exported EC equals the imported RFC 5915 DER" \
    cmp -s "$WORK/ec.der" "$WORK/ec.out"
counters
check_eq "exports counter counts each export" \
    $((exports_before + 4)) "$(counter_field exports)"

api POST /crypto/v1/keys/export "{\"kid\":\"$RSA_KID\"}"
check_status "export without EXPORT is refused with 403" 403
check "refused export carries no value" eval '! json_is .value'
api POST /crypto/v1/keys/export "{\"kid\":\"$EC_PUB_KID\"}"
check "export of a public-only key is refused (4xx)" \
    eval '[[ "$STATUS" == 4?? ]]'
counters
check_eq "refused exports are not counted" \
    $((exports_before + 4)) "$(counter_field exports)"
api POST /crypto/v1/keys/export '{"kid":"00000000-0000-4000-8000-000000000000"}'
check_status "export of an unknown kid answers 404" 404
api POST /crypto/v1/keys/export '{"name":"imp-secret"}'
check_eq "export by name returns the value" "$(b64_file "$WORK/secret.bin")" \
    "$(field value)"
api POST '/crypto/v1/keys/info?show_value=true' "{\"kid\":\"$SECRET_KID\"}"
check_eq "info?show_value=true returns the value of an EXPORT key" \
    "$(b64_file "$WORK/secret.bin")" "$(field value)"
api POST /crypto/v1/keys/info "{\"kid\":\"$SECRET_KID\"}"
check "info without show_value returns no value" json_is '.value == null'
api POST '/crypto/v1/keys/info?show_value=true' "{\"kid\":\"$RSA_KID\"}"
check "show_value never reveals a key without EXPORT" json_is '.value == null'
counters
check_eq "exports counts export-by-name and show_value, nothing else" \
    $((exports_before + 6)) "$(counter_field exports)"

# -- info / get / list --------------------------------------------------------
odd_name='odd name; with spaces;and=semicolons'
generate_key "$(jq -nc --arg n "$odd_name" '{name:$n,obj_type:"EC",elliptic_curve:"NistP256"}')"
check_status "generate a key whose name has spaces and ';'" 201
ODD_KID=$KID
api POST /crypto/v1/keys/info "{\"kid\":\"$ODD_KID\"}"
check_status "info by kid answers 200" 200
check_eq "info by kid returns that key's name" "$odd_name" "$(field name)"
check "info returns pub_key by default" test -n "$(field pub_key)"
api POST '/crypto/v1/keys/info?show_pub_key=true' \
    "$(jq -nc --arg n "$odd_name" '{name:$n}')"
check_status "info by name (spaces, ';') answers 200" 200
check_eq "info by name returns the kid" "$ODD_KID" "$(field kid)"
api POST /crypto/v1/keys/info '{"name":"no such key"}'
check_status "info of an unknown name answers 404" 404
check_plain_text "404 body is plain text"
api POST /crypto/v1/keys/info '{"kid":"00000000-0000-4000-8000-000000000000"}'
check_status "info of an unknown kid answers 404" 404

api GET "/crypto/v1/keys/$ODD_KID"
check_status "legacy GET /crypto/v1/keys/{kid} answers 200" 200
check_eq "GET by kid returns the key" "$ODD_KID" "$(field kid)"
api GET /crypto/v1/keys/00000000-0000-4000-8000-000000000000
check_status "GET of an unknown kid answers 404" 404

api GET /crypto/v1/keys
check_status "list answers 200" 200
check "list is a bare JSON array" json_is 'type == "array"'
check "list contains a generated key" \
    json_is "map(.kid) | index(\"$ODD_KID\") != null"
check "list contains an imported key" \
    json_is "map(.kid) | index(\"$IMP_RSA_KID\") != null"
total=$(jq length <<<"$BODY")
api GET "/crypto/v1/keys?name=$(jq -rn --arg n "$odd_name" '$n|@uri')"
check_status "list with a name filter answers 200" 200
check "name filter returns exactly that key" \
    json_is "length == 1 and .[0].kid == \"$ODD_KID\""
api GET '/crypto/v1/keys?with_metadata=true'
check_status "list with_metadata answers 200" 200
check "with_metadata returns metadata and items" \
    json_is "(.items|type==\"array\") and .metadata.total_count == $total and (.items|length) == $total"

api GET '/crypto/v1/keys?obj_type=AES'
check "list obj_type=AES returns only AES keys" \
    json_is 'length >= 4 and all(.[]; .obj_type == "AES")'
api GET '/crypto/v1/keys?limit=2'
check "list limit=2 returns 2 keys" json_is 'length == 2'
api GET '/crypto/v1/keys?sort=name:asc'
check "list sort=name:asc is sorted by name" \
    json_is '[.[].name] == ([.[].name] | sort)'

# -- patch ------------------------------------------------------------------
hash=$(sha256_b64 patch)
sign_ec="{\"key\":{\"kid\":\"$ODD_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"
api POST /crypto/v1/sign "$sign_ec"
check_status "enabled key signs" 200
api PATCH "/crypto/v1/keys/$ODD_KID" '{"enabled":false}'
check "PATCH enabled=false answers 2xx" is_2xx
check "PATCH returns the key disabled" json_is '.enabled == false'
api POST /crypto/v1/sign "$sign_ec"
check_status "disabled key refuses to sign with 403" 403
api PATCH "/crypto/v1/keys/$ODD_KID" '{"enabled":true}'
api POST /crypto/v1/sign "$sign_ec"
check_status "re-enabled key signs again" 200
api PATCH "/crypto/v1/keys/$ODD_KID" '{"key_ops":["VERIFY","APPMANAGEABLE"]}'
check "PATCH key_ops answers 2xx" is_2xx
check "PATCH key_ops replaces the list" \
    json_is '(.key_ops|sort) == ["APPMANAGEABLE","VERIFY"]'
api POST /crypto/v1/sign "$sign_ec"
check_status "key without SIGN after PATCH refuses to sign with 403" 403
check "403 text says the operation is not allowed" \
    grep -q 'Requested operation is not allowed' <<<"$BODY"
api POST /crypto/v1/keys/info "{\"kid\":\"$ODD_KID\"}"
check_eq "PATCH keeps the name" "$odd_name" "$(field name)"
api POST /crypto/v1/verify "$(jq -c --arg s "$(openssl rand 64 | base64 -w0)" '. + {signature:$s}' <<<"$sign_ec")"
# (random bytes: malformed DER may be 200/false or 400, unconfirmed; not 403)
check "VERIFY still allowed after PATCH key_ops (not 403)" \
    eval '[[ "$STATUS" == 200 || "$STATUS" == 400 ]]'
api PATCH "/crypto/v1/keys/$ODD_KID" '{"name":"renamed key"}'
check "PATCH name answers 2xx" is_2xx
api POST /crypto/v1/keys/info '{"name":"renamed key"}'
check_eq "a renamed key is found by its new name" "$ODD_KID" "$(field kid)"
api POST /crypto/v1/keys/info "$(jq -nc --arg n "$odd_name" '{name:$n}')"
check_status "the old name is gone after a rename" 404
api PATCH "/crypto/v1/keys/$ODD_KID" "$(jq -nc --arg n "$odd_name" '{name:$n}')"
api PATCH "/crypto/v1/keys/$ODD_KID" '{"name":"gen-ec-NistP256"}'
check_status "renaming onto an existing name answers 409" 409
api PATCH /crypto/v1/keys/00000000-0000-4000-8000-000000000000 '{"enabled":false}'
check_status "PATCH of an unknown kid answers 404" 404

# -- key_ops [] disables everything; a Deactivated key refuses crypto (§3.1) --
generate_key '{"name":"no-ops","obj_type":"AES","key_size":128,"key_ops":[]}'
check_status "generate with key_ops [] answers 201" 201
check "explicit empty key_ops stay empty" json_is '.key_ops == []'
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"AAAA\"}"
check_status "a key with no ops refuses to encrypt with 403" 403
generate_key '{"name":"deactivated","obj_type":"AES","key_size":128,"state":"Deactivated"}'
check "generate in state Deactivated keeps the state" \
    json_is '.state == "Deactivated"'
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"AAAA\"}"
check_status "a Deactivated key refuses to encrypt with 403" 403

# -- names: unique, max 4096 chars, no newlines, not all-whitespace (§3.1) --
api POST /crypto/v1/keys '{"name":"   ","obj_type":"AES","key_size":128}'
check_status "an all-whitespace name is refused with 400" 400
api POST /crypto/v1/keys '{"name":"two\nlines","obj_type":"AES","key_size":128}'
check_status "a name with a newline is refused with 400" 400
long=$(printf 'n%.0s' $(seq 4096))
api POST /crypto/v1/keys "{\"name\":\"$long\",\"obj_type\":\"AES\",\"key_size\":128}"
check_status "a 4096-character name is accepted" 201
api POST /crypto/v1/keys "{\"name\":\"x$long\",\"obj_type\":\"AES\",\"key_size\":128}"
check_status "a 4097-character name is refused with 400" 400

# -- APPMANAGEABLE: an app may update or delete only keys that have it -------
generate_key '{"name":"not-manageable","obj_type":"AES","key_size":128,"key_ops":["ENCRYPT"]}'
api PATCH "/crypto/v1/keys/$KID" '{"enabled":false}'
check_status "PATCH of a key without APPMANAGEABLE is refused with 403" 403
api DELETE "/crypto/v1/keys/$KID"
check_status "DELETE of a key without APPMANAGEABLE is refused with 403" 403
api POST /crypto/v1/keys/info "{\"kid\":\"$KID\"}"
check "the refused key is still there and enabled" json_is '.enabled == true'

# -- duplicate names / descriptors -----------------------------------------
api POST /crypto/v1/keys '{"name":"gen-ec-NistP256","obj_type":"EC","elliptic_curve":"NistP256"}'
check_status "generate with a duplicate name answers 409" 409
api PUT /crypto/v1/keys "{\"name\":\"imp-secret\",\"obj_type\":\"SECRET\",\"value\":\"$(b64_file "$WORK/secret.bin")\"}"
check_status "import with a duplicate name answers 409" 409

check_statuses \
    "400|descriptor with no variant is refused with 400|POST|/crypto/v1/keys/info|{}" \
    "400|descriptor with two variants is refused with 400|POST|/crypto/v1/keys/info|{\"kid\":\"$EC_KID\",\"name\":\"gen-ec-NistP521\"}" \
    "400|sign with an empty key descriptor is refused with 400|POST|/crypto/v1/sign|{\"key\":{},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}" \
    "400|sign with a two-variant key descriptor is refused with 400|POST|/crypto/v1/sign|{\"key\":{\"kid\":\"$EC_KID\",\"name\":\"x\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"

# -- transient keys -------------------------------------------------------
api GET /crypto/v1/keys
listed_before=$(jq length <<<"$BODY")
api POST /crypto/v1/keys '{"name":"gen-aes-256","obj_type":"EC","elliptic_curve":"NistP256","transient":true}'
check "transient generate answers 2xx (its name, even a taken one, is ignored)" \
    is_2xx
handle=$(field transient_key)
check "transient generate returns transient_key" test -n "$handle"
check "transient key has no kid" json_is '.kid == null'
check "transient key origin is Transient" json_is '.origin == "Transient"'
apikey_api POST /crypto/v1/keys '{"obj_type":"EC","elliptic_curve":"NistP256","transient":true}'
check "a transient key needs a bearer session: refused with an API key (4xx)" \
    eval '[[ "$STATUS" == 4?? ]]'
api GET /crypto/v1/keys
check_eq "transient key is not listed" "$listed_before" "$(jq length <<<"$BODY")"
sign_tr="{\"key\":{\"transient_key\":\"$handle\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"
api POST /crypto/v1/sign "$sign_tr"
check_status "transient key signs in its session" 200
check "crypto response for a transient key has no kid" json_is '.kid == null'
unb64 "$(field signature)" "$WORK/tr.sig"
api POST /crypto/v1/verify "$(jq -c --arg s "$(b64_file "$WORK/tr.sig")" '. + {signature:$s}' <<<"$sign_tr")"
check "transient key verifies its own signature" json_is '.result == true'
first=$TOKEN
auth
api POST /crypto/v1/sign "$sign_tr"
check "transient key is refused from another session (401/404)" \
    eval '[[ "$STATUS" == 401 || "$STATUS" == 404 ]]'
TOKEN=$first
api POST /crypto/v1/sign "$sign_tr"
check_status "transient key still works in its own session" 200
api POST /sys/v1/session/terminate
auth
api POST /crypto/v1/sign "$sign_tr"
check "transient key is refused after its session ended (401/404)" \
    eval '[[ "$STATUS" == 401 || "$STATUS" == 404 ]]'

# -- delete -----------------------------------------------------------------
api DELETE "/crypto/v1/keys/$ODD_KID"
check_status "DELETE answers 204" 204
check_eq "DELETE has no body" "" "$BODY"
api POST /crypto/v1/keys/info "{\"kid\":\"$ODD_KID\"}"
check_status "info of a deleted key answers 404" 404
api DELETE "/crypto/v1/keys/$ODD_KID"
check_status "second DELETE answers 404" 404
api POST /crypto/v1/sign "$sign_ec"
check_status "deleted key cannot sign (404)" 404
generate_key "$(jq -nc --arg n "$odd_name" '{name:$n,obj_type:"EC",elliptic_curve:"NistP256"}')"
check_status "the name of a deleted key can be reused" 201

finish
