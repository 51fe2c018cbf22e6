/*
 * The REST client against a real smartkey-emulator (started by
 * with-emulator.sh). Request counts come from the emulator's counters;
 * nothing here asserts wall-clock times.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include "cunit_run.h"
#include "client.h"
#include "emu.h"

#define AUTH_REQUEST "POST /sys/v1/session/auth"
#define INFO_REQUEST "POST /crypto/v1/keys/info"

static emu_env env;
static char rsa_kid[37], ec_kid[37], aes_kid[37];

static sk_client *new_client_auth(const char *endpoint, const char *api_key,
                                  const char *ca_file, int retries,
                                  sk_auth_mode auth)
{
    sk_client_config cfg = {0};
    sk_error err;
    sk_client *client;

    cfg.endpoint = endpoint;
    cfg.api_key = api_key;
    cfg.ca_file = ca_file;
    cfg.retries = retries;
    cfg.connect_timeout_ms = 3000;
    cfg.request_timeout_ms = 10000;
    cfg.auth = auth;
    client = sk_client_new(&cfg, &err);
    if (client == NULL)
        fprintf(stderr, "sk_client_new: %s\n", err.message);
    return client;
}

static sk_client *new_client_with(const char *endpoint, const char *api_key,
                                  const char *ca_file, int retries)
{
    return new_client_auth(endpoint, api_key, ca_file, retries,
                           SK_AUTH_SESSION);
}

static sk_client *new_client(void)
{
    return new_client_with(env.endpoint, env.api_key, env.ca_file, -1);
}

static int info_by_name(sk_client *client, const char *name, sk_key_info **info,
                        sk_error *err)
{
    sk_key_ref ref = {NULL, name};

    return sk_client_key_info(client, &ref, info, err);
}

/* A lookup that must work: it opens the session and the connection. */
static int rsa_lookup_works(sk_client *client)
{
    sk_key_info *info = NULL;
    sk_error err;
    int ok = info_by_name(client, "client-rsa", &info, &err) == 1;

    sk_key_info_free(info);
    return ok;
}

/* Counts start after the session is open, so only the faulted calls count. */
static void open_session_then_add_fault(sk_client *client, const char *rule)
{
    CU_ASSERT(rsa_lookup_works(client));
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(emu_add_fault(&env, rule));
}

static EVP_PKEY *public_key_of(const sk_key_info *info)
{
    const unsigned char *p = info->pub_key;

    return info->pub_key != NULL ? d2i_PUBKEY(NULL, &p, (long)info->pub_key_len)
                                 : NULL;
}

/* The public key SmartKey returned parses, with the expected type and size. */
static void expect_public_key(const sk_key_info *info, const char *type,
                              int bits)
{
    EVP_PKEY *pkey = public_key_of(info);

    CU_ASSERT_FATAL(pkey != NULL);
    CU_ASSERT(EVP_PKEY_is_a(pkey, type));
    CU_ASSERT_EQUAL(EVP_PKEY_get_bits(pkey), bits);
    EVP_PKEY_free(pkey);
}

static int suite_init(void)
{
    if (!emu_init(&env))
        return 1;
    if (!emu_create_key(&env,
                        "{\"name\":\"client-rsa\",\"obj_type\":\"RSA\","
                        "\"key_size\":2048,\"pub_exponent\":65537,"
                        "\"key_ops\":[\"SIGN\",\"VERIFY\",\"ENCRYPT\","
                        "\"DECRYPT\",\"WRAPKEY\",\"UNWRAPKEY\","
                        "\"APPMANAGEABLE\"],"
                        "\"rsa\":{\"encryption_policy\":[{\"padding\":"
                        "{\"OAEP\":{}}}],\"signature_policy\":[{}]}}",
                        rsa_kid) ||
        !emu_create_key(&env,
                        "{\"name\":\"client-ec\",\"obj_type\":\"EC\","
                        "\"elliptic_curve\":\"NistP256\","
                        "\"key_ops\":[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                        ec_kid) ||
        !emu_create_key(&env,
                        "{\"name\":\"client-aes\",\"obj_type\":\"AES\","
                        "\"key_size\":256,\"key_ops\":[\"ENCRYPT\","
                        "\"DECRYPT\",\"EXPORT\",\"APPMANAGEABLE\"]}",
                        aes_kid))
        return 1;
    return 0;
}

/* ---- lookups ---- */

static void test_key_info_by_name_returns_rsa_fields_and_public_key(void)
{
    sk_client *client = new_client();
    sk_key_info *info = NULL;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT_FATAL(info_by_name(client, "client-rsa", &info, &err) == 1);
    CU_ASSERT_STRING_EQUAL(info->kid, rsa_kid);
    CU_ASSERT_STRING_EQUAL(info->name, "client-rsa");
    CU_ASSERT_EQUAL(info->obj_type, SK_OBJ_RSA);
    CU_ASSERT_EQUAL(info->key_size, 2048);
    CU_ASSERT_EQUAL(info->curve, SK_CURVE_NONE);
    CU_ASSERT((info->key_ops & (SK_OP_SIGN | SK_OP_DECRYPT)) ==
              (SK_OP_SIGN | SK_OP_DECRYPT));
    CU_ASSERT((info->key_ops & SK_OP_EXPORT) == 0);
    CU_ASSERT(info->enabled);
    CU_ASSERT(info->active);
    CU_ASSERT(!info->public_only);
    expect_public_key(info, "RSA", 2048);
    sk_key_info_free(info);
    sk_client_free(client);
}

static void test_key_info_by_kid_returns_ec_curve_and_public_key(void)
{
    sk_client *client = new_client();
    sk_key_ref ref = {ec_kid, NULL};
    sk_key_info *info = NULL;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT_FATAL(sk_client_key_info(client, &ref, &info, &err) == 1);
    CU_ASSERT_STRING_EQUAL(info->kid, ec_kid);
    CU_ASSERT_STRING_EQUAL(info->name, "client-ec");
    CU_ASSERT_EQUAL(info->obj_type, SK_OBJ_EC);
    CU_ASSERT_EQUAL(info->curve, SK_CURVE_P256);
    CU_ASSERT(info->key_ops & SK_OP_SIGN);
    expect_public_key(info, "EC", 256);
    sk_key_info_free(info);
    sk_client_free(client);
}

static void test_unknown_key_is_not_found_with_smartkey_message(void)
{
    sk_client *client = new_client();
    sk_key_info *info = NULL;
    sk_error err;
    char line[700];

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT(info_by_name(client, "no-such-key", &info, &err) == 0);
    CU_ASSERT(info == NULL);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(err.http_status, 404);
    CU_ASSERT_STRING_EQUAL(err.request, INFO_REQUEST);
    CU_ASSERT(err.message[0] != '\0');
    sk_error_string(&err, line, sizeof(line));
    CU_ASSERT(strstr(line, "404") != NULL);
    sk_client_free(client);
}

static void test_invalid_key_reference_fails_without_network(void)
{
    /* A port nobody listens on: any network use would fail differently. */
    sk_client *client = new_client_with("https://127.0.0.1:1", "key", NULL, 0);
    sk_key_ref both = {rsa_kid, "client-rsa"}, bad_kid = {"not-a-uuid", NULL};
    sk_key_info *info = NULL;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT(sk_client_key_info(client, &both, &info, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_BAD_REQUEST);
    CU_ASSERT(sk_client_key_info(client, &bad_kid, &info, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_BAD_REQUEST);
    sk_client_free(client);
}

static void test_list_keys_filters_by_exact_name(void)
{
    sk_client *client = new_client();
    sk_key_info **list = NULL;
    size_t count = 0;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT_FATAL(
        sk_client_list_keys(client, "client-ec", &list, &count, &err) == 1);
    CU_ASSERT_EQUAL_FATAL(count, 1);
    CU_ASSERT_STRING_EQUAL(list[0]->kid, ec_kid);
    sk_key_info_list_free(list, count);
    CU_ASSERT_FATAL(sk_client_list_keys(client, NULL, &list, &count, &err) ==
                    1);
    CU_ASSERT(count >= 3);
    sk_key_info_list_free(list, count);
    CU_ASSERT(sk_client_list_keys(client, "no such key;%&=", &list, &count,
                                  &err) == 1);
    CU_ASSERT_EQUAL(count, 0);
    sk_key_info_list_free(list, count);
    sk_client_free(client);
}

/* show_value is sent only for certificates: an answer about any other
   object (here an exportable AES key, whose value would be its secret) is
   refused and nothing is handed back. */
static void test_certificate_read_refuses_any_other_object(void)
{
    sk_client *client = new_client();
    unsigned char *der = (unsigned char *)"untouched";
    size_t der_len = 99;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT(sk_client_certificate(client, aes_kid, &der, &der_len, &err) ==
              0);
    CU_ASSERT_PTR_NULL(der);
    CU_ASSERT_EQUAL(der_len, 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_PROTOCOL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "another object"));
    CU_ASSERT(
        sk_client_certificate(client, "client-aes", &der, &der_len, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_BAD_REQUEST);
    sk_client_free(client);
}

static void test_list_certificates_holds_certificates_only(void)
{
    sk_client *client = new_client();
    sk_key_info **list = NULL;
    size_t count = 99;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT_FATAL(sk_client_list_certificates(client, &list, &count, &err) ==
                    1);
    for (size_t i = 0; i < count; i++)
        CU_ASSERT_EQUAL(list[i]->obj_type, SK_OBJ_CERTIFICATE);
    sk_key_info_list_free(list, count);
    sk_client_free(client);
}

/* ---- configuration and transport errors ---- */

static void test_bad_api_key_is_an_auth_error(void)
{
    /* base64("00000000-0000-0000-0000-000000000000:wrong") */
    sk_client *client = new_client_with(
        env.endpoint,
        "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOndyb25n", env.ca_file,
        -1);
    sk_key_info *info = NULL;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT(info_by_name(client, "client-rsa", &info, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_AUTH);
    CU_ASSERT_EQUAL(err.http_status, 401);
    CU_ASSERT(strstr(err.message, "Ondyb25n") == NULL);
    sk_client_free(client);
}

/* A loopback port that refuses connections while *fd stays open: bound but
   never listening. Closing it before the connection attempt would let the
   kernel hand the port to a server of a test running in parallel. */
static int refused_port(int *fd)
{
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof(addr);
    int port = 0;

    *fd = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (*fd >= 0 && bind(*fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(*fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    return port;
}

static void test_closed_port_is_a_network_error(void)
{
    char endpoint[64];
    sk_client *client;
    sk_key_info *info = NULL;
    sk_error err;
    int fd, port = refused_port(&fd);

    if (port <= 0 && fd >= 0)
        close(fd);
    CU_ASSERT_FATAL(port > 0);
    snprintf(endpoint, sizeof(endpoint), "https://127.0.0.1:%d", port);
    client = new_client_with(endpoint, env.api_key, env.ca_file, 1);
    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT(info_by_name(client, "client-rsa", &info, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_NETWORK);
    CU_ASSERT_EQUAL(err.http_status, 0);
    CU_ASSERT(err.message[0] != '\0');
    sk_client_free(client);
    close(fd);
}

static void test_untrusted_server_certificate_is_a_tls_error(void)
{
    /* No ca_file: the emulator's private CA is not in the system store. */
    sk_client *client = new_client_with(env.endpoint, env.api_key, NULL, -1);
    sk_key_info *info = NULL;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT(info_by_name(client, "client-rsa", &info, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_TLS);
    CU_ASSERT(strstr(err.message, "certificate") != NULL);
    sk_client_free(client);
}

static void test_insecure_skip_verify_accepts_an_untrusted_server(void)
{
    sk_client_config cfg = {0};
    sk_client *client;
    sk_error err;

    cfg.endpoint = env.endpoint;
    cfg.api_key = env.api_key;
    cfg.retries = -1;
    cfg.insecure_skip_verify = 1;
    client = sk_client_new(&cfg, &err);
    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT(rsa_lookup_works(client));
    sk_client_free(client);
}

static void test_stalled_server_is_a_timeout(void)
{
    sk_client_config cfg = {0};
    sk_client *client;
    sk_key_info *info = NULL;
    sk_error err;

    cfg.endpoint = env.endpoint;
    cfg.api_key = env.api_key;
    cfg.ca_file = env.ca_file;
    cfg.retries = 0;
    cfg.request_timeout_ms = 1000;
    client = sk_client_new(&cfg, &err);
    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT_FATAL(emu_add_fault(&env, "{\"path\":\"/crypto/v1/keys/info\","
                                        "\"count\":1,\"action\":\"stall\","
                                        "\"seconds\":3}"));
    CU_ASSERT(info_by_name(client, "client-rsa", &info, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_TIMEOUT);
    emu_clear_faults(&env);
    sk_client_free(client);
}

/* ---- sessions ---- */

#define THREADS          16
#define CALLS_PER_THREAD 25

static void *lookup_many(void *arg)
{
    sk_client *client = arg;
    long failures = 0;

    for (int i = 0; i < CALLS_PER_THREAD; i++) {
        sk_key_info *info = NULL;
        sk_error err;

        if (!info_by_name(client, i % 2 ? "client-rsa" : "client-ec", &info,
                          &err))
            failures++;
        sk_key_info_free(info);
    }
    return (void *)failures;
}

/* THREADS threads look keys up at once through one client: every call
   succeeds, and all of them share one session. */
static void threads_share_one_session(sk_client *client)
{

    CU_ASSERT_FATAL(client != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_EQUAL(emu_run_threads(THREADS, lookup_many, client), 0);
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST),
                    THREADS * CALLS_PER_THREAD);
    sk_client_free(client);
}

static void test_sixteen_threads_share_one_session(void)
{
    threads_share_one_session(new_client());
}

static void test_expired_session_is_renewed_transparently(void)
{
    sk_client *client = new_client();

    CU_ASSERT_FATAL(client != NULL);
    emu_reset_counters(&env);
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    emu_expire_sessions(&env);
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 2);
    /* the refused call and its retry */
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 3);
    sk_client_free(client);
}

/* auth = auto: a one-shot process (two calls) never makes a session; the
   third call makes the one session every later call uses. */
static void test_auto_auth_makes_a_session_from_the_third_call(void)
{
    sk_client *client = new_client_auth(env.endpoint, env.api_key, env.ca_file,
                                        -1, SK_AUTH_AUTO);

    CU_ASSERT_FATAL(client != NULL);
    emu_reset_counters(&env);
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 7);
    /* an expired session is renewed as in session mode */
    emu_expire_sessions(&env);
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 2);
    sk_client_free(client);
}

static void test_auto_auth_threads_share_one_session(void)
{
    /* the first two calls carry the API key, the rest one session */
    threads_share_one_session(new_client_auth(env.endpoint, env.api_key,
                                              env.ca_file, -1, SK_AUTH_AUTO));
}

/* A server that refuses the API key on calls (sessions only): auto mode
   retries the refused call in a session and stays with sessions. */
static void test_auto_auth_falls_back_to_a_session_on_401(void)
{
    sk_client *client = new_client_auth(env.endpoint, env.api_key, env.ca_file,
                                        -1, SK_AUTH_AUTO);

    CU_ASSERT_FATAL(client != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(emu_add_fault(&env, "{\"path\":\"/crypto/v1/keys/info\","
                                        "\"count\":1,\"action\":\"status\","
                                        "\"status\":401}"));
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 2);
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 3);
    sk_client_free(client);
}

/* SmartKey may answer 403 for a dead session (docs/smartkey-api.md §2.4, §5.2).
 */
static void test_unexplained_403_renews_the_session_once(void)
{
    sk_client *client = new_client();
    sk_key_info *info = NULL;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    open_session_then_add_fault(client, "{\"path\":\"/crypto/v1/keys/info\","
                                        "\"count\":1,\"action\":\"status\","
                                        "\"status\":403}");
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 2);

    /* a 403 that persists is reported after one renewal, not looped on */
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(emu_add_fault(&env, "{\"path\":\"/crypto/v1/keys/info\","
                                        "\"count\":5,\"action\":\"status\","
                                        "\"status\":403}"));
    CU_ASSERT(info_by_name(client, "client-rsa", &info, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(err.http_status, 403);
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 2);
    emu_clear_faults(&env);
    sk_client_free(client);
}

static void test_approval_required_is_reported_without_reauthentication(void)
{
    sk_client *client = new_client();
    unsigned char digest[32] = {1}, *signature = NULL;
    size_t signature_len = 0;
    sk_sign_request req = {{ec_kid, NULL}, "SHA256",    digest,
                           sizeof(digest), SK_SIG_NONE, NULL,
                           NULL,           NULL,        0};
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(emu_set_approval(&env, 1));
    CU_ASSERT(sk_client_sign(client, &req, &signature, &signature_len, &err) ==
              0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_APPROVAL);
    CU_ASSERT_EQUAL(err.http_status, 403);
    CU_ASSERT_STRING_EQUAL(err.message, "This operation requires approval");
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, "POST /crypto/v1/sign"), 1);
    emu_set_approval(&env, 0);
    sk_client_free(client);
}

/* ---- retries and hostile answers ---- */

static void test_injected_503_is_retried(void)
{
    sk_client *client = new_client();

    CU_ASSERT_FATAL(client != NULL);
    open_session_then_add_fault(client, "{\"path\":\"/crypto/v1/keys/info\","
                                        "\"count\":1,\"action\":\"status\","
                                        "\"status\":503,\"retry_after\":1}");
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 2);
    emu_clear_faults(&env);
    sk_client_free(client);
}

static void test_503_beyond_the_retry_budget_is_a_server_error(void)
{
    sk_client *client =
        new_client_with(env.endpoint, env.api_key, env.ca_file, 1);
    sk_key_info *info = NULL;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    open_session_then_add_fault(client, "{\"path\":\"/crypto/v1/keys/info\","
                                        "\"count\":10,\"action\":\"status\","
                                        "\"status\":503}");
    CU_ASSERT(info_by_name(client, "client-rsa", &info, &err) == 0);
    CU_ASSERT_EQUAL(err.kind, SK_ERR_SERVER);
    CU_ASSERT_EQUAL(err.http_status, 503);
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 2);
    emu_clear_faults(&env);
    sk_client_free(client);
}

static void expect_clean_failure(sk_client *client, const char *rule,
                                 sk_err_kind kind1, sk_err_kind kind2)
{
    sk_key_info *info = NULL;
    sk_error err;

    CU_ASSERT_FATAL(emu_add_fault(&env, rule));
    CU_ASSERT(info_by_name(client, "client-rsa", &info, &err) == 0);
    CU_ASSERT(info == NULL);
    CU_ASSERT(err.kind == kind1 || err.kind == kind2);
    if (err.kind != kind1 && err.kind != kind2)
        fprintf(stderr, "\n  %s -> %s: %s\n", rule, sk_err_kind_name(err.kind),
                err.message);
    emu_clear_faults(&env);
    /* and the client is still usable */
    CU_ASSERT(rsa_lookup_works(client));
}

static void expect_clean_failure_of_new_client(const char *rule,
                                               sk_err_kind kind1,
                                               sk_err_kind kind2)
{
    sk_client *client = new_client();

    CU_ASSERT_FATAL(client != NULL);
    expect_clean_failure(client, rule, kind1, kind2);
    sk_client_free(client);
}

static void test_hostile_answers_give_clean_errors(void)
{
    sk_client *client = new_client();

    CU_ASSERT_FATAL(client != NULL);
    /* count 5 covers the retries of the retried kinds */
    expect_clean_failure(client,
                         "{\"path\":\"/crypto/v1/keys/info\",\"count\":5,"
                         "\"action\":\"malformed\"}",
                         SK_ERR_PROTOCOL, SK_ERR_PROTOCOL);
    expect_clean_failure(client,
                         "{\"path\":\"/crypto/v1/keys/info\",\"count\":5,"
                         "\"action\":\"truncate\"}",
                         SK_ERR_NETWORK, SK_ERR_PROTOCOL);
    expect_clean_failure(client,
                         "{\"path\":\"/crypto/v1/keys/info\",\"count\":5,"
                         "\"action\":\"oversized\",\"bytes\":3000000}",
                         SK_ERR_PROTOCOL, SK_ERR_PROTOCOL);
    expect_clean_failure(client,
                         "{\"path\":\"/crypto/v1/keys/info\",\"count\":5,"
                         "\"action\":\"wrong_type\"}",
                         SK_ERR_PROTOCOL, SK_ERR_PROTOCOL);
    expect_clean_failure(client,
                         "{\"path\":\"/crypto/v1/keys/info\",\"count\":5,"
                         "\"action\":\"reset\"}",
                         SK_ERR_NETWORK, SK_ERR_NETWORK);
    sk_client_free(client);

    /* a fresh client has to authenticate first */
    expect_clean_failure_of_new_client(
        "{\"path\":\"/sys/v1/session/auth\",\"count\":5,"
        "\"action\":\"wrong_type\"}",
        SK_ERR_PROTOCOL, SK_ERR_PROTOCOL);
    expect_clean_failure_of_new_client(
        "{\"path\":\"/sys/v1/session/auth\",\"count\":5,"
        "\"action\":\"truncate\"}",
        SK_ERR_NETWORK, SK_ERR_PROTOCOL);
}

/* ---- logs ---- */

typedef struct log_capture {
    pthread_mutex_t lock;
    char text[16384];
    size_t len;
    int lines;
} log_capture;

static void capture_log(void *arg, int level, const char *msg)
{
    log_capture *capture = arg;
    size_t len = strlen(msg);

    pthread_mutex_lock(&capture->lock);
    if (capture->len + len + 2 < sizeof(capture->text)) {
        memcpy(capture->text + capture->len, msg, len);
        capture->len += len;
        capture->text[capture->len++] = '\n';
        capture->text[capture->len] = '\0';
    }
    capture->lines++;
    pthread_mutex_unlock(&capture->lock);
}

static void test_logs_and_errors_never_show_the_api_key(void)
{
    static log_capture capture = {PTHREAD_MUTEX_INITIALIZER, "", 0, 0};
    sk_client_config cfg = {0};
    sk_client *client;
    sk_key_info *info = NULL;
    sk_error err;

    cfg.endpoint = env.endpoint;
    cfg.api_key = env.api_key;
    cfg.ca_file = env.ca_file;
    cfg.retries = 1;
    cfg.log = capture_log;
    cfg.log_arg = &capture;
    client = sk_client_new(&cfg, &err);
    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT(rsa_lookup_works(client));
    emu_expire_sessions(&env);
    CU_ASSERT(info_by_name(client, "no-such-key", &info, &err) == 0);
    CU_ASSERT(strstr(err.message, env.api_key) == NULL);
    CU_ASSERT(capture.lines >= 4);
    CU_ASSERT(strstr(capture.text, "POST /sys/v1/session/auth") != NULL);
    CU_ASSERT(strstr(capture.text, env.api_key) == NULL);
    CU_ASSERT(strstr(capture.text, "Bearer") == NULL);
    CU_ASSERT(strstr(capture.text, "Basic") == NULL);
    sk_client_free(client);
}

/* ---- connections and fork ---- */

static void test_sequential_calls_reuse_one_connection(void)
{
    sk_client *client = new_client();
    long before, overhead, after;

    CU_ASSERT_FATAL(client != NULL);
    /* Reading the counters may itself open a connection: measure that. */
    overhead = emu_counter(&env, "connections");
    before = emu_counter(&env, "connections");
    overhead = before - overhead;
    for (int i = 0; i < 20; i++) {
        sk_key_info *info = NULL;
        sk_error err;

        CU_ASSERT(info_by_name(client, "client-ec", &info, &err) == 1);
        sk_key_info_free(info);
    }
    after = emu_counter(&env, "connections");
    CU_ASSERT_EQUAL(after - before, 1 + overhead);
    sk_client_free(client);
}

static void test_fork_child_reconnects_and_parent_keeps_working(void)
{
    sk_client *client = new_client();
    sk_key_info *info = NULL;
    sk_error err;
    int status = -1;
    pid_t pid;

    CU_ASSERT_FATAL(client != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(info_by_name(client, "client-rsa", &info, &err) == 1);
    sk_key_info_free(info);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int ok = info_by_name(client, "client-ec", &info, &err) == 1 &&
                 strcmp(info->kid, ec_kid) == 0;

        sk_key_info_free(info);
        ok = ok && info_by_name(client, "client-rsa", &info, &err) == 1;
        sk_key_info_free(info);
        sk_client_free(client);
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(rsa_lookup_works(client));
    /* the child reused the parent's session */
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 4);
    sk_client_free(client);
}

/* The batcher's lock and queues go through fork() with the client's
   (batch.c's sk_batcher_at_fork): a child signs through the batcher. */
static int sign_once(sk_client *client)
{
    unsigned char digest[32] = {1}, *signature = NULL;
    size_t len = 0;
    sk_sign_request req = {{ec_kid, NULL}, "SHA256",    digest,
                           sizeof(digest), SK_SIG_NONE, NULL,
                           NULL,           NULL,        0};
    sk_error err;
    int ok = sk_client_sign(client, &req, &signature, &len, &err) == 1;

    OPENSSL_free(signature);
    return ok;
}

static void test_fork_child_signs_with_batching_on(void)
{
    sk_client_config cfg = {0};
    sk_client *client;
    sk_error err;
    int status = -1;
    pid_t pid;

    cfg.endpoint = env.endpoint;
    cfg.api_key = env.api_key;
    cfg.ca_file = env.ca_file;
    cfg.retries = -1;
    cfg.auth = SK_AUTH_SESSION;
    cfg.batch_max_size = 4;
    cfg.batch_max_wait_us = 1000;
    client = sk_client_new(&cfg, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(client);
    CU_ASSERT_FATAL(sign_once(client));
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int ok = sign_once(client) && sign_once(client);

        sk_client_free(client);
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(sign_once(client));
    sk_client_free(client);
}

/* ---- crypto calls ---- */

static int verify_locally(const sk_key_info *info, int padding,
                          const unsigned char *digest,
                          const unsigned char *signature, size_t len)
{
    EVP_PKEY *pkey = public_key_of(info);
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new(pkey, NULL) : NULL;
    int ok =
        ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
        (padding == 0 || EVP_PKEY_CTX_set_rsa_padding(ctx, padding) == 1) &&
        (padding != RSA_PKCS1_PSS_PADDING ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_AUTO) == 1) &&
        EVP_PKEY_verify(ctx, signature, len, digest, 32) == 1;

    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

static void test_signatures_verify_with_the_public_key(void)
{
    sk_client *client = new_client();
    unsigned char digest[32], *signature = NULL;
    size_t len = 0;
    sk_key_info *rsa = NULL, *ec = NULL;
    sk_sign_request req = {{rsa_kid, NULL},
                           "SHA256",
                           digest,
                           sizeof(digest),
                           SK_SIG_PKCS1_V15,
                           NULL,
                           NULL,
                           NULL,
                           0};
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    RAND_bytes(digest, sizeof(digest));
    CU_ASSERT_FATAL(info_by_name(client, "client-rsa", &rsa, &err) == 1);
    CU_ASSERT_FATAL(info_by_name(client, "client-ec", &ec, &err) == 1);

    CU_ASSERT(sk_client_sign(client, &req, &signature, &len, &err) == 1);
    CU_ASSERT_EQUAL(len, 256);
    CU_ASSERT(verify_locally(rsa, RSA_PKCS1_PADDING, digest, signature, len));
    OPENSSL_free(signature);

    req.padding = SK_SIG_PSS;
    CU_ASSERT(sk_client_sign(client, &req, &signature, &len, &err) == 1);
    CU_ASSERT(
        verify_locally(rsa, RSA_PKCS1_PSS_PADDING, digest, signature, len));
    OPENSSL_free(signature);

    req.key.kid = NULL;
    req.key.name = "client-ec";
    req.padding = SK_SIG_NONE;
    CU_ASSERT(sk_client_sign(client, &req, &signature, &len, &err) == 1);
    CU_ASSERT(verify_locally(ec, 0, digest, signature, len));
    OPENSSL_free(signature);

    sk_key_info_free(rsa);
    sk_key_info_free(ec);
    sk_client_free(client);
}

static void test_oaep_decrypt_recovers_local_encryption(void)
{
    sk_client *client = new_client();
    const unsigned char message[] = "the quick brown fox";
    unsigned char cipher[512], *plain = NULL;
    size_t cipher_len = sizeof(cipher), plain_len = 0;
    sk_key_info *rsa = NULL;
    sk_rsa_request req = {.key = {rsa_kid, NULL},
                          .padding = SK_RSA_OAEP,
                          .oaep_hash = "SHA256",
                          .in = cipher};
    EVP_PKEY *pkey;
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT_FATAL(info_by_name(client, "client-rsa", &rsa, &err) == 1);
    pkey = public_key_of(rsa);
    CU_ASSERT_FATAL(emu_oaep_sha256_encrypt(pkey, message, sizeof(message),
                                            cipher, &cipher_len));
    req.in_len = cipher_len;
    CU_ASSERT(sk_client_decrypt(client, &req, &plain, &plain_len, &err) == 1);
    CU_ASSERT_EQUAL(plain_len, sizeof(message));
    CU_ASSERT(plain != NULL && memcmp(plain, message, sizeof(message)) == 0);
    OPENSSL_clear_free(plain, plain_len);
    EVP_PKEY_free(pkey);
    sk_key_info_free(rsa);
    sk_client_free(client);
}

static void test_wrapkey_under_rsa_unwraps_to_the_aes_key(void)
{
    sk_client *client = new_client();
    unsigned char *wrapped = NULL, *plain = NULL;
    size_t wrapped_len = 0, plain_len = 0;
    sk_wrapkey_request wrap = {{rsa_kid, NULL},
                               {NULL, "client-aes"},
                               "RSA",
                               "SHA256",
                               NULL,
                               NULL,
                               NULL};
    sk_rsa_request unwrap = {
        .key = {rsa_kid, NULL}, .padding = SK_RSA_OAEP, .oaep_hash = "SHA256"};
    sk_error err;

    CU_ASSERT_FATAL(client != NULL);
    CU_ASSERT_FATAL(
        sk_client_wrapkey(client, &wrap, &wrapped, &wrapped_len, &err) == 1);
    CU_ASSERT_EQUAL(wrapped_len, 256);
    /* RSA-OAEP wrapping of an AES key is OAEP of its raw bytes. */
    unwrap.in = wrapped;
    unwrap.in_len = wrapped_len;
    CU_ASSERT(sk_client_decrypt(client, &unwrap, &plain, &plain_len, &err) ==
              1);
    CU_ASSERT_EQUAL(plain_len, 32);
    OPENSSL_clear_free(plain, plain_len);
    OPENSSL_free(wrapped);
    sk_client_free(client);
}

/* Run alone against an emulator started with --token-lifetime 2. */
static void test_session_is_renewed_before_it_expires(void)
{
    sk_client *client = new_client();

    CU_ASSERT_FATAL(client != NULL);
    emu_reset_counters(&env);
    CU_ASSERT(rsa_lookup_works(client));
    /* past 80 % of the 2 s idle lifetime */
    usleep(1800 * 1000);
    CU_ASSERT(rsa_lookup_works(client));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 2);
    /* renewed before use: no call was refused and retried */
    CU_ASSERT_EQUAL(emu_request_count(&env, INFO_REQUEST), 2);
    sk_client_free(client);
}

int main(int argc, char **argv)
{
    static const cunit_test tests[] = {
        CUNIT_TEST(test_key_info_by_name_returns_rsa_fields_and_public_key),
        CUNIT_TEST(test_key_info_by_kid_returns_ec_curve_and_public_key),
        CUNIT_TEST(test_unknown_key_is_not_found_with_smartkey_message),
        CUNIT_TEST(test_invalid_key_reference_fails_without_network),
        CUNIT_TEST(test_list_keys_filters_by_exact_name),
        CUNIT_TEST(test_certificate_read_refuses_any_other_object),
        CUNIT_TEST(test_list_certificates_holds_certificates_only),
        CUNIT_TEST(test_bad_api_key_is_an_auth_error),
        CUNIT_TEST(test_closed_port_is_a_network_error),
        CUNIT_TEST(test_untrusted_server_certificate_is_a_tls_error),
        CUNIT_TEST(test_insecure_skip_verify_accepts_an_untrusted_server),
        CUNIT_TEST(test_stalled_server_is_a_timeout),
        CUNIT_TEST(test_sixteen_threads_share_one_session),
        CUNIT_TEST(test_expired_session_is_renewed_transparently),
        CUNIT_TEST(test_auto_auth_makes_a_session_from_the_third_call),
        CUNIT_TEST(test_auto_auth_threads_share_one_session),
        CUNIT_TEST(test_auto_auth_falls_back_to_a_session_on_401),
        CUNIT_TEST(test_unexplained_403_renews_the_session_once),
        CUNIT_TEST(test_approval_required_is_reported_without_reauthentication),
        CUNIT_TEST(test_injected_503_is_retried),
        CUNIT_TEST(test_503_beyond_the_retry_budget_is_a_server_error),
        CUNIT_TEST(test_hostile_answers_give_clean_errors),
        CUNIT_TEST(test_logs_and_errors_never_show_the_api_key),
        CUNIT_TEST(test_sequential_calls_reuse_one_connection),
        CUNIT_TEST(test_fork_child_reconnects_and_parent_keeps_working),
        CUNIT_TEST(test_fork_child_signs_with_batching_on),
        CUNIT_TEST(test_signatures_verify_with_the_public_key),
        CUNIT_TEST(test_oaep_decrypt_recovers_local_encryption),
        CUNIT_TEST(test_wrapkey_under_rsa_unwraps_to_the_aes_key),
    };
    static const cunit_test renewal[] = {
        CUNIT_TEST(test_session_is_renewed_before_it_expires),
    };

    if (argc > 1 && strcmp(argv[1], "short-token-lifetime") == 0)
        return cunit_run("client", suite_init, NULL, renewal,
                         CUNIT_COUNT(renewal));
    return cunit_run("client", suite_init, NULL, tests, CUNIT_COUNT(tests));
}
