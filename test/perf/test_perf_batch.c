/*
 * Batching (issue #7): with batch_max_size set in the provider's
 * openssl.cnf section, 64 threads signing at once share batch requests
 * (at most 0.1 HTTP requests per signature) and every signature verifies;
 * decryptions share /batch/decrypt requests and every plaintext is right;
 * an operation whose key SmartKey no longer has fails alone while the
 * operations batched with it succeed. Counts only, never timings.
 *
 * Usage (through test/client/with-emulator.sh): test_perf_batch MODULE-DIR
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

#include <smartkey/smartkey.h>

#include "test_common.h"

#define SIGNERS       64
#define SIGNS         20
#define SMALL_SIGNERS 8
/* A network round trip to SmartKey, so that calls overlap as they do in
   production (loopback answers too fast to need batching). */
#define ROUND_TRIP_MS 5

static const unsigned char message[] = "a message to sign";

static emu_env env;
static OSSL_LIB_CTX *libctx;
static EVP_PKEY *ec_key, *gone_key, *ec_public, *rsa_key;
static const unsigned char secret[] = "batch: a secret to decrypt";
static unsigned char cipher[256];
static size_t cipher_len;

static EVP_PKEY *load_key(const char *uri)
{
    return emu_load_pkey(libctx, NULL, uri);
}

/* Signs in SmartKey; checks the signature with the default provider. */
static int sign_and_verify(EVP_PKEY *key)
{
    int ok = tc_sign_and_verify(libctx, key, ec_public, message,
                                sizeof(message) - 1);

    ERR_clear_error();
    return ok;
}

static void oaep(OSSL_PARAM *params)
{
    params[0] = OSSL_PARAM_construct_utf8_string(
        OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_OAEP, 0);
    params[1] = OSSL_PARAM_construct_utf8_string(
        OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
}

static int encrypt_locally(void)
{
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, rsa_key, NULL);
    int ok;

    oaep(params);
    cipher_len = sizeof(cipher);
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, cipher, &cipher_len, secret,
                          sizeof(secret) - 1) > 0;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static void *decrypt_loop(void *arg)
{
    long ok = 0;

    pthread_barrier_wait(arg);
    for (int i = 0; i < SIGNS; i++) {
        OSSL_PARAM params[3];
        unsigned char plain[256];
        size_t plain_len = sizeof(plain);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, rsa_key, NULL);

        oaep(params);
        ok +=
            ctx != NULL && EVP_PKEY_decrypt_init_ex(ctx, params) > 0 &&
            EVP_PKEY_decrypt(ctx, plain, &plain_len, cipher, cipher_len) > 0 &&
            plain_len == sizeof(secret) - 1 &&
            memcmp(plain, secret, plain_len) == 0;
        EVP_PKEY_CTX_free(ctx);
        ERR_clear_error();
    }
    return (void *)ok;
}

typedef struct signer {
    EVP_PKEY *key;
    int count;
    pthread_barrier_t *start;
    int succeeded;
} signer;

static void *sign_loop(void *arg)
{
    signer *s = arg;

    pthread_barrier_wait(s->start);
    for (int i = 0; i < s->count; i++)
        s->succeeded += sign_and_verify(s->key);
    return NULL;
}

/* n threads signing with good_key, plus one with bad_key when not NULL;
   returns the successes of the good ones, *bad_ok those of the bad one. */
static int run_signers(int n, EVP_PKEY *bad_key, int *bad_ok)
{
    pthread_t threads[SIGNERS + 1];
    signer signers[SIGNERS + 1];
    pthread_barrier_t start;
    int total = n + (bad_key != NULL), good = 0;

    pthread_barrier_init(&start, NULL, (unsigned)total);
    for (int i = 0; i < total; i++) {
        signers[i] = (signer){i < n ? ec_key : bad_key, SIGNS, &start, 0};
        if (pthread_create(&threads[i], NULL, sign_loop, &signers[i]) != 0)
            abort();
    }
    for (int i = 0; i < total; i++) {
        pthread_join(threads[i], NULL);
        if (i < n)
            good += signers[i].succeeded;
        else
            *bad_ok = signers[i].succeeded;
    }
    pthread_barrier_destroy(&start);
    return good;
}

static void test_sixty_four_signers_share_batch_requests(void)
{
    const long ops = (long)SIGNERS * SIGNS;
    long requests, batches;
    int good;

    emu_reset_counters(&env);
    good = run_signers(SIGNERS, NULL, NULL);
    requests = emu_counter(&env, "requests_total");
    batches = emu_request_count(&env, "POST /crypto/v1/keys/batch/sign");
    printf("       %ld signatures: %ld requests (%ld batches), %.3f per "
           "signature\n",
           ops, requests, batches, (double)requests / (double)ops);
    tc_check(good == ops, "every batched signature verifies");
    tc_check(requests >= 1 && requests * 10 <= ops,
             "64 signers cost at most 0.1 requests per signature");
}

static void test_concurrent_decryptions_share_batch_requests(void)
{
    pthread_t threads[SMALL_SIGNERS * 2];
    pthread_barrier_t start;
    const long ops = (long)SMALL_SIGNERS * 2 * SIGNS;
    long good = 0, requests, batches;

    emu_reset_counters(&env);
    pthread_barrier_init(&start, NULL, SMALL_SIGNERS * 2);
    for (int i = 0; i < SMALL_SIGNERS * 2; i++)
        if (pthread_create(&threads[i], NULL, decrypt_loop, &start) != 0)
            abort();
    for (int i = 0; i < SMALL_SIGNERS * 2; i++) {
        void *ok;

        pthread_join(threads[i], &ok);
        good += (long)ok;
    }
    pthread_barrier_destroy(&start);
    requests = emu_counter(&env, "requests_total");
    batches = emu_request_count(&env, "POST /crypto/v1/keys/batch/decrypt");
    printf("       %ld decryptions: %ld requests (%ld batches)\n", ops,
           requests, batches);
    tc_check(good == ops, "every batched decryption returns the plaintext");
    tc_check(batches >= 1 && requests * 2 <= ops,
             "16 decrypting threads cost at most 0.5 requests per decryption");
}

static void test_failed_item_fails_only_its_operation(void)
{
    const long ops = (long)SMALL_SIGNERS * SIGNS;
    long batches;
    int good, bad = -1;

    emu_reset_counters(&env);
    good = run_signers(SMALL_SIGNERS, gone_key, &bad);
    batches = emu_request_count(&env, "POST /crypto/v1/keys/batch/sign");
    tc_check(batches >= 1, "signers with a deleted key still share batches");
    tc_check(good == ops, "operations batched with a failing one succeed");
    tc_check(bad == 0, "every operation with the deleted key fails");
}

static int write_config(const char *path, const char *module_dir)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return 0;
    tc_write_config_head(f, module_dir);
    fprintf(f, "%s = 64\n%s = 0.05\n", SMARTKEY_CFG_BATCH_MAX_SIZE,
            SMARTKEY_CFG_BATCH_MAX_WAIT);
    return fclose(f) == 0;
}

int main(int argc, char **argv)
{
    const char *state = getenv("SMARTKEY_TEST_STATE");
    char config[4096], kid[37], gone_kid[37], path[128];

    if (argc != 2 || state == NULL) {
        fprintf(stderr, "usage: %s MODULE-DIR (through with-emulator.sh)\n",
                argv[0]);
        return 2;
    }
    if (!emu_init(&env))
        return 2;
    snprintf(config, sizeof(config), "%s/batch.cnf", state);
    if (!emu_create_key(&env,
                        "{\"name\":\"batch-ec\",\"obj_type\":\"EC\","
                        "\"elliptic_curve\":\"NistP256\",\"key_ops\":"
                        "[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                        kid) ||
        !emu_create_key(&env,
                        "{\"name\":\"batch-gone\",\"obj_type\":\"EC\","
                        "\"elliptic_curve\":\"NistP256\",\"key_ops\":"
                        "[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                        gone_kid) ||
        !emu_create_key(&env,
                        "{\"name\":\"batch-rsa\",\"obj_type\":\"RSA\","
                        "\"key_size\":2048,\"key_ops\":[\"DECRYPT\","
                        "\"ENCRYPT\",\"APPMANAGEABLE\"]}",
                        kid) ||
        !write_config(config, argv[1])) {
        return tc_setup_failed("cannot set up the keys and the configuration");
    }
    tc_use_emulator(&env);

    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_LIB_CTX_load_config(libctx, config) ||
        (ec_key = load_key("smartkey:name=batch-ec")) == NULL ||
        (gone_key = load_key("smartkey:name=batch-gone")) == NULL ||
        (rsa_key = load_key("smartkey:name=batch-rsa")) == NULL ||
        !encrypt_locally() ||
        (ec_public = tc_public_copy(libctx, ec_key, "provider=default")) ==
            NULL) {
        ERR_print_errors_fp(stderr);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    /* the handle stays, SmartKey forgets the key: its items answer 404 */
    snprintf(path, sizeof(path), "/crypto/v1/keys/%s", gone_kid);
    {
        char header[600];

        snprintf(header, sizeof(header), "Basic %s", env.api_key);
        if (emu_request(&env, "DELETE", path, header, NULL, NULL) / 100 != 2) {
            return tc_setup_failed("cannot delete batch-gone");
        }
    }
    if (!tc_set_latency(&env, ROUND_TRIP_MS)) {
        printf("0 passed, 1 failed\n");
        return 1;
    }

    test_sixty_four_signers_share_batch_requests();
    test_concurrent_decryptions_share_batch_requests();
    test_failed_item_fails_only_its_operation();

    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(gone_key);
    EVP_PKEY_free(ec_public);
    EVP_PKEY_free(rsa_key);
    OSSL_LIB_CTX_free(libctx);
    return tc_report();
}
