#!/usr/bin/env bash
# A signature SmartKey returns in the wrong shape (RSA: not the modulus
# length or not below the modulus; ECDSA: not strict DER, trailing bytes,
# r or s out of range), or of the right shape but wrong (another digest
# signed, one bit flipped), is refused with a clear error and never written
# out as a signature (dgst -sign, pkeyutl -sign, req -x509, a TLS server's
# handshake, batched signatures). A proxy between the provider and the emulator damages
# the answers (tamper_proxy.py).
# Usage: answers.sh MODULE_DIR EMULATOR HOSTILE_BATCH_PROGRAM
source "$(dirname "$0")/lib.sh"
BATCH_PROGRAM=${3:?usage: $0 MODULE_DIR EMULATOR HOSTILE_BATCH_PROGRAM}
sign_test_start "$1" "$2"

create_rsa answer-rsa 2048 >/dev/null || fatal "cannot create the RSA key"
create_ec answer-p256 NistP256 >/dev/null || fatal "cannot create the EC key"

MODE=$WORK/tamper-mode
echo none >"$MODE"
python3 "$(dirname "$0")/tamper_proxy.py" "$ENDPOINT" "$CA_FILE" "$MODE" \
    "$WORK/proxy-port" &
PROXY_PID=$!
BACKGROUND_PIDS+=("$PROXY_PID")
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

# Signatures of the right shape that are wrong: SmartKey signed another
# digest (wrong-message) or one bit changed (bit-flip). Each is verified
# with the key's public key before it is released, and refused.
not_verified() {
    stderr_has_text 'SmartKey returned a signature that does not verify' &&
        stderr_has "key [0-9a-f-]+ \\('$1'\\).*does not verify under the key's public key"
}
for mode in wrong-message bit-flip; do
    sign_with answer-rsa "$mode"
    check "RSA PKCS#1 answer '$mode' is refused" failed_cleanly
    check "RSA PKCS#1 answer '$mode': the error says it does not verify" \
        not_verified answer-rsa
    check "RSA PKCS#1 answer '$mode': no signature is written" \
        no_signature_written

    sign_with answer-p256 "$mode"
    check "ECDSA answer '$mode' is refused" failed_cleanly
    check "ECDSA answer '$mode': the error says it does not verify" \
        not_verified answer-p256
    check "ECDSA answer '$mode': no signature is written" no_signature_written
done

# RSA-PSS with SHA-384 and MGF1-SHA-256: verified with the settings in force
pss_with() {
    echo "$1" >"$MODE"
    rm -f "$WORK/sig"
    run ossl dgst -sha384 -sign "smartkey:name=answer-rsa" \
        -sigopt rsa_padding_mode:pss -sigopt rsa_mgf1_md:sha256 \
        -out "$WORK/sig" "$WORK/message"
}
pss_with none
check "an undamaged RSA-PSS answer (SHA-384, MGF1-SHA-256) signs" succeeded
public_pem answer-rsa "$WORK/answer-rsa.pub"
check "that PSS signature verifies with stock openssl" \
    run openssl dgst -sha384 -verify "$WORK/answer-rsa.pub" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_mgf1_md:sha256 \
    -sigopt rsa_pss_saltlen:48 -signature "$WORK/sig" "$WORK/message"
for mode in wrong-message bit-flip; do
    pss_with "$mode"
    check "RSA-PSS answer '$mode' is refused" failed_cleanly
    check "RSA-PSS answer '$mode': the error says it does not verify" \
        not_verified answer-rsa
    check "RSA-PSS answer '$mode': no signature is written" \
        no_signature_written
done

# pkeyutl -sign: the caller hashed (sign(), not digest_sign_final)
openssl dgst -sha256 -binary -out "$WORK/digest" "$WORK/message"
echo wrong-message >"$MODE"
rm -f "$WORK/sig"
run ossl pkeyutl -sign -inkey "smartkey:name=answer-rsa" -in "$WORK/digest" \
    -pkeyopt digest:sha256 -out "$WORK/sig"
check "pkeyutl -sign: a signature of another digest is refused" \
    failed_cleanly
check "pkeyutl -sign: the error says it does not verify" \
    not_verified answer-rsa
check "pkeyutl -sign: no signature is written" no_signature_written
run ossl pkeyutl -sign -inkey "smartkey:name=answer-p256" -in "$WORK/digest" \
    -out "$WORK/sig"
check "pkeyutl -sign with ECDSA: a signature of another digest is refused" \
    failed_cleanly
check "pkeyutl -sign with ECDSA: no signature is written" \
    no_signature_written

# req -x509: no certificate with a wrong signature is written
for key in answer-rsa answer-p256; do
    for mode in wrong-message bit-flip; do
        echo "$mode" >"$MODE"
        rm -f "$WORK/cert.pem"
        run ossl req -new -x509 -key "smartkey:name=$key" -subj "/CN=$key" \
            -days 2 -out "$WORK/cert.pem"
        check "req -x509 with $key, answer '$mode': refused" failed_cleanly
        check "req -x509 with $key, answer '$mode': the error says so" \
            not_verified "$key"
        check "req -x509 with $key, answer '$mode': no certificate written" \
            bash -c "! grep -q 'BEGIN CERTIFICATE' '$WORK/cert.pem' 2>/dev/null"
    done
done
echo none >"$MODE"

# Batched signatures (batch_max_size): 16 threads sign at once, answers
# slowed a little so that they overlap and share batch requests; each
# wrong signature in a batch answer is refused like a single one.
cat >"$WORK/batch.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
smartkey = smartkey_sect
[default_sect]
activate = 1
[smartkey_sect]
module = $MODULE_DIR/smartkey.so
activate = 1
batch_max_size = 16
CNF
# A TLS server: the handshake signature is checked before it goes to the
# peer; the handshake fails and the server says why.
for key in answer-rsa answer-p256; do
    echo none >"$MODE"
    self_signed "$key" "$WORK/$key.crt" ||
        fatal "cannot make the certificate of $key"
    echo wrong-message >"$MODE"
    server_start "smartkey:name=$key" "$WORK/$key.crt" 1 ||
        fatal "s_server with $key did not start"
    handshake "$WORK/$key.crt" -tls1_3
    check "TLS server with $key, wrong signatures: the handshake fails" \
        failed_cleanly
    server_stop
    check "TLS server with $key: the server reports the wrong signature" \
        grep -q 'SmartKey returned a signature that does not verify' \
        "$WORK/server.err"
done
echo none >"$MODE"

control POST /_emulator/latency '{"ms": 20}' >/dev/null
for key in answer-rsa answer-p256; do
    for mode in wrong-message bit-flip; do
        echo "$mode" >"$MODE"
        counters_reset
        run timeout "$CLI_TIMEOUT" "$BATCH_PROGRAM" "$WORK/batch.cnf" \
            "smartkey:name=$key" 16 4
        check "batched $key, answer '$mode': the program ran" succeeded
        check "batched $key, answer '$mode': the signatures shared batches" \
            between "$(counter '.requests["POST /crypto/v1/keys/batch/sign"]')" 1 64
        check "batched $key, answer '$mode': no signature released" \
            stdout_has_text 'released: 0'
        check "batched $key, answer '$mode': all 64 refused as not verifying" \
            stdout_has_text 'refused as not verifying: 64'
    done
done
control POST /_emulator/latency '{"ms": 0}' >/dev/null
echo none >"$MODE"

finish
