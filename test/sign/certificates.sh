#!/usr/bin/env bash
# `openssl req` and `openssl x509` issue certificates and CSRs signed by
# keys held in SmartKey: RSA PKCS#1 v1.5, RSA-PSS (salt = digest length)
# and ECDSA P-384. Each certificate verifies with stock OpenSSL, names the
# signature algorithm that was really used, and costs one sign request.
# Salt lengths and digests SmartKey cannot do are refused before any
# request.
source "$(dirname "$0")/lib.sh"
sign_test_start "$@"

create_rsa ca-rsa 2048 >/dev/null || fatal "cannot create the RSA key"
create_ec ca-ec384 NistP384 >/dev/null || fatal "cannot create the EC key"

# issued WITH WHICH NAME OUT [req options...]: two checks, "req -x509 with
# WITH succeeds" (self_signed) and "the WHICH certificate verifies"; its
# text is left in $OUT for the checks that follow.
issued() {
    local with=$1 which=$2 name=$3 out=$4
    shift 4
    check "req -x509 with $with succeeds" self_signed "$name" "$out" "$@"
    check "the $which certificate verifies" \
        run openssl verify -CAfile "$out" "$out"
    run openssl x509 -in "$out" -noout -text
}

# self-signed with the key's default digest and PKCS#1 v1.5
counters_reset
issued "an RSA key" RSA ca-rsa "$WORK/rsa.crt"
check "it is signed sha256WithRSAEncryption" \
    stdout_has 'Signature Algorithm: sha256WithRSAEncryption'
check "one certificate costs one sign request" equals "$(sign_requests)" 1

# RSA-PSS as users ask for it on the command line
counters_reset
issued "RSA-PSS (saltlen digest)" RSA-PSS ca-rsa "$WORK/pss.crt" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
check "it is signed rsassaPss with SHA-256, MGF1-SHA-256, salt 32" \
    bash -c "grep -q 'Signature Algorithm: rsassaPss' '$OUT' &&
             grep -q 'Hash Algorithm: sha256' '$OUT' &&
             grep -q 'Mask Algorithm: mgf1 with sha256' '$OUT' &&
             grep -q 'Salt Length: 0x20' '$OUT'"
issued "RSA-PSS and SHA-384" "RSA-PSS SHA-384" ca-rsa "$WORK/pss384.crt" \
    -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48
check "its parameters say SHA-384 and salt 48" \
    bash -c "grep -q 'Hash Algorithm: sha384' '$OUT' &&
             grep -q 'Salt Length: 0x30' '$OUT'"
issued "RSA-PSS, SHA-384 and MGF1-SHA-256" MGF1-SHA-256 ca-rsa \
    "$WORK/mgf1.crt" -sha384 -sigopt rsa_padding_mode:pss \
    -sigopt rsa_mgf1_md:sha256
check "its parameters say SHA-384 with MGF1-SHA-256" \
    bash -c "grep -q 'Hash Algorithm: sha384' '$OUT' &&
             grep -q 'Mask Algorithm: mgf1 with sha256' '$OUT'"
issued "RSA-PSS and saltlen auto" saltlen-auto ca-rsa "$WORK/auto.crt" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto
check "its parameters state the salt actually used (32)" \
    stdout_has 'Salt Length: 0x20'
check "four PSS certificates cost four sign requests" \
    equals "$(sign_requests)" 4

# ECDSA P-384
counters_reset
issued "an EC P-384 key" EC ca-ec384 "$WORK/ec.crt" -sha384
check "it is signed ecdsa-with-SHA384" \
    stdout_has 'Signature Algorithm: ecdsa-with-SHA384'
check "one EC certificate costs one sign request" equals "$(sign_requests)" 1

# a CSR signed in SmartKey
check "req -new with the EC key writes a CSR" \
    run ossl req -new -key smartkey:name=ca-ec384 -subj /CN=csr-ec \
    -out "$WORK/ec.csr"
check "the CSR's self-signature verifies" \
    run openssl req -verify -noout -in "$WORK/ec.csr"

# a CA key in SmartKey signs somebody else's CSR
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$WORK/leaf.key" 2>/dev/null || fatal "cannot make a local key"
openssl req -new -key "$WORK/leaf.key" -subj /CN=leaf -out "$WORK/leaf.csr" ||
    fatal "cannot make a local CSR"
counters_reset
check "x509 -req -CAkey smartkey:... signs a CSR" \
    run ossl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/rsa.crt" \
    -CAkey smartkey:name=ca-rsa -CAcreateserial \
    -CAserial "$WORK/ca.srl" -days 2 -out "$WORK/leaf.crt"
check "the issued certificate verifies against the SmartKey CA" \
    run openssl verify -CAfile "$WORK/rsa.crt" "$WORK/leaf.crt"
check "issuing costs one sign request" equals "$(sign_requests)" 1

# what SmartKey cannot do is refused up front, with a reason
counters_reset
self_signed ca-rsa "$WORK/max.crt" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:max
check "a maximum PSS salt is refused" failed_cleanly
check "the refusal says the salt must be the digest length" \
    stderr_has 'salt as long as the digest'
self_signed ca-rsa "$WORK/salt20.crt" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:20
check "a 20-byte salt with SHA-256 is refused" failed_cleanly
check "the refusal names both lengths" stderr_has '32 bytes.*not 20 bytes'
self_signed ca-rsa "$WORK/x931.crt" -sigopt rsa_padding_mode:x931
check "X9.31 padding is refused" failed_cleanly
check "the refusal names the paddings SmartKey signs with" \
    stderr_has 'pkcs1 or pss only'
self_signed ca-rsa "$WORK/md5.crt" -md5
check "an MD5 signature is refused" failed_cleanly
check "the refusal names the digest" stderr_has 'cannot sign with digest'
check "no refused signature reached SmartKey" equals "$(sign_requests)" 0

finish
