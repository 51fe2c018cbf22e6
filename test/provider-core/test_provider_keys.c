/*
 * The provider core against a running smartkey-emulator: store loader,
 * key management and errors, through the public OpenSSL API in a private
 * library context. Started by provider_keys.sh, which creates the keys and
 * passes (environment):
 *   SMARTKEY_TEST_MODULE_DIR   directory holding smartkey.so
 *   SMARTKEY_TEST_KEYS         directory with <label>.kid and <label>.der
 *                              (the server's pub_key) for the labels
 *                              rsa ("core rsa"), ec256 ("core-ec256"),
 *                              ec384 ("core;ec%384")
 * and the provider's configuration through SMARTKEY_API_ENDPOINT,
 * SMARTKEY_API_KEY=file:..., SMARTKEY_CA_FILE.
 *
 * Usage: test-provider-keys            the CUnit suite
 *        test-provider-keys load URI N  loads URI N times (request counts
 *                                       are checked by the script)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "cunit_run.h"
#include "emu.h"

static OSSL_LIB_CTX *libctx;

/* default first, as every configuration must (docs/openssl-dispatch.md §3,
 * §8) */
static int setup_providers(void)
{
    const char *module_dir = getenv("SMARTKEY_TEST_MODULE_DIR");

    if (module_dir != NULL)
        libctx = emu_provider_libctx(module_dir, 0);
    return libctx != NULL;
}

/* freeing the library context unloads its providers */
static void teardown_providers(void)
{
    OSSL_LIB_CTX_free(libctx);
}

static char *read_text(const char *label, const char *suffix)
{
    char path[4096];
    static char text[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.%s", getenv("SMARTKEY_TEST_KEYS"),
             label, suffix);
    f = fopen(path, "r");
    if (f == NULL || fgets(text, sizeof(text), f) == NULL)
        text[0] = '\0';
    if (f != NULL)
        fclose(f);
    text[strcspn(text, "\n")] = '\0';
    return text;
}

static unsigned char *read_der(const char *label, long *len)
{
    char path[4096];
    unsigned char *der = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.der", getenv("SMARTKEY_TEST_KEYS"),
             label);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    der = malloc((size_t)*len);
    if (der != NULL && fread(der, 1, (size_t)*len, f) != (size_t)*len) {
        free(der);
        der = NULL;
    }
    fclose(f);
    return der;
}

typedef struct loaded {
    int type;       /* OSSL_STORE_INFO_*, 0 when nothing was loaded */
    EVP_PKEY *pkey; /* the private or public key */
    int objects;    /* how many objects the store returned */
    int eof;        /* OSSL_STORE_eof after the loop */
    int loads;      /* OSSL_STORE_load calls */
} loaded;

/* Loads every object of uri, keeping the first; like the apps' loop. */
static loaded load_uri(const char *uri, int expect)
{
    loaded result = {0, NULL, 0, 0, 0};
    OSSL_STORE_CTX *store =
        OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);

    if (store == NULL)
        return result;
    if (expect != 0)
        OSSL_STORE_expect(store, expect);
    /* bounded: a loader whose eof() stays 0 must fail, not hang */
    while (!OSSL_STORE_eof(store) && result.loads < 100) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);

        result.loads++;
        if (info == NULL)
            continue;
        result.objects++;
        if (result.pkey == NULL) {
            result.type = OSSL_STORE_INFO_get_type(info);
            if (result.type == OSSL_STORE_INFO_PKEY)
                result.pkey = OSSL_STORE_INFO_get1_PKEY(info);
            else if (result.type == OSSL_STORE_INFO_PUBKEY)
                result.pkey = OSSL_STORE_INFO_get1_PUBKEY(info);
        }
        OSSL_STORE_INFO_free(info);
    }
    result.eof = OSSL_STORE_eof(store);
    OSSL_STORE_close(store);
    return result;
}

/* The SubjectPublicKeyInfo OpenSSL encodes equals SmartKey's pub_key. */
static void assert_spki_is_servers(EVP_PKEY *pkey, const char *label)
{
    unsigned char *der = NULL;
    long server_len = 0;
    unsigned char *server_der = read_der(label, &server_len);
    int len = i2d_PUBKEY(pkey, &der);

    CU_ASSERT_PTR_NOT_NULL_FATAL(server_der);
    CU_ASSERT_EQUAL(len, server_len);
    if (len == server_len)
        CU_ASSERT_EQUAL(memcmp(der, server_der, (size_t)len), 0);
    OPENSSL_free(der);
    free(server_der);
}

static void test_rsa_key_is_private_handle_with_cached_sizes(void)
{
    loaded l = load_uri("smartkey:name=core%20rsa", 0);

    CU_ASSERT_EQUAL_FATAL(l.type, OSSL_STORE_INFO_PKEY);
    CU_ASSERT_EQUAL(l.objects, 1);
    CU_ASSERT_TRUE(l.eof);
    CU_ASSERT_TRUE(EVP_PKEY_is_a(l.pkey, "RSA"));
    CU_ASSERT_TRUE(EVP_PKEY_is_a(l.pkey, "rsaEncryption"));
    CU_ASSERT_EQUAL(EVP_PKEY_get_id(l.pkey), EVP_PKEY_RSA);
    CU_ASSERT_STRING_EQUAL(
        OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(l.pkey)), "smartkey");
    CU_ASSERT_EQUAL(EVP_PKEY_get_bits(l.pkey), 2048);
    CU_ASSERT_EQUAL(EVP_PKEY_get_security_bits(l.pkey), 112);
    CU_ASSERT_EQUAL(EVP_PKEY_get_size(l.pkey), 256);
    EVP_PKEY_free(l.pkey);
}

static void test_rsa_exports_public_parts_only(void)
{
    loaded l = load_uri("smartkey:name=core%20rsa", 0);
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(l.pkey);
    CU_ASSERT_FALSE(EVP_PKEY_todata(l.pkey, EVP_PKEY_KEYPAIR, &params));
    ERR_clear_error();
    CU_ASSERT_TRUE(EVP_PKEY_todata(l.pkey, EVP_PKEY_PUBLIC_KEY, &params));
    CU_ASSERT_PTR_NOT_NULL(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_N));
    CU_ASSERT_PTR_NULL(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_D));
    CU_ASSERT_TRUE(EVP_PKEY_get_bn_param(l.pkey, OSSL_PKEY_PARAM_RSA_N, &n));
    CU_ASSERT_EQUAL(BN_num_bits(n), 2048);
    assert_spki_is_servers(l.pkey, "rsa");
    BN_free(n);
    OSSL_PARAM_free(params);
    EVP_PKEY_free(l.pkey);
}

static void test_ec_key_reports_group_and_ecdsa_size(void)
{
    loaded l = load_uri("smartkey:name=core-ec256", 0);
    char group[64] = "", digest[64] = "";

    CU_ASSERT_EQUAL_FATAL(l.type, OSSL_STORE_INFO_PKEY);
    CU_ASSERT_TRUE(EVP_PKEY_is_a(l.pkey, "EC"));
    CU_ASSERT_EQUAL(EVP_PKEY_get_id(l.pkey), EVP_PKEY_EC);
    CU_ASSERT_EQUAL(EVP_PKEY_get_bits(l.pkey), 256);
    CU_ASSERT_EQUAL(EVP_PKEY_get_security_bits(l.pkey), 128);
    CU_ASSERT_EQUAL(EVP_PKEY_get_size(l.pkey), 72);
    CU_ASSERT_TRUE(EVP_PKEY_get_group_name(l.pkey, group, sizeof(group), NULL));
    CU_ASSERT_STRING_EQUAL(group, "prime256v1");
    CU_ASSERT_EQUAL(EVP_PKEY_get_ec_point_conv_form(l.pkey),
                    POINT_CONVERSION_UNCOMPRESSED);
    /* 1: advisory, SHA-256 is what req/x509 use without -sha* */
    CU_ASSERT_EQUAL(
        EVP_PKEY_get_default_digest_name(l.pkey, digest, sizeof(digest)), 1);
    CU_ASSERT_STRING_EQUAL(digest, "SHA256");
    assert_spki_is_servers(l.pkey, "ec256");
    EVP_PKEY_free(l.pkey);
}

static void test_name_with_semicolon_and_percent_loads(void)
{
    loaded l = load_uri("smartkey://name=core%3Bec%25384", 0);

    CU_ASSERT_EQUAL_FATAL(l.type, OSSL_STORE_INFO_PKEY);
    CU_ASSERT_EQUAL(EVP_PKEY_get_bits(l.pkey), 384);
    CU_ASSERT_EQUAL(EVP_PKEY_get_size(l.pkey), 104);
    assert_spki_is_servers(l.pkey, "ec384");
    EVP_PKEY_free(l.pkey);
}

static void test_kid_uri_loads_same_key(void)
{
    char uri[128];
    loaded l;

    snprintf(uri, sizeof(uri), "smartkey:kid=%s", read_text("rsa", "kid"));
    l = load_uri(uri, 0);
    CU_ASSERT_EQUAL_FATAL(l.type, OSSL_STORE_INFO_PKEY);
    assert_spki_is_servers(l.pkey, "rsa");
    EVP_PKEY_free(l.pkey);
}

static void test_expect_pubkey_yields_public_key(void)
{
    loaded l = load_uri("smartkey:name=core%20rsa", OSSL_STORE_INFO_PUBKEY);

    CU_ASSERT_EQUAL_FATAL(l.type, OSSL_STORE_INFO_PUBKEY);
    CU_ASSERT_TRUE(l.eof);
    assert_spki_is_servers(l.pkey, "rsa");
    EVP_PKEY_free(l.pkey);
}

static void test_type_public_yields_public_key(void)
{
    loaded l = load_uri("smartkey:name=core-ec256;type=public", 0);

    CU_ASSERT_EQUAL_FATAL(l.type, OSSL_STORE_INFO_PUBKEY);
    assert_spki_is_servers(l.pkey, "ec256");
    EVP_PKEY_free(l.pkey);
}

/* The last error must be this provider's, with the given reason text. */
static void assert_smartkey_error(const char *reason, const char *detail)
{
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_peek_last_error_data(&data, &flags);

    CU_ASSERT_NOT_EQUAL_FATAL(e, 0);
    CU_ASSERT_STRING_EQUAL(ERR_lib_error_string(e), "smartkey");
    CU_ASSERT_STRING_EQUAL(ERR_reason_error_string(e), reason);
    CU_ASSERT_PTR_NOT_NULL(data != NULL ? strstr(data, detail) : NULL);
    ERR_clear_error();
}

/* Loading uri (expecting objects of type expect, 0 for any) gives nothing
   and ends after one load, with the smartkey error reason whose data
   quotes detail. */
static void assert_load_refused(const char *uri, int expect, const char *reason,
                                const char *detail)
{
    loaded l;

    ERR_clear_error();
    l = load_uri(uri, expect);
    CU_ASSERT_EQUAL(l.objects, 0);
    CU_ASSERT_TRUE(l.eof);
    CU_ASSERT_EQUAL(l.loads, 1);
    assert_smartkey_error(reason, detail);
}

static void test_unknown_key_ends_load_with_clear_error(void)
{
    assert_load_refused("smartkey:name=no-such-key", 0,
                        "no such key in SmartKey", "'no-such-key'");
}

static void test_malformed_uri_ends_load_with_clear_error(void)
{
    assert_load_refused("smartkey:name=x;colour=blue", 0,
                        "malformed smartkey: URI", "colour");
}

static void test_private_key_request_for_type_public_says_why(void)
{
    assert_load_refused(
        "smartkey:name=core-ec256;type=public", OSSL_STORE_INFO_PKEY,
        "no private key (public-only key or type=public)", "-pubin");
}

static void test_listing_returns_each_rsa_and_ec_key_once(void)
{
    loaded l = load_uri("smartkey:", 0);

    /* rsa, ec256, ec384; the AES key is not an OpenSSL key */
    CU_ASSERT_EQUAL(l.objects, 3);
    CU_ASSERT_TRUE(l.eof);
    CU_ASSERT_EQUAL(l.loads, 3);
    EVP_PKEY_free(l.pkey);
}

static void test_aes_key_is_refused_as_unsupported(void)
{
    loaded l;

    ERR_clear_error();
    l = load_uri("smartkey:name=core-aes", 0);
    CU_ASSERT_EQUAL(l.objects, 0);
    CU_ASSERT_TRUE(l.eof);
    assert_smartkey_error("key type not supported", "AES");
}

static void test_private_text_names_the_key_without_secrets(void)
{
    loaded l = load_uri("smartkey:name=core%20rsa", 0);
    BIO *out = BIO_new(BIO_s_mem());
    char *text = NULL;
    long len;
    char kid_line[64];

    CU_ASSERT_PTR_NOT_NULL_FATAL(l.pkey);
    CU_ASSERT_EQUAL(EVP_PKEY_print_private(out, l.pkey, 0, NULL), 1);
    len = BIO_get_mem_data(out, &text);
    CU_ASSERT_TRUE_FATAL(len > 0);
    text[len - 1] = '\0';
    snprintf(kid_line, sizeof(kid_line), "kid: %s", read_text("rsa", "kid"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "SmartKey RSA private key, 2048"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "name: core rsa"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, kid_line));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Modulus:"));
    CU_ASSERT_PTR_NULL(strstr(text, "privateExponent"));
    BIO_free(out);
    EVP_PKEY_free(l.pkey);
}

static void test_private_handles_of_same_key_match(void)
{
    loaded a = load_uri("smartkey:name=core%20rsa", 0);
    loaded b = load_uri("smartkey:name=core-ec256", 0);
    loaded c = load_uri("smartkey:name=core%20rsa", OSSL_STORE_INFO_PUBKEY);

    CU_ASSERT_PTR_NOT_NULL_FATAL(a.pkey);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b.pkey);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.pkey);
    CU_ASSERT_EQUAL(EVP_PKEY_eq(a.pkey, a.pkey), 1);
    CU_ASSERT_NOT_EQUAL(EVP_PKEY_eq(a.pkey, b.pkey), 1);
    /* a private handle and its public half (in another provider) */
    CU_ASSERT_EQUAL(EVP_PKEY_eq(a.pkey, c.pkey), 1);
    ERR_clear_error();
    EVP_PKEY_free(a.pkey);
    EVP_PKEY_free(b.pkey);
    EVP_PKEY_free(c.pkey);
}

static int load_repeatedly(const char *uri, int times)
{
    int i, ok = 1;

    for (i = 0; i < times; i++) {
        loaded l = load_uri(uri, 0);

        ok = ok && l.pkey != NULL;
        EVP_PKEY_free(l.pkey);
    }
    if (!ok)
        ERR_print_errors_fp(stderr);
    return ok;
}

int main(int argc, char **argv)
{
    static const cunit_test tests[] = {
        {"rsa key is a private handle with cached sizes",
         test_rsa_key_is_private_handle_with_cached_sizes},
        {"rsa exports public parts only", test_rsa_exports_public_parts_only},
        {"ec key reports group and ECDSA size",
         test_ec_key_reports_group_and_ecdsa_size},
        {"name with ; and % loads", test_name_with_semicolon_and_percent_loads},
        {"kid URI loads the same key", test_kid_uri_loads_same_key},
        {"expect PUBKEY yields a public key",
         test_expect_pubkey_yields_public_key},
        {"type=public yields a public key", test_type_public_yields_public_key},
        {"unknown key ends the load with a clear error",
         test_unknown_key_ends_load_with_clear_error},
        {"malformed URI ends the load with a clear error",
         test_malformed_uri_ends_load_with_clear_error},
        {"private key request for type=public says why",
         test_private_key_request_for_type_public_says_why},
        {"listing returns each RSA and EC key once",
         test_listing_returns_each_rsa_and_ec_key_once},
        {"AES key is refused as unsupported",
         test_aes_key_is_refused_as_unsupported},
        {"private text names the key without secrets",
         test_private_text_names_the_key_without_secrets},
        {"handles of the same key match",
         test_private_handles_of_same_key_match},
    };
    int status;

    if (!setup_providers())
        return 2;
    if (argc == 4 && strcmp(argv[1], "load") == 0) {
        int ok = load_repeatedly(argv[2], atoi(argv[3]));

        teardown_providers();
        return ok ? 0 : 1;
    }
    status = cunit_run("provider keys", NULL, NULL, tests, CUNIT_COUNT(tests));
    teardown_providers();
    return status;
}
