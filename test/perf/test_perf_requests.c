/*
 * Request counts of the provider's operations, read from the emulator's
 * counters (issue #7): after warm-up, one HTTP request per private-key
 * operation (RSA-OAEP decrypt, ECDSA sign, RSA-OAEP server-side wrap), none
 * per public-key operation (encrypt, verify) and no new TLS handshake, with
 * 1 and with 16 threads. Counts only, never timings.
 *
 * Usage (through test/client/with-emulator.sh): test_perf_requests
 * MODULE-DIR. Only the public header and OpenSSL's public API are used.
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

#define OPS_PER_THREAD 8
#define MAX_THREADS    16
/* Warm-up requests are slowed down so that every thread holds its
   connection at the same time: the pool then owns one per thread. */
#define WARMUP_LATENCY_MS 300

static const char propq[] = "?provider=" SMARTKEY_PROVIDER_NAME;
static const char subject_uri[] = "smartkey:name=perf-aes";
static const unsigned char secret[] = "perf: thirty-two bytes of secret";
static const unsigned char message[] = "a message to sign";

static emu_env env;
static OSSL_LIB_CTX *libctx;
static EVP_PKEY *rsa_key, *ec_key;
static unsigned char cipher[256], signature[128];
static size_t cipher_len, signature_len;

typedef int (*operation)(void);

static EVP_PKEY *load_key(const char *uri)
{
    return emu_load_pkey(libctx, NULL, uri);
}

/* Encrypts with the public half, as a client of the key holder does. */
static int encrypt_public(unsigned char *out, size_t *out_len)
{
    *out_len = sizeof(cipher);
    return tc_encrypt_oaep(libctx, rsa_key, secret, sizeof(secret) - 1, out,
                           out_len);
}

static int op_encrypt(void)
{
    unsigned char out[256];
    size_t len;

    return encrypt_public(out, &len) && len == 256;
}

static int op_decrypt(void)
{
    return tc_decrypts_to(libctx, rsa_key, cipher, cipher_len, secret,
                          sizeof(secret) - 1);
}

/* As an application does it: asks for the size first, then wraps. */
static int op_wrap(void)
{
    OSSL_PARAM params[5];
    unsigned char wrapped[256];
    size_t wrapped_len = 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, rsa_key, propq);
    int ok;

    tc_oaep_params(params, subject_uri);
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, NULL, &wrapped_len, NULL, 0) > 0 &&
         wrapped_len == sizeof(wrapped) &&
         EVP_PKEY_encrypt(ctx, wrapped, &wrapped_len, NULL, 0) > 0 &&
         wrapped_len == sizeof(wrapped);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int sign_message(unsigned char *sig, size_t *sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    *sig_len = sizeof(signature);
    ok = md != NULL &&
         EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, ec_key, NULL) >
             0 &&
         EVP_DigestSign(md, sig, sig_len, message, sizeof(message) - 1) > 0;
    EVP_MD_CTX_free(md);
    return ok;
}

static int verify_signature(const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    ok = md != NULL &&
         EVP_DigestVerifyInit_ex(md, NULL, "SHA256", libctx, NULL, ec_key,
                                 NULL) > 0 &&
         EVP_DigestVerify(md, sig, sig_len, message, sizeof(message) - 1) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static int op_sign(void)
{
    unsigned char sig[128];
    size_t len;

    return sign_message(sig, &len) && verify_signature(sig, len);
}

static int op_verify(void)
{
    return verify_signature(signature, signature_len);
}

typedef struct run {
    operation op;
    int count;
    pthread_barrier_t *start;
    int failures;
} run;

static void *worker(void *arg)
{
    run *r = arg;

    pthread_barrier_wait(r->start);
    for (int i = 0; i < r->count; i++)
        if (!r->op()) {
            r->failures++;
            ERR_print_errors_fp(stderr);
        }
    ERR_clear_error();
    return NULL;
}

/* Runs op count times in each of n threads; returns the failures. */
static int run_threads(operation op, int n, int count)
{
    pthread_t threads[MAX_THREADS];
    run runs[MAX_THREADS];
    pthread_barrier_t start;
    int failures = 0;

    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        runs[i] = (run){op, count, &start, 0};
        if (pthread_create(&threads[i], NULL, worker, &runs[i]) != 0)
            abort();
    }
    for (int i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        failures += runs[i].failures;
    }
    pthread_barrier_destroy(&start);
    return failures;
}

/* Every thread opens its connection, all of them at the same time. */
static void check(int ok, const char *name, int threads)
{
    tc_check(ok, "%s at %d thread%s", name, threads, threads == 1 ? "" : "s");
}

static int warm_up(int threads)
{
    int failures;

    if (!tc_set_latency(&env, WARMUP_LATENCY_MS))
        return 0;
    failures = run_threads(op_decrypt, threads, 1);
    return tc_set_latency(&env, 0) && failures == 0;
}

typedef struct private_op {
    const char *name;
    operation op;
    const char *request;
} private_op;

static void measure(int threads)
{
    static const private_op private_ops[] = {
        {"rsa_oaep_decrypt_costs_one_request", op_decrypt,
         "POST /crypto/v1/decrypt"},
        {"ecdsa_p256_sign_costs_one_request", op_sign, "POST /crypto/v1/sign"},
        {"rsa_oaep_wrap_costs_one_request", op_wrap, "POST /crypto/v1/wrapkey"},
    };
    static const struct {
        const char *name;
        operation op;
    } public_ops[] = {
        {"rsa_oaep_public_encrypt_costs_no_request", op_encrypt},
        {"ecdsa_p256_verify_costs_no_request", op_verify},
    };
    const long ops = (long)threads * OPS_PER_THREAD;

    check(warm_up(threads), "warm_up_succeeds", threads);
    for (size_t i = 0; i < sizeof(private_ops) / sizeof(private_ops[0]); i++) {
        long total, endpoint, handshakes, connections;
        int failures;

        emu_reset_counters(&env);
        failures = run_threads(private_ops[i].op, threads, OPS_PER_THREAD);
        total = emu_counter(&env, "requests_total");
        endpoint = emu_request_count(&env, private_ops[i].request);
        handshakes = emu_counter(&env, "tls_handshakes");
        connections = emu_counter(&env, "connections");
        if (failures != 0 || total != ops || endpoint != ops ||
            handshakes != 0 || connections != 0)
            fprintf(stderr,
                    "%s: %ld operations, %d failed; %ld requests (%ld %s), "
                    "%ld handshakes, %ld new connections\n",
                    private_ops[i].name, ops, failures, total, endpoint,
                    private_ops[i].request, handshakes, connections);
        check(failures == 0 && total == ops && endpoint == ops,
              private_ops[i].name, threads);
        check(handshakes == 0 && connections == 0,
              "private_key_operations_reuse_warm_connections", threads);
    }
    for (size_t i = 0; i < sizeof(public_ops) / sizeof(public_ops[0]); i++) {
        long total;
        int failures;

        emu_reset_counters(&env);
        failures = run_threads(public_ops[i].op, threads, OPS_PER_THREAD);
        total = emu_counter(&env, "requests_total");
        if (failures != 0 || total != 0)
            fprintf(stderr, "%s: %d failed, %ld requests\n", public_ops[i].name,
                    failures, total);
        check(failures == 0 && total == 0, public_ops[i].name, threads);
    }
}

static int create_keys(void)
{
    char kid[37];

    return emu_create_key(&env,
                          "{\"name\":\"perf-rsa\",\"obj_type\":\"RSA\","
                          "\"key_size\":2048,\"key_ops\":[\"DECRYPT\","
                          "\"ENCRYPT\",\"WRAPKEY\",\"APPMANAGEABLE\"]}",
                          kid) &&
           emu_create_key(&env,
                          "{\"name\":\"perf-ec\",\"obj_type\":\"EC\","
                          "\"elliptic_curve\":\"NistP256\",\"key_ops\":"
                          "[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                          kid) &&
           emu_create_key(&env,
                          "{\"name\":\"perf-aes\",\"obj_type\":\"AES\","
                          "\"key_size\":128,\"key_ops\":[\"EXPORT\","
                          "\"ENCRYPT\",\"APPMANAGEABLE\"]}",
                          kid);
}

int main(int argc, char **argv)
{
    const char *module_dir = tc_emulator_args(argc, argv, &env);

    if (module_dir == NULL)
        return 2;
    if (!create_keys())
        return tc_setup_failed("cannot create the test keys");
    libctx = tc_provider_libctx(module_dir);
    if (libctx == NULL ||
        (rsa_key = load_key("smartkey:name=perf-rsa")) == NULL ||
        (ec_key = load_key("smartkey:name=perf-ec")) == NULL ||
        !encrypt_public(cipher, &cipher_len) ||
        !sign_message(signature, &signature_len)) {
        ERR_print_errors_fp(stderr);
        printf("0 passed, 1 failed\n");
        return 1;
    }

    measure(1);
    measure(MAX_THREADS);

    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    OSSL_LIB_CTX_free(libctx);
    return tc_report();
}
