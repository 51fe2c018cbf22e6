#!/usr/bin/env bash
# approval = wait inside an OpenSSL ASYNC job (test/approval/async.c): the
# job pauses between polls and its thread keeps working; this shell, another
# process, approves the request (2 of 2) a second after it appears.
# Usage: async.sh MODULE_DIR EMULATOR PROGRAM
source "$(dirname "$0")/lib.sh"
program=${3:?usage: $0 MODULE_DIR EMULATOR PROGRAM}
cli_start "$1" "$2"

protected_signer
start_waiting "$program" async
id=$(wait_for_pending 1 "$SIGNER")
check "the job's approval request is pending" uuid_like "$id"
# the job waits a while: several polls, each a pause
sleep 2
approve A1 "$id" && approve A2 "$id"
wait "$PID"
sed 's/^/       /' "$WORK/async.out"
check "the program's checks pass" equals "$(<"$WORK/async.rc")" 0
check "one approval request, one result" \
    equals "$(counter '.requests["POST /sys/v1/approval_requests"]'),$(counter \
        '.requests["POST /sys/v1/approval_requests/{kid}/result"]')" "1,1"
finish
