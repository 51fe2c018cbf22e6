/*
 * The "smartkey" store loader: smartkey:name=..., smartkey:kid=...,
 * smartkey://... and smartkey: (every key and certificate). One object per
 * load() call: a key is handed to OpenSSL as a reference that this
 * provider's keymgmt load() turns into a key handle
 * (docs/openssl-dispatch.md §1), a certificate as its DER (certificate.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>

#include "certificate.h"
#include "key.h"
#include "params.h"
#include "uri.h"

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn store_set_ctx_params;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;
static OSSL_FUNC_store_export_object_fn store_export_object;

typedef struct sk_store_ctx {
    sk_provctx *provctx;
    char *uri_text;
    sk_uri uri;
    int uri_ok;
    char uri_error[256];
    int expect;            /* OSSL_STORE_INFO_*; 0 = anything */
    char param_error[160]; /* a bad parameter, reported by load() */
    /*
     * Set after every object and after every failure: OpenSSL's apps loop
     * "while (!eof) load()", and a failure that left eof at 0 re-issued
     * the request forever (docs/openssl-dispatch.md §1).
     */
    int eof;
    /* listing (smartkey: without name= or kid=) */
    int listed;
    sk_key_info **keys;
    size_t key_count;
    size_t next_key;
} sk_store_ctx;

static void *store_open(void *provctx, const char *uri)
{
    sk_store_ctx *ctx;

    if (!SK_CTX_NEW(ctx, provctx, "opening a smartkey: URI"))
        return NULL;
    ctx->uri_text = OPENSSL_strdup(uri);
    if (ctx->uri_text == NULL) {
        OPENSSL_free(ctx);
        SK_RAISE(provctx, SK_R_OUT_OF_MEMORY, "opening %.200s", uri);
        return NULL;
    }
    /*
     * A malformed URI is reported by the first load(), not here: a failed
     * open leaves the file loader's "no such file" error in front of ours
     * (docs/openssl-dispatch.md §1), a successful one lets OpenSSL drop it.
     */
    ctx->uri_ok =
        sk_uri_parse(uri, &ctx->uri, ctx->uri_error, sizeof(ctx->uri_error));
    SK_DEBUG(2, "open %s", uri);
    return ctx;
}

static const OSSL_PARAM settable_params[] = {
    OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
    OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_INPUT_TYPE, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    return settable_params;
}

/*
 * Unknown parameters are ignored. A bad one (NULL data, wrong type, too
 * long, an expect value that is no OSSL_STORE_INFO type) is remembered and
 * reported by the first load(), which then fails before any request, and
 * 1 is returned: when set_ctx_params fails during OSSL_STORE_open_ex(),
 * OpenSSL closes our context but still returns a store context holding it,
 * and the application's OSSL_STORE_close() then crashes.
 */
static int store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    sk_store_ctx *ctx = loaderctx;

    if (ctx == NULL)
        return 0;
    for (const OSSL_PARAM *p = params; p != NULL && p->key != NULL; p++) {
        const OSSL_PARAM one[2] = {*p, OSSL_PARAM_END};
        int expect, ok;

        sk_set_error_mark(ctx->provctx);
        ok = sk_params_check(ctx->provctx, one, settable_params, NULL,
                             "the smartkey store");
        sk_pop_error_to_mark(ctx->provctx);
        if (ok && strcmp(p->key, OSSL_STORE_PARAM_EXPECT) == 0) {
            ok = OSSL_PARAM_get_int(p, &expect) && expect >= 0 &&
                 expect <= OSSL_STORE_INFO_CRL;
            if (ok)
                ctx->expect = expect;
        }
        /*
         * properties (the app's -propquery) only steer OpenSSL's own
         * keymgmt fetch for the objects we return; input-type ("PEM" with
         * -keyform PEM) does not apply to SmartKey. Both are accepted so
         * those options work.
         */
        if (!ok && ctx->param_error[0] == '\0')
            snprintf(ctx->param_error, sizeof(ctx->param_error),
                     "parameter '%.64s' of the smartkey store has no value, "
                     "the wrong type or a value out of range",
                     p->key);
    }
    return 1;
}

static int emit_key(sk_store_ctx *ctx, sk_key *key, OSSL_CALLBACK *object_cb,
                    void *object_cbarg)
{
    int object_type = OSSL_OBJECT_PKEY;
    char description[300];
    sk_key_reference reference;
    OSSL_PARAM params[5];

    if (ctx->uri.type == SK_URI_TYPE_PRIVATE && !key->has_private) {
        SK_RAISE(ctx->provctx, SK_R_NO_PRIVATE_KEY,
                 "%.256s: SmartKey holds only the public key of this key "
                 "(%s); use type=public or -pubin",
                 ctx->uri_text, key->kid);
        return 0;
    }
    memset(&reference, 0, sizeof(reference));
    reference.magic = SK_KEY_REFERENCE_MAGIC;
    reference.version = SK_KEY_REFERENCE_VERSION;
    reference.provctx = ctx->provctx;
    reference.key = key;
    /* -pubin asks for a PUBKEY: a private handle would be dropped
       (docs/openssl-dispatch.md §1) */
    reference.public_handle = ctx->uri.type == SK_URI_TYPE_PUBLIC ||
                              ctx->expect == OSSL_STORE_INFO_PUBKEY ||
                              !key->has_private;
    snprintf(description, sizeof(description), "SmartKey key '%.200s' (%s)",
             SK_ESCAPED(key->name), key->kid);

    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_utf8_string(
        OSSL_OBJECT_PARAM_DATA_TYPE, (char *)sk_key_type_name(key->type), 0);
    params[2] = OSSL_PARAM_construct_octet_string(
        OSSL_OBJECT_PARAM_REFERENCE, &reference, sizeof(reference));
    params[3] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC,
                                                 description, 0);
    params[4] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

/*
 * A certificate held in SmartKey, handed to object_cb: the CERTIFICATE
 * object itself (object, its value read with one more request), or the
 * certificate of key (certificate.c). Exactly one of object, key is set.
 */
static int emit_certificate(sk_store_ctx *ctx, const sk_key_info *object,
                            const sk_key *key, OSSL_CALLBACK *object_cb,
                            void *object_cbarg)
{
    const char *name = object != NULL ? object->name : key->name;
    const char *kid = object != NULL ? object->kid : key->kid;
    int object_type = OSSL_OBJECT_CERT, ok;
    unsigned char *der;
    size_t der_len;
    char description[300];
    OSSL_PARAM params[5];

    if (object != NULL ? !sk_cert_read(ctx->provctx, object, &der, &der_len)
                       : !sk_cert_of_key(ctx->provctx, key, &der, &der_len))
        return 0;
    snprintf(description, sizeof(description),
             "SmartKey certificate '%.200s' (%s)",
             SK_ESCAPED(name != NULL ? name : kid), kid);
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 "CERTIFICATE", 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA,
                                                  (void *)der, der_len);
    params[3] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC,
                                                 description, 0);
    params[4] = OSSL_PARAM_construct_end();
    ok = object_cb(params, object_cbarg);
    OPENSSL_free(der);
    return ok;
}

/*
 * A certificate is wanted with type=cert, or when the application asks
 * for certificates only (x509 -in, s_server -cert, storeutl -certs): then
 * a key's name yields the certificate of that key. Without either, a
 * CERTIFICATE object still yields itself (storeutl with no filter).
 */
static int wants_certificate(const sk_store_ctx *ctx)
{
    return ctx->uri.type == SK_URI_TYPE_CERT ||
           (ctx->uri.type == SK_URI_TYPE_ANY &&
            ctx->expect == OSSL_STORE_INFO_CERT);
}

static int load_one_key(sk_store_ctx *ctx, OSSL_CALLBACK *object_cb,
                        void *object_cbarg)
{
    sk_key_ref ref = {.kid = ctx->uri.kid, .name = ctx->uri.name};
    sk_key_info *certificate = NULL;
    int may_be_certificate =
        wants_certificate(ctx) ||
        (ctx->uri.type == SK_URI_TYPE_ANY && ctx->expect == 0);
    sk_key *key;
    int ok;

    if (ctx->uri.type == SK_URI_TYPE_CERT &&
        (ctx->expect == OSSL_STORE_INFO_PKEY ||
         ctx->expect == OSSL_STORE_INFO_PUBKEY)) {
        SK_RAISE(ctx->provctx, SK_R_MALFORMED_URI,
                 "%.256s: type=cert yields a certificate, and a key is "
                 "expected here; drop type=cert",
                 ctx->uri_text);
        return 0;
    }
    key = may_be_certificate
              ? sk_key_fetch_any(ctx->provctx, &ref, &certificate)
              : sk_key_fetch(ctx->provctx, &ref);
    if (certificate != NULL) {
        ok = emit_certificate(ctx, certificate, NULL, object_cb, object_cbarg);
        sk_key_info_free(certificate);
        return ok;
    }
    if (key == NULL)
        return 0;
    if (wants_certificate(ctx)) {
        ok = emit_certificate(ctx, NULL, key, object_cb, object_cbarg);
        sk_key_free(key);
        return ok;
    }
    /*
     * OpenSSL would drop the public key it gets here and say only "Could
     * not read private key" (docs/openssl-dispatch.md §1): say why instead.
     */
    if (ctx->expect == OSSL_STORE_INFO_PKEY &&
        (!key->has_private || ctx->uri.type == SK_URI_TYPE_PUBLIC)) {
        SK_RAISE(ctx->provctx, SK_R_NO_PRIVATE_KEY,
                 "%.256s (%s): %s; read it as a public key (-pubin)",
                 ctx->uri_text, key->kid,
                 key->has_private ? "type=public gives the public key only"
                                  : "SmartKey holds only the public key");
        sk_key_free(key);
        return 0;
    }
    ok = emit_key(ctx, key, object_cb, object_cbarg);
    sk_key_free(key);
    return ok;
}

static int listable(const sk_key_info *info)
{
    return info->obj_type == SK_OBJ_RSA ||
           (info->obj_type == SK_OBJ_EC &&
            (info->curve == SK_CURVE_P256 || info->curve == SK_CURVE_P384 ||
             info->curve == SK_CURVE_P521 || info->curve == SK_CURVE_ED25519));
}

/* What a listing yields: certificates when certificates may be wanted,
   keys unless only certificates are. */
static int wanted(const sk_store_ctx *ctx, const sk_key_info *info)
{
    if (info->obj_type == SK_OBJ_CERTIFICATE)
        return wants_certificate(ctx) ||
               (ctx->uri.type == SK_URI_TYPE_ANY && ctx->expect == 0);
    return !wants_certificate(ctx) && listable(info);
}

static void skip_unlistable(sk_store_ctx *ctx)
{
    while (ctx->next_key < ctx->key_count &&
           !wanted(ctx, ctx->keys[ctx->next_key]))
        ctx->next_key++;
}

static int load_next_listed_key(sk_store_ctx *ctx, OSSL_CALLBACK *object_cb,
                                void *object_cbarg)
{
    const sk_key_info *info;
    sk_key *key = NULL;
    int ok;

    if (!ctx->listed) {
        sk_client *client = sk_provctx_client(ctx->provctx);
        sk_error err;

        if (client == NULL)
            return 0;
        memset(&err, 0, sizeof(err));
        /* drop what libcurl's TLS leaves in the queue (see key.c) */
        sk_set_error_mark(ctx->provctx);
        ok = sk_client_list_keys(client, NULL, &ctx->keys, &ctx->key_count,
                                 &err);
        sk_pop_error_to_mark(ctx->provctx);
        if (!ok) {
            SK_RAISE_CLIENT(ctx->provctx, "listing keys", &err);
            return 0;
        }
        ctx->listed = 1;
        SK_DEBUG(2, "%zu objects listed", ctx->key_count);
        skip_unlistable(ctx);
    }
    if (ctx->next_key >= ctx->key_count)
        return 0; /* nothing (more) to list: eof, not an error */

    info = ctx->keys[ctx->next_key++];
    if (info->obj_type == SK_OBJ_CERTIFICATE) {
        skip_unlistable(ctx);
        ctx->eof = ctx->next_key >= ctx->key_count;
        return emit_certificate(ctx, info, NULL, object_cb, object_cbarg);
    }
    if (info->pub_key != NULL && info->pub_key_len > 0) {
        key = sk_key_from_info(ctx->provctx, info);
    } else {
        /* a listing without pub_key: one key-info request for this key */
        sk_key_ref ref = {.kid = info->kid};

        key = sk_key_fetch(ctx->provctx, &ref);
    }
    skip_unlistable(ctx);
    ctx->eof = ctx->next_key >= ctx->key_count;
    if (key == NULL)
        return 0;
    ok = emit_key(ctx, key, object_cb, object_cbarg);
    sk_key_free(key);
    return ok;
}

static int store_load(void *loaderctx, OSSL_CALLBACK *object_cb,
                      void *object_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                      void *pw_cbarg)
{
    sk_store_ctx *ctx = loaderctx;

    if (ctx->eof)
        return 0;
    ctx->eof = 1;
    if (ctx->param_error[0] != '\0') {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER, "%.256s: %s",
                 ctx->uri_text, ctx->param_error);
        return 0;
    }
    if (!ctx->uri_ok) {
        SK_RAISE(ctx->provctx, SK_R_MALFORMED_URI, "%.256s: %s", ctx->uri_text,
                 ctx->uri_error);
        return 0;
    }
    if (ctx->uri.kid == NULL && ctx->uri.name == NULL)
        return load_next_listed_key(ctx, object_cb, object_cbarg);
    return load_one_key(ctx, object_cb, object_cbarg);
}

static int store_eof(void *loaderctx)
{
    sk_store_ctx *ctx = loaderctx;

    return ctx->eof;
}

static int store_close(void *loaderctx)
{
    sk_store_ctx *ctx = loaderctx;

    if (ctx == NULL)
        return 1;
    sk_key_info_list_free(ctx->keys, ctx->key_count);
    sk_uri_clear(&ctx->uri);
    OPENSSL_free(ctx->uri_text);
    OPENSSL_free(ctx);
    return 1;
}

/*
 * Refuses, for every key: OpenSSL then loads the reference with this
 * provider's keymgmt (try_key_ref's fallback), so a SmartKey key, public
 * handles included, is always a smartkey key. Were the public half handed
 * to the default provider (as it was when default came first), the
 * default cipher would run the operation and silently ignore
 * smartkey-wrap-subject set with EVP_PKEY_CTX_set_params(): a local
 * RSA-OAEP of the empty input instead of a wrap (issue 12). The refusal
 * is expected during loading: no error.
 */
static int store_export_object(void *loaderctx, const void *reference,
                               size_t reference_size, OSSL_CALLBACK *export_cb,
                               void *export_cbarg)
{
    return 0;
}

const OSSL_DISPATCH sk_store_functions[] = {
    SK_DISPATCH(STORE_OPEN, store_open),
    SK_DISPATCH(STORE_SETTABLE_CTX_PARAMS, store_settable_ctx_params),
    SK_DISPATCH(STORE_SET_CTX_PARAMS, store_set_ctx_params),
    SK_DISPATCH(STORE_LOAD, store_load),
    SK_DISPATCH(STORE_EOF, store_eof),
    SK_DISPATCH(STORE_CLOSE, store_close),
    SK_DISPATCH(STORE_EXPORT_OBJECT, store_export_object),
    {0, NULL},
};
