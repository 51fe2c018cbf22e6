/*
 * The fault matrix of issue #8: decrypt, sign and wrap through the provider
 * (EVP API only) while smartkey-emulator's test controls inject one kind of
 * fault. Every successful result is checked locally (signatures verified,
 * plaintexts and wrapped keys compared with the expected bytes): a fault
 * may make an operation fail, never return a wrong result.
 *
 * Usage: fault_matrix EMULATOR MODULE_DIR RESHAPE_PROXY SCENARIO...
 *   SCENARIO       a name printed by SCENARIO "list", or "all"
 *   RESHAPE_PROXY  reshape_proxy.py (results of the wrong length)
 * The program starts (and restarts, on the same port) its own emulators
 * with --test-controls --persist in a temporary directory, and configures
 * the provider through an openssl.cnf of its own per library context
 * (request_timeout 2 s, retries 2). It prints one figures row per scenario
 * and "N passed, N failed".
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <smartkey/smartkey.h>

#include "test_common.h"

#define REQUEST_TIMEOUT_S 2
#define RETRIES           2
#define STALL_S           5

static const char propq[] = "?provider=" SMARTKEY_PROVIDER_NAME;
static const char *emulator_program, *module_dir, *reshape_proxy;
static char work_dir[256];

/* ---- checks and figures ---- */

typedef struct figures {
    char fault[64];
    int operations;
    int succeeded;
    int failed_as_expected;
    int unexpected; /* failed when it should not, or the reverse */
    int wrong_results;
} figures;

static figures table[32];
static size_t table_rows;

static figures *new_row(const char *fault)
{
    /* more rows than scenarios make: the last one is shared */
    figures *row = &table[table_rows < 32 ? table_rows++ : 31];

    memset(row, 0, sizeof(*row));
    snprintf(row->fault, sizeof(row->fault), "%s", fault);
    return row;
}

/* All OpenSSL errors of the thread as text, queue cleared. */
static int collect_error(const char *str, size_t len, void *arg)
{
    char *buf = arg;
    size_t used = strlen(buf);

    if (used + len + 1 < 4096) {
        memcpy(buf + used, str, len);
        buf[used + len] = '\0';
    }
    return 1;
}

static void take_errors(char errors[4096])
{
    errors[0] = '\0';
    ERR_print_errors_cb(collect_error, errors);
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the emulator ---- */

typedef struct emulator {
    pid_t pid;
    char state[300];
    int port;
    char endpoint[128];
    char ca_file[400];
    char cert[400], key[400]; /* --cert/--key, or empty */
    emu_env env;
} emulator;

static int read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    int ok;

    if (f == NULL)
        return 0;
    ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return ok && buf[0] != '\0';
}

static void emulator_stop(emulator *e)
{
    int status;

    if (e->pid <= 0)
        return;
    kill(e->pid, SIGTERM);
    waitpid(e->pid, &status, 0);
    e->pid = 0;
}

/* In the forked child: runs the emulator on LISTEN, logging to LOG. */
static void emulator_exec(const emulator *e, const char *listen,
                          const char *log)
{
    const char *argv[16];
    int n = 0;

    argv[n++] = emulator_program;
    argv[n++] = "--state-dir";
    argv[n++] = e->state;
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--test-controls";
    argv[n++] = "--persist";
    argv[n++] = "--log";
    argv[n++] = log;
    if (e->cert[0] != '\0') {
        argv[n++] = "--cert";
        argv[n++] = e->cert;
        argv[n++] = "--key";
        argv[n++] = e->key;
    }
    argv[n] = NULL;
    freopen("/dev/null", "w", stdout);
    freopen(log, "a", stderr);
    execv(emulator_program, (char *const *)argv);
    _exit(127);
}

/* Waits up to 30 s for the endpoint file of the started emulator: 1 once
   it is there (endpoint, port, CA file and env filled in), 0 if the
   process exited (e->pid reset), -1 if it never came. */
static int emulator_wait(emulator *e, const char *path)
{
    for (int i = 0; i < 300; i++) {
        int status;

        if (read_line(path, e->endpoint, sizeof(e->endpoint))) {
            const char *colon = strrchr(e->endpoint, ':');

            e->port = colon != NULL ? atoi(colon + 1) : 0;
            if (e->cert[0] == '\0')
                snprintf(e->ca_file, sizeof(e->ca_file), "%s/ca.pem", e->state);
            e->env.endpoint = e->endpoint;
            e->env.ca_file = e->ca_file;
            return 1;
        }
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
            e->pid = 0;
            return 0;
        }
        usleep(100 * 1000);
    }
    return -1;
}

/* Starts the emulator on e->port (0: an ephemeral one, remembered for the
   restart) and waits for its endpoint file. */
static int emulator_start(emulator *e)
{
    char listen[64], path[400], log[400];

    snprintf(path, sizeof(path), "%s/endpoint", e->state);
    snprintf(log, sizeof(log), "%s.log", e->state);
    mkdir(e->state, 0700);
    /* the port of a server killed a moment ago may still be held: retry */
    for (int attempt = 0; attempt < 50; attempt++) {
        int ready;

        snprintf(listen, sizeof(listen), "127.0.0.1:%d", e->port);
        e->pid = fork();
        if (e->pid < 0)
            return 0;
        if (e->pid == 0)
            emulator_exec(e, listen, log);
        ready = emulator_wait(e, path);
        if (ready > 0) {
            snprintf(path, sizeof(path), "%s/api-key", e->state);
            return read_line(path, e->env.api_key, sizeof(e->env.api_key));
        }
        if (ready < 0) {
            emulator_stop(e);
            return 0;
        }
        usleep(200 * 1000);
    }
    return 0;
}

/* ---- a library context configured like an application's openssl.cnf ---- */

static OSSL_LIB_CTX *configured_libctx(const char *name, const char *endpoint,
                                       const char *ca_file,
                                       const char *api_key_file)
{
    char path[400];
    OSSL_LIB_CTX *libctx;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.cnf", work_dir, name);
    f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    /* default first: libcurl's TLS inside the provider must keep finding
       the default provider's algorithms (docs/openssl-dispatch.md §9) */
    tc_write_config_head(f, module_dir);
    fprintf(f,
            "api_endpoint = %s\napi_key = file:%s\nca_file = %s\n"
            "request_timeout = %d\nretries = %d\n",
            endpoint, api_key_file, ca_file, REQUEST_TIMEOUT_S, RETRIES);
    fclose(f);
    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_LIB_CTX_load_config(libctx, path) ||
        !OSSL_PROVIDER_available(libctx, SMARTKEY_PROVIDER_NAME)) {
        fprintf(stderr, "%s: the provider is not active\n", path);
        ERR_print_errors_fp(stderr);
        OSSL_LIB_CTX_free(libctx);
        return NULL;
    }
    return libctx;
}

static EVP_PKEY *load_key(OSSL_LIB_CTX *libctx, const char *uri)
{
    return emu_load_pkey(libctx, propq, uri);
}

/* ---- the keys the operations use ---- */

typedef struct fixture {
    emulator emu;
    OSSL_LIB_CTX *libctx;
    EVP_PKEY *standin;      /* the local private half of fault-rsa */
    EVP_PKEY *smartkey_rsa; /* the same key, held in SmartKey */
    EVP_PKEY *file_public;  /* its public half as a file would give it */
    unsigned char secret[32];
} fixture;

/* Imports the stand-in RSA key (so that results can be checked locally)
   and a 32-byte SECRET to wrap. */
static int import_keys(fixture *fx)
{
    unsigned char *der = NULL;
    int der_len = i2d_PrivateKey(fx->standin, &der);
    char *value = der_len > 0 ? tc_base64(der, (size_t)der_len) : NULL;
    char *secret = tc_base64(fx->secret, sizeof(fx->secret));
    char *body = NULL;
    long rsa_status = 0, secret_status = 0;
    char authorization[560];
    size_t cap;

    snprintf(authorization, sizeof(authorization), "Basic %s",
             fx->emu.env.api_key);

    if (value != NULL && secret != NULL) {
        cap = strlen(value) + 512;
        body = OPENSSL_malloc(cap);
    }
    if (body != NULL) {
        snprintf(body, cap,
                 "{\"name\":\"fault-rsa\",\"obj_type\":\"RSA\",\"value\":"
                 "\"%s\",\"key_ops\":[\"SIGN\",\"VERIFY\",\"DECRYPT\","
                 "\"ENCRYPT\",\"WRAPKEY\",\"APPMANAGEABLE\"],\"rsa\":"
                 "{\"encryption_policy\":[{\"padding\":{\"OAEP\":{}}},"
                 "{\"padding\":{\"RAW_DECRYPT\":{}}},"
                 "{\"padding\":{\"PKCS1_V15\":{}}}]}}",
                 value);
        rsa_status = emu_request(&fx->emu.env, "PUT", "/crypto/v1/keys",
                                 authorization, body, NULL);
        snprintf(body, cap,
                 "{\"name\":\"fault-secret\",\"obj_type\":\"SECRET\","
                 "\"value\":\"%s\",\"key_ops\":[\"EXPORT\","
                 "\"APPMANAGEABLE\"]}",
                 secret);
        secret_status = emu_request(&fx->emu.env, "PUT", "/crypto/v1/keys",
                                    authorization, body, NULL);
    }
    OPENSSL_free(body);
    OPENSSL_free(secret);
    OPENSSL_free(value);
    OPENSSL_clear_free(der, der_len > 0 ? (size_t)der_len : 0);
    return rsa_status / 100 == 2 && secret_status / 100 == 2;
}

static int fixture_open_libctx(fixture *fx)
{
    char key_file[400];
    unsigned char *spki = NULL;
    const unsigned char *p;
    int len;

    snprintf(key_file, sizeof(key_file), "%s/api-key", fx->emu.state);
    fx->libctx = configured_libctx("faults", fx->emu.endpoint, fx->emu.ca_file,
                                   key_file);
    if (fx->libctx == NULL)
        return 0;
    fx->smartkey_rsa = load_key(fx->libctx, "smartkey:name=fault-rsa");
    len = i2d_PUBKEY(fx->standin, &spki);
    p = spki;
    if (len > 0)
        fx->file_public = d2i_PUBKEY_ex(NULL, &p, len, fx->libctx, NULL);
    OPENSSL_free(spki);
    if (fx->smartkey_rsa == NULL || fx->file_public == NULL) {
        ERR_print_errors_fp(stderr);
        return 0;
    }
    return 1;
}

static int fixture_setup(fixture *fx, const char *name)
{
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->emu.state, sizeof(fx->emu.state), "%s/%s", work_dir, name);
    fx->standin = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (fx->standin == NULL || RAND_bytes(fx->secret, sizeof(fx->secret)) != 1)
        return 0;
    if (!emulator_start(&fx->emu)) {
        fprintf(stderr, "the emulator did not start\n");
        return 0;
    }
    return import_keys(fx) && fixture_open_libctx(fx);
}

static void fixture_teardown(fixture *fx)
{
    EVP_PKEY_free(fx->smartkey_rsa);
    EVP_PKEY_free(fx->file_public);
    EVP_PKEY_free(fx->standin);
    OSSL_LIB_CTX_free(fx->libctx);
    emulator_stop(&fx->emu);
}

/* ---- the three operations, each checked locally ---- */

typedef enum op_kind { OP_DECRYPT, OP_SIGN, OP_WRAP, OP_COUNT } op_kind;

static const char *const op_names[OP_COUNT] = {"decrypt", "sign", "wrap"};
static const char *const op_paths[OP_COUNT] = {
    "/crypto/v1/decrypt", "/crypto/v1/sign", "/crypto/v1/wrapkey"};

typedef enum outcome { OUT_OK, OUT_FAILED, OUT_WRONG } outcome;

/* RSA-OAEP with the local stand-in key (default provider). */
static int local_rsa(fixture *fx, int encrypt, const unsigned char *in,
                     size_t in_len, unsigned char *out, size_t *out_len)
{
    return tc_local_oaep(fx->standin, encrypt, in, in_len, out, out_len);
}

static outcome decrypt_once(fixture *fx)
{
    unsigned char message[48], cipher[512], plain[512];
    size_t cipher_len = sizeof(cipher), plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx;
    int ok;

    if (RAND_bytes(message, sizeof(message)) != 1 ||
        !local_rsa(fx, 1, message, sizeof(message), cipher, &cipher_len))
        return OUT_WRONG; /* the test itself broke: count it loudly */
    ctx = EVP_PKEY_CTX_new_from_pkey(fx->libctx, fx->smartkey_rsa, propq);
    ok = ctx != NULL && EVP_PKEY_decrypt_init_ex(ctx, tc_oaep_sha256) > 0 &&
         EVP_PKEY_decrypt(ctx, plain, &plain_len, cipher, cipher_len) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return OUT_FAILED;
    return plain_len == sizeof(message) &&
                   memcmp(plain, message, sizeof(message)) == 0
               ? OUT_OK
               : OUT_WRONG;
}

static outcome sign_once(fixture *fx)
{
    unsigned char message[64], signature[512];
    size_t signature_len = sizeof(signature);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    if (md == NULL || RAND_bytes(message, sizeof(message)) != 1) {
        EVP_MD_CTX_free(md);
        return OUT_WRONG;
    }
    ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", fx->libctx, propq,
                               fx->smartkey_rsa, NULL) > 0 &&
         EVP_DigestSign(md, signature, &signature_len, message,
                        sizeof(message)) > 0;
    EVP_MD_CTX_free(md);
    if (!ok)
        return OUT_FAILED;
    md = EVP_MD_CTX_new();
    ok = md != NULL &&
         EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, "provider=default",
                                 fx->standin, NULL) > 0 &&
         EVP_DigestVerify(md, signature, signature_len, message,
                          sizeof(message)) == 1;
    EVP_MD_CTX_free(md);
    return ok ? OUT_OK : OUT_WRONG;
}

/* A server-side wrap of fault-secret under wrapping_key (the SmartKey key,
   or the public key "from a file", registered as a transient key). */
static outcome wrap_under(fixture *fx, EVP_PKEY *wrapping_key)
{
    OSSL_PARAM params[4];
    unsigned char wrapped[512], plain[512];
    size_t wrapped_len = sizeof(wrapped), plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx;
    int ok;

    tc_wrap_params(params, "smartkey:name=fault-secret");
    ctx = EVP_PKEY_CTX_new_from_pkey(fx->libctx, wrapping_key, propq);
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, wrapped, &wrapped_len, NULL, 0) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return OUT_FAILED;
    if (!local_rsa(fx, 0, wrapped, wrapped_len, plain, &plain_len))
        return OUT_WRONG;
    return plain_len == sizeof(fx->secret) &&
                   memcmp(plain, fx->secret, plain_len) == 0
               ? OUT_OK
               : OUT_WRONG;
}

/* Decryption with pad_mode "none" (a modulus-long number below the
   modulus) or "pkcs1" (32 bytes), encrypted by the stand-in. */
static outcome decrypt_padded(fixture *fx, const char *pad_mode)
{
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
                                         (char *)pad_mode, 0),
        OSSL_PARAM_construct_end(),
    };
    unsigned char message[512], cipher[512], plain[512];
    size_t size = (size_t)EVP_PKEY_get_size(fx->standin);
    size_t cipher_len = sizeof(cipher), plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx;
    int ok;

    if (strcmp(pad_mode, OSSL_PKEY_RSA_PAD_MODE_NONE) != 0)
        size = 32;
    if (size > sizeof(message) || RAND_bytes(message, (int)size) != 1)
        return OUT_WRONG;
    message[0] = 0;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, fx->standin, "provider=default");
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, cipher, &cipher_len, message, size) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return OUT_WRONG;
    ctx = EVP_PKEY_CTX_new_from_pkey(fx->libctx, fx->smartkey_rsa, propq);
    ok = ctx != NULL && EVP_PKEY_decrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_decrypt(ctx, plain, &plain_len, cipher, cipher_len) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return OUT_FAILED;
    return plain_len == size && memcmp(plain, message, size) == 0 ? OUT_OK
                                                                  : OUT_WRONG;
}

static outcome run_op(fixture *fx, op_kind op)
{
    switch (op) {
    case OP_DECRYPT:
        return decrypt_once(fx);
    case OP_SIGN:
        return sign_once(fx);
    default:
        return wrap_under(fx, fx->smartkey_rsa);
    }
}

/*
 * Records an operation in the row. expect_ok: 1 it must succeed, 0 it must
 * fail (with an error containing `error_text` when not NULL), -1 either.
 */
static void record(figures *row, outcome result, int expect_ok,
                   const char *error_text, const char *what)
{
    char errors[4096];
    int as_expected;

    take_errors(errors);
    row->operations++;
    if (result == OUT_WRONG) {
        row->wrong_results++;
        tc_check(0, "%s: no wrong result", what);
        return;
    }
    if (result == OUT_OK) {
        row->succeeded++;
        as_expected = expect_ok != 0;
    } else {
        as_expected = expect_ok != 1 &&
                      (error_text == NULL || strstr(errors, error_text));
        if (as_expected)
            row->failed_as_expected++;
    }
    if (!as_expected) {
        row->unexpected++;
        tc_check(0, "%s: %s", what,
                 result == OUT_OK ? "succeeded but should have failed"
                                  : "failed unexpectedly");
        if (errors[0] != '\0')
            fprintf(stderr, "%s", errors);
    }
}

static void row_checks(const figures *row)
{
    tc_check(row->unexpected == 0 && row->operations > 0,
             "%s: %d operations behave as expected", row->fault,
             row->operations);
    tc_check(row->wrong_results == 0, "%s: 0 wrong results", row->fault);
}

static long count_of(fixture *fx, const char *method, const char *path)
{
    char key[128];
    long n;

    snprintf(key, sizeof(key), "%s %s", method, path);
    n = emu_request_count(&fx->emu.env, key);
    return n < 0 ? 0 : n;
}

static int add_fault(fixture *fx, const char *path, int count,
                     const char *action_fields)
{
    char rule[256];

    snprintf(rule, sizeof(rule), "{\"path\":\"%s\",\"count\":%d,%s}", path,
             count, action_fields);
    return emu_add_fault(&fx->emu.env, rule);
}

/* ---- scenarios ---- */

static void scenario_session_expiry(fixture *fx)
{
    figures *row = new_row("session expiry between operations");
    long auths;

    /* past auth = auto's first requests, which carry the API key: from
       then on the process works in a session */
    for (int i = 0; i < OP_COUNT; i++)
        record(row, run_op(fx, (op_kind)i), 1, NULL, "warm-up operation");
    emu_reset_counters(&fx->emu.env);
    for (int i = 0; i < 30; i++) {
        emu_expire_sessions(&fx->emu.env);
        record(row, run_op(fx, (op_kind)(i % OP_COUNT)), 1, NULL,
               "operation after sessions/expire");
    }
    auths = count_of(fx, "POST", "/sys/v1/session/auth");
    row_checks(row);
    tc_check(auths == 30,
             "each expiry cost exactly one re-authentication (%ld)", auths);
}

/* 429/503 below and above the retry budget, for each operation. */
static void scenario_status(fixture *fx, int status, int retry_after)
{
    char fields[96], name[64];
    const char *text = status == 429 ? "throttling" : "server error";
    figures *row;

    snprintf(name, sizeof(name), "%d %s Retry-After", status,
             retry_after ? "with" : "without");
    row = new_row(name);
    if (retry_after)
        snprintf(fields, sizeof(fields),
                 "\"action\":\"status\",\"status\":%d,\"retry_after\":1",
                 status);
    else
        snprintf(fields, sizeof(fields), "\"action\":\"status\",\"status\":%d",
                 status);
    /* Retry-After makes each retry wait a second: fewer rounds */
    for (int i = 0; i < (retry_after ? 1 : 5) * OP_COUNT; i++) {
        int op = i % OP_COUNT;
        const char *path = op_paths[op];
        double started;
        long sent;

        /* RETRIES faults: the last attempt gets through */
        emu_reset_counters(&fx->emu.env);
        add_fault(fx, path, RETRIES, fields);
        started = now_seconds();
        record(row, run_op(fx, (op_kind)op), 1, NULL, name);
        /* reported, not asserted: the wait is the server's wish */
        if (retry_after)
            printf("# %s: %d answers with Retry-After: 1, succeeded after "
                   "%.1f s\n",
                   op_names[op], RETRIES, now_seconds() - started);
        sent = count_of(fx, "POST", path);
        tc_check(sent == RETRIES + 1,
                 "%s %s: recovered after %d retries (%ld sent)", name,
                 op_names[op], RETRIES, sent);

        /* one fault more than the budget: a clean error, no extra request */
        emu_reset_counters(&fx->emu.env);
        add_fault(fx, path, RETRIES + 1, fields);
        record(row, run_op(fx, (op_kind)op), 0, text, name);
        sent = count_of(fx, "POST", path);
        tc_check(sent == RETRIES + 1,
                 "%s %s: gave up after the retry budget (%ld sent)", name,
                 op_names[op], sent);
        emu_clear_faults(&fx->emu.env);
    }
    row_checks(row);
}

/* An EC P-256 key generated in SmartKey under `name`, as genpkey does. */
static outcome generate_key(fixture *fx, const char *name)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-256",
                                         0),
        OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_KEY_NAME, (char *)name,
                                         0),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(fx->libctx, "EC", propq);
    EVP_PKEY *generated = NULL;
    int ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_params(ctx, params) > 0 &&
             EVP_PKEY_generate(ctx, &generated) > 0;

    ok = ok && EVP_PKEY_get_bits(generated) == 256;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(generated);
    return ok ? OUT_OK : OUT_FAILED;
}

/* Key generation and transient imports create objects: never sent twice. */
static void scenario_not_retried(fixture *fx)
{
    static const char *const faults[] = {
        "\"action\":\"status\",\"status\":503",
        "\"action\":\"status\",\"status\":429",
        "\"action\":\"status\",\"status\":503,\"retry_after\":1",
        "\"action\":\"status\",\"status\":429,\"retry_after\":1",
        "\"action\":\"reset\"",
    };
    figures *row = new_row("429/503/reset on keygen, transient import");

    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        char name[32];
        long sent;

        snprintf(name, sizeof(name), "fault-generated-%zu", i);
        emu_reset_counters(&fx->emu.env);
        add_fault(fx, "/crypto/v1/keys", 1, faults[i]);
        record(row, generate_key(fx, name), 0, NULL, "key generation");
        sent = count_of(fx, "POST", "/crypto/v1/keys");
        tc_check(sent == 1, "key generation under %s: sent once (%ld)",
                 faults[i], sent);

        emu_clear_faults(&fx->emu.env);
        emu_reset_counters(&fx->emu.env);
        add_fault(fx, "/crypto/v1/keys", 1, faults[i]);
        record(row, wrap_under(fx, fx->file_public), 0, NULL,
               "wrap under a transient key");
        sent = count_of(fx, "PUT", "/crypto/v1/keys");
        tc_check(sent == 1 && count_of(fx, "POST", "/crypto/v1/wrapkey") == 0,
                 "transient import under %s: sent once (%ld), no wrap",
                 faults[i], sent);
        emu_clear_faults(&fx->emu.env);
    }
    /* without a fault both work: the failures above were the faults' */
    record(row, generate_key(fx, "fault-generated-ok"), 1, NULL,
           "key generation without fault");
    record(row, wrap_under(fx, fx->file_public), 1, NULL,
           "wrap under a transient key without fault");
    row_checks(row);
}

static void scenario_reset(fixture *fx)
{
    figures *row = new_row("connection reset");

    for (int i = 0; i < 5 * OP_COUNT; i++) {
        int op = i % OP_COUNT;
        long sent;

        emu_reset_counters(&fx->emu.env);
        add_fault(fx, op_paths[op], 1, "\"action\":\"reset\"");
        record(row, run_op(fx, (op_kind)op), 1, NULL, "reset once");
        tc_check(count_of(fx, "POST", op_paths[op]) == 2,
                 "%s: a reset is retried once", op_names[op]);

        /* libcurl itself resends once on a reused connection that closed
           without an answer, so an attempt may cost two requests */
        emu_reset_counters(&fx->emu.env);
        add_fault(fx, op_paths[op], 100, "\"action\":\"reset\"");
        record(row, run_op(fx, (op_kind)op), 0, "cannot reach",
               "reset on every attempt");
        sent = count_of(fx, "POST", op_paths[op]);
        tc_check(sent >= RETRIES + 1 && sent <= 2 * (RETRIES + 1),
                 "%s: resets are retried a bounded number of times (%ld)",
                 op_names[op], sent);
        emu_clear_faults(&fx->emu.env);
    }
    row_checks(row);
}

static void scenario_stall(fixture *fx)
{
    figures *row = new_row("stall beyond request_timeout");
    char fields[64];

    snprintf(fields, sizeof(fields), "\"action\":\"stall\",\"seconds\":%d",
             STALL_S);
    for (int op = 0; op < OP_COUNT; op++) {
        double started, elapsed;

        add_fault(fx, op_paths[op], 1, fields);
        started = now_seconds();
        record(row, run_op(fx, (op_kind)op), 0, "did not answer in time",
               "stalled operation");
        elapsed = now_seconds() - started;
        /* reported, not asserted: ctest's TIMEOUT bounds the test */
        printf("# %s stalled %d s, request_timeout %d s: failed after %.1f s\n",
               op_names[op], STALL_S, REQUEST_TIMEOUT_S, elapsed);
        emu_clear_faults(&fx->emu.env);
        /* the next operation works again */
        record(row, run_op(fx, (op_kind)op), 1, NULL, "after a stall");
    }
    row_checks(row);
}

/* Broken or hostile bodies: a clean error (or a retried success), never a
   wrong result; then the same operation works again. */
static void scenario_bodies(fixture *fx, const char *action)
{
    char fields[96], name[64];
    figures *row;

    snprintf(name, sizeof(name), "%s answer", action);
    row = new_row(name);
    if (strcmp(action, "oversized") == 0)
        snprintf(fields, sizeof(fields),
                 "\"action\":\"oversized\",\"bytes\":4194304");
    else
        snprintf(fields, sizeof(fields), "\"action\":\"%s\"", action);
    for (int op = 0; op < OP_COUNT; op++) {
        for (int round = 0; round < 3; round++) {
            /* a truncated body is a lost answer: retried up to the budget */
            int faults = strcmp(action, "truncate") == 0 ? RETRIES + 1 : 1;

            add_fault(fx, op_paths[op], faults, fields);
            record(row, run_op(fx, (op_kind)op), 0, NULL, name);
            emu_clear_faults(&fx->emu.env);
            record(row, run_op(fx, (op_kind)op), 1, NULL, "after the fault");
        }
    }
    /* the session's own answer broken as well */
    emu_expire_sessions(&fx->emu.env);
    add_fault(fx, "/sys/v1/session/auth", RETRIES + 1, fields);
    record(row, run_op(fx, OP_SIGN), 0, NULL, "broken session answer");
    emu_clear_faults(&fx->emu.env);
    record(row, run_op(fx, OP_SIGN), 1, NULL, "after the fault");
    row_checks(row);
}

static void scenario_restart(fixture *fx)
{
    figures *row = new_row("server restart");
    int port = fx->emu.port;

    for (int i = 0; i < 6; i++)
        record(row, run_op(fx, (op_kind)(i % OP_COUNT)), 1, NULL,
               "before the restart");
    emulator_stop(&fx->emu);
    for (int op = 0; op < OP_COUNT; op++)
        record(row, run_op(fx, (op_kind)op), 0, "cannot reach",
               "while the server is down");
    if (!emulator_start(&fx->emu) || fx->emu.port != port) {
        tc_check(0, "the emulator restarts on port %d", port);
        return;
    }
    /* same app, same EVP_PKEYs, a server that forgot every session */
    for (int i = 0; i < 30; i++)
        record(row, run_op(fx, (op_kind)(i % OP_COUNT)), 1, NULL,
               "after the restart");
    row_checks(row);
}

/* ---- results of the wrong length, through reshape_proxy.py ---- */

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

static pid_t start_proxy(fixture *fx, const char *shape_file, int *port)
{
    char port_file[400], line[32];
    pid_t pid;

    snprintf(port_file, sizeof(port_file), "%s/proxy-port", work_dir);
    pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execlp("python3", "python3", reshape_proxy, fx->emu.endpoint,
               fx->emu.ca_file, shape_file, port_file, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 300; i++) {
        if (read_line(port_file, line, sizeof(line))) {
            *port = atoi(line);
            return pid;
        }
        usleep(100 * 1000);
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

typedef struct reshape_case {
    op_kind op;
    const char *shape;
} reshape_case;

/*
 * A BYOK artifact of fault-secret under the SmartKey key: format as
 * smartkey-wrap-format, OAEP with hash. sha256 and rsa-aes-key-wrap
 * results are checked here (the stand-in opens the OAEP block); a JWE is
 * only produced (test/byok verifies JWEs offline).
 */
static outcome byok_once(fixture *fx, const char *format, const char *hash)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
                                         OSSL_PKEY_RSA_PAD_MODE_OAEP, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
                                         (char *)hash, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
                                         (char *)hash, 0),
        OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT,
                                         "smartkey:name=fault-secret", 0),
        OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_FORMAT,
                                         (char *)format, 0),
        OSSL_PARAM_construct_utf8_string(SMARTKEY_PARAM_WRAP_KID, "k1", 0),
        OSSL_PARAM_construct_end(),
    };
    unsigned char out[8192], aes[512], digest[32], unwrapped[512];
    size_t out_len = sizeof(out), aes_len = sizeof(aes);
    size_t modulus = (size_t)EVP_PKEY_get_size(fx->standin);
    int ok, n = 0, tail = 0;
    EVP_PKEY_CTX *ctx;
    EVP_CIPHER_CTX *kwp;

    ctx = EVP_PKEY_CTX_new_from_pkey(fx->libctx, fx->smartkey_rsa, propq);
    ok = ctx != NULL && EVP_PKEY_encrypt_init_ex(ctx, params) > 0 &&
         EVP_PKEY_encrypt(ctx, out, &out_len, NULL, 0) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return OUT_FAILED;
    if (strcmp(format, "sha256") == 0)
        return SHA256(fx->secret, sizeof(fx->secret), digest) != NULL &&
                       out_len == sizeof(digest) &&
                       memcmp(out, digest, sizeof(digest)) == 0
                   ? OUT_OK
                   : OUT_WRONG;
    if (strcmp(format, "rsa-aes-key-wrap") != 0)
        return OUT_OK;
    /* OAEP(SHA-256) of the AES key || KWP of the secret */
    if (out_len <= modulus || !local_rsa(fx, 0, out, modulus, aes, &aes_len) ||
        aes_len != 32)
        return OUT_WRONG;
    kwp = EVP_CIPHER_CTX_new();
    if (kwp != NULL)
        EVP_CIPHER_CTX_set_flags(kwp, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    ok = kwp != NULL &&
         EVP_DecryptInit_ex(kwp, EVP_aes_256_wrap_pad(), NULL, aes, NULL) &&
         out_len - modulus <= sizeof(unwrapped) &&
         EVP_DecryptUpdate(kwp, unwrapped, &n, out + modulus,
                           (int)(out_len - modulus)) &&
         EVP_DecryptFinal_ex(kwp, unwrapped + n, &tail);
    EVP_CIPHER_CTX_free(kwp);
    OPENSSL_cleanse(aes, sizeof(aes));
    return ok && (size_t)(n + tail) == sizeof(fx->secret) &&
                   memcmp(unwrapped, fx->secret, sizeof(fx->secret)) == 0
               ? OUT_OK
               : OUT_WRONG;
}

typedef struct byok_case {
    const char *format, *hash, *shape, *error;
} byok_case;

/* BYOK artifacts of damaged lengths or parameters, each after an
   undamaged one, through the proxy. */
static void hostile_byok(fixture *fx, figures *row, const char *shape_file)
{
    static const byok_case cases[] = {
        {"rsa-aes-key-wrap", "SHA256", "one-byte", "RSA-OAEP block"},
        {"rsa-aes-key-wrap", "SHA256", "drop-last", "RSA-OAEP block"},
        {"rsa-aes-key-wrap", "SHA256", "extra-byte", "RSA-OAEP block"},
        {"jwe", "SHA1", "aes-128-cek", "128-bit key, 256 bits were asked"},
        {"jwe", "SHA1", "other-iv", "IV other than the 12-byte IV sent"},
        {"jwe", "SHA1", "drop-last", "RSA-OAEP block"},
        {"sha256", "SHA256", "drop-last", "a SHA-256 has 32"},
        {"sha256", "SHA256", "one-byte", "a SHA-256 has 32"},
    };
    char what[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(what, sizeof(what), "%s with a %s answer", cases[i].format,
                 cases[i].shape);
        write_text(shape_file, "as-is");
        record(row, byok_once(fx, cases[i].format, cases[i].hash), 1, NULL,
               "BYOK artifact before the damage");
        write_text(shape_file, cases[i].shape);
        record(row, byok_once(fx, cases[i].format, cases[i].hash), 0,
               cases[i].error, what);
    }
}

/* Key info answering with another key than asked for, by name and by
   kid, each followed by the same lookup undamaged, through the proxy. */
static void hostile_key_info(fixture *fx, figures *row, const char *shape_file,
                             const char *endpoint, const char *key_file)
{
    const char *lookups[][2] = {{"other-name", "smartkey:name=fault-ec"},
                                {"other-kid", NULL}};
    char kid[37] = "", uri[64], what[128];

    /* a key this process never loaded: each lookup goes to SmartKey */
    if (!emu_create_key(&fx->emu.env,
                        "{\"name\":\"fault-ec\",\"obj_type\":\"EC\","
                        "\"elliptic_curve\":\"NistP256\",\"key_ops\":"
                        "[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                        kid)) {
        tc_check(0, "the EC key for the key-info cases is created");
        return;
    }
    snprintf(uri, sizeof(uri), "smartkey:kid=%s", kid);
    lookups[1][1] = uri;
    for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
        OSSL_LIB_CTX *fresh = configured_libctx(lookups[i][0], endpoint,
                                                fx->emu.ca_file, key_file);
        EVP_PKEY *key;

        if (fresh == NULL) {
            tc_check(0, "%s: a library context through the proxy",
                     lookups[i][0]);
            continue;
        }
        write_text(shape_file, lookups[i][0]);
        key = load_key(fresh, lookups[i][1]);
        snprintf(what, sizeof(what), "key info answering %s for %s",
                 lookups[i][0], lookups[i][1]);
        record(row, key != NULL ? OUT_OK : OUT_FAILED, 0,
               "answered the key lookup with another key", what);
        EVP_PKEY_free(key);
        write_text(shape_file, "as-is");
        key = load_key(fresh, lookups[i][1]);
        record(row, key != NULL ? OUT_OK : OUT_FAILED, 1, NULL,
               "the same lookup, undamaged");
        EVP_PKEY_free(key);
        OSSL_LIB_CTX_free(fresh);
    }
    write_text(shape_file, "as-is");
}

/* BYOK results and key info that cannot be right, through the proxy. */
static void hostile_byok_and_key_info(fixture *fx, figures *row,
                                      const char *shape_file,
                                      const char *endpoint,
                                      const char *key_file)
{
    hostile_byok(fx, row, shape_file);
    hostile_key_info(fx, row, shape_file, endpoint, key_file);
}

/* Each operation answered with a result of a wrong length, three rounds. */
static void reshaped_lengths(fixture *fx, figures *row, const char *shape_file)
{
    /* only lengths the provider can know to be wrong: an RSA signature or
       an RSA-OAEP block is exactly the modulus long, an OAEP plaintext at
       most k - 2 hLen - 2 bytes */
    static const reshape_case cases[] = {
        {OP_SIGN, "drop-last"},    {OP_SIGN, "extra-byte"},
        {OP_SIGN, "empty"},        {OP_SIGN, "oversized"},
        {OP_DECRYPT, "over-oaep"}, {OP_DECRYPT, "oversized"},
        {OP_WRAP, "drop-last"},    {OP_WRAP, "extra-byte"},
        {OP_WRAP, "empty"},        {OP_WRAP, "oversized"},
    };

    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            char what[96];

            snprintf(what, sizeof(what), "%s with a %s result",
                     op_names[cases[i].op], cases[i].shape);
            write_text(shape_file, cases[i].shape);
            record(row, run_op(fx, cases[i].op), 0, NULL, what);
        }
}

/* Raw and PKCS#1 v1.5 decryption, undamaged and with wrong lengths. */
static void reshaped_padded(fixture *fx, figures *row, const char *shape_file)
{
    /* RSA without padding: exactly the modulus, not a byte less;
       PKCS#1 v1.5: at most k - 11 bytes */
    write_text(shape_file, "as-is");
    record(row, decrypt_padded(fx, OSSL_PKEY_RSA_PAD_MODE_NONE), 1, NULL,
           "raw decrypt with an unchanged result");
    record(row, decrypt_padded(fx, OSSL_PKEY_RSA_PAD_MODE_PKCSV15), 1, NULL,
           "PKCS#1 v1.5 decrypt with an unchanged result");
    for (size_t i = 0; i < 4; i++) {
        static const char *const shapes[][3] = {
            {OSSL_PKEY_RSA_PAD_MODE_NONE, "drop-last", "raw RSA"},
            {OSSL_PKEY_RSA_PAD_MODE_NONE, "empty", NULL},
            {OSSL_PKEY_RSA_PAD_MODE_NONE, "extra-byte", NULL},
            {OSSL_PKEY_RSA_PAD_MODE_PKCSV15, "over-pkcs1", "at most 245"}};
        char what[96];

        snprintf(what, sizeof(what), "%s decrypt with a %s result",
                 shapes[i][0], shapes[i][1]);
        write_text(shape_file, shapes[i][1]);
        record(row, decrypt_padded(fx, shapes[i][0]), 0, shapes[i][2], what);
    }
}

/* Every reshaped case against the key loaded through the proxy, between
   two rounds of unchanged answers. */
static void reshaped_cases(fixture *fx, figures *row, const char *shape_file,
                           const char *endpoint, const char *key_file)
{
    for (int op = 0; op < OP_COUNT; op++)
        record(row, run_op(fx, (op_kind)op), 1, NULL,
               "unchanged answer through the proxy");
    reshaped_lengths(fx, row, shape_file);
    hostile_byok_and_key_info(fx, row, shape_file, endpoint, key_file);
    reshaped_padded(fx, row, shape_file);
    write_text(shape_file, "as-is");
    for (int op = 0; op < OP_COUNT; op++)
        record(row, run_op(fx, (op_kind)op), 1, NULL, "unchanged answer again");
    row_checks(row);
}

static void scenario_reshaped(fixture *fx)
{
    figures *row = new_row("wrong-length signature/plaintext/wrapped key");
    OSSL_LIB_CTX *direct_libctx = fx->libctx, *proxied = NULL;
    EVP_PKEY *direct_key = fx->smartkey_rsa, *proxied_key = NULL;
    char shape_file[400], endpoint[64], key_file[400];
    int port = 0;
    pid_t proxy;

    snprintf(shape_file, sizeof(shape_file), "%s/shape", work_dir);
    snprintf(key_file, sizeof(key_file), "%s/api-key", fx->emu.state);
    if (!write_text(shape_file, "as-is") ||
        (proxy = start_proxy(fx, shape_file, &port)) < 0) {
        tc_check(0, "the reshaping proxy starts");
        return;
    }
    snprintf(endpoint, sizeof(endpoint), "https://127.0.0.1:%d", port);
    proxied =
        configured_libctx("reshaped", endpoint, fx->emu.ca_file, key_file);
    if (proxied != NULL) {
        fx->libctx = proxied;
        proxied_key = load_key(proxied, "smartkey:name=fault-rsa");
    }
    if (proxied_key == NULL) {
        tc_check(0, "the key loads through the proxy");
    } else {
        fx->smartkey_rsa = proxied_key;
        reshaped_cases(fx, row, shape_file, endpoint, key_file);
    }
    fx->libctx = direct_libctx;
    fx->smartkey_rsa = direct_key;
    EVP_PKEY_free(proxied_key);
    OSSL_LIB_CTX_free(proxied);
    kill(proxy, SIGTERM);
    waitpid(proxy, NULL, 0);
}

/* ---- TLS: certificates made here, served with --cert/--key ---- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    ok = ext != NULL && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate for key, valid from now+from_days to now+to_days, signed by
   issuer (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san,
                       long from_days, long to_days, X509 *issuer,
                       EVP_PKEY *issuer_key)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok;

    ok = cert != NULL && name != NULL && X509_set_version(cert, 2) &&
         ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)rand() + 1) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0) &&
         X509_set_subject_name(cert, name) &&
         X509_set_issuer_name(
             cert, issuer != NULL ? X509_get_subject_name(issuer) : name) &&
         X509_gmtime_adj(X509_getm_notBefore(cert), from_days * 86400L) &&
         X509_gmtime_adj(X509_getm_notAfter(cert), to_days * 86400L) &&
         X509_set_pubkey(cert, key);
    if (ok && issuer == NULL)
        ok = add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(cert, cert, NID_key_usage, "critical,keyCertSign");
    if (ok && san != NULL)
        ok = add_ext(cert, issuer, NID_subject_alt_name, san);
    if (ok)
        ok = X509_sign(cert, issuer_key != NULL ? issuer_key : key,
                       EVP_sha256()) > 0;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static int write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (f == NULL)
        return 0;
    ok = cert != NULL ? PEM_write_X509(f, cert)
                      : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return ok;
}

typedef struct tls_case {
    const char *fault;
    const char *san; /* of the server certificate */
    long from_days, to_days;
    int trust_other_ca;
    int expect_ok;
} tls_case;

/* The certificates every TLS case shares, and where they were written. */
typedef struct tls_material {
    EVP_PKEY *ca_key, *server_key;
    X509 *ca;
    char ca_path[400], other_path[400], server_key_path[400];
} tls_material;

/* Case I: the emulator served with a certificate shaped by C, and five
   key lookups of an application configured to trust the CA C names. */
static void tls_case_run(const tls_case *c, size_t i, const tls_material *m)
{
    figures *row = new_row(c->fault);
    X509 *cert = make_cert(m->server_key, "smartkey-emulator", c->san,
                           c->from_days, c->to_days, m->ca, m->ca_key);
    emulator server;
    OSSL_LIB_CTX *libctx = NULL;
    char key_file[400], cnf[32];

    memset(&server, 0, sizeof(server));
    snprintf(server.state, sizeof(server.state), "%s/tls-%zu", work_dir, i);
    snprintf(server.cert, sizeof(server.cert), "%s/tls-%zu.crt", work_dir, i);
    snprintf(server.key, sizeof(server.key), "%s", m->server_key_path);
    snprintf(server.ca_file, sizeof(server.ca_file), "%s", m->ca_path);
    snprintf(cnf, sizeof(cnf), "tls-%zu", i);
    if (cert == NULL || !write_pem(server.cert, cert, NULL) ||
        !emulator_start(&server)) {
        tc_check(0, "%s: the emulator starts with its certificate", c->fault);
        X509_free(cert);
        return;
    }
    snprintf(key_file, sizeof(key_file), "%s/api-key", server.state);
    libctx = configured_libctx(cnf, server.endpoint,
                               c->trust_other_ca ? m->other_path : m->ca_path,
                               key_file);
    for (int n = 0; n < 5 && libctx != NULL; n++) {
        /* the key lookup is the first request of an application */
        EVP_PKEY *key = load_key(libctx, "smartkey:name=absent");

        /* the emulator has no such key: 404 proves TLS succeeded */
        record(row, key != NULL ? OUT_WRONG : OUT_FAILED, 0,
               c->expect_ok ? "no such key" : "TLS with SmartKey failed",
               c->fault);
        EVP_PKEY_free(key);
    }
    tc_check(libctx != NULL, "%s: configuration loads", c->fault);
    row_checks(row);
    OSSL_LIB_CTX_free(libctx);
    emulator_stop(&server);
    X509_free(cert);
}

static void scenario_tls(fixture *fx)
{
    static const tls_case cases[] = {
        {"wrong CA", "DNS:localhost,IP:127.0.0.1", -1, 30, 1, 0},
        {"wrong hostname", "DNS:other.example", -1, 30, 0, 0},
        {"expired certificate", "DNS:localhost,IP:127.0.0.1", -30, -1, 0, 0},
        {"trusted certificate (control: TLS works, the key is absent)",
         "DNS:localhost,IP:127.0.0.1", -1, 30, 0, 1},
    };
    tls_material m;
    EVP_PKEY *other_key;
    X509 *other_ca;

    m.ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    m.server_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    m.ca = make_cert(m.ca_key, "fault-test-ca", NULL, -1, 30, NULL, NULL);
    other_ca = make_cert(other_key, "fault-other-ca", NULL, -1, 30, NULL, NULL);
    snprintf(m.ca_path, sizeof(m.ca_path), "%s/test-ca.pem", work_dir);
    snprintf(m.other_path, sizeof(m.other_path), "%s/other-ca.pem", work_dir);
    snprintf(m.server_key_path, sizeof(m.server_key_path), "%s/server.key",
             work_dir);
    if (m.ca == NULL || other_ca == NULL || m.server_key == NULL ||
        !write_pem(m.ca_path, m.ca, NULL) ||
        !write_pem(m.other_path, other_ca, NULL) ||
        !write_pem(m.server_key_path, NULL, m.server_key))
        tc_check(0, "test certificates made");
    else
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            tls_case_run(&cases[i], i, &m);
    X509_free(m.ca);
    X509_free(other_ca);
    EVP_PKEY_free(m.ca_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(m.server_key);
    (void)fx;
}

/* ---- main ---- */

typedef struct scenario {
    const char *name;
    void (*run)(fixture *fx);
} scenario;

static void status_429(fixture *fx)
{
    scenario_status(fx, 429, 0);
}
static void status_429_ra(fixture *fx)
{
    scenario_status(fx, 429, 1);
}
static void status_503(fixture *fx)
{
    scenario_status(fx, 503, 0);
}
static void status_503_ra(fixture *fx)
{
    scenario_status(fx, 503, 1);
}
static void bodies_truncate(fixture *fx)
{
    scenario_bodies(fx, "truncate");
}
static void bodies_malformed(fixture *fx)
{
    scenario_bodies(fx, "malformed");
}
static void bodies_oversized(fixture *fx)
{
    scenario_bodies(fx, "oversized");
}
static void bodies_wrong_type(fixture *fx)
{
    scenario_bodies(fx, "wrong_type");
}

static const scenario scenarios[] = {
    {"session-expiry", scenario_session_expiry},
    {"429", status_429},
    {"429-retry-after", status_429_ra},
    {"503", status_503},
    {"503-retry-after", status_503_ra},
    {"not-retried", scenario_not_retried},
    {"reset", scenario_reset},
    {"stall", scenario_stall},
    {"truncate", bodies_truncate},
    {"malformed", bodies_malformed},
    {"oversized", bodies_oversized},
    {"wrong-type", bodies_wrong_type},
    {"wrong-length", scenario_reshaped},
    {"restart", scenario_restart},
    {"tls", scenario_tls},
};

static void print_table(void)
{
    printf("\n| fault | operations | succeeded | failed as expected | "
           "unexpected | wrong results |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < table_rows; i++)
        printf("| %s | %d | %d | %d | %d | %d |\n", table[i].fault,
               table[i].operations, table[i].succeeded,
               table[i].failed_as_expected, table[i].unexpected,
               table[i].wrong_results);
    printf("\n");
}

static int remove_tree(const char *dir)
{
    char command[400];

    /* only the directory mkdtemp made above */
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    return system(command);
}

/*
 * OSSL_LIB_CTX_load_config() only knows the "providers" module once
 * OpenSSL's own configuration was loaded; an empty file keeps the system
 * openssl.cnf out of the test.
 */
static int register_config_modules(void)
{
    char path[400];
    OPENSSL_INIT_SETTINGS *settings = OPENSSL_INIT_new();
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/empty.cnf", work_dir);
    f = fopen(path, "w");
    if (f == NULL || settings == NULL) {
        if (f != NULL)
            fclose(f);
        OPENSSL_INIT_free(settings);
        return 0;
    }
    fclose(f);
    ok = OPENSSL_INIT_set_config_filename(settings, path) &&
         OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, settings);
    OPENSSL_INIT_free(settings);
    return ok;
}

/* Checks the command line and prepares the process (environment, curl,
   work directory, configuration modules); returns -1 to go on, else the
   exit status (0 after listing the scenarios). */
static int prepare(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");

    if (argc < 5) {
        fprintf(stderr,
                "usage: %s EMULATOR MODULE_DIR RESHAPE_PROXY "
                "SCENARIO...|all|list\n",
                argv[0]);
        return 2;
    }
    reshape_proxy = argv[3];
    /* openssl.cnf's module path must not depend on the current directory */
    emulator_program = realpath(argv[1], NULL);
    module_dir = realpath(argv[2], NULL);
    if (emulator_program == NULL || module_dir == NULL) {
        fprintf(stderr, "no such emulator or module directory\n");
        return 2;
    }
    if (strcmp(argv[4], "list") == 0) {
        for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
            printf("%s\n", scenarios[i].name);
        return 0;
    }
    /* the application's environment must not override the test's files */
    unsetenv(SMARTKEY_ENV_API_ENDPOINT);
    unsetenv(SMARTKEY_ENV_API_KEY);
    unsetenv(SMARTKEY_ENV_CA_FILE);
    unsetenv(FORTANIX_ENV_API_ENDPOINT);
    unsetenv(FORTANIX_ENV_API_KEY);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(work_dir, sizeof(work_dir), "%s/smartkey-faults.XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(work_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    if (!register_config_modules())
        return 2;
    return -1;
}

/* Runs scenario SC against a fixture of its own. */
static void run_scenario(const scenario *sc)
{
    fixture fx;

    printf("# scenario %s\n", sc->name);
    fflush(stdout);
    if (!fixture_setup(&fx, sc->name)) {
        tc_check(0, "%s: set-up (emulator, keys, provider)", sc->name);
        ERR_print_errors_fp(stderr);
    } else {
        emu_reset_counters(&fx.emu.env);
        sc->run(&fx);
    }
    fixture_teardown(&fx);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int ran = 0, rc = prepare(argc, argv);

    if (rc >= 0)
        return rc;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        int wanted = 0;

        for (int a = 4; a < argc; a++)
            wanted |= strcmp(argv[a], "all") == 0 ||
                      strcmp(argv[a], scenarios[i].name) == 0;
        if (!wanted)
            continue;
        ran++;
        run_scenario(&scenarios[i]);
    }
    if (ran == 0)
        tc_check(0, "a known scenario was named");
    print_table();
    remove_tree(work_dir);
    free((char *)emulator_program);
    free((char *)module_dir);
    return tc_report();
}
