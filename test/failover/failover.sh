#!/usr/bin/env bash
# Multi-endpoint failover: two emulators started from copies of one state
# directory act as the nodes of a SmartKey cluster (same API key, same keys,
# same CA). A process loading a key in a loop keeps working when the first
# node is killed mid-run: 0 failed loads, the second node takes over.
#
# Usage: failover.sh MODULE_DIR EMULATOR FAILOVER_LOAD
source "$(dirname "$0")/../cli/lib.sh"
cli_init "$1" "$2"
LOADER=$3
LOADS=200
KILL_AT=100

# start_node N: an emulator on a copy of the shared state; sets NODE_EP[N]
declare -A NODE_EP NODE_PID
start_node() {
    local n=$1 dir=$WORK/node$1 tries=0
    "$EMULATOR" --state-dir "$dir" --listen 127.0.0.1:0 --persist \
        --test-controls --log "$WORK/node$n.log" &
    NODE_PID[$n]=$!
    BACKGROUND_PIDS+=("$!")
    while [[ ! -s $dir/endpoint ]]; do
        kill -0 "${NODE_PID[$n]}" 2>/dev/null ||
            fatal "node $n exited before it was ready"
        ((++tries > 600)) && fatal "node $n was not ready after 60 s"
        sleep 0.1
    done
    NODE_EP[$n]=$(<"$dir/endpoint")
}

# ---- one node creates the keys, then is copied twice ----
emulator_start --persist
create_rsa "failover rsa" 2048 >/dev/null || fatal "cannot create the RSA key"
create_ec "failover ec" NistP256 >/dev/null || fatal "cannot create the EC key"
server_public_key "failover rsa" "$WORK/rsa.der" || fatal "no RSA public key"
server_public_key "failover ec" "$WORK/ec.der" || fatal "no EC public key"
emulator_stop
for n in 1 2; do
    cp -a "$STATE" "$WORK/node$n"
    rm -f "$WORK/node$n/endpoint" "$WORK/node$n/pid"
done
start_node 1
start_node 2

check "the copies keep one CA: one ca_file trusts both nodes" \
    cmp -s "$WORK/node1/ca.pem" "$WORK/node2/ca.pem"
check "the copies keep one API key" \
    cmp -s "$WORK/node1/api-key" "$WORK/node2/api-key"
check "the two nodes listen on different ports" \
    test "${NODE_EP[1]}" != "${NODE_EP[2]}"

# ---- a two-node api_endpoint, with both nodes up ----
make_config "$WORK/cluster.cnf" \
    "api_endpoint=${NODE_EP[1]}, ${NODE_EP[2]}" \
    "api_key=file:$WORK/node1/api-key" "ca_file=$WORK/node1/ca.pem" \
    "cache_lifetime=0" "debug=level:1,file:$WORK/debug.log" ||
    fatal "cannot write the configuration"
export OPENSSL_CONF=$WORK/cluster.cnf
RUNNER=ossl_plain
check "two nodes up: pkey -pubout of the EC key matches SmartKey's" \
    pubout_matches "smartkey:name=failover%20ec" "$WORK/ec.der"

# ---- the first node dies in the middle of a run ----
run timeout 300 "$LOADER" "smartkey:name=failover%20rsa" "$WORK/rsa.der" \
    "$LOADS" "$KILL_AT" "${NODE_PID[1]}"
wait "${NODE_PID[1]}" 2>/dev/null
check "node 1 killed mid-run: $LOADS loads, 0 failed" \
    stdout_has_text "loads $LOADS ok 0 failed"
check "node 1 killed mid-run: the loader exits 0" succeeded
served1=$(grep -c 'keys/info' "$WORK/node1.log")
check "node 1 served the loads before it died ($served1 requests)" \
    between "$served1" "$KILL_AT" "$LOADS"
ENDPOINT=${NODE_EP[2]} CA_FILE=$WORK/node2/ca.pem
served2=$(counter '.requests["POST /crypto/v1/keys/info"]')
check "node 2 served the loads after the kill ($served2 requests)" \
    between "$served2" "$((LOADS - KILL_AT))" "$LOADS"
# A node found dead is skipped for its cool-down rather than tried again
# by every request.
unreachable=$(grep -c 'unreachable' "$WORK/debug.log")
check "the dead node is reported once, then skipped ($unreachable reports)" \
    between "$unreachable" 1 3

# ---- a process that starts while the first node is down ----
run ossl_plain pkey -in "smartkey:name=failover%20ec" -pubout
check "first node down at start-up: pkey -pubout succeeds" succeeded

# ---- a list that is not one ----
make_config "$WORK/bad.cnf" "api_endpoint=${NODE_EP[2]}, ftp://example.com" ||
    fatal "cannot write the configuration"
OPENSSL_CONF=$WORK/bad.cnf run ossl_plain pkey \
    -in "smartkey:name=failover%20ec" -pubout
check "an endpoint list with a non-https URL fails cleanly" failed_cleanly
check "an endpoint list with a non-https URL: message names the endpoint" \
    stderr_has 'endpoint'

background_stop
finish
