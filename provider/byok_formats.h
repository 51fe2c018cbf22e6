/*
 * Inside the BYOK cipher (byok.c): the context both halves share, and the
 * cloud formats (byok_formats.c) that byok.c's encrypt hands over to once
 * it has read and checked the RSA cipher's settings.
 */
#ifndef SMARTKEY_BYOK_FORMATS_H
#define SMARTKEY_BYOK_FORMATS_H

#include <stddef.h>

#include "approval.h"
#include "key.h"
#include "uri.h"

typedef enum byok_format {
    FORMAT_RSA_OAEP = 0,
    FORMAT_RSA_AES_KEY_WRAP,
    FORMAT_AZURE_BYOK,
    FORMAT_JWE,
    FORMAT_SALESFORCE_CACHE_ONLY,
    FORMAT_SHA256,
    FORMAT_COUNT
} byok_format;

typedef enum byok_encoding {
    ENCODING_RAW = 0,
    ENCODING_BASE64,
    ENCODING_BASE64URL,
} byok_encoding;

typedef struct sk_byok_cipher {
    sk_provctx *provctx;
    void *inner; /* the RSA cipher's context */
    sk_key *key; /* counted; the wrapping key of the last encrypt_init */
    byok_format format;
    byok_encoding encoding;
    char *kid;
    char *jti;
    sk_approval_opts approval; /* smartkey-approval, -approval-request */
} sk_byok_cipher;

/* The formats' names (smartkey-wrap-format), indexed by byok_format. */
extern const char *const sk_byok_format_names[FORMAT_COUNT];

/* What the RSA cipher was told (read by byok.c's read_wrap_settings). */
typedef struct wrap_settings {
    char subject_uri[1024];
    sk_uri subject;
    const char *oaep_hash; /* SmartKey spelling */
    /* the subject is an RSA or EC key (read once, by byok.c, before any
       format runs): the KWP step then wraps its PKCS#8 form */
    int subject_asymmetric;
} wrap_settings;

/* base64 (url: base64url, RFC 4648 §5, without padding) of in: an
   OPENSSL_malloc'd text; its length is below sk_byok_base64_size(len). */
size_t sk_byok_base64_size(size_t n);
char *sk_byok_base64(const unsigned char *in, size_t len, int url);

/*
 * The artifact of ctx->format (any but FORMAT_RSA_OAEP) for the subject
 * of ws, made from SmartKey calls: *out OPENSSL_malloc'd. 0 with an error
 * raised that names the format, the subject and the wrapping key.
 */
int sk_byok_produce(sk_byok_cipher *ctx, wrap_settings *ws, unsigned char **out,
                    size_t *out_len);

#endif
