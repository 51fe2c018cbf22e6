/*
 * The provider module under concurrency and fork: many threads load keys
 * through OSSL_STORE and read them while sharing one SmartKey session; a
 * forked child loads keys with the inherited provider.
 *
 * Usage (through test/client/with-emulator.sh): test_provider_threads
 * MODULE-DIR. Only the public header and OpenSSL's public API are used.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <smartkey/smartkey.h>
#include "cunit_run.h"
#include "emu.h"
#include "test_common.h"

#define AUTH_REQUEST "POST /sys/v1/session/auth"
#define THREADS      16
#define LOADS        10

static emu_env env;
static const char *module_dir;
static OSSL_PROVIDER *default_provider, *smartkey_provider;

/* Reads what applications read from a key: size, bits and parameters. */
static int key_reads_back(EVP_PKEY *pkey, int bits, int max_size)
{
    int got_bits = 0, got_max = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, &got_bits),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, &got_max),
        OSSL_PARAM_END,
    };

    if (pkey == NULL || EVP_PKEY_get_bits(pkey) != bits)
        return 0;
    if (max_size > 0 && EVP_PKEY_get_size(pkey) != max_size)
        return 0;
    if (max_size <= 0 && EVP_PKEY_get_size(pkey) <= 0)
        return 0;
    return EVP_PKEY_get_params(pkey, params) == 1 && got_bits == bits;
}

static int load_and_read_keys(int rounds)
{
    int failures = 0;

    for (int i = 0; i < rounds; i++) {
        EVP_PKEY *rsa = emu_load_pkey(NULL, NULL, "smartkey:name=threads-rsa");
        EVP_PKEY *ec = emu_load_pkey(NULL, NULL, "smartkey:name=threads-ec");

        if (!key_reads_back(rsa, 2048, 256))
            failures++;
        /* ECDSA max-size is the DER signature bound, not a fixed value */
        if (!key_reads_back(ec, 256, 0))
            failures++;
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ec);
    }
    if (failures > 0)
        ERR_print_errors_fp(stderr);
    ERR_clear_error();
    return failures;
}

static int suite_init(void)
{
    char kid[37];

    if (!emu_init(&env))
        return 1;
    if (!emu_create_key(&env,
                        "{\"name\":\"threads-rsa\",\"obj_type\":\"RSA\","
                        "\"key_size\":2048,\"key_ops\":[\"SIGN\",\"VERIFY\","
                        "\"DECRYPT\",\"ENCRYPT\",\"APPMANAGEABLE\"]}",
                        kid) ||
        !emu_create_key(&env,
                        "{\"name\":\"threads-ec\",\"obj_type\":\"EC\","
                        "\"elliptic_curve\":\"NistP256\","
                        "\"key_ops\":[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                        kid))
        return 1;
    tc_use_emulator(&env);
    emu_reset_counters(&env);

    /* default first: libssl (and libcurl's TLS inside the provider) must
       keep finding the default EC keymgmt (docs/openssl-dispatch.md §9). */
    OSSL_PROVIDER_set_default_search_path(NULL, module_dir);
    default_provider = OSSL_PROVIDER_load(NULL, "default");
    smartkey_provider = OSSL_PROVIDER_load(NULL, SMARTKEY_PROVIDER_NAME);
    if (default_provider == NULL || smartkey_provider == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    return 0;
}

static int suite_clean(void)
{
    OSSL_PROVIDER_unload(smartkey_provider);
    OSSL_PROVIDER_unload(default_provider);
    return 0;
}

static void *loader_thread(void *arg)
{
    return (void *)(long)load_and_read_keys(LOADS);
}

static void test_sixteen_threads_load_keys_with_one_session(void)
{
    CU_ASSERT_EQUAL(emu_run_threads(THREADS, loader_thread, NULL), 0);
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
}

static void test_forked_child_loads_keys_and_parent_still_does(void)
{
    EVP_PKEY *before = emu_load_pkey(NULL, NULL, "smartkey:name=threads-rsa");
    int status = -1;
    pid_t pid;

    CU_ASSERT_FATAL(before != NULL);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int failures = load_and_read_keys(3);

        /* the key loaded before fork() is usable too */
        if (!key_reads_back(before, 2048, 256))
            failures++;
        _exit(failures == 0 ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(key_reads_back(before, 2048, 256));
    CU_ASSERT_EQUAL(load_and_read_keys(3), 0);
    EVP_PKEY_free(before);
}

int main(int argc, char **argv)
{
    static const cunit_test tests[] = {
        CUNIT_TEST(test_sixteen_threads_load_keys_with_one_session),
        CUNIT_TEST(test_forked_child_loads_keys_and_parent_still_does),
    };

    module_dir = cunit_module_dir(argc, argv);
    if (module_dir == NULL)
        return 2;
    return cunit_run("provider-threads", suite_init, suite_clean, tests,
                     CUNIT_COUNT(tests));
}
