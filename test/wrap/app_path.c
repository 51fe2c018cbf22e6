/*
 * Never a silent local result on the application path (issue 12, item 2):
 * an application loads a SmartKey RSA key through OSSL_STORE, makes its
 * context with EVP_PKEY_CTX_new_from_pkey(libctx, pkey, NULL) -- no
 * property query -- and sets smartkey-wrap-subject with
 * EVP_PKEY_CTX_set_params(). Whatever the provider order, with a key
 * SmartKey holds only the public half of, the public handle of a pair
 * (;type=public) or the private handle, the wrap either makes the wrapkey
 * request and its result unwraps with the stand-in private key, or it
 * fails with an error: never the default provider's RSA-OAEP of the empty
 * string. The public key operations still work on those keys: local
 * encryption, signature verification, EVP_PKEY_eq and EVP_PKEY_dup.
 *
 * Usage (run by app_path.sh with SMARTKEY_* and SMARTKEY_TEST_* set):
 *   app_path MODULE_DIR SUBJECT_URI SUBJECT_VALUE_FILE
 *            (KEY_URI STANDIN_PEM)...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#include <smartkey/smartkey.h>

#include "test_common.h"

static int passed, failed;
static emu_env env;
static const char *subject_uri;
static unsigned char expected[64];
static size_t expected_len;

static void check(const char *what, const char *order, const char *uri, int ok)
{
    if (ok) {
        passed++;
        printf("ok   - %s (%s, %s)\n", what, order, uri);
    } else {
        failed++;
        printf("FAIL - %s (%s, %s)\n", what, order, uri);
        ERR_print_errors_fp(stdout);
    }
    ERR_clear_error();
}

static int unwraps(OSSL_LIB_CTX *libctx, EVP_PKEY *standin,
                   const unsigned char *wrapped, size_t wrapped_len)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
                                         OSSL_PKEY_RSA_PAD_MODE_OAEP, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
                                         "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    unsigned char plain[1024];
    size_t plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(libctx, standin, "provider=default");
    int ok =
        ctx != NULL && EVP_PKEY_decrypt_init_ex(ctx, params) > 0 &&
        EVP_PKEY_decrypt(ctx, plain, &plain_len, wrapped, wrapped_len) > 0 &&
        plain_len == expected_len && memcmp(plain, expected, plain_len) == 0;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/*
 * Exactly what an application writes: no property query anywhere, the
 * wrap subject through EVP_PKEY_CTX_set_params(), empty input.
 */
static void wrap_case(OSSL_LIB_CTX *libctx, EVP_PKEY *key, EVP_PKEY *standin,
                      const char *order, const char *uri)
{
    OSSL_PARAM params[4];
    unsigned char wrapped[1024];
    size_t wrapped_len = 0;
    EVP_PKEY_CTX *ctx;
    long wrapkeys;
    int ok, error_queued, unwrapped = 0;

    tc_wrap_params(params, subject_uri);
    ERR_clear_error();
    emu_reset_counters(&env);
    ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) > 0 &&
         EVP_PKEY_CTX_set_params(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, NULL, &wrapped_len, NULL, 0) > 0 &&
         wrapped_len <= sizeof(wrapped) &&
         EVP_PKEY_encrypt(ctx, wrapped, &wrapped_len, NULL, 0) > 0;
    error_queued = ERR_peek_error() != 0;
    EVP_PKEY_CTX_free(ctx);
    wrapkeys = emu_request_count(&env, "POST /crypto/v1/wrapkey");
    if (ok)
        unwrapped = unwraps(libctx, standin, wrapped, wrapped_len);
    printf("# %s %s: rc=%d, %zu bytes, %ld wrapkey request(s)\n", order, uri,
           ok, ok ? wrapped_len : 0, wrapkeys);
    check("set_params wrap without a property query: SmartKey wraps (one "
          "wrapkey request, the result unwraps) or an error, never a local "
          "result",
          order, uri,
          ok ? wrapkeys == 1 && unwrapped : error_queued && wrapkeys == 0);
    check("set_params wrap without a property query is done by SmartKey", order,
          uri, ok && wrapkeys == 1 && unwrapped);
}

/* The public key operations an application does with such a key. */
static void public_cases(OSSL_LIB_CTX *libctx, EVP_PKEY *key, EVP_PKEY *standin,
                         const char *order, const char *uri)
{
    static const unsigned char message[] = "message";
    unsigned char cipher[1024], signature[1024];
    size_t cipher_len = sizeof(cipher), signature_len = sizeof(signature);
    EVP_PKEY_CTX *ctx;
    EVP_MD_CTX *md;
    EVP_PKEY *copy;
    int ok;

    ERR_clear_error();
    ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) > 0 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
         EVP_PKEY_encrypt(ctx, cipher, &cipher_len, message, sizeof(message)) >
             0;
    EVP_PKEY_CTX_free(ctx);
    if (ok) {
        unsigned char plain[1024];
        size_t plain_len = sizeof(plain);

        ctx = EVP_PKEY_CTX_new_from_pkey(libctx, standin, "provider=default");
        ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
             EVP_PKEY_decrypt(ctx, plain, &plain_len, cipher, cipher_len) > 0 &&
             plain_len == sizeof(message) &&
             memcmp(plain, message, plain_len) == 0;
        EVP_PKEY_CTX_free(ctx);
    }
    check("encryption with the public key (no wrap) decrypts with the "
          "private key",
          order, uri, ok);

    md = EVP_MD_CTX_new();
    ok = md != NULL &&
         EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, "provider=default",
                               standin, NULL) > 0 &&
         EVP_DigestSign(md, signature, &signature_len, message,
                        sizeof(message)) > 0;
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    ok = ok && md != NULL &&
         EVP_DigestVerifyInit_ex(md, NULL, "SHA256", libctx, NULL, key, NULL) >
             0 &&
         EVP_DigestVerify(md, signature, signature_len, message,
                          sizeof(message)) == 1;
    EVP_MD_CTX_free(md);
    check("a signature of the private key verifies with the key", order, uri,
          ok);

    /* pkeyutl -verifyrecover: the signed bytes come back */
    signature_len = sizeof(signature);
    ctx = EVP_PKEY_CTX_new_from_pkey(libctx, standin, "provider=default");
    ok = ctx != NULL && EVP_PKEY_sign_init(ctx) > 0 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
         EVP_PKEY_sign(ctx, signature, &signature_len, message,
                       sizeof(message)) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (ok) {
        unsigned char recovered[1024];
        size_t recovered_len = sizeof(recovered);

        ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
        ok = ctx != NULL && EVP_PKEY_verify_recover_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
             EVP_PKEY_verify_recover(ctx, recovered, &recovered_len, signature,
                                     signature_len) > 0 &&
             recovered_len == sizeof(message) &&
             memcmp(recovered, message, recovered_len) == 0;
        EVP_PKEY_CTX_free(ctx);
    }
    check("verify-recover with the key gives the signed bytes", order, uri, ok);

    check("EVP_PKEY_eq: the key equals its stand-in's public key", order, uri,
          EVP_PKEY_eq(key, standin) == 1);
    copy = EVP_PKEY_dup(key);
    check("EVP_PKEY_dup copies the key", order, uri,
          copy != NULL && EVP_PKEY_eq(copy, key) == 1 &&
              EVP_PKEY_get_bits(copy) == EVP_PKEY_get_bits(key));
    EVP_PKEY_free(copy);
}

int main(int argc, char **argv)
{
    if (argc < 6 || (argc - 4) % 2 != 0) {
        fprintf(stderr,
                "usage: %s MODULE_DIR SUBJECT_URI SUBJECT_VALUE_FILE "
                "(KEY_URI STANDIN_PEM)...\n",
                argv[0]);
        return 2;
    }
    subject_uri = argv[2];
    if (!emu_init(&env) ||
        !emu_read_file(argv[3], expected, sizeof(expected), &expected_len))
        return 2;
    for (int smartkey_first = 0; smartkey_first < 2; smartkey_first++) {
        const char *order =
            smartkey_first ? "smartkey,default" : "default,smartkey";
        OSSL_LIB_CTX *libctx = emu_provider_libctx(argv[1], smartkey_first);

        if (libctx == NULL) {
            printf("FAIL - loading the providers (%s)\n", order);
            failed++;
            continue;
        }
        for (int i = 4; i + 1 < argc; i += 2) {
            EVP_PKEY *key = emu_load_any_key(libctx, NULL, argv[i]);
            EVP_PKEY *standin = tc_read_pem_key(libctx, argv[i + 1]);

            check("the key loads through OSSL_STORE without a property query",
                  order, argv[i], key != NULL && standin != NULL);
            if (key != NULL && standin != NULL) {
                printf("# %s %s: key of provider %s\n", order, argv[i],
                       OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(key)));
                wrap_case(libctx, key, standin, order, argv[i]);
                public_cases(libctx, key, standin, order, argv[i]);
            }
            EVP_PKEY_free(key);
            EVP_PKEY_free(standin);
        }
        OSSL_LIB_CTX_free(libctx);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
