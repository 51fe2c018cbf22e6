#!/usr/bin/env bash
# `openssl dgst -sign`, `pkeyutl -sign` (pre-hashed input) and `cms -sign`
# with keys held in SmartKey produce signatures that stock OpenSSL verifies
# with the public key alone, and each signature costs exactly one
# POST /crypto/v1/sign: the key lookup and the session happen once per
# process, never per signature.
source "$(dirname "$0")/lib.sh"
sign_test_start "$@"

create_rsa signer-rsa 2048 >/dev/null || fatal "cannot create the RSA key"
create_ec signer-p256 NistP256 >/dev/null || fatal "cannot create a P-256 key"
create_ec signer-p521 NistP521 >/dev/null || fatal "cannot create a P-521 key"
public_pem signer-rsa "$WORK/rsa.pub" || fatal "no RSA public key"
public_pem signer-p256 "$WORK/p256.pub" || fatal "no P-256 public key"
public_pem signer-p521 "$WORK/p521.pub" || fatal "no P-521 public key"

MESSAGE=$WORK/message.txt
printf 'pay 100 to Alice\n' >"$MESSAGE"

# verifies PUBLIC_PEM SIGNATURE DIGEST [dgst -sigopt ...]: stock openssl,
# no provider, checks SIGNATURE over $MESSAGE
verifies() {
    local public=$1 signature=$2 digest=$3
    shift 3
    run openssl dgst "-$digest" -verify "$public" -signature "$signature" \
        "$@" "$MESSAGE"
    succeeded && stdout_has_text 'Verified OK'
}

# ---- dgst ----
counters_reset
check "dgst -sha256 -sign with an RSA key succeeds" \
    run ossl dgst -sha256 -sign smartkey:name=signer-rsa \
    -out "$WORK/rsa.sig" "$MESSAGE"
check "the RSA signature verifies with the public key" \
    verifies "$WORK/rsa.pub" "$WORK/rsa.sig" sha256
check "dgst -sign costs one sign request" equals "$(sign_requests)" 1

check "dgst -sha256 -sign with RSA-PSS succeeds" \
    run ossl dgst -sha256 -sign smartkey:name=signer-rsa \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -out "$WORK/pss.sig" "$MESSAGE"
check "the PSS signature verifies (salt length detected)" \
    verifies "$WORK/rsa.pub" "$WORK/pss.sig" sha256 \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto
check "the PSS signature verifies with salt length 32" \
    verifies "$WORK/rsa.pub" "$WORK/pss.sig" sha256 \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32

check "dgst -sha256 -sign with a P-256 key succeeds" \
    run ossl dgst -sha256 -sign smartkey:name=signer-p256 \
    -out "$WORK/p256.sig" "$MESSAGE"
check "the P-256 signature verifies" \
    verifies "$WORK/p256.pub" "$WORK/p256.sig" sha256
check "dgst -sha512 -sign with a P-521 key succeeds" \
    run ossl dgst -sha512 -sign smartkey:name=signer-p521 \
    -out "$WORK/p521.sig" "$MESSAGE"
check "the P-521 signature verifies" \
    verifies "$WORK/p521.pub" "$WORK/p521.sig" sha512
check "dgst -sha3-256 -sign with an RSA key succeeds" \
    run ossl dgst -sha3-256 -sign smartkey:name=signer-rsa \
    -out "$WORK/sha3.sig" "$MESSAGE"
check "the SHA3-256 signature verifies" \
    verifies "$WORK/rsa.pub" "$WORK/sha3.sig" sha3-256

# A cold process: one key lookup, then the signature; with auth = auto
# (the default) both carry the API key and no session is made.
counters_reset
check "dgst -sign in a fresh process succeeds" \
    run ossl dgst -sha256 -sign smartkey:name=signer-p256 \
    -out "$WORK/cold.sig" "$MESSAGE"
check "a cold dgst -sign costs one key lookup and one sign, no session" \
    equals "$(counter '.requests | [.["POST /crypto/v1/sign"],
                        .["POST /sys/v1/session/auth"],
                        .["POST /crypto/v1/keys/info"]]
                        | map(. // 0 | tostring) | join(",")')" \
    "1,0,1"

counters_reset
run ossl dgst -md5 -sign smartkey:name=signer-rsa -out "$WORK/md5.sig" \
    "$MESSAGE"
check "an MD5 signature is refused" failed_cleanly
check "the refusal names the digest" stderr_has 'cannot sign with digest'
check "the refusal sent nothing to sign" equals "$(sign_requests)" 0

# ---- pkeyutl -sign: the caller hashed ----
openssl dgst -sha256 -binary -out "$WORK/message.sha256" "$MESSAGE"
openssl dgst -sha384 -binary -out "$WORK/message.sha384" "$MESSAGE"
counters_reset
check "pkeyutl -sign with -pkeyopt digest:sha256 succeeds" \
    run ossl pkeyutl -sign -inkey smartkey:name=signer-rsa \
    -in "$WORK/message.sha256" -pkeyopt digest:sha256 \
    -out "$WORK/pre.sig"
check "it equals the dgst -sign signature (PKCS#1 v1.5 is deterministic)" \
    same_bytes "$WORK/pre.sig" "$WORK/rsa.sig"
check "pkeyutl -sign infers SHA-256 from a 32-byte input" \
    run ossl pkeyutl -sign -inkey smartkey:name=signer-rsa \
    -in "$WORK/message.sha256" -out "$WORK/inferred.sig"
check "the inferred-digest signature is the same" \
    same_bytes "$WORK/inferred.sig" "$WORK/rsa.sig"
check "pkeyutl -sign with a P-256 key and a SHA-384 digest succeeds" \
    run ossl pkeyutl -sign -inkey smartkey:name=signer-p256 \
    -in "$WORK/message.sha384" -out "$WORK/pre-ec.sig"
check "it verifies with pkeyutl -verify and the public key" \
    run openssl pkeyutl -verify -pubin -inkey "$WORK/p256.pub" \
    -in "$WORK/message.sha384" -sigfile "$WORK/pre-ec.sig"
check "pkeyutl -sign with RSA-PSS and an inferred digest succeeds" \
    run ossl pkeyutl -sign -inkey smartkey:name=signer-rsa \
    -in "$WORK/message.sha256" -pkeyopt rsa_padding_mode:pss \
    -out "$WORK/pre-pss.sig"
check "it verifies as PSS with SHA-256 and a 32-byte salt" \
    run openssl pkeyutl -verify -pubin -inkey "$WORK/rsa.pub" \
    -in "$WORK/message.sha256" -sigfile "$WORK/pre-pss.sig" \
    -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 \
    -pkeyopt rsa_pss_saltlen:32
check "four pre-hashed signatures cost four sign requests" \
    equals "$(sign_requests)" 4
head -c 33 /dev/zero >"$WORK/odd.bin"
run ossl pkeyutl -sign -inkey smartkey:name=signer-rsa -in "$WORK/odd.bin" \
    -out "$WORK/odd.sig"
check "a 33-byte input is refused (not a digest)" failed_cleanly
check "the refusal asks for -pkeyopt digest" stderr_has 'pkeyopt digest'
run ossl pkeyutl -sign -inkey smartkey:name=signer-rsa \
    -in "$WORK/message.sha256" -pkeyopt digest:sha384 -out "$WORK/bad.sig"
check "a digest of the wrong length for -pkeyopt digest is refused" \
    failed_cleanly

# ---- cms -sign ----
self_signed signer-rsa "$WORK/rsa.crt" || fatal "no RSA certificate"
self_signed signer-p256 "$WORK/p256.crt" || fatal "no P-256 certificate"
counters_reset
check "cms -sign with the RSA key succeeds" \
    run ossl cms -sign -in "$MESSAGE" -signer "$WORK/rsa.crt" \
    -inkey smartkey:name=signer-rsa -binary -nodetach -outform PEM \
    -out "$WORK/rsa.p7m"
check "the CMS message verifies and yields the content" \
    run openssl cms -verify -in "$WORK/rsa.p7m" -inform PEM \
    -CAfile "$WORK/rsa.crt" -binary -out "$WORK/rsa.content"
check "the content is the message" same_bytes "$WORK/rsa.content" "$MESSAGE"
check "cms -sign with the P-256 key (detached) succeeds" \
    run ossl cms -sign -in "$MESSAGE" -signer "$WORK/p256.crt" \
    -inkey smartkey:name=signer-p256 -binary -outform DER \
    -out "$WORK/p256.p7s"
check "the detached CMS signature verifies" \
    run openssl cms -verify -in "$WORK/p256.p7s" -inform DER \
    -content "$MESSAGE" -CAfile "$WORK/p256.crt" -binary -out /dev/null
check "cms -sign with RSA-PSS (-keyopt rsa_padding_mode:pss) succeeds" \
    run ossl cms -sign -in "$MESSAGE" -signer "$WORK/rsa.crt" \
    -inkey smartkey:name=signer-rsa -keyopt rsa_padding_mode:pss -binary \
    -outform DER -out "$WORK/pss.p7s"
check "the RSA-PSS CMS signature verifies" \
    run openssl cms -verify -in "$WORK/pss.p7s" -inform DER \
    -content "$MESSAGE" -CAfile "$WORK/rsa.crt" -binary -out /dev/null
check "three CMS messages cost three sign requests" \
    equals "$(sign_requests)" 3

# ---- verification with the SmartKey key itself stays local ----
counters_reset
check "dgst -prverify smartkey:... accepts the RSA signature" \
    run ossl dgst -sha256 -prverify smartkey:name=signer-rsa \
    -signature "$WORK/rsa.sig" "$MESSAGE"
check "it says Verified OK" stdout_has_text 'Verified OK'
check "dgst -prverify accepts the PSS signature with -sigopt" \
    run ossl dgst -sha256 -prverify smartkey:name=signer-rsa \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto \
    -signature "$WORK/pss.sig" "$MESSAGE"
check "pkeyutl -verify -inkey smartkey:... accepts the P-256 signature" \
    run ossl pkeyutl -verify -inkey smartkey:name=signer-p256 \
    -in "$WORK/message.sha384" -sigfile "$WORK/pre-ec.sig"
printf 'pay 999 to Mallory\n' >"$WORK/forged.txt"
run ossl dgst -sha256 -prverify smartkey:name=signer-rsa \
    -signature "$WORK/rsa.sig" "$WORK/forged.txt"
check "a signature over another message is rejected" failed_cleanly
check "it says Verification failure" stdout_has 'Verification [Ff]ailure'
check "verification sent nothing to SmartKey's sign or verify" \
    equals "$(counter '.requests["POST /crypto/v1/sign"] +
                       .requests["POST /crypto/v1/verify"]')" 0

# ---- SmartKey's refusal reaches the user ----
control POST /_emulator/approval '{"required":true}' >/dev/null
run ossl dgst -sha256 -sign smartkey:name=signer-rsa -out "$WORK/q.sig" \
    "$MESSAGE"
check "a sign call that needs a quorum approval fails" failed_cleanly
check "the error says approval is required and names the key" \
    stderr_line_has 'signer-rsa' 'requires approval'
control POST /_emulator/approval '{"required":false}' >/dev/null

finish
