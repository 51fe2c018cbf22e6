/*
 * With batching on, decrypt results pass through batch.c's JSON: every
 * jansson string holding the plaintext must be wiped before it is freed.
 * jansson's allocator is replaced for this process (before any JSON is
 * made) by one that, on free, looks for the plaintext's Base64 at the start
 * of the block (where jansson keeps a string's value). Runs against the
 * emulator (with-emulator.sh): one lone call (the unbatched path of
 * batch.c) and concurrent calls (batches).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include "client.h"
#include "emu.h"

#define THREADS 8

static emu_env env;
static char marker[24];
static size_t marker_len;
static int unwiped; /* freed jansson blocks starting with the plaintext */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static void *track_malloc(size_t size)
{
    return malloc(size);
}

static void track_free(void *p)
{
    if (p != NULL && marker_len > 0 && malloc_usable_size(p) >= marker_len &&
        memcmp(p, marker, marker_len) == 0) {
        pthread_mutex_lock(&count_lock);
        unwiped++;
        pthread_mutex_unlock(&count_lock);
    }
    free(p);
}

typedef struct call {
    sk_client *client;
    sk_decrypt_request req;
    int ok;
} call;

static void *decrypt(void *arg)
{
    call *c = arg;
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    sk_error err;

    c->ok = sk_client_decrypt(c->client, &c->req, &plain, &plain_len, &err);
    if (!c->ok)
        fprintf(stderr, "decrypt: %s\n", err.message);
    OPENSSL_clear_free(plain, plain_len);
    return NULL;
}

static void test_batched_decrypt_plaintexts_are_wiped(void)
{
    unsigned char message[32], cipher[512], b64[64];
    size_t cipher_len = sizeof(cipher);
    sk_client_config cfg = {0};
    sk_key_ref ref = {NULL, NULL};
    sk_key_info *info = NULL;
    const unsigned char *der;
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *ctx;
    sk_client *client;
    pthread_t threads[THREADS];
    call calls[THREADS];
    char kid[37];
    sk_error err;

    CU_ASSERT_FATAL(emu_create_key(
        &env,
        "{\"name\":\"wipe-rsa\",\"obj_type\":\"RSA\",\"key_size\":2048,"
        "\"key_ops\":[\"DECRYPT\",\"ENCRYPT\",\"APPMANAGEABLE\"]}",
        kid));
    cfg.endpoint = env.endpoint;
    cfg.api_key = env.api_key;
    cfg.ca_file = env.ca_file;
    cfg.retries = -1;
    cfg.auth = SK_AUTH_SESSION;
    cfg.batch_max_size = THREADS;
    cfg.batch_max_wait_us = 20000;
    client = sk_client_new(&cfg, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(client);
    ref.kid = kid;
    CU_ASSERT_FATAL(sk_client_key_info(client, &ref, &info, &err) == 1);
    der = info->pub_key;
    pkey = d2i_PUBKEY(NULL, &der, (long)info->pub_key_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pkey);

    CU_ASSERT_FATAL(RAND_bytes(message, sizeof(message)) == 1);
    EVP_EncodeBlock(b64, message, sizeof(message));
    marker_len = 20;
    memcpy(marker, b64, marker_len);
    ctx = EVP_PKEY_CTX_new(pkey, NULL);
    CU_ASSERT_FATAL(
        ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_encrypt(ctx, cipher, &cipher_len, message, sizeof(message)) ==
            1);

    for (int i = 0; i < THREADS; i++) {
        calls[i].client = client;
        calls[i].req = (sk_decrypt_request){
            {kid, NULL}, SK_RSA_OAEP, "SHA256", NULL, 0, cipher, cipher_len};
    }
    /* a lone call: batch.c's unbatched path */
    decrypt(&calls[0]);
    CU_ASSERT(calls[0].ok);
    /* concurrent calls: batches */
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, decrypt, &calls[i]);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CU_ASSERT(calls[i].ok);
    }
    printf("\n  jansson blocks freed holding the plaintext: %d\n", unwiped);
    CU_ASSERT_EQUAL(unwiped, 0);

    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    sk_key_info_free(info);
    sk_client_free(client);
}

int main(void)
{
    CU_pSuite suite;
    unsigned failures;

    /* before any JSON value exists */
    json_set_alloc_funcs(track_malloc, track_free);
    if (!emu_init(&env))
        return 2;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("batch wipe", NULL, NULL);
    CU_add_test(suite, "batched decrypt plaintexts are wiped before free",
                test_batched_decrypt_plaintexts_are_wiped);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}
