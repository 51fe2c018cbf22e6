/*
 * Certificates held in SmartKey (CERTIFICATE objects, docs/smartkey-api.md
 * §3.8): reading one, and finding the one that certifies a key. The store
 * (store.c) hands them to OpenSSL as DER.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "certificate.h"

/* Decodes a certificate SmartKey sent; NULL when it is not exactly one DER
   X.509 certificate. */
static X509 *decode_certificate(sk_provctx *ctx, const unsigned char *der,
                                size_t der_len)
{
    const unsigned char *p = der;
    X509 *cert = X509_new_ex(ctx->libctx, "provider!=" SMARTKEY_PROVIDER_NAME);

    if (cert == NULL)
        return NULL;
    sk_set_error_mark(ctx);
    if (d2i_X509(&cert, &p, (long)der_len) == NULL || p != der + der_len) {
        X509_free(cert);
        cert = NULL;
    }
    sk_pop_error_to_mark(ctx);
    return cert;
}

static const char *label_of(const sk_key_info *info)
{
    return info->name != NULL ? info->name : info->kid;
}

int sk_cert_read(sk_provctx *ctx, const sk_key_info *info, unsigned char **der,
                 size_t *der_len)
{
    sk_client *client = sk_provctx_client(ctx);
    char subject[300];
    sk_error err;
    X509 *cert;
    int ok;

    *der = NULL;
    *der_len = 0;
    if (client == NULL)
        return 0;
    memset(&err, 0, sizeof(err));
    /* drop what libcurl's TLS leaves in the queue (see key.c) */
    sk_set_error_mark(ctx);
    ok = sk_client_certificate(client, info->kid, der, der_len, &err);
    sk_pop_error_to_mark(ctx);
    if (!ok) {
        snprintf(subject, sizeof(subject), "certificate '%.200s' (%s)",
                 SK_ESCAPED(label_of(info)), info->kid);
        SK_RAISE_CLIENT(ctx, subject, &err);
        return 0;
    }
    cert = decode_certificate(ctx, *der, *der_len);
    if (cert == NULL) {
        SK_RAISE(ctx, SK_R_BAD_RESPONSE,
                 "the value of certificate '%.200s' (%s) is not a DER X.509 "
                 "certificate",
                 SK_ESCAPED(label_of(info)), info->kid);
        OPENSSL_free(*der);
        *der = NULL;
        return 0;
    }
    X509_free(cert);
    return 1;
}

/* info's pub_key is key's public key. */
static int certifies(sk_provctx *ctx, const sk_key_info *info,
                     const sk_key *key)
{
    const unsigned char *p = info->pub_key;
    EVP_PKEY *certified;
    int same;

    if (p == NULL || info->pub_key_len == 0)
        return 0;
    sk_set_error_mark(ctx);
    certified = d2i_PUBKEY_ex(NULL, &p, (long)info->pub_key_len, ctx->libctx,
                              "provider!=" SMARTKEY_PROVIDER_NAME);
    same = certified != NULL && EVP_PKEY_eq(certified, key->public_key) == 1;
    EVP_PKEY_free(certified);
    sk_pop_error_to_mark(ctx);
    return same;
}

/* The later notAfter of two certificates: 1 when b expires after a. */
static int expires_later(const X509 *a, const X509 *b)
{
    int days, seconds;

    if (!ASN1_TIME_diff(&days, &seconds, X509_get0_notAfter(a),
                        X509_get0_notAfter(b)))
        return 0;
    return days > 0 || (days == 0 && seconds > 0);
}

/* Every certificate object the app may see, with one request. */
static int list_certificates(sk_provctx *ctx, sk_client *client,
                             sk_key_info ***certs, size_t *count)
{
    sk_error err;
    int ok;

    memset(&err, 0, sizeof(err));
    sk_set_error_mark(ctx);
    ok = sk_client_list_certificates(client, certs, count, &err);
    sk_pop_error_to_mark(ctx);
    if (!ok)
        SK_RAISE_CLIENT(ctx, "listing certificates", &err);
    return ok;
}

/* Of certs, those certifying key are counted in *found and read; the one
   valid longest (a renewal beside the old one) goes to der. */
static int read_longest_valid(sk_provctx *ctx, const sk_key *key,
                              sk_key_info **certs, size_t count,
                              unsigned char **der, size_t *der_len,
                              size_t *found)
{
    X509 *best = NULL;
    int ok;

    /* a certificate this app may not read does not hide a readable one:
       its error stays only when no certificate of the key can be read */
    sk_set_error_mark(ctx);
    for (size_t i = 0; i < count; i++) {
        unsigned char *candidate;
        size_t candidate_len;
        X509 *cert;

        if (!certifies(ctx, certs[i], key))
            continue;
        (*found)++;
        if (!sk_cert_read(ctx, certs[i], &candidate, &candidate_len))
            continue;
        cert = decode_certificate(ctx, candidate, candidate_len);
        if (cert != NULL && (best == NULL || expires_later(best, cert))) {
            X509_free(best);
            best = cert;
            OPENSSL_free(*der);
            *der = candidate;
            *der_len = candidate_len;
        } else {
            X509_free(cert);
            OPENSSL_free(candidate);
        }
    }
    ok = best != NULL;
    if (ok)
        sk_pop_error_to_mark(ctx);
    else
        sk_clear_last_error_mark(ctx);
    X509_free(best);
    return ok;
}

int sk_cert_of_key(sk_provctx *ctx, const sk_key *key, unsigned char **der,
                   size_t *der_len)
{
    sk_client *client = sk_provctx_client(ctx);
    sk_key_info **certs = NULL;
    size_t count = 0, found = 0;
    int ok;

    *der = NULL;
    *der_len = 0;
    if (client == NULL || !list_certificates(ctx, client, &certs, &count))
        return 0;
    ok = read_longest_valid(ctx, key, certs, count, der, der_len, &found);
    if (found == 0) {
        SK_RAISE(ctx, SK_R_UNKNOWN_KEY,
                 "no certificate held in SmartKey certifies key '%.200s' "
                 "(%s): import one as a CERTIFICATE object "
                 "(docs/legacy-apps.md)",
                 SK_ESCAPED(key->name != NULL ? key->name : key->kid),
                 key->kid);
    }
    if (ok)
        SK_DEBUG(2, "key %s: %zu certificate(s) in SmartKey", key->kid, found);
    sk_key_info_list_free(certs, count);
    return ok;
}
