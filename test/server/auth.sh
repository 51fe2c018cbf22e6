#!/usr/bin/env bash
# Sessions and authentication (docs/smartkey-api.md §2): API key -> bearer token,
# session-less Basic calls, terminate/refresh/reauth, idle expiry.
. "$(dirname "$0")/lib.sh" "$1"

start_emulator

check "api-key file is mode 0600" \
    eval '[[ $(stat -c %a "$STATE/api-key") == 600 ]]'
check "endpoint is an https loopback URL" \
    eval '[[ "$ENDPOINT" =~ ^https://127\.0\.0\.1:[0-9]+$ ]]'

# -- session/auth -----------------------------------------------------------
request "Basic $APIKEY" POST /sys/v1/session/auth
check_status "auth with the API key answers 200" 200
check_eq "auth token_type is Bearer" Bearer "$(field token_type)"
TOKEN=$(field access_token)
check "auth returns an access_token" test -n "$TOKEN"
check "auth expires_in is the default app idle lifetime (600 s)" \
    json_is '.expires_in == 600'
check "auth entity_id is a UUID" uuid_like "$(field entity_id)"
check "auth response never echoes the API key" \
    eval '! grep -qF "$APIKEY" <<<"$BODY"'

request "Basic $(b64_str "00000000-0000-0000-0000-000000000000:wrong")" \
    POST /sys/v1/session/auth
check_status "auth with a wrong API key is refused with 401" 401
check_plain_text "401 body is plain text"
request "Basic not-base64!!" POST /sys/v1/session/auth
check_status "auth with a garbage API key is refused with 401" 401
noauth_api POST /sys/v1/session/auth
check_status "auth without Authorization is refused with 401" 401

# -- using the token --------------------------------------------------------
key='{"name":"auth-ec","obj_type":"EC","elliptic_curve":"NistP256"}'
api POST /crypto/v1/keys "$key"
check_status "bearer token works on a crypto/v1 call" 201
kid=$(field kid)
hash=$(sha256_b64 hello)
sign_body="{\"key\":{\"kid\":\"$kid\"},\"hash_alg\":\"SHA256\",\"hash\":\"$hash\"}"
api POST /crypto/v1/sign "$sign_body"
check_status "bearer token works on /crypto/v1/sign" 200

apikey_api POST /crypto/v1/sign "$sign_body"
check_status "Basic API key is accepted directly on a crypto call" 200
apikey_api POST /crypto/v1/keys/info "{\"kid\":\"$kid\"}"
check_status "Basic API key is accepted directly on keys/info" 200

noauth_api POST /crypto/v1/sign "$sign_body"
check_status "crypto call without Authorization is refused with 401" 401
request "Bearer not-a-token" POST /crypto/v1/sign "$sign_body"
check_status "unknown bearer token is refused with 401" 401
check_plain_text "unknown-token body is plain text"
request "Basic $(b64_str "00000000-0000-0000-0000-000000000000:x")" \
    POST /crypto/v1/sign "$sign_body"
check_status "wrong Basic API key on a crypto call is refused with 401" 401

# -- refresh / terminate --------------------------------------------------
api POST /sys/v1/session/refresh
check_status "refresh answers 204" 204
check_eq "refresh has no body" "" "$BODY"
api POST /crypto/v1/sign "$sign_body"
check_status "token still works after refresh" 200

api POST /sys/v1/session/terminate
check_status "terminate answers 204" 204
api POST /crypto/v1/sign "$sign_body"
check_status "terminated token is refused with 401" 401

# -- reauth ---------------------------------------------------------------
auth
old=$TOKEN
api POST /sys/v1/session/reauth
check "reauth answers 2xx" is_2xx
new=$(field access_token)
check "reauth returns a new token" eval '[[ -n "$new" && "$new" != "$old" ]]'
TOKEN=$new
api POST /crypto/v1/sign "$sign_body"
check_status "reauth token works" 200
TOKEN=$old
api POST /crypto/v1/sign "$sign_body"
check_status "token replaced by reauth is refused with 401" 401

# -- sessions/expire control ------------------------------------------------
auth
api POST /crypto/v1/sign "$sign_body"
check_status "fresh token works" 200
control POST /_emulator/sessions/expire
check "sessions/expire control answers 2xx" is_2xx
api POST /crypto/v1/sign "$sign_body"
check_status "token is refused with 401 after sessions/expire" 401

# -- version ----------------------------------------------------------------
# Whether version needs auth is unconfirmed: ask it with a session.
auth
api GET /sys/v1/version
check_status "version answers 200" 200
check "version has version and api_version strings" \
    eval 'jq -e "(.version|type==\"string\") and (.api_version|type==\"string\")" <<<"$BODY" >/dev/null'
check "version server_mode is Software or Sgx" \
    eval 'jq -e ".server_mode==\"Software\" or .server_mode==\"Sgx\"" <<<"$BODY" >/dev/null'

# -- secrets stay out of the log ----------------------------------------------
check "emulator log never contains the API key" \
    eval '! grep -qF "$APIKEY" "$WORK/emulator.log" "$WORK/emulator.stderr"'
check "emulator log never contains a bearer token" \
    eval '! grep -qF "$new" "$WORK/emulator.log" "$WORK/emulator.stderr"'
check "emulator log has one line per request with the path" \
    grep -q '/sys/v1/session/auth' "$WORK/emulator.log"

# -- idle expiry: a behaviour check, not a timing one. Only a lower bound is
# relied on (idle for longer than the lifetime); a short lifetime for the
# whole script would make the other checks flaky on a loaded machine.
stop_emulator
STATE="$WORK/state-short-lifetime"
start_emulator --token-lifetime 2
auth
check "auth expires_in is the configured idle lifetime" \
    json_is '.expires_in == 2'
sleep 3
api POST /crypto/v1/keys/info '{"name":"anything"}'
check_status "token idle for longer than its lifetime is refused with 401" 401
apikey_api POST /crypto/v1/keys '{"name":"after-expiry","obj_type":"AES","key_size":128}'
check_status "API key still works after a session expired" 201

finish
