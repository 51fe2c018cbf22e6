#!/usr/bin/env bash
# The emulator's test controls (its command-line contract): counters, faults,
# latency, approval switch, and their absence without --test-controls.
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth
bearer_header

generate_key '{"name":"controls-ec","obj_type":"EC","elliptic_curve":"NistP256"}'
EC_KID=$KID
hash=$(sha256_b64 controls)
SIGN="{\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"
printf '%s' "$SIGN" >"$WORK/sign.json"

# -- counters ---------------------------------------------------------------------
control POST /_emulator/counters/reset
check_status "counters/reset answers 204" 204
counters
check "counters after reset are all zero" \
    eval 'jq -e ".requests_total == 0 and ([.requests[]?] | add // 0) == 0 and .exports == 0" <<<"$COUNTERS" >/dev/null'
for i in 1 2 3; do api POST /crypto/v1/sign "$SIGN"; done
api GET "/crypto/v1/keys/$EC_KID"
api POST /crypto/v1/keys/info "{\"kid\":\"$EC_KID\"}"
api POST /crypto/v1/sign '{"key":{"kid":"00000000-0000-4000-8000-000000000000"},"hash_alg":"SHA256","hash":"AAAA"}'
counters
check_eq "POST /crypto/v1/sign count equals what was sent (incl. failures)" 4 \
    "$(counter 'POST /crypto/v1/sign')"
check_eq "kid in the path is counted as {kid}" 1 \
    "$(counter 'GET /crypto/v1/keys/{kid}')"
check_eq "keys/info counted" 1 "$(counter 'POST /crypto/v1/keys/info')"
check_eq "requests_total counts every API request, not the controls" 6 \
    "$(counter_field requests_total)"
check "counters have connections, tls_handshakes and exports numbers" \
    eval 'jq -e "(.connections|type==\"number\") and (.tls_handshakes|type==\"number\") and (.exports|type==\"number\")" <<<"$COUNTERS" >/dev/null'
control POST /_emulator/counters/reset
counters
check_eq "counters/reset zeroes the per-path counts" 0 \
    "$(counter 'POST /crypto/v1/sign')"

# -- connections and TLS handshakes ------------------------------------------------
# Reading the counters costs a connection of its own (maybe counted): measure
# that overhead first and compare deltas.
conn_now() { counters; echo "$(counter_field connections) $(counter_field tls_handshakes)"; }
read -r c0 h0 <<<"$(conn_now)"
read -r c1 h1 <<<"$(conn_now)"
overhead_c=$((c1 - c0))
overhead_h=$((h1 - h0))
keepalive=(curl -s "${CURL_TLS[@]}" -H @"$WORK/bearer"
    -H 'Content-Type: application/json' --data-binary @"$WORK/sign.json")
for i in 1 2 3 4 5; do keepalive+=(-o /dev/null "$ENDPOINT/crypto/v1/sign"); done
"${keepalive[@]}"
read -r c2 h2 <<<"$(conn_now)"
check_eq "5 requests over one keep-alive curl use 1 connection" 1 \
    $((c2 - c1 - overhead_c))
check_eq "5 requests over one keep-alive curl cost 1 TLS handshake" 1 \
    $((h2 - h1 - overhead_h))
for i in 1 2 3; do
    curl -s -o /dev/null "${CURL_TLS[@]}" -H @"$WORK/bearer" \
        --data-binary @"$WORK/sign.json" "$ENDPOINT/crypto/v1/sign"
done
read -r c3 h3 <<<"$(conn_now)"
check_eq "3 separate curl runs use 3 connections" 3 $((c3 - c2 - overhead_c))
check_eq "3 separate curl runs cost 3 TLS handshakes" 3 $((h3 - h2 - overhead_h))

# -- faults -------------------------------------------------------------------------
add_fault() {
    control POST /_emulator/faults "$1"
    check "fault rule $2 is accepted" is_2xx
}

add_fault '{"path":"/crypto/v1/sign","count":1,"action":"status","status":503,"retry_after":2}' status
api POST /crypto/v1/sign "$SIGN"
check_status "status fault answers the configured 503" 503
check "status fault sends Retry-After: 2" \
    grep -qiE '^Retry-After: *2' "$HEADERS"
check_plain_text "status fault body is plain text"
api POST /crypto/v1/sign "$SIGN"
check_status "a fault with count 1 is consumed by one request" 200

add_fault '{"path":"/crypto/v1/sign","count":2,"action":"status","status":500}' "status x2"
api POST /crypto/v1/keys/info "{\"kid\":\"$EC_KID\"}"
check_status "a fault on one path leaves other paths alone" 200
api POST /crypto/v1/sign "$SIGN"
check_status "status fault 500 (1 of 2)" 500
check "no Retry-After without retry_after" \
    eval '! grep -qi "^Retry-After:" "$HEADERS"'
api POST /crypto/v1/sign "$SIGN"
check_status "status fault 500 (2 of 2)" 500
api POST /crypto/v1/sign "$SIGN"
check_status "after count requests the fault is gone" 200

add_fault '{"path":"*","count":1,"action":"reset"}' reset
counters
check "controls are not affected by a '*' fault" \
    eval 'jq -e .requests_total <<<"$COUNTERS" >/dev/null'
api POST /crypto/v1/sign "$SIGN"
check "reset fault closes the connection (curl exit 52 or 56)" \
    eval '[[ $CURL_RC == 52 || $CURL_RC == 56 ]]'
api POST /crypto/v1/sign "$SIGN"
check_status "next request after a reset answers normally" 200

add_fault '{"path":"*","count":2,"action":"status","status":502}' "'*' status"
api POST /crypto/v1/keys/info "{\"kid\":\"$EC_KID\"}"
check_status "a '*' fault hits keys/info" 502
request "Basic $APIKEY" POST /sys/v1/session/auth
check_status "a '*' fault hits session/auth" 502
api POST /crypto/v1/keys/info "{\"kid\":\"$EC_KID\"}"
check_status "the '*' fault is used up after its count" 200

add_fault '{"path":"/crypto/v1/sign","count":1,"action":"stall","seconds":1}' stall
api POST /crypto/v1/sign "$SIGN"
check_status "stalled request still answers normally" 200
check "stalled request carries a real signature" \
    eval '[[ -n "$(field signature)" ]]'

add_fault '{"path":"/crypto/v1/sign","count":1,"action":"truncate"}' truncate
api POST /crypto/v1/sign "$SIGN"
check_eq "truncate fault cuts the body short (curl exit 18)" 18 "$CURL_RC"

add_fault '{"path":"/crypto/v1/sign","count":1,"action":"malformed"}' malformed
api POST /crypto/v1/sign "$SIGN"
check_status "malformed fault answers 200" 200
check "malformed fault body is not valid JSON" \
    eval '! jq -e . <<<"$BODY" >/dev/null 2>&1'

add_fault '{"path":"/crypto/v1/sign","count":1,"action":"oversized","bytes":200000}' oversized
api POST /crypto/v1/sign "$SIGN"
check_status "oversized fault answers 200" 200
check "oversized fault body is at least the requested bytes" \
    eval '[[ $(stat -c %s "$WORK/body") -ge 200000 ]]'

add_fault '{"path":"/crypto/v1/sign","count":1,"action":"wrong_type"}' wrong_type
api POST /crypto/v1/sign "$SIGN"
check_status "wrong_type fault answers 200" 200
check "wrong_type fault body is JSON whose signature is not a string" \
    eval 'jq -e "type == \"object\" and (.signature|type) != \"string\"" <<<"$BODY" >/dev/null'

add_fault '{"path":"*","count":100,"action":"status","status":503}' "status x100"
control DELETE /_emulator/faults
check "DELETE faults answers 2xx" is_2xx
api POST /crypto/v1/sign "$SIGN"
check_status "DELETE /_emulator/faults clears every rule" 200

control POST /_emulator/faults '{"path":"/crypto/v1/sign","count":1,"action":"explode"}'
check_status "unknown fault action is refused with 400" 400

# -- latency ------------------------------------------------------------------------
control POST /_emulator/latency '{"ms":200}'
check "latency control answers 2xx" is_2xx
api POST /crypto/v1/sign "$SIGN"
check_status "requests still answer with added latency" 200
control POST /_emulator/latency '{"ms":0}'
check "latency can be set back to 0" is_2xx

# -- approval switch -----------------------------------------------------------------
control POST /_emulator/approval '{"required":true}'
check "approval switch on answers 2xx" is_2xx
api POST /crypto/v1/sign "$SIGN"
check_status "crypto call needing approval answers 403" 403
check_eq "approval text is exact" "This operation requires approval" \
    "$(printf '%s' "$BODY" | sed 's/[[:space:]]*$//')"
generate_key '{"name":"controls-aes","obj_type":"AES","key_size":128}'
api POST /crypto/v1/encrypt "{\"key\":{\"kid\":\"$KID\"},\"alg\":\"AES\",\"mode\":\"CBC\",\"plain\":\"$(b64_str approval)\"}"
check_status "encrypt needing approval answers 403" 403
check_eq "encrypt approval text is exact" "This operation requires approval" \
    "$(printf '%s' "$BODY" | sed 's/[[:space:]]*$//')"
control POST /_emulator/approval '{"required":false}'
api POST /crypto/v1/sign "$SIGN"
check_status "approval switch off: crypto call answers 200" 200

# -- without --test-controls ----------------------------------------------------------
stop_emulator
TEST_CONTROLS=()
STATE="$WORK/state-nocontrols"
start_emulator
control GET /_emulator/counters
check_status "without --test-controls the counters are 404" 404
control POST /_emulator/approval '{"required":true}'
check_status "without --test-controls the approval switch is 404" 404
control POST /_emulator/faults '{"path":"*","count":1,"action":"reset"}'
check_status "without --test-controls faults are 404" 404

finish
