#!/usr/bin/env bash
# smartkey-keyservice answers Salesforce's cache-only key callouts: curl in
# Salesforce's place (HTTP Basic, RequestIdentifier) gets {"kid","jwe"},
# which python3-jwcrypto decrypts with the stand-in BYOK certificate's key
# to the key SmartKey holds (exported once, before serving, for the
# comparison); every refusal the service owes (wrong password, unknown
# key identifier, replayed or mismatched nonce, oversized or non-GET
# requests) is made; 32 callouts at once all succeed; a SIGHUP reload
# applies a new key and replay detection off; SmartKey down gives 503 with
# Retry-After; nothing is exported while serving and no secret is logged.
# Usage: keyservice.sh MODULE_DIR EMULATOR KEYSERVICE
source "$(dirname "$0")/lib.sh"
ks_setup "$@"
ks_config "$WORK/ks.conf"

# ---- the configuration, checked before serving ----
run "$KEYSERVICE" -c "$WORK/ks.conf" --provider-path "$MODULE_DIR" --check
check "--check loads the configuration" stdout_has_text "1 key identifiers, OK"
chmod 644 "$WORK/credentials"
run "$KEYSERVICE" -c "$WORK/ks.conf" --provider-path "$MODULE_DIR" --check
check "a credentials file readable by others is refused" \
    bash -c "[[ $RC -ne 0 ]] && grep -q 'readable by group or others' '$ERR'"
chmod 600 "$WORK/credentials"
cp "$WORK/ks.conf" "$WORK/typo.conf"
echo "replay_detecton = off" >>"$WORK/typo.conf"
run "$KEYSERVICE" -c "$WORK/typo.conf" --provider-path "$MODULE_DIR" --check
check "an unknown setting is refused with its file and line" \
    bash -c "[[ $RC -ne 0 ]] && grep -q 'typo.conf:[0-9]*: unknown key setting' '$ERR'"

ks_start "$WORK/ks.conf" "$KEYSERVICE" --provider-path "$MODULE_DIR"
counters_reset
answers=0

# ---- callouts as Salesforce makes them ----
n1=$(nonce)
check "a callout with a RequestIdentifier is answered 200" \
    equals "$(callout /keys/key-1 "$n1")" 200
answers=$((answers + 1))
check "the answer is application/json" \
    grep -qi '^content-type: application/json' "$WORK/headers"
check "jwcrypto decrypts the answer to the key; kid and jti are echoed" \
    answer_decrypts key-1 "$n1"
cp "$WORK/body" "$WORK/first.json"

n2=$(nonce)
check "a RequestIdentifier KEYID_NONCE is answered 200" \
    equals "$(callout /keys/key-1 "key-1_$n2")" 200
answers=$((answers + 1))
check "its answer carries the nonce alone as jti" answer_decrypts key-1 "$n2"
check "each answer is made anew (a new content key)" \
    bash -c "! cmp -s '$WORK/first.json' '$WORK/body'"

n3=$(nonce)
check "a RequestIdentifier in the query (requestId) is answered 200" \
    equals "$(callout "/keys/key-1?requestId=$n3")" 200
answers=$((answers + 1))
check "its answer decrypts with that jti" answer_decrypts key-1 "$n3"

# ---- refusals ----
check "a replayed RequestIdentifier is refused 409" \
    equals "$(callout /keys/key-1 "$n1")" 409
check "a RequestIdentifier naming another key identifier is refused 400" \
    equals "$(callout /keys/key-1 "other-key_$(nonce)")" 400
check "a callout without RequestIdentifier is refused 400" \
    equals "$(callout /keys/key-1)" 400
check "a malformed RequestIdentifier is refused 400" \
    equals "$(callout /keys/key-1 'short')" 400
check "a wrong password is refused 401" \
    equals "$(callout /keys/key-1 "$(nonce)" "$WORK/curl-wrong")" 401
check "the 401 asks for Basic authentication" \
    grep -qi '^www-authenticate: Basic' "$WORK/headers"
: >"$WORK/no-auth"
check "no credentials at all are refused 401" \
    equals "$(callout /keys/key-1 "$(nonce)" "$WORK/no-auth")" 401
check "an unknown key identifier is 404" \
    equals "$(callout /keys/key-9 "$(nonce)")" 404
check "a path outside path_prefix is 404" \
    equals "$(callout /other/key-1 "$(nonce)")" 404
check "/health answers 200 without credentials" \
    equals "$(callout /health "" "$WORK/no-auth")" 200
check "POST is refused 405" \
    equals "$(curl -sS --cacert "$WORK/tls.crt" -K "$WORK/curl-auth" \
        -o /dev/null -w '%{http_code}' -X POST "$KS_URL/keys/key-1")" 405
check "a request head over max_request_size is refused 431" \
    equals "$(curl -sS --cacert "$WORK/tls.crt" -K "$WORK/curl-auth" \
        -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 9000 \
        /dev/zero | tr '\0' a)" "$KS_URL/keys/key-1")" 431

# ---- 32 callouts at once ----
pids=()
for i in $(seq 1 32); do
    n=$(nonce)
    echo "$n" >"$WORK/par-$i.nonce"
    curl -sS --max-time 120 --cacert "$WORK/tls.crt" -K "$WORK/curl-auth" \
        -H "RequestIdentifier: $n" -o "$WORK/par-$i.json" \
        -w '%{http_code}\n' "$KS_URL/keys/key-1" >"$WORK/par-$i.code" &
    pids+=($!)
done
# (a bare `wait` would wait for the emulator and the service too)
wait "${pids[@]}"
ok=0
for i in $(seq 1 32); do
    [[ $(<"$WORK/par-$i.code") == 200 ]] &&
        verify jwe "$WORK/sf.pem" "$WORK/par-$i.json" "$WORK/dek.bin" \
            --kid key-1 --jti "$(<"$WORK/par-$i.nonce")" --salesforce &&
        ok=$((ok + 1))
done
answers=$((answers + 32))
check "32 concurrent callouts: all 32 answered and decrypted ($ok)" \
    equals "$ok" 32

check "nothing was exported while serving" equals "$(counter exports)" 0
check "every answer was made in SmartKey: two wraps each ($answers answers)" \
    equals "$(counter '.requests["POST /crypto/v1/wrapkey"]')" \
    "$((2 * answers))"

# ---- SIGHUP: a new key identifier, replay detection off ----
create_aes "Second" 256 >/dev/null || fatal "cannot create the second key"
export_value "Second" "$WORK/dek2.bin" || fatal "cannot export it"
ks_config "$WORK/ks.conf" "replay_detection = off"
cat >>"$WORK/ks.conf" <<CONF
[key key-2]
uri = smartkey:name=Second
certificate = $WORK/sf.crt
CONF
kill -HUP "$KS_PID"
check "SIGHUP reloads the configuration" log_waits_for "reloaded"
check "after the reload key-2 is served without RequestIdentifier" \
    equals "$(callout /keys/key-2)" 200
check "its answer decrypts to key-2's material, no jti" \
    verify jwe "$WORK/sf.pem" "$WORK/body" "$WORK/dek2.bin" --kid key-2 \
        --salesforce
echo "broken" >>"$WORK/ks.conf"
kill -HUP "$KS_PID"
check "a broken configuration is refused on reload" \
    log_waits_for "the running configuration stays"
check "the running configuration still serves" \
    equals "$(callout /keys/key-1)" 200

# ---- SmartKey down ----
emulator_stop
check "SmartKey unreachable: 503" equals "$(callout /keys/key-1)" 503
check "the 503 carries Retry-After" \
    grep -qi '^retry-after: 30' "$WORK/headers"

# ---- the log ----
ks_stop
check "SIGTERM stops the service cleanly" equals "$KS_STATUS" 0
check "the log has a line per callout with its status" \
    grep -Eq '"GET /keys/key-1" 200 key=key-1 jti=yes' "$WORK/keyservice.log"
secrets=("$KS_PASSWORD" "$(printf '%s:%s' "$KS_USER" "$KS_PASSWORD" |
    base64 -w0)" "$(<"$API_KEY_FILE")" "$(od -An -tx1 "$WORK/dek.bin" | tr -d " \n")"
    "$(base64 -w0 "$WORK/dek.bin")")
leaked=0
for secret in "${secrets[@]}"; do
    grep -Fq -- "$secret" "$WORK/keyservice.log" && leaked=$((leaked + 1))
done
check "no password, API key or key material in the log" equals "$leaked" 0
finish
