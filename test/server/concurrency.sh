#!/usr/bin/env bash
# Parallel clients: 8 keep-alive curl clients x 20 sign requests all succeed
# with valid signatures; concurrent creates keep names unique.
. "$(dirname "$0")/lib.sh" "$1"

CLIENTS=8
PER_CLIENT=20

start_emulator --threads 4
auth
bearer_header

generate_key '{"name":"busy-ec","obj_type":"EC","elliptic_curve":"NistP256"}'
EC_KID=$KID
save_public "$WORK/pub.pem"
generate_key '{"name":"busy-rsa","obj_type":"RSA","key_size":2048}'
RSA_KID=$KID
save_public "$WORK/rsa-pub.pem"
control POST /_emulator/counters/reset

# client N: one curl process, PER_CLIENT requests over a kept-alive
# connection; odd clients sign with RSA-PSS, even ones with ECDSA, each over
# its own message.
client() {
    local n=$1 dir="$WORK/client$1" kid=$EC_KID mode=""
    mkdir -p "$dir"
    printf 'message of client %s' "$n" >"$dir/msg"
    if ((n % 2)); then
        kid=$RSA_KID
        mode=",\"mode\":$(pss SHA256)"
    fi
    printf '{"key":{"kid":"%s"},"hash_alg":"SHA256","hash":"%s"%s}' "$kid" \
        "$(openssl dgst -sha256 -binary "$dir/msg" | base64 -w0)" "$mode" \
        >"$dir/req.json"
    local args=(curl -s "${CURL_TLS[@]}" -H @"$WORK/bearer"
        -H 'Content-Type: application/json' --data-binary @"$dir/req.json"
        -w '%{http_code}\n')
    local i
    for ((i = 0; i < PER_CLIENT; i++)); do
        args+=(-o "$dir/resp$i" "$ENDPOINT/crypto/v1/sign")
    done
    "${args[@]}" >"$dir/statuses"
}

# A bare `wait` would also wait for the emulator: wait for the clients only.
pids=()
wait_clients() {
    local pid
    for pid in "${pids[@]}"; do wait "$pid"; done
    pids=()
}

for ((n = 0; n < CLIENTS; n++)); do
    client "$n" &
    pids+=($!)
done
wait_clients

ok=0
valid=0
for ((n = 0; n < CLIENTS; n++)); do
    dir="$WORK/client$n"
    ok=$((ok + $(grep -c '^200$' "$dir/statuses" 2>/dev/null || true)))
    for ((i = 0; i < PER_CLIENT; i++)); do
        jq -r '.signature // empty' "$dir/resp$i" 2>/dev/null |
            base64 -d >"$dir/sig" 2>/dev/null
        if ((n % 2)); then
            opts=(-verify "$WORK/rsa-pub.pem" -sigopt rsa_padding_mode:pss
                -sigopt rsa_pss_saltlen:digest)
        else
            opts=(-verify "$WORK/pub.pem")
        fi
        openssl dgst -sha256 "${opts[@]}" -signature "$dir/sig" \
            "$dir/msg" >/dev/null 2>&1 && valid=$((valid + 1))
    done
done
total=$((CLIENTS * PER_CLIENT))
check_eq "all $total parallel sign requests answer 200" "$total" "$ok"
check_eq "all $total parallel signatures verify with openssl" "$total" "$valid"
counters
check_eq "the sign counter saw exactly $total requests" "$total" \
    "$(counter 'POST /crypto/v1/sign')"
check "each client used one connection (connections <= clients + controls)" \
    eval '[[ $(counter_field connections) -le $((CLIENTS + 2)) ]]'

# 8 concurrent creates with distinct names: 8 distinct kids.
for ((n = 0; n < CLIENTS; n++)); do
    curl -s "${CURL_TLS[@]}" -H @"$WORK/bearer" \
        -H 'Content-Type: application/json' -o "$WORK/create$n" \
        --data-binary "{\"name\":\"parallel-$n\",\"obj_type\":\"AES\",\"key_size\":128}" \
        "$ENDPOINT/crypto/v1/keys" &
    pids+=($!)
done
wait_clients
check_eq "8 concurrent creates give 8 distinct kids" 8 \
    "$(cat "$WORK"/create? | jq -r '.kid // empty' | sort -u | wc -l)"

# 8 concurrent creates of the same name: exactly one wins.
for ((n = 0; n < CLIENTS; n++)); do
    curl -s "${CURL_TLS[@]}" -H @"$WORK/bearer" \
        -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}\n' \
        --data-binary '{"name":"contended","obj_type":"AES","key_size":128}' \
        "$ENDPOINT/crypto/v1/keys" >"$WORK/same$n" &
    pids+=($!)
done
wait_clients
check_eq "8 concurrent creates of one name: one 201" 1 \
    "$(cat "$WORK"/same? | grep -c '^201$')"
check_eq "8 concurrent creates of one name: seven 409" 7 \
    "$(cat "$WORK"/same? | grep -c '^409$')"
api GET "/crypto/v1/keys?name=contended"
check_eq "the contended name exists once" 1 "$(jq length <<<"$BODY")"

finish
