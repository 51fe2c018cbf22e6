/*
 * Signatures in DER: the AlgorithmIdentifier req/x509/cms write into what
 * they sign, and the checks that make a malformed answer from SmartKey an
 * error instead of a wrong signature.
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "signature.h"

static X509_ALGOR *digest_algorithm(const EVP_MD *md)
{
    X509_ALGOR *alg = X509_ALGOR_new();

    if (alg != NULL)
        X509_ALGOR_set_md(alg, md);
    return alg;
}

/* RSASSA-PSS parameters (RFC 4055) for the digest, MGF1 and salt used. */
static ASN1_STRING *pss_parameters(const EVP_MD *md, const EVP_MD *mgf1_md)
{
    RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
    X509_ALGOR *mgf1_hash = NULL;
    ASN1_STRING *mgf1_hash_der = NULL, *der = NULL;
    int saltlen = EVP_MD_get_size(md);

    if (pss == NULL)
        goto done;
    /* SHA-1, MGF1-SHA-1 and 20 bytes are the DEFAULTs and are omitted */
    if (!EVP_MD_is_a(md, "SHA1") &&
        (pss->hashAlgorithm = digest_algorithm(md)) == NULL)
        goto done;
    if (!EVP_MD_is_a(mgf1_md, "SHA1")) {
        if ((mgf1_hash = digest_algorithm(mgf1_md)) == NULL ||
            (mgf1_hash_der = ASN1_item_pack(
                 mgf1_hash, ASN1_ITEM_rptr(X509_ALGOR), NULL)) == NULL ||
            (pss->maskGenAlgorithm = X509_ALGOR_new()) == NULL ||
            !X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1),
                             V_ASN1_SEQUENCE, mgf1_hash_der))
            goto done;
        mgf1_hash_der = NULL; /* owned by maskGenAlgorithm */
    }
    if (saltlen != 20 && ((pss->saltLength = ASN1_INTEGER_new()) == NULL ||
                          !ASN1_INTEGER_set(pss->saltLength, saltlen)))
        goto done;
    der = ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL);

done:
    ASN1_STRING_free(mgf1_hash_der);
    X509_ALGOR_free(mgf1_hash);
    RSA_PSS_PARAMS_free(pss);
    return der;
}

/*
 * The signature's DER AlgorithmIdentifier, which req/x509/cms write into
 * what they sign. It is read after the -sigopt settings and before
 * signing (docs/openssl-dispatch.md §6), so it reflects the current state.
 */
int sk_signature_algorithm_id(sk_key_type type, int padding, const EVP_MD *md,
                              const EVP_MD *mgf1_md, unsigned char **der)
{
    X509_ALGOR *alg = X509_ALGOR_new();
    int len = -1, signature_nid;

    if (alg == NULL || md == NULL)
        goto done;
    if (type == SK_KEY_RSA && padding == RSA_PKCS1_PSS_PADDING) {
        ASN1_STRING *params =
            pss_parameters(md, mgf1_md != NULL ? mgf1_md : md);

        if (params == NULL || !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss),
                                               V_ASN1_SEQUENCE, params)) {
            ASN1_STRING_free(params);
            goto done;
        }
    } else {
        int key_nid =
            type == SK_KEY_RSA ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey;

        if (!OBJ_find_sigid_by_algs(&signature_nid, EVP_MD_get_type(md),
                                    key_nid))
            goto done;
        /* PKCS#1 identifiers carry an explicit NULL, ECDSA ones nothing */
        if (!X509_ALGOR_set0(alg, OBJ_nid2obj(signature_nid),
                             type == SK_KEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF,
                             NULL))
            goto done;
    }
    len = i2d_X509_ALGOR(alg, der);

done:
    X509_ALGOR_free(alg);
    return len;
}

/* RSA: exactly the modulus length and below the modulus. */
int sk_rsa_signature_is_sound(SK_PROVCTX *provctx, const SK_KEY *key,
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
int sk_ecdsa_signature_is_sound(SK_PROVCTX *provctx, const SK_KEY *key,
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
