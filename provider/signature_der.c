/*
 * The DER AlgorithmIdentifier of a signature, which req/x509/cms write into
 * what they sign (the checks of SmartKey's answers are in
 * signature_check.c).
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
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
