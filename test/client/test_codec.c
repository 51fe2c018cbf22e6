/*
 * The client's own JSON writer and Base64 decoder against the libraries
 * they replace (no network).
 *
 * json-writer: sk_json_compact writes the bytes json_dumps(JSON_COMPACT)
 * writes, for every request shape the typed calls build (api.c, batch.c),
 * for strings with every escape, NUL, non-ASCII UTF-8 and long runs, and
 * for thousands of random trees.
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
