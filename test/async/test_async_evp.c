/*
 * The provider inside OpenSSL ASYNC jobs, through the EVP API as TLS
 * servers reach it (issue 13): 100 jobs in one thread sign with a SmartKey
 * EC key (EVP_DigestSign) and 100 decrypt with a SmartKey RSA key
 * (EVP_PKEY_decrypt, OAEP); each pauses on its wait fd and is resumed by a
 * minimal event loop; every result checks out locally, each costs exactly
 * one request, and requests overlap (the emulator, 20 ms late, saw more
 * than one in flight). Then a job abandoned while its signature is in
 * flight: its wait context is freed, the late answer is dropped (ASan:
 * no use after free, no leak), and the provider goes on working.
 * Usage (with-emulator.sh --latency-ms 20 --): test_async_evp MODULE-DIR
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <smartkey/smartkey.h>
#include "emu.h"
#include "test_common.h"

#define JOBS          100
#define POLL_LIMIT_MS 20000

static emu_env env;
static const char *module_dir;
static OSSL_PROVIDER *default_provider, *smartkey_provider;
static EVP_PKEY *ec_key, *rsa_key;
static EVP_PKEY *ec_public; /* the EC key's public half, a local key */
/* abandoned on purpose: kept reachable, as a server keeps its objects */
static ASYNC_JOB *volatile abandoned_job;

typedef struct op {
    int decrypt; /* 0: ECDSA sign, 1: RSA-OAEP decrypt */
    unsigned char in[256];
    size_t in_len;
    unsigned char cipher[256];
    size_t cipher_len;
    unsigned char out[512];
    size_t out_len;
    int ok;
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    int ret, finished;
} op;

static int oaep_sha256(EVP_PKEY_CTX *ctx)
{
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL) > 0;
}

static int in_job(void *arg)
{
    op *o = *(op **)arg;

    o->out_len = sizeof(o->out);
    if (o->decrypt) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, rsa_key, NULL);

        o->ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 &&
                oaep_sha256(ctx) &&
                EVP_PKEY_decrypt(ctx, o->out, &o->out_len, o->cipher,
                                 o->cipher_len) == 1;
        EVP_PKEY_CTX_free(ctx);
    } else {
        EVP_MD_CTX *md = EVP_MD_CTX_new();

        o->ok = md != NULL &&
                EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, ec_key,
                                      NULL) == 1 &&
                EVP_DigestSign(md, o->out, &o->out_len, o->in, o->in_len) == 1;
        EVP_MD_CTX_free(md);
    }
    return o->ok;
}

static int step(op *o)
{
    op *arg = o;
    int rc =
        ASYNC_start_job(&o->job, o->wctx, &o->ret, in_job, &arg, sizeof(arg));

    if (rc == ASYNC_PAUSE)
        return 1;
    CU_ASSERT_EQUAL(rc, ASYNC_FINISH);
    o->finished = 1;
    return 0;
}

/* Starts every job, resumes each when its fd is readable; returns how
   many were paused at once (all of them, once started), -1 on a hang. */
static int run(op *ops, size_t n)
{
    struct pollfd *fds = calloc(n, sizeof(*fds));
    size_t *owner = calloc(n, sizeof(*owner));
    int paused = 0, max;

    for (size_t i = 0; i < n; i++)
        paused += step(&ops[i]);
    max = paused;
    while (paused > 0 && max >= 0) {
        size_t nfds = 0, count;

        for (size_t i = 0; i < n; i++) {
            if (ops[i].finished)
                continue;
            count = 1;
            if (!ASYNC_WAIT_CTX_get_all_fds(ops[i].wctx, &fds[nfds].fd,
                                            &count) ||
                count != 1) {
                max = -1;
                break;
            }
            fds[nfds].events = POLLIN;
            fds[nfds].revents = 0;
            owner[nfds++] = i;
        }
        if (max < 0 || poll(fds, nfds, POLL_LIMIT_MS) <= 0) {
            max = -1;
            break;
        }
        for (size_t k = 0; k < nfds; k++)
            if (fds[k].revents & POLLIN)
                paused -= !step(&ops[owner[k]]);
    }
    free(fds);
    free(owner);
    return max;
}

static int checks_out(const op *o)
{
    EVP_PKEY_CTX *ctx;
    int ok;

    if (!o->ok)
        return 0;
    if (o->decrypt)
        return o->out_len == o->in_len && memcmp(o->out, o->in, o->in_len) == 0;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ec_public, NULL);
    ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0;
    if (ok) {
        unsigned char digest[32];

        EVP_Digest(o->in, o->in_len, digest, NULL, EVP_sha256(), NULL);
        ok = EVP_PKEY_verify(ctx, o->out, o->out_len, digest, sizeof(digest)) ==
             1;
    }
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static op *new_ops(size_t n, int decrypt)
{
    op *ops = calloc(n, sizeof(*ops));

    for (size_t i = 0; ops != NULL && i < n; i++) {
        ops[i].decrypt = decrypt;
        ops[i].in_len = 32;
        RAND_bytes(ops[i].in, (int)ops[i].in_len);
        ops[i].cipher_len = sizeof(ops[i].cipher);
        if (decrypt &&
            !emu_oaep_sha256_encrypt(rsa_key, ops[i].in, ops[i].in_len,
                                     ops[i].cipher, &ops[i].cipher_len))
            ops[i].cipher_len = 0;
        ops[i].wctx = ASYNC_WAIT_CTX_new();
    }
    return ops;
}

static void free_ops(op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ASYNC_WAIT_CTX_free(ops[i].wctx);
    free(ops);
}

static int suite_init(void)
{
    char kid[37];

    if (!emu_init(&env))
        return 1;
    tc_use_emulator(&env);
    if (!emu_create_key(&env,
                        "{\"name\":\"async-evp-ec\",\"obj_type\":\"EC\","
                        "\"elliptic_curve\":\"NistP256\","
                        "\"key_ops\":[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                        kid) ||
        !emu_create_key(&env,
                        "{\"name\":\"async-evp-rsa\",\"obj_type\":\"RSA\","
                        "\"key_size\":2048,\"pub_exponent\":65537,"
                        "\"key_ops\":[\"ENCRYPT\",\"DECRYPT\","
                        "\"APPMANAGEABLE\"],"
                        "\"rsa\":{\"encryption_policy\":[{\"padding\":"
                        "{\"OAEP\":{}}}]}}",
                        kid))
        return 1;
    OSSL_PROVIDER_set_default_search_path(NULL, module_dir);
    default_provider = OSSL_PROVIDER_load(NULL, "default");
    smartkey_provider = OSSL_PROVIDER_load(NULL, SMARTKEY_PROVIDER_NAME);
    if (default_provider == NULL || smartkey_provider == NULL)
        return 1;
    ec_key = emu_load_pkey(NULL, NULL, "smartkey:name=async-evp-ec");
    rsa_key = emu_load_pkey(NULL, NULL, "smartkey:name=async-evp-rsa");
    if (ec_key != NULL)
        ec_public = tc_public_copy(NULL, ec_key, "provider=default");
    return ec_key == NULL || rsa_key == NULL || ec_public == NULL;
}

static int suite_clean(void)
{
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_public);
    OSSL_PROVIDER_unload(smartkey_provider);
    OSSL_PROVIDER_unload(default_provider);
    return 0;
}

static void test_100_signs_and_100_decrypts_pause_and_overlap(void)
{
    op *signs = new_ops(JOBS, 0), *decrypts = new_ops(JOBS, 1);
    size_t bad = 0;

    CU_ASSERT_FATAL(signs != NULL && decrypts != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_EQUAL(run(signs, JOBS), JOBS);
    CU_ASSERT_EQUAL(run(decrypts, JOBS), JOBS);
    for (size_t i = 0; i < JOBS; i++)
        bad += !checks_out(&signs[i]) + !checks_out(&decrypts[i]);

    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(emu_request_count(&env, "POST /crypto/v1/sign"), JOBS);
    CU_ASSERT_EQUAL(emu_request_count(&env, "POST /crypto/v1/decrypt"), JOBS);
    fprintf(stderr, "  max_in_flight=%ld\n",
            emu_counter(&env, "max_in_flight"));
    CU_ASSERT(emu_counter(&env, "max_in_flight") > 1);
    free_ops(signs, JOBS);
    free_ops(decrypts, JOBS);
}

static void test_abandoned_sign_is_dropped_and_the_provider_goes_on(void)
{
    op *one = new_ops(1, 0), *more = new_ops(4, 0);

    CU_ASSERT_FATAL(one != NULL && more != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(step(one) == 1);
    /* what SSL_free does to a connection closed mid-handshake */
    abandoned_job = one->job;
    ASYNC_WAIT_CTX_free(one->wctx);
    one->wctx = NULL;
    for (int i = 0;
         i < 500 && (emu_counter(&env, "in_flight") != 0 ||
                     emu_request_count(&env, "POST /crypto/v1/sign") < 1);
         i++)
        usleep(10000);
    usleep(50000); /* the I/O thread has the late answer and drops it */
    CU_ASSERT_EQUAL(run(more, 4), 4);
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT(checks_out(&more[i]));
    CU_ASSERT_EQUAL(emu_request_count(&env, "POST /crypto/v1/sign"), 5);
    free_ops(one, 1);
    free_ops(more, 4);
}

int main(int argc, char **argv)
{
    CU_pSuite suite;
    unsigned failed;

    if (argc != 2) {
        fprintf(stderr, "usage: %s MODULE-DIR\n", argv[0]);
        return 2;
    }
    module_dir = argv[1];
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("async-evp", suite_init, suite_clean);
    if (suite == NULL) {
        CU_cleanup_registry();
        return 2;
    }
    CU_add_test(suite, "test_100_signs_and_100_decrypts_pause_and_overlap",
                test_100_signs_and_100_decrypts_pause_and_overlap);
    CU_add_test(suite,
                "test_abandoned_sign_is_dropped_and_the_provider_goes_on",
                test_abandoned_sign_is_dropped_and_the_provider_goes_on);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed();
    if (CU_get_number_of_suites_failed() > 0)
        failed = 2;
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
