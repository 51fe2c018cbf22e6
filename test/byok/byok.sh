#!/usr/bin/env bash
# Every BYOK artifact (docs/byok/) produced by the stock `openssl pkeyutl`
# with smartkey, under a stand-in cloud wrapping key of BITS bits, and
# checked offline by test/byok/verify.py with the stand-in private key:
#   - direct RSA-OAEP SHA-1/SHA-256, base64 (GCE CSEK, AWS/Alibaba RSAES_*,
#     GCP RSA_OAEP_*_SHA256, Salesforce tenant secret);
#   - CKM_RSA_AES_KEY_WRAP SHA-1/SHA-256 of an AES key (raw) and of RSA
#     and EC keys (PKCS#8) (GCP *_AES_256, AWS RSA_AES_KEY_WRAP_*, OCI),
#     also unwrapped by the stock openssl CLI;
#   - Azure's .byok file, field by field;
#   - the JWE and the key service answer of Salesforce cache-only keys,
#     decrypted by python3-jwcrypto;
#   - the SHA-256 hash files (Salesforce, Google Cloud Storage).
# Each artifact fails to verify with the other hash. The server's export
# counter stays 0 and no object persists: the material never leaves
# SmartKey in the clear (the tests import it, so they know it).
# Usage: byok.sh MODULE_DIR EMULATOR BITS
source "$(dirname "$0")/lib.sh"
bits=${3:?usage: $0 MODULE_DIR EMULATOR BITS}
find_python
cli_start "$1" "$2"

# The cloud: the private half stays here as the stand-in.
cloud_kek "$bits"

# The keys to bring, with material the test knows.
openssl rand -out "$WORK/aes.bin" 32 &&
    openssl rand -out "$WORK/secret.bin" 32 &&
    make_asymmetric_targets || fatal "cannot make the target keys"
import_key Cloud-Secret-Key AES "$WORK/aes.bin" >/dev/null &&
    import_key Tenant-Secret SECRET "$WORK/secret.bin" >/dev/null &&
    import_key Target-RSA RSA "$WORK/rsa.p8" >/dev/null &&
    import_key Target-EC EC "$WORK/ec.p8" NistP256 >/dev/null ||
    fatal "cannot import the target keys"
rest PUT /crypto/v1/keys "$(jq -nc --arg value "$(base64 -w0 \
    "$WORK/cloud-pub.der")" '{name: "cloud kek", obj_type: "RSA",
    value: $value, key_ops: ["WRAPKEY", "ENCRYPT", "APPMANAGEABLE"]}')" \
    >/dev/null || fatal "cannot import the cloud's public key"

PEM="-pubin -inkey $WORK/cloud-pub.pem"
CERT="-certin -inkey $WORK/cloud.crt"
# shellcheck disable=SC2034 # read through ${!source}
HELD="-pubin -inkey smartkey:name=cloud%20kek"
KID="https://contoso.vault.azure.net/keys/kek/0123456789abcdef"
other_hash() { [[ $1 == sha1 ]] && echo sha256 || echo sha1; }
objects_before=$(key_count)
counters_reset

# ---- direct RSA-OAEP, base64 -------------------------------------------
for hash in sha1 sha256; do
    what="RSA-$bits direct OAEP-$hash base64"
    byok_artifact "$WORK/direct.b64" "$PEM" "$hash" Cloud-Secret-Key \
        rsa-oaep -pkeyopt smartkey-wrap-encoding:base64
    check "$what: produced" succeeded
    check "$what: the stand-in key recovers the AES key" \
        verify rsa-oaep "$WORK/cloud.pem" "$WORK/direct.b64" \
        "$WORK/aes.bin" --hash "$hash" --encoding base64
    check "$what: OAEP-$(other_hash "$hash") does not" \
        verify_fails rsa-oaep "$WORK/cloud.pem" "$WORK/direct.b64" \
        "$WORK/aes.bin" --hash "$(other_hash "$hash")" --encoding base64
done

# Salesforce tenant secret: SecretValue under the BYOK certificate.
for hash in sha1 sha512; do
    what="RSA-$bits Salesforce tenant secret OAEP-$hash"
    byok_artifact "$WORK/secret.b64" "$CERT" "$hash" Tenant-Secret \
        rsa-oaep -pkeyopt smartkey-wrap-encoding:base64
    check "$what: produced" succeeded
    check "$what: recovers the secret" \
        verify rsa-oaep "$WORK/cloud.pem" "$WORK/secret.b64" \
        "$WORK/secret.bin" --hash "$hash" --encoding base64
done

# ---- CKM_RSA_AES_KEY_WRAP ------------------------------------------------
declare -A material=([Cloud-Secret-Key]=$WORK/aes.bin
    [Target-RSA]=$WORK/rsa.pem [Target-EC]=$WORK/ec.pem)
declare -A kind=([Cloud-Secret-Key]=raw [Target-RSA]=pkcs8
    [Target-EC]=pkcs8)
for subject in Cloud-Secret-Key Target-RSA Target-EC; do
    for hash in sha1 sha256; do
        what="RSA-$bits RSA-AES-$hash of $subject (${kind[$subject]})"
        counters_reset
        byok_artifact "$WORK/hybrid.bin" "$PEM" "$hash" "$subject" \
            rsa-aes-key-wrap
        check "$what: produced" succeeded
        check "$what: verifies" \
            verify rsa-aes "$WORK/cloud.pem" "$WORK/hybrid.bin" \
            "${material[$subject]}" --hash "$hash" --kind "${kind[$subject]}"
        check "$what: OAEP-$(other_hash "$hash") fails" \
            verify_fails rsa-aes "$WORK/cloud.pem" "$WORK/hybrid.bin" \
            "${material[$subject]}" --hash "$(other_hash "$hash")" \
            --kind "${kind[$subject]}"
        check "$what: one transient AES key, two wraps" \
            equals "$(counter '.requests["POST /crypto/v1/keys"]'),$(counter \
                '.requests["POST /crypto/v1/wrapkey"]')" "1,2"
    done
done

# The stock openssl CLI unwraps it too.
byok_artifact "$WORK/hybrid.bin" "$PEM" sha256 Cloud-Secret-Key \
    rsa-aes-key-wrap
cli_unwrap() {
    local n=$((bits / 8))
    head -c "$n" "$WORK/hybrid.bin" >"$WORK/part.rsa" &&
        tail -c +"$((n + 1))" "$WORK/hybrid.bin" >"$WORK/part.kwp" &&
        local_decrypt "$WORK/cloud.pem" sha256 "$WORK/part.rsa" \
            "$WORK/part.aes" &&
        openssl enc -d -id-aes256-wrap-pad -iv A65959A6 \
            -K "$(od -An -tx1 -v "$WORK/part.aes" | tr -d ' \n')" \
            -in "$WORK/part.kwp" -out "$WORK/part.out" &&
        cmp -s "$WORK/part.out" "$WORK/aes.bin"
}
check "RSA-$bits RSA-AES-sha256: stock openssl pkeyutl + enc unwrap it" \
    cli_unwrap

for source in HELD CERT; do
    what="RSA-$bits RSA-AES-sha256 of Target-RSA, wrapping key $source"
    byok_artifact "$WORK/hybrid.b64" "${!source}" sha256 Target-RSA \
        rsa-aes-key-wrap -pkeyopt smartkey-wrap-encoding:base64
    check "$what: produced (base64)" succeeded
    check "$what: verifies" \
        verify rsa-aes "$WORK/cloud.pem" "$WORK/hybrid.b64" \
        "$WORK/rsa.pem" --hash sha256 --kind pkcs8 --encoding base64
done

# ---- Azure .byok -------------------------------------------------------
for subject in Target-RSA Target-EC Cloud-Secret-Key; do
    what="RSA-$bits Azure .byok of $subject"
    byok_artifact "$WORK/key.byok" "$PEM" sha1 "$subject" azure-byok \
        -pkeyopt "smartkey-wrap-kid:$KID"
    check "$what: produced" succeeded
    check "$what: every field and the ciphertext verify" \
        verify azure "$WORK/cloud.pem" "$WORK/key.byok" \
        "${material[$subject]}" --kid "$KID" --kind "${kind[$subject]}"
done
jq_true() { jq -e "$@" >/dev/null; }
check "RSA-$bits Azure .byok: jq reads the documented fields" \
    jq_true --arg kid "$KID" '.schema_version == "1.0.0" and
        .header == {kid: $kid, alg: "dir", enc: "CKM_RSA_AES_KEY_WRAP"}' \
    "$WORK/key.byok"

# ---- Salesforce cache-only key -----------------------------------------
SFKID=sf-cache-only-key-1
byok_artifact "$WORK/key.jwe" "$CERT" sha1 Cloud-Secret-Key jwe \
    -pkeyopt "smartkey-wrap-kid:$SFKID"
check "RSA-$bits JWE: produced" succeeded
check "RSA-$bits JWE: jwcrypto decrypts it to the key" \
    verify jwe "$WORK/cloud.pem" "$WORK/key.jwe" "$WORK/aes.bin" \
    --kid "$SFKID"
byok_artifact "$WORK/answer.json" "$PEM" sha1 Cloud-Secret-Key \
    salesforce-cache-only -pkeyopt "smartkey-wrap-kid:$SFKID" \
    -pkeyopt smartkey-wrap-jti:nonce-4711
check "RSA-$bits key service answer with jti: produced" succeeded
check "RSA-$bits key service answer with jti: verifies" \
    verify jwe "$WORK/cloud.pem" "$WORK/answer.json" "$WORK/aes.bin" \
    --kid "$SFKID" --jti nonce-4711 --salesforce

# ---- hash files ----------------------------------------------------------
for subject in Tenant-Secret Cloud-Secret-Key; do
    file=$WORK/secret.bin
    [[ $subject == Tenant-Secret ]] || file=$WORK/aes.bin
    byok_artifact "$WORK/hash.b64" "$PEM" sha1 "$subject" sha256 \
        -pkeyopt smartkey-wrap-encoding:base64
    check "SHA-256 hash file of $subject: produced" succeeded
    check "SHA-256 hash file of $subject: the key's hash" \
        verify sha256 "$WORK/hash.b64" "$file" --encoding base64
done

# ---- nothing left the server in the clear ----------------------------------
check "RSA-$bits: the export counter stayed 0" equals "$(counter exports)" 0
check "RSA-$bits: no object persisted" equals "$(key_count)" "$objects_before"
finish
