/*
 * The RSA asymmetric cipher on SmartKey keys (provider-asym_cipher(7)):
 *
 *  - decrypt: one /crypto/v1/decrypt request; the private half never leaves
 *    SmartKey;
 *  - encrypt of the caller's data: local, with the public half (zero
 *    requests), unless smartkey-remote-encrypt asks for /crypto/v1/encrypt;
 *  - server-side wrap: with smartkey-wrap-subject and empty input, SmartKey
 *    encrypts another key's bytes under this RSA key (/crypto/v1/wrapkey)
 *    and only the wrapped bytes reach us.
 *
 * Size queries (out == NULL) are answered from the modulus size without a
 * network round trip: pkeyutl asks once before every real call
 * (docs/openssl-dispatch.md §4).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "approval.h"
#include "key.h"
#include "names.h"
#include "params.h"
#include "uri.h"

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_asym_cipher_newctx_fn rsa_cipher_newctx;
static OSSL_FUNC_asym_cipher_freectx_fn rsa_cipher_freectx;
static OSSL_FUNC_asym_cipher_dupctx_fn rsa_cipher_dupctx;
static OSSL_FUNC_asym_cipher_encrypt_init_fn rsa_cipher_encrypt_init;
static OSSL_FUNC_asym_cipher_encrypt_fn rsa_cipher_encrypt;
static OSSL_FUNC_asym_cipher_decrypt_init_fn rsa_cipher_decrypt_init;
static OSSL_FUNC_asym_cipher_decrypt_fn rsa_cipher_decrypt;
static OSSL_FUNC_asym_cipher_get_ctx_params_fn rsa_cipher_get_ctx_params;
static OSSL_FUNC_asym_cipher_gettable_ctx_params_fn
    rsa_cipher_gettable_ctx_params;
static OSSL_FUNC_asym_cipher_set_ctx_params_fn rsa_cipher_set_ctx_params;
static OSSL_FUNC_asym_cipher_settable_ctx_params_fn
    rsa_cipher_settable_ctx_params;

/* The public half is used in the provider's child libctx; our own cipher
   must never be picked there (it would call itself). */
#define LOCAL_PROPQ "provider!=" SMARTKEY_PROVIDER_NAME

/* "implicit-rejection" has no macro in the 3.0 headers (3.2+ sends it). */
#define PARAM_IMPLICIT_REJECTION "implicit-rejection"

/* TLS 1.2 RSA key exchange: the pre-master secret is 48 bytes. */
#define TLS_PREMASTER_SIZE 48

typedef struct sk_rsa_cipher {
    sk_provctx *provctx;
    sk_key *key; /* counted */
    int private_handle;
    int padding;                  /* RSA_*_PADDING */
    const sk_digest *oaep_digest; /* NULL: not set (SHA-1) */
    const sk_digest *mgf1_digest; /* NULL: not set (= oaep_digest) */
    unsigned char *oaep_label;
    size_t oaep_label_len;
    unsigned int tls_client_version;
    unsigned int tls_negotiated_version;
    unsigned int implicit_rejection; /* "implicit-rejection" (3.2+) */
    int remote_encrypt;
    char *wrap_subject_uri; /* as the user gave it, for messages */
    sk_uri wrap_subject;
    sk_approval_opts approval; /* smartkey-approval, -approval-request */
} sk_rsa_cipher;

static void *rsa_cipher_newctx(void *provctx)
{
    sk_rsa_cipher *ctx;

    if (!SK_CTX_NEW(ctx, provctx, "creating an RSA cipher"))
        return NULL;
    ctx->padding = RSA_PKCS1_PADDING; /* OpenSSL's default for RSA */
    ctx->implicit_rejection = 1;      /* OpenSSL 3.2+'s default */
    sk_approval_opts_init(&ctx->approval);
    return ctx;
}

static void clear_wrap_subject(sk_rsa_cipher *ctx)
{
    OPENSSL_free(ctx->wrap_subject_uri);
    ctx->wrap_subject_uri = NULL;
    sk_uri_clear(&ctx->wrap_subject);
}

static void rsa_cipher_freectx(void *vctx)
{
    sk_rsa_cipher *ctx = vctx;

    if (ctx == NULL)
        return;
    sk_key_free(ctx->key);
    OPENSSL_free(ctx->oaep_label);
    clear_wrap_subject(ctx);
    OPENSSL_free(ctx);
}

static void *rsa_cipher_dupctx(void *vctx)
{
    const sk_rsa_cipher *from = vctx;
    sk_rsa_cipher *copy = SK_CTX_DUP(from, "copying an RSA cipher");
    int ok = 1;

    if (copy == NULL)
        return NULL;
    copy->key = sk_key_up_ref(from->key);
    copy->oaep_label = NULL;
    if (from->oaep_label != NULL) {
        copy->oaep_label =
            OPENSSL_memdup(from->oaep_label, from->oaep_label_len);
        ok = copy->oaep_label != NULL;
    }
    copy->wrap_subject_uri = sk_strdup_or_null(from->wrap_subject_uri, &ok);
    copy->wrap_subject.name = sk_strdup_or_null(from->wrap_subject.name, &ok);
    copy->wrap_subject.kid = sk_strdup_or_null(from->wrap_subject.kid, &ok);
    return SK_CTX_DUP_DONE(from, copy, ok, rsa_cipher_freectx,
                           "copying an RSA cipher");
}

/* ---- parameters ---------------------------------------------------- */

/*
 * Text types where the command line sends text: -pkeyopt values are
 * converted with the types declared here (docs/openssl-dispatch.md §4), and
 * pad-mode also arrives as an int from C callers.
 */
static const OSSL_PARAM settable_params[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_uint(PARAM_IMPLICIT_REJECTION, NULL),
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT, NULL, 0),
    OSSL_PARAM_int(SMARTKEY_PARAM_REMOTE_ENCRYPT, NULL),
    SK_APPROVAL_SETTABLE_PARAMS,
    OSSL_PARAM_END,
};

/* Text parameters that take an int too (docs/openssl-dispatch.md §4). */
static const char *const text_or_int_params[] = {
    OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL};

static int set_padding(sk_rsa_cipher *ctx, const OSSL_PARAM *p)
{
    static const struct {
        const char *name;
        int padding;
    } names[] = {
        {OSSL_PKEY_RSA_PAD_MODE_OAEP, RSA_PKCS1_OAEP_PADDING},
        {OSSL_PKEY_RSA_PAD_MODE_PKCSV15, RSA_PKCS1_PADDING},
        {OSSL_PKEY_RSA_PAD_MODE_NONE, RSA_NO_PADDING},
    };
    int padding = -1;
    char text[32] = "";

    /* the command line sends text, EVP_PKEY_CTX_set_rsa_padding() and
       libssl send an int (docs/openssl-dispatch.md §4) */
    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (!sk_param_text(ctx->provctx, p, text, sizeof(text)))
            return 0;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strcasecmp(text, names[i].name) == 0)
                padding = names[i].padding;
    } else if (!OSSL_PARAM_get_int(p, &padding)) {
        padding = -1;
    }
    switch (padding) {
    case RSA_PKCS1_OAEP_PADDING:
    case RSA_PKCS1_PADDING:
    case RSA_NO_PADDING:
    case RSA_PKCS1_WITH_TLS_PADDING:
        ctx->padding = padding;
        return 1;
    }
    SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
             "RSA padding mode %s%s%s is not one SmartKey offers for "
             "encryption (oaep, pkcs1, none)",
             p->data_type == OSSL_PARAM_UTF8_STRING ? "'" : "",
             p->data_type == OSSL_PARAM_UTF8_STRING ? text : "(number)",
             p->data_type == OSSL_PARAM_UTF8_STRING ? "'" : "");
    return 0;
}

static int set_digest(sk_rsa_cipher *ctx, const OSSL_PARAM *p,
                      const sk_digest **slot, const char *what)
{
    char name[64];
    const sk_digest *digest;

    if (!sk_param_text(ctx->provctx, p, name, sizeof(name))) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "the %s must be a digest name", what);
        return 0;
    }
    digest = sk_digest_by_name(name, SK_DIGEST_OAEP);
    if (digest == NULL) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "%s '%.64s' is not one SmartKey's RSA OAEP offers (SHA1, "
                 "SHA224, SHA256, SHA384, SHA512)",
                 what, name);
        return 0;
    }
    *slot = digest;
    return 1;
}

static int set_wrap_subject(sk_rsa_cipher *ctx, const OSSL_PARAM *p)
{
    char uri[SK_PARAM_MAX_BYTES + 1];
    char why[256] = "";
    sk_uri parsed;

    if (!sk_param_text(ctx->provctx, p, uri, sizeof(uri))) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "%s must be a smartkey: URI", SMARTKEY_PARAM_WRAP_SUBJECT);
        return 0;
    }
    clear_wrap_subject(ctx);
    /* an empty value turns the wrap off again */
    if (*uri == '\0')
        return 1;
    if (!sk_uri_parse(uri, &parsed, why, sizeof(why))) {
        SK_RAISE(ctx->provctx, SK_R_MALFORMED_URI, "%s '%.256s': %s",
                 SMARTKEY_PARAM_WRAP_SUBJECT, uri, why);
        return 0;
    }
    if (parsed.name == NULL && parsed.kid == NULL) {
        sk_uri_clear(&parsed);
        SK_RAISE(ctx->provctx, SK_R_MALFORMED_URI,
                 "%s '%.256s' names no key; write "
                 "smartkey:name=NAME or smartkey:kid=UUID",
                 SMARTKEY_PARAM_WRAP_SUBJECT, uri);
        return 0;
    }
    ctx->wrap_subject_uri = OPENSSL_strdup(uri);
    if (ctx->wrap_subject_uri == NULL) {
        sk_uri_clear(&parsed);
        SK_RAISE(ctx->provctx, SK_R_OUT_OF_MEMORY, "reading %s",
                 SMARTKEY_PARAM_WRAP_SUBJECT);
        return 0;
    }
    ctx->wrap_subject = parsed;
    return 1;
}

static const sk_digest *effective_oaep_digest(const sk_rsa_cipher *ctx)
{
    return ctx->oaep_digest != NULL ? ctx->oaep_digest
                                    : sk_digest_oaep_default();
}

/*
 * SmartKey's OAEP names a single hash for both the label and MGF1, so a
 * request with two different ones cannot be honoured: refuse it instead of
 * guessing (docs/smartkey-api.md §4.1). At set time only an explicit pair is
 * compared, so the order of -pkeyopt options does not matter; the operation
 * checks the effective pair (OAEP defaults to SHA-1, MGF1 to the OAEP digest).
 */
static int digests_agree(const sk_rsa_cipher *ctx, int effective)
{
    const sk_digest *oaep = ctx->oaep_digest, *mgf1 = ctx->mgf1_digest;

    if (effective) {
        oaep = effective_oaep_digest(ctx);
        if (mgf1 == NULL)
            mgf1 = oaep;
    }
    if (oaep == NULL || mgf1 == NULL || oaep == mgf1)
        return 1;
    SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
             "OAEP digest %s differs from MGF1 digest %s: SmartKey uses one "
             "hash for both; set rsa_oaep_md and rsa_mgf1_md to the same "
             "digest",
             oaep->smartkey_name, mgf1->smartkey_name);
    return 0;
}

static int get_uint(sk_rsa_cipher *ctx, const OSSL_PARAM *p,
                    unsigned int *value)
{
    if (OSSL_PARAM_get_uint(p, value))
        return 1;
    SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
             "parameter '%.64s' of the RSA cipher must be an unsigned "
             "integer that fits in 32 bits",
             p->key);
    return 0;
}

static int set_oaep_label(sk_rsa_cipher *ctx, const OSSL_PARAM *p)
{
    void *label = NULL;
    size_t len = 0;

    if (!OSSL_PARAM_get_octet_string(p, &label, 0, &len)) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "the OAEP label must be an octet string");
        return 0;
    }
    OPENSSL_free(ctx->oaep_label);
    ctx->oaep_label = label;
    ctx->oaep_label_len = len;
    return 1;
}

/* smartkey-remote-encrypt: 1 encrypts in SmartKey, 0 locally. */
static int set_remote_encrypt(sk_rsa_cipher *ctx, const OSSL_PARAM *p)
{
    int remote;

    if (!OSSL_PARAM_get_int(p, &remote) || (remote != 0 && remote != 1)) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER, "%s must be 0 or 1",
                 SMARTKEY_PARAM_REMOTE_ENCRYPT);
        return 0;
    }
    ctx->remote_encrypt = remote;
    return 1;
}

static int rsa_cipher_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sk_rsa_cipher *ctx = vctx;
    const OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if (!sk_params_check(ctx->provctx, params, settable_params,
                         text_or_int_params, "the RSA cipher"))
        return 0;
    if (!sk_approval_set_params(ctx->provctx, &ctx->approval, params))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL && !set_padding(ctx, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL &&
        !set_digest(ctx, p, &ctx->oaep_digest, "OAEP digest (rsa_oaep_md)"))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL &&
        !set_digest(ctx, p, &ctx->mgf1_digest, "MGF1 digest (rsa_mgf1_md)"))
        return 0;
    /* digest-props and mgf1-digest-props are accepted and not needed: the
       hashing happens in SmartKey or in the default provider */
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p != NULL && !set_oaep_label(ctx, p))
        return 0;
    p = OSSL_PARAM_locate_const(params,
                                OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION);
    if (p != NULL && !get_uint(ctx, p, &ctx->tls_client_version))
        return 0;
    p = OSSL_PARAM_locate_const(params,
                                OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION);
    if (p != NULL && !get_uint(ctx, p, &ctx->tls_negotiated_version))
        return 0;
    p = OSSL_PARAM_locate_const(params, PARAM_IMPLICIT_REJECTION);
    if (p != NULL && !get_uint(ctx, p, &ctx->implicit_rejection))
        return 0;
    p = OSSL_PARAM_locate_const(params, SMARTKEY_PARAM_REMOTE_ENCRYPT);
    if (p != NULL && !set_remote_encrypt(ctx, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, SMARTKEY_PARAM_WRAP_SUBJECT);
    if (p != NULL && !set_wrap_subject(ctx, p))
        return 0;
    return digests_agree(ctx, 0);
}

static const OSSL_PARAM *rsa_cipher_settable_ctx_params(void *vctx,
                                                        void *provctx)
{
    return settable_params;
}

static const char *padding_name(int padding)
{
    switch (padding) {
    case RSA_PKCS1_OAEP_PADDING:
        return OSSL_PKEY_RSA_PAD_MODE_OAEP;
    case RSA_NO_PADDING:
        return OSSL_PKEY_RSA_PAD_MODE_NONE;
    }
    return OSSL_PKEY_RSA_PAD_MODE_PKCSV15;
}

static int rsa_cipher_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sk_rsa_cipher *ctx = vctx;
    OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL &&
        !(p->data_type == OSSL_PARAM_UTF8_STRING
              ? OSSL_PARAM_set_utf8_string(p, padding_name(ctx->padding))
              : OSSL_PARAM_set_int(p, ctx->padding)))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(
                         p, effective_oaep_digest(ctx)->openssl_name))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(p, (ctx->mgf1_digest != NULL
                                            ? ctx->mgf1_digest
                                            : effective_oaep_digest(ctx))
                                           ->openssl_name))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p != NULL &&
        !OSSL_PARAM_set_octet_ptr(p, ctx->oaep_label, ctx->oaep_label_len))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION);
    if (p != NULL && !OSSL_PARAM_set_uint(p, ctx->tls_client_version))
        return 0;
    p = OSSL_PARAM_locate(params,
                          OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION);
    if (p != NULL && !OSSL_PARAM_set_uint(p, ctx->tls_negotiated_version))
        return 0;
    p = OSSL_PARAM_locate(params, SMARTKEY_PARAM_WRAP_SUBJECT);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(
            p, ctx->wrap_subject_uri != NULL ? ctx->wrap_subject_uri : ""))
        return 0;
    p = OSSL_PARAM_locate(params, SMARTKEY_PARAM_REMOTE_ENCRYPT);
    if (p != NULL && !OSSL_PARAM_set_int(p, ctx->remote_encrypt))
        return 0;
    return 1;
}

static const OSSL_PARAM gettable_params[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT, NULL, 0),
    OSSL_PARAM_int(SMARTKEY_PARAM_REMOTE_ENCRYPT, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_cipher_gettable_ctx_params(void *vctx,
                                                        void *provctx)
{
    return gettable_params;
}

/* ---- init ------------------------------------------------------------ */

static int rsa_cipher_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    sk_rsa_cipher *ctx = vctx;
    sk_keydata *keydata = vkey;

    if (ctx == NULL || keydata == NULL || keydata->key == NULL ||
        keydata->key->type != SK_KEY_RSA) {
        SK_RAISE(ctx != NULL ? ctx->provctx : NULL, SK_R_UNSUPPORTED_KEY_TYPE,
                 "the RSA cipher needs an RSA key");
        return 0;
    }
    sk_key_free(ctx->key);
    ctx->key = sk_key_up_ref(keydata->key);
    ctx->private_handle = keydata->private_handle;
    return rsa_cipher_set_ctx_params(ctx, params);
}

/* ---- SmartKey calls --------------------------------------------------- */

/* A key read from a local file (imported from another provider) has no
   identity in SmartKey. */
static int held_in_smartkey(const sk_key *key)
{
    return key->kid[0] != '\0';
}

static void describe_key(const sk_key *key, char *buf, size_t len)
{
    if (!held_in_smartkey(key))
        snprintf(buf, len, "wrapping key from a local file");
    else if (key->name != NULL)
        snprintf(buf, len, "key '%.200s' (%s)", key->name, key->kid);
    else
        snprintf(buf, len, "key %s", key->kid);
}

static sk_client *client_of(sk_rsa_cipher *ctx)
{
    return sk_provctx_client(ctx->provctx);
}

/*
 * Registers the public half of a key that SmartKey does not hold as a
 * transient key of the client's session: SmartKey wraps and encrypts only
 * under keys it knows. Transient keys die with the session, so nothing is
 * left on the server (docs/smartkey-api.md §3.3).
 */
static char *register_transient_key(sk_rsa_cipher *ctx, sk_client *client)
{
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(ctx->key->public_key, &spki);
    char *handle = NULL;
    sk_error err;
    int ok;

    if (spki_len <= 0) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "cannot encode the wrapping key as a SubjectPublicKeyInfo");
        return NULL;
    }
    memset(&err, 0, sizeof(err));
    sk_set_error_mark(ctx->provctx);
    ok = sk_client_create_transient_public_key(client, "RSA", spki,
                                               (size_t)spki_len, &handle, &err);
    sk_pop_error_to_mark(ctx->provctx);
    OPENSSL_free(spki);
    if (!ok) {
        SK_RAISE_CLIENT(ctx->provctx,
                        "registering the wrapping key from a local file "
                        "with SmartKey",
                        &err);
        return NULL;
    }
    SK_DEBUG(2, "wrapping key from a local file registered as a transient "
                "key");
    return handle;
}

typedef enum remote_call { CALL_WRAPKEY, CALL_ENCRYPT } remote_call;

/*
 * One remote call that uses the operation's key as the wrapping or
 * encryption key: by kid for a SmartKey key, else through a transient
 * registration. A transient handle is refused once the session that
 * created it was renewed in between: then the pair is done once more.
 */
/* One wrapkey (the sk_wrapkey_request of a plain wrap) or encrypt call
   with key or transient as the RSA key; err set when it fails. */
static int send_with_key(sk_rsa_cipher *ctx, sk_client *client,
                         remote_call call, sk_key_ref key,
                         const char *transient, sk_approval *approval,
                         const unsigned char *in, size_t inlen,
                         unsigned char **result, size_t *result_len,
                         sk_error *err)
{
    const sk_digest *digest = effective_oaep_digest(ctx);

    if (call == CALL_WRAPKEY) {
        sk_wrapkey_request req;

        memset(&req, 0, sizeof(req));
        req.wrapping_key = key;
        req.wrapping_transient_key = transient;
        req.wrap_subject.name = ctx->wrap_subject.name;
        req.wrap_subject.kid = ctx->wrap_subject.kid;
        req.alg = "RSA";
        req.oaep_hash = digest->smartkey_name;
        req.approval = approval;
        return sk_client_wrapkey(client, &req, result, result_len, err);
    } else {
        sk_rsa_request req;

        memset(&req, 0, sizeof(req));
        req.key = key;
        req.transient_key = transient;
        req.padding = ctx->padding == RSA_PKCS1_OAEP_PADDING ? SK_RSA_OAEP
                                                             : SK_RSA_PKCS1_V15;
        req.oaep_hash = digest->smartkey_name;
        req.label = ctx->oaep_label;
        req.label_len = ctx->oaep_label_len;
        req.in = in;
        req.in_len = inlen;
        req.approval = approval;
        return sk_client_encrypt(client, &req, result, result_len, err);
    }
}

/* The error of a failed call: what was done with which key, SmartKey's
   answer; a key SmartKey no longer shows is dropped from the cache. */
static void call_failed(sk_rsa_cipher *ctx, remote_call call,
                        sk_approval_ctx *approval, const sk_error *err)
{
    char key_text[260], subject[300];

    if (SK_RAISE_APPROVAL(approval, err))
        return;
    describe_key(ctx->key, key_text, sizeof(key_text));
    if (call == CALL_WRAPKEY)
        snprintf(subject, sizeof(subject), "wrapping %.120s under %.150s",
                 ctx->wrap_subject_uri, key_text);
    else
        snprintf(subject, sizeof(subject), "encrypting with %.250s", key_text);
    /* A 404 may also be about the wrap subject; forgetting the
       wrapping key as well only costs one lookup on the next load. */
    if (held_in_smartkey(ctx->key) &&
        (err->kind == SK_ERR_NOT_FOUND || err->kind == SK_ERR_FORBIDDEN))
        sk_key_cache_forget(ctx->provctx, ctx->key);
    SK_RAISE_CLIENT(ctx->provctx, subject, err);
}

/* The approval of a wrap or an encryption: what approvers read. */
static sk_approval *prepare_call_approval(sk_rsa_cipher *ctx, remote_call call,
                                          size_t inlen,
                                          sk_approval_ctx *approval)
{
    char key_text[260], what[400], fingerprint[128];

    describe_key(ctx->key, key_text, sizeof(key_text));
    fingerprint[0] = '\0';
    if (sk_approval_describes(ctx->provctx, &ctx->approval))
        sk_approval_fingerprint(ctx->key->public_key, fingerprint,
                                sizeof(fingerprint));
    if (call == CALL_WRAPKEY) {
        snprintf(what, sizeof(what), "wrapping %.120s under %.250s",
                 ctx->wrap_subject_uri, key_text);
        return sk_approval_prepare(
            approval, ctx->provctx, &ctx->approval, what,
            "Wrap (export) the key %.200s under the RSA %s%.200s (public key "
            "%s) with RSA-OAEP %s; format rsa-oaep",
            ctx->wrap_subject_uri, held_in_smartkey(ctx->key) ? "" : "public ",
            key_text, fingerprint, effective_oaep_digest(ctx)->smartkey_name);
    }
    snprintf(what, sizeof(what), "encrypting with %.250s", key_text);
    return sk_approval_prepare(approval, ctx->provctx, &ctx->approval, what,
                               "Encrypt %zu bytes with the RSA %.200s (public "
                               "key %s), padding %s",
                               inlen, key_text, fingerprint,
                               padding_name(ctx->padding));
}

static int call_with_key(sk_rsa_cipher *ctx, remote_call call,
                         const unsigned char *in, size_t inlen,
                         unsigned char **result, size_t *result_len)
{
    sk_client *client = client_of(ctx);
    sk_approval_ctx approval;
    sk_approval *wire;
    sk_error err;
    int ok = 0;

    if (client == NULL)
        return 0;
    wire = prepare_call_approval(ctx, call, inlen, &approval);
    for (int attempt = 0; attempt < 2; attempt++) {
        sk_key_ref key = {NULL, NULL};
        char *transient = NULL;

        if (held_in_smartkey(ctx->key)) {
            key.kid = ctx->key->kid;
        } else {
            transient = register_transient_key(ctx, client);
            if (transient == NULL)
                return 0;
        }
        memset(&err, 0, sizeof(err));
        sk_set_error_mark(ctx->provctx);
        ok = send_with_key(ctx, client, call, key, transient, wire, in, inlen,
                           result, result_len, &err);
        sk_pop_error_to_mark(ctx->provctx);
        OPENSSL_free(transient);
        if (ok || transient == NULL || err.kind != SK_ERR_NOT_FOUND)
            break;
    }
    if (!ok)
        call_failed(ctx, call, &approval, &err);
    return ok;
}

/* ---- encrypt ---------------------------------------------------------- */

static int rsa_cipher_encrypt_init(void *vctx, void *vkey,
                                   const OSSL_PARAM params[])
{
    return rsa_cipher_init(vctx, vkey, params);
}

/* The caller's data with the public half, in the default provider. */
static int encrypt_locally(sk_rsa_cipher *ctx, unsigned char *out,
                           size_t *outlen, size_t outsize,
                           const unsigned char *in, size_t inlen)
{
    const sk_digest *digest = effective_oaep_digest(ctx);
    OSSL_PARAM params[5], *p = params;
    EVP_PKEY_CTX *local;
    size_t len = outsize;
    int ok;

    *p++ = OSSL_PARAM_construct_int(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
                                    &ctx->padding);
    if (ctx->padding == RSA_PKCS1_OAEP_PADDING) {
        *p++ =
            OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
                                             (char *)digest->openssl_name, 0);
        *p++ =
            OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
                                             (char *)digest->openssl_name, 0);
        if (ctx->oaep_label_len > 0)
            *p++ = OSSL_PARAM_construct_octet_string(
                OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, ctx->oaep_label,
                ctx->oaep_label_len);
    }
    *p = OSSL_PARAM_construct_end();

    local = EVP_PKEY_CTX_new_from_pkey(ctx->provctx->libctx,
                                       ctx->key->public_key, LOCAL_PROPQ);
    ok = local != NULL && EVP_PKEY_encrypt_init_ex(local, params) > 0 &&
         EVP_PKEY_encrypt(local, out, &len, in, inlen) > 0;
    EVP_PKEY_CTX_free(local);
    if (!ok) {
        /* the default provider's own error (e.g. "data too large for key
           size") is on the queue and says why */
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "local RSA encryption with the public key failed");
        return 0;
    }
    *outlen = len;
    return 1;
}

/*
 * RSA-OAEP and PKCS#1 v1.5 blocks (a wrapped key, a ciphertext) are
 * exactly the modulus long (PKCS#1 I2OSP): another length is a broken or
 * tampered answer, and no application can tell it from a good one later.
 */
static int is_rsa_block(sk_rsa_cipher *ctx, size_t result_len, const char *what)
{
    if (result_len == (size_t)ctx->key->max_size)
        return 1;
    SK_RAISE(ctx->provctx, SK_R_BAD_RESPONSE,
             "SmartKey's %s is %zu bytes; an RSA block of this key is %d "
             "bytes",
             what, result_len, ctx->key->max_size);
    return 0;
}

static int copy_result(sk_rsa_cipher *ctx, unsigned char *result,
                       size_t result_len, unsigned char *out, size_t *outlen,
                       size_t outsize, const char *what)
{
    if (result_len > outsize) {
        SK_RAISE(ctx->provctx, SK_R_BAD_RESPONSE,
                 "SmartKey's %s is %zu bytes, more than the %zu-byte output "
                 "buffer",
                 what, result_len, outsize);
        return 0;
    }
    memcpy(out, result, result_len);
    *outlen = result_len;
    return 1;
}

static int wrap_subject_key(sk_rsa_cipher *ctx, unsigned char *out,
                            size_t *outlen, size_t outsize, size_t inlen)
{
    unsigned char *wrapped = NULL;
    size_t wrapped_len = 0;
    int ok;

    if (!sk_wrap_input_is_empty(ctx->provctx, inlen))
        return 0;
    if (ctx->padding != RSA_PKCS1_OAEP_PADDING) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "server-side wrapping uses RSA-OAEP; add "
                 "-pkeyopt rsa_padding_mode:oaep (padding %s requested)",
                 padding_name(ctx->padding));
        return 0;
    }
    if (ctx->oaep_label_len > 0) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "SmartKey's wrapkey takes no OAEP label; remove "
                 "rsa_oaep_label");
        return 0;
    }
    if (!digests_agree(ctx, 1))
        return 0;
    if (out == NULL) {
        *outlen = (size_t)ctx->key->max_size;
        return 1;
    }
    if (!call_with_key(ctx, CALL_WRAPKEY, NULL, 0, &wrapped, &wrapped_len))
        return 0;
    ok = is_rsa_block(ctx, wrapped_len, "wrapped key") &&
         copy_result(ctx, wrapped, wrapped_len, out, outlen, outsize,
                     "wrapped key");
    OPENSSL_free(wrapped);
    return ok;
}

static int rsa_cipher_encrypt(void *vctx, unsigned char *out, size_t *outlen,
                              size_t outsize, const unsigned char *in,
                              size_t inlen)
{
    sk_rsa_cipher *ctx = vctx;
    unsigned char *cipher = NULL;
    size_t cipher_len = 0;
    int ok;

    if (ctx == NULL || ctx->key == NULL)
        return 0;
    if (ctx->wrap_subject_uri != NULL)
        return wrap_subject_key(ctx, out, outlen, outsize, inlen);
    if (!ctx->remote_encrypt)
        return encrypt_locally(ctx, out, outlen, outsize, in, inlen);

    if (ctx->padding != RSA_PKCS1_OAEP_PADDING &&
        ctx->padding != RSA_PKCS1_PADDING) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "SmartKey encrypts with OAEP or PKCS#1 v1.5 only (padding "
                 "%s requested with %s)",
                 padding_name(ctx->padding), SMARTKEY_PARAM_REMOTE_ENCRYPT);
        return 0;
    }
    if (ctx->padding == RSA_PKCS1_OAEP_PADDING && !digests_agree(ctx, 1))
        return 0;
    if (out == NULL) {
        *outlen = (size_t)ctx->key->max_size;
        return 1;
    }
    if (in == NULL || inlen == 0) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "nothing to encrypt (empty input)");
        return 0;
    }
    if (!call_with_key(ctx, CALL_ENCRYPT, in, inlen, &cipher, &cipher_len))
        return 0;
    ok = is_rsa_block(ctx, cipher_len, "ciphertext") &&
         copy_result(ctx, cipher, cipher_len, out, outlen, outsize,
                     "ciphertext");
    OPENSSL_free(cipher);
    return ok;
}

/* ---- decrypt ---------------------------------------------------------- */

static int rsa_cipher_decrypt_init(void *vctx, void *vkey,
                                   const OSSL_PARAM params[])
{
    sk_rsa_cipher *ctx = vctx;

    if (!rsa_cipher_init(vctx, vkey, params))
        return 0;
    if (!ctx->private_handle) {
        char key_text[260];

        describe_key(ctx->key, key_text, sizeof(key_text));
        SK_RAISE(ctx->provctx, SK_R_NO_PRIVATE_KEY,
                 "cannot decrypt with %s: it is a public key", key_text);
        return 0;
    }
    return 1;
}

/* ---- PKCS#1 v1.5: TLS premaster and implicit rejection --------------- */

/* Constant-time helpers: all-ones when true, 0 when false. */
static unsigned int ct_is_zero(unsigned int a)
{
    return 0u - ((~a & (a - 1)) >> (sizeof(a) * 8 - 1));
}

static unsigned int ct_eq(unsigned int a, unsigned int b)
{
    return ct_is_zero(a ^ b);
}

static unsigned int ct_lt(unsigned int a, unsigned int b)
{
    return 0u - ((a ^ ((a ^ b) | ((a - b) ^ b))) >> (sizeof(a) * 8 - 1));
}

/*
 * TLS 1.2 RSA key exchange: a bad block, length or version must not be
 * told apart from a good one (Bleichenbacher). Like OpenSSL's
 * ossl_rsa_padding_check_PKCS1_type_2_TLS, a random pre-master secret is
 * made every time and selected with constant-time masks when the answer is
 * not 48 bytes starting with the client's (or the negotiated) version:
 * never an error, no branch on the decrypted bytes. What SmartKey answered
 * (a plaintext or "bad padding") is visible in its HTTP status and timing,
 * inside the provider's own TLS connection (docs/wrapping.md).
 */
static void tls_premaster_select(const unsigned char *plain, size_t plain_len,
                                 int decrypted, unsigned int client_version,
                                 unsigned int alt_version,
                                 const unsigned char random[TLS_PREMASTER_SIZE],
                                 unsigned char out[TLS_PREMASTER_SIZE])
{
    unsigned char candidate[TLS_PREMASTER_SIZE] = {0};
    unsigned int good, version_good, alt_good;

    /* the answer's length is what SmartKey sent, not a secret of ours */
    if (decrypted && plain != NULL)
        memcpy(candidate, plain,
               plain_len < TLS_PREMASTER_SIZE ? plain_len : TLS_PREMASTER_SIZE);
    good = ~ct_is_zero((unsigned int)(decrypted != 0)) &
           ct_eq((unsigned int)(plain_len == TLS_PREMASTER_SIZE), 1);
    version_good = ct_eq(candidate[0], (client_version >> 8) & 0xff) &
                   ct_eq(candidate[1], client_version & 0xff);
    /* OpenSSL's workaround for clients that send the negotiated version */
    alt_good = ~ct_is_zero(alt_version) &
               ct_eq(candidate[0], (alt_version >> 8) & 0xff) &
               ct_eq(candidate[1], alt_version & 0xff);
    good &= version_good | alt_good;
    for (size_t i = 0; i < TLS_PREMASTER_SIZE; i++)
        out[i] = (unsigned char)((good & candidate[i]) | (~good & random[i]));
    OPENSSL_cleanse(candidate, sizeof(candidate));
}

static int tls_premaster(sk_rsa_cipher *ctx, int decrypted,
                         const unsigned char *plain, size_t plain_len,
                         unsigned char *out, size_t *outlen, size_t outsize)
{
    unsigned char random[TLS_PREMASTER_SIZE];

    if (ctx->tls_client_version == 0 || outsize < TLS_PREMASTER_SIZE) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "TLS padding needs tls-client-version and a %d-byte buffer",
                 TLS_PREMASTER_SIZE);
        return 0;
    }
    /* made every time, used or not */
    if (RAND_priv_bytes_ex(ctx->provctx->libctx, random, sizeof(random), 0) <=
        0)
        return 0;
    random[0] = (unsigned char)(ctx->tls_client_version >> 8);
    random[1] = (unsigned char)ctx->tls_client_version;
    tls_premaster_select(plain, plain_len, decrypted, ctx->tls_client_version,
                         ctx->tls_negotiated_version, random, out);
    OPENSSL_cleanse(random, sizeof(random));
    *outlen = TLS_PREMASTER_SIZE;
    return 1;
}

/*
 * Implicit rejection (OpenSSL 3.2+, the Marvin attack): when the padding
 * of a PKCS#1 v1.5 block is bad, OpenSSL's default provider returns a
 * pseudo-random message derived from the ciphertext and a secret of the
 * key (a hash of the private exponent), of a pseudo-random length, instead
 * of an error. The private exponent stays in SmartKey, so the key's secret
 * here is derived from the API key and the key's kid (HMAC-SHA256, in the
 * client, which holds the API key): the same ciphertext gives the same
 * message in every process of the same configuration, a different one
 * after the API key changes. Otherwise the derivation is OpenSSL's
 * (rsa_pk1.c): kdk = HMAC(secret, ciphertext), then its PRF with the
 * labels "message" and "length".
 */
#define KDK_SIZE    32
#define MAX_LEN_GEN 128

static int hmac_sha256(sk_provctx *provctx, const unsigned char *key,
                       size_t key_len, const unsigned char *const parts[],
                       const size_t part_lens[], size_t part_count,
                       unsigned char out[KDK_SIZE])
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC *mac = EVP_MAC_fetch(provctx->libctx, "HMAC", LOCAL_PROPQ);
    EVP_MAC_CTX *mctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    size_t len = 0;
    int ok = mctx != NULL && EVP_MAC_init(mctx, key, key_len, params);

    for (size_t i = 0; ok && i < part_count; i++)
        ok = EVP_MAC_update(mctx, parts[i], part_lens[i]);
    ok = ok && EVP_MAC_final(mctx, out, &len, KDK_SIZE) && len == KDK_SIZE;
    EVP_MAC_CTX_free(mctx);
    EVP_MAC_free(mac);
    return ok;
}

/* OpenSSL's ossl_rsa_prf: HMAC(kdk, counter || label || bit length). */
static int prf(sk_provctx *provctx, const unsigned char kdk[KDK_SIZE],
               const char *label, unsigned char *out, size_t out_len)
{
    unsigned char block[KDK_SIZE], bits[2], counter[2];
    size_t bit_len = out_len * 8;
    const unsigned char *parts[3] = {counter, (const unsigned char *)label,
                                     bits};
    size_t lens[3] = {2, strlen(label), 2};

    bits[0] = (unsigned char)(bit_len >> 8);
    bits[1] = (unsigned char)bit_len;
    for (size_t pos = 0, i = 0; pos < out_len; pos += KDK_SIZE, i++) {
        counter[0] = (unsigned char)(i >> 8);
        counter[1] = (unsigned char)i;
        if (!hmac_sha256(provctx, kdk, KDK_SIZE, parts, lens, 3, block))
            return 0;
        memcpy(out + pos, block,
               out_len - pos < KDK_SIZE ? out_len - pos : KDK_SIZE);
    }
    OPENSSL_cleanse(block, sizeof(block));
    return 1;
}

/* The synthetic message's length: the last of the candidate lengths
   below k - 2 - 8, chosen in constant time. */
static unsigned int synthetic_length(const unsigned char *lengths,
                                     size_t modulus)
{
    unsigned int max_sep_offset = (unsigned int)modulus - 2 - 8;
    unsigned int mask = max_sep_offset, length = 0;

    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    for (size_t i = 0; i < MAX_LEN_GEN; i++) {
        unsigned int candidate =
            (((unsigned int)lengths[2 * i] << 8) | lengths[2 * i + 1]) & mask;
        unsigned int fits = ct_lt(candidate, max_sep_offset);

        length = (fits & candidate) | (~fits & length);
    }
    return length;
}

/* The synthetic message for a bad block: cipher is modulus bytes. */
static int implicit_rejection(sk_rsa_cipher *ctx, const unsigned char *cipher,
                              size_t modulus, unsigned char *out,
                              size_t *outlen, size_t outsize)
{
    unsigned char key_secret[KDK_SIZE], kdk[KDK_SIZE];
    char label[80];
    unsigned char lengths[MAX_LEN_GEN * 2], *synthetic;
    unsigned int length;
    const unsigned char *parts[1];
    size_t lens[1];
    int ok;

    if (modulus < 11 + 2 || modulus > 0xffff / 8) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "no implicit rejection for a %zu-byte modulus", modulus);
        return 0;
    }
    synthetic = OPENSSL_malloc(modulus);
    snprintf(label, sizeof(label), "implicit rejection %s", ctx->key->kid);
    ok = synthetic != NULL &&
         sk_client_derive_secret(client_of(ctx), label, key_secret);
    parts[0] = cipher;
    lens[0] = modulus;
    ok = ok &&
         hmac_sha256(ctx->provctx, key_secret, KDK_SIZE, parts, lens, 1, kdk) &&
         prf(ctx->provctx, kdk, "message", synthetic, modulus) &&
         prf(ctx->provctx, kdk, "length", lengths, sizeof(lengths));
    if (ok) {
        length = synthetic_length(lengths, modulus);
        if (length > outsize) {
            SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                     "the plaintext does not fit the %zu-byte output buffer",
                     outsize);
            ok = 0;
        } else {
            memcpy(out, synthetic + modulus - length, length);
            *outlen = length;
        }
    } else {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "cannot compute the implicit rejection message");
    }
    OPENSSL_cleanse(key_secret, sizeof(key_secret));
    OPENSSL_cleanse(kdk, sizeof(kdk));
    OPENSSL_cleanse(lengths, sizeof(lengths));
    OPENSSL_clear_free(synthetic, modulus);
    return ok;
}

/* Whether the running libcrypto's default provider rejects implicitly. */
static int openssl_has_implicit_rejection(void)
{
    return OpenSSL_version_num() >= 0x30200000UL;
}

/* SmartKey's refusal of a padding the key's policy does not allow (400,
   or 403 on some servers, naming the policy). */
static int is_policy_refusal(const sk_error *err)
{
    return (err->kind == SK_ERR_BAD_REQUEST || err->kind == SK_ERR_FORBIDDEN) &&
           strstr(err->message, "policy") != NULL;
}

/* SmartKey could not unpad the block: bad padding (400, "Decryption
   failed"). Not a policy refusal, not a missing permission. */
static int is_bad_padding(const sk_error *err)
{
    return err->kind == SK_ERR_BAD_REQUEST && !is_policy_refusal(err);
}

/*
 * PKCS#1 v1.5 refused by the key's policy. cms clears the error queue
 * after a failed decryption (an oracle defence) and TLS must not fail
 * visibly, so besides the error queue one error-level line per key goes
 * to stderr, without SMARTKEY_DEBUG.
 */
static void pkcs1_policy_refusal(sk_rsa_cipher *ctx, const sk_error *err)
{
    char key_text[260], message[600], subject[300];

    describe_key(ctx->key, key_text, sizeof(key_text));
    snprintf(subject, sizeof(subject), "decrypting with %.250s", key_text);
    SK_RAISE_CLIENT(ctx->provctx, subject, err);
    snprintf(message, sizeof(message),
             "%s: SmartKey's policy for this key does not allow PKCS#1 v1.5 "
             "decryption; add {\"padding\":{\"PKCS1_V15\":{}}} to the key's "
             "RSA encryption_policy, or have the sender use RSA-OAEP (TLS: "
             "ECDHE cipher suites)",
             key_text);
    SK_RAISE(ctx->provctx, SK_R_OPERATION_NOT_ALLOWED, "%s", message);
    sk_report_once("PKCS#1 v1.5 policy", ctx->key->kid, "%s", message);
}

/* The longest message the padding fits in a block of `modulus` bytes: a
   longer "plaintext" from SmartKey cannot be one. */
static size_t max_plaintext(const sk_rsa_cipher *ctx, size_t modulus)
{
    const char *hash = effective_oaep_digest(ctx)->smartkey_name;
    size_t hash_len;

    switch (ctx->padding) {
    case RSA_PKCS1_OAEP_PADDING:
        /* "SHA1" is 20 bytes, "SHA<bits>" bits / 8 */
        hash_len = strcmp(hash, "SHA1") == 0
                       ? 20
                       : (size_t)strtoul(hash + 3, NULL, 10) / 8;
        return modulus > 2 * hash_len + 2 ? modulus - 2 * hash_len - 2 : 0;
    case RSA_NO_PADDING:
        return modulus;
    default:
        return modulus > 11 ? modulus - 11 : 0;
    }
}

/* The request for SmartKey: the ciphertext, modulus-sized, and the
   padding with its settings. */
static void decrypt_request(const sk_rsa_cipher *ctx,
                            const unsigned char *cipher, size_t modulus,
                            sk_rsa_request *req)
{
    memset(req, 0, sizeof(*req));
    req->key.kid = ctx->key->kid;
    switch (ctx->padding) {
    case RSA_PKCS1_OAEP_PADDING:
        req->padding = SK_RSA_OAEP;
        req->oaep_hash = effective_oaep_digest(ctx)->smartkey_name;
        req->label = ctx->oaep_label;
        req->label_len = ctx->oaep_label_len;
        break;
    case RSA_NO_PADDING:
        req->padding = SK_RSA_RAW;
        break;
    default:
        req->padding = SK_RSA_PKCS1_V15;
        break;
    }
    req->in = cipher;
    req->in_len = modulus;
}

/* A failed decryption (not a padding case handled locally): the error
   names the key; a key SmartKey no longer has leaves the cache. */
static int decrypt_failed(sk_rsa_cipher *ctx, sk_approval_ctx *approval,
                          const sk_error *err)
{
    char key_text[260], subject[300];

    if (SK_RAISE_APPROVAL(approval, err))
        return 0;
    describe_key(ctx->key, key_text, sizeof(key_text));
    snprintf(subject, sizeof(subject), "decrypting with %.250s", key_text);
    if (err->kind == SK_ERR_NOT_FOUND || err->kind == SK_ERR_FORBIDDEN)
        sk_key_cache_forget(ctx->provctx, ctx->key);
    SK_RAISE_CLIENT(ctx->provctx, subject, err);
    return 0;
}

/* SmartKey's plaintext, checked against what the key and padding allow,
   into the caller's buffer; plain is wiped and freed. */
static int deliver_plaintext(sk_rsa_cipher *ctx, unsigned char *plain,
                             size_t plain_len, size_t modulus,
                             unsigned char *out, size_t *outlen, size_t outsize)
{
    if (plain_len > max_plaintext(ctx, modulus)) {
        SK_RAISE(ctx->provctx, SK_R_BAD_RESPONSE,
                 "SmartKey's plaintext is %zu bytes; %s with this key "
                 "carries at most %zu",
                 plain_len, padding_name(ctx->padding),
                 max_plaintext(ctx, modulus));
        OPENSSL_clear_free(plain, plain_len);
        return 0;
    }
    /* RSA without padding is a modulus-sized number (I2OSP): a shorter
       answer is not a result of this key */
    if (ctx->padding == RSA_NO_PADDING && plain_len != modulus) {
        SK_RAISE(ctx->provctx, SK_R_BAD_RESPONSE,
                 "SmartKey's raw RSA (no padding) result is %zu bytes; with "
                 "this key it is exactly %zu",
                 plain_len, modulus);
        OPENSSL_clear_free(plain, plain_len);
        return 0;
    }
    if (plain_len > outsize) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "the plaintext is %zu bytes, more than the %zu-byte output "
                 "buffer",
                 plain_len, outsize);
        OPENSSL_clear_free(plain, plain_len);
        return 0;
    }
    memcpy(out, plain, plain_len);
    *outlen = plain_len;
    OPENSSL_clear_free(plain, plain_len);
    return 1;
}

/* in is a ciphertext of the key (not longer than the modulus) and, for
   OAEP, the two digests agree; 0 with an error raised. */
static int check_ciphertext(sk_rsa_cipher *ctx, const unsigned char *in,
                            size_t inlen, size_t modulus)
{
    if (in == NULL || inlen == 0 || inlen > modulus) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "the ciphertext is %zu bytes; an RSA ciphertext of this "
                 "key is %zu bytes",
                 inlen, modulus);
        return 0;
    }
    return ctx->padding != RSA_PKCS1_OAEP_PADDING || digests_agree(ctx, 1);
}

/*
 * POST /crypto/v1/decrypt of in. SmartKey wants the full modulus length; a
 * shorter input is the same number without its leading zero bytes: *cipher
 * is in padded so (the caller frees it). 1 with *plain, 0 with err
 * (SmartKey's refusal or a transport error), -1 when nothing was sent (an
 * error raised, *cipher NULL).
 */
static int remote_decrypt(sk_rsa_cipher *ctx, const unsigned char *in,
                          size_t inlen, size_t modulus,
                          sk_approval_ctx *approval, unsigned char **cipher,
                          unsigned char **plain, size_t *plain_len,
                          sk_error *err)
{
    sk_client *client = client_of(ctx);
    sk_rsa_request req;
    char key_text[260], what[300], hex[72];
    unsigned char md[32];
    unsigned int md_len = 0;
    int ok;

    *cipher = NULL;
    if (client == NULL)
        return -1;
    *cipher = OPENSSL_zalloc(modulus);
    if (*cipher == NULL) {
        SK_RAISE(ctx->provctx, SK_R_OUT_OF_MEMORY, "decrypting");
        return -1;
    }
    memcpy(*cipher + (modulus - inlen), in, inlen);
    decrypt_request(ctx, *cipher, modulus, &req);
    describe_key(ctx->key, key_text, sizeof(key_text));
    snprintf(what, sizeof(what), "decrypting with %.250s", key_text);
    if (!sk_approval_describes(ctx->provctx, &ctx->approval) ||
        !EVP_Digest(*cipher, modulus, md, &md_len, EVP_sha256(), NULL))
        md_len = 0;
    sk_approval_hex(md, md_len, hex, sizeof(hex));
    req.approval = sk_approval_prepare(
        approval, ctx->provctx, &ctx->approval, what,
        "Decrypt a %zu-byte ciphertext (its SHA-256: %s) with the RSA %.200s, "
        "padding %s%s%s",
        modulus, hex, key_text, padding_name(ctx->padding),
        ctx->padding == RSA_PKCS1_OAEP_PADDING ? " " : "",
        ctx->padding == RSA_PKCS1_OAEP_PADDING
            ? effective_oaep_digest(ctx)->smartkey_name
            : "");
    memset(err, 0, sizeof(*err));
    sk_set_error_mark(ctx->provctx);
    ok = sk_client_decrypt(client, &req, plain, plain_len, err);
    sk_pop_error_to_mark(ctx->provctx);
    return ok;
}

/* SmartKey's policy refuses PKCS#1 v1.5 decryption: the error says so; a
   TLS pre-master is still a random one, with no visible failure (the
   handshake fails later). */
static int policy_refused(sk_rsa_cipher *ctx, const sk_error *err,
                          unsigned char *out, size_t *outlen, size_t outsize)
{
    int ok = 0;

    pkcs1_policy_refusal(ctx, err);
    if (ctx->padding == RSA_PKCS1_WITH_TLS_PADDING) {
        sk_set_error_mark(ctx->provctx);
        ok = tls_premaster(ctx, 0, NULL, 0, out, outlen, outsize);
        sk_pop_error_to_mark(ctx->provctx);
    }
    return ok;
}

static int rsa_cipher_decrypt(void *vctx, unsigned char *out, size_t *outlen,
                              size_t outsize, const unsigned char *in,
                              size_t inlen)
{
    sk_rsa_cipher *ctx = vctx;
    size_t modulus =
        ctx != NULL && ctx->key != NULL ? (size_t)ctx->key->max_size : 0;
    unsigned char *cipher = NULL, *plain = NULL;
    size_t plain_len = 0;
    sk_approval_ctx approval;
    sk_error err;
    int ok;

    if (modulus == 0)
        return 0;
    if (out == NULL) {
        *outlen = modulus;
        return 1;
    }
    if (!check_ciphertext(ctx, in, inlen, modulus))
        return 0;
    ok = remote_decrypt(ctx, in, inlen, modulus, &approval, &cipher, &plain,
                        &plain_len, &err);
    if (ok < 0)
        return 0;
    if (!ok && is_policy_refusal(&err) &&
        (ctx->padding == RSA_PKCS1_PADDING ||
         ctx->padding == RSA_PKCS1_WITH_TLS_PADDING)) {
        OPENSSL_free(cipher);
        return policy_refused(ctx, &err, out, outlen, outsize);
    }
    if (ctx->padding == RSA_PKCS1_WITH_TLS_PADDING &&
        (ok || is_bad_padding(&err))) {
        OPENSSL_free(cipher);
        ok = tls_premaster(ctx, ok, plain, plain_len, out, outlen, outsize);
        OPENSSL_clear_free(plain, plain_len);
        return ok;
    }
    if (!ok && ctx->padding == RSA_PKCS1_PADDING && is_bad_padding(&err) &&
        ctx->implicit_rejection != 0 && openssl_has_implicit_rejection()) {
        ok = implicit_rejection(ctx, cipher, modulus, out, outlen, outsize);
        OPENSSL_free(cipher);
        return ok;
    }
    OPENSSL_free(cipher);
    if (!ok)
        return decrypt_failed(ctx, &approval, &err);
    return deliver_plaintext(ctx, plain, plain_len, modulus, out, outlen,
                             outsize);
}

const OSSL_DISPATCH sk_rsa_asym_cipher_functions[] = {
    SK_DISPATCH(ASYM_CIPHER_NEWCTX, rsa_cipher_newctx),
    SK_DISPATCH(ASYM_CIPHER_FREECTX, rsa_cipher_freectx),
    SK_DISPATCH(ASYM_CIPHER_DUPCTX, rsa_cipher_dupctx),
    SK_DISPATCH(ASYM_CIPHER_ENCRYPT_INIT, rsa_cipher_encrypt_init),
    SK_DISPATCH(ASYM_CIPHER_ENCRYPT, rsa_cipher_encrypt),
    SK_DISPATCH(ASYM_CIPHER_DECRYPT_INIT, rsa_cipher_decrypt_init),
    SK_DISPATCH(ASYM_CIPHER_DECRYPT, rsa_cipher_decrypt),
    SK_DISPATCH(ASYM_CIPHER_GET_CTX_PARAMS, rsa_cipher_get_ctx_params),
    SK_DISPATCH(ASYM_CIPHER_GETTABLE_CTX_PARAMS,
                rsa_cipher_gettable_ctx_params),
    SK_DISPATCH(ASYM_CIPHER_SET_CTX_PARAMS, rsa_cipher_set_ctx_params),
    SK_DISPATCH(ASYM_CIPHER_SETTABLE_CTX_PARAMS,
                rsa_cipher_settable_ctx_params),
    {0, NULL},
};
