#!/usr/bin/env bash
# 8 threads of one process wait (approval = wait) for approval requests on
# a key whose group asks 2 of 2 approvers; this shell, another process,
# approves each request twice once all 8 are pending. The program checks
# its signatures and that a ninth thread kept signing with an unprotected
# key meanwhile; here the requests are counted: one approval request and
# one result per thread, polling bounded.
# Usage: threads.sh MODULE_DIR EMULATOR PROGRAM
source "$(dirname "$0")/lib.sh"
program=${3:?usage: $0 MODULE_DIR EMULATOR PROGRAM}
find_python
cli_start "$1" "$2"

protected_signer
start_waiting "$program" threads
ids=$(wait_for_pending 8 "$SIGNER")
check "8 approval requests are pending, one per thread" \
    equals "$(grep -c . <<<"$ids")" 8
for id in $ids; do approve A1 "$id"; done
check "one approval each is not enough: all 8 still pending" \
    equals "$(pending_ids "$SIGNER" | grep -c .)" 8
for id in $ids; do approve A2 "$id"; done
wait "$PID"
sed 's/^/       /' "$WORK/threads.out"
check "the program's checks pass" equals "$(<"$WORK/threads.rc")" 0
check "each thread was told once" \
    equals "$(grep -c 'is waiting for the approvers' "$WORK/threads.err")" 8
check "8 approval requests made, 8 results read" \
    equals "$(counter '.requests["POST /sys/v1/approval_requests"]'),$(counter \
        '.requests["POST /sys/v1/approval_requests/{kid}/result"]')" "8,8"
polls=$(counter '.requests["GET /sys/v1/approval_requests/{kid}"]')
check "polling is bounded: $polls polls for 8 waiting threads" \
    between "$polls" 8 64
finish
