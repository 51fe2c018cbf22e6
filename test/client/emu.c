#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include "emu.h"

int emu_init(emu_env *env)
{
    const char *key_file = getenv("SMARTKEY_TEST_API_KEY_FILE");
    FILE *f;

    memset(env, 0, sizeof(*env));
    env->endpoint = getenv("SMARTKEY_TEST_ENDPOINT");
    env->ca_file = getenv("SMARTKEY_TEST_CA");
    if (env->endpoint == NULL || key_file == NULL) {
        fprintf(stderr, "run me through with-emulator.sh\n");
        return 0;
    }
    f = fopen(key_file, "r");
    if (f == NULL || fgets(env->api_key, sizeof(env->api_key), f) == NULL) {
        fprintf(stderr, "cannot read the emulator's API key\n");
        if (f != NULL)
            fclose(f);
        return 0;
    }
    fclose(f);
    env->api_key[strcspn(env->api_key, "\r\n")] = '\0';
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 1;
}

long emu_run_threads(int count, void *(*fn)(void *), void *arg)
{
    pthread_t threads[64];
    long failures = 0;
    int started = 0;

    while (started < count && started < 64 &&
           pthread_create(&threads[started], NULL, fn, arg) == 0)
        started++;
    for (int i = 0; i < started; i++) {
        void *result;

        pthread_join(threads[i], &result);
        failures += (long)result;
    }
    return started == count ? failures : -1;
}

size_t emu_on_body(char *data, size_t size, size_t n, void *arg)
{
    emu_buffer *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);

    if (grown == NULL)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, data, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

long emu_request(const emu_env *env, const char *method, const char *path,
                 const char *authorization, const char *body, json_t **answer)
{
    CURL *h = curl_easy_init();
    struct curl_slist *headers = NULL;
    emu_buffer b = {NULL, 0};
    char url[512], header[600];
    long status = 0;

    if (answer != NULL)
        *answer = NULL;
    if (h == NULL)
        return 0;
    snprintf(url, sizeof(url), "%s%s", env->endpoint, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    if (env->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, env->ca_file);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (authorization != NULL) {
        snprintf(header, sizeof(header), "Authorization: %s", authorization);
        headers = curl_slist_append(headers, header);
    }
    if (body != NULL) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    } else if (strcmp(method, "POST") == 0) {
        /* no body, so no Content-Type (libcurl would send a form type) */
        headers = curl_slist_append(headers, "Content-Type:");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, emu_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (answer != NULL && b.len > 0)
        *answer = json_loadb(b.data, b.len, 0, NULL);
    free(b.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return status;
}

int emu_create_key(const emu_env *env, const char *json_request, char kid[37])
{
    char authorization[560];
    json_t *answer = NULL;
    long status;
    const char *value;

    snprintf(authorization, sizeof(authorization), "Basic %s", env->api_key);
    status = emu_request(env, "POST", "/crypto/v1/keys", authorization,
                         json_request, &answer);
    value = json_string_value(json_object_get(answer, "kid"));
    if (status != 201 || value == NULL || strlen(value) != 36) {
        fprintf(stderr, "key creation failed: HTTP %ld\n", status);
        json_decref(answer);
        return 0;
    }
    memcpy(kid, value, 37);
    json_decref(answer);
    return 1;
}

void emu_reset_counters(const emu_env *env)
{
    emu_request(env, "POST", "/_emulator/counters/reset", NULL, NULL, NULL);
}

long emu_request_count(const emu_env *env, const char *key)
{
    json_t *answer = NULL;
    long count = -1;

    if (emu_request(env, "GET", "/_emulator/counters", NULL, NULL, &answer) ==
        200) {
        json_t *value =
            json_object_get(json_object_get(answer, "requests"), key);

        count = json_is_integer(value) ? (long)json_integer_value(value) : 0;
    }
    json_decref(answer);
    return count;
}

long emu_counter(const emu_env *env, const char *name)
{
    json_t *answer = NULL;
    long count = -1;

    if (emu_request(env, "GET", "/_emulator/counters", NULL, NULL, &answer) ==
        200) {
        json_t *value = json_object_get(answer, name);

        count = json_is_integer(value) ? (long)json_integer_value(value) : 0;
    }
    json_decref(answer);
    return count;
}

int emu_add_fault(const emu_env *env, const char *rule)
{
    long status =
        emu_request(env, "POST", "/_emulator/faults", NULL, rule, NULL);

    return status >= 200 && status < 300;
}

void emu_clear_faults(const emu_env *env)
{
    emu_request(env, "DELETE", "/_emulator/faults", NULL, NULL, NULL);
}

void emu_expire_sessions(const emu_env *env)
{
    emu_request(env, "POST", "/_emulator/sessions/expire", NULL, NULL, NULL);
}

int emu_set_approval(const emu_env *env, int required)
{
    long status = emu_request(
        env, "POST", "/_emulator/approval", NULL,
        required ? "{\"required\":true}" : "{\"required\":false}", NULL);

    return status >= 200 && status < 300;
}

int emu_oaep_sha256_encrypt(EVP_PKEY *pkey, const unsigned char *in,
                            size_t in_len, unsigned char *out, size_t *out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    int ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_encrypt(ctx, out, out_len, in, in_len) == 1;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* expect: 0 or the OSSL_STORE_INFO type the store is told to expect */
static EVP_PKEY *load_first(OSSL_LIB_CTX *libctx, const char *propq,
                            const char *uri, int public_too, int expect)
{
    OSSL_STORE_CTX *store =
        OSSL_STORE_open_ex(uri, libctx, propq, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *pkey = NULL;

    if (store != NULL && expect != 0)
        OSSL_STORE_expect(store, expect);
    while (store != NULL && pkey == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        else if (public_too &&
                 OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PUBKEY)
            pkey = OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return pkey;
}

EVP_PKEY *emu_load_pkey(OSSL_LIB_CTX *libctx, const char *propq,
                        const char *uri)
{
    return load_first(libctx, propq, uri, 0, 0);
}

EVP_PKEY *emu_load_any_key(OSSL_LIB_CTX *libctx, const char *propq,
                           const char *uri)
{
    return load_first(libctx, propq, uri, 1, 0);
}

EVP_PKEY *emu_load_private_key(OSSL_LIB_CTX *libctx, const char *uri)
{
    return load_first(libctx, NULL, uri, 0, OSSL_STORE_INFO_PKEY);
}

int emu_read_file(const char *path, unsigned char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");

    if (f == NULL)
        return 0;
    *len = fread(buf, 1, cap, f);
    fclose(f);
    return *len > 0 && *len < cap;
}

OSSL_LIB_CTX *emu_provider_libctx(const char *module_dir, int smartkey_first)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    const char *first = smartkey_first ? "smartkey" : "default";
    const char *second = smartkey_first ? "default" : "smartkey";

    if (libctx == NULL ||
        !OSSL_PROVIDER_set_default_search_path(libctx, module_dir) ||
        OSSL_PROVIDER_load(libctx, first) == NULL ||
        OSSL_PROVIDER_load(libctx, second) == NULL) {
        ERR_print_errors_fp(stderr);
        OSSL_LIB_CTX_free(libctx);
        return NULL;
    }
    return libctx;
}
