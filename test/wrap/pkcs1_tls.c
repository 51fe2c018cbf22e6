/*
 * The TLS 1.2 RSA key exchange through the EVP API as libssl drives it
 * (pad-mode 7 = RSA_PKCS1_WITH_TLS_PADDING, tls-client-version): a good
 * pre-master secret comes back as it is; a wrong version, a wrong length
 * or a bad padding each give 48 bytes and success, with nothing on the
 * error queue (no Bleichenbacher oracle), and a different secret each time.
 *
 * Usage (run by pkcs1.sh with SMARTKEY_* set):
 *   pkcs1_tls MODULE_DIR KEY_URI STANDIN_PEM
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <smartkey/smartkey.h>

#include "emu.h"
#include "test_common.h"

#define TLS12 0x0303

static int passed, failed;
static OSSL_LIB_CTX *libctx;
static EVP_PKEY *key, *standin;

static void check(const char *what, int ok)
{
    if (ok) {
        passed++;
        printf("ok   - %s\n", what);
    } else {
        failed++;
        printf("FAIL - %s\n", what);
        ERR_print_errors_fp(stdout);
    }
    ERR_clear_error();
}

/* The stand-in encrypts message with PKCS#1 v1.5 (or none: raw block). */
static size_t encrypt_locally(const unsigned char *message, size_t len,
                              int padding, unsigned char *cipher)
{
    size_t cipher_len = 512;
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(libctx, standin, "provider=default");
    int ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, padding) > 0 &&
             EVP_PKEY_encrypt(ctx, cipher, &cipher_len, message, len) > 0;

    EVP_PKEY_CTX_free(ctx);
    return ok ? cipher_len : 0;
}

/* What libssl does (ssl/statem/statem_srvr.c, tls_process_cke_rsa). */
static int tls_decrypt(const unsigned char *cipher, size_t cipher_len,
                       unsigned char premaster[48], int *queued)
{
    unsigned int version = TLS12;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION,
                                  &version),
        OSSL_PARAM_construct_end(),
    };
    size_t len = 48;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    int ok;

    ERR_clear_error();
    ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) > 0 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_WITH_TLS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_params(ctx, params) > 0 &&
         EVP_PKEY_decrypt(ctx, premaster, &len, cipher, cipher_len) > 0 &&
         len == 48;
    *queued = ERR_peek_error() != 0;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* A refused block: 48 bytes, success, nothing queued, the client's
   version in front, and a fresh secret each time. */
static void refused(const char *what, const unsigned char *cipher,
                    size_t cipher_len, const unsigned char *sent)
{
    unsigned char first[48], second[48];
    int queued1 = 1, queued2 = 1;
    int ok = tls_decrypt(cipher, cipher_len, first, &queued1) &&
             tls_decrypt(cipher, cipher_len, second, &queued2);
    char text[200];

    snprintf(text, sizeof(text),
             "%s: 48 random bytes with the client's version, success, no "
             "error queued",
             what);
    check(text, ok && !queued1 && !queued2 && first[0] == 0x03 &&
                    first[1] == 0x03 && memcmp(first, second, 48) != 0 &&
                    (sent == NULL || memcmp(first, sent, 48) != 0));
}

int main(int argc, char **argv)
{
    unsigned char premaster[48], block[512], cipher[512], out[48];
    size_t cipher_len, size;
    int queued = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: %s MODULE_DIR KEY_URI STANDIN_PEM\n", argv[0]);
        return 2;
    }
    libctx = emu_provider_libctx(argv[1], 0);
    if (libctx == NULL ||
        (key = emu_load_pkey(libctx, NULL, argv[2])) == NULL ||
        (standin = tc_read_pem_key(libctx, argv[3])) == NULL) {
        ERR_print_errors_fp(stdout);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    size = (size_t)EVP_PKEY_get_size(key);
    if (size > sizeof(block) || RAND_bytes(premaster, sizeof(premaster)) != 1) {
        printf("0 passed, 1 failed\n");
        return 1;
    }

    premaster[0] = 0x03;
    premaster[1] = 0x03;
    cipher_len = encrypt_locally(premaster, 48, RSA_PKCS1_PADDING, cipher);
    check("a good pre-master secret comes back as it is",
          cipher_len > 0 && tls_decrypt(cipher, cipher_len, out, &queued) &&
              !queued && memcmp(out, premaster, 48) == 0);

    premaster[1] = 0x01; /* TLS 1.0 inside, TLS 1.2 offered */
    cipher_len = encrypt_locally(premaster, 48, RSA_PKCS1_PADDING, cipher);
    refused("a pre-master secret with another version", cipher, cipher_len,
            premaster);
    premaster[1] = 0x03;

    cipher_len = encrypt_locally(premaster, 47, RSA_PKCS1_PADDING, cipher);
    refused("a 47-byte pre-master secret", cipher, cipher_len, NULL);

    /* a raw block 00 01 ...: no PKCS#1 v1.5 encryption padding */
    RAND_bytes(block, (int)size);
    block[0] = 0x00;
    block[1] = 0x01;
    cipher_len = encrypt_locally(block, size, RSA_NO_PADDING, cipher);
    refused("a block with bad padding", cipher, cipher_len, NULL);

    EVP_PKEY_free(key);
    EVP_PKEY_free(standin);
    OSSL_LIB_CTX_free(libctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
