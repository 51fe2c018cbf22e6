/*
 * Where the client keeps the API key: after sk_client_new (and the caller's
 * copy wiped), every copy of the key in this process's memory lies in a
 * mapping marked "dd" (MADV_DONTDUMP: left out of core dumps) in
 * /proc/self/smaps. No network: the client connects on first use only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "client.h"

#define KEY_LEN 64
#define MASK    0x5a

/* The key as this test remembers it: masked, so the needle itself is not
   a copy of the key. */
static unsigned char masked[KEY_LEN];

static int key_at(const unsigned char *p)
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
static void find_copies(int *copies, int *outside)
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
        if (perms[0] != 'r' || perms[1] != 'w' || strcmp(path, "[vvar]") == 0)
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

int main(void)
{
    CU_pSuite suite;
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("secrets", NULL, NULL);
    CU_add_test(suite, "the API key lives only in a MADV_DONTDUMP page",
                test_api_key_page_is_not_dumped);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}
