/*
 * smartkey-emulator: key material and the crypto endpoints.
 *
 * Decisions on unconfirmed points (copied into docs/local-server.md):
 *  - RSA import accepts DER PKCS#1 RSAPrivateKey, PKCS#8 PrivateKeyInfo and
 *    SubjectPublicKeyInfo (public-only object); EC import accepts RFC 5915
 *    ECPrivateKey (named curve required), PKCS#8 and SPKI. A key whose curve
 *    differs from the request's elliptic_curve is refused (400).
 *  - Supported curves: NistP192/P224/P256/P384/P521, SecP256K1 and Ed25519
 *    (an EC object whose material is an RFC 8410 key: PKCS#8 on import and
 *    export, RFC 8410 SPKI as pub_key). EC objects report key_size = curve
 *    bits (256 for Ed25519). X25519 is not supported.
 *  - Ed25519 signs and verifies `data` only (pure EdDSA: 400 for `hash`),
 *    takes no `mode`, and requires hash_alg SHA512 (400 otherwise; what
 *    Fortanix's clients send, docs/smartkey-api.md §8); the signature is
 *    R || S, 64 bytes. deterministic_signature is accepted (EdDSA is).
 *  - `context` on sign/verify (ML-DSA keys only in SmartKey's model) is
 *    refused (400) for every key: this server has no ML-DSA keys.
 *  - OAEP: the label hash is the MGF1 hash; `label` (Base64) is accepted on
 *    encrypt/decrypt and refused (400) with PKCS1_V15. OAEP in a request must
 *    carry mgf.mgf1.hash.
 *  - A padding that the key's RSA policy does not allow is a 400 (not 403).
 *  - RSA ciphertext must be exactly the modulus length (no left padding).
 *  - RAW_DECRYPT is honoured on decrypt only, when the policy allows it.
 *  - PSS signs with salt length = digest length and verifies with the salt
 *    length detected from the signature. A PSS mode without mgf uses
 *    hash_alg for MGF1 (OAEP without mgf is refused, as the Go client never
 *    sends it).
 *  - `hash` must have the digest length of `hash_alg`, else 400.
 *  - deterministic_signature=true is refused (400) for ECDSA: the server has no
 *    RFC 6979 implementation; for RSA it is ignored (PKCS#1 v1.5 is already
 *    deterministic).
 *  - A malformed verify signature (bad base64 is still 400) answers 200
 *    {"result":false}.
 *  - Decryption failure (bad padding, wrong tag, wrong key) answers 400 with
 *    the plain text "Decryption failed".
 *  - AES modes: GCM, CBC (PKCS#7), KW (RFC 3394), KWP (RFC 5649) for
 *    encrypt/decrypt/wrap/unwrap. GCM tag_len (bits) is one of 32, 64, 96..128
 *    step 8; a caller iv of any length 1..128 bytes is accepted; a random
 *    12-byte iv is generated when absent. CBC iv is 16 bytes, random when
 *    absent on encrypt, required on decrypt. KW/KWP take no iv (400).
 *  - `alg` is required on encrypt only; decrypt, wrapkey and unwrapkey take
 *    it from the key when absent. When sent it must equal the key's obj_type
 *    (400). Key permissions (403) are checked before request parameters.
 *  - wrapkey: wrapped content is the raw value for AES/HMAC/SECRET subjects
 *    and PKCS#1 / RFC 5915 (key_format "Default") or PKCS#8 ("Pkcs8") DER for
 *    RSA/EC subjects. A public-only subject cannot be wrapped (403). The
 *    response never carries "kid". Every subject, transient ones included,
 *    needs EXPORT; an inline public RSA key ({"inline":{"obj_type":"RSA",
 *    "value":<SPKI>}}) works as a wrapping key.
 *  - unwrapkey answers 200 with the new Sobject (201 is not observed anywhere).
 *    Without key_ops the new object gets every op valid for its type except
 *    EXPORT, as for generate.
 *  - Batches: at most 1000 items (else 400); the call answers 200 with one
 *    item per request in order: {"status":N,"body":{..}} or
 *    {"status":N,"error":"text"}. A batch encrypt/decrypt item names its key
 *    only by "kid".
 */
#include "emulator.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* ---- algorithm tables, fetched once ---- */

struct hash_alg {
    const char *smartkey_name; /* DigestAlgorithm spelling */
    const char *openssl_name;
    EVP_MD *md; /* NULL when this OpenSSL cannot fetch it */
};

static struct hash_alg hash_algs[] = {
    {"SHA1", "SHA1", NULL},         {"SHA224", "SHA2-224", NULL},
    {"SHA256", "SHA2-256", NULL},   {"SHA384", "SHA2-384", NULL},
    {"SHA512", "SHA2-512", NULL},   {"SHA3_224", "SHA3-224", NULL},
    {"SHA3_256", "SHA3-256", NULL}, {"SHA3_384", "SHA3-384", NULL},
    {"SHA3_512", "SHA3-512", NULL},
};

/* Spellings SmartKey knows but this server does not implement. */
static const char *const unsupported_hash_names[] = {
    "RIPEMD160",  "SSL3",       "BLAKE2B256",  "BLAKE2B384",
    "BLAKE2B512", "BLAKE2S256", "STREEBOG256", "STREEBOG512",
};

enum aes_mode { AES_GCM, AES_CBC, AES_KW, AES_KWP, AES_MODE_COUNT };

static const char *const aes_mode_names[AES_MODE_COUNT] = {"GCM", "CBC", "KW",
                                                           "KWP"};
static const char *const unsupported_mode_names[] = {
    "ECB", "CBCNOPAD", "CFB", "OFB", "CTR", "CCM", "FF1"};

/* [mode][key length 16/24/32] */
static EVP_CIPHER *aes_ciphers[AES_MODE_COUNT][3];

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void fetch_tables(void)
{
    static const char *const suffix[AES_MODE_COUNT] = {"GCM", "CBC", "WRAP",
                                                       "WRAP-PAD"};
    static const int bits[3] = {128, 192, 256};
    char name[32];

    for (size_t i = 0; i < sizeof(hash_algs) / sizeof(hash_algs[0]); i++)
        hash_algs[i].md = EVP_MD_fetch(NULL, hash_algs[i].openssl_name, NULL);
    for (int m = 0; m < AES_MODE_COUNT; m++) {
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof(name), "AES-%d-%s", bits[k], suffix[m]);
            aes_ciphers[m][k] = EVP_CIPHER_fetch(NULL, name, NULL);
        }
    }
    ERR_clear_error();
}

static void tables_init(void)
{
    pthread_once(&tables_once, fetch_tables);
}

static const EVP_CIPHER *aes_cipher(enum aes_mode mode, size_t key_len)
{
    tables_init();
    switch (key_len) {
    case 16:
        return aes_ciphers[mode][0];
    case 24:
        return aes_ciphers[mode][1];
    case 32:
        return aes_ciphers[mode][2];
    default:
        return NULL;
    }
}

/* ---- curves ---- */

struct curve {
    const char *smartkey_name;
    int nid;
    unsigned bits;
};

static const struct curve curves[] = {
    {"NistP192", NID_X9_62_prime192v1, 192}, {"NistP224", NID_secp224r1, 224},
    {"NistP256", NID_X9_62_prime256v1, 256}, {"NistP384", NID_secp384r1, 384},
    {"NistP521", NID_secp521r1, 521},        {"SecP256K1", NID_secp256k1, 256},
    {"Ed25519", NID_ED25519, 256},
};

/* An Ed25519 EC object: an OpenSSL ED25519 key, not an EC group. */
static int is_ed25519_curve(const char *smartkey_name)
{
    return strcmp(smartkey_name, "Ed25519") == 0;
}

int em_key_is_ed25519(const em_obj *obj)
{
    return strcmp(obj->obj_type, "EC") == 0 && is_ed25519_curve(obj->curve);
}

static const struct curve *curve_by_name(const char *smartkey_name)
{
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
        if (strcmp(curves[i].smartkey_name, smartkey_name) == 0)
            return &curves[i];
    return NULL;
}

static const struct curve *curve_of_pkey(const EVP_PKEY *pkey)
{
    char group[64];
    size_t len = 0;
    int nid;

    if (EVP_PKEY_is_a(pkey, "ED25519"))
        return curve_by_name("Ed25519");
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                        sizeof(group), &len))
        return NULL;
    nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
        if (curves[i].nid == nid)
            return &curves[i];
    return NULL;
}

/* ---- key material ---- */

static int is_symmetric_type(const char *obj_type)
{
    return strcmp(obj_type, "AES") == 0 || strcmp(obj_type, "HMAC") == 0 ||
           strcmp(obj_type, "SECRET") == 0;
}

static int is_asymmetric_type(const char *obj_type)
{
    return strcmp(obj_type, "RSA") == 0 || strcmp(obj_type, "EC") == 0;
}

static int set_random_value(em_obj *obj, size_t len, char *err, size_t errlen)
{
    unsigned char *value = malloc(len);

    if (value == NULL || RAND_bytes(value, (int)len) != 1) {
        free(value);
        snprintf(err, errlen, "random generator failure");
        return 0;
    }
    obj->value = value;
    obj->value_len = len;
    return 1;
}

static int generate_rsa(em_obj *obj, unsigned long pub_exponent, char *err,
                        size_t errlen)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *e = NULL;
    int ok = 0;

    if (obj->key_size == 0) {
        snprintf(err, errlen, "key_size is required for RSA keys");
        return 0;
    }
    if (obj->key_size < 1024 || obj->key_size > 8192) {
        snprintf(err, errlen,
                 "RSA key_size %u is not supported (1024 to 8192 bits)",
                 obj->key_size);
        return 0;
    }
    if (pub_exponent == 0)
        pub_exponent = 65537;
    if (pub_exponent < 3 || (pub_exponent & 1) == 0 ||
        pub_exponent > 0xffffffffUL) {
        snprintf(err, errlen, "pub_exponent %lu is not valid", pub_exponent);
        return 0;
    }
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    e = BN_new();
    if (ctx == NULL || e == NULL || !BN_set_word(e, pub_exponent) ||
        EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)obj->key_size) <= 0 ||
        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) <= 0 ||
        EVP_PKEY_generate(ctx, &pkey) <= 0) {
        snprintf(err, errlen, "RSA key generation failed");
        goto done;
    }
    obj->pkey = pkey;
    ok = 1;
done:
    BN_free(e);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static int generate_ec(em_obj *obj, char *err, size_t errlen)
{
    const struct curve *curve;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    int ok = 0;

    if (obj->curve[0] == '\0') {
        snprintf(err, errlen, "elliptic_curve is required for EC keys");
        return 0;
    }
    curve = curve_by_name(obj->curve);
    if (curve == NULL) {
        snprintf(err, errlen, "elliptic_curve %s is not supported", obj->curve);
        return 0;
    }
    ctx = EVP_PKEY_CTX_new_from_name(
        NULL, is_ed25519_curve(curve->smartkey_name) ? "ED25519" : "EC", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        (!is_ed25519_curve(curve->smartkey_name) &&
         EVP_PKEY_CTX_set_group_name(ctx, OBJ_nid2sn(curve->nid)) <= 0) ||
        EVP_PKEY_generate(ctx, &pkey) <= 0) {
        snprintf(err, errlen, "EC key generation failed");
        goto done;
    }
    obj->pkey = pkey;
    obj->key_size = curve->bits;
    ok = 1;
done:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

int em_key_generate(em_obj *obj, unsigned long pub_exponent, char *err,
                    size_t errlen)
{
    obj->public_only = 0;
    if (strcmp(obj->obj_type, "RSA") == 0)
        return generate_rsa(obj, pub_exponent, err, errlen);
    if (strcmp(obj->obj_type, "EC") == 0)
        return generate_ec(obj, err, errlen);
    if (strcmp(obj->obj_type, "AES") == 0) {
        if (obj->key_size != 128 && obj->key_size != 192 &&
            obj->key_size != 256) {
            snprintf(err, errlen,
                     "AES key_size must be 128, 192 or 256 (got %u)",
                     obj->key_size);
            return 0;
        }
        return set_random_value(obj, obj->key_size / 8, err, errlen);
    }
    if (strcmp(obj->obj_type, "HMAC") == 0) {
        if (obj->key_size < 8 || obj->key_size > 65536 ||
            obj->key_size % 8 != 0) {
            snprintf(err, errlen,
                     "HMAC key_size must be a multiple of 8 from 8 to 65536 "
                     "(got %u)",
                     obj->key_size);
            return 0;
        }
        return set_random_value(obj, obj->key_size / 8, err, errlen);
    }
    if (strcmp(obj->obj_type, "SECRET") == 0) {
        snprintf(err, errlen,
                 "SECRET objects cannot be generated; import them");
        return 0;
    }
    snprintf(err, errlen, "obj_type %s is not supported by this server",
             obj->obj_type);
    return 0;
}

/*
 * Decodes DER of one structure family; the whole input must be consumed so
 * that trailing garbage is refused rather than silently ignored.
 */
static EVP_PKEY *decode_der(const char *key_type, int selection,
                            const char *structure, const unsigned char *der,
                            size_t len)
{
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = der;
    size_t left = len;

    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", structure, key_type,
                                         selection, NULL, NULL);
    if (dctx == NULL)
        return NULL;
    if (!OSSL_DECODER_from_data(dctx, &p, &left) || left != 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    /* The EC decoder also accepts SM2 and the RSA one RSA-PSS keys. */
    if (pkey != NULL && !EVP_PKEY_is_a(pkey, key_type)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    return pkey;
}

/* The key-pair decoders may also accept a bare public key structure. */
static int has_private_half(const EVP_PKEY *pkey, int is_rsa)
{
    BIGNUM *secret = NULL;
    size_t len = 0;
    int found;

    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        /* its private key is an octet string, not a number */
        found = EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY,
                                                NULL, 0, &len) &&
                len > 0;
        ERR_clear_error();
        return found;
    }
    found = EVP_PKEY_get_bn_param(
        pkey, is_rsa ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY,
        &secret);
    BN_clear_free(secret);
    ERR_clear_error();
    return found;
}

/* An Ed25519 key (RFC 8410): PKCS#8, or SPKI for a public-only object. */
static EVP_PKEY *decode_ed25519(const unsigned char *value, size_t len,
                                int *public_only)
{
    EVP_PKEY *pkey = decode_der("ED25519", OSSL_KEYMGMT_SELECT_KEYPAIR,
                                "PrivateKeyInfo", value, len);

    *public_only = 0;
    if (pkey == NULL) {
        pkey = decode_der("ED25519", OSSL_KEYMGMT_SELECT_PUBLIC_KEY,
                          "SubjectPublicKeyInfo", value, len);
        *public_only = 1;
    }
    return pkey;
}

/* Decodes RSA or EC (Ed25519 included) DER; NULL when no encoding fits. */
static EVP_PKEY *decode_asymmetric(const em_obj *obj, int is_rsa,
                                   const unsigned char *value, size_t len,
                                   int *public_only)
{
    const char *key_type = is_rsa ? "RSA" : "EC";
    EVP_PKEY *pkey = NULL;

    if (!is_rsa && is_ed25519_curve(obj->curve))
        /* an Ed25519 EC object: RFC 8410 material only */
        return decode_ed25519(value, len, public_only);
    pkey = decode_der(key_type, OSSL_KEYMGMT_SELECT_KEYPAIR, "type-specific",
                      value, len);
    if (pkey == NULL)
        pkey = decode_der(key_type, OSSL_KEYMGMT_SELECT_KEYPAIR,
                          "PrivateKeyInfo", value, len);
    if (pkey != NULL) {
        *public_only = !has_private_half(pkey, is_rsa);
    } else {
        pkey = decode_der(key_type, OSSL_KEYMGMT_SELECT_PUBLIC_KEY,
                          "SubjectPublicKeyInfo", value, len);
        *public_only = 1;
    }
    /* an EC import without elliptic_curve may be an Ed25519 key */
    if (pkey == NULL && !is_rsa && obj->curve[0] == '\0')
        pkey = decode_ed25519(value, len, public_only);
    return pkey;
}

/* Records an EC key's curve in obj; 0 (with `err`) when it does not fit. */
static int adopt_ec_curve(em_obj *obj, const EVP_PKEY *pkey, char *err,
                          size_t errlen)
{
    const struct curve *curve = curve_of_pkey(pkey);

    if (curve == NULL) {
        snprintf(err, errlen, "the EC key's curve is not supported");
        return 0;
    }
    if (obj->curve[0] != '\0' &&
        strcmp(obj->curve, curve->smartkey_name) != 0) {
        snprintf(err, errlen,
                 "elliptic_curve %s does not match the key's curve %s",
                 obj->curve, curve->smartkey_name);
        return 0;
    }
    snprintf(obj->curve, sizeof(obj->curve), "%s", curve->smartkey_name);
    obj->key_size = curve->bits;
    return 1;
}

static int import_asymmetric(em_obj *obj, const unsigned char *value,
                             size_t len, char *err, size_t errlen)
{
    int is_rsa = strcmp(obj->obj_type, "RSA") == 0;
    int public_only = 0;
    EVP_PKEY *pkey = decode_asymmetric(obj, is_rsa, value, len, &public_only);

    ERR_clear_error();
    if (pkey == NULL) {
        snprintf(err, errlen,
                 is_rsa ? "value is not a DER RSA key (PKCS#1 RSAPrivateKey, "
                          "PKCS#8 or SubjectPublicKeyInfo)"
                        : "value is not a DER EC key on a named curve "
                          "(RFC 5915 ECPrivateKey, PKCS#8 or "
                          "SubjectPublicKeyInfo) nor an Ed25519 key (PKCS#8 "
                          "or SubjectPublicKeyInfo)");
        return 0;
    }
    if (is_rsa) {
        obj->key_size = (unsigned)EVP_PKEY_get_bits(pkey);
        if (obj->key_size < 512) {
            EVP_PKEY_free(pkey);
            snprintf(err, errlen, "RSA keys under 512 bits are refused");
            return 0;
        }
    } else if (!adopt_ec_curve(obj, pkey, err, errlen)) {
        EVP_PKEY_free(pkey);
        return 0;
    }
    obj->pkey = pkey;
    obj->public_only = public_only;
    return 1;
}

/*
 * A CERTIFICATE's value is one DER X.509 certificate (nothing after it);
 * the object is public only and its pub_key is the certified key's, as
 * SmartKey shows it. RSA and EC keys only: the ones this server can hold.
 */
static int import_certificate(em_obj *obj, const unsigned char *value,
                              size_t len, char *err, size_t errlen)
{
    const unsigned char *p = value;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    EVP_PKEY *pkey = NULL;
    const struct curve *curve;

    if (cert == NULL || p != value + len) {
        X509_free(cert);
        ERR_clear_error();
        snprintf(err, errlen, "value is not one DER X.509 certificate");
        return 0;
    }
    pkey = X509_get_pubkey(cert);
    X509_free(cert);
    ERR_clear_error();
    if (pkey == NULL ||
        (!EVP_PKEY_is_a(pkey, "RSA") && !EVP_PKEY_is_a(pkey, "EC"))) {
        EVP_PKEY_free(pkey);
        snprintf(err, errlen, "the certificate's key is not an RSA or EC key");
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        if ((curve = curve_of_pkey(pkey)) == NULL) {
            EVP_PKEY_free(pkey);
            snprintf(err, errlen, "the certificate's curve is not supported");
            return 0;
        }
        obj->key_size = curve->bits;
    } else {
        obj->key_size = (unsigned)EVP_PKEY_get_bits(pkey);
    }
    obj->value = malloc(len);
    if (obj->value == NULL) {
        EVP_PKEY_free(pkey);
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    memcpy(obj->value, value, len);
    obj->value_len = len;
    obj->pkey = pkey;
    obj->public_only = 1;
    return 1;
}

int em_key_import(em_obj *obj, const unsigned char *value, size_t len,
                  char *err, size_t errlen)
{
    if (em_is_certificate(obj))
        return import_certificate(obj, value, len, err, errlen);
    if (is_asymmetric_type(obj->obj_type))
        return import_asymmetric(obj, value, len, err, errlen);
    if (!is_symmetric_type(obj->obj_type)) {
        snprintf(err, errlen, "obj_type %s is not supported by this server",
                 obj->obj_type);
        return 0;
    }
    if (len == 0) {
        snprintf(err, errlen, "value must not be empty");
        return 0;
    }
    if (strcmp(obj->obj_type, "AES") == 0 && len != 16 && len != 24 &&
        len != 32) {
        snprintf(err, errlen,
                 "an AES value must be 16, 24 or 32 bytes (got %zu)", len);
        return 0;
    }
    obj->value = malloc(len);
    if (obj->value == NULL) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    memcpy(obj->value, value, len);
    obj->value_len = len;
    obj->key_size = (unsigned)(len * 8);
    obj->public_only = 0;
    return 1;
}

/* Copies OpenSSL-allocated DER into a malloc'd buffer the caller frees. */
static int hand_out(unsigned char *der, size_t len, unsigned char **out,
                    size_t *outlen)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);

    if (copy != NULL)
        memcpy(copy, der, len);
    OPENSSL_clear_free(der, len);
    if (copy == NULL)
        return 0;
    *out = copy;
    *outlen = len;
    return 1;
}

int em_key_export(const em_obj *obj, int pkcs8, unsigned char **out,
                  size_t *outlen)
{
    OSSL_ENCODER_CTX *ectx;
    unsigned char *der = NULL;
    size_t len = 0;
    int ok;

    if (obj->public_only && !em_is_certificate(obj))
        return 0;
    if (obj->pkey == NULL || em_is_certificate(obj)) {
        if (obj->value == NULL)
            return 0;
        *out = malloc(obj->value_len > 0 ? obj->value_len : 1);
        if (*out == NULL)
            return 0;
        memcpy(*out, obj->value, obj->value_len);
        *outlen = obj->value_len;
        return 1;
    }
    /*
     * "type-specific" is PKCS#1 for RSA and RFC 5915 (with the [0] curve OID
     * and [1] public key) for EC: SmartKey's default export formats.
     */
    /* Ed25519 has no other form than PKCS#8 (RFC 8410) */
    if (EVP_PKEY_is_a(obj->pkey, "ED25519"))
        pkcs8 = 1;
    ectx = OSSL_ENCODER_CTX_new_for_pkey(
        obj->pkey, OSSL_KEYMGMT_SELECT_KEYPAIR, "DER",
        pkcs8 ? "PrivateKeyInfo" : "type-specific", NULL);
    ok = ectx != NULL && OSSL_ENCODER_to_data(ectx, &der, &len);
    OSSL_ENCODER_CTX_free(ectx);
    ERR_clear_error();
    if (!ok)
        return 0;
    return hand_out(der, len, out, outlen);
}

int em_key_public_der(const em_obj *obj, unsigned char **out, size_t *outlen)
{
    unsigned char *der = NULL;
    int len;

    if (obj->pkey == NULL)
        return 0;
    len = i2d_PUBKEY(obj->pkey, &der);
    if (len <= 0) {
        ERR_clear_error();
        return 0;
    }
    return hand_out(der, (size_t)len, out, outlen);
}

/* ---- request helpers ---- */

/* A field of a request object; SmartKey treats null exactly like absent. */
static json_t *field(json_t *obj, const char *name)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, name) : NULL;

    return json_is_null(v) ? NULL : v;
}

/* Decoded Base64 field; `present` tells an absent field from an empty one. */
struct bytes {
    unsigned char *data;
    size_t len;
    int present;
};

/* Frees malloc'd key bytes or plaintext, wiping them first. */
static void clear_free(void *data, size_t len)
{
    if (data != NULL)
        OPENSSL_cleanse(data, len);
    free(data);
}

static void bytes_clear(struct bytes *b)
{
    clear_free(b->data, b->len);
    memset(b, 0, sizeof(*b));
}

static int get_b64(json_t *request, const char *name, int required,
                   struct bytes *out, em_response *resp)
{
    memset(out, 0, sizeof(*out));
    if (field(request, name) == NULL) {
        if (!required)
            return 1;
        em_error(resp, 400, "Missing required field '%s'", name);
        return 0;
    }
    out->data = em_json_b64(request, name, required, &out->len, resp);
    if (out->data == NULL)
        return 0;
    out->present = 1;
    return 1;
}

static int bad_body(em_response *resp)
{
    return em_error(resp, 400, "The request body must be a JSON object");
}

static const struct hash_alg *hash_by_name(const char *name)
{
    tables_init();
    for (size_t i = 0; i < sizeof(hash_algs) / sizeof(hash_algs[0]); i++)
        if (strcmp(hash_algs[i].smartkey_name, name) == 0)
            return hash_algs[i].md != NULL ? &hash_algs[i] : NULL;
    return NULL;
}

/* Parses a DigestAlgorithm value; `what` names the field for messages. */
static const struct hash_alg *parse_hash(json_t *value, const char *what,
                                         em_response *resp)
{
    const struct hash_alg *hash;
    const char *name;

    if (value == NULL) {
        em_error(resp, 400, "Missing required field '%s'", what);
        return NULL;
    }
    if (!json_is_string(value)) {
        em_error(resp, 400, "Field '%s' must be a digest algorithm name", what);
        return NULL;
    }
    name = json_string_value(value);
    hash = hash_by_name(name);
    if (hash != NULL)
        return hash;
    for (size_t i = 0;
         i < sizeof(unsupported_hash_names) / sizeof(unsupported_hash_names[0]);
         i++) {
        if (strcmp(unsupported_hash_names[i], name) == 0) {
            em_error(resp, 400,
                     "Field '%s': digest algorithm %s is not supported by "
                     "this server",
                     what, name);
            return NULL;
        }
    }
    em_error(resp, 400, "Field '%s': unknown digest algorithm '%s'", what,
             name);
    return NULL;
}

static size_t hash_size(const struct hash_alg *hash)
{
    return (size_t)EVP_MD_get_size(hash->md);
}

/* The single key of an externally tagged enum object, or NULL. */
static const char *enum_tag(json_t *value, json_t **payload)
{
    const char *tag;
    json_t *inner;

    if (!json_is_object(value) || json_object_size(value) != 1)
        return NULL;
    json_object_foreach(value, tag, inner)
    {
        *payload = inner;
        return tag;
    }
    return NULL;
}

/* ---- RSA paddings and the key's policies (docs/smartkey-api.md §3.5, §4.1)
 * ---- */

enum pad_kind { PAD_OAEP, PAD_PKCS1, PAD_PSS, PAD_RAW };

static const char *const pad_tags[] = {"OAEP", "PKCS1_V15", "PSS",
                                       "RAW_DECRYPT"};

struct rsa_padding {
    enum pad_kind kind;
    const struct hash_alg *mgf_hash; /* OAEP and PSS */
};

static void describe_padding(const struct rsa_padding *pad, char *buf,
                             size_t len)
{
    if (pad->mgf_hash != NULL)
        snprintf(buf, len, "%s with MGF1-%s", pad_tags[pad->kind],
                 pad->mgf_hash->smartkey_name);
    else
        snprintf(buf, len, "%s", pad_tags[pad->kind]);
}

/* Parses the RSA form of `mode`: {"OAEP":{"mgf":{"mgf1":{"hash":..}}}}... */
static int parse_rsa_mode(json_t *mode, int signature, struct rsa_padding *pad,
                          em_response *resp)
{
    json_t *payload = NULL, *mgf, *mgf1;
    const char *tag = enum_tag(mode, &payload);
    int kind = -1;

    if (tag == NULL)
        return em_error(resp, 400,
                        "Field 'mode' must be an RSA padding object such as "
                        "{\"%s\":{...}} for RSA keys",
                        signature ? "PSS" : "OAEP");
    for (int i = 0; i < 4; i++)
        if (strcmp(tag, pad_tags[i]) == 0)
            kind = i;
    if (kind < 0 || (signature && (kind == PAD_OAEP || kind == PAD_RAW)) ||
        (!signature && kind == PAD_PSS))
        return em_error(resp, 400, "Field 'mode': unknown %s padding '%s'",
                        signature ? "signature" : "encryption", tag);
    pad->kind = (enum pad_kind)kind;
    pad->mgf_hash = NULL;
    if (kind != PAD_OAEP && kind != PAD_PSS)
        return 1;
    mgf = field(payload, "mgf");
    mgf1 = field(mgf, "mgf1");
    if (mgf1 == NULL && kind == PAD_PSS)
        return 1; /* the caller uses hash_alg for MGF1 */
    if (mgf1 == NULL)
        return em_error(resp, 400,
                        "Field 'mode': %s requires "
                        "{\"mgf\":{\"mgf1\":{\"hash\":...}}}",
                        tag);
    pad->mgf_hash = parse_hash(field(mgf1, "hash"), "mode.mgf.mgf1.hash", resp);
    return pad->mgf_hash != NULL;
}

static json_t *rsa_policy(const em_obj *obj, const char *name)
{
    json_t *policy = field(obj->rsa, name);

    return json_is_array(policy) ? policy : NULL;
}

/* One policy entry's padding: absent or {} is a wildcard; inner fields that
   are absent match anything. */
static int padding_matches(json_t *policy_padding,
                           const struct rsa_padding *pad)
{
    json_t *payload = NULL, *hash;
    const char *tag;

    if (policy_padding == NULL || (json_is_object(policy_padding) &&
                                   json_object_size(policy_padding) == 0))
        return 1;
    tag = enum_tag(policy_padding, &payload);
    if (tag == NULL || strcmp(tag, pad_tags[pad->kind]) != 0)
        return 0;
    hash = field(field(field(payload, "mgf"), "mgf1"), "hash");
    if (hash == NULL || pad->mgf_hash == NULL)
        return 1;
    return json_is_string(hash) &&
           strcmp(json_string_value(hash), pad->mgf_hash->smartkey_name) == 0;
}

static int policy_allows(const em_obj *obj, int signature,
                         const struct rsa_padding *pad)
{
    json_t *policy =
        rsa_policy(obj, signature ? "signature_policy" : "encryption_policy");
    json_t *entry;
    size_t i;

    if (policy == NULL) /* defaults: OAEP only / anything */
        return signature || pad->kind == PAD_OAEP;
    json_array_foreach(policy, i, entry)
    {
        if (json_is_object(entry) &&
            padding_matches(field(entry, "padding"), pad))
            return 1;
    }
    return 0;
}

/*
 * `mode` omitted: the first padding the policy allows; a wildcard means
 * OAEP MGF1-SHA256 for encryption and PKCS#1 v1.5 for signatures (current
 * SmartKey documentation).
 */
static int default_padding(const em_obj *obj, int signature,
                           struct rsa_padding *pad)
{
    json_t *policy =
        rsa_policy(obj, signature ? "signature_policy" : "encryption_policy");
    json_t *entry, *payload = NULL, *hash;
    const char *tag;
    size_t i;

    pad->mgf_hash = NULL;
    if (policy == NULL) {
        pad->kind = signature ? PAD_PKCS1 : PAD_OAEP;
        pad->mgf_hash = signature ? NULL : hash_by_name("SHA256");
        return 1;
    }
    json_array_foreach(policy, i, entry)
    {
        json_t *padding = field(entry, "padding");

        if (!json_is_object(entry))
            continue;
        if (padding == NULL ||
            (json_is_object(padding) && json_object_size(padding) == 0)) {
            pad->kind = signature ? PAD_PKCS1 : PAD_OAEP;
            pad->mgf_hash = signature ? NULL : hash_by_name("SHA256");
            return 1;
        }
        tag = enum_tag(padding, &payload);
        if (tag == NULL)
            continue;
        if (strcmp(tag, "PKCS1_V15") == 0) {
            pad->kind = PAD_PKCS1;
            return 1;
        }
        if (strcmp(tag, signature ? "PSS" : "OAEP") == 0) {
            hash = field(field(field(payload, "mgf"), "mgf1"), "hash");
            pad->kind = signature ? PAD_PSS : PAD_OAEP;
            pad->mgf_hash = hash_by_name(
                json_is_string(hash) ? json_string_value(hash) : "SHA256");
            if (pad->mgf_hash != NULL)
                return 1;
        }
    }
    return 0;
}

/* The padding of an RSA encrypt/decrypt/wrap/unwrap request. */
static int rsa_crypt_padding(const em_obj *key, json_t *request, int allow_raw,
                             struct rsa_padding *pad, em_response *resp)
{
    json_t *mode = field(request, "mode");
    char desc[64];

    if (mode == NULL) {
        if (!default_padding(key, 0, pad))
            return em_error(resp, 400,
                            "The key's encryption policy allows no padding");
        return 1;
    }
    if (!parse_rsa_mode(mode, 0, pad, resp))
        return 0;
    describe_padding(pad, desc, sizeof(desc));
    if (pad->kind == PAD_RAW && !allow_raw)
        return em_error(resp, 400, "RAW_DECRYPT is only valid for decrypt");
    if (!policy_allows(key, 0, pad))
        return em_error(resp, 400,
                        "Padding %s is not allowed by the key's encryption "
                        "policy",
                        desc);
    return 1;
}

/* ---- RSA and AES primitives ---- */

static int fill_rsa_cipher_params(OSSL_PARAM *params,
                                  const struct rsa_padding *pad,
                                  const struct bytes *label)
{
    /* 3.2+ would otherwise answer a bad PKCS#1 v1.5 block with random bytes
       instead of an error; 3.0 ignores the unknown parameter. */
    static unsigned int no_implicit_rejection = 0;
    int n = 0;

    switch (pad->kind) {
    case PAD_OAEP:
        params[n++] = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_OAEP, 0);
        /* SmartKey's OAEP names one hash: it is also the label hash. */
        params[n++] = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
            (char *)pad->mgf_hash->openssl_name, 0);
        params[n++] = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
            (char *)pad->mgf_hash->openssl_name, 0);
        if (label != NULL && label->present && label->len > 0)
            params[n++] = OSSL_PARAM_construct_octet_string(
                OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, label->data, label->len);
        break;
    case PAD_PKCS1:
        params[n++] = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_PKCSV15, 0);
        params[n++] = OSSL_PARAM_construct_uint("implicit-rejection",
                                                &no_implicit_rejection);
        break;
    default:
        params[n++] = OSSL_PARAM_construct_utf8_string(
            OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_NONE, 0);
        break;
    }
    params[n] = OSSL_PARAM_construct_end();
    return n;
}

/* Largest input one RSA block takes with this padding. */
static size_t rsa_max_input(const EVP_PKEY *pkey, const struct rsa_padding *pad)
{
    size_t k = (size_t)EVP_PKEY_get_size(pkey);
    size_t overhead = pad->kind == PAD_OAEP ? 2 * hash_size(pad->mgf_hash) + 2
                      : pad->kind == PAD_PKCS1 ? 11
                                               : 0;

    return k > overhead ? k - overhead : 0;
}

/* `what` names the input for messages ("plain", "subject key"). */
static int rsa_encrypt(const em_obj *key, const struct rsa_padding *pad,
                       const struct bytes *label, const unsigned char *in,
                       size_t inlen, const char *what, struct bytes *out,
                       em_response *resp)
{
    OSSL_PARAM params[6];
    EVP_PKEY_CTX *ctx;
    size_t max = rsa_max_input(key->pkey, pad), outlen = 0;
    char desc[64];
    int ok;

    describe_padding(pad, desc, sizeof(desc));
    if (pad->kind == PAD_RAW)
        return em_error(resp, 400, "RAW_DECRYPT is only valid for decrypt");
    if (inlen > max)
        return em_error(resp, 400,
                        "The %s is %zu bytes but at most %zu bytes fit in "
                        "one %s block of a %u-bit RSA key",
                        what, inlen, max, desc, key->key_size);
    fill_rsa_cipher_params(params, pad, label);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, NULL, &outlen, in, inlen) > 0 &&
         (out->data = malloc(outlen)) != NULL &&
         EVP_PKEY_encrypt(ctx, out->data, &outlen, in, inlen) > 0;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    if (!ok) {
        free(out->data);
        out->data = NULL;
        return em_error(resp, 500, "RSA encryption failed");
    }
    out->len = outlen;
    out->present = 1;
    return 1;
}

static int rsa_decrypt(const em_obj *key, const struct rsa_padding *pad,
                       const struct bytes *label, const unsigned char *in,
                       size_t inlen, const char *what, struct bytes *out,
                       em_response *resp)
{
    OSSL_PARAM params[6];
    EVP_PKEY_CTX *ctx;
    size_t k = (size_t)EVP_PKEY_get_size(key->pkey), outlen = k;
    int ok;

    if (inlen != k)
        return em_error(resp, 400,
                        "Field '%s' must be %zu bytes (the modulus length), "
                        "got %zu",
                        what, k, inlen);
    fill_rsa_cipher_params(params, pad, label);
    out->data = malloc(k);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    ok = ctx != NULL && out->data != NULL &&
         EVP_PKEY_decrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_decrypt(ctx, out->data, &outlen, in, inlen) > 0;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    if (!ok) {
        clear_free(out->data, k);
        out->data = NULL;
        return em_error(resp, 400, "Decryption failed");
    }
    out->len = outlen;
    out->present = 1;
    return 1;
}

static int parse_aes_mode(json_t *mode, enum aes_mode *out, em_response *resp)
{
    const char *name;

    if (mode == NULL)
        return em_error(resp, 400, "Missing required field 'mode'");
    if (!json_is_string(mode))
        return em_error(resp, 400,
                        "Field 'mode' must be a cipher mode such as \"GCM\" "
                        "for AES keys");
    name = json_string_value(mode);
    for (int i = 0; i < AES_MODE_COUNT; i++) {
        if (strcmp(name, aes_mode_names[i]) == 0) {
            *out = (enum aes_mode)i;
            return 1;
        }
    }
    for (size_t i = 0;
         i < sizeof(unsupported_mode_names) / sizeof(unsupported_mode_names[0]);
         i++)
        if (strcmp(name, unsupported_mode_names[i]) == 0)
            return em_error(resp, 400,
                            "Field 'mode': %s is not supported by this server",
                            name);
    return em_error(resp, 400, "Field 'mode': unknown cipher mode '%s'", name);
}

/*
 * One AES operation. For GCM the tag is written (encrypt) or checked
 * (decrypt) through `tag`. Returns 1, or 0 when the cipher refused the input
 * (bad padding, bad tag, integrity check of KW/KWP).
 */
static int aes_run(enum aes_mode mode, int encrypt, const em_obj *key,
                   const struct bytes *iv, const struct bytes *ad,
                   unsigned char *tag, size_t tag_len, const unsigned char *in,
                   size_t inlen, struct bytes *out)
{
    const EVP_CIPHER *cipher = aes_cipher(mode, key->value_len);
    EVP_CIPHER_CTX *ctx;
    int len = 0, final_len = 0, ok = 0;

    if (cipher == NULL || inlen > INT32_MAX - 64)
        return 0;
    out->data = malloc(inlen + 64);
    ctx = EVP_CIPHER_CTX_new();
    if (out->data == NULL || ctx == NULL)
        goto done;
    /* Fetched wrap ciphers need no EVP_CIPHER_CTX_FLAG_WRAP_ALLOW in 3.0
       (checked on 3.0.19). */
    if (!EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, encrypt, NULL))
        goto done;
    if (mode == AES_GCM && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN,
                                               (int)iv->len, NULL) <= 0)
        goto done;
    if (!EVP_CipherInit_ex2(ctx, NULL, key->value,
                            iv != NULL && iv->present ? iv->data : NULL,
                            encrypt, NULL))
        goto done;
    if (mode == AES_GCM) {
        if (ad != NULL && ad->len > 0 &&
            !EVP_CipherUpdate(ctx, NULL, &len, ad->data, (int)ad->len))
            goto done;
        if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
                                            (int)tag_len, tag) <= 0)
            goto done;
    }
    len = 0;
    if (inlen > 0 && !EVP_CipherUpdate(ctx, out->data, &len, in, (int)inlen))
        goto done;
    if (!EVP_CipherFinal_ex(ctx, out->data + len, &final_len))
        goto done;
    if (mode == AES_GCM && encrypt &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)tag_len, tag) <= 0)
        goto done;
    out->len = (size_t)len + (size_t)final_len;
    out->present = 1;
    ok = 1;
done:
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    if (!ok) {
        clear_free(out->data, inlen + 64);
        memset(out, 0, sizeof(*out));
    }
    return ok;
}

static int valid_gcm_tag_bytes(size_t n)
{
    return n == 4 || n == 8 || (n >= 12 && n <= 16);
}

static int put_b64(json_t *body, const char *name, const unsigned char *data,
                   size_t len)
{
    char *b64 = em_b64_encode(data, len);

    if (b64 == NULL)
        return 0;
    json_object_set_new(body, name, json_string(b64));
    free(b64);
    return 1;
}

/* SmartKey picks a random IV when the request sends none. */
static int default_iv(struct bytes *iv, size_t len, em_response *resp)
{
    if (iv->present)
        return 1;
    iv->data = malloc(len);
    iv->len = len;
    iv->present = iv->data != NULL && RAND_bytes(iv->data, (int)len) == 1;
    if (!iv->present)
        em_error(resp, 500, "Random generator failure");
    return iv->present;
}

/* The fields every AES operation reads, in this order: mode, iv and ad. */
static int aes_common_fields(json_t *request, enum aes_mode *mode,
                             struct bytes *iv, struct bytes *ad,
                             em_response *resp)
{
    return parse_aes_mode(field(request, "mode"), mode, resp) &&
           get_b64(request, "iv", 0, iv, resp) &&
           get_b64(request, "ad", 0, ad, resp);
}

/* KW and KWP take no IV: refuses one that was sent. */
static int no_wrap_iv(enum aes_mode mode, const struct bytes *iv,
                      em_response *resp)
{
    if (iv->present)
        return em_error(resp, 400, "Field 'iv' is not used with %s",
                        aes_mode_names[mode]);
    return 1;
}

/* GCM's tag_len (bits) when sent, into `tag_bytes`; refuses a bad length. */
static int gcm_tag_bytes(json_t *request, size_t *tag_bytes, em_response *resp)
{
    json_t *tag_len = field(request, "tag_len");
    json_int_t bits;

    if (tag_len == NULL)
        return 1;
    bits = json_is_integer(tag_len) ? json_integer_value(tag_len) : -1;
    if (bits <= 0 || bits % 8 != 0 || !valid_gcm_tag_bytes((size_t)bits / 8))
        return em_error(resp, 400,
                        "Field 'tag_len' must be a GCM tag length in bits "
                        "(32, 64, 96 to 128)");
    *tag_bytes = (size_t)bits / 8;
    return 1;
}

/* The mode's checks of an encryption's iv, tag_len and input; default IV. */
static int aes_encrypt_checks(enum aes_mode mode, json_t *request,
                              struct bytes *iv, size_t inlen, const char *what,
                              size_t *tag_bytes, em_response *resp)
{
    switch (mode) {
    case AES_GCM:
        if (!gcm_tag_bytes(request, tag_bytes, resp))
            return 0;
        if (iv->present && (iv->len == 0 || iv->len > 128))
            return em_error(resp, 400,
                            "Field 'iv' must be 1 to 128 bytes for GCM");
        return default_iv(iv, 12, resp);
    case AES_CBC:
        if (iv->present && iv->len != 16)
            return em_error(resp, 400, "Field 'iv' must be 16 bytes for CBC");
        return default_iv(iv, 16, resp);
    case AES_KW:
    case AES_KWP:
        if (!no_wrap_iv(mode, iv, resp))
            return 0;
        if (mode == AES_KW && (inlen < 16 || inlen % 8 != 0))
            return em_error(resp, 400,
                            "KW (RFC 3394) needs a %s that is a multiple of 8 "
                            "bytes, at least 16 (got %zu); use KWP",
                            what, inlen);
        if (mode == AES_KWP && inlen == 0)
            return em_error(resp, 400, "KWP needs a non-empty %s", what);
        return 1;
    default:
        return 1;
    }
}

/*
 * AES encryption for encrypt and wrapkey: reads iv/ad/tag_len from the
 * request and adds "iv"/"tag" to `reply` as SmartKey does. `what` names the
 * input for messages.
 */
static int aes_encrypt(const em_obj *key, json_t *request,
                       const unsigned char *in, size_t inlen, const char *what,
                       json_t *reply, struct bytes *out, em_response *resp)
{
    struct bytes iv = {0}, ad = {0};
    unsigned char tag[16];
    size_t tag_bytes = 16;
    enum aes_mode mode;
    int ok = 0;

    if (!aes_common_fields(request, &mode, &iv, &ad, resp) ||
        !aes_encrypt_checks(mode, request, &iv, inlen, what, &tag_bytes, resp))
        goto done;
    if (!aes_run(mode, 1, key, &iv, &ad, tag, tag_bytes, in, inlen, out)) {
        em_error(resp, 500, "AES encryption failed");
        goto done;
    }
    if (mode == AES_GCM || mode == AES_CBC)
        put_b64(reply, "iv", iv.data, iv.len);
    if (mode == AES_GCM)
        put_b64(reply, "tag", tag, tag_bytes);
    ok = 1;
done:
    bytes_clear(&iv);
    bytes_clear(&ad);
    return ok;
}

/* The mode's checks of a decryption's iv, tag and input. */
static int aes_decrypt_checks(enum aes_mode mode, const struct bytes *iv,
                              const struct bytes *tag, size_t inlen,
                              const char *what, em_response *resp)
{
    switch (mode) {
    case AES_GCM:
        if (!iv->present || iv->len == 0 || iv->len > 128)
            return em_error(resp, 400,
                            "Field 'iv' (1 to 128 bytes) is required for "
                            "GCM decryption");
        if (!valid_gcm_tag_bytes(tag->len))
            return em_error(
                resp, 400,
                "Field 'tag' must be 4, 8 or 12 to 16 bytes (got %zu)",
                tag->len);
        return 1;
    case AES_CBC:
        if (!iv->present || iv->len != 16)
            return em_error(
                resp, 400,
                "Field 'iv' (16 bytes) is required for CBC decryption");
        if (inlen == 0 || inlen % 16 != 0)
            return em_error(resp, 400,
                            "Field '%s' must be a non-empty multiple of 16 "
                            "bytes for CBC (got %zu)",
                            what, inlen);
        return 1;
    case AES_KW:
    case AES_KWP:
        if (!no_wrap_iv(mode, iv, resp))
            return 0;
        if (inlen % 8 != 0 || inlen < (mode == AES_KW ? 24u : 16u))
            return em_error(resp, 400,
                            "Field '%s' must be a multiple of 8 bytes, at "
                            "least %u, for %s (got %zu)",
                            what, mode == AES_KW ? 24u : 16u,
                            aes_mode_names[mode], inlen);
        return 1;
    default:
        return 1;
    }
}

/* AES decryption for decrypt and unwrapkey; `what` names the input field. */
static int aes_decrypt(const em_obj *key, json_t *request,
                       const unsigned char *in, size_t inlen, const char *what,
                       struct bytes *out, em_response *resp)
{
    struct bytes iv = {0}, ad = {0}, tag = {0};
    enum aes_mode mode;
    int ok = 0;

    if (!aes_common_fields(request, &mode, &iv, &ad, resp) ||
        !get_b64(request, "tag", mode == AES_GCM, &tag, resp) ||
        !aes_decrypt_checks(mode, &iv, &tag, inlen, what, resp))
        goto done;
    if (!aes_run(mode, 0, key, &iv, &ad, tag.data, tag.len, in, inlen, out)) {
        em_error(resp, 400, "Decryption failed");
        goto done;
    }
    ok = 1;
done:
    bytes_clear(&iv);
    bytes_clear(&ad);
    bytes_clear(&tag);
    return ok;
}

/* ---- shared endpoint steps ---- */

/* `alg`, when sent, must name the key's type (SmartKey's Algorithm enum
   spells RSA, EC, AES, HMAC like the object types). */
static int check_alg(json_t *request, const em_obj *key, int required,
                     em_response *resp)
{
    json_t *alg = field(request, "alg");

    if (alg == NULL) {
        if (required)
            return em_error(resp, 400, "Missing required field 'alg'");
        return 1;
    }
    if (!json_is_string(alg))
        return em_error(resp, 400, "Field 'alg' must be an algorithm name");
    if (strcmp(json_string_value(alg), key->obj_type) != 0)
        return em_error(resp, 400,
                        "Field 'alg' (%s) does not match the key's type %s",
                        json_string_value(alg), key->obj_type);
    return 1;
}

static json_t *reply_for(const em_obj *key)
{
    json_t *reply = json_object();

    /* SmartKey echoes the kid for persisted keys only. */
    if (reply != NULL && key->kid[0] != '\0')
        json_object_set_new(reply, "kid", json_string(key->kid));
    return reply;
}

static em_obj *resolve_key(em_request *req, em_response *resp)
{
    if (!json_is_object(req->json)) {
        bad_body(resp);
        return NULL;
    }
    return em_resolve(req, json_object_get(req->json, "key"), "key", resp);
}

/* ---- /crypto/v1/encrypt, /decrypt ---- */

/* The RSA "mode" and the optional OAEP "label" of encrypt and decrypt. */
static int rsa_padding_and_label(const em_obj *key, json_t *request,
                                 int allow_raw, struct rsa_padding *pad,
                                 struct bytes *label, em_response *resp)
{
    if (!rsa_crypt_padding(key, request, allow_raw, pad, resp) ||
        !get_b64(request, "label", 0, label, resp))
        return 0;
    if (label->present && pad->kind != PAD_OAEP) {
        em_error(resp, 400, "Field 'label' is only valid with OAEP");
        return 0;
    }
    return 1;
}

/*
 * in encrypted (encrypt) or decrypted under key into out, as /encrypt and
 * /decrypt (crypt_api: an OAEP label, and raw RSA to decrypt) or /wrapkey
 * and /unwrapkey do it: RSA with the request's padding, AES with its mode
 * (encrypting puts the IV and tag into reply). Other key types are
 * refused: "<type> keys cannot <verb>". what names in in messages.
 */
static int crypt_under(const em_obj *key, json_t *request, int encrypt,
                       int crypt_api, const struct bytes *in, const char *what,
                       const char *verb, json_t *reply, struct bytes *out,
                       em_response *resp)
{
    struct rsa_padding pad;
    struct bytes label = {0};
    int ok;

    if (strcmp(key->obj_type, "AES") == 0)
        return encrypt ? aes_encrypt(key, request, in->data, in->len, what,
                                     reply, out, resp)
                       : aes_decrypt(key, request, in->data, in->len, what, out,
                                     resp);
    if (strcmp(key->obj_type, "RSA") != 0)
        return em_error(resp, 400, "%s keys cannot %s", key->obj_type, verb);
    ok = crypt_api
             ? rsa_padding_and_label(key, request, !encrypt, &pad, &label, resp)
             : rsa_crypt_padding(key, request, 0, &pad, resp);
    if (ok && encrypt)
        ok = rsa_encrypt(key, &pad, crypt_api ? &label : NULL, in->data,
                         in->len, what, out, resp);
    else if (ok)
        ok = rsa_decrypt(key, &pad, crypt_api ? &label : NULL, in->data,
                         in->len, what, out, resp);
    bytes_clear(&label);
    return ok;
}

/* POST /crypto/v1/encrypt (encrypt) or /crypto/v1/decrypt. */
static int encrypt_or_decrypt(em_request *req, em_response *resp, int encrypt)
{
    const char *in_name = encrypt ? "plain" : "cipher";
    const char *out_name = encrypt ? "cipher" : "plain";
    json_t *request = req->json, *reply = NULL;
    struct bytes in = {0}, out = {0};
    em_obj *key;
    int ok = 0;

    key = resolve_key(req, resp);
    if (key == NULL)
        return 0;
    if (!em_require_op(key, encrypt ? EM_OP_ENCRYPT : EM_OP_DECRYPT,
                       !encrypt && strcmp(key->obj_type, "RSA") == 0, resp) ||
        !check_alg(request, key, encrypt, resp) ||
        !get_b64(request, in_name, 1, &in, resp))
        goto done;
    reply = reply_for(key);
    if (!crypt_under(key, request, encrypt, 1, &in, in_name,
                     encrypt ? "encrypt" : "decrypt", reply, &out, resp))
        goto done;
    put_b64(reply, out_name, out.data, out.len);
    ok = 1;
done:
    bytes_clear(&in);
    bytes_clear(&out);
    em_obj_release(key);
    if (!ok) {
        json_decref(reply);
        return 0;
    }
    return em_json(resp, 200, reply);
}

int em_h_encrypt(em_request *req, em_response *resp)
{
    return encrypt_or_decrypt(req, resp, 1);
}

int em_h_decrypt(em_request *req, em_response *resp)
{
    return encrypt_or_decrypt(req, resp, 0);
}

/* ---- /crypto/v1/sign, /verify ---- */

/*
 * The digest to sign or verify: `hash` as sent (length checked against
 * hash_alg) or `data` hashed here; exactly one of them.
 */
static int message_digest(json_t *request, const struct hash_alg *hash,
                          unsigned char *digest, size_t *digest_len,
                          em_response *resp)
{
    struct bytes sent = {0};
    int has_hash = field(request, "hash") != NULL;
    int has_data = field(request, "data") != NULL;
    unsigned int len = 0;
    int ok = 0;

    if (has_hash == has_data)
        return em_error(resp, 400,
                        "Exactly one of the fields 'hash' and 'data' is "
                        "required");
    if (!get_b64(request, has_hash ? "hash" : "data", 1, &sent, resp))
        return 0;
    if (has_hash) {
        if (sent.len != hash_size(hash)) {
            em_error(resp, 400,
                     "Field 'hash' must be %zu bytes for %s (got %zu)",
                     hash_size(hash), hash->smartkey_name, sent.len);
            goto done;
        }
        memcpy(digest, sent.data, sent.len);
        *digest_len = sent.len;
    } else {
        if (!EVP_Digest(sent.data, sent.len, digest, &len, hash->md, NULL)) {
            em_error(resp, 500, "Digest computation failed");
            goto done;
        }
        *digest_len = len;
    }
    ok = 1;
done:
    bytes_clear(&sent);
    return ok;
}

/* Signature parameters for the key; fills `pad` for RSA. */
static int signature_setup(const em_obj *key, json_t *request,
                           const struct hash_alg *hash, struct rsa_padding *pad,
                           em_response *resp)
{
    json_t *mode = field(request, "mode");
    char desc[64];

    if (strcmp(key->obj_type, "EC") == 0) {
        if (mode != NULL)
            return em_error(resp, 400,
                            "Field 'mode' must not be sent for EC keys");
        return 1;
    }
    if (strcmp(key->obj_type, "RSA") != 0)
        return em_error(resp, 400, "%s keys cannot sign or verify",
                        key->obj_type);
    if (mode == NULL) {
        if (!default_padding(key, 1, pad))
            return em_error(resp, 400,
                            "The key's signature policy allows no padding");
        return 1;
    }
    if (!parse_rsa_mode(mode, 1, pad, resp))
        return 0;
    if (pad->kind == PAD_PSS && pad->mgf_hash == NULL)
        pad->mgf_hash = hash;
    if (!policy_allows(key, 1, pad)) {
        describe_padding(pad, desc, sizeof(desc));
        return em_error(resp, 400,
                        "Padding %s is not allowed by the key's signature "
                        "policy",
                        desc);
    }
    return 1;
}

static EVP_PKEY_CTX *signature_ctx(const em_obj *key, int sign,
                                   const struct hash_alg *hash,
                                   const struct rsa_padding *pad)
{
    OSSL_PARAM params[5];
    EVP_PKEY_CTX *ctx;
    int n = 0, ok;

    params[n++] = OSSL_PARAM_construct_utf8_string(
        OSSL_SIGNATURE_PARAM_DIGEST, (char *)hash->openssl_name, 0);
    if (strcmp(key->obj_type, "RSA") == 0) {
        if (pad->kind == PAD_PSS) {
            params[n++] = OSSL_PARAM_construct_utf8_string(
                OSSL_SIGNATURE_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_PSS, 0);
            params[n++] = OSSL_PARAM_construct_utf8_string(
                OSSL_SIGNATURE_PARAM_MGF1_DIGEST,
                (char *)pad->mgf_hash->openssl_name, 0);
            /* SmartKey's PSS has no salt field: sign with sLen = hLen, and
               accept any salt length on verify. */
            params[n++] = OSSL_PARAM_construct_utf8_string(
                OSSL_SIGNATURE_PARAM_PSS_SALTLEN,
                sign ? OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST
                     : OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO,
                0);
        } else {
            params[n++] = OSSL_PARAM_construct_utf8_string(
                OSSL_SIGNATURE_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_PKCSV15,
                0);
        }
    }
    params[n] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (ctx == NULL)
        return NULL;
    ok = sign ? EVP_PKEY_sign_init_ex(ctx, params)
              : EVP_PKEY_verify_init_ex(ctx, params);
    if (ok <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/*
 * The message of an Ed25519 sign or verify request: pure EdDSA signs
 * `data`; `hash` and `mode` are refused, and hash_alg must be SHA512 (the
 * local server's reading of SmartKey's model, docs/smartkey-api.md §8;
 * --lenient takes any).
 */
static int ed25519_message(json_t *request, const struct hash_alg *hash,
                           struct bytes *data, em_response *resp)
{
    if (field(request, "mode") != NULL)
        return em_error(resp, 400, "Field 'mode' must not be sent for EC keys");
    if (field(request, "hash") != NULL)
        return em_error(resp, 400,
                        "Ed25519 keys sign the message: send 'data', not "
                        "'hash'");
    if (!em_lenient && strcmp(hash->smartkey_name, "SHA512") != 0)
        return em_error(resp, 400,
                        "Ed25519 signatures use hash_alg SHA512 (got %s)",
                        hash->smartkey_name);
    return get_b64(request, "data", 1, data, resp);
}

/* One-shot pure Ed25519 with the key's private half. */
static int ed25519_sign(const em_obj *key, const struct bytes *data,
                        unsigned char **signature, size_t *sig_len)
{
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    int ok =
        md_ctx != NULL &&
        EVP_DigestSignInit_ex(md_ctx, NULL, NULL, NULL, NULL, key->pkey,
                              NULL) == 1 &&
        EVP_DigestSign(md_ctx, NULL, sig_len, data->data, data->len) == 1 &&
        (*signature = malloc(*sig_len)) != NULL &&
        EVP_DigestSign(md_ctx, *signature, sig_len, data->data, data->len) == 1;

    EVP_MD_CTX_free(md_ctx);
    return ok;
}

static int ed25519_verify(const em_obj *key, const struct bytes *data,
                          const struct bytes *signature)
{
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    int ok = md_ctx != NULL &&
             EVP_DigestVerifyInit_ex(md_ctx, NULL, NULL, NULL, NULL, key->pkey,
                                     NULL) == 1 &&
             EVP_DigestVerify(md_ctx, signature->data, signature->len,
                              data->data, data->len) == 1;

    EVP_MD_CTX_free(md_ctx);
    return ok;
}

/* `context` is for ML-DSA keys only (Fortanix's OpenAPI of /crypto/v1/sign);
   this server has none, so it refuses the field for every key. */
static int no_context(json_t *request, em_response *resp)
{
    if (field(request, "context") == NULL)
        return 1;
    return em_error(resp, 400,
                    "Field 'context' is accepted by ML-DSA keys only");
}

/* Pure Ed25519: checks the request and signs its 'data'. */
static int sign_ed25519(const em_obj *key, json_t *request,
                        unsigned char **signature, size_t *sig_len,
                        em_response *resp)
{
    const struct hash_alg *hash;
    struct bytes data = {0};
    int ok = 0;

    if (em_require_op(key, EM_OP_SIGN, 1, resp) &&
        (hash = parse_hash(field(request, "hash_alg"), "hash_alg", resp)) !=
            NULL &&
        ed25519_message(request, hash, &data, resp)) {
        ok = ed25519_sign(key, &data, signature, sig_len);
        if (!ok)
            em_error(resp, 500, "Signing failed");
    }
    bytes_clear(&data);
    return ok;
}

/* RSA or ECDSA: checks the request and signs its digest. */
static int sign_digest(const em_obj *key, json_t *request,
                       unsigned char **signature, size_t *sig_len,
                       em_response *resp)
{
    json_t *deterministic = field(request, "deterministic_signature");
    const struct hash_alg *hash;
    struct rsa_padding pad = {PAD_PKCS1, NULL};
    unsigned char digest[EVP_MAX_MD_SIZE];
    size_t digest_len = 0;
    EVP_PKEY_CTX *ctx = NULL;
    int ok = 0;

    if (!em_require_op(key, EM_OP_SIGN, 1, resp) ||
        (hash = parse_hash(field(request, "hash_alg"), "hash_alg", resp)) ==
            NULL ||
        !signature_setup(key, request, hash, &pad, resp) ||
        !message_digest(request, hash, digest, &digest_len, resp))
        goto done;
    if (json_is_true(deterministic) && strcmp(key->obj_type, "EC") == 0) {
        em_error(resp, 400,
                 "Deterministic ECDSA is not supported by this server");
        goto done;
    }
    ctx = signature_ctx(key, 1, hash, &pad);
    if (ctx == NULL ||
        EVP_PKEY_sign(ctx, NULL, sig_len, digest, digest_len) <= 0 ||
        (*signature = malloc(*sig_len)) == NULL ||
        EVP_PKEY_sign(ctx, *signature, sig_len, digest, digest_len) <= 0) {
        em_error(resp, 500, "Signing failed");
        goto done;
    }
    ok = 1;
done:
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

int em_h_sign(em_request *req, em_response *resp)
{
    json_t *request = req->json, *reply;
    unsigned char *signature = NULL;
    size_t sig_len = 0;
    em_obj *key;
    int ok;

    key = resolve_key(req, resp);
    if (key == NULL)
        return 0;
    ok = no_context(request, resp) &&
         (em_key_is_ed25519(key)
              ? sign_ed25519(key, request, &signature, &sig_len, resp)
              : sign_digest(key, request, &signature, &sig_len, resp));
    ERR_clear_error();
    if (ok) {
        reply = reply_for(key);
        put_b64(reply, "signature", signature, sig_len);
        ok = em_json(resp, 200, reply);
    }
    free(signature);
    em_obj_release(key);
    return ok;
}

int em_h_verify(em_request *req, em_response *resp)
{
    json_t *request = req->json, *reply;
    const struct hash_alg *hash;
    struct rsa_padding pad = {PAD_PKCS1, NULL};
    unsigned char digest[EVP_MAX_MD_SIZE];
    size_t digest_len = 0;
    struct bytes signature = {0};
    EVP_PKEY_CTX *ctx = NULL;
    em_obj *key;
    int ok = 0, valid = 0;

    key = resolve_key(req, resp);
    if (key == NULL)
        return 0;
    if (!no_context(request, resp))
        goto done;
    if (em_key_is_ed25519(key)) {
        struct bytes data = {0};

        if (em_require_op(key, EM_OP_VERIFY, 0, resp) &&
            (hash = parse_hash(field(request, "hash_alg"), "hash_alg", resp)) !=
                NULL &&
            ed25519_message(request, hash, &data, resp) &&
            get_b64(request, "signature", 1, &signature, resp)) {
            /* a malformed signature is one that does not verify */
            valid = ed25519_verify(key, &data, &signature);
            ok = 1;
        }
        bytes_clear(&data);
        goto done;
    }
    if (!em_require_op(key, EM_OP_VERIFY, 0, resp) ||
        (hash = parse_hash(field(request, "hash_alg"), "hash_alg", resp)) ==
            NULL ||
        !signature_setup(key, request, hash, &pad, resp) ||
        !message_digest(request, hash, digest, &digest_len, resp) ||
        !get_b64(request, "signature", 1, &signature, resp))
        goto done;
    ctx = signature_ctx(key, 0, hash, &pad);
    if (ctx == NULL) {
        em_error(resp, 500, "Verification setup failed");
        goto done;
    }
    /* A malformed signature is just a signature that does not verify. */
    valid = EVP_PKEY_verify(ctx, signature.data, signature.len, digest,
                            digest_len) == 1;
    ok = 1;
done:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    bytes_clear(&signature);
    if (ok) {
        reply = reply_for(key);
        json_object_set_new(reply, "result", json_boolean(valid));
        ok = em_json(resp, 200, reply);
    }
    em_obj_release(key);
    return ok;
}

/* ---- /crypto/v1/digest ---- */

int em_h_digest(em_request *req, em_response *resp)
{
    const struct hash_alg *hash;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    struct bytes data = {0};
    json_t *reply;
    int ok;

    if (!json_is_object(req->json))
        return bad_body(resp);
    hash = parse_hash(field(req->json, "alg"), "alg", resp);
    if (hash == NULL || !get_b64(req->json, "data", 1, &data, resp))
        return 0;
    ok = EVP_Digest(data.data, data.len, digest, &len, hash->md, NULL);
    bytes_clear(&data);
    if (!ok)
        return em_error(resp, 500, "Digest computation failed");
    reply = json_object();
    put_b64(reply, "digest", digest, len);
    return em_json(resp, 200, reply);
}

/* ---- /crypto/v1/wrapkey, /unwrapkey ---- */

/* The subject of a wrapkey: `subject`, or the legacy `kid` (never both). */
static em_obj *resolve_subject(em_request *req, em_response *resp)
{
    json_t *subject = field(req->json, "subject");
    json_t *legacy_kid = field(req->json, "kid");
    json_t *descriptor;
    em_obj *obj;

    if (subject != NULL && legacy_kid != NULL) {
        em_error(resp, 400, "Send either 'subject' or 'kid', not both");
        return NULL;
    }
    if (subject != NULL)
        return em_resolve(req, subject, "subject", resp);
    if (legacy_kid == NULL) {
        em_error(resp, 400, "Missing required field 'subject'");
        return NULL;
    }
    if (!json_is_string(legacy_kid)) {
        em_error(resp, 400, "Field 'kid' must be a key id");
        return NULL;
    }
    descriptor = json_pack("{s:O}", "kid", legacy_kid);
    obj = em_resolve(req, descriptor, "kid", resp);
    json_decref(descriptor);
    return obj;
}

/* key_format "Default" (PKCS#1 / RFC 5915) or "Pkcs8"; returns -1 if bad. */
static int parse_key_format(json_t *request, em_response *resp)
{
    json_t *format = field(request, "key_format");
    const char *name;

    if (format == NULL)
        return 0;
    name = json_is_string(format) ? json_string_value(format) : "";
    if (strcmp(name, "Default") == 0)
        return 0;
    if (strcmp(name, "Pkcs8") == 0)
        return 1;
    em_error(resp, 400, "Field 'key_format' must be \"Default\" or \"Pkcs8\"");
    return -1;
}

int em_h_wrapkey(em_request *req, em_response *resp)
{
    json_t *request = req->json, *reply = NULL;
    struct bytes material = {0}, wrapped = {0};
    em_obj *key, *subject = NULL;
    int pkcs8, ok = 0;

    key = resolve_key(req, resp);
    if (key == NULL)
        return 0;
    if (!em_require_op(key, EM_OP_WRAPKEY, 0, resp) ||
        !check_alg(request, key, 0, resp) ||
        (pkcs8 = parse_key_format(request, resp)) < 0 ||
        (subject = resolve_subject(req, resp)) == NULL ||
        !em_require_op(subject, EM_OP_EXPORT,
                       is_asymmetric_type(subject->obj_type), resp))
        goto done;
    /* only asymmetric keys have a PKCS#8 form (docs/smartkey-api.md §4.4) */
    if (pkcs8 && !is_asymmetric_type(subject->obj_type) && !em_lenient) {
        em_error(resp, 400,
                 "Invalid request: key_format Pkcs8 applies to asymmetric "
                 "subjects; %s objects have no PKCS#8 form (leave "
                 "key_format out)",
                 subject->obj_type);
        goto done;
    }
    if (!em_key_export(subject, pkcs8, &material.data, &material.len)) {
        em_error(resp, 400, "The subject's key material cannot be serialised");
        goto done;
    }
    material.present = 1;
    reply = json_object();
    if (strcmp(key->obj_type, "RSA") == 0 &&
        !is_symmetric_type(subject->obj_type)) {
        em_error(resp, 400,
                 "An RSA key can wrap only AES, HMAC and SECRET objects, "
                 "not %s; wrap it with an AES key",
                 subject->obj_type);
        goto done;
    }
    if (!crypt_under(key, request, 1, 0, &material, "subject key", "wrap keys",
                     reply, &wrapped, resp))
        goto done;
    put_b64(reply, "wrapped_key", wrapped.data, wrapped.len);
    ok = 1;
done:
    bytes_clear(&material);
    bytes_clear(&wrapped);
    em_obj_release(subject);
    em_obj_release(key);
    if (!ok) {
        json_decref(reply);
        return 0;
    }
    return em_json(resp, 200, reply);
}

/* Fills the new object's attributes from the unwrapkey request. */
static int describe_new_object(json_t *request, em_obj *obj, em_response *resp)
{
    static const char *const extra_fields[] = {"description", "custom_metadata",
                                               "group_id"};
    json_t *value;
    const char *name = em_json_str(request, "name");

    if (name != NULL && (obj->name = strdup(name)) == NULL)
        return em_error(resp, 500, "Out of memory");
    value = field(request, "key_ops");
    if (value == NULL)
        obj->key_ops = em_default_key_ops(obj->obj_type);
    else if (!json_is_array(value) ||
             !em_key_ops_from_json(value, &obj->key_ops))
        return em_error(resp, 400,
                        "Field 'key_ops' must be an array of key operations");
    value = field(request, "enabled");
    if (value != NULL) {
        if (!json_is_boolean(value))
            return em_error(resp, 400, "Field 'enabled' must be a boolean");
        obj->enabled = json_is_true(value);
    }
    for (size_t i = 0; i < sizeof(extra_fields) / sizeof(extra_fields[0]);
         i++) {
        value = field(request, extra_fields[i]);
        if (value == NULL)
            continue;
        if (obj->extra == NULL)
            obj->extra = json_object();
        json_object_set(obj->extra, extra_fields[i], value);
    }
    if (strcmp(obj->obj_type, "RSA") == 0) {
        value = field(request, "rsa");
        obj->rsa = value != NULL && json_is_object(value)
                       ? json_deep_copy(value)
                       : json_object();
        if (field(obj->rsa, "encryption_policy") == NULL)
            json_object_set_new(obj->rsa, "encryption_policy",
                                json_pack("[{s:{s:{}}}]", "padding", "OAEP"));
        if (field(obj->rsa, "signature_policy") == NULL)
            json_object_set_new(obj->rsa, "signature_policy",
                                json_pack("[{}]"));
    }
    return 1;
}

/* The unwrapped object's obj_type and transient flag, checked. */
static int unwrap_target(json_t *request, const char **obj_type, int *transient,
                         em_response *resp)
{
    json_t *value;

    *obj_type = em_json_str(request, "obj_type");
    if (*obj_type == NULL)
        return em_error(resp, 400, "Missing required field 'obj_type'");
    if (!is_symmetric_type(*obj_type) && !is_asymmetric_type(*obj_type))
        return em_error(resp, 400, "Field 'obj_type': %s is not supported here",
                        *obj_type);
    value = field(request, "transient");
    if (value != NULL && !json_is_boolean(value))
        return em_error(resp, 400, "Field 'transient' must be a boolean");
    *transient = json_is_true(value);
    return 1;
}

/* A new object of `obj_type` from the unwrapped material; NULL on refusal. */
static em_obj *unwrapped_object(json_t *request, const char *obj_type,
                                const struct bytes *material, em_response *resp)
{
    em_obj *obj = em_obj_new();
    json_t *value;
    char err[256];

    if (obj == NULL) {
        em_error(resp, 500, "Out of memory");
        return NULL;
    }
    snprintf(obj->obj_type, sizeof(obj->obj_type), "%s", obj_type);
    obj->external = 1;
    value = field(request, "elliptic_curve");
    if (value != NULL && strcmp(obj_type, "EC") == 0)
        snprintf(obj->curve, sizeof(obj->curve), "%s",
                 json_is_string(value) ? json_string_value(value) : "?");
    if (!em_key_import(obj, material->data, material->len, err, sizeof(err))) {
        em_error(resp, 400, "The unwrapped key is not a valid %s key: %s",
                 obj_type, err);
        em_obj_release(obj);
        return NULL;
    }
    if (!describe_new_object(request, obj, resp)) {
        em_obj_release(obj);
        return NULL;
    }
    return obj;
}

int em_h_unwrapkey(em_request *req, em_response *resp)
{
    json_t *request = req->json, *reply;
    struct bytes wrapped = {0}, material = {0};
    const char *obj_type;
    em_obj *key, *obj = NULL;
    int transient = 0, ok = 0;

    key = resolve_key(req, resp);
    if (key == NULL)
        return 0;
    if (!em_require_op(key, EM_OP_UNWRAPKEY, strcmp(key->obj_type, "RSA") == 0,
                       resp) ||
        !unwrap_target(request, &obj_type, &transient, resp) ||
        !check_alg(request, key, 0, resp) ||
        !get_b64(request, "wrapped_key", 1, &wrapped, resp))
        goto done;
    if (strcmp(key->obj_type, "RSA") == 0 && !is_symmetric_type(obj_type)) {
        em_error(resp, 400,
                 "An RSA key can unwrap only AES, HMAC and SECRET objects, "
                 "not %s",
                 obj_type);
        goto done;
    }
    if (!crypt_under(key, request, 0, 0, &wrapped, "wrapped_key", "unwrap keys",
                     NULL, &material, resp))
        goto done;
    obj = unwrapped_object(request, obj_type, &material, resp);
    if (obj == NULL)
        goto done;
    /* em_store_add consumes one reference even on failure. */
    em_obj_ref(obj);
    if (!em_store_add(req, obj, transient, resp))
        goto done;
    ok = 1;
done:
    bytes_clear(&wrapped);
    bytes_clear(&material);
    em_obj_release(key);
    if (ok) {
        reply = em_obj_to_json(obj, 0);
        em_obj_release(obj);
        return em_json(resp, 200, reply);
    }
    em_obj_release(obj);
    return 0;
}
