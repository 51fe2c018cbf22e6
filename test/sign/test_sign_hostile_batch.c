/*
 * Batched signatures that SmartKey answers wrongly (answers.sh, through
 * tamper_proxy.py): THREADS threads sign at once through a provider
 * configured with batch_max_size, so that most signatures share
 * /crypto/v1/keys/batch/sign requests; none may be released.
 *
 * Usage: test-sign-hostile-batch CONFIG URI THREADS PER_THREAD
 *   CONFIG  an openssl.cnf activating default, then smartkey with
 *           batch_max_size (endpoint and API key from the environment)
 * Prints "released: N" (signatures returned to the caller) and
 * "refused as not verifying: M"; exits 0 when the program itself worked.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/store.h>

#include "emu.h"

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *pkey;
static int per_thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int released, refused_as_wrong, refused_otherwise;

/* Whether this thread's error queue (emptied) holds the provider's
   "does not verify" line; anything else is printed. */
static int refused_as_not_verifying(void)
{
    const char *data = NULL;
    unsigned long code;
    int flags = 0, found = 0;

    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if ((flags & ERR_TXT_STRING) != 0 && data != NULL &&
            strstr(data, "does not verify under the key's public key") != NULL)
            found = 1;
        else
            fprintf(stderr, "error %lx: %s\n", code,
                    (flags & ERR_TXT_STRING) != 0 && data != NULL ? data : "");
    }
    return found;
}

static void *signer(void *arg)
{
    const unsigned char message[] = "a batched message";
    unsigned char sig[1024];

    (void)arg;
    for (int i = 0; i < per_thread; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t siglen = sizeof(sig);
        int ok, wrong;

        ok =
            md != NULL &&
            EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, pkey,
                                  NULL) == 1 &&
            EVP_DigestSign(md, sig, &siglen, message, sizeof(message) - 1) == 1;
        EVP_MD_CTX_free(md);
        wrong = refused_as_not_verifying();
        pthread_mutex_lock(&lock);
        if (ok)
            released++;
        else if (wrong)
            refused_as_wrong++;
        else
            refused_otherwise++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[64];
    int count;

    if (argc != 5 || (count = atoi(argv[3])) < 1 || count > 64 ||
        (per_thread = atoi(argv[4])) < 1) {
        fprintf(stderr, "usage: %s CONFIG URI THREADS PER_THREAD\n", argv[0]);
        return 2;
    }
    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_LIB_CTX_load_config(libctx, argv[1]) ||
        (pkey = emu_load_pkey(libctx, NULL, argv[2])) == NULL) {
        ERR_print_errors_fp(stderr);
        return 2;
    }
    for (int i = 0; i < count; i++)
        if (pthread_create(&threads[i], NULL, signer, NULL) != 0)
            return 2;
    for (int i = 0; i < count; i++)
        pthread_join(threads[i], NULL);
    printf("released: %d\nrefused as not verifying: %d\nrefused otherwise: "
           "%d\n",
           released, refused_as_wrong, refused_otherwise);
    EVP_PKEY_free(pkey);
    OSSL_LIB_CTX_free(libctx);
    return 0;
}
