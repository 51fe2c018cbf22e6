/*
 * The answer to a callout, made by the provider exactly as
 * test/byok/key_service.c and docs/byok/salesforce.md show: an encryption
 * under the BYOK certificate's public key by smartkey's RSA cipher, with the
 * wrap parameters naming the SmartKey key, the Salesforce format, the kid
 * and the nonce. SmartKey makes a new content key for every call; nothing
 * is kept here after the request.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>

#include <smartkey/smartkey.h>

#include "keyservice.h"

static const char propq[] = "?provider=" SMARTKEY_PROVIDER_NAME;

/* The provider's errors that mean "SmartKey cannot answer now". */
static int unavailable(unsigned long e)
{
    const char *lib = ERR_lib_error_string(e);
    int reason = ERR_GET_REASON(e);

    return lib != NULL && strcmp(lib, SMARTKEY_PROVIDER_NAME) == 0 &&
           (reason == SMARTKEY_R_SERVER_UNREACHABLE ||
            reason == SMARTKEY_R_TIMEOUT || reason == SMARTKEY_R_SERVER_BUSY);
}

/* The error queue: the status, and the provider's first message for the
   log (its messages never hold a secret). The queue is emptied. */
static ks_callout_status failure(char *why, size_t why_size)
{
    ks_callout_status status = KS_CALLOUT_FAILED;
    unsigned long e;
    const char *data = NULL;
    int flags = 0, first = 1;

    snprintf(why, why_size, "no error reported");
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if (unavailable(e))
            status = KS_CALLOUT_UNAVAILABLE;
        if (first) {
            char text[256];

            ERR_error_string_n(e, text, sizeof(text));
            snprintf(why, why_size, "%s%s%s", text,
                     (flags & ERR_TXT_STRING) && data != NULL ? ": " : "",
                     (flags & ERR_TXT_STRING) && data != NULL ? data : "");
            first = 0;
        }
    }
    return status;
}

ks_callout_status ks_callout(OSSL_LIB_CTX *libctx, const ks_key *key,
                             const char *key_id, const char *nonce,
                             unsigned char **body, size_t *len, char *why,
                             size_t why_size)
{
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char *answer = NULL;
    size_t answer_len = 0;
    OSSL_PARAM params[] = {
        /* JOSE's RSA-OAEP is SHA-1, OpenSSL's OAEP default */
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
                                         OSSL_PKEY_RSA_PAD_MODE_OAEP, 0),
        OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT, key->uri,
                                         0),
        OSSL_PARAM_construct_utf8_string(
            SMARTKEY_PARAM_WRAP_FORMAT,
            SMARTKEY_WRAP_FORMAT_SALESFORCE_CACHE_ONLY, 0),
        OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_KID,
                                         (char *)key_id, 0),
        OSSL_PARAM_construct_end(),
        OSSL_PARAM_construct_end(),
    };

    if (nonce != NULL)
        params[4] = OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_JTI,
                                                     (char *)nonce, 0);
    ERR_clear_error();
    ctx =
        EVP_PKEY_CTX_new_from_pkey(libctx, X509_get0_pubkey(key->cert), propq);
    /* the size query is a local bound; the second call makes the answer in
       SmartKey and sets its real length */
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_params(ctx, params) <= 0 ||
        EVP_PKEY_encrypt(ctx, NULL, &answer_len, NULL, 0) <= 0 ||
        (answer = OPENSSL_malloc(answer_len)) == NULL ||
        EVP_PKEY_encrypt(ctx, answer, &answer_len, NULL, 0) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        OPENSSL_free(answer);
        return failure(why, why_size);
    }
    EVP_PKEY_CTX_free(ctx);
    *body = answer;
    *len = answer_len;
    return KS_CALLOUT_OK;
}
