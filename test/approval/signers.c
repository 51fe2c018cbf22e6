#include "signers.h"

#include <openssl/store.h>

#include "test_common.h"

OSSL_LIB_CTX *libctx;
EVP_PKEY *protected_key, *protected_public, *free_key, *free_public;

static EVP_PKEY *load(const char *uri)
{
    OSSL_STORE_CTX *store =
        OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *key = NULL;

    while (store != NULL && key == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            key = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return key;
}

const char *signers_load(const char *module_dir)
{
    libctx = tc_provider_libctx(module_dir);
    if (libctx == NULL)
        return "cannot load the providers";
    protected_key = load("smartkey:name=signer");
    free_key = load("smartkey:name=free-signer");
    if (protected_key == NULL || free_key == NULL)
        return "cannot load the keys";
    protected_public =
        tc_public_copy(libctx, protected_key, "provider=default");
    free_public = tc_public_copy(libctx, free_key, "provider=default");
    if (protected_public == NULL || free_public == NULL)
        return "cannot copy the public keys";
    return NULL;
}
