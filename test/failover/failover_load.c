/*
 * Loads one key through the smartkey provider over and over and compares
 * its public key with the one SmartKey holds; halfway through, it kills
 * the first cluster node (the preferred one) so the remaining loads must
 * fail over to the second node without a single failed operation.
 *
 * Usage: failover-load URI EXPECTED_SPKI_DER COUNT KILL_AT PID
 * The provider's configuration comes from OPENSSL_CONF (the test script
 * writes an openssl.cnf with the two-node api_endpoint). Prints
 * "loads N ok N failed" and exits non-zero when any load failed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "emu.h"

static unsigned char *read_file(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    data = malloc(*len > 0 ? (size_t)*len : 1);
    if (data != NULL && fread(data, 1, (size_t)*len, f) != (size_t)*len) {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

static int same_public_key(EVP_PKEY *key, const unsigned char *expected,
                           long expected_len)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    int same = len == expected_len && memcmp(der, expected, (size_t)len) == 0;

    OPENSSL_free(der);
    return same;
}

int main(int argc, char **argv)
{
    unsigned char *expected;
    long expected_len = 0;
    int count, kill_at, ok = 0, failed = 0;
    pid_t victim;

    if (argc != 6) {
        fprintf(stderr, "usage: %s URI SPKI_DER COUNT KILL_AT PID\n", argv[0]);
        return 2;
    }
    expected = read_file(argv[2], &expected_len);
    count = atoi(argv[3]);
    kill_at = atoi(argv[4]);
    victim = (pid_t)atol(argv[5]);
    if (expected == NULL || count <= 0 || victim <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    for (int i = 0; i < count; i++) {
        EVP_PKEY *key;

        if (i == kill_at) {
            /* SIGKILL: a crashed node, no goodbye on its connections */
            if (kill(victim, SIGKILL) != 0) {
                perror("kill");
                return 2;
            }
            printf("killed node 1 before load %d\n", i);
        }
        key = emu_load_pkey(NULL, NULL, argv[1]);
        if (key != NULL && same_public_key(key, expected, expected_len)) {
            ok++;
        } else {
            failed++;
            fprintf(stderr, "load %d failed:\n", i);
            ERR_print_errors_fp(stderr);
        }
        ERR_clear_error();
        EVP_PKEY_free(key);
    }
    free(expected);
    printf("loads %d ok %d failed\n", ok, failed);
    return failed == 0 ? 0 : 1;
}
