/*
 * BYOK artifacts (issue #6, docs/byok/): the RSA cipher's wrap extended to
 * every cloud's import format. byok.c wraps the RSA asymmetric cipher of
 * asym_cipher.c: it owns the smartkey-wrap-format/-encoding/-kid/-jti
 * parameters, and hands every other operation to that cipher unchanged.
 */
#ifndef SMARTKEY_BYOK_H
#define SMARTKEY_BYOK_H

#include <openssl/core_dispatch.h>

/* Registered for RSA in provider.c in place of sk_rsa_asym_cipher_functions,
   which it calls for everything that is not a BYOK artifact. */
extern const OSSL_DISPATCH sk_rsa_byok_asym_cipher_functions[];

#endif
