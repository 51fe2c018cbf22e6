/*
 * Where secrets live in the client's memory.
 *
 * api-key-page: after sk_client_new (and the caller's copy wiped), every
 * copy of the API key in this process lies in a mapping marked "dd"
 * (MADV_DONTDUMP: left out of core dumps) in /proc/self/smaps; the session
 * token shares that page (same structure). No network needed.
 *
 * batch-wipe: with batching on, decrypt results pass through batch.c's
 * JSON; every jansson string holding the plaintext must be wiped before it
 * is freed. jansson's allocator is replaced for this process (before any
 * JSON is made) by one that, on free, looks for the plaintext's Base64 at
 * the start of the block (where jansson keeps a string's value). Needs the
 * emulator (with-emulator.sh): one lone call (batch.c's unbatched path) and
 * concurrent calls (batches).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include "emu.h"
#include "internal.h"

#define KEY_LEN 64
#define MASK    0x5a

/* The key as this test remembers it: masked, so the needle itself is not
   a copy of the key. */
static unsigned char masked[KEY_LEN];

/* The scan reads every byte of the process's writable mappings, heap
   redzones included: not something AddressSanitizer may instrument. */
#define NO_ASAN __attribute__((no_sanitize_address))

NO_ASAN static int key_at(const unsigned char *p)
{
    for (size_t j = 0; j < KEY_LEN; j++)
        if (p[j] != (masked[j] ^ MASK))
            return 0;
    return 1;
}

/* "dd" in the VmFlags of the smaps entry starting at start */
static int dont_dump(unsigned long start)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0, dd = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long a, b;

        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') &&
            line[0] != 'V') {
            in = a == start;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            dd = strstr(line, " dd") != NULL;
            break;
        }
    }
    fclose(f);
    return dd;
}

/* Counts copies of the key in readable private mappings; *outside counts
   those in mappings that would be dumped. */
NO_ASAN static void find_copies(int *copies, int *outside)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];

    *copies = *outside = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(maps);
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long a, b;
        char perms[8] = "", path[256] = "";

        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &a, &b, perms, path) <
            3)
            continue;
        /* writable data: heap, stacks, anonymous and .data/.bss */
        /* more than 1 GiB: a sanitizer's shadow or reserve, not data */
        if (perms[0] != 'r' || perms[1] != 'w' || strcmp(path, "[vvar]") == 0 ||
            b - a > (1ul << 30))
            continue;
        for (unsigned long p = a; p + KEY_LEN <= b; p++) {
            if (*(const unsigned char *)p != (masked[0] ^ MASK) ||
                !key_at((const unsigned char *)p))
                continue;
            (*copies)++;
            if (!dont_dump(a))
                (*outside)++;
        }
    }
    fclose(maps);
}

static void test_api_key_page_is_not_dumped(void)
{
    char key[KEY_LEN + 1];
    unsigned char random[KEY_LEN];
    sk_client_config cfg = {0};
    sk_client *client;
    sk_error err;
    int copies, outside;

    CU_ASSERT_FATAL(RAND_bytes(random, sizeof(random)) == 1);
    for (size_t i = 0; i < KEY_LEN; i++) {
        key[i] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                [random[i] % 62];
        masked[i] = (unsigned char)key[i] ^ MASK;
    }
    key[KEY_LEN] = '\0';
    cfg.endpoint = "https://127.0.0.1:9";
    cfg.api_key = key;
    cfg.auth = SK_AUTH_SESSION;
    client = sk_client_new(&cfg, &err);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(random, sizeof(random));
    CU_ASSERT_PTR_NOT_NULL_FATAL(client);

    find_copies(&copies, &outside);
    printf("\n  copies of the API key: %d, in dumpable memory: %d\n", copies,
           outside);
    CU_ASSERT(copies >= 1);
    CU_ASSERT_EQUAL(outside, 0);

    sk_client_free(client);
    find_copies(&copies, &outside);
    CU_ASSERT_EQUAL(copies, 0);
}

#define THREADS 8

static emu_env env;
static char marker[24];
static size_t marker_len;
static int unwiped; /* freed jansson blocks starting with the plaintext */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static void *track_malloc(size_t size)
{
    return malloc(size);
}

static void track_free(void *p)
{
    if (p != NULL && marker_len > 0 && malloc_usable_size(p) >= marker_len &&
        memcmp(p, marker, marker_len) == 0) {
        pthread_mutex_lock(&count_lock);
        unwiped++;
        pthread_mutex_unlock(&count_lock);
    }
    free(p);
}

typedef struct call {
    sk_client *client;
    sk_rsa_request req;
    int ok;
} call;

static void *decrypt(void *arg)
{
    call *c = arg;
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    sk_error err;

    c->ok = sk_client_decrypt(c->client, &c->req, &plain, &plain_len, &err);
    if (!c->ok)
        fprintf(stderr, "decrypt: %s\n", err.message);
    OPENSSL_clear_free(plain, plain_len);
    return NULL;
}

static void test_batched_decrypt_plaintexts_are_wiped(void)
{
    unsigned char message[32], cipher[512], b64[64];
    size_t cipher_len = sizeof(cipher);
    sk_client_config cfg = {0};
    sk_key_ref ref = {NULL, NULL};
    sk_key_info *info = NULL;
    const unsigned char *der;
    EVP_PKEY *pkey;
    sk_client *client;
    pthread_t threads[THREADS];
    call calls[THREADS];
    char kid[37];
    sk_error err;

    CU_ASSERT_FATAL(emu_create_key(
        &env,
        "{\"name\":\"wipe-rsa\",\"obj_type\":\"RSA\",\"key_size\":2048,"
        "\"key_ops\":[\"DECRYPT\",\"ENCRYPT\",\"APPMANAGEABLE\"]}",
        kid));
    cfg.endpoint = env.endpoint;
    cfg.api_key = env.api_key;
    cfg.ca_file = env.ca_file;
    cfg.retries = -1;
    cfg.auth = SK_AUTH_SESSION;
    cfg.batch_max_size = THREADS;
    cfg.batch_max_wait_us = 20000;
    client = sk_client_new(&cfg, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(client);
    ref.kid = kid;
    CU_ASSERT_FATAL(sk_client_key_info(client, &ref, &info, &err) == 1);
    der = info->pub_key;
    pkey = d2i_PUBKEY(NULL, &der, (long)info->pub_key_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pkey);

    CU_ASSERT_FATAL(RAND_bytes(message, sizeof(message)) == 1);
    EVP_EncodeBlock(b64, message, sizeof(message));
    marker_len = 20;
    memcpy(marker, b64, marker_len);
    CU_ASSERT_FATAL(emu_oaep_sha256_encrypt(pkey, message, sizeof(message),
                                            cipher, &cipher_len));

    for (int i = 0; i < THREADS; i++) {
        calls[i].client = client;
        calls[i].req = (sk_rsa_request){.key = {kid, NULL},
                                        .padding = SK_RSA_OAEP,
                                        .oaep_hash = "SHA256",
                                        .in = cipher,
                                        .in_len = cipher_len};
    }
    /* a lone call: batch.c's unbatched path */
    decrypt(&calls[0]);
    CU_ASSERT(calls[0].ok);
    /* concurrent calls: batches */
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, decrypt, &calls[i]);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CU_ASSERT(calls[i].ok);
    }
    printf("\n  jansson blocks freed holding the plaintext: %d\n", unwiped);
    CU_ASSERT_EQUAL(unwiped, 0);

    EVP_PKEY_free(pkey);
    sk_key_info_free(info);
    sk_client_free(client);
}

/* What a server or proxy answers goes through sk_error_set_server_text:
   the secrets and whatever follows Basic/Bearer never reach err. */
static void test_server_text_is_redacted_and_escaped(void)
{
    static const char token[] = "tok-0123456789abcdef";
    static const char key[] = "a2V5LXNlY3JldC12YWx1ZQ==";
    const char *secrets[] = {key, token};
    const char body[] = "bad request; you sent:\r\nAuthorization: Bearer "
                        "tok-0123456789abcdef\r\nX-Echo: "
                        "a2V5LXNlY3JldC12YWx1ZQ==\r\nauthorization: basic "
                        "other-credential, next\x1b[2J";
    char small[8];
    sk_error err;

    memset(&err, 0, sizeof(err));
    sk_error_set_server_text(&err, body, sizeof(body) - 1, secrets, 2);
    CU_ASSERT_PTR_NULL(strstr(err.message, token));
    CU_ASSERT_PTR_NULL(strstr(err.message, key));
    CU_ASSERT_PTR_NULL(strstr(err.message, "other-credential"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "you sent"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, ", next\\e[2J"));
    CU_ASSERT_PTR_NULL(strchr(err.message, 0x1b));

    CU_ASSERT_STRING_EQUAL(
        sk_escape_text("a\r\nb\x01", SIZE_MAX, small, sizeof(small)),
        "a\\r...");
    CU_ASSERT_STRING_EQUAL(
        sk_escape_text("ab\x7f", SIZE_MAX, small, sizeof(small)), "ab\\x7f");
    CU_ASSERT_STRING_EQUAL(sk_escape_text(NULL, SIZE_MAX, small, sizeof(small)),
                           "");
}

/* SmartKey's text and key names keep their letters beyond ASCII; bytes a
   terminal could obey (C1 controls) or that are not UTF-8 are escaped. */
static void test_utf8_is_kept_and_malformed_bytes_escaped(void)
{
    static const char text[] = "name 'cl\xc3\xa9'\r\n";
    char out[64];
    sk_error err;

    memset(&err, 0, sizeof(err));
    sk_error_set_text(&err, text, sizeof(text) - 1);
    CU_ASSERT_STRING_EQUAL(err.message, "name 'cl\xc3\xa9'");
    CU_ASSERT_STRING_EQUAL(sk_escape_text("\xe2\x82\xac \xf0\x9f\x94\x91",
                                          SIZE_MAX, out, sizeof(out)),
                           "\xe2\x82\xac \xf0\x9f\x94\x91");
    /* U+009B (CSI as a C1 control), a stray continuation byte, a
       truncated sequence, an overlong '/' */
    CU_ASSERT_STRING_EQUAL(sk_escape_text("\xc2\x9b"
                                          "a\x80"
                                          "b\xe2\x82"
                                          "c\xc0\xaf",
                                          SIZE_MAX, out, sizeof(out)),
                           "\\xc2\\x9ba\\x80b\\xe2\\x82c\\xc0\\xaf");
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "api-key-page";
    CU_pSuite suite;
    unsigned failures;

    /* before any JSON value exists */
    json_set_alloc_funcs(track_malloc, track_free);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("secrets", NULL, NULL);
    if (strcmp(which, "batch-wipe") == 0) {
        if (!emu_init(&env))
            return 2;
        CU_add_test(suite, "batched decrypt plaintexts are wiped before free",
                    test_batched_decrypt_plaintexts_are_wiped);
    } else {
        CU_add_test(suite, "the API key lives only in a MADV_DONTDUMP page",
                    test_api_key_page_is_not_dumped);
        CU_add_test(suite, "server text is redacted and escaped",
                    test_server_text_is_redacted_and_escaped);
        CU_add_test(suite, "UTF-8 is kept, malformed bytes escaped",
                    test_utf8_is_kept_and_malformed_bytes_escaped);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}
