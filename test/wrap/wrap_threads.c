/*
 * 8 threads x 200 server-side wraps through the EVP API share one EVP_PKEY:
 * every wrap succeeds, recovers the subject's bytes with the stand-in
 * private key, and after a warm-up wrap costs exactly one HTTP request
 * (the wrapkey; no session, key-info or size-query request).
 *
 * Usage (run by wrap_threads.sh, which sets SMARTKEY_* and
 * SMARTKEY_TEST_* for the provider and the emulator's counters):
 *   wrap_threads MODULE_DIR WRAPPING_URI SUBJECT_URI STANDIN_PEM KEY_FILE
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include <smartkey/smartkey.h>

#include "test_common.h"

#define THREADS          8
#define WRAPS_PER_THREAD 200

static const char propq[] = "?provider=" SMARTKEY_PROVIDER_NAME;

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *wrapping_key; /* smartkey's, shared by every thread */
static EVP_PKEY *standin_key;  /* the local private half, for checking */
static const char *subject_uri;
static unsigned char expected[64];
static size_t expected_len;

static EVP_PKEY *load_key(const char *uri)
{
    return emu_load_pkey(libctx, propq, uri);
}

/* One wrap as an application does it: a fresh context per operation. */
static int wrap_once(void)
{
    OSSL_PARAM params[4];
    unsigned char wrapped[512], plain[512];
    size_t wrapped_len = 0, plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx, *check;
    int ok;

    tc_wrap_params(params, subject_uri);
    ctx = EVP_PKEY_CTX_new_from_pkey(libctx, wrapping_key, propq);
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, NULL, &wrapped_len, NULL, 0) > 0 &&
         wrapped_len <= sizeof(wrapped) &&
         EVP_PKEY_encrypt(ctx, wrapped, &wrapped_len, NULL, 0) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return 0;

    check = EVP_PKEY_CTX_new_from_pkey(libctx, standin_key, "provider=default");
    params[2] = OSSL_PARAM_construct_end(); /* the default provider's */
    ok = check != NULL && EVP_PKEY_decrypt_init_ex(check, params) > 0 &&
         EVP_PKEY_decrypt(check, plain, &plain_len, wrapped, wrapped_len) > 0 &&
         plain_len == expected_len && memcmp(plain, expected, plain_len) == 0;
    EVP_PKEY_CTX_free(check);
    return ok;
}

static void *worker(void *arg)
{
    int *failures = arg;

    for (int i = 0; i < WRAPS_PER_THREAD; i++)
        if (!wrap_once()) {
            (*failures)++;
            ERR_print_errors_fp(stderr);
        }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[THREADS];
    int failures[THREADS] = {0}, total_failures = 0, passed = 0, failed = 0;
    long requests, wrapkeys;
    emu_env env;

    if (argc != 6) {
        fprintf(stderr,
                "usage: %s MODULE_DIR WRAPPING_URI SUBJECT_URI STANDIN_PEM "
                "KEY_FILE\n",
                argv[0]);
        return 2;
    }
    subject_uri = argv[3];
    if (!emu_init(&env) ||
        !emu_read_file(argv[5], expected, sizeof(expected), &expected_len))
        return 2;
    libctx = emu_provider_libctx(argv[1], 0);
    if (libctx == NULL || (wrapping_key = load_key(argv[2])) == NULL ||
        (standin_key = tc_read_pem_key(libctx, argv[4])) == NULL) {
        ERR_print_errors_fp(stderr);
        printf("0 passed, 1 failed\n");
        return 1;
    }

    /* warm-up: the key lookup, the connection and (auth = auto: at the
       process's third request) the session are set up here */
    if (standin_key != NULL && wrap_once() && wrap_once()) {
        passed++;
        printf("ok   - warm-up wrap recovers the AES key\n");
    } else {
        failed++;
        printf("FAIL - warm-up wrap recovers the AES key\n");
        ERR_print_errors_fp(stderr);
    }

    emu_reset_counters(&env);
    for (int t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, worker, &failures[t]);
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        total_failures += failures[t];
    }
    requests = emu_counter(&env, "requests_total");
    wrapkeys = emu_request_count(&env, "POST /crypto/v1/wrapkey");

#define CHECK(what, cond)                                                      \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
            printf("ok   - %s\n", what);                                       \
        } else {                                                               \
            failed++;                                                          \
            printf("FAIL - %s\n", what);                                       \
        }                                                                      \
    } while (0)

    printf("# %d wraps failed; %ld requests, %ld wrapkey\n", total_failures,
           requests, wrapkeys);
    CHECK("8 threads x 200 wraps all recover the AES key", total_failures == 0);
    CHECK("exactly one wrapkey request per wrap",
          wrapkeys == THREADS * WRAPS_PER_THREAD);
    CHECK("no other request after the warm-up",
          requests == THREADS * WRAPS_PER_THREAD);

    EVP_PKEY_free(wrapping_key);
    EVP_PKEY_free(standin_key);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
