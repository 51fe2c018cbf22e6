/*
 * libFuzzer harness: OSSL_PARAM arrays as an application (or a library
 * passing its caller's values along) may hand them to smartkey's
 * set_ctx_params: the RSA cipher (through the BYOK wrapper), the RSA
 * signature, RSA and EC key generation and the store. The provider is
 * linked in and added as a built-in provider, so every call goes through
 * OpenSSL's dispatch; no operation here sends a request. Every value is
 * copied into a buffer of exactly its data_size (text without a NUL), so
 * ASan catches any read past a parameter's declared size.
 *
 * Input: one byte choosing the operation, then records of
 *   key index (1), type (1), flags (1; bit 0: NULL data), length (2, LE),
 *   value (length bytes)
 * with the key index taken modulo the operation's settable list plus two
 * unknown names.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include <smartkey/smartkey.h>

#define MAX_PARAMS 8
#define MAX_VALUE  8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
OSSL_provider_init_fn OSSL_provider_init; /* provider/provider.c */

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *local_rsa; /* a public key smartkey imports for wrapping */

static const char propq[] = "provider=" SMARTKEY_PROVIDER_NAME;

static void init(void)
{
    EVP_PKEY *pair = NULL;
    unsigned char *spki = NULL;
    const unsigned char *p;
    int spki_len = 0;

    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL ||
        !OSSL_PROVIDER_add_builtin(libctx, SMARTKEY_PROVIDER_NAME,
                                   OSSL_provider_init) ||
        OSSL_PROVIDER_load(libctx, "default") == NULL ||
        OSSL_PROVIDER_load(libctx, SMARTKEY_PROVIDER_NAME) == NULL ||
        (pair = EVP_PKEY_Q_keygen(libctx, "provider=default", "RSA",
                                  (size_t)1024)) == NULL ||
        (spki_len = i2d_PUBKEY(pair, &spki)) <= 0) {
        ERR_print_errors_fp(stderr);
        abort();
    }
    /* smartkey takes the public half only (its RSA import) */
    p = spki;
    local_rsa = d2i_PUBKEY_ex(NULL, &p, spki_len, libctx, "provider=default");
    OPENSSL_free(spki);
    EVP_PKEY_free(pair);
    if (local_rsa == NULL) {
        ERR_print_errors_fp(stderr);
        abort();
    }
}

enum { OP_CIPHER, OP_VERIFY, OP_RSA_KEYGEN, OP_EC_KEYGEN, OP_STORE, OP_COUNT };

static const unsigned int types[] = {
    OSSL_PARAM_UTF8_STRING,  OSSL_PARAM_INTEGER,  OSSL_PARAM_UNSIGNED_INTEGER,
    OSSL_PARAM_OCTET_STRING, OSSL_PARAM_UTF8_PTR, OSSL_PARAM_OCTET_PTR,
    OSSL_PARAM_REAL,
};

static const OSSL_PARAM store_settable[] = {
    OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
    OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_INPUT_TYPE, NULL, 0),
    OSSL_PARAM_END,
};

static const char *key_name(const OSSL_PARAM *settable, unsigned index)
{
    static const char *const unknown[] = {"unknown", ""};
    size_t n = 0;

    while (settable != NULL && settable[n].key != NULL)
        n++;
    index %= (unsigned)(n + 2);
    return index < n ? settable[index].key : unknown[index - n];
}

/* The EVP_PKEY_CTX whose parameters operation `op` sets (NULL for the
   store, which takes them on open); 0 when this build cannot run `op`. */
static int make_ctx(int op, EVP_PKEY_CTX **out)
{
    EVP_PKEY_CTX *ctx = NULL;

    switch (op) {
    case OP_CIPHER:
        ctx = EVP_PKEY_CTX_new_from_pkey(libctx, local_rsa, propq);
        if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0)
            abort();
        break;
    case OP_VERIFY:
        ctx = EVP_PKEY_CTX_new_from_pkey(libctx, local_rsa, propq);
        if (ctx == NULL || EVP_PKEY_verify_init(ctx) <= 0) {
            /* not every build takes a foreign key for verification */
            EVP_PKEY_CTX_free(ctx);
            ERR_clear_error();
            return 0;
        }
        break;
    case OP_RSA_KEYGEN:
    case OP_EC_KEYGEN:
        ctx = EVP_PKEY_CTX_new_from_name(
            libctx, op == OP_RSA_KEYGEN ? "RSA" : "EC", propq);
        if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0)
            abort();
        break;
    default:
        break;
    }
    *out = ctx;
    return 1;
}

/* Decodes the input's records (from data + 1) into params, each value in
   a buffer of exactly its size (values[], freed by the caller); returns
   how many. */
static size_t read_params(const uint8_t *data, size_t size,
                          const OSSL_PARAM *settable, OSSL_PARAM *params,
                          void **values, void **pointers)
{
    size_t n = 0, at = 1;

    while (n < MAX_PARAMS && at + 5 <= size) {
        const char *key = key_name(settable, data[at]);
        unsigned int type =
            types[data[at + 1] % (sizeof(types) / sizeof(*types))];
        int null_data = data[at + 2] & 1;
        size_t len = (size_t)data[at + 3] | ((size_t)data[at + 4] << 8);

        at += 5;
        if (len > size - at)
            len = size - at;
        if (len > MAX_VALUE)
            len = MAX_VALUE;
        /* exactly len bytes: nothing to read past them */
        values[n] = malloc(len > 0 ? len : 1);
        if (values[n] == NULL)
            break;
        memcpy(values[n], data + at, len);
        at += len;
        if (type == OSSL_PARAM_UTF8_PTR || type == OSSL_PARAM_OCTET_PTR) {
            pointers[n] = values[n];
            params[n] = (OSSL_PARAM){key, type, null_data ? NULL : &pointers[n],
                                     len, 0};
        } else {
            params[n] =
                (OSSL_PARAM){key, type, null_data ? NULL : values[n], len, 0};
        }
        n++;
    }
    params[n] = OSSL_PARAM_construct_end();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    OSSL_PARAM params[MAX_PARAMS + 1];
    void *values[MAX_PARAMS] = {0};
    void *pointers[MAX_PARAMS] = {0}; /* for the *_PTR types */
    const OSSL_PARAM *settable = store_settable;
    EVP_PKEY_CTX *ctx = NULL;
    size_t n;

    if (libctx == NULL)
        init();
    if (size < 1)
        return 0;
    if (!make_ctx(data[0] % OP_COUNT, &ctx))
        return 0;
    if (ctx != NULL)
        settable = EVP_PKEY_CTX_settable_params(ctx);
    n = read_params(data, size, settable, params, values, pointers);

    if (ctx != NULL) {
        (void)EVP_PKEY_CTX_set_params(ctx, params);
        EVP_PKEY_CTX_free(ctx);
    } else {
        /* open only: a load would make a request */
        OSSL_STORE_CTX *store =
            OSSL_STORE_open_ex("smartkey://name=fuzz", libctx, NULL, NULL, NULL,
                               params, NULL, NULL);

        OSSL_STORE_close(store);
    }
    ERR_clear_error();
    for (size_t i = 0; i < n; i++)
        free(values[i]);
    return 0;
}
