/*
 * Parameters never crash (issue 12, item 5): for every operation of the
 * provider, every parameter its settable list declares (queried through the
 * EVP/OSSL_STORE API, as an application sees it) is sent with NULL data,
 * with each wrong type and oversized (1 MB text or octets, a 1 MB
 * integer). Each must be refused with an error on the queue that names the
 * parameter: no crash, no value taken silently.
 *
 * Usage (run by params.sh with SMARTKEY_* set and a private emulator):
 *   test_params MODULE_DIR RSA_URI EC_URI
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include <smartkey/smartkey.h>

#include "emu.h"

#define HUGE_SIZE (1024 * 1024)

static int passed, failed, checked_params;
static unsigned char *huge;

/* The declared-text parameters that take an int as well (pad-mode from
   EVP_PKEY_CTX_set_rsa_padding, saltlen from libssl). */
static int takes_int_too(const char *name)
{
    return strcmp(name, OSSL_ASYM_CIPHER_PARAM_PAD_MODE) == 0 ||
           strcmp(name, OSSL_SIGNATURE_PARAM_PSS_SALTLEN) == 0;
}

static int is_integer(unsigned int type)
{
    return type == OSSL_PARAM_INTEGER || type == OSSL_PARAM_UNSIGNED_INTEGER;
}

/* Whether a value of type `sent` is a legitimate value of `declared`. */
static int compatible(const OSSL_PARAM *declared, unsigned int sent)
{
    if (sent == declared->data_type)
        return 1;
    if (is_integer(declared->data_type))
        return is_integer(sent);
    return declared->data_type == OSSL_PARAM_UTF8_STRING && is_integer(sent) &&
           takes_int_too(declared->key);
}

typedef int (*set_fn)(void *target, const OSSL_PARAM params[]);

/* The last error's text and data, to check it names the parameter. */
static int error_names(const char *name)
{
    const char *data = NULL;
    int flags = 0;
    unsigned long code = ERR_peek_last_error_data(&data, &flags);
    char text[256];

    if (code == 0)
        return 0;
    ERR_error_string_n(code, text, sizeof(text));
    return strstr(text, name) != NULL ||
           (data != NULL && (flags & ERR_TXT_STRING) != 0 &&
            strstr(data, name) != NULL);
}

static void send_bad(const char *operation, set_fn set, void *target,
                     const OSSL_PARAM *declared, const char *variant,
                     OSSL_PARAM bad)
{
    OSSL_PARAM params[2] = {bad, OSSL_PARAM_END};
    int rc, queued, named;

    ERR_clear_error();
    rc = set(target, params);
    queued = ERR_peek_error() != 0;
    named = error_names(declared->key);
    if (rc <= 0 && queued && named) {
        passed++;
    } else {
        failed++;
        printf("FAIL - %s: '%s' %s: rc=%d, error queued %d, names the "
               "parameter %d\n",
               operation, declared->key, variant, rc, queued, named);
        ERR_print_errors_fp(stdout);
    }
    ERR_clear_error();
}

/* Every bad form of every settable parameter of one operation. */
static void bombard(const char *operation, set_fn set, void *target,
                    const OSSL_PARAM *settable)
{
    static const unsigned int types[] = {
        OSSL_PARAM_UTF8_STRING, OSSL_PARAM_INTEGER, OSSL_PARAM_UNSIGNED_INTEGER,
        OSSL_PARAM_OCTET_STRING};
    int before = failed, count = 0;
    int one = 1;
    unsigned int uone = 1;

    if (settable == NULL || settable->key == NULL) {
        failed++;
        printf("FAIL - %s: no settable parameters to test\n", operation);
        return;
    }
    for (const OSSL_PARAM *d = settable; d->key != NULL; d++, count++) {
        OSSL_PARAM bad;
        char variant[80];

        /* NULL data, in the declared type and (text+int) as an int */
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            if (!compatible(d, types[t]))
                continue;
            bad = (OSSL_PARAM){d->key, types[t], NULL,
                               is_integer(types[t]) ? sizeof(int) : 8, 0};
            snprintf(variant, sizeof(variant), "with NULL data (type %u)",
                     types[t]);
            send_bad(operation, set, target, d, variant, bad);
        }
        /* each wrong type, with a plausible value */
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            if (compatible(d, types[t]))
                continue;
            switch (types[t]) {
            case OSSL_PARAM_UTF8_STRING:
                bad = OSSL_PARAM_construct_utf8_string(d->key, "1", 0);
                break;
            case OSSL_PARAM_INTEGER:
                bad = OSSL_PARAM_construct_int(d->key, &one);
                break;
            case OSSL_PARAM_UNSIGNED_INTEGER:
                bad = OSSL_PARAM_construct_uint(d->key, &uone);
                break;
            default:
                bad = OSSL_PARAM_construct_octet_string(d->key, "\x01\x02", 2);
                break;
            }
            snprintf(variant, sizeof(variant), "of the wrong type %u",
                     types[t]);
            send_bad(operation, set, target, d, variant, bad);
        }
        /* oversized: 1 MB of text, octets or integer */
        bad = (OSSL_PARAM){d->key, d->data_type, huge, HUGE_SIZE, 0};
        send_bad(operation, set, target, d, "of 1 MB", bad);
        checked_params++;
    }
    if (failed == before) {
        passed++;
        printf("ok   - %s: %d parameters refused with NULL data, wrong "
               "types and 1 MB values\n",
               operation, count);
    }
}

static int pkey_ctx_set(void *target, const OSSL_PARAM params[])
{
    return EVP_PKEY_CTX_set_params(target, params);
}

typedef enum op {
    OP_ENCRYPT,
    OP_DECRYPT,
    OP_SIGN,
    OP_VERIFY,
    OP_DIGEST_SIGN,
    OP_KEYGEN
} op;

static void pkey_operation(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                           const char *keygen_name, op operation,
                           const char *what)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_MD_CTX *md = NULL;
    int ok = 0;

    /* the operations started on a context made from the key */
    static int (*const key_init[])(EVP_PKEY_CTX *) = {
        [OP_ENCRYPT] = EVP_PKEY_encrypt_init,
        [OP_DECRYPT] = EVP_PKEY_decrypt_init,
        [OP_SIGN] = EVP_PKEY_sign_init,
        [OP_VERIFY] = EVP_PKEY_verify_init,
    };

    switch (operation) {
    case OP_ENCRYPT:
    case OP_DECRYPT:
    case OP_SIGN:
    case OP_VERIFY:
        ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
        ok = ctx != NULL && key_init[operation](ctx) > 0;
        break;
    case OP_DIGEST_SIGN:
        md = EVP_MD_CTX_new();
        ok = md != NULL && EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx,
                                                 NULL, key, NULL) > 0;
        break;
    case OP_KEYGEN:
        ctx = EVP_PKEY_CTX_new_from_name(libctx, keygen_name,
                                         "provider=" SMARTKEY_PROVIDER_NAME);
        ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) > 0;
        break;
    }
    if (!ok) {
        failed++;
        printf("FAIL - %s: cannot set up the operation\n", what);
        ERR_print_errors_fp(stdout);
    } else {
        EVP_PKEY_CTX *pctx = md != NULL ? EVP_MD_CTX_get_pkey_ctx(md) : ctx;
        const OSSL_PARAM *settable = EVP_PKEY_CTX_settable_params(pctx);

        bombard(what, pkey_ctx_set, pctx, settable);
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_MD_CTX_free(md);
}

/*
 * The store's parameters arrive through OSSL_STORE_open_ex(). A store that
 * refuses them there makes OpenSSL return a context holding a closed
 * loader (OSSL_STORE_close() then crashes), so smartkey's store reports a
 * bad parameter at the first load, before any request: the open must
 * succeed and the load fail.
 */
static OSSL_LIB_CTX *store_libctx;
static const char *store_uri;

static int store_open_with(void *target, const OSSL_PARAM params[])
{
    OSSL_STORE_CTX *store = OSSL_STORE_open_ex(store_uri, store_libctx, NULL,
                                               NULL, NULL, params, NULL, NULL);
    OSSL_STORE_INFO *info;

    (void)target;
    if (store == NULL)
        return 2; /* a refusal at open: unsafe with OpenSSL (a failure) */
    info = OSSL_STORE_load(store);
    OSSL_STORE_INFO_free(info);
    OSSL_STORE_close(store);
    return info != NULL;
}

int main(int argc, char **argv)
{
    OSSL_LIB_CTX *libctx;
    OSSL_STORE_LOADER *loader;
    EVP_PKEY *rsa, *ec, *rsa_public;
    char public_uri[512];

    if (argc != 4) {
        fprintf(stderr, "usage: %s MODULE_DIR RSA_URI EC_URI\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    huge = malloc(HUGE_SIZE + 1);
    libctx = OSSL_LIB_CTX_new();
    if (huge == NULL || libctx == NULL ||
        !OSSL_PROVIDER_set_default_search_path(libctx, argv[1]) ||
        OSSL_PROVIDER_load(libctx, "default") == NULL ||
        OSSL_PROVIDER_load(libctx, SMARTKEY_PROVIDER_NAME) == NULL) {
        ERR_print_errors_fp(stdout);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    /* text that is 1 MB long and NUL-terminated; as an integer, 1 MB of
       0x41 bytes */
    memset(huge, 'A', HUGE_SIZE);
    huge[HUGE_SIZE] = '\0';
    snprintf(public_uri, sizeof(public_uri), "%s;type=public", argv[2]);
    rsa = emu_load_pkey(libctx, NULL, argv[2]);
    ec = emu_load_pkey(libctx, NULL, argv[3]);
    rsa_public = emu_load_any_key(libctx, NULL, public_uri);
    if (rsa == NULL || ec == NULL || rsa_public == NULL) {
        ERR_print_errors_fp(stdout);
        printf("FAIL - loading the test keys\n0 passed, 1 failed\n");
        return 1;
    }

    pkey_operation(libctx, rsa, NULL, OP_ENCRYPT, "RSA cipher, encrypt");
    pkey_operation(libctx, rsa, NULL, OP_DECRYPT, "RSA cipher, decrypt");
    pkey_operation(libctx, rsa_public, NULL, OP_ENCRYPT,
                   "RSA cipher, encrypt with a public key");
    pkey_operation(libctx, rsa, NULL, OP_SIGN, "RSA signature, sign");
    pkey_operation(libctx, rsa, NULL, OP_DIGEST_SIGN,
                   "RSA signature, digest-sign");
    pkey_operation(libctx, rsa_public, NULL, OP_VERIFY,
                   "RSA signature, verify");
    pkey_operation(libctx, ec, NULL, OP_SIGN, "ECDSA signature, sign");
    pkey_operation(libctx, ec, NULL, OP_DIGEST_SIGN,
                   "ECDSA signature, digest-sign");
    pkey_operation(libctx, ec, NULL, OP_VERIFY, "ECDSA signature, verify");
    pkey_operation(libctx, NULL, "RSA", OP_KEYGEN, "RSA key generation");
    pkey_operation(libctx, NULL, "EC", OP_KEYGEN, "EC key generation");

    /* no API lists a store's settable parameters in 3.0: the ones
       OSSL_STORE_open_ex() sends (docs/openssl-dispatch.md §1) */
    loader = OSSL_STORE_LOADER_fetch(libctx, SMARTKEY_URI_SCHEME, NULL);
    if (loader == NULL) {
        failed++;
        printf("FAIL - fetching the smartkey store\n");
    } else {
        static const OSSL_PARAM store_settable[] = {
            OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
            OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_PROPERTIES, NULL, 0),
            OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_INPUT_TYPE, NULL, 0),
            OSSL_PARAM_END,
        };

        store_libctx = libctx;
        store_uri = argv[2];
        bombard("store", store_open_with, NULL, store_settable);
        OSSL_STORE_LOADER_free(loader);
    }

    printf("# %d parameters checked\n", checked_params);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa_public);
    OSSL_LIB_CTX_free(libctx);
    free(huge);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
