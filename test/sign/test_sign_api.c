/*
 * Signing with a SmartKey key through the EVP API the way libssl and the
 * apps drive it. Started by api.sh, which runs an emulator, creates the
 * keys and checks the request counts after each mode. The provider is
 * configured through SMARTKEY_API_ENDPOINT, SMARTKEY_API_KEY and
 * SMARTKEY_CA_FILE; SMARTKEY_TEST_MODULE_DIR holds smartkey.so.
 *
 * Usage: test-sign-api probe URI     libssl's "which digests" probes and an
 *                                    AlgorithmIdentifier; must not sign
 *        test-sign-api sign URI N    N signatures on one EVP_MD_CTX
 *                                    re-initialised without a key, plus one
 *                                    from a copied context; every one is
 *                                    verified with the public key
 * Prints "signatures: K" (the number made) and exits 0 when all checks
 * passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "test_common.h"

static OSSL_LIB_CTX *libctx;
static int failures;

#define EXPECT(cond, ...)                                                      \
    do {                                                                       \
        if (cond) {                                                            \
            printf("ok   - ");                                                 \
        } else {                                                               \
            printf("FAIL - ");                                                 \
            failures++;                                                        \
        }                                                                      \
        printf(__VA_ARGS__);                                                   \
        printf("\n");                                                          \
        if (!(cond))                                                           \
            ERR_print_errors_fp(stdout);                                       \
    } while (0)

/* libssl's probes (docs/openssl-dispatch.md §6): cheap, local, and false for
   digests SmartKey cannot sign with. */
static void probe(EVP_PKEY *pkey)
{
    static const char *usable[] = {"SHA256", "SHA2-384", "sha512", "SHA1"};
    static const char *unusable[] = {"MD5", "SHA512-256", "SHAKE256"};
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    unsigned char algorithm_id[128];
    size_t len = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, algorithm_id,
                                sizeof(algorithm_id)),
        OSSL_PARAM_END,
    };

    for (size_t i = 0; i < sizeof(usable) / sizeof(*usable); i++)
        EXPECT(EVP_PKEY_digestsign_supports_digest(pkey, libctx, usable[i],
                                                   NULL) == 1,
               "the key can sign %s digests", usable[i]);
    for (size_t i = 0; i < sizeof(unusable) / sizeof(*unusable); i++)
        EXPECT(EVP_PKEY_digestsign_supports_digest(pkey, libctx, unusable[i],
                                                   NULL) != 1,
               "the key cannot sign %s digests", unusable[i]);
    ERR_clear_error();

    /* what ASN1_item_sign_ctx asks before signing (docs/openssl-dispatch.md §6)
     */
    EXPECT(EVP_DigestSignInit_ex(md_ctx, NULL, "SHA256", libctx, NULL, pkey,
                                 NULL) == 1 &&
               EVP_PKEY_CTX_get_params(EVP_MD_CTX_get_pkey_ctx(md_ctx),
                                       params) == 1 &&
               (len = params[0].return_size) > 0 && len <= 128,
           "an AlgorithmIdentifier is available before signing (%zu bytes)",
           len);
    EXPECT(EVP_DigestSignFinal(md_ctx, NULL, &len) == 1 &&
               len == (size_t)EVP_PKEY_get_size(pkey),
           "the size query answers the key's maximum signature size");
    EVP_MD_CTX_free(md_ctx);
}

static int verifies(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen,
                    const char *message)
{
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    int ok =
        md_ctx != NULL &&
        EVP_DigestVerifyInit_ex(md_ctx, NULL, "SHA256", libctx, NULL, pkey,
                                NULL) == 1 &&
        EVP_DigestVerify(md_ctx, sig, siglen, (const unsigned char *)message,
                         strlen(message)) == 1;

    EVP_MD_CTX_free(md_ctx);
    return ok;
}

static int sign_many(EVP_PKEY *pkey, int count)
{
    EVP_PKEY *public_key = tc_public_copy(libctx, pkey, NULL);
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new(), *copy = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen;
    int made = 0;
    char message[64];

    EXPECT(public_key != NULL, "the public key exports");
    for (int i = 0; i < count; i++) {
        snprintf(message, sizeof(message), "message %d", i);
        /* after the first signature: re-init without a key, as
           EVP_DigestInit_ex on a signing context does (docs/openssl-dispatch.md
           §6) */
        if (EVP_DigestSignInit_ex(md_ctx, NULL, "SHA256", libctx, NULL,
                                  i == 0 ? pkey : NULL, NULL) != 1 ||
            EVP_DigestSignUpdate(md_ctx, message, strlen(message)) != 1) {
            EXPECT(0, "signing init/update %d", i);
            break;
        }
        siglen = sizeof(sig);
        if (EVP_DigestSignFinal(md_ctx, sig, &siglen) != 1) {
            EXPECT(0, "signature %d", i);
            break;
        }
        made++;
        if (!verifies(public_key, sig, siglen, message)) {
            EXPECT(0, "signature %d verifies", i);
            break;
        }
    }
    EXPECT(made == count, "%d signatures on one re-initialised context", made);

    /* a context copied mid-message signs the same message */
    if (EVP_DigestSignInit_ex(md_ctx, NULL, "SHA256", libctx, NULL, NULL,
                              NULL) == 1 &&
        EVP_DigestSignUpdate(md_ctx, "copied ", 7) == 1 &&
        EVP_MD_CTX_copy_ex(copy, md_ctx) == 1 &&
        EVP_DigestSignUpdate(copy, "context", 7) == 1) {
        siglen = sizeof(sig);
        if (EVP_DigestSignFinal(copy, sig, &siglen) == 1)
            made++;
        EXPECT(verifies(public_key, sig, siglen, "copied context"),
               "a copied context signs what was fed to it");
    } else {
        EXPECT(0, "copying a signing context");
    }
    EVP_MD_CTX_free(copy);
    EVP_MD_CTX_free(md_ctx);
    EVP_PKEY_free(public_key);
    return made;
}

int main(int argc, char **argv)
{
    OSSL_PROVIDER *default_provider, *smartkey_provider;
    EVP_PKEY *pkey;
    int made = 0;

    if (argc < 3 || (strcmp(argv[1], "sign") == 0 && argc < 4)) {
        fprintf(stderr, "usage: %s probe URI | sign URI N\n", argv[0]);
        return 2;
    }
    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_PROVIDER_set_default_search_path(
                              libctx, getenv("SMARTKEY_TEST_MODULE_DIR")))
        return 2;
    /* default first, as every configuration must (docs/openssl-dispatch.md §3)
     */
    default_provider = OSSL_PROVIDER_load(libctx, "default");
    smartkey_provider = OSSL_PROVIDER_load(libctx, "smartkey");
    pkey = emu_load_private_key(libctx, argv[2]);
    EXPECT(default_provider != NULL && smartkey_provider != NULL &&
               pkey != NULL,
           "the key %s loads", argv[2]);
    if (pkey != NULL) {
        if (strcmp(argv[1], "probe") == 0)
            probe(pkey);
        else
            made = sign_many(pkey, atoi(argv[3]));
    }
    printf("signatures: %d\n", made);
    EVP_PKEY_free(pkey);
    OSSL_PROVIDER_unload(smartkey_provider);
    OSSL_PROVIDER_unload(default_provider);
    OSSL_LIB_CTX_free(libctx);
    return failures == 0 ? 0 : 1;
}
