#!/usr/bin/env bash
# approval = wait inside an OpenSSL ASYNC job (test/approval/async.c): the
# job pauses between polls and its thread keeps working; this shell, another
# process, approves the request (2 of 2) a second after it appears.
# Usage: async.sh MODULE_DIR EMULATOR PROGRAM
source "$(dirname "$0")/lib.sh"
program=${3:?usage: $0 MODULE_DIR EMULATOR PROGRAM}
cli_start "$1" "$2"

approver A1
approver A2
G=$(quorum_group signers 2 "$A1_ID" "$A2_ID") ||
    fatal "cannot create the protected group"
SIGNER=$(rest POST /crypto/v1/keys "$(jq -nc --arg g "$G" '{name: "signer",
    obj_type: "EC", elliptic_curve: "NistP256", group_id: $g,
    key_ops: ["SIGN", "VERIFY", "APPMANAGEABLE"]}')" | jq -re .kid) ||
    fatal "cannot create the protected key"
create_ec free-signer NistP256 >/dev/null || fatal "cannot create free-signer"

counters_reset
(SMARTKEY_APPROVAL=wait timeout 300 "$program" "$MODULE_DIR" \
    >"$WORK/async.out" 2>"$WORK/async.err"
    echo $? >"$WORK/async.rc") &
pid=$!
id=$(wait_for_pending 1 "$SIGNER")
check "the job's approval request is pending" uuid_like "$id"
# the job waits a while: several polls, each a pause
sleep 2
approve A1 "$id" && approve A2 "$id"
wait "$pid"
sed 's/^/       /' "$WORK/async.out"
check "the program's checks pass" equals "$(<"$WORK/async.rc")" 0
check "one approval request, one result" \
    equals "$(counter '.requests["POST /sys/v1/approval_requests"]'),$(counter \
        '.requests["POST /sys/v1/approval_requests/{kid}/result"]')" "1,1"
finish
