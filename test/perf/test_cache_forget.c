/*
 * Key cache invalidation (issue #7): the provider caches a key's
 * description for cache_lifetime, so a key deleted in SmartKey and made
 * again under the same name would be invisible to a long-running process
 * until then. When SmartKey answers 404 for an operation on a cached key,
 * the key is forgotten: the next load in the same process looks the name
 * up again and gets the new key. A 403 (the key disabled, its permissions
 * changed) forgets it too: once the key is enabled again, the next load
 * asks SmartKey rather than trusting the cached description. A load that
 * follows no failure still comes from the cache. ECDSA sign and RSA-OAEP
 * decrypt. Counts only.
 *
 * Usage (through test/client/with-emulator.sh): test_cache_forget
 * MODULE-DIR. Only the public header and OpenSSL's public API are used.
 */
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

#define INFO_REQUEST "POST /crypto/v1/keys/info"

static const char ec_request[] =
    "{\"name\":\"cached ec\",\"obj_type\":\"EC\",\"elliptic_curve\":"
    "\"NistP256\",\"key_ops\":[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}";
static const char rsa_request[] =
    "{\"name\":\"cached rsa\",\"obj_type\":\"RSA\",\"key_size\":2048,"
    "\"key_ops\":[\"ENCRYPT\",\"DECRYPT\",\"APPMANAGEABLE\"]}";
static const char disabled_ec_request[] =
    "{\"name\":\"disabled ec\",\"obj_type\":\"EC\",\"elliptic_curve\":"
    "\"NistP256\",\"key_ops\":[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}";
static const char disabled_rsa_request[] =
    "{\"name\":\"disabled rsa\",\"obj_type\":\"RSA\",\"key_size\":2048,"
    "\"key_ops\":[\"ENCRYPT\",\"DECRYPT\",\"APPMANAGEABLE\"]}";
static const unsigned char message[] = "a message to sign";
static const unsigned char secret[] = "thirty-two bytes of cached secret";

static emu_env env;
static OSSL_LIB_CTX *libctx;

static EVP_PKEY *load_key(const char *uri)
{
    return emu_load_pkey(libctx, NULL, uri);
}

/* METHOD /crypto/v1/keys/{kid} with the app's API key; the HTTP status. */
static long key_request(const char *method, const char *kid, const char *body)
{
    char path[96], authorization[600];

    snprintf(path, sizeof(path), "/crypto/v1/keys/%s", kid);
    snprintf(authorization, sizeof(authorization), "Basic %s", env.api_key);
    return emu_request(&env, method, path, authorization, body, NULL);
}

static int delete_key(const char *kid)
{
    return key_request("DELETE", kid, NULL) == 204;
}

static int set_enabled(const char *kid, int enabled)
{
    return key_request("PATCH", kid,
                       enabled ? "{\"enabled\":true}"
                               : "{\"enabled\":false}") == 200;
}

typedef struct seen_status {
    const char *status;
    int seen;
} seen_status;

static int collect_error(const char *str, size_t len, void *arg)
{
    seen_status *s = arg;

    (void)len;
    if (strstr(str, s->status) != NULL)
        s->seen = 1;
    return 1;
}

/* The operation failed and the provider said why: SmartKey's status. */
static int failed_with(int ok, const char *status)
{
    seen_status s = {status, 0};

    ERR_print_errors_cb(collect_error, &s);
    return !ok && s.seen;
}

/* A signature by key, checked with key itself (as fetched). */
static int sign_and_verify(EVP_PKEY *key)
{
    return tc_sign_and_verify_ex(libctx, NULL, key, NULL, key, message,
                                 sizeof(message));
}

static int oaep(EVP_PKEY_CTX *ctx)
{
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL) > 0;
}

/* Encrypts locally with the public half, decrypts in SmartKey. */
static int encrypt_and_decrypt(EVP_PKEY *key)
{
    unsigned char cipher[256], plain[256];
    size_t cipher_len = sizeof(cipher), plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    int ok;

    ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) > 0 && oaep(ctx) &&
         EVP_PKEY_encrypt(ctx, cipher, &cipher_len, secret, sizeof(secret)) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return 0;
    ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) > 0 && oaep(ctx) &&
         EVP_PKEY_decrypt(ctx, plain, &plain_len, cipher, cipher_len) > 0 &&
         plain_len == sizeof(secret) &&
         memcmp(plain, secret, sizeof(secret)) == 0;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/*
 * Creates the key of request in SmartKey (its kid into kid) and loads it by
 * uri into *key: checks that it loads and works. 0 (a failed check) when
 * it cannot be created.
 */
static int create_and_load(const char *what, const char *uri,
                           const char *request, int (*use)(EVP_PKEY *),
                           char kid[37], EVP_PKEY **key)
{
    if (!emu_create_key(&env, request, kid)) {
        tc_check(0, "%s: the key is created", what);
        return 0;
    }
    *key = load_key(uri);
    tc_check(*key != NULL && use(*key), "%s: the key loads and works", what);
    ERR_clear_error();
    return 1;
}

/*
 * One scenario: load by name, use, delete in SmartKey, use again (404),
 * recreate under the same name, load again in this process.
 */
static void scenario(const char *what, const char *uri, const char *request,
                     int (*use)(EVP_PKEY *))
{
    char kid[37], new_kid[37];
    EVP_PKEY *old_key = NULL, *again = NULL, *new_key = NULL;

    if (!create_and_load(what, uri, request, use, kid, &old_key))
        return;

    emu_reset_counters(&env);
    again = load_key(uri);
    tc_check(again != NULL && emu_request_count(&env, INFO_REQUEST) == 0,
             "%s: a second load comes from the cache (no lookup)", what);

    tc_check(delete_key(kid), "%s: the key is deleted in SmartKey", what);
    tc_check(failed_with(old_key != NULL && use(old_key), "404"),
             "%s: the operation fails with not found", what);

    if (!emu_create_key(&env, request, new_kid)) {
        tc_check(0, "%s: a key of the same name is created", what);
        goto end;
    }
    emu_reset_counters(&env);
    new_key = load_key(uri);
    tc_check(new_key != NULL && emu_request_count(&env, INFO_REQUEST) == 1,
             "%s: the next load looks the name up again (1 lookup)", what);
    tc_check(new_key != NULL && strcmp(kid, new_kid) != 0 &&
                 EVP_PKEY_eq(new_key, old_key) != 1 && use(new_key),
             "%s: it gets the new key, which works", what);
end:
    ERR_clear_error();
    EVP_PKEY_free(old_key);
    EVP_PKEY_free(again);
    EVP_PKEY_free(new_key);
}

/*
 * Load by name, use, disable in SmartKey, use again (403), enable again:
 * the next load looks the key up instead of serving the cached one.
 */
static void disabled_scenario(const char *what, const char *uri,
                              const char *request, int (*use)(EVP_PKEY *))
{
    char kid[37];
    EVP_PKEY *key = NULL, *again = NULL;

    if (!create_and_load(what, uri, request, use, kid, &key))
        return;

    tc_check(set_enabled(kid, 0), "%s: the key is disabled in SmartKey", what);
    tc_check(failed_with(key != NULL && use(key), "403"),
             "%s: the operation fails with 403", what);
    tc_check(set_enabled(kid, 1), "%s: the key is enabled again", what);

    emu_reset_counters(&env);
    again = load_key(uri);
    tc_check(again != NULL && emu_request_count(&env, INFO_REQUEST) == 1,
             "%s: after the 403 the next load looks the key up (1 lookup)",
             what);
    tc_check(again != NULL && use(again), "%s: the reloaded key works", what);
    ERR_clear_error();
    EVP_PKEY_free(key);
    EVP_PKEY_free(again);
}

int main(int argc, char **argv)
{
    const char *module_dir = tc_emulator_args(argc, argv, &env);

    if (module_dir == NULL)
        return 2;
    libctx = tc_provider_libctx(module_dir);
    if (libctx == NULL)
        return tc_setup_failed("cannot load the providers");

    scenario("ECDSA sign", "smartkey:name=cached%20ec", ec_request,
             sign_and_verify);
    scenario("RSA-OAEP decrypt", "smartkey:name=cached%20rsa", rsa_request,
             encrypt_and_decrypt);
    disabled_scenario("ECDSA sign, disabled", "smartkey:name=disabled%20ec",
                      disabled_ec_request, sign_and_verify);
    disabled_scenario("RSA-OAEP decrypt, disabled",
                      "smartkey:name=disabled%20rsa", disabled_rsa_request,
                      encrypt_and_decrypt);

    OSSL_LIB_CTX_free(libctx);
    return tc_report();
}
