/*
 * What the C test programs of test/ share: the "ok - / FAIL -" checks and
 * their "N passed, N failed" summary, the provider loaded as documented
 * (default first, then smartkey), and the EVP shorthands several programs
 * need. The emulator side (emu_env, requests, counters) is test/client's
 * emu.h.
 */
#ifndef SMARTKEY_TEST_COMMON_H
#define SMARTKEY_TEST_COMMON_H

#include <stdio.h>

#include <openssl/core.h>
#include <openssl/evp.h>

#include "emu.h"

extern int tc_passed, tc_failed;

/* One check: prints "ok   - TEXT" or "FAIL - TEXT" and counts it. */
void tc_check(int ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "N passed, N failed"; the program's exit status. */
int tc_report(void);
/* A set-up step failed: prints why on stderr and "0 passed, 1 failed";
   returns the exit status (1). */
int tc_setup_failed(const char *why);

/* in as base64 text (OPENSSL_free it); NULL when out of memory. */
char *tc_base64(const unsigned char *in, size_t len);

/* Points the provider at the emulator through the environment. */
void tc_use_emulator(const emu_env *env);
/* The start of a program that with-emulator.sh runs with MODULE-DIR as its
   one argument: env read from the emulator's state (emu_init) and the
   provider pointed at it. Returns MODULE-DIR; NULL after a message on
   stderr (usage, or no emulator). */
const char *tc_emulator_args(int argc, char **argv, emu_env *env);
/* A library context with the modules of module_dir loaded, default first
   (libcurl's TLS inside the provider needs the default provider's
   algorithms, docs/openssl-dispatch.md §9); NULL with the errors printed. */
OSSL_LIB_CTX *tc_provider_libctx(const char *module_dir);
/* The private key of the PEM file path, read in libctx (a local stand-in
   that a SmartKey key's results are checked against); NULL if unreadable. */
EVP_PKEY *tc_read_pem_key(OSSL_LIB_CTX *libctx, const char *path);
/* The head of an openssl.cnf activating default, then smartkey from
   module_dir; the caller adds the smartkey section's own lines. */
void tc_write_config_head(FILE *f, const char *module_dir);

/* The default provider's copy of a key's public half (an SPKI round trip
   in libctx with propq): what a verifier holds. */
EVP_PKEY *tc_public_copy(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                         const char *propq);
/* The parameters of a server-side wrap of subject_uri: OAEP, SHA-256. */
void tc_wrap_params(OSSL_PARAM params[4], const char *subject_uri);
/* RSA-OAEP SHA-256 (MGF1 SHA-256) parameters, with a wrap subject when
   subject_uri is not NULL. */
void tc_oaep_params(OSSL_PARAM params[5], const char *subject_uri);
/* One RSA-OAEP SHA-256 encryption of in with key (fetched in libctx). */
int tc_encrypt_oaep(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                    const unsigned char *in, size_t in_len, unsigned char *out,
                    size_t *out_len);
/* One RSA-OAEP SHA-256 decryption of cipher with key (fetched in libctx):
   1 when it gives exactly the len bytes of expected. */
int tc_decrypts_to(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                   const unsigned char *cipher, size_t cipher_len,
                   const unsigned char *expected, size_t len);
/* RSA-OAEP with SHA-256 (label and MGF1), as the tests' keys use it:
   OAEP_SHA256 for *_init_ex, and one local encryption (encrypt = 1) or
   decryption with key in the default provider. */
extern const OSSL_PARAM tc_oaep_sha256[];
int tc_local_oaep(EVP_PKEY *key, int encrypt, const unsigned char *in,
                  size_t in_len, unsigned char *out, size_t *out_len);
/* One SHA-256 signature of msg by key (in libctx, as fetched), checked
   with verifier in the default provider (the check costs no request). */
int tc_sign_and_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *key, EVP_PKEY *verifier,
                       const unsigned char *msg, size_t msg_len);
/* The same with the property queries of the signature (sign_propq) and of
   its check (verify_propq) chosen by the caller. */
int tc_sign_and_verify_ex(OSSL_LIB_CTX *libctx, const char *sign_propq,
                          EVP_PKEY *key, const char *verify_propq,
                          EVP_PKEY *verifier, const unsigned char *msg,
                          size_t msg_len);
/* The emulator's added latency for every request (test control). */
int tc_set_latency(const emu_env *env, long ms);

#endif
