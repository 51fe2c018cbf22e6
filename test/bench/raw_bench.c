/*
 * raw-bench: the practical limit for the provider. A minimal libcurl client
 * sends the same HTTP requests the provider sends (one session, one
 * keep-alive connection per thread, JSON built and parsed with jansson,
 * Base64 with OpenSSL) for RSA-OAEP decrypt, ECDSA sign and RSA-OAEP wrap;
 * "encrypt" is a local RSA-OAEP encryption with the default provider;
 * "sign-nocheck" is "sign" without the verification of the signature.
 * Prints RESULT lines (bench_common.h); asserts nothing.
 *
 * Usage: raw-bench [--threads 1,4,16,64] [--ops N] [--only decrypt,...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "bench_common.h"
#include "test_common.h"

static const unsigned char message[] = "a message to sign";

static emu_env env;
static char bearer[1024];
static char rsa_kid[37], ec_kid[37];
static EVP_PKEY *rsa_public, *ec_public;
static char *cipher_b64, *hash_b64;
static CURL *handles[BENCH_MAX_THREADS];
static struct curl_slist *headers;

static unsigned char *unbase64(const char *in, size_t *len)
{
    size_t in_len = strlen(in);
    unsigned char *out = malloc(3 * (in_len / 4) + 1);
    int n;

    if (out == NULL || in_len % 4 != 0 ||
        (n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)in_len)) <
            0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n - (in_len > 0 && in[in_len - 1] == '=') -
           (in_len > 1 && in[in_len - 2] == '=');
    return out;
}

/* POST path with body on the thread's handle; returns the JSON answer. */
static json_t *post(int thread, const char *path, json_t *body)
{
    CURL *h = handles[thread];
    char url[512], *text = json_dumps(body, JSON_COMPACT);
    emu_buffer b = {NULL, 0};
    long status = 0;
    json_t *answer = NULL;

    json_decref(body);
    if (text == NULL)
        return NULL;
    snprintf(url, sizeof(url), "%s%s", env.endpoint, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(h) == CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 200 && b.data != NULL)
        answer = json_loadb(b.data, b.len, 0, NULL);
    free(text);
    free(b.data);
    return answer;
}

static unsigned char *post_for_bytes(int thread, const char *path, json_t *body,
                                     const char *field, size_t *len)
{
    json_t *answer = post(thread, path, body);
    const char *value = json_string_value(json_object_get(answer, field));
    unsigned char *out = value != NULL ? unbase64(value, len) : NULL;

    json_decref(answer);
    return out;
}

static json_t *oaep_sha256(void)
{
    return json_pack("{s:{s:{s:{s:s}}}}", "OAEP", "mgf", "mgf1", "hash",
                     "SHA256");
}

static int op_decrypt(int thread)
{
    size_t len = 0;
    unsigned char *plain = post_for_bytes(
        thread, "/crypto/v1/decrypt",
        json_pack("{s:{s:s},s:s,s:s,s:o}", "key", "kid", rsa_kid, "alg", "RSA",
                  "cipher", cipher_b64, "mode", oaep_sha256()),
        "plain", &len);
    int ok = plain != NULL && len == sizeof(bench_secret) &&
             memcmp(plain, bench_secret, len) == 0;

    free(plain);
    return ok;
}

/* The EC key's signature of the message's digest (malloc'ed; NULL on
   failure). */
static unsigned char *ec_sign(int thread, size_t *len)
{
    return post_for_bytes(thread, "/crypto/v1/sign",
                          json_pack("{s:{s:s},s:s,s:s}", "key", "kid", ec_kid,
                                    "hash_alg", "SHA256", "hash", hash_b64),
                          "signature", len);
}

static int op_sign(int thread)
{
    size_t len = 0;
    unsigned char *sig = ec_sign(thread, &len);
    EVP_MD_CTX *check = EVP_MD_CTX_new();
    int ok;

    ok = sig != NULL && check != NULL &&
         EVP_DigestVerifyInit_ex(check, NULL, "SHA256", NULL, NULL, ec_public,
                                 NULL) > 0 &&
         EVP_DigestVerify(check, sig, len, message, sizeof(message) - 1) == 1;
    EVP_MD_CTX_free(check);
    free(sig);
    return ok;
}

/* The request alone, without the check of the signature: with the
   provider's ecdsa-sign minus ecdsa-verify, the client CPU of a signature
   without the signature check (run-provider-bench --callgrind). */
static int op_sign_nocheck(int thread)
{
    size_t len = 0;
    unsigned char *sig = ec_sign(thread, &len);
    int ok = sig != NULL && len > 0;

    free(sig);
    return ok;
}

static int op_wrap(int thread)
{
    size_t len = 0;
    unsigned char *wrapped = post_for_bytes(
        thread, "/crypto/v1/wrapkey",
        json_pack("{s:{s:s},s:{s:s},s:s,s:o}", "key", "kid", rsa_kid, "subject",
                  "name", "bench-aes", "alg", "RSA", "mode", oaep_sha256()),
        "wrapped_key", &len);
    int ok = wrapped != NULL && len == 256;

    free(wrapped);
    return ok;
}

static int op_encrypt(int thread)
{
    unsigned char out[256];
    size_t len;

    (void)thread;
    return bench_encrypt_secret(NULL, rsa_public, out, &len);
}

/* One handle per thread: its connection stays open between requests. */
static int setup_handles(void)
{
    char header[sizeof(bearer) + 32];

    snprintf(header, sizeof(header), "Authorization: Bearer %s", bearer);
    headers = curl_slist_append(NULL, header);
    for (int i = 0; i < BENCH_MAX_THREADS; i++) {
        CURL *h = curl_easy_init();

        if (h == NULL)
            return 0;
        curl_easy_setopt(h, CURLOPT_CAINFO, env.ca_file);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, emu_on_body);
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        handles[i] = h;
    }
    OPENSSL_cleanse(header, sizeof(header));
    return 1;
}

static int authenticate(void)
{
    char header[600];
    json_t *answer = NULL;
    const char *token;

    snprintf(header, sizeof(header), "Basic %s", env.api_key);
    if (emu_request(&env, "POST", "/sys/v1/session/auth", header, NULL,
                    &answer) != 200)
        return 0;
    token = json_string_value(json_object_get(answer, "access_token"));
    if (token == NULL || strlen(token) >= sizeof(bearer)) {
        json_decref(answer);
        return 0;
    }
    snprintf(bearer, sizeof(bearer), "%s", token);
    json_decref(answer);
    return 1;
}

static EVP_PKEY *look_up(const char *name, char kid[37])
{
    char header[sizeof(bearer) + 16], body[128];
    json_t *answer = NULL;
    const char *value, *pub;
    unsigned char *der;
    const unsigned char *p;
    size_t der_len;
    EVP_PKEY *pkey = NULL;

    snprintf(header, sizeof(header), "Bearer %s", bearer);
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    if (emu_request(&env, "POST", "/crypto/v1/keys/info?show_pub_key=true",
                    header, body, &answer) != 200)
        return NULL;
    value = json_string_value(json_object_get(answer, "kid"));
    pub = json_string_value(json_object_get(answer, "pub_key"));
    if (value != NULL && pub != NULL && strlen(value) == 36 &&
        (der = unbase64(pub, &der_len)) != NULL) {
        memcpy(kid, value, 37);
        p = der;
        pkey = d2i_PUBKEY(NULL, &p, (long)der_len);
        free(der);
    }
    json_decref(answer);
    return pkey;
}

static const bench_named_op ops[] = {
    {"decrypt", op_decrypt},           {"sign", op_sign},
    {"sign-nocheck", op_sign_nocheck}, {"wrap", op_wrap},
    {"encrypt", op_encrypt},
};

int main(int argc, char **argv)
{
    unsigned char cipher[256], hash[32];
    size_t cipher_len = sizeof(cipher);
    unsigned hash_len = 0;
    bench_options o;

    if (!bench_parse_options(&o, argc, argv, 1, NULL) || !emu_init(&env))
        return 2;
    if (!authenticate() ||
        (rsa_public = look_up("bench-rsa", rsa_kid)) == NULL ||
        (ec_public = look_up("bench-ec", ec_kid)) == NULL || !setup_handles() ||
        !bench_encrypt_secret(NULL, rsa_public, cipher, &cipher_len) ||
        !EVP_Digest(message, sizeof(message) - 1, hash, &hash_len, EVP_sha256(),
                    NULL) ||
        (cipher_b64 = tc_base64(cipher, cipher_len)) == NULL ||
        (hash_b64 = tc_base64(hash, hash_len)) == NULL) {
        fprintf(stderr, "%s: cannot set up (session, keys)\n", argv[0]);
        return 1;
    }
    if (!bench_run_all(&env, &o, ops, sizeof(ops) / sizeof(ops[0]), "raw",
                       NULL))
        return 1;
    for (int i = 0; i < BENCH_MAX_THREADS; i++)
        curl_easy_cleanup(handles[i]);
    curl_slist_free_all(headers);
    OPENSSL_cleanse(bearer, sizeof(bearer));
    return 0;
}
