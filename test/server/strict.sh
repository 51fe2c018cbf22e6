#!/usr/bin/env bash
# The strict local server (docs/local-server.md, "Strict requests"): a field
# outside SmartKey's request model, at any depth, a wrong enum spelling, an
# unknown query parameter or a form Content-Type without a body is a 400 whose
# plain text names the field, so a typo in a client request cannot pass the
# suite; --lenient accepts them. Also: answers carry only fields of
# SmartKey's models, and listing pages with sort, start and limit
# (docs/smartkey-api.md §3.1, §3.7).
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth

generate_key '{"name":"strict-ec","obj_type":"EC","elliptic_curve":"NistP256"}'
EC_KID=$KID
generate_key '{"name":"strict-aes","obj_type":"AES","key_size":256,"key_ops":["ENCRYPT","DECRYPT","WRAPKEY","EXPORT"]}'
AES_KID=$KID
generate_key '{"name":"strict-rsa","obj_type":"RSA","key_size":2048,"key_ops":["WRAPKEY","EXPORT","SIGN"]}'
RSA_KID=$KID
hash=$(sha256_b64 strict)
sign() { printf '{"key":{"kid":"%s"},"hash_alg":"%s","hash":"%s"%s}' \
    "$EC_KID" "$1" "$hash" "${2:-}"; }
# refused WHAT FIELD: the last call was a plain-text 400 naming FIELD.
refused() {
    local want="\`$2\`"
    check_status "$1 is refused with 400" 400
    check "$1: the message names $want" eval '[[ "$BODY" == *"$want"* ]]'
    check_plain_text "$1: the error is plain text"
}

# -- unknown fields at every depth -------------------------------------------
api POST /crypto/v1/sign "$(sign SHA256 ',"hash_algo":"SHA256"')"
refused "an unknown top-level field (sign)" hash_algo
api POST /crypto/v1/sign "{\"key\":{\"kid\":\"$EC_KID\",\"kidd\":\"x\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"
refused "an unknown field in the key descriptor" key.kidd
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"plain\":\"AAAA\",\"mode\":{\"OAEP\":{\"mgf\":{\"mgf1\":{\"hash\":\"SHA256\",\"salt\":1}}}}}"
refused "an unknown field four levels down (mode.OAEP.mgf.mgf1)" \
    mode.OAEP.mgf.mgf1.salt
api POST /crypto/v1/keys '{"name":"strict-typo","obj_type":"RSA","key_size":2048,"rsa":{"encryption_policy":[{"paddding":{"OAEP":{}}}]}}'
refused "an unknown field in an array of policies" \
    'rsa.encryption_policy[0].paddding'
api POST /crypto/v1/keys/batch/encrypt "[{\"kid\":\"$AES_KID\",\"request\":{\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"AAAA\",\"key\":{\"kid\":\"$AES_KID\"}}}]"
refused "a key inside a batch encrypt item's request" '[0].request.key'
api POST /crypto/v1/keys/batch/sign "[$(sign SHA256),$(sign SHA256 ',"extra":1')]"
refused "an unknown field in the second batch sign item" '[1].extra'
api POST /crypto/v1/wrapkey "{\"key\":{\"kid\":\"$RSA_KID\"},\"subject\":{\"kid\":\"$AES_KID\"},\"alg\":\"RSA\",\"mode\":{\"OAEP\":{\"mgf\":{\"mgf1\":{\"hash\":\"SHA1\"}}}},\"keyformat\":\"Default\"}"
refused "an unknown field in wrapkey" keyformat
api POST /crypto/v1/keys/info "{\"kid\":\"$EC_KID\",\"show_pub_key\":true}"
refused "a query parameter sent as a body field of keys/info" show_pub_key
api POST /sys/v1/session/refresh '{"token":"x"}'
refused "a body field on a session call (which takes none)" token
api GET '/crypto/v1/keys?limt=2'
refused "an unknown query parameter" limt
api POST '/crypto/v1/keys/info?show_pubkey=true' "{\"kid\":\"$EC_KID\"}"
refused "an unknown query parameter of keys/info" show_pubkey

# -- enum spellings ------------------------------------------------------------
api POST /crypto/v1/sign "$(sign Sha256)"
refused "hash_alg Sha256 (SmartKey spells SHA256)" hash_alg
api POST /crypto/v1/keys '{"name":"strict-curve","obj_type":"EC","elliptic_curve":"P256"}'
refused "elliptic_curve P256 (SmartKey spells NistP256)" elliptic_curve
api POST /crypto/v1/keys '{"name":"strict-ops","obj_type":"AES","key_size":128,"key_ops":["ENCRYPT","Decrypt"]}'
refused "a key_ops entry Decrypt" 'key_ops[1]'
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"cbc\",\"plain\":\"AAAA\"}"
refused "cipher mode cbc" mode
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$RSA_KID\"},\"alg\":\"RSA\",\"plain\":\"AAAA\",\"mode\":{\"OAEP\":{\"mgf\":{\"MGF1\":{\"hash\":\"SHA256\"}}}}}"
refused "an upper-case MGF1 tag" mode.OAEP.mgf.MGF1
api POST /crypto/v1/wrapkey "{\"key\":{\"kid\":\"$RSA_KID\"},\"subject\":{\"kid\":\"$AES_KID\"},\"alg\":\"RSA\",\"mode\":{\"OAEP\":{\"mgf\":{\"mgf1\":{\"hash\":\"SHA1\"}}}},\"key_format\":\"PKCS8\"}"
refused "key_format PKCS8 (SmartKey spells Pkcs8)" key_format

# -- key_format Pkcs8 only for asymmetric subjects (issue 16, item 5) -------
api POST /crypto/v1/keys '{"obj_type":"AES","key_size":256,"transient":true,"key_ops":["WRAPKEY"]}'
transient=$(field transient_key)
api POST /crypto/v1/wrapkey "{\"key\":{\"transient_key\":\"$transient\"},\"subject\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"KWP\",\"key_format\":\"Pkcs8\"}"
check_status "key_format Pkcs8 for an AES subject is refused with 400" 400
check "the message says AES objects have no PKCS#8 form" \
    eval '[[ "$BODY" == *"AES objects have no PKCS#8 form"* ]]'
api POST /crypto/v1/wrapkey "{\"key\":{\"transient_key\":\"$transient\"},\"subject\":{\"kid\":\"$AES_KID\"},\"alg\":\"AES\",\"mode\":\"KWP\"}"
check_status "the same wrap without key_format answers 200" 200
api POST /crypto/v1/wrapkey "{\"key\":{\"transient_key\":\"$transient\"},\"subject\":{\"kid\":\"$RSA_KID\"},\"alg\":\"AES\",\"mode\":\"KWP\",\"key_format\":\"Pkcs8\"}"
check_status "key_format Pkcs8 for an RSA subject answers 200" 200

# -- form Content-Type (libcurl's default for a POST) --------------------------
# form_auth: POST /sys/v1/session/auth as libcurl sends a POST with an empty
# body and no Content-Type of its own: with its form type.
form_auth() {
    printf 'Authorization: Basic %s\n' "$APIKEY" >"$WORK/authorization"
    STATUS=$(curl -s -o "$WORK/body" -w '%{http_code}' "${CURL_TLS[@]}" \
        -H @"$WORK/authorization" -d '' "$ENDPOINT/sys/v1/session/auth")
    BODY=$(cat "$WORK/body")
}
form_auth
refused "session/auth with a form Content-Type and no body" \
    application/x-www-form-urlencoded
request "Basic $APIKEY" POST /sys/v1/session/auth '' -H 'Content-Type:'
check_status "session/auth with no body and no Content-Type answers 200" 200

# -- answers: only fields of SmartKey's models ---------------------------------
api POST /crypto/v1/keys/info "{\"kid\":\"$RSA_KID\"}"
check "an RSA Sobject has only fields of the model (no lastused_at)" \
    json_is "$SOBJECT_ONLY_MODEL_FIELDS"
check "an RSA Sobject's rsa object has only fields of RsaOptions" \
    json_is '.rsa | keys - ["key_size","public_exponent","encryption_policy","signature_policy","minimum_key_length"] == []'
api GET '/crypto/v1/keys?with_metadata=true'
check "every listed Sobject has only fields of the model" \
    json_is "all(.items[]; $SOBJECT_ONLY_MODEL_FIELDS)"
check "the list envelope has only metadata and items" \
    json_is '(keys == ["items","metadata"]) and (.metadata | keys == ["filtered_count","total_count"])'
api POST /crypto/v1/keys '{"obj_type":"EC","elliptic_curve":"NistP256","transient":true}'
check "a transient Sobject has only fields of the model" \
    json_is "$SOBJECT_ONLY_MODEL_FIELDS"
check "a transient key's origin is Transient" json_is '.origin == "Transient"'
api POST /crypto/v1/sign "$(sign SHA256)"
check "a sign answer has only kid and signature" \
    json_is 'keys == ["kid","signature"]'
request "Basic $APIKEY" POST /sys/v1/session/auth
check "an auth answer has only AuthResponse fields" \
    json_is 'keys - ["token_type","access_token","expires_in","entity_id"] == []'

# -- listing pages: sort, start, limit ----------------------------------------
for i in 1 2 3 4 5; do
    generate_key "{\"name\":\"page-$i\",\"obj_type\":\"AES\",\"key_size\":128}"
done
api GET '/crypto/v1/keys?obj_type=AES&sort=kid:asc'
all_asc=$(jq -c '[.[].kid]' <<<"$BODY")
check "sort=kid:asc lists kids in ascending order" \
    json_is '[.[].kid] == ([.[].kid] | sort) and length >= 6'
api GET '/crypto/v1/keys?obj_type=AES&sort=kid:desc'
check "sort=kid:desc lists kids in descending order" \
    json_is "[.[].kid] == ($all_asc | reverse)"
# walk the ascending list two at a time, each page starting after the last kid
pages=() start=""
for ((n = 0; n < 10; n++)); do
    api GET "/crypto/v1/keys?obj_type=AES&sort=kid:asc&limit=2${start:+&start=$start}"
    [[ "$STATUS" == 200 ]] || break
    page=$(jq -c '[.[].kid]' <<<"$BODY")
    [[ "$page" == "[]" ]] && break
    pages+=("$page")
    start=$(jq -r '.[-1].kid' <<<"$BODY")
done
check "pages of limit=2 with start=<last kid> hold 2 keys (last: 1 or 2)" \
    eval '[[ ${#pages[@]} -ge 3 ]] && jq -e "length <= 2 and length >= 1" <<<"${pages[-1]}" >/dev/null'
check "the pages together are the whole ascending list, each key once" \
    eval '[[ "$(printf "%s\n" "${pages[@]}" | jq -sc "add")" == "$all_asc" ]]'
mid=$(jq -r '.[2]' <<<"$all_asc")
api GET "/crypto/v1/keys?obj_type=AES&sort=kid:desc&start=$mid&limit=10"
check "start with kid:desc begins after start, going down" \
    json_is "[.[].kid] == ($all_asc | .[0:2] | reverse)"
api GET '/crypto/v1/keys?obj_type=AES&sort=name:asc&start=page-2&limit=2'
check "start with name:asc begins after that name" \
    json_is '[.[].name] == ["page-3","page-4"]'
api GET "/crypto/v1/keys?start=$mid"
check_status "start without sort is refused with 400" 400
stop_emulator

# -- --lenient keeps the old behaviour -----------------------------------------
STATE="$WORK/lenient-state"
start_emulator --lenient
auth
generate_key '{"name":"lenient-ec","obj_type":"EC","elliptic_curve":"NistP256","never_heard_of":"it"}'
check_status "--lenient: an unknown field in generate is accepted (201)" 201
EC_KID=$KID
api POST /crypto/v1/sign "$(sign SHA256 ',"some_future_field":{"x":[1,2]}')"
check_status "--lenient: an unknown top-level field in sign is accepted" 200
api POST /crypto/v1/sign "{\"key\":{\"kid\":\"$EC_KID\",\"kidd\":\"x\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"
check_status "--lenient: an unknown nested field is accepted" 200
api GET '/crypto/v1/keys?limt=2'
check_status "--lenient: an unknown query parameter is accepted" 200
form_auth
check_status "--lenient: session/auth with a form Content-Type answers 200" 200
generate_key '{"name":"lenient-aes","obj_type":"AES","key_size":256,"key_ops":["EXPORT"]}'
LAES_KID=$KID
api POST /crypto/v1/keys '{"obj_type":"AES","key_size":256,"transient":true,"key_ops":["WRAPKEY"]}'
transient=$(field transient_key)
api POST /crypto/v1/wrapkey "{\"key\":{\"transient_key\":\"$transient\"},\"subject\":{\"kid\":\"$LAES_KID\"},\"alg\":\"AES\",\"mode\":\"KWP\",\"key_format\":\"Pkcs8\"}"
check_status "--lenient: key_format Pkcs8 for an AES subject is ignored (200)" 200
api POST /crypto/v1/sign "$(sign sha256)"
check_status "--lenient: a wrong enum spelling is still refused by the handler" 400

finish
