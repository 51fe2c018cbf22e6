#include "test_common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <smartkey/smartkey.h>

int tc_passed, tc_failed;

void tc_check(int ok, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    printf("%s - ", ok ? "ok  " : "FAIL");
    vprintf(fmt, args);
    printf("\n");
    va_end(args);
    if (ok)
        tc_passed++;
    else
        tc_failed++;
}

int tc_report(void)
{
    printf("%d passed, %d failed\n", tc_passed, tc_failed);
    return tc_failed == 0 ? 0 : 1;
}

int tc_setup_failed(const char *why)
{
    fprintf(stderr, "%s\n", why);
    printf("0 passed, 1 failed\n");
    return 1;
}

void tc_use_emulator(const emu_env *env)
{
    setenv(SMARTKEY_ENV_API_ENDPOINT, env->endpoint, 1);
    setenv(SMARTKEY_ENV_API_KEY, env->api_key, 1);
    setenv(SMARTKEY_ENV_CA_FILE, env->ca_file, 1);
}

const char *tc_emulator_args(int argc, char **argv, emu_env *env)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODULE-DIR\n", argv[0]);
        return NULL;
    }
    if (!emu_init(env))
        return NULL;
    tc_use_emulator(env);
    return argv[1];
}

OSSL_LIB_CTX *tc_provider_libctx(const char *module_dir)
{
    return emu_provider_libctx(module_dir, 0);
}

EVP_PKEY *tc_read_pem_key(OSSL_LIB_CTX *libctx, const char *path)
{
    FILE *pem = fopen(path, "r");
    EVP_PKEY *key;

    if (pem == NULL)
        return NULL;
    key = PEM_read_PrivateKey_ex(pem, NULL, NULL, NULL, libctx, NULL);
    fclose(pem);
    return key;
}

void tc_write_config_head(FILE *f, const char *module_dir)
{
    fprintf(f,
            "openssl_conf = openssl_init\n"
            "[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\n"
            "smartkey = smartkey_sect\n"
            "[default_sect]\nactivate = 1\n"
            "[smartkey_sect]\nmodule = %s/smartkey.so\nactivate = 1\n",
            module_dir);
}

EVP_PKEY *tc_public_copy(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *propq)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_PUBKEY(key, &der);
    EVP_PKEY *copy = NULL;

    if (len > 0) {
        p = der;
        copy = d2i_PUBKEY_ex(NULL, &p, len, libctx, propq);
    }
    OPENSSL_free(der);
    return copy;
}

void tc_wrap_params(OSSL_PARAM params[4], const char *subject_uri)
{
    params[0] = OSSL_PARAM_construct_utf8_string(
        OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_OAEP, 0);
    params[1] = OSSL_PARAM_construct_utf8_string(
        OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT,
                                                 (char *)subject_uri, 0);
    params[3] = OSSL_PARAM_construct_end();
}

void tc_oaep_params(OSSL_PARAM params[5], const char *subject_uri)
{
    int n = 0;

    params[n++] = OSSL_PARAM_construct_utf8_string(
        OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_OAEP, 0);
    params[n++] = OSSL_PARAM_construct_utf8_string(
        OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, "SHA256", 0);
    params[n++] = OSSL_PARAM_construct_utf8_string(
        OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, "SHA256", 0);
    if (subject_uri != NULL)
        params[n++] = OSSL_PARAM_construct_utf8_string(
            SMARTKEY_PARAM_WRAP_SUBJECT, (char *)subject_uri, 0);
    params[n] = OSSL_PARAM_construct_end();
}

int tc_encrypt_oaep(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                    const unsigned char *in, size_t in_len, unsigned char *out,
                    size_t *out_len)
{
    OSSL_PARAM params[5];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    int ok;

    tc_oaep_params(params, NULL);
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, out, out_len, in, in_len) > 0;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

const OSSL_PARAM tc_oaep_sha256[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
                           OSSL_PKEY_RSA_PAD_MODE_OAEP,
                           sizeof(OSSL_PKEY_RSA_PAD_MODE_OAEP) - 1),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, "SHA256", 6),
    OSSL_PARAM_END,
};

int tc_local_oaep(EVP_PKEY *key, int encrypt, const unsigned char *in,
                  size_t in_len, unsigned char *out, size_t *out_len)
{
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(NULL, key, "provider=default");
    int ok = ctx != NULL &&
             (encrypt ? EVP_PKEY_encrypt_init_ex(ctx, tc_oaep_sha256)
                      : EVP_PKEY_decrypt_init_ex(ctx, tc_oaep_sha256)) > 0 &&
             (encrypt ? EVP_PKEY_encrypt(ctx, out, out_len, in, in_len)
                      : EVP_PKEY_decrypt(ctx, out, out_len, in, in_len)) > 0;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

int tc_sign_and_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *key, EVP_PKEY *verifier,
                       const unsigned char *msg, size_t msg_len)
{
    return tc_sign_and_verify_ex(libctx, NULL, key, "provider=default",
                                 verifier, msg, msg_len);
}

int tc_sign_and_verify_ex(OSSL_LIB_CTX *libctx, const char *sign_propq,
                          EVP_PKEY *key, const char *verify_propq,
                          EVP_PKEY *verifier, const unsigned char *msg,
                          size_t msg_len)
{
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new(), *check = EVP_MD_CTX_new();
    int ok;

    ok = md != NULL && check != NULL &&
         EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, sign_propq, key,
                               NULL) > 0 &&
         EVP_DigestSign(md, sig, &sig_len, msg, msg_len) > 0 &&
         EVP_DigestVerifyInit_ex(check, NULL, "SHA256", libctx, verify_propq,
                                 verifier, NULL) > 0 &&
         EVP_DigestVerify(check, sig, sig_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(md);
    EVP_MD_CTX_free(check);
    return ok;
}

int tc_set_latency(const emu_env *env, long ms)
{
    char body[64];

    snprintf(body, sizeof(body), "{\"ms\":%ld}", ms);
    return emu_request(env, "POST", "/_emulator/latency", NULL, body, NULL) /
               100 ==
           2;
}

char *tc_base64(const unsigned char *in, size_t len)
{
    char *out = OPENSSL_malloc(4 * ((len + 2) / 3) + 1);

    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

int tc_decrypts_to(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                   const unsigned char *cipher, size_t cipher_len,
                   const unsigned char *expected, size_t len)
{
    OSSL_PARAM params[5];
    unsigned char plain[1024];
    size_t plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    int ok;

    tc_oaep_params(params, NULL);
    ok = ctx != NULL && EVP_PKEY_decrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_decrypt(ctx, plain, &plain_len, cipher, cipher_len) > 0 &&
         plain_len == len && memcmp(plain, expected, len) == 0;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}
