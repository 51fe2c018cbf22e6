/*
 * The keys both approval programs (async.c, threads.c) sign with: "signer"
 * in the group asking a quorum of 2, "free-signer" unprotected (made by
 * lib.sh's protected_signer), and their public halves for verifying.
 */
#ifndef SMARTKEY_TEST_APPROVAL_SIGNERS_H
#define SMARTKEY_TEST_APPROVAL_SIGNERS_H

#include <openssl/evp.h>

extern OSSL_LIB_CTX *libctx;
extern EVP_PKEY *protected_key, *protected_public, *free_key, *free_public;

/* For main(): with argv[1] the provider's MODULE_DIR, loads the providers
 * and the four keys; 0 when done, else tc_setup_failed's exit status. */
int signers_load(int argc, char **argv);
/* Frees the keys and the library context. */
void signers_free(void);

#endif
