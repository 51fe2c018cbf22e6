#!/usr/bin/env bash
# `openssl pkey -in 'smartkey:...' -out FILE` writes a key-reference file
# for an existing key, and with the provider activated through openssl.cnf
# alone, every way OpenSSL reads a key *file* loads it as the SmartKey key:
# PEM_read_PrivateKey, SSL_CTX_use_PrivateKey_file (+ check_private_key),
# OSSL_STORE's file: loader and the openssl commands.
# Usage: keyref.sh MODULE_DIR EMULATOR LEGACY_PROGRAM
source "$(dirname "$0")/lib.sh"
keyref_init "$@"
emulator_start

rsa_kid=$(create_rsa ref-rsa 2048)
ec_kid=$(create_ec ref-ec NistP384)
pub_der=$WORK/pub.der
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/local.pem" 2>/dev/null &&
    openssl pkey -in "$WORK/local.pem" -pubout -outform DER -out "$pub_der"
public_kid=$(import_public ref-public RSA "$pub_der")
[[ -n $rsa_kid && -n $ec_kid && -n $public_kid ]] ||
    fatal "could not create the test keys in the emulator"
server_public_key ref-rsa "$WORK/rsa.der"
server_public_key ref-ec "$WORK/ec.der"
use_env_config

# ---- writing references for existing keys -------------------------------
run ossl pkey -in smartkey:name=ref-rsa -out "$WORK/rsa.pem"
check "pkey -in smartkey:name=... -out writes a file" succeeded
check "  holding a key reference" \
    grep -q '^-----BEGIN SMARTKEY KEY REFERENCE-----$' "$WORK/rsa.pem"
check "  that names the key by kid" \
    grep -Fq "$rsa_kid" <(openssl asn1parse -in "$WORK/rsa.pem")
run ossl pkey -in "smartkey:kid=$ec_kid" -out "$WORK/ec.pem"
check "pkey -in smartkey:kid=... -out writes an EC reference" succeeded
run ossl pkey -in smartkey:name=ref-rsa -outform DER -out "$WORK/rsa.der-ref"
check "pkey -outform DER writes the reference as DER" \
    same_bytes "$WORK/rsa.der-ref" <(pem_to_der "$WORK/rsa.pem" /dev/stdout)
run ossl pkey -in smartkey:name=ref-public -out "$WORK/public.pem"
check "a public-only key gets no reference file" failed_cleanly
check "  and the error says to write its public key" stderr_has 'public key'

# ---- openssl commands with -provider flags -------------------------------
check "the RSA reference loads with pkey -pubout" \
    pubout_matches "$WORK/rsa.pem" "$WORK/rsa.der"
check "the EC reference loads with pkey -pubout" \
    pubout_matches "$WORK/ec.pem" "$WORK/ec.der"
run ossl pkey -in "$WORK/rsa.pem" -out "$WORK/rsa-again.pem"
check "re-encoding a loaded reference gives the same file" \
    same_bytes "$WORK/rsa.pem" "$WORK/rsa-again.pem"
run ossl storeutl -keys "$WORK/ec.pem"
check "storeutl lists the reference file as a private key" \
    stdout_has '^0: Pkey'

# ---- legacy programs: openssl.cnf only -----------------------------------
config_only_activation
make_test_ca || fatal "could not make the test CA"
OPENSSL_CONF=$WORK/empty.cnf openssl pkey -pubin -inform DER \
    -in "$WORK/rsa.der" -out "$WORK/rsa.pub" &&
    OPENSSL_CONF=$WORK/empty.cnf openssl pkey -pubin -inform DER \
        -in "$WORK/ec.der" -out "$WORK/ec.pub" ||
    fatal "could not convert the public keys"
issue_cert "$WORK/rsa.pub" "$WORK/rsa.crt" ref-rsa &&
    issue_cert "$WORK/ec.pub" "$WORK/ec.crt" ref-ec ||
    fatal "could not issue the test certificates"

counters_reset
run "$LEGACY" pem "$WORK/rsa.pem"
check "PEM_read_PrivateKey loads the RSA reference (config only)" \
    stdout_has_text "loaded RSA 2048"
check "  with one key lookup" \
    equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 1
run "$LEGACY" pem "$WORK/ec.pem"
check "PEM_read_PrivateKey loads the EC reference (config only)" \
    stdout_has_text "loaded EC 384"
run "$LEGACY" ssl "$WORK/rsa.pem" "$WORK/rsa.crt"
check "SSL_CTX_use_PrivateKey_file + check_private_key accept the RSA reference" \
    stdout_has_text "ssl ok"
run "$LEGACY" ssl "$WORK/ec.pem" "$WORK/ec.crt"
check "SSL_CTX_use_PrivateKey_file + check_private_key accept the EC reference" \
    stdout_has_text "ssl ok"
run "$LEGACY" ssl "$WORK/rsa.pem" "$WORK/ec.crt"
check "SSL_CTX_check_private_key rejects a certificate of another key" \
    failed_cleanly
run "$LEGACY" store "file:$WORK/rsa.pem"
check "OSSL_STORE file: URI loads the reference" stdout_has_text "loaded RSA 2048"
run "$LEGACY" store "$WORK/ec.pem"
check "OSSL_STORE plain path loads the reference" stdout_has_text "loaded EC 384"
run ossl_plain pkey -in "$WORK/ec.pem" -pubout -outform DER -out "$WORK/ec-out.der"
check "openssl pkey -pubout through openssl.cnf only" \
    same_bytes "$WORK/ec-out.der" "$WORK/ec.der"

# The snippet appended to the system openssl.cnf with .include, as
# docs/legacy-apps.md tells (the system file's own sections merge).
ssl_dir=$(openssl version -d | sed -n 's/^OPENSSLDIR: "\(.*\)"$/\1/p')
if [[ -f $ssl_dir/openssl.cnf ]]; then
    {
        cat "$ssl_dir/openssl.cnf"
        echo
        echo ".include $WORK/openssl.cnf"
    } >"$WORK/system.cnf"
    run env OPENSSL_CONF="$WORK/system.cnf" "$LEGACY" ssl "$WORK/ec.pem" \
        "$WORK/ec.crt"
    check "the snippet .included at the end of the system openssl.cnf works" \
        stdout_has_text "ssl ok"
    run env OPENSSL_CONF="$WORK/system.cnf" openssl list -providers
    check "  with default listed before smartkey" \
        equals "$(grep -E '^  [a-z]+$' "$OUT" | tr -d ' ' | tr '\n' ' ')" \
        "default smartkey "
else
    echo "skip - no system openssl.cnf in '$ssl_dir'"
fi

# Without the provider the file is refused, not misread.
export OPENSSL_CONF=$WORK/empty.cnf
run "$LEGACY" pem "$WORK/rsa.pem"
check "without the provider the reference does not load" failed_cleanly

finish
