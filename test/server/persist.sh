#!/usr/bin/env bash
# --persist: keys, API key and CA survive a SIGTERM and a restart on the same
# state directory; transient keys do not. Without --persist keys are gone.
. "$(dirname "$0")/lib.sh" "$1"

# sigterm_emulator: stops the emulator and checks the clean-exit contract.
sigterm_emulator() {
    kill -TERM "$EMU_PID"
    local rc=0
    wait "$EMU_PID" || rc=$?
    EMU_PID=""
    check_eq "SIGTERM: the emulator exits with status 0" 0 "$rc"
    check "SIGTERM: the endpoint file is removed" test ! -e "$STATE/endpoint"
}

start_emulator --persist
auth
first_apikey=$APIKEY
cp "$CA" "$WORK/ca-first.pem"

generate_key '{"name":"persist-rsa","obj_type":"RSA","key_size":2048}'
RSA_KID=$KID
rsa_pub=$(field pub_key)
generate_key '{"name":"persist-ec","obj_type":"EC","elliptic_curve":"NistP384"}'
EC_KID=$KID
ec_pub=$(field pub_key)
openssl rand 32 >"$WORK/aes.key"
import_key "{\"name\":\"persist-aes\",\"obj_type\":\"AES\",\"value\":\"$(b64_file "$WORK/aes.key")\",\"key_ops\":[\"ENCRYPT\",\"DECRYPT\",\"EXPORT\"]}"
AES_KID=$KID
api PATCH "/crypto/v1/keys/$RSA_KID" '{"enabled":false}'
api POST /crypto/v1/keys '{"obj_type":"EC","elliptic_curve":"NistP256","transient":true}'
handle=$(field transient_key)
check "transient key created before restart" test -n "$handle"
api GET /crypto/v1/keys
check_eq "3 persisted keys listed before restart" 3 "$(jq length <<<"$BODY")"

sigterm_emulator

start_emulator --persist
check_eq "the API key is the same after restart" "$first_apikey" "$APIKEY"
check "the CA certificate is reused after restart" cmp -s "$CA" "$WORK/ca-first.pem"
auth
check "the old API key authenticates after restart" test -n "$TOKEN"
api GET /crypto/v1/keys
check_eq "the 3 keys are listed after restart" 3 "$(jq length <<<"$BODY")"
api POST /crypto/v1/keys/info "{\"kid\":\"$EC_KID\"}"
check_status "EC key found by kid after restart" 200
check_eq "EC key has the same pub_key after restart" "$ec_pub" "$(field pub_key)"
check_eq "EC key keeps its curve" NistP384 "$(field elliptic_curve)"
api POST /crypto/v1/keys/info '{"name":"persist-rsa"}'
check_eq "RSA key found by name with the same pub_key" "$rsa_pub" "$(field pub_key)"
check "a PATCH made before the restart is kept (disabled)" \
    json_is '.enabled == false'

printf 'after restart' >"$WORK/msg"
h=$(openssl dgst -sha384 -binary "$WORK/msg" | base64 -w0)
api POST /crypto/v1/sign "{\"key\":{\"kid\":\"$EC_KID\"},\"hash_alg\":\"SHA384\",\"hash\":\"$h\"}"
check_status "EC key signs after restart" 200
unb64 "$(field signature)" "$WORK/sig"
unb64 "$ec_pub" "$WORK/ec-pub.der"
openssl pkey -pubin -inform DER -in "$WORK/ec-pub.der" -out "$WORK/ec-pub.pem"
check "the signature verifies with the pub_key from before the restart" \
    eval 'openssl dgst -sha384 -verify "$WORK/ec-pub.pem" -signature "$WORK/sig" "$WORK/msg" >/dev/null 2>&1'
export_value "$AES_KID" "$WORK/aes.out"
check "imported AES key has the same bytes after restart" \
    cmp -s "$WORK/aes.key" "$WORK/aes.out"

api POST /crypto/v1/sign "{\"key\":{\"transient_key\":\"$handle\"},\"hash_alg\":\"SHA256\",\"hash\":\"$(openssl dgst -sha256 -binary "$WORK/msg" | base64 -w0)\"}"
check "the transient key is gone after restart (4xx)" \
    eval '[[ "$STATUS" == 4?? ]]'

api POST /crypto/v1/keys '{"name":"persist-ec","obj_type":"EC","elliptic_curve":"NistP256"}'
check_status "names stay reserved after restart (409)" 409

sigterm_emulator

# -- without --persist -----------------------------------------------------------
STATE="$WORK/state-volatile"
start_emulator
volatile_apikey=$APIKEY
auth
generate_key '{"name":"volatile","obj_type":"AES","key_size":128}'
check_status "key created without --persist" 201
sigterm_emulator
start_emulator
check_eq "the API key is reused even without --persist" \
    "$volatile_apikey" "$APIKEY"
auth
api POST /crypto/v1/keys/info '{"name":"volatile"}'
check_status "without --persist keys are gone after a restart" 404

finish
