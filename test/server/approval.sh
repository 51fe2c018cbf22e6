#!/usr/bin/env bash
# Quorum approvals (docs/smartkey-api.md §6): group approval policies, the
# 403 of a direct call on a protected key, approval requests (create, get,
# list and its filters, approve, deny, delete, result), the quorum, expiry,
# and the test apps that approve.
. "$(dirname "$0")/lib.sh" "$1"

start_emulator
auth
MAIN_TOKEN=$TOKEN

# app NAME: a test app; sets APP_ID and APP_KEY.
app() {
    control POST /_emulator/apps "{\"name\":\"$1\"}"
    APP_ID=$(field app_id)
    APP_KEY=$(field api_key)
}
# as KEY METHOD PATH [JSON]: a call with another app's API key.
as() { local key=$1; shift; request "Basic $key" "$@"; }

app approver-1; A1=$APP_ID; K1=$APP_KEY
check_status "POST /_emulator/apps makes an app" 201
check "an app has a UUID id" uuid_like "$A1"
app approver-2; A2=$APP_ID; K2=$APP_KEY
app outsider; A3=$APP_ID; K3=$APP_KEY
control POST /_emulator/apps '{"name":"x","extra":1}'
check_status "an app with an unknown field is refused" 400
as "$K1" POST /sys/v1/session/auth
check_status "an app authenticates with its API key" 200
check_eq "its session names the app" "$A1" "$(field entity_id)"
request "Basic $(b64_str nobody:secret)" POST /sys/v1/session/auth
check_status "an unknown API key is still refused" 401

# -- groups and policies ----------------------------------------------------------
POLICY="{\"quorum\":{\"n\":2,\"members\":[{\"app\":\"$A1\"},{\"app\":\"$A2\"},{\"user\":\"00000000-0000-4000-8000-000000000001\"}]}}"
check_statuses \
    "400|a quorum with n above its members is refused|POST|/sys/v1/groups|{\"name\":\"g\",\"approval_policy\":{\"policy\":{\"quorum\":{\"n\":3,\"members\":[{\"app\":\"$A1\"}]}},\"protect_crypto_operations\":true}}" \
    "400|a quorum with an unknown field is refused|POST|/sys/v1/groups|{\"name\":\"g\",\"approval_policy\":{\"policy\":{\"quorum\":{\"n\":1,\"members\":[{\"app\":\"$A1\"}],\"m\":1}},\"protect_crypto_operations\":true}}" \
    "400|an approval policy with an unknown field is refused|POST|/sys/v1/groups|{\"name\":\"g\",\"approval_policy\":{\"policy\":$POLICY,\"protect_everything\":true}}" \
    "400|a group without a name is refused|POST|/sys/v1/groups|{}"
api POST /sys/v1/groups "{\"name\":\"quorum-2\",\"description\":\"BYOK masters\",\"approval_policy\":{\"policy\":$POLICY,\"protect_crypto_operations\":true}}"
check_status "a group with a quorum policy is created" 201
GROUP=$(field group_id)
check "the group has its policy" json_is ".approval_policy.policy.quorum.n == 2 and .approval_policy.protect_crypto_operations == true"
api POST /sys/v1/groups '{"name":"quorum-2"}'
check_status "a second group of the same name is refused" 409
api GET "/sys/v1/groups/$GROUP"
check_status "GET a group" 200
api GET /sys/v1/groups
check "the list has the group and the default group" json_is "length == 2"
api POST /sys/v1/groups "{\"name\":\"manage-only\",\"approval_policy\":{\"policy\":{\"app\":\"$A1\"},\"protect_crypto_operations\":false}}"
MANAGE_GROUP=$(field group_id)

generate_key "{\"name\":\"protected-ec\",\"obj_type\":\"EC\",\"elliptic_curve\":\"NistP256\",\"group_id\":\"$GROUP\"}"
PKID=$KID
save_public "$WORK/protected.pem"
generate_key "{\"name\":\"free-ec\",\"obj_type\":\"EC\",\"elliptic_curve\":\"NistP256\",\"group_id\":\"$MANAGE_GROUP\"}"
FKID=$KID
generate_key '{"name":"master-aes","obj_type":"AES","key_size":256,"key_ops":["WRAPKEY","EXPORT","ENCRYPT","DECRYPT"]}'
AES_KID=$KID
generate_key "{\"name\":\"protected-aes\",\"obj_type\":\"AES\",\"key_size\":256,\"key_ops\":[\"WRAPKEY\",\"EXPORT\",\"ENCRYPT\"],\"group_id\":\"$GROUP\"}"
PAES_KID=$KID

printf 'approve me' >"$WORK/msg"
hash=$(openssl dgst -sha256 -binary "$WORK/msg" | base64 -w0)
SIGN="{\"key\":{\"kid\":\"$PKID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"

# -- the direct call ----------------------------------------------------------------
api POST /crypto/v1/sign "$SIGN"
check_status "a direct sign on a protected key answers 403" 403
check_eq "with SmartKey's text" "This operation requires approval" "$BODY"
api POST /crypto/v1/wrapkey "{\"key\":{\"kid\":\"$AES_KID\"},\"subject\":{\"kid\":\"$PAES_KID\"},\"alg\":\"AES\",\"mode\":\"KWP\"}"
check_status "a wrap whose subject is protected answers 403" 403
api POST /crypto/v1/keys/batch/sign "[{\"key\":{\"kid\":\"$PKID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}]"
check_status "a batch naming a protected key answers 403" 403
api POST /crypto/v1/sign "{\"key\":{\"kid\":\"$FKID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"
check_status "a group protecting only management lets crypto calls run" 200
api POST /crypto/v1/keys/info "{\"kid\":\"$PKID\"}"
check_status "key lookup on a protected key is not an operation to approve" 200

# -- create ---------------------------------------------------------------------------
check_statuses \
    "400|an approval request for an unprotected call is refused|POST|/sys/v1/approval_requests|{\"method\":\"POST\",\"operation\":\"/crypto/v1/sign\",\"body\":{\"key\":{\"kid\":\"$FKID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}}" \
    "400|an operation that is not a crypto call is refused|POST|/sys/v1/approval_requests|{\"method\":\"POST\",\"operation\":\"/sys/v1/groups\",\"body\":{\"name\":\"x\"}}" \
    "400|the nested body is checked strictly|POST|/sys/v1/approval_requests|{\"method\":\"POST\",\"operation\":\"/crypto/v1/sign\",\"body\":{\"key\":{\"kid\":\"$PKID\"},\"hash_alg\":\"sha256\",\"hash\":\"$hash\"}}" \
    "400|an unknown method spelling is refused|POST|/sys/v1/approval_requests|{\"method\":\"post\",\"operation\":\"/crypto/v1/sign\",\"body\":$SIGN}" \
    "400|an unknown field is refused|POST|/sys/v1/approval_requests|{\"method\":\"POST\",\"operation\":\"/crypto/v1/sign\",\"body\":$SIGN,\"reason\":\"x\"}"
api POST /sys/v1/approval_requests "{\"method\":\"POST\",\"operation\":\"/crypto/v1/sign\",\"body\":$SIGN,\"description\":\"sign release notes\"}"
check_status "an approval request is created" 201
RID=$(field request_id)
check "it has a UUID request_id" uuid_like "$RID"
check "it is PENDING with the call, the requester and the description" \
    json_is ".status == \"PENDING\" and .method == \"POST\" and .operation == \"/crypto/v1/sign\" and .body.hash == \"$hash\" and (.requester.app|type==\"string\") and .description == \"sign release notes\""
check "its subject is the key and its reviewers the policy's members" \
    json_is ".subjects == [{\"sobject\":\"$PKID\"}] and (.reviewers | length) == 3 and .approvers == []"
check "it has created_at, expiry and result_viewed" \
    json_is "(.created_at|test(\"^[0-9]{8}T[0-9]{6}Z$\")) and (.expiry|test(\"^[0-9]{8}T[0-9]{6}Z$\")) and .result_viewed == false"
REQUESTER=$(field requester.app)

# -- list and filters ---------------------------------------------------------------
api POST /sys/v1/approval_requests "{\"method\":\"POST\",\"operation\":\"/crypto/v1/wrapkey\",\"body\":{\"key\":{\"kid\":\"$AES_KID\"},\"subject\":{\"kid\":\"$PAES_KID\"},\"alg\":\"AES\",\"mode\":\"KWP\"}}"
RID_WRAP=$(field request_id)
check "a wrap's subjects name the protected subject key only" \
    json_is ".subjects == [{\"sobject\":\"$PAES_KID\"}]"
api GET /sys/v1/approval_requests
check "the list has both requests" json_is "length == 2"
api GET "/sys/v1/approval_requests?subject=$PKID"
check "subject= filters by key" json_is "length == 1 and .[0].request_id == \"$RID\""
api GET "/sys/v1/approval_requests?reviewer=$A1&status=PENDING"
check "reviewer= and status= filter" json_is "length == 2"
api GET "/sys/v1/approval_requests?reviewer=$A3"
check "an app outside the policy reviews nothing" json_is "length == 0"
api GET "/sys/v1/approval_requests?requester=$REQUESTER"
check "requester= filters by the app that asked" json_is "length == 2"
api GET "/sys/v1/approval_requests?status=pending"
check_status "status= takes SmartKey's spelling only" 400
api GET "/sys/v1/approval_requests?owner=x"
check_status "an unknown filter is refused" 400

# -- quorum ---------------------------------------------------------------------------
api POST "/sys/v1/approval_requests/$RID/approve" '{}'
check_status "the requester cannot approve its own request" 403
as "$K3" POST "/sys/v1/approval_requests/$RID/approve"
check_status "an app outside the policy cannot approve" 403
api POST "/sys/v1/approval_requests/$RID/result"
check_status "no result while pending" 400
as "$K1" POST "/sys/v1/approval_requests/$RID/approve"
check_status "a member approves" 200
check "one approval of a quorum of 2 leaves it PENDING" \
    json_is ".status == \"PENDING\" and .approvers == [{\"app\":\"$A1\"}]"
as "$K1" POST "/sys/v1/approval_requests/$RID/approve"
check "the same member approving twice counts once" \
    json_is ".status == \"PENDING\" and (.approvers|length) == 1"
as "$K2" POST "/sys/v1/approval_requests/$RID/result"
check_status "only the requester reads the result" 403
reset_counters
as "$K2" POST "/sys/v1/approval_requests/$RID/approve"
check_status "the second member approves" 200
check "the quorum is reached: APPROVED" json_is ".status == \"APPROVED\""
counters
check_eq "the approved call ran inside the server (not a wire request)" 0 \
    "$(counter 'POST /crypto/v1/sign')"
api POST "/sys/v1/approval_requests/$RID/result"
check_status "the requester reads the result" 200
check "the result is {status, body} with the call's answer" \
    json_is '.status == 200 and (.body.signature|type=="string") and (.body.kid|type=="string")'
unb64 "$(field body.signature)" "$WORK/sig.der"
check "the signature made on approval verifies" \
    eval 'openssl dgst -sha256 -verify "$WORK/protected.pem" -signature "$WORK/sig.der" "$WORK/msg" >/dev/null'
api GET "/sys/v1/approval_requests/$RID"
check "result_viewed is set" json_is ".result_viewed == true and .status == \"APPROVED\""
as "$K1" POST "/sys/v1/approval_requests/$RID/deny" '{"reason":"late"}'
check_status "an approved request cannot be denied" 409

# -- deny ---------------------------------------------------------------------------
as "$K1" POST "/sys/v1/approval_requests/$RID_WRAP/deny" '{"reason":"not during the freeze"}'
check_status "a member denies" 200
check "DENIED with the denier and the reason" \
    json_is ".status == \"DENIED\" and .denier == {\"app\":\"$A1\"} and .denial_reason == \"not during the freeze\""
as "$K2" POST "/sys/v1/approval_requests/$RID_WRAP/approve"
check_status "a denied request cannot be approved" 409
api POST "/sys/v1/approval_requests/$RID_WRAP/result"
check_status "a denied request has no result" 400
check "the answer gives the reason" eval '[[ "$BODY" == *"not during the freeze"* ]]'
as "$K1" POST "/sys/v1/approval_requests/$RID_WRAP/deny" '{"reason":5}'
check_status "a reason that is not a string is refused" 400

# -- the call fails once approved: FAILED, the body a string ------------------------
api POST /sys/v1/approval_requests "{\"method\":\"POST\",\"operation\":\"/crypto/v1/sign\",\"body\":{\"key\":{\"kid\":\"$PKID\"},\"hash_alg\":\"SHA256\",\"hash\":\"$(b64_str short)\"}}"
RID_BAD=$(field request_id)
as "$K1" POST "/sys/v1/approval_requests/$RID_BAD/approve"
as "$K2" POST "/sys/v1/approval_requests/$RID_BAD/approve"
check "a call that fails once approved is FAILED" json_is '.status == "FAILED"'
api POST "/sys/v1/approval_requests/$RID_BAD/result"
check "its result has the error status and a JSON string message" \
    json_is '.status == 400 and (.body|type=="string")'

# -- expiry -------------------------------------------------------------------------
api POST /sys/v1/approval_requests "{\"method\":\"POST\",\"operation\":\"/crypto/v1/sign\",\"body\":$SIGN}"
RID_EXP=$(field request_id)
control POST /_emulator/approval/expiry "{\"seconds\":0,\"request_id\":\"$RID_EXP\"}"
check_status "the expiry control expires one request" 200
api GET "/sys/v1/approval_requests/$RID_EXP"
check "an expired request is FAILED" json_is '.status == "FAILED"'
as "$K1" POST "/sys/v1/approval_requests/$RID_EXP/approve"
check_status "an expired request cannot be approved" 409
check "the answer says it expired" eval '[[ "$BODY" == *expired* ]]'
api POST "/sys/v1/approval_requests/$RID_EXP/result"
check "its result is 410 with a message" json_is '.status == 410 and (.body|test("expired"))'
control POST /_emulator/approval/expiry '{"seconds":1}'
api POST /sys/v1/approval_requests "{\"method\":\"POST\",\"operation\":\"/crypto/v1/sign\",\"body\":$SIGN}"
RID_SHORT=$(field request_id)
sleep 1.5
api GET "/sys/v1/approval_requests/$RID_SHORT"
check "a 1-second lifetime makes new requests expire" json_is '.status == "FAILED"'
control POST /_emulator/approval/expiry '{"seconds":0}'
control POST /_emulator/approval/expiry '{"seconds":"1"}'
check_status "the expiry control checks its input" 400

# -- the requester's session: transient keys resolve when the quorum is reached ----
api POST /crypto/v1/keys '{"obj_type":"AES","key_size":256,"transient":true,"key_ops":["WRAPKEY","EXPORT"]}'
TRANSIENT=$(field transient_key)
api POST /sys/v1/approval_requests "{\"method\":\"POST\",\"operation\":\"/crypto/v1/wrapkey\",\"body\":{\"key\":{\"transient_key\":\"$TRANSIENT\"},\"subject\":{\"kid\":\"$PAES_KID\"},\"alg\":\"AES\",\"mode\":\"KWP\"}}"
check_status "a wrap under a transient key of the session can be requested" 201
RID_T=$(field request_id)
as "$K1" POST "/sys/v1/approval_requests/$RID_T/approve"
as "$K2" POST "/sys/v1/approval_requests/$RID_T/approve"
check "it runs with the requester's session once approved" json_is '.status == "APPROVED"'
api POST "/sys/v1/approval_requests/$RID_T/result"
check "the wrapped key is in the result" json_is '.status == 200 and (.body.wrapped_key|type=="string")'

# -- delete -------------------------------------------------------------------------
api POST /sys/v1/approval_requests "{\"method\":\"POST\",\"operation\":\"/crypto/v1/sign\",\"body\":$SIGN}"
RID_DEL=$(field request_id)
as "$K3" DELETE "/sys/v1/approval_requests/$RID_DEL"
check_status "an app outside the request cannot delete it" 403
api DELETE "/sys/v1/approval_requests/$RID_DEL"
check_status "the requester deletes it" 204
api GET "/sys/v1/approval_requests/$RID_DEL"
check_status "a deleted request is gone" 404
api POST "/sys/v1/approval_requests/$RID_DEL/approve"
check_status "approve on an unknown request is 404" 404

# -- the policy can be lifted -------------------------------------------------------
api PATCH "/sys/v1/groups/$GROUP" '{"approval_policy":null}'
check_status "PATCH a group" 200
api POST /crypto/v1/sign "$SIGN"
check_status "without a policy the direct call runs" 200

# -- the global switch of the fault tests still works --------------------------------
control POST /_emulator/approval '{"required":true}'
api POST /crypto/v1/sign "$SIGN"
check_status "the global approval switch still answers 403" 403
control POST /_emulator/approval '{"required":false}'

finish
