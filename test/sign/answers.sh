#!/usr/bin/env bash
# A signature SmartKey returns in the wrong shape (RSA: not the modulus
# length or not below the modulus; ECDSA: not strict DER, trailing bytes,
# r or s out of range) is refused with a clear error and never written out
# as a signature. A proxy between the provider and the emulator damages
# the answers (tamper_proxy.py).
source "$(dirname "$0")/lib.sh"
sign_test_init "$@"
emulator_start
use_env_config

create_rsa answer-rsa 2048 >/dev/null || fatal "cannot create the RSA key"
create_ec answer-p256 NistP256 >/dev/null || fatal "cannot create the EC key"

MODE=$WORK/tamper-mode
echo none >"$MODE"
python3 "$(dirname "$0")/tamper_proxy.py" "$ENDPOINT" "$CA_FILE" "$MODE" \
    "$WORK/proxy-port" &
PROXY_PID=$!
trap 'status=$?; kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null
      (exit $status); cli_cleanup' EXIT
tries=0
while [[ ! -s $WORK/proxy-port ]]; do
    kill -0 "$PROXY_PID" 2>/dev/null || fatal "the proxy did not start"
    ((++tries > 300)) && fatal "the proxy was not ready after 30 s"
    sleep 0.1
done
SMARTKEY_API_ENDPOINT=https://127.0.0.1:$(<"$WORK/proxy-port")
export SMARTKEY_API_ENDPOINT

printf 'transfer 5 EUR\n' >"$WORK/message"

# sign_with KEY MODE: dgst -sign through the proxy damaging in MODE
sign_with() {
    echo "$2" >"$MODE"
    rm -f "$WORK/sig"
    run ossl dgst -sha256 -sign "smartkey:name=$1" -out "$WORK/sig" \
        "$WORK/message"
}
no_signature_written() { [[ ! -s $WORK/sig ]]; }

sign_with answer-rsa none
check "an undamaged RSA answer signs through the proxy" succeeded

for mode in short long above-modulus; do
    sign_with answer-rsa "$mode"
    check "RSA answer '$mode' is refused" failed_cleanly
    check "RSA answer '$mode': the error says SmartKey answered wrongly" \
        stderr_has 'unexpected answer from SmartKey'
    check "RSA answer '$mode': no signature is written" no_signature_written
done
sign_with answer-rsa short
check "a short RSA signature is reported with both lengths" \
    stderr_has '255-byte RSA signature, the modulus has 256 bytes'

sign_with answer-p256 none
check "an undamaged ECDSA answer signs through the proxy" succeeded
for mode in not-der trailing zero-r; do
    sign_with answer-p256 "$mode"
    check "ECDSA answer '$mode' is refused" failed_cleanly
    check "ECDSA answer '$mode': the error says SmartKey answered wrongly" \
        stderr_has 'unexpected answer from SmartKey'
    check "ECDSA answer '$mode': no signature is written" no_signature_written
done
sign_with answer-p256 zero-r
check "an out-of-range r is reported as such" stderr_has 'r or s is out of range'

finish
