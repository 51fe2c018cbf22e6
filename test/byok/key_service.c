/*
 * The heart of a Salesforce cache-only key service in C (docs/byok/
 * salesforce.md): the answer to Salesforce's callout for KEY_ID is the JSON
 * {"kid":...,"jwe":...} that SmartKey's calls and smartkey's assembly
 * produce for the key SUBJECT_URI under the public key of the BYOK
 * certificate CERT_PEM. With NONCE, the JWE header carries it as "jti"
 * (replay detection). The provider is configured through the environment
 * (SMARTKEY_API_ENDPOINT, SMARTKEY_API_KEY, SMARTKEY_CA_FILE) or
 * openssl.cnf.
 *
 * Usage: key_service MODULE_DIR CERT_PEM SUBJECT_URI KEY_ID [NONCE]
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <smartkey/smartkey.h>

/* smartkey's cipher must run the operation: its parameters exist only
   there (docs/wrapping.md). */
static const char propq[] = "?provider=" SMARTKEY_PROVIDER_NAME;

static X509 *read_certificate(OSSL_LIB_CTX *libctx, const char *path)
{
    X509 *cert = X509_new_ex(libctx, NULL);
    FILE *f = fopen(path, "r");

    if (cert == NULL || f == NULL ||
        PEM_read_X509(f, &cert, NULL, NULL) == NULL) {
        X509_free(cert);
        cert = NULL;
    }
    if (f != NULL)
        fclose(f);
    return cert;
}

int main(int argc, char **argv)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *deflt = NULL, *smartkey = NULL;
    X509 *cert = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char *answer = NULL;
    size_t answer_len = 0;
    int ok = 0;

    if (argc != 5 && argc != 6) {
        fprintf(stderr,
                "usage: %s MODULE_DIR CERT_PEM SUBJECT_URI KEY_ID [NONCE]\n",
                argv[0]);
        return 2;
    }
    if (libctx == NULL ||
        !OSSL_PROVIDER_set_default_search_path(libctx, argv[1]) ||
        (deflt = OSSL_PROVIDER_load(libctx, "default")) == NULL ||
        (smartkey = OSSL_PROVIDER_load(libctx, SMARTKEY_PROVIDER_NAME)) ==
            NULL ||
        (cert = read_certificate(libctx, argv[2])) == NULL)
        goto end;

    {
        /* RSA-OAEP of JOSE is SHA-1, OpenSSL's OAEP default: only the
           padding needs saying */
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
                                             OSSL_PKEY_RSA_PAD_MODE_OAEP, 0),
            OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT,
                                             argv[3], 0),
            OSSL_PARAM_construct_utf8_string(
                SMARTKEY_PARAM_WRAP_FORMAT,
                SMARTKEY_WRAP_FORMAT_SALESFORCE_CACHE_ONLY, 0),
            OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_KID, argv[4],
                                             0),
            OSSL_PARAM_construct_end(),
            OSSL_PARAM_construct_end(),
        };

        if (argc == 6)
            params[4] = OSSL_PARAM_construct_utf8_string(
                SMARTKEY_PARAM_WRAP_JTI, argv[5], 0);
        ctx = EVP_PKEY_CTX_new_from_pkey(libctx, X509_get0_pubkey(cert), propq);
        if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0 ||
            EVP_PKEY_CTX_set_params(ctx, params) <= 0)
            goto end;
    }
    /* the size query is a local bound; the artifact is made by the second
       call, which sets the real length */
    if (EVP_PKEY_encrypt(ctx, NULL, &answer_len, NULL, 0) <= 0 ||
        (answer = OPENSSL_malloc(answer_len)) == NULL ||
        EVP_PKEY_encrypt(ctx, answer, &answer_len, NULL, 0) <= 0)
        goto end;
    ok = fwrite(answer, 1, answer_len, stdout) == answer_len &&
         fflush(stdout) == 0;

end:
    if (!ok) {
        fprintf(stderr, "key_service: failed\n");
        ERR_print_errors_fp(stderr);
    }
    OPENSSL_free(answer);
    EVP_PKEY_CTX_free(ctx);
    X509_free(cert);
    OSSL_PROVIDER_unload(smartkey);
    OSSL_PROVIDER_unload(deflt);
    OSSL_LIB_CTX_free(libctx);
    return ok ? 0 : 1;
}
