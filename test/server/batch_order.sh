#!/usr/bin/env bash
# Large batches (docs/smartkey-api.md §4.6) answer every item, in request order, with
# the item's own status, whether the emulator runs a batch's items one after
# another (--batch-workers 1) or spreads them over worker threads
# (--batch-workers 4), also with several large batches in flight at once.
# Signatures are checked with python3-cryptography, not by the emulator.
# shellcheck disable=SC2016 # $m and $i in single quotes are jq variables
. "$(dirname "$0")/lib.sh" "$1"

N=200
NOKEY=00000000-0000-4000-8000-000000000000

# Item i of every batch: i%10 == 3 names an unknown kid (404), i%10 == 7 a
# key without the operation (403), i%10 == 5 is malformed (400); the others
# are good, EC for even i and RSA for odd i on the sign side.
EXPECTED=$(jq -nc --argjson n $N '[range($n) |
    if . % 10 == 3 then 404 elif . % 10 == 7 then 403
    elif . % 10 == 5 then 400 else 200 end]')
MESSAGES=$(jq -nc --argjson n $N '[range($n) | "message \(.)" | @base64]')

statuses() { jq -c '[.[].status]' <<<"$BODY"; }
# json_with_messages FILTER: FILTER is true on BODY, with $m = MESSAGES.
json_with_messages() {
    jq -e --argjson m "$MESSAGES" "$1" <<<"$BODY" >/dev/null 2>&1
}

# check_signatures: every good item of the sign answer in BODY verifies
# against its own message; prints how many did.
check_signatures() {
    python3 - "$WORK/ec.der" "$WORK/rsa.der" "$WORK/answer" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

ec_key = serialization.load_der_public_key(open(sys.argv[1], "rb").read())
rsa_key = serialization.load_der_public_key(open(sys.argv[2], "rb").read())
answer = json.load(open(sys.argv[3]))
good = 0
for i, item in enumerate(answer):
    if item.get("status") != 200:
        continue
    sig = base64.b64decode(item["body"]["signature"])
    msg = ("message %d" % i).encode()
    try:
        if i % 2 == 0:
            ec_key.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        else:
            rsa_key.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
        good += 1
    except Exception:
        pass
print(good)
PY
}

run_with_workers() {
    local w=$1 i pids=()
    # shellcheck disable=SC2034 # read by start_emulator (lib.sh)
    STATE="$WORK/state-$w"
    start_emulator --batch-workers "$w"
    auth

    generate_key '{"name":"order-ec","obj_type":"EC","elliptic_curve":"NistP256","key_ops":["SIGN","VERIFY"]}'
    local ec=$KID
    unb64 "$(field pub_key)" "$WORK/ec.der"
    generate_key '{"name":"order-rsa","obj_type":"RSA","key_size":2048,"key_ops":["SIGN","VERIFY","ENCRYPT","DECRYPT"]}'
    local rsa=$KID
    unb64 "$(field pub_key)" "$WORK/rsa.der"
    generate_key '{"name":"order-ec-verify","obj_type":"EC","elliptic_curve":"NistP256","key_ops":["VERIFY"]}'
    local ec_verify=$KID
    generate_key '{"name":"order-rsa-encrypt","obj_type":"RSA","key_size":2048,"key_ops":["ENCRYPT"]}'
    local rsa_encrypt=$KID
    reset_counters

    # -- sign ---------------------------------------------------------------
    api POST /crypto/v1/keys/batch/sign "$(jq -nc --argjson n $N \
        --arg ec "$ec" --arg rsa "$rsa" --arg ecv "$ec_verify" \
        --arg nokey "$NOKEY" '[range($n) | . as $i |
        {hash_alg: "SHA256", data: ("message \($i)" | @base64)} +
        if $i % 10 == 3 then {key: {kid: $nokey}}
        elif $i % 10 == 7 then {key: {kid: $ecv}}
        elif $i % 10 == 5 then {key: {kid: $ec}, hash: ("short" | @base64)}
        elif $i % 2 == 0 then {key: {kid: $ec}}
        else {key: {kid: $rsa}, mode: {PKCS1_V15: {}}} end]')"
    check_status "workers $w: a $N-item batch sign answers 200" 200
    check_eq "workers $w: batch sign answers every item in order" \
        "$EXPECTED" "$(statuses)"
    check "workers $w: failed sign items carry an error text, no body" \
        json_is '[.[] | select(.status != 200) |
            (.error | type == "string") and .body == null] | all'
    printf '%s' "$BODY" >"$WORK/answer"
    check_eq "workers $w: every good signature verifies for its own message" \
        "$(jq '[.[] | select(. == 200)] | length' <<<"$EXPECTED")" \
        "$(check_signatures)"
    check "workers $w: the kid echoed by good items is the item's key" \
        json_is "[to_entries[] | select(.value.status == 200) |
            .value.body.kid == (if .key % 2 == 0 then \"$ec\"
                                else \"$rsa\" end)] | all"

    # -- encrypt, then decrypt, both with bad items mixed in ------------------
    api POST /crypto/v1/keys/batch/encrypt "$(jq -nc --argjson n $N \
        --arg rsa "$rsa" --arg mode "$(oaep SHA256)" \
        '[range($n) | {kid: $rsa, request: {alg: "RSA",
            plain: ("message \(.)" | @base64), mode: ($mode | fromjson)}}]')"
    check_status "workers $w: a $N-item batch encrypt answers 200" 200
    check "workers $w: every batch encrypt item succeeds" \
        json_is "length == $N and ([.[].status == 200] | all)"
    local ciphers
    ciphers=$(jq -c '[.[].body.cipher]' <<<"$BODY")
    jq -nc --argjson n $N --argjson c "$ciphers" --arg rsa "$rsa" \
        --arg enc "$rsa_encrypt" --arg nokey "$NOKEY" \
        --arg mode "$(oaep SHA256)" '[range($n) | . as $i |
        {alg: "RSA", cipher: $c[$i], mode: ($mode | fromjson)} as $r |
        if $i % 10 == 3 then {kid: $nokey, request: $r}
        elif $i % 10 == 7 then {kid: $enc, request: $r}
        elif $i % 10 == 5 then {kid: $rsa}
        else {kid: $rsa, request: $r} end]' >"$WORK/decrypt.json"
    api POST /crypto/v1/keys/batch/decrypt "$(<"$WORK/decrypt.json")"
    check_status "workers $w: a $N-item batch decrypt answers 200" 200
    check_eq "workers $w: batch decrypt answers every item in order" \
        "$EXPECTED" "$(statuses)"
    check "workers $w: each good decrypt item recovers its own message" \
        json_with_messages '[to_entries[] |
            select(.value.status == 200) | .value.body.plain == $m[.key]] |
            all'

    # -- several large batches at once share the workers ----------------------
    bearer_header
    for i in 1 2 3 4; do
        curl -s "${CURL_TLS[@]}" -H @"$WORK/bearer" \
            -H 'Content-Type: application/json' \
            --data-binary @"$WORK/decrypt.json" -o "$WORK/concurrent-$i" \
            "$ENDPOINT/crypto/v1/keys/batch/decrypt" &
        pids+=($!)
    done
    wait "${pids[@]}"
    for i in 1 2 3 4; do
        BODY=$(cat "$WORK/concurrent-$i")
        check_eq "workers $w: concurrent batch $i answers every item in order" \
            "$EXPECTED" "$(statuses 2>/dev/null)"
        check "workers $w: concurrent batch $i recovers each message" \
            json_with_messages '[to_entries[] |
                select(.value.status == 200) |
                .value.body.plain == $m[.key]] | all'
    done

    # Counters (and latency, applied at the same place) go per HTTP request,
    # never per item.
    counters
    check_eq "workers $w: a batch sign counts as one request" 1 \
        "$(counter 'POST /crypto/v1/keys/batch/sign')"
    check_eq "workers $w: batch decrypts count one per request" 5 \
        "$(counter 'POST /crypto/v1/keys/batch/decrypt')"
    check_eq "workers $w: items are not counted as single calls" 0 \
        "$(counter 'POST /crypto/v1/sign')"
    stop_emulator
}

run_with_workers 1
run_with_workers 4

check "--batch-workers is documented in --help" \
    eval '"$EMULATOR" --help | grep -q -- "--batch-workers N"'
check "--batch-workers 0 is refused at start-up" \
    eval '! "$EMULATOR" --state-dir "$WORK/state-0" --batch-workers 0 \
        2>"$WORK/refused" && grep -q -- --batch-workers "$WORK/refused"'
finish
