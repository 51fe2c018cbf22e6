/*
 * The DER side of signatures, shared by the signature implementations:
 * the AlgorithmIdentifier that certificates and CMS carry, and the checks
 * on the signatures SmartKey returns.
 */
#ifndef SMARTKEY_SIGNATURE_H
#define SMARTKEY_SIGNATURE_H

#include <openssl/evp.h>

#include "key.h"

/*
 * The DER AlgorithmIdentifier of a signature by a key of this type:
 * sha*WithRSAEncryption (padding RSA_PKCS1_PADDING), RSASSA-PSS with its
 * parameters (RSA_PKCS1_PSS_PADDING; salt length = digest length, MGF1 with
 * mgf1_md) or ecdsa-with-SHA*. Returns the length, *der OPENSSL_malloc'd;
 * <= 0 when there is none.
 */
int sk_signature_algorithm_id(sk_key_type type, int padding, const EVP_MD *md,
                              const EVP_MD *mgf1_md, unsigned char **der);

/* The key of a signature *_init: provkey (a SmartKey key of this type;
   with its private half and SIGN permission when for_signing) replaces
   *slot; a NULL provkey keeps *slot. 0 with an error raised otherwise
   (signature.c). */
int sk_signature_init_key(sk_provctx *provctx, sk_key **slot, void *provkey,
                          sk_key_type type, int for_signing);

/* Checks of SmartKey's answer; raise an error naming the key and return 0
   when the signature does not have the shape the key implies. */
int sk_rsa_signature_has_valid_shape(sk_provctx *provctx, const sk_key *key,
                                     const unsigned char *sig, size_t siglen);
int sk_ecdsa_signature_has_valid_shape(sk_provctx *provctx, const sk_key *key,
                                       const unsigned char *sig, size_t siglen);

#endif
