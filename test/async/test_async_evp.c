/*
 * The provider inside OpenSSL ASYNC jobs, through the EVP API as TLS
 * servers reach it (issue 13): 100 jobs in one thread sign with a SmartKey
 * EC key (EVP_DigestSign) and 100 decrypt with a SmartKey RSA key
 * (EVP_PKEY_decrypt, OAEP); each pauses on its wait fd and is resumed by a
 * minimal event loop; every result checks out locally, each costs exactly
 * one request, and requests overlap (the emulator, 20 ms late, saw more
 * than one in flight). Then a job abandoned while its signature is in
 * flight: its wait context is freed, the late answer is dropped (ASan:
 * no use after free, no leak), and the provider goes on working. Then
 * unload with requests in flight, in a library context of its own:
 * OSSL_PROVIDER_unload under 8 paused jobs (they complete, the I/O thread
 * ends after them), and a shutdown that frees everything, down to
 * OSSL_LIB_CTX_free, under 8 requests in flight (held fds become
 * readable, the answers are dropped).
 * Usage (with-emulator.sh --latency-ms 20 --): test_async_evp MODULE-DIR
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <smartkey/smartkey.h>
#include "cunit_run.h"
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
static ASYNC_JOB *volatile abandoned_jobs[16];
static size_t abandoned_count;

typedef struct op {
    int decrypt;        /* 0: ECDSA sign, 1: RSA-OAEP decrypt */
    EVP_PKEY *key;      /* signs with this key instead of ec_key */
    EVP_PKEY_CTX *pctx; /* or signs in (a digest) with this context, which
                           the test owns (EVP_PKEY_sign) */
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
    } else if (o->pctx != NULL) {
        o->ok =
            EVP_PKEY_sign(o->pctx, o->out, &o->out_len, o->in, o->in_len) == 1;
    } else {
        EVP_MD_CTX *md = EVP_MD_CTX_new();

        o->ok = md != NULL &&
                EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL,
                                      o->key != NULL ? o->key : ec_key,
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

/* Starts every job; returns how many paused. */
static int start(op *ops, size_t n)
{
    int paused = 0;

    for (size_t i = 0; i < n; i++)
        paused += step(&ops[i]);
    return paused;
}

/* Resumes each of the `paused` jobs when its fd is readable until all have
   finished; returns `paused`, -1 on a hang. */
static int drive(op *ops, size_t n, int paused)
{
    struct pollfd *fds = calloc(n, sizeof(*fds));
    size_t *owner = calloc(n, sizeof(*owner));
    int max = paused;

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

/* Starts every job, resumes each when its fd is readable; returns how
   many were paused at once (all of them, once started), -1 on a hang. */
static int run(op *ops, size_t n)
{
    return drive(ops, n, start(ops, n));
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

/* What SSL_free does to a connection closed while its job is paused: the
   wait context goes, the job is never resumed. */
static void abandon(op *o)
{
    if (abandoned_count < sizeof(abandoned_jobs) / sizeof(abandoned_jobs[0]))
        abandoned_jobs[abandoned_count++] = o->job;
    ASYNC_WAIT_CTX_free(o->wctx);
    o->wctx = NULL;
}

/* Waits until the emulator received `signs` signature requests and has
   answered them all, and the I/O threads have had time to read the
   answers. */
static void wait_for_answers(long signs)
{
    for (int i = 0;
         i < 500 && (emu_counter(&env, "in_flight") != 0 ||
                     emu_request_count(&env, "POST /crypto/v1/sign") < signs);
         i++)
        usleep(10000);
    usleep(50000);
}

/* Waits until the emulator holds n requests (answer delayed). */
static int in_flight_reaches(long n)
{
    for (int i = 0; i < 1000; i++) {
        if (emu_counter(&env, "in_flight") >= n)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* The threads of this process: the provider's I/O threads among them. */
static int thread_count(void)
{
    char line[256];
    int threads = -1;
    FILE *f = fopen("/proc/self/status", "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Threads: %d", &threads) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return threads;
}

/* A library context of its own with the default and smartkey providers. */
static OSSL_LIB_CTX *own_libctx(OSSL_PROVIDER **def, OSSL_PROVIDER **sk)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();

    *def = *sk = NULL;
    if (libctx == NULL ||
        !OSSL_PROVIDER_set_default_search_path(libctx, module_dir) ||
        (*def = OSSL_PROVIDER_load(libctx, "default")) == NULL ||
        (*sk = OSSL_PROVIDER_load(libctx, SMARTKEY_PROVIDER_NAME)) == NULL) {
        OSSL_PROVIDER_unload(*def);
        OSSL_LIB_CTX_free(libctx);
        return NULL;
    }
    return libctx;
}

/* Three signatures outside any job: the client of a fresh provider has
   its session afterwards (auth = auto opens it on the third request). */
static int warm_up(EVP_PKEY *key)
{
    op warm = {0};
    op *arg = &warm;
    int ok = 1;

    warm.key = key;
    warm.in_len = 32;
    for (int i = 0; i < 3; i++)
        ok &= in_job(&arg);
    return ok;
}

#define STALL_SIGNS(n, s)                                                      \
    emu_add_fault(&env, "{\"path\":\"/crypto/v1/sign\",\"count\":" #n          \
                        ",\"action\":\"stall\",\"seconds\":" #s "}")

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
    abandon(one);
    wait_for_answers(1);
    CU_ASSERT_EQUAL(run(more, 4), 4);
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT(checks_out(&more[i]));
    CU_ASSERT_EQUAL(emu_request_count(&env, "POST /crypto/v1/sign"), 5);
    free_ops(one, 1);
    free_ops(more, 4);
}

/*
 * OSSL_PROVIDER_unload while 8 jobs are paused on signatures in flight:
 * the jobs hold the provider (their contexts and the key reference it),
 * so it stays usable until they are done; resumed, every job completes
 * with a good signature. When the last of them lets go, the provider is
 * torn down and its I/O thread ends.
 */
static void test_unload_with_jobs_in_flight_completes_them_then_stops(void)
{
    OSSL_PROVIDER *def, *sk;
    int threads = thread_count();
    OSSL_LIB_CTX *libctx = own_libctx(&def, &sk);
    EVP_PKEY *key;
    op *ops = new_ops(8, 0);

    CU_ASSERT_FATAL(libctx != NULL && ops != NULL);
    key = emu_load_pkey(libctx, NULL, "smartkey:name=async-evp-ec");
    CU_ASSERT_FATAL(key != NULL && warm_up(key));
    for (size_t i = 0; i < 8; i++)
        ops[i].key = key;
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(STALL_SIGNS(8, 1));
    CU_ASSERT_EQUAL(start(ops, 8), 8);
    CU_ASSERT(in_flight_reaches(8));
    CU_ASSERT(thread_count() > threads); /* the provider's I/O thread */

    OSSL_PROVIDER_unload(sk);
    EVP_PKEY_free(key);
    CU_ASSERT(!OSSL_PROVIDER_available(libctx, SMARTKEY_PROVIDER_NAME));
    CU_ASSERT_EQUAL(drive(ops, 8, 8), 8);
    for (size_t i = 0; i < 8; i++)
        CU_ASSERT(checks_out(&ops[i]));
    CU_ASSERT_EQUAL(emu_request_count(&env, "POST /crypto/v1/sign"), 8);
    free_ops(ops, 8);
    OSSL_PROVIDER_unload(def);
    OSSL_LIB_CTX_free(libctx);
    CU_ASSERT_EQUAL(thread_count(), threads);
    emu_clear_faults(&env);
}

/*
 * A server shutting down with handshakes in flight: 8 jobs paused on
 * signatures (contexts the application owns), the application frees the
 * wait contexts of four (closed connections), then its contexts, the key,
 * the providers and the library context. The provider is torn down with
 * the 8 requests in flight: the wait fds still held become readable, the
 * late answers are discarded (ASan, TSan: no use after free, no leak), the
 * I/O thread ends, and the provider elsewhere goes on working.
 */
static void test_libctx_freed_with_requests_in_flight_drops_them(void)
{
    OSSL_PROVIDER *def, *sk;
    int threads = thread_count();
    OSSL_LIB_CTX *libctx = own_libctx(&def, &sk);
    EVP_PKEY *key;
    op *ops = new_ops(8, 0), *more = new_ops(4, 0);
    OSSL_ASYNC_FD fds[4];

    CU_ASSERT_FATAL(libctx != NULL && ops != NULL && more != NULL);
    key = emu_load_pkey(libctx, NULL, "smartkey:name=async-evp-ec");
    CU_ASSERT_FATAL(key != NULL && warm_up(key));
    for (size_t i = 0; i < 8; i++) {
        ops[i].pctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
        CU_ASSERT_FATAL(
            ops[i].pctx != NULL && EVP_PKEY_sign_init(ops[i].pctx) == 1 &&
            EVP_PKEY_CTX_set_signature_md(ops[i].pctx, EVP_sha256()) > 0);
    }
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(STALL_SIGNS(8, 2));
    CU_ASSERT_EQUAL(start(ops, 8), 8);
    CU_ASSERT(in_flight_reaches(8));
    for (size_t i = 0; i < 4; i++) {
        size_t count = 1;

        CU_ASSERT_FATAL(
            ASYNC_WAIT_CTX_get_all_fds(ops[i].wctx, &fds[i], &count) &&
            count == 1);
    }
    for (size_t i = 4; i < 8; i++)
        abandon(&ops[i]);

    for (size_t i = 0; i < 8; i++)
        EVP_PKEY_CTX_free(ops[i].pctx);
    EVP_PKEY_free(key);
    OSSL_PROVIDER_unload(sk);
    OSSL_PROVIDER_unload(def);
    OSSL_LIB_CTX_free(libctx);
    CU_ASSERT_EQUAL(thread_count(), threads);
    for (size_t i = 0; i < 4; i++) {
        struct pollfd p = {fds[i], POLLIN, 0};

        CU_ASSERT(poll(&p, 1, POLL_LIMIT_MS) == 1);
        abandon(&ops[i]); /* its contexts are gone: never resumed */
    }
    wait_for_answers(8);
    emu_clear_faults(&env);

    CU_ASSERT_EQUAL(run(more, 4), 4);
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT(checks_out(&more[i]));
    free_ops(ops, 8);
    free_ops(more, 4);
}

int main(int argc, char **argv)
{
    static const cunit_test tests[] = {
        CUNIT_TEST(test_100_signs_and_100_decrypts_pause_and_overlap),
        CUNIT_TEST(test_abandoned_sign_is_dropped_and_the_provider_goes_on),
        CUNIT_TEST(test_unload_with_jobs_in_flight_completes_them_then_stops),
        CUNIT_TEST(test_libctx_freed_with_requests_in_flight_drops_them),
    };

    module_dir = cunit_module_dir(argc, argv);
    if (module_dir == NULL)
        return 2;
    return cunit_run("async-evp", suite_init, suite_clean, tests,
                     CUNIT_COUNT(tests));
}
