/*
 * BYOK artifacts produced inside SmartKey (docs/byok/).
 *
 * A wrapper around the RSA asymmetric cipher (asym_cipher.c): it adds the
 * smartkey-wrap-format, -encoding, -kid and -jti parameters and, when a
 * format other than plain RSA-OAEP or an encoding is asked for, builds the
 * cloud's artifact from SmartKey calls. Everything else (decrypt, local and
 * remote encrypt, the plain wrap) goes to the RSA cipher unchanged.
 *
 * This file is the interposer: context, parameters, the checks of the RSA
 * cipher's settings and of the subject, sizes and encodings. The formats
 * themselves (the SmartKey calls of each) are in byok_formats.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "byok.h"
#include "byok_formats.h"
#include "key.h"
#include "names.h"
#include "params.h"
#include "uri.h"

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_asym_cipher_newctx_fn byok_newctx;
static OSSL_FUNC_asym_cipher_freectx_fn byok_freectx;
static OSSL_FUNC_asym_cipher_dupctx_fn byok_dupctx;
static OSSL_FUNC_asym_cipher_encrypt_init_fn byok_encrypt_init;
static OSSL_FUNC_asym_cipher_encrypt_fn byok_encrypt;
static OSSL_FUNC_asym_cipher_decrypt_init_fn byok_decrypt_init;
static OSSL_FUNC_asym_cipher_decrypt_fn byok_decrypt;
static OSSL_FUNC_asym_cipher_get_ctx_params_fn byok_get_ctx_params;
static OSSL_FUNC_asym_cipher_gettable_ctx_params_fn byok_gettable_ctx_params;
static OSSL_FUNC_asym_cipher_set_ctx_params_fn byok_set_ctx_params;
static OSSL_FUNC_asym_cipher_settable_ctx_params_fn byok_settable_ctx_params;

/* Upper bound of a subject's serialisation in the size query, which must
   be answered without a request: an RSA-8192 PKCS#8 is about 4.8 KB. */
#define MAX_SUBJECT_BYTES 16384

static const char *const encoding_names[] = {"raw", "base64", "base64url"};
#define ENCODING_COUNT (sizeof(encoding_names) / sizeof(encoding_names[0]))

/* Raises SK_R_INVALID_PARAMETER for what the chosen format does not allow:
   "smartkey-wrap-format FORMAT " and the text. */
#define RAISE_FOR_FORMAT(ctx, fmt, ...)                                        \
    SK_RAISE((ctx)->provctx, SK_R_INVALID_PARAMETER, "%s %s " fmt,             \
             SMARTKEY_PARAM_WRAP_FORMAT, sk_byok_format_names[(ctx)->format],  \
             __VA_ARGS__)

/* ---- the wrapped RSA cipher ------------------------------------------ */

static void (*inner_function(int id))(void)
{
    for (const OSSL_DISPATCH *d = sk_rsa_asym_cipher_functions;
         d->function_id != 0; d++)
        if (d->function_id == id)
            return d->function;
    return NULL;
}

#define INNER(type, id) ((OSSL_FUNC_##type##_fn *)inner_function(id))

/* ---- context --------------------------------------------------------- */

static void byok_freectx(void *vctx)
{
    sk_byok_cipher *ctx = vctx;

    if (ctx == NULL)
        return;
    if (ctx->inner != NULL)
        INNER(asym_cipher_freectx, OSSL_FUNC_ASYM_CIPHER_FREECTX)(ctx->inner);
    sk_key_free(ctx->key);
    OPENSSL_free(ctx->kid);
    OPENSSL_free(ctx->jti);
    OPENSSL_free(ctx);
}

static void *byok_newctx(void *provctx)
{
    sk_byok_cipher *ctx;

    if (!SK_CTX_NEW(ctx, provctx, "creating an RSA cipher"))
        return NULL;
    sk_approval_opts_init(&ctx->approval);
    ctx->inner =
        INNER(asym_cipher_newctx, OSSL_FUNC_ASYM_CIPHER_NEWCTX)(provctx);
    if (ctx->inner == NULL) {
        OPENSSL_free(ctx);
        return NULL;
    }
    return ctx;
}

static void *byok_dupctx(void *vctx)
{
    const sk_byok_cipher *from = vctx;
    sk_byok_cipher *copy = SK_CTX_DUP(from, "copying an RSA cipher");
    int ok = 1;

    if (copy == NULL)
        return NULL;
    copy->key = from->key != NULL ? sk_key_up_ref(from->key) : NULL;
    copy->kid = sk_strdup_or_null(from->kid, &ok);
    copy->jti = sk_strdup_or_null(from->jti, &ok);
    copy->inner =
        INNER(asym_cipher_dupctx, OSSL_FUNC_ASYM_CIPHER_DUPCTX)(from->inner);
    return SK_CTX_DUP_DONE(from, copy, ok && copy->inner != NULL, byok_freectx,
                           "copying an RSA cipher");
}

/* ---- parameters ------------------------------------------------------ */

static const OSSL_PARAM byok_params[] = {
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_WRAP_FORMAT, NULL, 0),
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_WRAP_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_WRAP_KID, NULL, 0),
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_WRAP_JTI, NULL, 0),
    OSSL_PARAM_END,
};
#define BYOK_PARAM_COUNT (sizeof(byok_params) / sizeof(byok_params[0]) - 1)

static int set_choice(sk_byok_cipher *ctx, const OSSL_PARAM *p,
                      const char *const *names, size_t count, int *slot)
{
    char text[64];
    const char *value = NULL;

    if (sk_param_text(ctx->provctx, p, text, sizeof(text))) {
        value = text;
        /* an empty value goes back to the default */
        if (*value == '\0') {
            *slot = 0;
            return 1;
        }
        for (size_t i = 0; i < count; i++)
            if (strcasecmp(value, names[i]) == 0) {
                *slot = (int)i;
                return 1;
            }
    }
    {
        char list[256] = "";

        for (size_t i = 0; i < count; i++) {
            strncat(list, names[i], sizeof(list) - strlen(list) - 1);
            if (i + 1 < count)
                strncat(list, ", ", sizeof(list) - strlen(list) - 1);
        }
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "%s '%.64s' is not one of %s", p->key,
                 value != NULL ? value : "(not text)", list);
    }
    return 0;
}

static int set_text(sk_byok_cipher *ctx, const OSSL_PARAM *p, char **slot)
{
    char value[SK_PARAM_MAX_BYTES + 1];
    char *copy = NULL;

    if (!sk_param_text(ctx->provctx, p, value, sizeof(value))) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER, "%s must be text",
                 p->key);
        return 0;
    }
    if (*value != '\0' && (copy = OPENSSL_strdup(value)) == NULL) {
        SK_RAISE(ctx->provctx, SK_R_OUT_OF_MEMORY, "reading %s", p->key);
        return 0;
    }
    OPENSSL_free(*slot);
    *slot = copy;
    return 1;
}

static int byok_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sk_byok_cipher *ctx = vctx;
    const OSSL_PARAM *p;
    int choice;

    if (ctx == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if (!sk_params_check(ctx->provctx, params, byok_params, NULL,
                         "the RSA cipher"))
        return 0;
    p = OSSL_PARAM_locate_const(params, SMARTKEY_PARAM_WRAP_FORMAT);
    if (p != NULL) {
        if (!set_choice(ctx, p, sk_byok_format_names, FORMAT_COUNT, &choice))
            return 0;
        ctx->format = (byok_format)choice;
    }
    p = OSSL_PARAM_locate_const(params, SMARTKEY_PARAM_WRAP_ENCODING);
    if (p != NULL) {
        if (!set_choice(ctx, p, encoding_names, ENCODING_COUNT, &choice))
            return 0;
        ctx->encoding = (byok_encoding)choice;
    }
    p = OSSL_PARAM_locate_const(params, SMARTKEY_PARAM_WRAP_KID);
    if (p != NULL && !set_text(ctx, p, &ctx->kid))
        return 0;
    p = OSSL_PARAM_locate_const(params, SMARTKEY_PARAM_WRAP_JTI);
    if (p != NULL && !set_text(ctx, p, &ctx->jti))
        return 0;
    /* the formats' calls take part in approvals too; the RSA cipher reads
       the same parameters for its own calls (rsa-oaep, decrypt) */
    if (!sk_approval_set_params(ctx->provctx, &ctx->approval, params))
        return 0;
    /* the RSA cipher ignores the names above and reads its own */
    return INNER(asym_cipher_set_ctx_params,
                 OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS)(ctx->inner, params);
}

static int byok_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sk_byok_cipher *ctx = vctx;
    OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, SMARTKEY_PARAM_WRAP_FORMAT);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(p, sk_byok_format_names[ctx->format]))
        return 0;
    p = OSSL_PARAM_locate(params, SMARTKEY_PARAM_WRAP_ENCODING);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(p, encoding_names[ctx->encoding]))
        return 0;
    p = OSSL_PARAM_locate(params, SMARTKEY_PARAM_WRAP_KID);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(p, ctx->kid != NULL ? ctx->kid : ""))
        return 0;
    p = OSSL_PARAM_locate(params, SMARTKEY_PARAM_WRAP_JTI);
    if (p != NULL &&
        !OSSL_PARAM_set_utf8_string(p, ctx->jti != NULL ? ctx->jti : ""))
        return 0;
    return INNER(asym_cipher_get_ctx_params,
                 OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS)(ctx->inner, params);
}

#define MAX_MERGED_PARAMS 48

/* The RSA cipher's lists are static and grow when asym_cipher.c learns a
   parameter, so ours are built from them once rather than copied. */
static OSSL_PARAM settable[MAX_MERGED_PARAMS], gettable[MAX_MERGED_PARAMS];
static pthread_once_t merged_once = PTHREAD_ONCE_INIT;

static void merge(OSSL_PARAM *out, const OSSL_PARAM *inner)
{
    size_t n = 0;

    for (; inner != NULL && inner->key != NULL &&
           n < MAX_MERGED_PARAMS - BYOK_PARAM_COUNT - 1;
         inner++)
        out[n++] = *inner;
    for (size_t i = 0; i < BYOK_PARAM_COUNT; i++)
        out[n++] = byok_params[i];
    out[n] = OSSL_PARAM_construct_end();
}

static void merge_lists(void)
{
    merge(settable,
          INNER(asym_cipher_settable_ctx_params,
                OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS)(NULL, NULL));
    merge(gettable,
          INNER(asym_cipher_gettable_ctx_params,
                OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS)(NULL, NULL));
}

static const OSSL_PARAM *byok_settable_ctx_params(void *vctx, void *provctx)
{
    pthread_once(&merged_once, merge_lists);
    return settable;
}

static const OSSL_PARAM *byok_gettable_ctx_params(void *vctx, void *provctx)
{
    pthread_once(&merged_once, merge_lists);
    return gettable;
}

/* ---- init, decrypt --------------------------------------------------- */

static int byok_encrypt_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    sk_byok_cipher *ctx = vctx;
    sk_keydata *keydata = vkey;

    if (ctx == NULL ||
        !INNER(asym_cipher_encrypt_init,
               OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT)(ctx->inner, vkey, NULL))
        return 0;
    sk_key_free(ctx->key);
    ctx->key = sk_key_up_ref(keydata->key);
    return byok_set_ctx_params(ctx, params);
}

static int byok_decrypt_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    sk_byok_cipher *ctx = vctx;

    return ctx != NULL &&
           INNER(asym_cipher_decrypt_init,
                 OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT)(ctx->inner, vkey, NULL) &&
           byok_set_ctx_params(ctx, params);
}

static int byok_decrypt(void *vctx, unsigned char *out, size_t *outlen,
                        size_t outsize, const unsigned char *in, size_t inlen)
{
    sk_byok_cipher *ctx = vctx;

    return ctx != NULL &&
           INNER(asym_cipher_decrypt, OSSL_FUNC_ASYM_CIPHER_DECRYPT)(
               ctx->inner, out, outlen, outsize, in, inlen);
}

/* ---- what the RSA cipher was told ------------------------------------ */

/*
 * Reads the subject and the OAEP settings from the RSA cipher and refuses
 * what SmartKey cannot do, before any request: the same rules as the plain
 * wrap (docs/wrapping.md), plus the fixed hash of some formats.
 */
/* The RSA-OAEP settings of a format that wraps with it: OAEP padding, no
   label, one digest for OAEP and MGF1 (SmartKey has one), SHA-1 where the
   format fixes it; ws->oaep_hash set. 0 with an error raised. */
static int check_wrap_oaep(sk_byok_cipher *ctx, wrap_settings *ws,
                           const char *pad, const char *oaep, const char *mgf1,
                           size_t label_len)
{
    const sk_digest *oaep_digest;

    if (strcasecmp(pad, OSSL_PKEY_RSA_PAD_MODE_OAEP) != 0) {
        RAISE_FOR_FORMAT(ctx,
                         "wraps with RSA-OAEP; add -pkeyopt "
                         "rsa_padding_mode:oaep (padding %s requested)",
                         pad);
        return 0;
    }
    if (label_len > 0) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "SmartKey's wrapkey takes no OAEP label; remove "
                 "rsa_oaep_label");
        return 0;
    }
    oaep_digest = sk_digest_by_name(oaep, SK_DIGEST_OAEP);
    ws->oaep_hash = oaep_digest != NULL ? oaep_digest->smartkey_name : NULL;
    if (ws->oaep_hash == NULL || strcasecmp(oaep, mgf1) != 0) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "OAEP digest %s and MGF1 digest %s: SmartKey uses one "
                 "hash for both; set rsa_oaep_md and rsa_mgf1_md to the "
                 "same digest",
                 oaep, mgf1);
        return 0;
    }
    /* Azure's BYOK specification and JOSE's "RSA-OAEP" fix SHA-1 */
    if ((ctx->format == FORMAT_AZURE_BYOK || ctx->format == FORMAT_JWE ||
         ctx->format == FORMAT_SALESFORCE_CACHE_ONLY) &&
        strcmp(ws->oaep_hash, "SHA1") != 0) {
        RAISE_FOR_FORMAT(ctx,
                         "uses RSA-OAEP with SHA-1 (MGF1 SHA-1), not %s: "
                         "set rsa_oaep_md:sha1 or leave it out",
                         oaep);
        return 0;
    }
    return 1;
}

static int read_wrap_settings(sk_byok_cipher *ctx, wrap_settings *ws,
                              int needs_oaep)
{
    char pad[32] = "", oaep[32] = "", mgf1[32] = "", why[256] = "";
    size_t label_len = 0;
    void *label = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT, ws->subject_uri,
                               sizeof(ws->subject_uri)),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, pad,
                               sizeof(pad)),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, oaep,
                               sizeof(oaep)),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, mgf1,
                               sizeof(mgf1)),
        OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, &label, 0),
        OSSL_PARAM_END,
    };

    memset(&ws->subject, 0, sizeof(ws->subject));
    if (!INNER(asym_cipher_get_ctx_params,
               OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS)(ctx->inner, params)) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "cannot read the RSA cipher's settings");
        return 0;
    }
    label_len = params[4].return_size;
    if (ws->subject_uri[0] == '\0') {
        RAISE_FOR_FORMAT(ctx, "needs %s: the key whose artifact is made",
                         SMARTKEY_PARAM_WRAP_SUBJECT);
        return 0;
    }
    if (!sk_uri_parse(ws->subject_uri, &ws->subject, why, sizeof(why))) {
        SK_RAISE(ctx->provctx, SK_R_MALFORMED_URI, "%s '%.256s': %s",
                 SMARTKEY_PARAM_WRAP_SUBJECT, ws->subject_uri, why);
        return 0;
    }
    return !needs_oaep || check_wrap_oaep(ctx, ws, pad, oaep, mgf1, label_len);
}

/* ---- the subject's type ------------------------------------------------ */

/*
 * Whether the subject is an RSA or EC key, as SmartKey describes it (one
 * keys/info request). *kind is set to "an RSA" or "an EC" when it is.
 * Returns -1 with an error raised when SmartKey cannot say, unless quiet.
 */
static int subject_is_asymmetric(sk_byok_cipher *ctx, const sk_uri *subject,
                                 const char **kind, int quiet)
{
    sk_client *client = sk_provctx_client(ctx->provctx);
    sk_key_ref ref = {.kid = subject->kid, .name = subject->name};
    sk_key_info *info = NULL;
    sk_error err;
    char label[256];
    int ok, asymmetric;

    if (client == NULL)
        return -1;
    memset(&err, 0, sizeof(err));
    sk_set_error_mark(ctx->provctx);
    ok = sk_client_key_info(client, &ref, &info, &err);
    sk_pop_error_to_mark(ctx->provctx);
    if (!ok) {
        if (!quiet) {
            sk_key_ref_describe(&ref, label, sizeof(label));
            SK_RAISE_CLIENT(ctx->provctx, label, &err);
        }
        return -1;
    }
    asymmetric = info->obj_type == SK_OBJ_RSA || info->obj_type == SK_OBJ_EC;
    *kind = info->obj_type == SK_OBJ_RSA ? "an RSA" : "an EC";
    sk_key_info_free(info);
    return asymmetric;
}

/*
 * Reads the subject's type once per artifact (one keys/info request), for
 * every format but rsa-oaep: the hybrid formats wrap an RSA or EC subject
 * as PKCS#8 (ws->subject_asymmetric), and jwe, salesforce-cache-only and
 * sha256 are for symmetric keys (tenant secrets, data keys, CSEK hashes):
 * for an RSA or EC key, the JWE would carry its PKCS#8 where every
 * consumer expects key bytes, and SmartKey's SHA-256 is of its PKCS#1 /
 * SEC1 form, which no cloud compares with.
 */
static int subject_fits_format(sk_byok_cipher *ctx, wrap_settings *ws)
{
    const char *kind = NULL;
    int asymmetric = subject_is_asymmetric(ctx, &ws->subject, &kind, 0);

    if (asymmetric < 0)
        return 0;
    ws->subject_asymmetric = asymmetric;
    if (!asymmetric || ctx->format == FORMAT_RSA_AES_KEY_WRAP ||
        ctx->format == FORMAT_AZURE_BYOK)
        return 1;
    if (ctx->format == FORMAT_SHA256)
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "%s sha256 hashes the value of an AES or SECRET key (hash "
                 "files); %.256s is %s key, whose SHA-256 in SmartKey would "
                 "be of its PKCS#1/SEC1 form, not of the PKCS#8 a wrap "
                 "carries: nothing was made",
                 SMARTKEY_PARAM_WRAP_FORMAT, ws->subject_uri, kind);
    else
        RAISE_FOR_FORMAT(ctx,
                         "carries an AES or SECRET key; %.256s is %s key: "
                         "nothing was made. For an RSA or EC private key use "
                         "-pkeyopt %s:%s",
                         ws->subject_uri, kind, SMARTKEY_PARAM_WRAP_FORMAT,
                         SMARTKEY_WRAP_FORMAT_RSA_AES_KEY_WRAP);
    return 0;
}

/*
 * SmartKey's refusal of a wrapkey request (400), as the RSA cipher put it
 * on the error queue: its text is copied, since the lookup that follows
 * goes through libcurl, whose TLS clears the thread's error queue.
 */
static int wrap_refused(char *text, size_t len)
{
    const char *data = NULL;
    int flags = 0;
    unsigned long code =
        ERR_peek_last_error_all(NULL, NULL, NULL, &data, &flags);

    if (code == 0 || ERR_GET_REASON(code) != SK_R_BAD_REQUEST ||
        (flags & ERR_TXT_STRING) == 0 || data == NULL ||
        strstr(data, "/crypto/v1/wrapkey") == NULL)
        return 0;
    snprintf(text, len, "%s", data);
    return 1;
}

/*
 * The plain RSA-OAEP wrap by the RSA cipher. SmartKey refuses to wrap an
 * RSA or EC key with RSA ("wrap it with an AES key"); then the subject's
 * type is looked up (on this failure path only) and the user is pointed to
 * the format that does it. Any other refusal is reported as it was.
 */
static int inner_encrypt(sk_byok_cipher *ctx, unsigned char *out,
                         size_t *outlen, size_t outsize,
                         const unsigned char *in, size_t inlen)
{
    char uri[1024] = "", why[256], refusal[1024];
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(SMARTKEY_PARAM_WRAP_SUBJECT, uri, sizeof(uri)),
        OSSL_PARAM_END,
    };
    const char *kind = NULL;
    sk_uri subject;
    int ok, asymmetric;

    ok = INNER(asym_cipher_encrypt, OSSL_FUNC_ASYM_CIPHER_ENCRYPT)(
        ctx->inner, out, outlen, outsize, in, inlen);
    if (ok || out == NULL || !wrap_refused(refusal, sizeof(refusal)) ||
        !INNER(asym_cipher_get_ctx_params,
               OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS)(ctx->inner, params) ||
        uri[0] == '\0')
        return ok;
    memset(&subject, 0, sizeof(subject));
    asymmetric = sk_uri_parse(uri, &subject, why, sizeof(why)) &&
                 subject_is_asymmetric(ctx, &subject, &kind, 1) > 0;
    sk_uri_clear(&subject);
    if (!asymmetric) {
        /* the lookup cleared the queue: SmartKey's refusal again */
        SK_RAISE(ctx->provctx, SK_R_BAD_REQUEST, "%s", refusal);
        return 0;
    }
    SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
             "%s %s: %.256s is %s private key, which does not fit in one "
             "RSA-OAEP block; use -pkeyopt %s:%s (RSA-OAEP of a transient "
             "AES key, then AES key wrap of the key's PKCS#8)",
             SMARTKEY_PARAM_WRAP_FORMAT, SMARTKEY_WRAP_FORMAT_RSA_OAEP, uri,
             kind, SMARTKEY_PARAM_WRAP_FORMAT,
             SMARTKEY_WRAP_FORMAT_RSA_AES_KEY_WRAP);
    return 0;
}

/* ---- encrypt ---------------------------------------------------------- */

static int is_text_format(byok_format format)
{
    return format == FORMAT_AZURE_BYOK || format == FORMAT_JWE ||
           format == FORMAT_SALESFORCE_CACHE_ONLY;
}

/* The size query is answered locally (pkeyutl asks before every call), so
   it is a bound: the subject's size is known only to SmartKey. */
static size_t size_bound(const sk_byok_cipher *ctx)
{
    size_t modulus = (size_t)ctx->key->max_size;
    size_t raw = modulus + MAX_SUBJECT_BYTES + 16;
    size_t names = 6 * ((ctx->kid != NULL ? strlen(ctx->kid) : 0) +
                        (ctx->jti != NULL ? strlen(ctx->jti) : 0));

    if (ctx->format == FORMAT_SHA256)
        raw = EVP_MAX_MD_SIZE;
    if (is_text_format(ctx->format))
        return 2 * sk_byok_base64_size(raw + names) + 1024;
    return ctx->encoding == ENCODING_RAW ? raw : sk_byok_base64_size(raw) + 1;
}

/* The plain RSA-OAEP wrap by the RSA cipher, then encoded. */
static int rsa_oaep_by_inner(sk_byok_cipher *ctx, unsigned char **out,
                             size_t *out_len)
{
    size_t size = 0;

    if (!inner_encrypt(ctx, NULL, &size, 0, NULL, 0))
        return 0;
    *out = OPENSSL_malloc(size);
    if (*out == NULL) {
        SK_RAISE(ctx->provctx, SK_R_OUT_OF_MEMORY, "wrapping");
        return 0;
    }
    if (!inner_encrypt(ctx, *out, out_len, size, NULL, 0)) {
        OPENSSL_free(*out);
        *out = NULL;
        return 0;
    }
    return 1;
}

/* What an artifact asks of the call besides the wrap settings: no input,
   no encoding for text formats, the cloud's kid where the format has one.
   0 with an error raised. */
static int check_artifact_request(sk_byok_cipher *ctx, size_t inlen)
{
    if (!sk_wrap_input_is_empty(ctx->provctx, inlen))
        return 0;
    if (is_text_format(ctx->format) && ctx->encoding != ENCODING_RAW) {
        RAISE_FOR_FORMAT(ctx, "is a text document: leave %s out",
                         SMARTKEY_PARAM_WRAP_ENCODING);
        return 0;
    }
    if (ctx->format != FORMAT_RSA_OAEP && ctx->format != FORMAT_SHA256 &&
        ctx->format != FORMAT_RSA_AES_KEY_WRAP && ctx->kid == NULL) {
        RAISE_FOR_FORMAT(ctx,
                         "needs %s: the key id the cloud gave its wrapping "
                         "key",
                         SMARTKEY_PARAM_WRAP_KID);
        return 0;
    }
    return 1;
}

/* *artifact in the requested encoding (replaced by its base64 or base64url
   text unless raw). 0 with an error raised. */
static int encode_artifact(sk_byok_cipher *ctx, unsigned char **artifact,
                           size_t *artifact_len)
{
    char *encoded;

    if (ctx->encoding == ENCODING_RAW)
        return 1;
    encoded = sk_byok_base64(*artifact, *artifact_len,
                             ctx->encoding == ENCODING_BASE64URL);
    if (encoded == NULL) {
        SK_RAISE(ctx->provctx, SK_R_OUT_OF_MEMORY, "encoding");
        return 0;
    }
    OPENSSL_free(*artifact);
    *artifact = (unsigned char *)encoded;
    *artifact_len = strlen(encoded);
    return 1;
}

static int byok_encrypt(void *vctx, unsigned char *out, size_t *outlen,
                        size_t outsize, const unsigned char *in, size_t inlen)
{
    sk_byok_cipher *ctx = vctx;
    unsigned char *artifact = NULL;
    size_t artifact_len = 0;
    wrap_settings ws;
    int ok = 0;

    if (ctx == NULL || ctx->key == NULL)
        return 0;
    if (ctx->format == FORMAT_RSA_OAEP && ctx->encoding == ENCODING_RAW)
        return inner_encrypt(ctx, out, outlen, outsize, in, inlen);

    memset(&ws, 0, sizeof(ws));
    if (!read_wrap_settings(ctx, &ws, ctx->format != FORMAT_SHA256))
        goto done;
    if (!check_artifact_request(ctx, inlen))
        goto done;
    if (out == NULL) {
        *outlen = size_bound(ctx);
        ok = 1;
        goto done;
    }
    if (ctx->format == FORMAT_RSA_OAEP
            ? !rsa_oaep_by_inner(ctx, &artifact, &artifact_len)
            : !subject_fits_format(ctx, &ws) ||
                  !sk_byok_produce(ctx, &ws, &artifact, &artifact_len))
        goto done;
    if (!encode_artifact(ctx, &artifact, &artifact_len))
        goto done;
    if (artifact_len > outsize) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "the %s artifact is %zu bytes, more than the %zu-byte "
                 "output buffer",
                 sk_byok_format_names[ctx->format], artifact_len, outsize);
        goto done;
    }
    memcpy(out, artifact, artifact_len);
    *outlen = artifact_len;
    ok = 1;
done:
    OPENSSL_free(artifact);
    sk_uri_clear(&ws.subject);
    return ok;
}

const OSSL_DISPATCH sk_rsa_byok_asym_cipher_functions[] = {
    SK_DISPATCH(ASYM_CIPHER_NEWCTX, byok_newctx),
    SK_DISPATCH(ASYM_CIPHER_FREECTX, byok_freectx),
    SK_DISPATCH(ASYM_CIPHER_DUPCTX, byok_dupctx),
    SK_DISPATCH(ASYM_CIPHER_ENCRYPT_INIT, byok_encrypt_init),
    SK_DISPATCH(ASYM_CIPHER_ENCRYPT, byok_encrypt),
    SK_DISPATCH(ASYM_CIPHER_DECRYPT_INIT, byok_decrypt_init),
    SK_DISPATCH(ASYM_CIPHER_DECRYPT, byok_decrypt),
    SK_DISPATCH(ASYM_CIPHER_GET_CTX_PARAMS, byok_get_ctx_params),
    SK_DISPATCH(ASYM_CIPHER_GETTABLE_CTX_PARAMS, byok_gettable_ctx_params),
    SK_DISPATCH(ASYM_CIPHER_SET_CTX_PARAMS, byok_set_ctx_params),
    SK_DISPATCH(ASYM_CIPHER_SETTABLE_CTX_PARAMS, byok_settable_ctx_params),
    {0, NULL},
};
