/*
 * OpenSSL 3.5's message-signing API with keys held in SmartKey: signature
 * algorithms named with their digest ("RSA-SHA256", "ECDSA-SHA384") and
 * "ED25519", fetched from smartkey, through EVP_PKEY_sign_message_init
 * (update/final, and one-shot EVP_PKEY_sign of the message),
 * EVP_PKEY_sign_init_ex2 (the caller hashed) and
 * EVP_PKEY_verify_message_init. Every signature is checked with the
 * default provider's copy of the public key. Started by message_sign.sh,
 * which runs an emulator, creates the keys and counts the sign requests.
 *
 * Usage: test-message-sign RSA_URI EC_URI ED25519_URI
 * Exits 77 (skipped) where OpenSSL is older than 3.5, 0 when every check
 * passed; prints "signatures: N" (the number made in SmartKey).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#include "test_common.h"

#define SKIPPED 77

#if OPENSSL_VERSION_NUMBER >= 0x30500000L &&                                   \
    defined(OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT)

static OSSL_LIB_CTX *libctx;
static int signatures;

static const unsigned char message[] =
    "a message signed through OpenSSL 3.5's message-signing API";

/* The default provider verifies sig over message with algorithm alg. */
static int verifies(EVP_PKEY *public_key, const char *alg,
                    const unsigned char *sig, size_t siglen)
{
    EVP_SIGNATURE *local = EVP_SIGNATURE_fetch(libctx, alg, "provider=default");
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(libctx, public_key, "provider=default");
    int ok = local != NULL && ctx != NULL &&
             EVP_PKEY_verify_message_init(ctx, local, NULL) == 1 &&
             EVP_PKEY_verify(ctx, sig, siglen, message, sizeof(message)) == 1;

    EVP_PKEY_CTX_free(ctx);
    EVP_SIGNATURE_free(local);
    return ok;
}

/* smartkey's implementation of alg: what an application holding a
   provider-bound key fetches (the default provider's cannot use it). */
static EVP_SIGNATURE *smartkey_signature(const char *alg)
{
    return EVP_SIGNATURE_fetch(libctx, alg, "provider=smartkey");
}

/* EVP_PKEY_sign_message_init + update (in two pieces) + final. */
static int sign_streaming(EVP_PKEY *key, EVP_SIGNATURE *alg, unsigned char *sig,
                          size_t *siglen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    size_t half = sizeof(message) / 2;
    int ok = ctx != NULL && EVP_PKEY_sign_message_init(ctx, alg, NULL) == 1 &&
             EVP_PKEY_sign_message_update(ctx, message, half) == 1 &&
             EVP_PKEY_sign_message_update(ctx, message + half,
                                          sizeof(message) - half) == 1 &&
             EVP_PKEY_sign_message_final(ctx, sig, siglen) == 1;

    EVP_PKEY_CTX_free(ctx);
    signatures += ok;
    return ok;
}

/* EVP_PKEY_sign_message_init + one-shot EVP_PKEY_sign of the message. */
static int sign_one_shot(EVP_PKEY *key, EVP_SIGNATURE *alg, unsigned char *sig,
                         size_t *siglen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    size_t size = 0;
    int ok = ctx != NULL && EVP_PKEY_sign_message_init(ctx, alg, NULL) == 1 &&
             EVP_PKEY_sign(ctx, NULL, &size, message, sizeof(message)) == 1 &&
             size <= *siglen &&
             EVP_PKEY_sign(ctx, sig, siglen, message, sizeof(message)) == 1;

    EVP_PKEY_CTX_free(ctx);
    signatures += ok;
    return ok;
}

/* EVP_PKEY_sign_init_ex2 with the algorithm: the caller hashed. */
static int sign_digest(EVP_PKEY *key, EVP_SIGNATURE *alg, const char *md,
                       unsigned char *sig, size_t *siglen)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    EVP_MD *digest_md = EVP_MD_fetch(libctx, md, NULL);
    int ok = ctx != NULL && digest_md != NULL &&
             EVP_Digest(message, sizeof(message), digest, &digest_len,
                        digest_md, NULL) == 1 &&
             EVP_PKEY_sign_init_ex2(ctx, alg, NULL) == 1 &&
             EVP_PKEY_sign(ctx, sig, siglen, digest, digest_len) == 1;

    EVP_MD_free(digest_md);
    EVP_PKEY_CTX_free(ctx);
    signatures += ok;
    return ok;
}

/* EVP_PKEY_verify_message_init on the SmartKey key itself (local). */
static int verify_with_key(EVP_PKEY *key, EVP_SIGNATURE *alg,
                           const unsigned char *sig, size_t siglen,
                           const unsigned char *msg, size_t msglen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_message_init(ctx, alg, NULL) == 1 &&
             EVP_PKEY_verify(ctx, sig, siglen, msg, msglen) == 1;

    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static void exercise(const char *uri, const char *alg, const char *md)
{
    EVP_PKEY *key = emu_load_private_key(libctx, uri);
    EVP_PKEY *public_key =
        key != NULL ? tc_public_copy(libctx, key, NULL) : NULL;
    EVP_SIGNATURE *sigalg = smartkey_signature(alg);
    unsigned char sig[1024];
    size_t siglen;

    tc_check(key != NULL && public_key != NULL, "%s: the key loads", uri);
    tc_check(sigalg != NULL, "smartkey offers %s", alg);
    if (key == NULL || public_key == NULL || sigalg == NULL)
        goto done;

    /* EdDSA is one-shot only, in OpenSSL's own provider too */
    if (md != NULL) {
        siglen = sizeof(sig);
        tc_check(sign_streaming(key, sigalg, sig, &siglen) &&
                     verifies(public_key, alg, sig, siglen),
                 "%s: sign_message_init/update/final makes a signature "
                 "that verifies",
                 alg);
    }
    siglen = sizeof(sig);
    tc_check(sign_one_shot(key, sigalg, sig, &siglen) &&
                 verifies(public_key, alg, sig, siglen),
             "%s: one-shot EVP_PKEY_sign of the message verifies", alg);
    tc_check(
        verify_with_key(key, sigalg, sig, siglen, message, sizeof(message)),
        "%s: verify_message_init with the SmartKey key accepts it", alg);
    tc_check(!verify_with_key(key, sigalg, sig, siglen, message,
                              sizeof(message) - 1),
             "%s: and refuses it for another message", alg);
    if (md != NULL) {
        siglen = sizeof(sig);
        tc_check(sign_digest(key, sigalg, md, sig, &siglen) &&
                     verifies(public_key, alg, sig, siglen),
                 "%s: sign_init_ex2 of a %s digest verifies as a message "
                 "signature",
                 alg, md);
    }
done:
    EVP_SIGNATURE_free(sigalg);
    EVP_PKEY_free(public_key);
    EVP_PKEY_free(key);
    ERR_print_errors_fp(stdout);
}

int main(int argc, char **argv)
{
    const char *module_dir = getenv("SMARTKEY_TEST_MODULE_DIR");

    if (argc != 4 || module_dir == NULL) {
        fprintf(stderr,
                "usage: %s RSA_URI EC_URI ED25519_URI "
                "(SMARTKEY_TEST_MODULE_DIR set)\n",
                argv[0]);
        return 2;
    }
    if (OpenSSL_version_num() < 0x30500000L) {
        printf("skip - OpenSSL %s has no message-signing API for providers "
               "(3.5 and later)\n",
               OpenSSL_version(OPENSSL_VERSION_STRING));
        return SKIPPED;
    }
    libctx = tc_provider_libctx(module_dir);
    if (libctx == NULL)
        return tc_setup_failed("cannot load the providers");

    exercise(argv[1], "RSA-SHA256", "SHA2-256");
    exercise(argv[1], "RSA-SHA2-512", "SHA2-512");
    exercise(argv[2], "ECDSA-SHA384", "SHA2-384");
    exercise(argv[2], "ECDSA-SHA3-256", "SHA3-256");
    exercise(argv[3], "ED25519", NULL);

    printf("signatures: %d\n", signatures);
    OSSL_LIB_CTX_free(libctx);
    return tc_report();
}

#else

int main(void)
{
    printf("skip - built with OpenSSL %s headers: no message-signing API "
           "(3.5 and later)\n",
           OPENSSL_VERSION_TEXT);
    return SKIPPED;
}

#endif
