#include "signers.h"

#include <stdio.h>

#include "test_common.h"

OSSL_LIB_CTX *libctx;
EVP_PKEY *protected_key, *protected_public, *free_key, *free_public;

static const char *load_all(const char *module_dir)
{
    libctx = tc_provider_libctx(module_dir);
    if (libctx == NULL)
        return "cannot load the providers";
    protected_key = emu_load_pkey(libctx, NULL, "smartkey:name=signer");
    free_key = emu_load_pkey(libctx, NULL, "smartkey:name=free-signer");
    if (protected_key == NULL || free_key == NULL)
        return "cannot load the keys";
    protected_public =
        tc_public_copy(libctx, protected_key, "provider=default");
    free_public = tc_public_copy(libctx, free_key, "provider=default");
    if (protected_public == NULL || free_public == NULL)
        return "cannot copy the public keys";
    return NULL;
}

int signers_load(int argc, char **argv)
{
    const char *why;

    if (argc != 2) {
        fprintf(stderr, "usage: %s MODULE_DIR\n", argv[0]);
        return tc_setup_failed("wrong arguments");
    }
    why = load_all(argv[1]);
    return why == NULL ? 0 : tc_setup_failed(why);
}

void signers_free(void)
{
    EVP_PKEY_free(protected_key);
    EVP_PKEY_free(protected_public);
    EVP_PKEY_free(free_key);
    EVP_PKEY_free(free_public);
    OSSL_LIB_CTX_free(libctx);
}
