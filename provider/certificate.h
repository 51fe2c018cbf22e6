/*
 * Certificates held in SmartKey as CERTIFICATE objects (certificate.c).
 */
#ifndef SMARTKEY_CERTIFICATE_H
#define SMARTKEY_CERTIFICATE_H

#include "key.h"

/*
 * The DER certificate of the CERTIFICATE object info describes (one
 * key-info request with show_value, by kid); OPENSSL_malloc'd. 0 with an
 * error raised (no EXPORT on it, not a certificate, network...).
 */
int sk_cert_read(sk_provctx *ctx, const sk_key_info *info, unsigned char **der,
                 size_t *der_len);

/*
 * The DER certificate of key: the CERTIFICATE object whose public key is
 * key's (one listing of the certificates, one read of each that matches);
 * when several match, the one whose notAfter is latest. 0 with an error
 * raised, SK_R_UNKNOWN_KEY when none matches.
 */
int sk_cert_of_key(sk_provctx *ctx, const sk_key *key, unsigned char **der,
                   size_t *der_len);

#endif
