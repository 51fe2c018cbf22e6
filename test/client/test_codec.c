/*
 * The client's own JSON writer and Base64 decoder against the libraries
 * they replace (no network).
 *
 * json-writer: sk_json_compact writes the bytes json_dumps(JSON_COMPACT)
 * writes, for every request shape the typed calls build (api.c, batch.c),
 * for strings with every escape, NUL, non-ASCII UTF-8 and long runs, and
 * for thousands of random trees; the hot calls' bodies written as text
 * (sign, decrypt, encrypt, wrapkey) are, byte for byte, what json_dumps
 * makes of the jansson trees the client built for them before, for every
 * padding, hash, key reference (kid, name with escapes and non-ASCII,
 * transient handle) and option; an invalid UTF-8 name is refused.
 *
 * base64: sk_base64_decode decodes what OpenSSL's EVP_EncodeBlock wrote,
 * and on any input accepts exactly what the strict reading accepts
 * (padded standard Base64: a multiple of 4 characters of the standard
 * alphabet, at most two '=' and only at the end), decoding it to the bytes
 * EVP_DecodeBlock gives; it refuses whitespace, the URL alphabet, misplaced
 * padding and bytes above 127.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "internal.h"

/* ---- the JSON writer ---- */

static int same_as_jansson(json_t *value)
{
    char *expected = json_dumps(value, JSON_COMPACT), *got;
    size_t len = 0;
    int same;

    got = sk_json_compact(value, &len);
    same = expected != NULL && got != NULL && strlen(expected) == len &&
           strcmp(expected, got) == 0;
    if (!same)
        fprintf(stderr, "jansson: %s\nwriter:  %s\n",
                expected != NULL ? expected : "(null)",
                got != NULL ? got : "(null)");
    free(expected);
    OPENSSL_free(got);
    json_decref(value);
    return same;
}

static json_t *oaep(void)
{
    return json_pack("{s:{s:{s:{s:s}}}}", "OAEP", "mgf", "mgf1", "hash",
                     "SHA256");
}

static json_t *kid(void)
{
    return json_pack("{s:s}", "kid", "0b0c4e8e-57a8-4ac4-9f65-0c1b1f0e3a1d");
}

static const char cipher[] =
    "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83v"
    "EjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQ+/+/+/==";

static void test_request_shapes(void)
{
    /* the bodies of api.c and batch.c, as they build them */
    CU_ASSERT(same_as_jansson(json_pack("{s:s}", "name", "bench-rsa")));
    CU_ASSERT(same_as_jansson(kid()));
    CU_ASSERT(same_as_jansson(json_pack("{s:s}", "transient_key", cipher)));
    CU_ASSERT(same_as_jansson(json_pack("{s:o,s:s,s:s}", "key", kid(),
                                        "hash_alg", "SHA256", "hash",
                                        "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1"
                                        "sFbDwCgg=")));
    CU_ASSERT(same_as_jansson(
        json_pack("{s:o,s:s,s:s,s:o}", "key", kid(), "hash_alg", "SHA384",
                  "hash", "AAAA", "mode", json_pack("{s:{}}", "PKCS1_V15"))));
    CU_ASSERT(same_as_jansson(json_pack(
        "{s:o,s:s,s:s,s:o}", "key", kid(), "hash_alg", "SHA256", "hash", "AAAA",
        "mode",
        json_pack("{s:o}", "PSS",
                  json_pack("{s:{s:{s:s}}}", "mgf", "mgf1", "hash", "SHA1")))));
    CU_ASSERT(
        same_as_jansson(json_pack("{s:o,s:s,s:s,s:o}", "key", kid(), "alg",
                                  "RSA", "cipher", cipher, "mode", oaep())));
    CU_ASSERT(same_as_jansson(json_pack("{s:o,s:s,s:s,s:o,s:s}", "key", kid(),
                                        "alg", "RSA", "plain", "c2VjcmV0",
                                        "mode", oaep(), "label", "bGFiZWw=")));
    CU_ASSERT(same_as_jansson(json_pack("{s:o,s:s,s:s,s:o}", "key", kid(),
                                        "alg", "RSA", "cipher", cipher, "mode",
                                        json_pack("{s:{}}", "RAW_DECRYPT"))));
    CU_ASSERT(
        same_as_jansson(json_pack("{s:o,s:o,s:s,s:o}", "key", kid(), "subject",
                                  json_pack("{s:s}", "name", "bench-aes"),
                                  "alg", "RSA", "mode", oaep())));
    CU_ASSERT(same_as_jansson(json_pack(
        "{s:o,s:o,s:s,s:o,s:s,s:s,s:s,s:i}", "key", kid(), "subject", kid(),
        "alg", "AES", "mode", json_string("GCM"), "key_format", "Pkcs8", "iv",
        "AAAAAAAAAAAAAAAA", "ad", "", "tag_len", 128)));
    CU_ASSERT(same_as_jansson(json_pack(
        "{s:s,s:o,s:b,s:[s,s]}", "obj_type", "RSA", "value",
        json_string(cipher), "transient", 1, "key_ops", "WRAPKEY", "ENCRYPT")));
    CU_ASSERT(same_as_jansson(json_pack(
        "{s:s,s:s,s:i,s:I,s:[s,s,s],s:s}", "name", "a key", "obj_type", "RSA",
        "key_size", 2048, "pub_exponent", (json_int_t)65537, "key_ops", "SIGN",
        "VERIFY", "APPMANAGEABLE", "elliptic_curve", "NistP256")));
    CU_ASSERT(same_as_jansson(json_pack("{s:s,s:i,s:b,s:[s,s]}", "obj_type",
                                        "AES", "key_size", 256, "transient", 1,
                                        "key_ops", "WRAPKEY", "EXPORT")));
    CU_ASSERT(same_as_jansson(json_pack(
        "{s:o,s:s}", "key", json_pack("{s:s}", "name", "k"), "alg", "SHA256")));
    CU_ASSERT(same_as_jansson(
        json_pack("[{s:s,s:o},{s:s,s:o}]", "kid", "a", "request",
                  json_pack("{s:o,s:s,s:s}", "key", kid(), "hash_alg", "SHA256",
                            "hash", "AAAA"),
                  "kid", "b", "request",
                  json_pack("{s:o,s:s,s:s,s:o}", "key", kid(), "alg", "RSA",
                            "cipher", cipher, "mode", oaep()))));
    /* the edges */
    CU_ASSERT(same_as_jansson(json_object()));
    CU_ASSERT(same_as_jansson(json_array()));
    CU_ASSERT(same_as_jansson(json_pack(
        "[i,I,I,b,b,n,{},[]]", 0, (json_int_t)-9223372036854775807 - 1,
        (json_int_t)9223372036854775807, 1, 0)));
    CU_ASSERT(same_as_jansson(json_pack("{s:f}", "real", 1.5)));
}

static void test_escapes(void)
{
    char all[128];

    /* every ASCII byte but NUL, as a value and as a key */
    for (int i = 1; i < 128; i++)
        all[i - 1] = (char)i;
    all[127] = '\0';
    CU_ASSERT(same_as_jansson(json_pack("{s:s}", "v", all)));
    CU_ASSERT(same_as_jansson(json_pack("{s:s}", all, "k")));
    CU_ASSERT(same_as_jansson(json_pack("{s:s%}", "nul", "a\0b\0", (size_t)4)));
    CU_ASSERT(same_as_jansson(json_pack(
        "{s:s,s:s,s:s}", "unicode",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 \xe6\x97\xa5\xe6\x9c\xac",
        "quotes", "\"\\\"\\\\/", "\xc3\xa9\x01", "\t\n\r\b\f\x1f\x7f")));
    CU_ASSERT(same_as_jansson(json_pack("[s,s,s]", "", "\"", "\\")));
}

/* A random tree: depth-limited, strings of random bytes (UTF-8 sequences
   among control characters and escapes), integers, literals. */
static unsigned rnd_state = 12345;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) % n;
}

static json_t *random_string(void)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "0",
                                         "+",
                                         "/",
                                         "=",
                                         " ",
                                         "\"",
                                         "\\",
                                         "\b",
                                         "\f",
                                         "\n",
                                         "\r",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x94\x91",
                                         "kid",
                                         "SHA256"};
    char text[256];
    size_t len = 0;
    unsigned parts = rnd(24);

    for (unsigned i = 0; i < parts; i++) {
        const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
        size_t n = strlen(p);

        if (len + n >= sizeof(text))
            break;
        memcpy(text + len, p, n);
        len += n;
    }
    if (rnd(8) == 0 && len + 1 < sizeof(text))
        text[len++] = '\0'; /* an embedded NUL */
    return json_stringn(text, len);
}

static json_t *random_value(int depth)
{
    unsigned kind = depth > 3 ? 2 + rnd(5) : rnd(7);
    json_t *v;

    switch (kind) {
    case 0:
        v = json_object();
        for (unsigned i = rnd(5); i > 0; i--) {
            json_t *key = random_string();

            json_object_set_new(v, json_string_value(key),
                                random_value(depth + 1));
            json_decref(key);
        }
        return v;
    case 1:
        v = json_array();
        for (unsigned i = rnd(5); i > 0; i--)
            json_array_append_new(v, random_value(depth + 1));
        return v;
    case 2:
    case 3:
        return random_string();
    case 4:
        return json_integer((json_int_t)rnd(2000000) - 1000000);
    case 5:
        return json_boolean(rnd(2));
    default:
        return json_null();
    }
}

static void test_random_trees(void)
{
    int same = 0;

    for (int i = 0; i < 5000; i++) {
        json_t *root = rnd(2) ? json_object() : json_array();

        for (unsigned n = rnd(6); n > 0; n--) {
            if (json_is_object(root)) {
                json_t *key = random_string();

                json_object_set_new(root, json_string_value(key),
                                    random_value(1));
                json_decref(key);
            } else {
                json_array_append_new(root, random_value(1));
            }
        }
        same += same_as_jansson(root);
    }
    CU_ASSERT_EQUAL(same, 5000);
}

static void test_writer_refuses_scalars(void)
{
    json_t *s = json_string("x");
    size_t len;

    CU_ASSERT_PTR_NULL(sk_json_compact(s, &len));
    json_decref(s);
}

/* ---- the hot calls' bodies ---- */

/* The bodies as the client built them with jansson before they were
   written as text (the reference). */
static json_t *ref_desc(const sk_key_ref *key, const char *transient)
{
    if (transient != NULL)
        return json_pack("{s:s}", "transient_key", transient);
    return key->kid != NULL ? json_pack("{s:s}", "kid", key->kid)
                            : json_pack("{s:s}", "name", key->name);
}

static json_t *ref_mgf1(const char *hash)
{
    return json_pack("{s:{s:{s:s}}}", "mgf", "mgf1", "hash", hash);
}

static json_t *ref_b64(const unsigned char *in, size_t len)
{
    char text[1024];
    int n = EVP_EncodeBlock((unsigned char *)text, in, (int)len);

    return json_stringn(text, (size_t)n);
}

static json_t *ref_rsa_mode(sk_rsa_padding padding, const char *oaep_hash)
{
    if (padding == SK_RSA_PKCS1_V15)
        return json_pack("{s:{}}", "PKCS1_V15");
    if (padding == SK_RSA_RAW)
        return json_pack("{s:{}}", "RAW_DECRYPT");
    return json_pack("{s:o}", "OAEP",
                     ref_mgf1(oaep_hash != NULL ? oaep_hash : "SHA1"));
}

static json_t *ref_sign(const sk_sign_request *r)
{
    json_t *body =
        json_pack("{s:o,s:s,s:o}", "key", ref_desc(&r->key, NULL), "hash_alg",
                  r->hash_alg, "hash", ref_b64(r->hash, r->hash_len));

    if (r->padding == SK_SIG_PKCS1_V15)
        json_object_set_new(body, "mode", json_pack("{s:{}}", "PKCS1_V15"));
    else if (r->padding == SK_SIG_PSS)
        json_object_set_new(
            body, "mode",
            json_pack(
                "{s:o}", "PSS",
                ref_mgf1(r->mgf1_hash != NULL ? r->mgf1_hash : r->hash_alg)));
    return body;
}

static json_t *ref_rsa(json_t *key, const char *field,
                       const unsigned char *data, size_t len,
                       sk_rsa_padding padding, const char *oaep_hash,
                       const unsigned char *label, size_t label_len)
{
    json_t *body =
        json_pack("{s:o,s:s,s:o,s:o}", "key", key, "alg", "RSA", field,
                  ref_b64(data, len), "mode", ref_rsa_mode(padding, oaep_hash));

    if (padding == SK_RSA_OAEP && label_len > 0)
        json_object_set_new(body, "label", ref_b64(label, label_len));
    return body;
}

static json_t *ref_wrap(const sk_wrapkey_ex_request *r)
{
    int rsa = strcmp(r->alg, "RSA") == 0;
    json_t *body = json_pack(
        "{s:o,s:o,s:s,s:o}", "key",
        ref_desc(&r->wrapping_key, r->wrapping_transient_key), "subject",
        ref_desc(&r->wrap_subject, r->subject_transient_key), "alg", r->alg,
        "mode",
        rsa ? ref_rsa_mode(SK_RSA_OAEP, r->oaep_hash)
            : json_string(r->cipher_mode));

    if (r->key_format != NULL)
        json_object_set_new(body, "key_format", json_string(r->key_format));
    if (r->iv != NULL)
        json_object_set_new(body, "iv", ref_b64(r->iv, r->iv_len));
    if (r->ad != NULL)
        json_object_set_new(body, "ad", ref_b64(r->ad, r->ad_len));
    if (r->tag_len_bits > 0)
        json_object_set_new(body, "tag_len",
                            json_integer((json_int_t)r->tag_len_bits));
    return body;
}

/* text is what json_dumps makes of the reference; takes ref and body. */
static int body_is(json_t *ref, sk_request_body *body, int ok)
{
    char *expected = json_dumps(ref, JSON_COMPACT);
    int same = ok && expected != NULL && body->text != NULL &&
               body->len == strlen(expected) &&
               strcmp(body->text, expected) == 0;

    if (!same)
        fprintf(stderr, "reference: %s\ntext:      %s\n",
                expected != NULL ? expected : "(null)",
                ok && body->text != NULL ? body->text : "(null)");
    /* the members after the key begin right after {"key":<desc>, */
    if (same) {
        json_t *key = json_object_get(ref, "key");
        char *desc = json_dumps(key, JSON_COMPACT | JSON_ENCODE_ANY);

        same = desc != NULL && body->rest == 7 + strlen(desc) + 1;
        free(desc);
    }
    free(expected);
    json_decref(ref);
    if (ok)
        sk_request_body_clear(body);
    return same;
}

static const unsigned char data300[300] = {0x00, 0xff, 0xfe, 0x3e, 0x3f, 0x80};
static const char kid36[] = "0b0c4e8e-57a8-4ac4-9f65-0c1b1f0e3a1d";
static const char *const names[] = {"bench-rsa", "a \"quoted\" \\ name\t/",
                                    "caf\xc3\xa9 \xf0\x9f\x94\x91",
                                    "ctl\x01\x1f"};

static void test_sign_bodies(void)
{
    static const sk_sig_padding paddings[] = {SK_SIG_NONE, SK_SIG_PKCS1_V15,
                                              SK_SIG_PSS};
    static const char *const hashes[] = {"SHA256", "SHA384", "SHA512", "SHA1"};
    int same = 0, total = 0;

    for (size_t k = 0; k < 1 + sizeof(names) / sizeof(names[0]); k++)
        for (size_t p = 0; p < 3; p++)
            for (size_t h = 0; h < 4; h++)
                for (size_t len = 1; len <= 66; len += 13) {
                    sk_sign_request r = {0};
                    sk_request_body body;
                    sk_error err;

                    r.key.kid = k == 0 ? kid36 : NULL;
                    r.key.name = k == 0 ? NULL : names[k - 1];
                    r.hash_alg = hashes[h];
                    r.hash = data300;
                    r.hash_len = len;
                    r.padding = paddings[p];
                    r.mgf1_hash = h == 3 ? "SHA256" : NULL;
                    same += body_is(ref_sign(&r), &body,
                                    sk_sign_body(&r, &body, &err));
                    total++;
                }
    CU_ASSERT_EQUAL(same, total);
}

static void test_rsa_bodies(void)
{
    static const sk_rsa_padding paddings[] = {SK_RSA_OAEP, SK_RSA_PKCS1_V15,
                                              SK_RSA_RAW};
    static const char *const hashes[] = {NULL, "SHA256", "SHA512"};
    int same = 0, total = 0;

    for (size_t k = 0; k < 2 + sizeof(names) / sizeof(names[0]); k++)
        for (size_t p = 0; p < 3; p++)
            for (size_t h = 0; h < 3; h++)
                for (size_t label = 0; label < 2; label++) {
                    const char *transient =
                        k == 1 ? "a-transient-handle" : NULL;
                    sk_key_ref key = {k == 0 ? kid36 : NULL,
                                      k >= 2 ? names[k - 2] : NULL};
                    sk_rsa_request d = {0};
                    sk_rsa_request e = {0};
                    sk_request_body body;
                    sk_error err;

                    d.key = key;
                    d.in = data300;
                    d.in_len = 256;
                    d.padding = paddings[p];
                    d.oaep_hash = hashes[h];
                    d.label = label ? data300 + 3 : NULL;
                    d.label_len = label ? 5 : 0;
                    if (transient == NULL) {
                        same +=
                            body_is(ref_rsa(ref_desc(&key, NULL), "cipher",
                                            data300, 256, d.padding,
                                            d.oaep_hash, d.label, d.label_len),
                                    &body, sk_decrypt_body(&d, &body, &err));
                        total++;
                    }
                    if (paddings[p] == SK_RSA_RAW)
                        continue;
                    e.key = key;
                    e.transient_key = transient;
                    e.in = data300;
                    e.in_len = 32;
                    e.padding = paddings[p];
                    e.oaep_hash = hashes[h];
                    e.label = d.label;
                    e.label_len = d.label_len;
                    same += body_is(ref_rsa(ref_desc(&key, transient), "plain",
                                            data300, 32, e.padding, e.oaep_hash,
                                            e.label, e.label_len),
                                    &body, sk_encrypt_body(&e, &body, &err));
                    total++;
                }
    CU_ASSERT_EQUAL(same, total);
}

static void test_wrapkey_bodies(void)
{
    int same = 0, total = 0;

    for (int variant = 0; variant < 64; variant++) {
        sk_wrapkey_ex_request r = {0};
        sk_request_body body;
        sk_error err;
        int rsa = variant & 1;

        r.wrapping_key.kid = kid36;
        if (variant & 2)
            r.wrapping_transient_key = "transient-wrapping";
        if (variant & 4)
            r.subject_transient_key = "transient-subject";
        else if (variant & 8)
            r.wrap_subject.name = names[(variant >> 4) & 3];
        else
            r.wrap_subject.kid = kid36;
        r.alg = rsa ? "RSA" : "AES";
        r.oaep_hash = rsa && (variant & 16) ? "SHA256" : NULL;
        r.cipher_mode = rsa ? NULL : (variant & 16) ? "GCM" : "KWP";
        if (variant & 32) {
            r.key_format = "Pkcs8";
            if (!rsa) {
                r.iv = data300;
                r.iv_len = 12;
                r.ad = data300 + 1;
                r.ad_len = 7;
                r.tag_len_bits = 128;
            }
        }
        same += body_is(ref_wrap(&r), &body,
                        sk_wrapkey_body(&r, &body, &err) &&
                            body.session_only ==
                                ((variant & 2) || (variant & 4) ? 1 : 0));
        total++;
    }
    CU_ASSERT_EQUAL(same, total);
}

static void test_bodies_refuse_bad_names(void)
{
    sk_sign_request r = {0};
    sk_request_body body;
    sk_error err;

    r.key.name = "bad \xc3\x28 utf-8";
    r.hash_alg = "SHA256";
    r.hash = data300;
    r.hash_len = 32;
    CU_ASSERT_FALSE(sk_sign_body(&r, &body, &err));
    CU_ASSERT_EQUAL(err.kind, SK_ERR_BAD_REQUEST);
    r.key.name = "overlong \xc0\xaf";
    CU_ASSERT_FALSE(sk_sign_body(&r, &body, &err));
    r.key.name = "surrogate \xed\xa0\x80";
    CU_ASSERT_FALSE(sk_sign_body(&r, &body, &err));
    r.key.name = NULL;
    r.key.kid = "not-a-uuid";
    CU_ASSERT_FALSE(sk_sign_body(&r, &body, &err));
}

/* ---- the Base64 decoder ---- */

/* The strict reading as the client did it with OpenSSL before: its checks,
   then EVP_DecodeBlock. */
static unsigned char *reference_decode(const char *in, size_t in_len,
                                       size_t *out_len)
{
    size_t padding = 0;
    unsigned char *out;
    int n;

    if (in_len % 4 != 0)
        return NULL;
    for (size_t i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c == '=') {
            if (i < in_len - 2)
                return NULL;
            padding++;
        } else if (padding > 0 ||
                   !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                     (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            return NULL;
        }
    }
    out = OPENSSL_malloc(in_len / 4 * 3 + 1);
    if (in_len == 0) {
        *out_len = 0;
        return out;
    }
    n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)in_len);
    if (n < 0 || (size_t)n < padding) {
        OPENSSL_free(out);
        return NULL;
    }
    *out_len = (size_t)n - padding;
    return out;
}

static int decodes_like_reference(const char *in, size_t len)
{
    size_t want_len = 0, got_len = 0;
    unsigned char *want = reference_decode(in, len, &want_len);
    unsigned char *got = sk_base64_decode(in, len, &got_len);
    int same = (want == NULL) == (got == NULL) &&
               (want == NULL ||
                (want_len == got_len && memcmp(want, got, got_len) == 0));

    if (!same)
        fprintf(stderr, "base64 differs on \"%.*s\"\n", (int)len, in);
    OPENSSL_free(want);
    OPENSSL_free(got);
    return same;
}

static void test_base64_round_trip(void)
{
    unsigned char bytes[600], text[801];
    int ok = 0;

    for (size_t len = 0; len <= sizeof(bytes); len++) {
        size_t out_len = 0;
        unsigned char *out;
        int text_len;

        for (size_t i = 0; i < len; i++)
            bytes[i] = (unsigned char)rnd(256);
        text_len = EVP_EncodeBlock(text, bytes, (int)len);
        out = sk_base64_decode((char *)text, (size_t)text_len, &out_len);
        ok += out != NULL && out_len == len && memcmp(out, bytes, len) == 0;
        OPENSSL_free(out);
    }
    CU_ASSERT_EQUAL(ok, (int)sizeof(bytes) + 1);
}

static void test_base64_same_verdicts(void)
{
    static const char chars[] = "AZaz09+/=-_ \n\r\t.\x80\xff";
    static const char *const refused[] = {
        "A",     "AA",     "AAA",  "AAAAA",    "A===",     "====",
        "AA=A",  "A=AA",   "=AAA", "AA==AAAA", "AAA=AAAA", "AAAA ",
        " AAAA", "AA\nAA", "AB-_", "AB+/\n",   "QUJD\x80", "AAA\xc3\xa9"};
    char text[16];
    int same = 0, total = 0;

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        size_t len;

        CU_ASSERT_PTR_NULL(
            sk_base64_decode(refused[i], strlen(refused[i]), &len));
    }
    /* a NUL inside is refused too */
    CU_ASSERT_TRUE(decodes_like_reference("AA\0A", 4));
    /* non-canonical trailing bits are ignored, as OpenSSL ignores them */
    CU_ASSERT_TRUE(decodes_like_reference("AB==", 4));
    CU_ASSERT_TRUE(decodes_like_reference("ABC=", 4));
    for (int i = 0; i < 200000; i++) {
        size_t len = rnd(13);

        for (size_t j = 0; j < len; j++)
            text[j] = chars[rnd(sizeof(chars) - 1)];
        /* mostly the alphabet, so that valid inputs are frequent */
        for (size_t j = 0; j < len; j++)
            if (rnd(4) != 0 && text[j] != '=')
                text[j] = "ABCxyz019+/"[rnd(11)];
        same += decodes_like_reference(text, len);
        total++;
    }
    CU_ASSERT_EQUAL(same, total);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "all";
    CU_pSuite suite;
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("codec", NULL, NULL);
    if (strcmp(which, "all") == 0 || strcmp(which, "json-writer") == 0) {
        CU_add_test(suite, "request shapes", test_request_shapes);
        CU_add_test(suite, "escapes and unicode", test_escapes);
        CU_add_test(suite, "random trees", test_random_trees);
        CU_add_test(suite, "scalars refused", test_writer_refuses_scalars);
        CU_add_test(suite, "sign bodies", test_sign_bodies);
        CU_add_test(suite, "decrypt and encrypt bodies", test_rsa_bodies);
        CU_add_test(suite, "wrapkey bodies", test_wrapkey_bodies);
        CU_add_test(suite, "bad key names", test_bodies_refuse_bad_names);
    }
    if (strcmp(which, "all") == 0 || strcmp(which, "base64") == 0) {
        CU_add_test(suite, "round trip", test_base64_round_trip);
        CU_add_test(suite, "same verdicts", test_base64_same_verdicts);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
