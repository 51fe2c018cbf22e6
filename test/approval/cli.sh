#!/usr/bin/env bash
# Quorum approvals (issue 15, docs/approval.md) with the stock `openssl`:
# keys of a group whose policy asks 2 approvals of 2 approvers (test apps of
# the emulator, approving with curl from this shell: another process).
#   - fail (default): the error names the operation and the key, says how
#     to ask, and creates nothing;
#   - request: a signature, a decryption and a plain wrap each create one
#     request whose description names the operation and the key; the
#     error gives the id and the command; one approval is not enough; the
#     resumed command completes from the result (verified); a resume with
#     the id of another operation is refused;
#   - wait (openssl.cnf approval = wait): a CKM_RSA_AES_KEY_WRAP BYOK
#     artifact of the protected key, verified offline, after two
#     approvals; the user is told once; polls bounded;
#   - wait: denial with the approver's reason (a signature, and the BYOK
#     artifact after one approval), expiry, approval_timeout
#     (polls counted: backoff), then the timed-out request resumed by id;
#   - request on a hybrid format refuses (its transient key cannot be
#     resumed elsewhere) without creating a request;
#   - openssl dgst -sigopt; hostile answers to the approval call; refused
#     spellings of the settings.
# Usage: cli.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
find_python
cli_start "$1" "$2"

approver A1
approver A2
approver A3
G=$(quorum_group byok-masters 2 "$A1_ID" "$A2_ID") ||
    fatal "cannot create the protected group"

# protected keys: a signer, a decrypter, and an AES key to bring to a cloud
key_in_group() { # NAME JSON-FIELDS
    rest POST /crypto/v1/keys "$(jq -nc --arg g "$G" --arg n "$1" \
        --argjson f "$2" '{name: $n, group_id: $g} + $f')" | jq -re .kid
}
SIGNER=$(key_in_group signer '{"obj_type":"RSA","key_size":2048,
    "key_ops":["SIGN","VERIFY","APPMANAGEABLE"]}') &&
    DECRYPTER=$(key_in_group decrypter '{"obj_type":"RSA","key_size":2048,
    "key_ops":["ENCRYPT","DECRYPT","APPMANAGEABLE"]}') ||
    fatal "cannot create the protected keys"
openssl rand -out "$WORK/master.bin" 32 || fatal "no random bytes"
MASTER=$(rest PUT /crypto/v1/keys "$(jq -nc --arg g "$G" \
    --arg v "$(base64 -w0 "$WORK/master.bin")" '{name: "Master-AES",
    obj_type: "AES", value: $v, group_id: $g,
    key_ops: ["EXPORT", "APPMANAGEABLE"]}')" | jq -re .kid) ||
    fatal "cannot import the master key"
create_rsa free-signer 2048 >/dev/null || fatal "cannot create free-signer"
# the cloud's key-encryption key: a local PEM, and the same public key
# held in SmartKey outside the protected group
cloud_kek 2048
rest PUT /crypto/v1/keys "$(jq -nc --arg value "$(base64 -w0 \
    "$WORK/cloud-pub.der")" '{name: "cloud kek", obj_type: "RSA",
    value: $value, key_ops: ["WRAPKEY", "ENCRYPT", "APPMANAGEABLE"]}')" \
    >/dev/null || fatal "cannot import the cloud's public key"
server_public_key signer "$WORK/signer.der" &&
    openssl pkey -pubin -inform DER -in "$WORK/signer.der" \
        -out "$WORK/signer.pem" &&
    server_public_key decrypter "$WORK/decrypter.der" &&
    openssl pkey -pubin -inform DER -in "$WORK/decrypter.der" \
        -out "$WORK/decrypter.pem" || fatal "cannot read the public keys"
printf 'release 1.2.3' >"$WORK/msg"
printf 'the quarterly secret' >"$WORK/plain"
openssl pkeyutl -encrypt -pubin -inkey "$WORK/decrypter.pem" \
    -in "$WORK/plain" -out "$WORK/cipher" $(oaep_opts sha256) ||
    fatal "cannot encrypt locally"

SIGN=(pkeyutl -sign -inkey smartkey:name=signer -rawin -digest sha256
    -in "$WORK/msg" -out "$WORK/sig")
DECRYPT=(pkeyutl -decrypt -inkey smartkey:name=decrypter
    -in "$WORK/cipher" -out "$WORK/decrypted" $(oaep_opts sha256))
WRAP=(pkeyutl -encrypt -pubin -inkey "smartkey:name=cloud%20kek"
    -propquery "$SMARTKEY_PROPQ" -in /dev/null -out "$WORK/wrapped"
    $(oaep_opts sha256) -pkeyopt smartkey-wrap-subject:smartkey:name=Master-AES)
signature_verifies() {
    openssl pkeyutl -verify -pubin -inkey "$WORK/signer.pem" -rawin \
        -digest sha256 -in "$WORK/msg" -sigfile "$WORK/sig" >/dev/null
}
count_requests() { rest GET /sys/v1/approval_requests | jq -r length; }

# ---- fail (the default) ---------------------------------------------------
counters_reset
run ossl "${SIGN[@]}"
check "fail: a signature with a protected key fails cleanly" failed_cleanly
check "fail: the error names the operation and the key" \
    stderr_line_has "signing with key 'signer'" 'requires approval'
check "fail: it says how to ask (request, wait, the resume parameter)" \
    eval 'stderr_has_text smartkey-approval:request &&
          stderr_has_text smartkey-approval:wait &&
          stderr_has_text smartkey-approval-request:'
check "fail: only the provider's errors" only_provider_errors
check "fail: no approval request is created" equals "$(count_requests)" 0
check "fail: one sign call, no approval call" \
    equals "$(counter '.requests["POST /crypto/v1/sign"]'),$(counter \
        '.requests["POST /sys/v1/approval_requests"]')" "1,0"

# ---- request, then resume: a signature ------------------------------------
counters_reset
run ossl "${SIGN[@]}" -pkeyopt smartkey-approval:request
check "request: the signature fails cleanly" failed_cleanly
ID=$(request_id_in_stderr)
check "request: the error gives the approval request id" uuid_like "$ID"
check "request: and the command that completes it" \
    stderr_has_text "-pkeyopt smartkey-approval-request:$ID"
check "request: one request made, once" \
    equals "$(counter '.requests["POST /sys/v1/approval_requests"]')" 1
rest GET "/sys/v1/approval_requests/$ID" >"$WORK/request.json"
check "request: approvers read the operation, the digest and the key" \
    jq -e --arg h "$(openssl dgst -sha256 -r "$WORK/msg" | cut -c1-64)" \
    '.description | test("^Sign the SHA256 digest " + $h + " with key .signer.")' \
    "$WORK/request.json"
check "request: it is the sign call on the protected key" \
    jq -e --arg k "$SIGNER" '.operation == "/crypto/v1/sign" and
        .subjects == [{sobject: $k}] and .status == "PENDING"' \
    "$WORK/request.json"
run ossl "${SIGN[@]}" -pkeyopt "smartkey-approval-request:$ID"
check "resume before any approval: still pending" \
    stderr_line_has "$ID" 'still pending'
approve A1 "$ID"
run ossl "${SIGN[@]}" -pkeyopt "smartkey-approval-request:$ID"
check "quorum of 2: one approval is not enough" \
    eval 'failed_cleanly && stderr_line_has "$ID" "still pending"'
check "quorum of 2: the request is still PENDING" \
    equals "$(request_status "$ID")" PENDING
approve A2 "$ID"
check "two approvals: APPROVED" equals "$(request_status "$ID")" APPROVED
counters_reset
rm -f "$WORK/sig"
run ossl "${SIGN[@]}" -pkeyopt "smartkey-approval-request:$ID"
check "resume: the signature is made from the approved request" succeeded
check "resume: it verifies with the key's public half" signature_verifies
check "resume: no new sign call, one result read" \
    equals "$(counter '.requests["POST /crypto/v1/sign"]'),$(counter \
        '.requests["POST /sys/v1/approval_requests/{kid}/result"]')" "0,1"
printf 'another release' >"$WORK/msg2"
run ossl pkeyutl -sign -inkey smartkey:name=signer -rawin -digest sha256 \
    -in "$WORK/msg2" -out "$WORK/sig2" -pkeyopt "smartkey-approval-request:$ID"
check "resume with the id of another input is refused" \
    eval 'failed_cleanly && stderr_line_has "$ID" "not for this operation"'
run ossl "${SIGN[@]}" -pkeyopt smartkey-approval-request:not-a-uuid
check "a malformed request id is refused before any call" \
    eval 'failed_cleanly && stderr_has_text "is not the id of an approval request"'

# ---- request, then resume: a decryption -----------------------------------
run ossl "${DECRYPT[@]}" -pkeyopt smartkey-approval:request
ID=$(request_id_in_stderr)
check "request: the decryption gives a request id" uuid_like "$ID"
check "request: the description names the decryption and the key" \
    eval 'rest GET "/sys/v1/approval_requests/$ID" |
          jq -e ".description | test(\"^Decrypt a 256-byte ciphertext .* key .decrypter.\")" >/dev/null'
approve A2 "$ID" && approve A1 "$ID"
run ossl "${DECRYPT[@]}" -pkeyopt "smartkey-approval-request:$ID"
check "resume: the decryption completes" succeeded
check "resume: the plaintext is the original" \
    same_bytes "$WORK/decrypted" "$WORK/plain"

# ---- request, then resume: a plain wrap (rsa-oaep) -------------------------
run ossl "${WRAP[@]}" -pkeyopt smartkey-approval:request
ID=$(request_id_in_stderr)
check "request: the wrap gives a request id" uuid_like "$ID"
check "request: approvers read the subject, the wrapping key's fingerprint and the format" \
    eval 'rest GET "/sys/v1/approval_requests/$ID" | jq -e --arg fp "$(openssl dgst -sha256 -c "$WORK/cloud-pub.der" | sed "s/.*= //")" \
          ".description | test(\"Master-AES\") and test(\"cloud kek\") and contains(\$fp) and test(\"format rsa-oaep\")" >/dev/null'
approve A1 "$ID" && approve A2 "$ID"
run ossl "${WRAP[@]}" -pkeyopt "smartkey-approval-request:$ID"
check "resume: the wrap completes" succeeded
check "resume: the cloud's private key recovers the master key" \
    verify rsa-oaep "$WORK/cloud.pem" "$WORK/wrapped" "$WORK/master.bin" \
    --hash sha256

# ---- request on a hybrid format: nothing to resume elsewhere --------------
counters_reset
byok_artifact "$WORK/hybrid.bin" "-pubin -inkey $WORK/cloud-pub.pem" sha256 \
    Master-AES rsa-aes-key-wrap -pkeyopt smartkey-approval:request
check "request on rsa-aes-key-wrap fails and says to wait instead" \
    eval 'failed_cleanly && stderr_has_text "transient key" &&
          stderr_has_text smartkey-approval:wait'
check "request on rsa-aes-key-wrap creates no request" \
    equals "$(counter '.requests["POST /sys/v1/approval_requests"]')" 0

# ---- wait (openssl.cnf): the BYOK artifact after two approvals ------------
make_config "$WORK/wait.cnf" approval=wait
# bg NAME CMD...: runs CMD in the background, its output in $WORK/NAME.*
bg() {
    local name=$1
    shift
    ("$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
        echo $? >"$WORK/$name.rc") &
    BG_PID=$!
}
# bg_done NAME: waits for it; RC and ERR describe it for the checks.
bg_done() {
    wait "$BG_PID"
    RC=$(<"$WORK/$1.rc")
    ERR=$WORK/$1.err
    OUT=$WORK/$1.out
    LAST_COMMAND="(background $1)"
}
# bg_byok NAME OUT: in the background (bg NAME), the BYOK wrap of the
# master key for the cloud's public key into $WORK/OUT, approval = wait
# coming from the configuration file wait.cnf.
bg_byok() {
    clear_env_config
    bg "$1" env OPENSSL_CONF="$WORK/wait.cnf" timeout "$CLI_TIMEOUT" openssl \
        pkeyutl -encrypt -pubin -inkey "$WORK/cloud-pub.pem" \
        -propquery "$SMARTKEY_PROPQ" -in /dev/null -out "$WORK/$2" \
        $(oaep_opts sha256) \
        -pkeyopt smartkey-wrap-subject:smartkey:name=Master-AES \
        -pkeyopt smartkey-wrap-format:rsa-aes-key-wrap
    use_env_config
}
counters_reset
rm -f "$WORK/artifact.bin"
bg_byok byok artifact.bin
ID=$(wait_for_pending 1 "$MASTER")
check "wait: one request waits for the master key" uuid_like "$ID"
check "wait: approvers read the format, the subject and the cloud key's fingerprint" \
    eval 'rest GET "/sys/v1/approval_requests/$ID" | jq -e --arg fp "$(openssl dgst -sha256 -c "$WORK/cloud-pub.der" | sed "s/.*= //")" \
          ".description | test(\"rsa-aes-key-wrap\") and test(\"Master-AES\") and contains(\$fp) and test(\"AES-KWP\")" >/dev/null'
approve A1 "$ID"
sleep 1
check "wait: after one approval the command still waits" kill -0 "$BG_PID"
approve A2 "$ID"
bg_done byok
check "wait: the BYOK artifact is produced after the second approval" succeeded
check "wait: it verifies offline with the cloud's private key" \
    verify rsa-aes "$WORK/cloud.pem" "$WORK/artifact.bin" \
    "$WORK/master.bin" --hash sha256 --kind raw
check "wait: the user was told once, with the id" \
    equals "$(grep -c "Approval request $ID is waiting" "$ERR")" 1
check "wait: one approval request, one result" \
    equals "$(counter '.requests["POST /sys/v1/approval_requests"]'),$(counter \
        '.requests["POST /sys/v1/approval_requests/{kid}/result"]')" "1,1"
polls=$(counter '.requests["GET /sys/v1/approval_requests/{kid}"]')
check "wait: polling is bounded ($polls polls)" between "$polls" 1 8
check "wait: the material was never exported" equals "$(counter exports)" 0

# ---- wait: denied with a reason ---------------------------------------------
bg deny timeout "$CLI_TIMEOUT" openssl "${SIGN[0]}" -provider-path "$MODULE_DIR" \
    -provider default -provider smartkey "${SIGN[@]:1}" \
    -pkeyopt smartkey-approval:wait
ID=$(wait_for_pending 1 "$SIGNER")
deny A1 "$ID" "not during the release freeze"
bg_done deny
check "deny: the command fails cleanly" failed_cleanly
check "deny: the error gives the approver's reason" \
    stderr_line_has "$ID" "denied by $A1_ID: not during the release freeze"
check "deny: under its own reason code" \
    stderr_has_text "the quorum approval was denied"

# the BYOK artifact of the done criterion, denied this time
bg_byok byokdeny denied.bin
ID=$(wait_for_pending 1 "$MASTER")
approve A2 "$ID"
deny A1 "$ID" "wrong cloud key fingerprint"
bg_done byokdeny
check "deny: the BYOK wrap fails cleanly after one approval and a denial" \
    eval 'failed_cleanly && stderr_line_has "$ID" "denied by $A1_ID: wrong cloud key fingerprint"'
check "deny: no artifact is written" test ! -s "$WORK/denied.bin"

# ---- wait: the request expires --------------------------------------------
bg expire timeout "$CLI_TIMEOUT" openssl "${DECRYPT[0]}" -provider-path \
    "$MODULE_DIR" -provider default -provider smartkey "${DECRYPT[@]:1}" \
    -pkeyopt smartkey-approval:wait
ID=$(wait_for_pending 1 "$DECRYPTER")
control POST /_emulator/approval/expiry \
    "{\"seconds\":0,\"request_id\":\"$ID\"}" >/dev/null
bg_done expire
check "expiry: the command fails cleanly" failed_cleanly
check "expiry: the error says it expired and to ask again" \
    eval 'stderr_line_has "$ID" "expired" &&
          stderr_has_text "the quorum approval request expired"'

# ---- wait: approval_timeout, then resume by id ------------------------------
counters_reset
SMARTKEY_APPROVAL=wait SMARTKEY_APPROVAL_TIMEOUT=6 run ossl "${SIGN[@]}"
ID=$(request_id_in_stderr)
check "timeout: the command gives up cleanly" failed_cleanly
check "timeout: the error names the timeout, the id and the command" \
    eval 'stderr_has_text "was not approved within 6 s" &&
          stderr_has_text "smartkey-approval-request:$ID"'
polls=$(counter '.requests["GET /sys/v1/approval_requests/{kid}"]')
# 0, 0.5, 1.5, 3.5 and 6 s: 5 polls in 6 s (a fixed 0.5 s would be 13)
check "timeout: polls back off ($polls in 6 s)" between "$polls" 3 6
check "timeout: the request stays pending" equals "$(request_status "$ID")" \
    PENDING
approve A1 "$ID" && approve A2 "$ID"
rm -f "$WORK/sig"
run ossl "${SIGN[@]}" -pkeyopt "smartkey-approval-request:$ID"
check "timeout: resumed by id once approved" succeeded
check "timeout: the signature verifies" signature_verifies

# ---- openssl dgst takes the parameter as -sigopt ---------------------------
run ossl dgst -sha256 -sign smartkey:name=signer -out "$WORK/dgst.sig" \
    -sigopt smartkey-approval:request "$WORK/msg"
ID=$(request_id_in_stderr)
check "dgst -sigopt smartkey-approval:request creates a request" uuid_like "$ID"
approve A1 "$ID" && approve A2 "$ID"
run ossl dgst -sha256 -sign smartkey:name=signer -out "$WORK/dgst.sig" \
    -sigopt "smartkey-approval-request:$ID" "$WORK/msg"
check "dgst resumes it once approved" succeeded
check "its signature verifies" \
    eval 'openssl dgst -sha256 -verify "$WORK/signer.pem" -signature \
          "$WORK/dgst.sig" "$WORK/msg" >/dev/null'

# ---- hostile answers to the approval calls fail cleanly --------------------
for action in malformed wrong_type truncate; do
    control POST /_emulator/faults "{\"path\":\"/sys/v1/approval_requests\",
        \"action\":\"$action\"}" >/dev/null
    run ossl "${SIGN[@]}" -pkeyopt smartkey-approval:request
    check "a $action answer to the approval request fails cleanly" \
        eval 'failed_cleanly && stderr_has_text "POST /sys/v1/approval_requests" &&
              only_provider_errors'
done
control DELETE /_emulator/faults >/dev/null

# ---- settings are checked -------------------------------------------------
SMARTKEY_APPROVAL=sometimes run ossl "${SIGN[@]}"
check "SMARTKEY_APPROVAL=sometimes is refused, naming the spellings" \
    eval 'failed_cleanly && stderr_has_text "approval = '"'"'sometimes'"'"'" &&
          stderr_has_text "fail, request or wait"'
SMARTKEY_APPROVAL_TIMEOUT=soon run ossl "${SIGN[@]}"
check "a timeout that is not a number of seconds is refused" \
    eval 'failed_cleanly && stderr_has_text approval_timeout'
run ossl "${SIGN[@]}" -pkeyopt smartkey-approval:maybe
check "-pkeyopt smartkey-approval:maybe is refused" \
    eval 'failed_cleanly && stderr_has_text "smartkey-approval:maybe is not fail, request or wait"'

# ---- an Ed25519 key of the group: the message, not a digest ----------------
key_in_group ed-signer '{"obj_type":"EC","elliptic_curve":"Ed25519",
    "key_ops":["SIGN","VERIFY","APPMANAGEABLE"]}' >/dev/null ||
    fatal "cannot create the protected Ed25519 key"
ED_SIGN=(pkeyutl -sign -rawin -inkey smartkey:name=ed-signer -in "$WORK/msg"
    -out "$WORK/ed.sig")
run ossl "${ED_SIGN[@]}" -pkeyopt smartkey-approval:request
ID=$(request_id_in_stderr)
check "Ed25519: the signature asks for an approval" uuid_like "$ID"
check "Ed25519: approvers read the message's length and first bytes" \
    eval 'rest GET "/sys/v1/approval_requests/$ID" | jq -e --arg h \
        "$(od -An -tx1 "$WORK/msg" | tr -d " \n")" ".description |
        test(\"^Sign a 13-byte message beginning \" + \$h + \" with key .ed-signer.\")" \
        >/dev/null'
approve A1 "$ID"
approve A2 "$ID"
run ossl "${ED_SIGN[@]}" -pkeyopt "smartkey-approval-request:$ID"
check "Ed25519: the resumed signature is made" succeeded
server_public_key ed-signer "$WORK/ed.der" &&
    openssl pkey -pubin -inform DER -in "$WORK/ed.der" -out "$WORK/ed.pem" ||
    fatal "cannot read the Ed25519 public key"
check "Ed25519: it verifies with stock openssl" \
    eval 'openssl pkeyutl -verify -rawin -pubin -inkey "$WORK/ed.pem" \
        -in "$WORK/msg" -sigfile "$WORK/ed.sig" >/dev/null'

# ---- an outsider cannot approve --------------------------------------------
run ossl "${SIGN[@]}" -pkeyopt smartkey-approval:request
ID=$(request_id_in_stderr)
check "an app outside the policy cannot approve" \
    eval '! approve A3 "$ID" 2>/dev/null'

finish
