/*
 * A "legacy" program: it knows nothing about providers or SmartKey and
 * takes its key as a file path, like nginx or curl. With smartkey
 * activated through OPENSSL_CONF alone it must load a key-reference file:
 *
 *   legacy_key_file pem KEYFILE             PEM_read_PrivateKey
 *   legacy_key_file ssl KEYFILE CERTFILE    SSL_CTX_use_certificate_file +
 *                                           SSL_CTX_use_PrivateKey_file +
 *                                           SSL_CTX_check_private_key
 *   legacy_key_file store URI               OSSL_STORE_open + load (file:)
 *
 * Prints "loaded <type> <bits>" (pem, store) or "ssl ok" and exits 0;
 * prints OpenSSL's errors and exits 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/store.h>

#include "emu.h"

static int report_key(EVP_PKEY *key)
{
    if (key == NULL)
        return 0;
    printf("loaded %s %d\n", EVP_PKEY_get0_type_name(key),
           EVP_PKEY_get_bits(key));
    EVP_PKEY_free(key);
    return 1;
}

static int pem_read(const char *path)
{
    FILE *file = fopen(path, "r");
    EVP_PKEY *key;

    if (file == NULL) {
        perror(path);
        return 0;
    }
    key = PEM_read_PrivateKey(file, NULL, NULL, NULL);
    fclose(file);
    return report_key(key);
}

static int ssl_use(const char *key_path, const char *cert_path)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int ok;

    ok = ctx != NULL &&
         SSL_CTX_use_certificate_file(ctx, cert_path, SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(ctx) == 1;
    if (ok)
        printf("ssl ok\n");
    SSL_CTX_free(ctx);
    return ok;
}

static int store_load(const char *uri)
{
    return report_key(emu_load_pkey(NULL, NULL, uri));
}

int main(int argc, char **argv)
{
    int ok = 0;

    if (argc == 3 && strcmp(argv[1], "pem") == 0)
        ok = pem_read(argv[2]);
    else if (argc == 4 && strcmp(argv[1], "ssl") == 0)
        ok = ssl_use(argv[2], argv[3]);
    else if (argc == 3 && strcmp(argv[1], "store") == 0)
        ok = store_load(argv[2]);
    else {
        fprintf(stderr,
                "usage: %s pem KEYFILE | ssl KEYFILE CERTFILE | "
                "store URI\n",
                argv[0]);
        return 2;
    }
    if (!ok)
        ERR_print_errors_fp(stderr);
    return ok ? 0 : 1;
}
