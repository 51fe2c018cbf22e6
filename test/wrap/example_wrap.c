/*
 * The programmatic wrap of docs/wrapping.md: SmartKey wraps the AES key
 * named by SUBJECT_URI under the RSA key WRAPPING_URI with RSA-OAEP
 * SHA-256, and the wrapped bytes are written to OUT_FILE. The provider is
 * configured through the environment (SMARTKEY_API_ENDPOINT,
 * SMARTKEY_API_KEY, SMARTKEY_CA_FILE) or openssl.cnf.
 *
 * Usage: example_wrap MODULE_DIR WRAPPING_URI SUBJECT_URI OUT_FILE
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include <smartkey/smartkey.h>

/* Selects smartkey's cipher whatever the order the providers were loaded
   in: the wrap parameters exist only there. */
static const char propq[] = "?provider=" SMARTKEY_PROVIDER_NAME;

static EVP_PKEY *load_key(OSSL_LIB_CTX *libctx, const char *uri)
{
    OSSL_STORE_CTX *store;
    EVP_PKEY *pkey = NULL;

    store =
        OSSL_STORE_open_ex(uri, libctx, propq, NULL, NULL, NULL, NULL, NULL);
    if (store == NULL)
        return NULL;
    while (pkey == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        else if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PUBKEY)
            pkey = OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return pkey;
}

int main(int argc, char **argv)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *deflt = NULL, *smartkey = NULL;
    EVP_PKEY *wrapping_key = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char *wrapped = NULL;
    size_t wrapped_len = 0;
    FILE *out = NULL;
    int ok = 0;

    if (argc != 5) {
        fprintf(stderr,
                "usage: %s MODULE_DIR WRAPPING_URI SUBJECT_URI OUT_FILE\n",
                argv[0]);
        return 2;
    }
    /* default first: libssl and the rest of the process expect it there */
    if (libctx == NULL ||
        !OSSL_PROVIDER_set_default_search_path(libctx, argv[1]) ||
        (deflt = OSSL_PROVIDER_load(libctx, "default")) == NULL ||
        (smartkey = OSSL_PROVIDER_load(libctx, SMARTKEY_PROVIDER_NAME)) ==
            NULL ||
        (wrapping_key = load_key(libctx, argv[2])) == NULL)
        goto end;

    {
        /* construct_utf8_string: the OSSL_PARAM_utf8_string() initialiser
           would declare the strings empty (its size argument is 0) */
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
                                             OSSL_PKEY_RSA_PAD_MODE_OAEP, 0),
            OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
                                             "SHA256", 0),
            OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
                                             "SHA256", 0),
            OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT,
                                             argv[3], 0),
            OSSL_PARAM_construct_end(),
        };

        ctx = EVP_PKEY_CTX_new_from_pkey(libctx, wrapping_key, propq);
        if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0 ||
            EVP_PKEY_CTX_set_params(ctx, params) <= 0)
            goto end;
    }
    /* empty input: SmartKey supplies the subject's bytes; the size query
       costs no request */
    if (EVP_PKEY_encrypt(ctx, NULL, &wrapped_len, NULL, 0) <= 0 ||
        (wrapped = OPENSSL_malloc(wrapped_len)) == NULL ||
        EVP_PKEY_encrypt(ctx, wrapped, &wrapped_len, NULL, 0) <= 0)
        goto end;

    out = fopen(argv[4], "wb");
    ok = out != NULL && fwrite(wrapped, 1, wrapped_len, out) == wrapped_len;
    if (out != NULL && fclose(out) != 0)
        ok = 0;
    if (ok)
        printf("wrapped %zu bytes\n", wrapped_len);

end:
    if (!ok) {
        fprintf(stderr, "example_wrap: failed\n");
        ERR_print_errors_fp(stderr);
    }
    OPENSSL_free(wrapped);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(wrapping_key);
    OSSL_PROVIDER_unload(smartkey);
    OSSL_PROVIDER_unload(deflt);
    OSSL_LIB_CTX_free(libctx);
    return ok ? 0 : 1;
}
