/*
 * Threads and fork (issue #8 item 3), through the EVP API only:
 *   threads  32 threads share the provider and its keys and run a mix of
 *            RSA decrypt, RSA and ECDSA signatures, server-side wraps and
 *            key loads; every result is checked locally.
 *   fork     the parent signs, forks 4 children that each run 500 mixed
 *            operations with the keys and session inherited from it, and
 *            keeps working while they run.
 *
 * Usage (through test/client/with-emulator.sh): stress MODULE_DIR MODE
 * Prints its figures, then "N passed, N failed".
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include <smartkey/smartkey.h>

#include "test_common.h"

#define THREADS            32
#define OPS_PER_THREAD     40
#define CHILDREN           4
#define OPS_PER_CHILD      500
#define PARENT_OPS_IN_FORK 100
#define AUTH_REQUEST       "POST /sys/v1/session/auth"

static const char propq[] = "?provider=" SMARTKEY_PROVIDER_NAME;
static emu_env env;

static EVP_PKEY *standin_rsa;  /* local private half of stress-rsa */
static EVP_PKEY *smartkey_rsa; /* the same key, held in SmartKey */
static EVP_PKEY *smartkey_ec;  /* generated in SmartKey */
static EVP_PKEY *ec_public;    /* its public half, default provider */
static unsigned char secret[32];

static EVP_PKEY *load_key(const char *uri)
{
    return emu_load_pkey(NULL, propq, uri);
}

/* ---- the operations; each returns 1 only for a locally checked result */

static int local_rsa(int encrypt, const unsigned char *in, size_t in_len,
                     unsigned char *out, size_t *out_len)
{
    return tc_local_oaep(standin_rsa, encrypt, in, in_len, out, out_len);
}

static int decrypt_once(void)
{
    unsigned char message[32], cipher[512], plain[512];
    size_t cipher_len = sizeof(cipher), plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx;
    int ok;

    if (RAND_bytes(message, sizeof(message)) != 1 ||
        !local_rsa(1, message, sizeof(message), cipher, &cipher_len))
        return 0;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, smartkey_rsa, propq);
    ok = ctx != NULL && EVP_PKEY_decrypt_init_ex(ctx, tc_oaep_sha256) > 0 &&
         EVP_PKEY_decrypt(ctx, plain, &plain_len, cipher, cipher_len) > 0 &&
         plain_len == sizeof(message) &&
         memcmp(plain, message, sizeof(message)) == 0;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int sign_once(EVP_PKEY *key, EVP_PKEY *verifier)
{
    unsigned char message[64];

    return RAND_bytes(message, sizeof(message)) == 1 &&
           tc_sign_and_verify_ex(NULL, propq, key, "provider=default", verifier,
                                 message, sizeof(message));
}

static int wrap_once(void)
{
    OSSL_PARAM params[4];
    unsigned char wrapped[512], plain[512];
    size_t wrapped_len = sizeof(wrapped), plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, smartkey_rsa, propq);
    int ok;

    tc_wrap_params(params, "smartkey:name=stress-secret");
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, wrapped, &wrapped_len, NULL, 0) > 0;
    EVP_PKEY_CTX_free(ctx);
    return ok && local_rsa(0, wrapped, wrapped_len, plain, &plain_len) &&
           plain_len == sizeof(secret) &&
           memcmp(plain, secret, sizeof(secret)) == 0;
}

static int key_load_once(int which)
{
    EVP_PKEY *key = load_key(which ? "smartkey:name=stress-ec"
                                   : "smartkey:name=stress-rsa");
    int ok = key != NULL && EVP_PKEY_get_bits(key) == (which ? 256 : 2048);

    EVP_PKEY_free(key);
    return ok;
}

/* Operation number i of a mixed sequence. */
static int mixed_op(int i)
{
    switch (i % 6) {
    case 0:
        return decrypt_once();
    case 1:
        return sign_once(smartkey_rsa, standin_rsa);
    case 2:
        return sign_once(smartkey_ec, ec_public);
    case 3:
        return wrap_once();
    default:
        return key_load_once(i % 6 == 5);
    }
}

static int run_mixed(int first, int count)
{
    int failures = 0;

    for (int i = first; i < first + count; i++)
        if (!mixed_op(i)) {
            failures++;
            ERR_print_errors_fp(stderr);
        }
    ERR_clear_error();
    return failures;
}

/* ---- set-up ---- */

/* Imports a key (PUT /crypto/v1/keys) with the app's API key. */
static int put_key(const char *name, const char *obj_type, const char *value,
                   const char *key_ops)
{
    char authorization[560], *body;
    size_t cap = strlen(value) + 256;
    long status;

    body = OPENSSL_malloc(cap);
    if (body == NULL)
        return 0;
    snprintf(authorization, sizeof(authorization), "Basic %s", env.api_key);
    snprintf(body, cap,
             "{\"name\":\"%s\",\"obj_type\":\"%s\",\"value\":\"%s\","
             "\"key_ops\":%s}",
             name, obj_type, value, key_ops);
    status =
        emu_request(&env, "PUT", "/crypto/v1/keys", authorization, body, NULL);
    OPENSSL_free(body);
    return status / 100 == 2;
}

static int set_up(const char *module_dir)
{
    unsigned char *der = NULL, *spki = NULL;
    const unsigned char *p;
    char *value, kid[37];
    int der_len, spki_len, ok;

    standin_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (standin_rsa == NULL || RAND_bytes(secret, sizeof(secret)) != 1)
        return 0;
    der_len = i2d_PrivateKey(standin_rsa, &der);
    value = der_len > 0 ? tc_base64(der, (size_t)der_len) : NULL;
    OPENSSL_clear_free(der, der_len > 0 ? (size_t)der_len : 0);
    ok =
        value != NULL && put_key("stress-rsa", "RSA", value,
                                 "[\"SIGN\",\"VERIFY\",\"DECRYPT\",\"ENCRYPT\","
                                 "\"WRAPKEY\",\"APPMANAGEABLE\"]");
    OPENSSL_free(value);
    value = tc_base64(secret, sizeof(secret));
    ok = ok && value != NULL &&
         put_key("stress-secret", "SECRET", value,
                 "[\"EXPORT\",\"APPMANAGEABLE\"]") &&
         emu_create_key(&env,
                        "{\"name\":\"stress-ec\",\"obj_type\":\"EC\","
                        "\"elliptic_curve\":\"NistP256\","
                        "\"key_ops\":[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                        kid);
    OPENSSL_free(value);
    if (!ok)
        return 0;

    tc_use_emulator(&env);
    /* default first: libcurl's TLS inside the provider must keep finding
       the default provider's algorithms (docs/openssl-dispatch.md §9) */
    OSSL_PROVIDER_set_default_search_path(NULL, module_dir);
    if (OSSL_PROVIDER_load(NULL, "default") == NULL ||
        OSSL_PROVIDER_load(NULL, SMARTKEY_PROVIDER_NAME) == NULL)
        return 0;
    smartkey_rsa = load_key("smartkey:name=stress-rsa");
    smartkey_ec = load_key("smartkey:name=stress-ec");
    spki_len = smartkey_ec != NULL ? i2d_PUBKEY(smartkey_ec, &spki) : 0;
    p = spki;
    if (spki_len > 0)
        ec_public = d2i_PUBKEY_ex(NULL, &p, spki_len, NULL, "provider=default");
    OPENSSL_free(spki);
    return smartkey_rsa != NULL && ec_public != NULL;
}

/* ---- the two tests ---- */

static void *worker(void *arg)
{
    long index = (long)arg;

    return (void *)(long)run_mixed((int)index, OPS_PER_THREAD);
}

static void threads_test(void)
{
    pthread_t threads[THREADS];
    long failures = 0, auths, requests;
    int started = 0;

    /* warm: the session and the first connection exist before the race */
    tc_check(run_mixed(0, 6) == 0, "each operation works once before the race");
    emu_reset_counters(&env);
    for (long t = 0; t < THREADS; t++)
        if (pthread_create(&threads[t], NULL, worker, (void *)t) == 0)
            started++;
    for (int t = 0; t < started; t++) {
        void *result;

        pthread_join(threads[t], &result);
        failures += (long)result;
    }
    auths = emu_request_count(&env, AUTH_REQUEST);
    requests = emu_counter(&env, "requests_total");
    printf("# %d threads x %d mixed operations: %ld failed; %ld requests, "
           "%ld authentications\n",
           started, OPS_PER_THREAD, failures, requests, auths);
    tc_check(started == THREADS, "%d threads started", THREADS);
    tc_check(failures == 0,
             "%d threads x %d mixed operations (decrypt, RSA and ECDSA sign, "
             "wrap, key loads) all give checked results",
             THREADS, OPS_PER_THREAD);
    tc_check(auths == 0, "the threads share the warm session (%ld new ones)",
             auths);
}

static void fork_test(void)
{
    pid_t children[CHILDREN];
    int forked = 0, children_ok = 0, parent_failures;
    long auths;

    tc_check(sign_once(smartkey_rsa, standin_rsa) &&
                 sign_once(smartkey_ec, ec_public),
             "the parent signs before fork()");
    emu_reset_counters(&env);
    fflush(stdout);
    fflush(stderr);
    for (int c = 0; c < CHILDREN; c++) {
        children[c] = fork();
        if (children[c] == 0) {
            int failures = run_mixed(c, OPS_PER_CHILD);

            if (failures > 0)
                fprintf(stderr, "child %d: %d of %d operations failed\n", c,
                        failures, OPS_PER_CHILD);
            _exit(failures == 0 ? 0 : 1);
        }
        if (children[c] > 0)
            forked++;
    }
    /* the parent keeps working while its children run */
    parent_failures = run_mixed(0, PARENT_OPS_IN_FORK);
    for (int c = 0; c < CHILDREN; c++) {
        int status;

        if (children[c] > 0 &&
            waitpid(children[c], &status, 0) == children[c] &&
            WIFEXITED(status) && WEXITSTATUS(status) == 0)
            children_ok++;
    }
    auths = emu_request_count(&env, AUTH_REQUEST);
    printf("# fork: %d children x %d operations, %d succeeded entirely; "
           "parent %d operations meanwhile, %d failed; %ld authentications\n",
           forked, OPS_PER_CHILD, children_ok, PARENT_OPS_IN_FORK,
           parent_failures, auths);
    tc_check(forked == CHILDREN && children_ok == CHILDREN,
             "%d forked children each run %d checked operations", CHILDREN,
             OPS_PER_CHILD);
    tc_check(parent_failures == 0,
             "the parent keeps working while its children run");
    tc_check(auths == 0, "children reuse the inherited session (%ld new ones)",
             auths);
    tc_check(run_mixed(0, 12) == 0,
             "the parent still works after its children");
}

int main(int argc, char **argv)
{
    if (argc != 3 ||
        (strcmp(argv[2], "threads") != 0 && strcmp(argv[2], "fork") != 0)) {
        fprintf(stderr, "usage: %s MODULE_DIR threads|fork\n", argv[0]);
        return 2;
    }
    if (!emu_init(&env))
        return 2;
    if (!set_up(argv[1])) {
        ERR_print_errors_fp(stderr);
        tc_check(0, "set-up: keys in the emulator, provider loaded");
    } else if (strcmp(argv[2], "threads") == 0) {
        threads_test();
    } else {
        fork_test();
    }
    EVP_PKEY_free(smartkey_rsa);
    EVP_PKEY_free(smartkey_ec);
    EVP_PKEY_free(ec_public);
    EVP_PKEY_free(standin_rsa);
    return tc_report();
}
