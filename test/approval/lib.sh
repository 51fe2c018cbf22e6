# shellcheck shell=bash
# Functions of the approval tests on top of the BYOK tests' lib.sh (sourced
# read-only: cli_init, emulator_start, rest, control, counter, run, check,
# verify, cloud_kek ...): the approvers, the protected group, and what an
# approver does from another process (curl with the approver's API key).

source "$(dirname "${BASH_SOURCE[0]}")/../byok/lib.sh"

# approver NAME: a second identity (a test app of the emulator) that can
# approve; NAME_ID gets its app id, $WORK/NAME.auth its Authorization
# header (a file, so the key never shows in `ps`).
approver() {
    local answer
    answer=$(control POST /_emulator/apps "$(jq -nc --arg n "$1" '{name: $n}')") ||
        fatal "cannot create the approver $1"
    printf -v "$1_ID" '%s' "$(jq -r .app_id <<<"$answer")"
    (
        umask 077
        printf 'Authorization: Basic %s\n' "$(jq -r .api_key <<<"$answer")" \
            >"$WORK/$1.auth"
    )
}

# quorum_group NAME N APP_ID...: a group whose policy protects crypto
# operations with a quorum of N of the apps; prints the group id.
quorum_group() {
    local name=$1 n=$2
    shift 2
    rest POST /sys/v1/groups "$(jq -nc --arg name "$name" --argjson n "$n" \
        --args '{name: $name, approval_policy: {policy: {quorum: {n: $n,
            members: [$ARGS.positional[] | {app: .}]}},
            protect_crypto_operations: true}}' "$@")" | jq -re .group_id
}

# as_approver NAME METHOD PATH [JSON]: a call made by the approver NAME;
# prints the body, fails on HTTP >= 400.
as_approver() {
    local who=$1 args=(-sS --fail-with-body --cacert "$CA_FILE" -X "$2")
    args+=(-H @"$WORK/$who.auth")
    if [[ $# -ge 4 ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$4")
    fi
    curl "${args[@]}" "$ENDPOINT$3"
}
approve() { as_approver "$1" POST "/sys/v1/approval_requests/$2/approve" >/dev/null; }
deny() {
    as_approver "$1" POST "/sys/v1/approval_requests/$2/deny" \
        "$(jq -nc --arg r "$3" '{reason: $r}')" >/dev/null
}
# request_status ID: PENDING, APPROVED, DENIED or FAILED.
request_status() { rest GET "/sys/v1/approval_requests/$1" | jq -r .status; }
# pending_ids [SUBJECT_KID]: the pending requests (of one key), oldest first.
pending_ids() {
    rest GET "/sys/v1/approval_requests?status=PENDING${1:+&subject=$1}" |
        jq -r '.[].request_id'
}
# wait_for_pending COUNT [SUBJECT_KID]: until COUNT requests are pending
# (60 s at most); prints their ids.
wait_for_pending() {
    local i ids
    for ((i = 0; i < 600; i++)); do
        ids=$(pending_ids "${2:-}")
        if [[ $(grep -c . <<<"$ids") -ge $1 ]]; then
            echo "$ids"
            return 0
        fi
        sleep 0.1
    done
    return 1
}
# request_id_in_stderr: the approval request id the last command printed.
request_id_in_stderr() {
    grep -Eo 'approval request [0-9a-f-]{36}' "$ERR" | head -n 1 | cut -d' ' -f3
}
# uuid_like VALUE: a lower-case hyphenated UUID.
uuid_like() {
    [[ $1 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
}

# protected_signer: approvers A1 and A2, a group asking 2 of 2 of them, the
# EC key "signer" in it (its kid in SIGNER) and the unprotected EC key
# "free-signer": what the programs' approval = wait tests sign with.
protected_signer() {
    approver A1
    approver A2
    G=$(quorum_group signers 2 "$A1_ID" "$A2_ID") ||
        fatal "cannot create the protected group"
    SIGNER=$(rest POST /crypto/v1/keys "$(jq -nc --arg g "$G" '{name: "signer",
        obj_type: "EC", elliptic_curve: "NistP256", group_id: $g,
        key_ops: ["SIGN", "VERIFY", "APPMANAGEABLE"]}')" | jq -re .kid) ||
        fatal "cannot create the protected key"
    create_ec free-signer NistP256 >/dev/null ||
        fatal "cannot create free-signer"
}

# start_waiting PROGRAM NAME: PROGRAM MODULE_DIR in the background with
# approval = wait (counters reset first), its output in $WORK/NAME.out and
# NAME.err, its exit status in NAME.rc; PID gets its process id.
start_waiting() {
    counters_reset
    (SMARTKEY_APPROVAL=wait timeout 300 "$1" "$MODULE_DIR" \
        >"$WORK/$2.out" 2>"$WORK/$2.err"
        echo $? >"$WORK/$2.rc") &
    PID=$!
}
