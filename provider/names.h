/*
 * The digests and curves SmartKey knows, in OpenSSL's and SmartKey's
 * spellings (docs/smartkey-api.md §4.1): the one table of each that the
 * signatures, the ciphers, key generation and the encoders use.
 */
#ifndef SMARTKEY_NAMES_H
#define SMARTKEY_NAMES_H

#include <openssl/evp.h>

#include "client.h"

/* What a digest is used for: SmartKey signs with more digests than its
   RSA OAEP takes. */
#define SK_DIGEST_SIGN 0x1u
#define SK_DIGEST_OAEP 0x2u

typedef struct sk_digest {
    const char *openssl_name;  /* "SHA2-256" */
    const char *smartkey_name; /* the wire spelling, "SHA256" */
    const char *aliases[4];    /* other spellings users give */
    unsigned int uses;         /* SK_DIGEST_* */
} sk_digest;

/* The digest named name (any spelling, case-insensitive) usable for use;
   NULL when there is none. */
const sk_digest *sk_digest_by_name(const char *name, unsigned int use);
/* The digest md is (EVP_MD_is_a) usable for use; NULL when there is none. */
const sk_digest *sk_digest_of_md(const EVP_MD *md, unsigned int use);
/* SHA-1, OpenSSL's OAEP default when no digest is given. */
const sk_digest *sk_digest_oaep_default(void);

/* The curve named name ("P-256", "prime256v1", "secp256r1", ...);
   SK_CURVE_NONE when SmartKey keys here are not on it. */
sk_curve sk_curve_by_name(const char *name);
/* OpenSSL's name ("P-256", "ED25519") and SmartKey's ("NistP256",
   "Ed25519"); NULL for others. sk_curve_by_name knows only the EC groups:
   Ed25519 is a key type of its own in OpenSSL, not a group. */
const char *sk_curve_openssl_name(sk_curve curve);
const char *sk_curve_smartkey_name(sk_curve curve);

#endif
