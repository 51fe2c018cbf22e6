/*
 * provider-bench: the smartkey provider through the EVP API, as an
 * application uses it: RSA-2048 OAEP decrypt, ECDSA P-256 sign, RSA-OAEP
 * server-side wrap (all in SmartKey) and RSA-OAEP public-key encrypt
 * (local), at several thread counts; and for the signature check, ECDSA
 * P-256 and RSA-2048 signing of a digest and the local verification
 * alone (ecdsa-sign, rsa-sign, ecdsa-verify, rsa-verify). Prints RESULT lines
 * (bench_common.h); asserts nothing. Run it through run-provider-bench.
 *
 * Usage: provider-bench MODULE-DIR [--config FILE] [--label NAME]
 *            [--threads 1,4,16,64] [--ops N] [--only decrypt,sign,...]
 * Keys "bench-rsa" (with SIGN for rsa-sign), "bench-ec" and "bench-aes"
 * must exist. Without
 * --config the provider reads SMARTKEY_API_* from the environment; with it,
 * FILE (an openssl.cnf activating default and smartkey) configures both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

#include <smartkey/smartkey.h>

#include "bench_common.h"
#include "test_common.h"

static const char propq[] = "?provider=" SMARTKEY_PROVIDER_NAME;
static const char subject_uri[] = "smartkey:name=bench-aes";
static const unsigned char message[] = "a message to sign";

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *rsa_key, *ec_key, *ec_public;
static unsigned char cipher[256];
static size_t cipher_len;

static EVP_PKEY *load_key(const char *uri)
{
    return emu_load_pkey(libctx, NULL, uri);
}

static int op_encrypt(int thread)
{
    unsigned char out[256];
    size_t len;

    (void)thread;
    return bench_encrypt_secret(libctx, rsa_key, out, &len);
}

static int op_decrypt(int thread)
{
    (void)thread;
    return tc_decrypts_to(libctx, rsa_key, cipher, cipher_len, bench_secret,
                          sizeof(bench_secret));
}

static int op_wrap(int thread)
{
    OSSL_PARAM params[5];
    unsigned char wrapped[256];
    size_t wrapped_len = 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, rsa_key, propq);
    int ok;

    (void)thread;
    tc_oaep_params(params, subject_uri);
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, NULL, &wrapped_len, NULL, 0) > 0 &&
         wrapped_len <= sizeof(wrapped) &&
         EVP_PKEY_encrypt(ctx, wrapped, &wrapped_len, NULL, 0) > 0 &&
         wrapped_len == sizeof(wrapped);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* The signature is checked with a plain (default provider) public key so
   that the check costs no request and is not the code under test. */
static int op_sign(int thread)
{
    (void)thread;
    return tc_sign_and_verify(libctx, ec_key, ec_public, message,
                              sizeof(message) - 1);
}

/*
 * Signature verification (issue 12): the provider checks every signature
 * SmartKey returns with the key's public half before releasing it. The
 * *-sign ops sign one SHA-256 digest through the provider and nothing
 * else (the provider's check included, the bench adds none); the *-verify
 * ops run only what the provider adds, a default-provider verification of
 * one signature on its digest, without any request.
 */
static unsigned char digest[32], ec_sig[128], rsa_sig[256];
static size_t ec_sig_len, rsa_sig_len;
static EVP_PKEY *rsa_public;

static int sign_digest(EVP_PKEY *key, unsigned char *sig, size_t *sig_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    int ok = ctx != NULL && EVP_PKEY_sign_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_sign(ctx, sig, sig_len, digest, sizeof(digest)) > 0;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int verify_digest(EVP_PKEY *key, const unsigned char *sig,
                         size_t sig_len)
{
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(libctx, key, "provider=default");
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof(digest)) == 1;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int op_ecdsa_sign(int thread)
{
    unsigned char sig[128];
    size_t sig_len = sizeof(sig);

    (void)thread;
    return sign_digest(ec_key, sig, &sig_len);
}

static int op_rsa_sign(int thread)
{
    unsigned char sig[256];
    size_t sig_len = sizeof(sig);

    (void)thread;
    return sign_digest(rsa_key, sig, &sig_len) && sig_len == sizeof(sig);
}

static int op_ecdsa_verify(int thread)
{
    (void)thread;
    return verify_digest(ec_public, ec_sig, ec_sig_len);
}

static int op_rsa_verify(int thread)
{
    (void)thread;
    return verify_digest(rsa_public, rsa_sig, rsa_sig_len);
}

static const bench_named_op ops[] = {
    {"decrypt", op_decrypt},
    {"sign", op_sign},
    {"wrap", op_wrap},
    {"encrypt", op_encrypt},
    {"ecdsa-sign", op_ecdsa_sign},
    {"rsa-sign", op_rsa_sign},
    {"ecdsa-verify", op_ecdsa_verify},
    {"rsa-verify", op_rsa_verify},
};

/* A failed operation's errors are shown once per run. */
static void show_errors(const bench_result *r)
{
    if (r->failures > 0)
        ERR_print_errors_fp(stderr);
    ERR_clear_error();
}

static const char *config, *label = "provider";

/* --config FILE (an openssl.cnf instead of loading the providers) and
   --label NAME (the client column of the RESULT lines) */
static int provider_option(const char *name, const char *value)
{
    if (strcmp(name, "--config") == 0)
        config = value;
    else if (strcmp(name, "--label") == 0)
        label = value;
    else
        return 0;
    return 1;
}

int main(int argc, char **argv)
{
    bench_options o;
    emu_env env;

    if (argc < 2) {
        fprintf(stderr, "usage: %s MODULE-DIR [options]\n", argv[0]);
        return 2;
    }
    if (!bench_parse_options(&o, argc, argv, 2, provider_option) ||
        !emu_init(&env))
        return 2;

    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL ||
        !OSSL_PROVIDER_set_default_search_path(libctx, argv[1]))
        return 1;
    if (config != NULL) {
        if (!OSSL_LIB_CTX_load_config(libctx, config)) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
    } else if (OSSL_PROVIDER_load(libctx, "default") == NULL ||
               OSSL_PROVIDER_load(libctx, SMARTKEY_PROVIDER_NAME) == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    if ((rsa_key = load_key("smartkey:name=bench-rsa")) == NULL ||
        (ec_key = load_key("smartkey:name=bench-ec")) == NULL ||
        (ec_public = tc_public_copy(libctx, ec_key, "provider=default")) ==
            NULL ||
        !bench_encrypt_secret(libctx, rsa_key, cipher, &cipher_len)) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "%s: cannot load the bench keys\n", argv[0]);
        return 1;
    }
    /* the verify ops check one signature of each key, made here */
    ec_sig_len = sizeof(ec_sig);
    rsa_sig_len = sizeof(rsa_sig);
    if ((bench_wanted(&o, "ecdsa-verify") || bench_wanted(&o, "rsa-verify")) &&
        ((rsa_public = tc_public_copy(libctx, rsa_key, "provider=default")) ==
             NULL ||
         !sign_digest(ec_key, ec_sig, &ec_sig_len) ||
         !sign_digest(rsa_key, rsa_sig, &rsa_sig_len))) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "%s: cannot sign with the bench keys\n", argv[0]);
        return 1;
    }

    if (!bench_run_all(&env, &o, ops, sizeof(ops) / sizeof(ops[0]), label,
                       show_errors))
        return 1;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec_public);
    EVP_PKEY_free(rsa_public);
    OSSL_LIB_CTX_free(libctx);
    return 0;
}
