#!/usr/bin/env bash
# What a faithful server must accept from real clients (docs/smartkey-api.md
# §1): no Content-Type (Go), application/json (Rust), trailing newline (Go),
# null for absent optional fields (Rust 2022), fields of SmartKey's request
# model the emulator does not implement; and plain-text 400s for malformed
# JSON. Unknown fields are refused: strict.sh.
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth

generate_key '{"name":"lenient-ec","obj_type":"EC","elliptic_curve":"NistP256"}'
EC_KID=$KID
hash=$(sha256_b64 lenient)
SIGN="{\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"

api POST /crypto/v1/sign "$SIGN" -H 'Content-Type:'
check_status "JSON body without Content-Type is accepted (Go client)" 200
api POST /crypto/v1/sign "$SIGN"
check_status "Content-Type application/json is accepted (Rust client)" 200
api POST /crypto/v1/sign "$SIGN" -H 'Content-Type: application/json; charset=utf-8'
check_status "Content-Type with a charset parameter is accepted" 200
api POST /crypto/v1/sign "$SIGN"$'\n' -H 'Content-Type:'
check_status "trailing newline after the JSON body is accepted (Go encoder)" 200
api POST /crypto/v1/sign $'  \n'"$SIGN"$'\r\n\n'
check_status "surrounding whitespace is accepted" 200
request "Basic $APIKEY" POST /sys/v1/session/auth '' -H 'Content-Type:'
check_status "session/auth with an empty body and no Content-Type" 200

api POST /crypto/v1/sign "{\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\",\"data\":null,\"mode\":null,\"deterministic_signature\":null,\"context\":null}"
check_status "null optional fields in sign are treated as absent" 200
api POST /crypto/v1/keys "{\"name\":\"lenient-null\",\"obj_type\":\"AES\",\"key_size\":128,\"key_ops\":null,\"description\":null,\"custom_metadata\":null,\"group_id\":null,\"transient\":null,\"rsa\":null,\"elliptic_curve\":null,\"enabled\":null,\"pub_exponent\":null}"
check_status "null optional fields in generate are treated as absent" 201
check "null key_ops means the default ops (not an empty list)" \
    json_is '.key_ops | index("ENCRYPT") != null'
check "null enabled means enabled" json_is '.enabled == true'
AES_KID=$(field kid)
PLAIN=$(b64_str 'null fields')
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$AES_KID\",\"name\":null,\"transient_key\":null},\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"$PLAIN\",\"iv\":null,\"ad\":null,\"tag_len\":null,\"label\":null}"
check_status "null variants in a descriptor and null iv/ad are accepted" 200
api POST /crypto/v1/keys/info "{\"kid\":\"$EC_KID\",\"name\":null}"
check_status "descriptor {kid, name:null} counts as one variant" 200

api POST /crypto/v1/keys '{"name":"lenient-model","obj_type":"EC","elliptic_curve":"NistP256","publish_public_key":{"state":"disabled"},"export_policy":null}'
check_status "model fields the emulator does not implement are accepted" 201
api POST /sys/v1/session/refresh '' -H 'Content-Type:'
check_status "refresh with an empty body and no Content-Type" 204

for body in '{' '[1,2' 'hello' '{"key":}' "$SIGN}"; do
    api POST /crypto/v1/sign "$body"
    check_status "malformed JSON '$body' is refused with 400" 400
    check_plain_text "malformed-JSON error body is plain text"
done
api POST /crypto/v1/sign '[]'
check_status "a JSON array where an object is expected is refused with 400" 400
api POST /crypto/v1/sign ''
check_status "an empty body on sign is refused with 400" 400
api POST /crypto/v1/keys '{"name":"lenient-badtype","obj_type":"AES","key_size":"256"}'
check_status "a field of the wrong JSON type is refused with 400" 400
api POST /crypto/v1/sign "{\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"sha256\",\"hash\":\"$hash\"}"
check_status "enum spellings are case-sensitive (sha256 refused with 400)" 400
api POST /crypto/v1/sign "{\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$(tr '+/' '-_' <<<"$hash" | tr -d '=')\"}"
check "URL-safe unpadded base64 in a Blob is refused (400) or decoded alike" \
    eval '[[ "$STATUS" == 400 || "$STATUS" == 200 ]]'

api POST /crypto/v1/no-such-endpoint "$SIGN"
check_status "an unknown path answers 404" 404
api GET /crypto/v1/sign
check "another method on a known path is refused (404/405)" \
    eval '[[ "$STATUS" == 404 || "$STATUS" == 405 ]]'
head -c $((9 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$WORK/huge"
bearer_header
STATUS=$(curl -s -o /dev/null -w '%{http_code}' "${CURL_TLS[@]}" \
    -H @"$WORK/bearer" --data-binary @"$WORK/huge" \
    "$ENDPOINT/crypto/v1/sign")
check "a 9 MiB body is refused with a 4xx (413), not a crash" \
    eval '[[ "$STATUS" == 4?? ]]'
api POST /crypto/v1/sign "$SIGN"
check_status "the emulator still answers after a huge body" 200

# Responses use standard padded base64 (docs/smartkey-api.md §1).
api POST /crypto/v1/sign "$SIGN"
sig=$(field signature)
check "response blobs are standard base64 with padding" \
    eval '[[ "$sig" =~ ^[A-Za-z0-9+/]+={0,2}$ && $((${#sig} % 4)) == 0 ]]'

finish
