/*
 * Checks of the signatures SmartKey returns: they only check the shape the
 * key implies (length, range, strict DER), which turns a malformed answer
 * into an error instead of a wrong signature. They do not verify it.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>

#include "signature.h"

/* RSA: exactly the modulus length and below the modulus. */
int sk_rsa_signature_has_valid_shape(sk_provctx *provctx, const sk_key *key,
                                     const unsigned char *sig, size_t siglen)
{
    BIGNUM *n = NULL, *s = NULL;
    int ok;

    if (siglen != (size_t)EVP_PKEY_get_size(key->public_key)) {
        SK_RAISE(provctx, SK_R_BAD_RESPONSE,
                 "key %s: SmartKey returned a %zu-byte RSA signature, the "
                 "modulus has %d bytes",
                 key->kid, siglen, EVP_PKEY_get_size(key->public_key));
        return 0;
    }
    s = BN_bin2bn(sig, (int)siglen, NULL);
    ok = s != NULL &&
         EVP_PKEY_get_bn_param(key->public_key, OSSL_PKEY_PARAM_RSA_N, &n) &&
         BN_cmp(s, n) < 0;
    BN_free(s);
    BN_free(n);
    if (!ok)
        SK_RAISE(provctx, SK_R_BAD_RESPONSE,
                 "key %s: SmartKey returned an RSA signature that is not "
                 "below the modulus",
                 key->kid);
    return ok;
}

static int in_range(const BIGNUM *value, const BIGNUM *order)
{
    return !BN_is_zero(value) && !BN_is_negative(value) &&
           BN_cmp(value, order) < 0;
}

/*
 * ECDSA: SmartKey answers DER (docs/smartkey-api.md §4.3), which is what
 * OpenSSL wants; it is handed on unchanged once it is known to be one strict
 * DER ECDSA-Sig-Value with 0 < r, s < order.
 */
int sk_ecdsa_signature_has_valid_shape(sk_provctx *provctx, const sk_key *key,
                                       const unsigned char *sig, size_t siglen)
{
    const unsigned char *p = sig;
    unsigned char *reencoded = NULL;
    ECDSA_SIG *parsed = NULL;
    const BIGNUM *order = key->ec_order; /* set when the key was loaded */
    int ok = 0, reencoded_len;

    parsed = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
    if (parsed == NULL || p != sig + siglen) {
        SK_RAISE(provctx, SK_R_BAD_RESPONSE,
                 "key %s: SmartKey returned an ECDSA signature that is not "
                 "DER",
                 key->kid);
        goto done;
    }
    reencoded_len = i2d_ECDSA_SIG(parsed, &reencoded);
    if (reencoded_len <= 0 || (size_t)reencoded_len != siglen ||
        memcmp(reencoded, sig, siglen) != 0) {
        SK_RAISE(provctx, SK_R_BAD_RESPONSE,
                 "key %s: SmartKey returned an ECDSA signature that is not "
                 "strict DER",
                 key->kid);
        goto done;
    }
    if (order == NULL) {
        SK_RAISE(provctx, SK_R_INTERNAL_ERROR,
                 "key %s: the curve of the key is unknown", key->kid);
        goto done;
    }
    if (!in_range(ECDSA_SIG_get0_r(parsed), order) ||
        !in_range(ECDSA_SIG_get0_s(parsed), order)) {
        SK_RAISE(provctx, SK_R_BAD_RESPONSE,
                 "key %s: SmartKey returned an ECDSA signature whose r or s "
                 "is out of range for its curve",
                 key->kid);
        goto done;
    }
    ok = 1;

done:
    OPENSSL_free(reencoded);
    ECDSA_SIG_free(parsed);
    return ok;
}
