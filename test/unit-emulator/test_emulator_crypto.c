/*
 * Unit tests of the emulator's key material and crypto handlers, called
 * without HTTP. Known answers come from RFC 3394 and RFC 5649; everything
 * else is checked against OpenSSL's own implementations.
 */
#include "cunit_run.h"
#include "emulator.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static em_request make_request(json_t *json)
{
    em_request req;

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.path = "/crypto/v1/test";
    req.json = json;
    snprintf(req.who.app_id, sizeof(req.who.app_id), "%s",
             "00000000-0000-4000-8000-000000000001");
    snprintf(req.who.session_id, sizeof(req.who.session_id), "%s",
             "unit-test-session");
    return req;
}

/* Calls a handler with a request built by json_pack; the caller frees the
   response with clear_response. */
static em_response call(em_handler handler, json_t *json)
{
    em_response resp = {0};
    em_request req = make_request(json);

    handler(&req, &resp);
    json_decref(json);
    return resp;
}

static void clear_response(em_response *resp)
{
    json_decref(resp->json);
    free(resp->text);
    memset(resp, 0, sizeof(*resp));
}

static unsigned char *hex_bytes(const char *hex, size_t *len)
{
    long n = 0;
    unsigned char *out = OPENSSL_hexstr2buf(hex, &n);

    *len = (size_t)n;
    return out;
}

static char *b64(const unsigned char *data, size_t len)
{
    return em_b64_encode(data, len);
}

/* Decodes a Base64 field of a response body. */
static unsigned char *body_bytes(const em_response *resp, const char *name,
                                 size_t *len)
{
    const char *text = em_json_str(resp->json, name);

    *len = 0;
    return text != NULL ? em_b64_decode(text, len) : NULL;
}

/* Publishes an object: generated when value is NULL, else imported. */
static em_obj *add_key(const char *obj_type, unsigned bits, const char *curve,
                       unsigned ops, const char *rsa_json,
                       const unsigned char *value, size_t len)
{
    em_response resp = {0};
    em_request req = make_request(NULL);
    em_obj *obj = em_obj_new();
    char err[256] = "";
    int ok;

    snprintf(obj->obj_type, sizeof(obj->obj_type), "%s", obj_type);
    snprintf(obj->curve, sizeof(obj->curve), "%s", curve ? curve : "");
    obj->key_size = bits;
    obj->key_ops = ops;
    obj->rsa = rsa_json ? json_loads(rsa_json, 0, NULL) : NULL;
    ok = value ? em_key_import(obj, value, len, err, sizeof(err))
               : em_key_generate(obj, 0, err, sizeof(err));
    CU_ASSERT_FATAL(ok);
    em_obj_ref(obj);
    CU_ASSERT_FATAL(em_store_add(&req, obj, 0, &resp));
    return obj; /* the caller releases its reference */
}

static json_t *kid_of(const em_obj *obj)
{
    return json_pack("{s:s}", "kid", obj->kid);
}

/* ---- key material ---- */

static void test_rsa_key_survives_pkcs1_pkcs8_and_spki_round_trips(void)
{
    em_obj *rsa = em_obj_new(), *copy = em_obj_new(), *pub = em_obj_new();
    unsigned char *der = NULL, *p8 = NULL, *spki = NULL, *none = NULL;
    size_t der_len = 0, p8_len = 0, spki_len = 0, none_len = 0;
    char err[256];

    strcpy(rsa->obj_type, "RSA");
    rsa->key_size = 2048;
    CU_ASSERT_FATAL(em_key_generate(rsa, 0, err, sizeof(err)));
    CU_ASSERT(EVP_PKEY_get_bits(rsa->pkey) == 2048);
    CU_ASSERT_FATAL(em_key_export(rsa, 0, &der, &der_len));
    CU_ASSERT_FATAL(em_key_export(rsa, 1, &p8, &p8_len));
    CU_ASSERT_FATAL(em_key_public_der(rsa, &spki, &spki_len));
    /* PKCS#1 starts version, modulus; PKCS#8 version, AlgorithmIdentifier */
    CU_ASSERT(der[4] == 0x02 && der[7] == 0x02);
    CU_ASSERT(p8[4] == 0x02 && p8[7] == 0x30);

    strcpy(copy->obj_type, "RSA");
    CU_ASSERT_FATAL(em_key_import(copy, p8, p8_len, err, sizeof(err)));
    CU_ASSERT(EVP_PKEY_eq(copy->pkey, rsa->pkey) == 1);
    CU_ASSERT(copy->key_size == 2048 && !copy->public_only);
    EVP_PKEY_free(copy->pkey);
    copy->pkey = NULL;
    CU_ASSERT_FATAL(em_key_import(copy, der, der_len, err, sizeof(err)));
    CU_ASSERT(EVP_PKEY_eq(copy->pkey, rsa->pkey) == 1);

    strcpy(pub->obj_type, "RSA");
    CU_ASSERT_FATAL(em_key_import(pub, spki, spki_len, err, sizeof(err)));
    CU_ASSERT(pub->public_only);
    CU_ASSERT(!em_key_export(pub, 0, &none, &none_len));
    /* trailing bytes after the DER are refused, not ignored */
    CU_ASSERT(!em_key_import(copy, der, der_len - 1, err, sizeof(err)));

    free(der);
    free(p8);
    free(spki);
    em_obj_release(rsa);
    em_obj_release(copy);
    em_obj_release(pub);
}

static void test_ec_import_refuses_a_curve_other_than_requested(void)
{
    em_obj *ec = em_obj_new(), *copy = em_obj_new();
    unsigned char *der = NULL;
    size_t len = 0;
    char err[256];

    strcpy(ec->obj_type, "EC");
    strcpy(ec->curve, "NistP256");
    CU_ASSERT_FATAL(em_key_generate(ec, 0, err, sizeof(err)));
    CU_ASSERT_FATAL(em_key_export(ec, 0, &der, &len));
    /* RFC 5915: SEQUENCE { INTEGER 1, OCTET STRING (32) ... } */
    CU_ASSERT(der[2] == 0x02 && der[4] == 0x01 && der[5] == 0x04 &&
              der[6] == 32);
    strcpy(copy->obj_type, "EC");
    strcpy(copy->curve, "NistP384");
    CU_ASSERT(!em_key_import(copy, der, len, err, sizeof(err)));
    CU_ASSERT(strstr(err, "NistP256") != NULL);
    strcpy(copy->curve, "");
    CU_ASSERT_FATAL(em_key_import(copy, der, len, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(copy->curve, "NistP256");
    CU_ASSERT(EVP_PKEY_eq(copy->pkey, ec->pkey) == 1);
    free(der);
    em_obj_release(ec);
    em_obj_release(copy);
}

static void test_generate_refuses_secret_and_odd_aes_sizes(void)
{
    em_obj *obj = em_obj_new();
    char err[256];

    strcpy(obj->obj_type, "SECRET");
    obj->key_size = 256;
    CU_ASSERT(!em_key_generate(obj, 0, err, sizeof(err)));
    strcpy(obj->obj_type, "AES");
    obj->key_size = 100;
    CU_ASSERT(!em_key_generate(obj, 0, err, sizeof(err)));
    obj->key_size = 192;
    CU_ASSERT(em_key_generate(obj, 0, err, sizeof(err)));
    CU_ASSERT(obj->value_len == 24);
    em_obj_release(obj);
}

/* ---- encrypt / decrypt ---- */

static void test_rsa_oaep_label_round_trip_and_default_policy(void)
{
    em_obj *rsa = add_key("RSA", 2048, NULL, EM_OP_ENCRYPT | EM_OP_DECRYPT,
                          NULL, NULL, 0);
    em_response resp;
    const char *oaep = "{\"OAEP\":{\"mgf\":{\"mgf1\":{\"hash\":\"SHA256\"}}}}";
    json_t *mode = json_loads(oaep, 0, NULL);
    char *cipher;

    resp = call(em_h_encrypt,
                json_pack("{s:o,s:s,s:s,s:O,s:s}", "key", kid_of(rsa), "alg",
                          "RSA", "plain", "aGVsbG8=", "mode", mode, "label",
                          "bGFiZWw="));
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    CU_ASSERT_STRING_EQUAL(em_json_str(resp.json, "kid"), rsa->kid);
    cipher = strdup(em_json_str(resp.json, "cipher"));
    clear_response(&resp);

    resp = call(em_h_decrypt,
                json_pack("{s:o,s:s,s:O,s:s}", "key", kid_of(rsa), "cipher",
                          cipher, "mode", mode, "label", "bGFiZWw="));
    CU_ASSERT_EQUAL(resp.status, 200);
    CU_ASSERT_STRING_EQUAL(em_json_str(resp.json, "plain"), "aGVsbG8=");
    clear_response(&resp);

    resp = call(em_h_decrypt, json_pack("{s:o,s:s,s:O}", "key", kid_of(rsa),
                                        "cipher", cipher, "mode", mode));
    CU_ASSERT_EQUAL(resp.status, 400); /* label missing */
    clear_response(&resp);

    /* the default encryption policy allows OAEP only */
    resp = call(em_h_encrypt,
                json_pack("{s:o,s:s,s:s,s:{s:{}}}", "key", kid_of(rsa), "alg",
                          "RSA", "plain", "aGVsbG8=", "mode", "PKCS1_V15"));
    CU_ASSERT_EQUAL(resp.status, 400);
    clear_response(&resp);
    free(cipher);
    json_decref(mode);
    em_obj_release(rsa);
}

static void test_pkcs1_policy_key_defaults_to_pkcs1(void)
{
    em_obj *rsa = add_key(
        "RSA", 2048, NULL, EM_OP_ENCRYPT | EM_OP_DECRYPT,
        "{\"encryption_policy\":[{\"padding\":{\"PKCS1_V15\":{}}}]}", NULL, 0);
    em_response resp;
    char *cipher;

    resp = call(em_h_encrypt, json_pack("{s:o,s:s,s:s}", "key", kid_of(rsa),
                                        "alg", "RSA", "plain", "aGVsbG8="));
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    cipher = strdup(em_json_str(resp.json, "cipher"));
    clear_response(&resp);
    resp =
        call(em_h_decrypt, json_pack("{s:o,s:s,s:{s:{}}}", "key", kid_of(rsa),
                                     "cipher", cipher, "mode", "PKCS1_V15"));
    CU_ASSERT_EQUAL(resp.status, 200);
    CU_ASSERT_STRING_EQUAL(em_json_str(resp.json, "plain"), "aGVsbG8=");
    clear_response(&resp);
    resp = call(em_h_encrypt, json_pack("{s:o,s:s,s:s,s:{s:{s:{s:{s:s}}}}}",
                                        "key", kid_of(rsa), "alg", "RSA",
                                        "plain", "aGVsbG8=", "mode", "OAEP",
                                        "mgf", "mgf1", "hash", "SHA1"));
    CU_ASSERT_EQUAL(resp.status, 400);
    clear_response(&resp);
    free(cipher);
    em_obj_release(rsa);
}

/* em_h_decrypt of AES-GCM cipher (base64) under aes with iv (base64), the
   associated data "ad" and tag. */
static em_response decrypt_gcm(const em_obj *aes, const char *cipher,
                               const char *iv, const unsigned char *tag,
                               size_t tag_len)
{
    char *tag_b64 = b64(tag, tag_len);
    em_response resp = call(
        em_h_decrypt, json_pack("{s:o,s:s,s:s,s:s,s:s,s:s}", "key", kid_of(aes),
                                "mode", "GCM", "cipher", cipher, "iv", iv, "ad",
                                "YWQ=", "tag", tag_b64));

    free(tag_b64);
    return resp;
}

static void test_aes_gcm_round_trip_rejects_a_changed_tag(void)
{
    em_obj *aes =
        add_key("AES", 256, NULL, EM_OP_ENCRYPT | EM_OP_DECRYPT, NULL, NULL, 0);
    em_response resp;
    unsigned char *tag, *iv;
    size_t tag_len, iv_len;
    char *cipher, *iv_b64;

    resp = call(em_h_encrypt,
                json_pack("{s:o,s:s,s:s,s:s,s:s,s:i}", "key", kid_of(aes),
                          "alg", "AES", "mode", "GCM", "plain",
                          "aGVsbG8=", "ad", "YWQ=", "tag_len", 96));
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    tag = body_bytes(&resp, "tag", &tag_len);
    iv = body_bytes(&resp, "iv", &iv_len);
    CU_ASSERT(tag_len == 12 && iv_len == 12);
    cipher = strdup(em_json_str(resp.json, "cipher"));
    iv_b64 = strdup(em_json_str(resp.json, "iv"));
    clear_response(&resp);

    resp = decrypt_gcm(aes, cipher, iv_b64, tag, tag_len);
    CU_ASSERT_EQUAL(resp.status, 200);
    CU_ASSERT_STRING_EQUAL(em_json_str(resp.json, "plain"), "aGVsbG8=");
    clear_response(&resp);

    tag[0] ^= 1;
    resp = decrypt_gcm(aes, cipher, iv_b64, tag, tag_len);
    CU_ASSERT_EQUAL(resp.status, 400);
    CU_ASSERT_STRING_EQUAL(resp.text, "Decryption failed");
    clear_response(&resp);
    free(tag);
    free(iv);
    free(cipher);
    free(iv_b64);
    em_obj_release(aes);
}

/* ---- wrap / unwrap ---- */

/* Wraps `subject_hex` (a SECRET) under the AES key `kek_hex` sent inline. */
static em_response wrap_inline(const char *kek_hex, const char *subject_hex,
                               const char *mode, em_obj **subject)
{
    unsigned char *kek, *value;
    size_t kek_len, value_len;
    char *kek_b64;
    em_response resp;

    kek = hex_bytes(kek_hex, &kek_len);
    value = hex_bytes(subject_hex, &value_len);
    *subject = add_key("SECRET", 0, NULL, EM_OP_EXPORT, NULL, value, value_len);
    kek_b64 = b64(kek, kek_len);
    resp = call(em_h_wrapkey,
                json_pack("{s:{s:{s:s,s:s}},s:o,s:s,s:s}", "key", "inline",
                          "obj_type", "AES", "value", kek_b64, "subject",
                          kid_of(*subject), "alg", "AES", "mode", mode));
    OPENSSL_free(kek);
    OPENSSL_free(value);
    free(kek_b64);
    return resp;
}

static void check_wrapped(const em_response *resp, const char *expected_hex)
{
    unsigned char *wrapped, *expected;
    size_t wrapped_len, expected_len;

    CU_ASSERT_EQUAL_FATAL(resp->status, 200);
    wrapped = body_bytes(resp, "wrapped_key", &wrapped_len);
    expected = hex_bytes(expected_hex, &expected_len);
    CU_ASSERT(wrapped_len == expected_len &&
              memcmp(wrapped, expected, expected_len) == 0);
    CU_ASSERT(json_object_get(resp->json, "kid") == NULL);
    free(wrapped);
    OPENSSL_free(expected);
}

static void test_kw_matches_rfc3394_vector(void)
{
    em_obj *subject;
    em_response resp =
        wrap_inline("000102030405060708090A0B0C0D0E0F",
                    "00112233445566778899AABBCCDDEEFF", "KW", &subject);

    check_wrapped(&resp, "1FA68B0A8112B447AEF34BD8FB5A7B82"
                         "9D3E862371D2CFE5");
    clear_response(&resp);
    em_obj_release(subject);
}

static void test_kwp_matches_rfc5649_vector_and_unwraps(void)
{
    static const char kek[] =
        "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";
    em_obj *subject, *kek_obj;
    unsigned char *kek_bytes;
    size_t kek_len;
    em_response resp = wrap_inline(
        kek, "c37b7e6492584340bed12207808941155068f738", "KWP", &subject);
    json_t *wrapped;

    check_wrapped(&resp, "138bdeaa9b8fa7fc61f97742e72248ee"
                         "5ae6ae5360d1ae6a5f54f373fa543b6a");
    wrapped = json_incref(json_object_get(resp.json, "wrapped_key"));
    clear_response(&resp);

    kek_bytes = hex_bytes(kek, &kek_len);
    kek_obj =
        add_key("AES", 0, NULL, EM_OP_UNWRAPKEY, NULL, kek_bytes, kek_len);
    resp = call(em_h_unwrapkey,
                json_pack("{s:o,s:s,s:s,s:o,s:s,s:s,s:[s]}", "key",
                          kid_of(kek_obj), "alg", "AES", "mode", "KWP",
                          "wrapped_key", wrapped, "obj_type", "SECRET", "name",
                          "unwrapped-secret", "key_ops", "EXPORT"));
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    CU_ASSERT_STRING_EQUAL(em_json_str(resp.json, "obj_type"), "SECRET");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp.json, "key_size")),
                    160);
    CU_ASSERT(em_json_str(resp.json, "kid") != NULL);
    clear_response(&resp);
    OPENSSL_free(kek_bytes);
    em_obj_release(kek_obj);
    em_obj_release(subject);
}

static void test_rsa_oaep_wrap_recovers_the_aes_key(void)
{
    em_obj *rsa = add_key("RSA", 2048, NULL, EM_OP_WRAPKEY, NULL, NULL, 0);
    em_obj *aes = add_key("AES", 256, NULL, EM_OP_EXPORT, NULL, NULL, 0);
    em_obj *ec = add_key("EC", 0, "NistP256", EM_OP_EXPORT, NULL, NULL, 0);
    unsigned char *spki = NULL, *wrapped, recovered[512];
    size_t spki_len = 0, wrapped_len, recovered_len = sizeof(recovered);
    em_obj *pub;
    EVP_PKEY_CTX *ctx;
    em_response resp;

    /* a public-only copy of the wrapping key is enough to wrap */
    CU_ASSERT_FATAL(em_key_public_der(rsa, &spki, &spki_len));
    pub = add_key("RSA", 0, NULL, EM_OP_WRAPKEY, NULL, spki, spki_len);
    CU_ASSERT(pub->public_only);
    resp = call(em_h_wrapkey,
                json_pack("{s:o,s:o,s:s,s:{s:{s:{s:{s:s}}}}}", "key",
                          kid_of(pub), "subject", kid_of(aes), "alg", "RSA",
                          "mode", "OAEP", "mgf", "mgf1", "hash", "SHA256"));
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    wrapped = body_bytes(&resp, "wrapped_key", &wrapped_len);
    CU_ASSERT_EQUAL(wrapped_len, 256);
    clear_response(&resp);

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, rsa->pkey, NULL);
    CU_ASSERT_FATAL(ctx != NULL && EVP_PKEY_decrypt_init(ctx) > 0);
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING);
    EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL);
    EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL);
    CU_ASSERT(EVP_PKEY_decrypt(ctx, recovered, &recovered_len, wrapped,
                               wrapped_len) > 0);
    CU_ASSERT(recovered_len == 32 && memcmp(recovered, aes->value, 32) == 0);
    EVP_PKEY_CTX_free(ctx);

    /* an RSA key wraps only symmetric subjects */
    resp = call(em_h_wrapkey,
                json_pack("{s:o,s:o,s:s,s:{s:{s:{s:{s:s}}}}}", "key",
                          kid_of(pub), "subject", kid_of(ec), "alg", "RSA",
                          "mode", "OAEP", "mgf", "mgf1", "hash", "SHA256"));
    CU_ASSERT_EQUAL(resp.status, 400);
    clear_response(&resp);
    free(wrapped);
    free(spki);
    em_obj_release(pub);
    em_obj_release(ec);
    em_obj_release(aes);
    em_obj_release(rsa);
}

/* CKM_RSA_AES_KEY_WRAP's AES step: a transient AES key wraps an RSA key
   serialised as PKCS#8 with KWP, as `openssl enc -id-aes256-wrap-pad`. */
static void test_transient_key_kwp_wraps_rsa_key_as_pkcs8(void)
{
    em_obj *rsa = add_key("RSA", 2048, NULL, EM_OP_EXPORT, NULL, NULL, 0);
    em_obj *kek = em_obj_new();
    em_request req = make_request(NULL);
    em_response resp = {0};
    unsigned char *p8 = NULL, *wrapped, out[4096];
    size_t p8_len = 0, wrapped_len;
    int out_len = 0, final_len = 0;
    EVP_CIPHER_CTX *ctx;
    char err[256];

    strcpy(kek->obj_type, "AES");
    kek->key_size = 256;
    kek->key_ops = EM_OP_WRAPKEY;
    CU_ASSERT_FATAL(em_key_generate(kek, 0, err, sizeof(err)));
    em_obj_ref(kek);
    CU_ASSERT_FATAL(em_store_add(&req, kek, 1, &resp));
    CU_ASSERT_FATAL(kek->transient_handle != NULL);
    resp = call(em_h_wrapkey,
                json_pack("{s:{s:s},s:o,s:s,s:s,s:s}", "key", "transient_key",
                          kek->transient_handle, "subject", kid_of(rsa), "alg",
                          "AES", "mode", "KWP", "key_format", "Pkcs8"));
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    wrapped = body_bytes(&resp, "wrapped_key", &wrapped_len);
    clear_response(&resp);

    CU_ASSERT_FATAL(em_key_export(rsa, 1, &p8, &p8_len));
    ctx = EVP_CIPHER_CTX_new();
    CU_ASSERT(EVP_DecryptInit_ex2(ctx, EVP_aes_256_wrap_pad(), kek->value, NULL,
                                  NULL));
    CU_ASSERT(EVP_DecryptUpdate(ctx, out, &out_len, wrapped, (int)wrapped_len));
    CU_ASSERT(EVP_DecryptFinal_ex(ctx, out + out_len, &final_len));
    CU_ASSERT((size_t)(out_len + final_len) == p8_len &&
              memcmp(out, p8, p8_len) == 0);
    EVP_CIPHER_CTX_free(ctx);
    free(wrapped);
    free(p8);
    em_obj_release(kek);
    em_obj_release(rsa);
}

/* ---- sign / verify ---- */

static void test_pss_and_ecdsa_signatures_verify_with_openssl(void)
{
    em_obj *rsa =
        add_key("RSA", 2048, NULL, EM_OP_SIGN | EM_OP_VERIFY, NULL, NULL, 0);
    em_obj *ec =
        add_key("EC", 0, "NistP384", EM_OP_SIGN | EM_OP_VERIFY, NULL, NULL, 0);
    unsigned char digest[32], *sig;
    size_t sig_len;
    unsigned int digest_len;
    EVP_PKEY_CTX *ctx;
    em_response resp;
    char *sig_b64;

    EVP_Digest("hello", 5, digest, &digest_len, EVP_sha256(), NULL);
    resp = call(em_h_sign, json_pack("{s:o,s:s,s:s,s:{s:{s:{s:{s:s}}}}}", "key",
                                     kid_of(rsa), "hash_alg", "SHA256", "data",
                                     "aGVsbG8=", "mode", "PSS", "mgf", "mgf1",
                                     "hash", "SHA256"));
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    sig = body_bytes(&resp, "signature", &sig_len);
    clear_response(&resp);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, rsa->pkey, NULL);
    EVP_PKEY_verify_init(ctx);
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32);
    CU_ASSERT(EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1);
    EVP_PKEY_CTX_free(ctx);
    free(sig);

    resp = call(em_h_sign, json_pack("{s:o,s:s,s:s}", "key", kid_of(ec),
                                     "hash_alg", "SHA256", "data", "aGVsbG8="));
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    sig = body_bytes(&resp, "signature", &sig_len);
    sig_b64 = strdup(em_json_str(resp.json, "signature"));
    clear_response(&resp);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ec->pkey, NULL);
    EVP_PKEY_verify_init(ctx);
    CU_ASSERT(EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1);
    EVP_PKEY_CTX_free(ctx);
    free(sig);

    resp = call(em_h_verify,
                json_pack("{s:o,s:s,s:s,s:s}", "key", kid_of(ec), "hash_alg",
                          "SHA256", "data", "aGVsbG8=", "signature", sig_b64));
    CU_ASSERT_EQUAL(resp.status, 200);
    CU_ASSERT(json_is_true(json_object_get(resp.json, "result")));
    clear_response(&resp);
    resp = call(em_h_verify,
                json_pack("{s:o,s:s,s:s,s:s}", "key", kid_of(ec), "hash_alg",
                          "SHA256", "data", "aGVsbA==", "signature", sig_b64));
    CU_ASSERT(json_is_false(json_object_get(resp.json, "result")));
    clear_response(&resp);
    resp = call(em_h_verify,
                json_pack("{s:o,s:s,s:s,s:s}", "key", kid_of(ec), "hash_alg",
                          "SHA256", "data", "aGVsbG8=", "signature", "AAAA"));
    CU_ASSERT_EQUAL(resp.status, 200);
    CU_ASSERT(json_is_false(json_object_get(resp.json, "result")));
    clear_response(&resp);
    /* mode is an RSA-only field */
    resp = call(em_h_sign, json_pack("{s:o,s:s,s:s,s:{s:{}}}", "key",
                                     kid_of(ec), "hash_alg", "SHA256", "data",
                                     "aGVsbG8=", "mode", "PKCS1_V15"));
    CU_ASSERT_EQUAL(resp.status, 400);
    clear_response(&resp);
    /* hash length must match hash_alg */
    resp = call(em_h_sign, json_pack("{s:o,s:s,s:s}", "key", kid_of(ec),
                                     "hash_alg", "SHA384", "hash", "aGVsbG8="));
    CU_ASSERT_EQUAL(resp.status, 400);
    clear_response(&resp);
    free(sig_b64);
    em_obj_release(ec);
    em_obj_release(rsa);
}

/* ---- batch ---- */

static void test_batch_sign_answers_each_item_in_order(void)
{
    em_obj *ec =
        add_key("EC", 0, "NistP256", EM_OP_SIGN | EM_OP_VERIFY, NULL, NULL, 0);
    em_response resp;
    json_t *items = json_array(), *big = json_array();

    json_array_append_new(items,
                          json_pack("{s:o,s:s,s:s}", "key", kid_of(ec),
                                    "hash_alg", "SHA256", "data", "aGk="));
    json_array_append_new(items,
                          json_pack("{s:o,s:s,s:s}", "key", kid_of(ec),
                                    "hash_alg", "SHA256", "hash", "aGk="));
    resp = call(em_h_batch_sign, items);
    CU_ASSERT_EQUAL_FATAL(resp.status, 200);
    CU_ASSERT_EQUAL_FATAL(json_array_size(resp.json), 2);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_array_get(resp.json, 0), "status")),
                    200);
    CU_ASSERT(em_json_str(json_object_get(json_array_get(resp.json, 0), "body"),
                          "signature") != NULL);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_array_get(resp.json, 1), "status")),
                    400);
    CU_ASSERT(em_json_str(json_array_get(resp.json, 1), "error") != NULL);
    clear_response(&resp);

    for (int i = 0; i < 1001; i++)
        json_array_append_new(big, json_object());
    resp = call(em_h_batch_sign, big);
    CU_ASSERT_EQUAL(resp.status, 400);
    clear_response(&resp);
    em_obj_release(ec);
}

/*
 * Item i of a verify batch, by i % 5: good EC signature (true), good RSA
 * signature (true), EC signature of another message (false), unknown kid
 * (404), key without VERIFY (403). Verify answers are deterministic, so a
 * whole answer can be compared.
 */
static json_t *verify_batch(size_t n, const em_obj *ec, const em_obj *rsa,
                            const em_obj *sign_only, const char *ec_sig,
                            const char *rsa_sig)
{
    json_t *items = json_array();

    for (size_t i = 0; i < n; i++) {
        json_t *item;

        switch (i % 5) {
        case 0:
        case 2:
            item = json_pack("{s:o,s:s,s:s,s:s}", "key", kid_of(ec), "hash_alg",
                             "SHA256", "data",
                             i % 5 == 0 ? "aGVsbG8=" : "aGVsbA==", "signature",
                             ec_sig);
            break;
        case 1:
            item =
                json_pack("{s:o,s:s,s:s,s:s,s:{s:{}}}", "key", kid_of(rsa),
                          "hash_alg", "SHA256", "data", "aGVsbG8=", "signature",
                          rsa_sig, "mode", "PKCS1_V15");
            break;
        case 3:
            item = json_pack("{s:{s:s},s:s,s:s,s:s}", "key", "kid",
                             "00000000-0000-4000-8000-000000000000", "hash_alg",
                             "SHA256", "data", "aGVsbG8=", "signature", ec_sig);
            break;
        default:
            item = json_pack("{s:o,s:s,s:s,s:s}", "key", kid_of(sign_only),
                             "hash_alg", "SHA256", "data",
                             "aGVsbG8=", "signature", ec_sig);
            break;
        }
        json_array_append_new(items, item);
    }
    return items;
}

/* Counts the items of a verify_batch answer that are not as expected. */
static size_t verify_batch_mismatches(const em_response *resp, size_t n)
{
    static const int statuses[5] = {200, 200, 200, 404, 403};
    size_t wrong = 0;

    if (resp->status != 200 || json_array_size(resp->json) != n)
        return n + 1;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(resp->json, i);
        json_t *result =
            json_object_get(json_object_get(item, "body"), "result");

        if (json_integer_value(json_object_get(item, "status")) !=
                statuses[i % 5] ||
            (i % 5 < 2 && !json_is_true(result)) ||
            (i % 5 == 2 && !json_is_false(result)))
            wrong++;
    }
    return wrong;
}

struct batch_caller {
    json_t *items;
    em_response resp;
};

static void *call_batch_verify(void *arg)
{
    struct batch_caller *caller = arg;

    caller->resp = call(em_h_batch_verify, caller->items);
    return NULL;
}

static void test_batch_spread_over_workers_keeps_item_order(void)
{
    enum { ITEMS = 200, CALLERS = 3 };
    em_obj *ec =
        add_key("EC", 0, "NistP256", EM_OP_SIGN | EM_OP_VERIFY, NULL, NULL, 0);
    em_obj *rsa =
        add_key("RSA", 2048, NULL, EM_OP_SIGN | EM_OP_VERIFY, NULL, NULL, 0);
    em_obj *sign_only = add_key("EC", 0, "NistP256", EM_OP_SIGN, NULL, NULL, 0);
    struct batch_caller callers[CALLERS];
    pthread_t threads[CALLERS];
    em_response serial, spread;
    char *ec_sig, *rsa_sig;

    serial =
        call(em_h_sign, json_pack("{s:o,s:s,s:s}", "key", kid_of(ec),
                                  "hash_alg", "SHA256", "data", "aGVsbG8="));
    CU_ASSERT_EQUAL_FATAL(serial.status, 200);
    ec_sig = strdup(em_json_str(serial.json, "signature"));
    clear_response(&serial);
    serial =
        call(em_h_sign,
             json_pack("{s:o,s:s,s:s,s:{s:{}}}", "key", kid_of(rsa), "hash_alg",
                       "SHA256", "data", "aGVsbG8=", "mode", "PKCS1_V15"));
    CU_ASSERT_EQUAL_FATAL(serial.status, 200);
    rsa_sig = strdup(em_json_str(serial.json, "signature"));
    clear_response(&serial);

    /* without a pool: one after another, as with --batch-workers 1 */
    serial = call(em_h_batch_verify,
                  verify_batch(ITEMS, ec, rsa, sign_only, ec_sig, rsa_sig));
    CU_ASSERT_EQUAL(verify_batch_mismatches(&serial, ITEMS), 0);

    CU_ASSERT_FATAL(em_batch_start(4));
    spread = call(em_h_batch_verify,
                  verify_batch(ITEMS, ec, rsa, sign_only, ec_sig, rsa_sig));
    CU_ASSERT_EQUAL(verify_batch_mismatches(&spread, ITEMS), 0);
    CU_ASSERT(json_equal(serial.json, spread.json));
    clear_response(&spread);

    /* concurrent batches share the helpers and still get their own items */
    for (int c = 0; c < CALLERS; c++) {
        callers[c].items =
            verify_batch(ITEMS, ec, rsa, sign_only, ec_sig, rsa_sig);
        CU_ASSERT_FATAL(pthread_create(&threads[c], NULL, call_batch_verify,
                                       &callers[c]) == 0);
    }
    for (int c = 0; c < CALLERS; c++) {
        pthread_join(threads[c], NULL);
        CU_ASSERT_EQUAL(verify_batch_mismatches(&callers[c].resp, ITEMS), 0);
        CU_ASSERT(json_equal(serial.json, callers[c].resp.json));
        clear_response(&callers[c].resp);
    }

    /* a one-item batch is answered like any other */
    spread = call(em_h_batch_verify,
                  verify_batch(1, ec, rsa, sign_only, ec_sig, rsa_sig));
    CU_ASSERT_EQUAL(verify_batch_mismatches(&spread, 1), 0);
    clear_response(&spread);
    em_batch_stop();

    clear_response(&serial);
    free(ec_sig);
    free(rsa_sig);
    em_obj_release(sign_only);
    em_obj_release(rsa);
    em_obj_release(ec);
}

int main(void)
{
    static const cunit_test tests[] = {
        CUNIT_TEST(test_rsa_key_survives_pkcs1_pkcs8_and_spki_round_trips),
        CUNIT_TEST(test_ec_import_refuses_a_curve_other_than_requested),
        CUNIT_TEST(test_generate_refuses_secret_and_odd_aes_sizes),
        CUNIT_TEST(test_rsa_oaep_label_round_trip_and_default_policy),
        CUNIT_TEST(test_pkcs1_policy_key_defaults_to_pkcs1),
        CUNIT_TEST(test_aes_gcm_round_trip_rejects_a_changed_tag),
        CUNIT_TEST(test_kw_matches_rfc3394_vector),
        CUNIT_TEST(test_kwp_matches_rfc5649_vector_and_unwraps),
        CUNIT_TEST(test_rsa_oaep_wrap_recovers_the_aes_key),
        CUNIT_TEST(test_transient_key_kwp_wraps_rsa_key_as_pkcs8),
        CUNIT_TEST(test_pss_and_ecdsa_signatures_verify_with_openssl),
        CUNIT_TEST(test_batch_sign_answers_each_item_in_order),
        CUNIT_TEST(test_batch_spread_over_workers_keeps_item_order),
    };
    char err[256];
    int status;

    if (!em_store_init("00000000-0000-4000-8000-000000000001", NULL, err,
                       sizeof(err))) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    status =
        cunit_run("emulator_crypto", NULL, NULL, tests, CUNIT_COUNT(tests));
    em_store_shutdown();
    return status;
}
