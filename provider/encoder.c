/*
 * TEXT encoder for private-key handles: `openssl pkey -text`,
 * `storeutl -keys -text` and EVP_PKEY_print_private() describe the key
 * (type, size, SmartKey name and kid, public half) instead of failing
 * silently because the private half cannot be exported
 * (docs/openssl-dispatch.md §5). Public-only selections are left to the default
 * provider's encoders, which get the public half through keymgmt export.
 *
 * Key-reference encoders (PEM and DER, structure PrivateKeyInfo): where
 * OpenSSL would write a private key (`genpkey -out`, `pkey -out`,
 * PEM_write_PrivateKey), a private handle is written as a reference to the
 * SmartKey key instead (smartkey.h, keyref.c). Without them genpkey fails
 * after the key was already made in SmartKey (docs/openssl-dispatch.md §7).
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "keyref.h"
#include "names.h"
#include "params.h"

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_encoder_newctx_fn keyref_pem_newctx;
static OSSL_FUNC_encoder_newctx_fn keyref_der_newctx;
static OSSL_FUNC_encoder_newctx_fn keyref_pkcs8_der_newctx;
static OSSL_FUNC_encoder_does_selection_fn text_does_selection;
static OSSL_FUNC_encoder_encode_fn text_encode;
static OSSL_FUNC_encoder_freectx_fn keyref_freectx;
static OSSL_FUNC_encoder_settable_ctx_params_fn keyref_settable_ctx_params;
static OSSL_FUNC_encoder_set_ctx_params_fn keyref_set_ctx_params;
static OSSL_FUNC_encoder_does_selection_fn keyref_does_selection;
static OSSL_FUNC_encoder_encode_fn keyref_encode;

static int text_does_selection(void *provctx, int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

static int text_encode(void *ctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                       const OSSL_PARAM obj_abstract[], int selection,
                       OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    sk_provctx *provctx = ctx;
    const sk_keydata *handle = obj_raw;
    const sk_key *key;
    BIO *out;
    int ok;

    /* only our own key handles, never parameters from elsewhere */
    if (handle == NULL || handle->key == NULL)
        return 0;
    key = handle->key;
    out = BIO_new_from_core_bio(provctx->libctx, cout);
    if (out == NULL)
        return 0;
    if (key->type == SK_KEY_RSA)
        ok = BIO_printf(out, "SmartKey RSA %s key, %u bit\n",
                        handle->private_handle ? "private" : "public",
                        key->bits) > 0;
    else if (key->type == SK_KEY_ED25519)
        ok = BIO_printf(out, "SmartKey Ed25519 %s key\n",
                        handle->private_handle ? "private" : "public") > 0;
    else
        ok = BIO_printf(out, "SmartKey EC %s key, %s (%u bit)\n",
                        handle->private_handle ? "private" : "public",
                        sk_curve_openssl_name(key->curve), key->bits) > 0;
    ok = ok &&
         BIO_printf(out, "name: %s\nkid: %s\n", SK_ESCAPED(key->name),
                    key->kid) > 0 &&
         (!handle->private_handle ||
          BIO_printf(out, "private key: held in SmartKey, not "
                          "exportable\n") > 0) &&
         EVP_PKEY_print_public(out, key->public_key, 0, NULL) > 0;
    BIO_free(out);
    return ok;
}

const OSSL_DISPATCH sk_text_encoder_functions[] = {
    SK_DISPATCH(ENCODER_NEWCTX, sk_provctx_newctx),
    SK_DISPATCH(ENCODER_FREECTX, sk_provctx_freectx),
    SK_DISPATCH(ENCODER_DOES_SELECTION, text_does_selection),
    SK_DISPATCH(ENCODER_ENCODE, text_encode),
    {0, NULL},
};

/*
 * A key-reference encoder's context: which structure it was registered
 * for, and whether the caller asked for encryption (OSSL_ENCODER's
 * "cipher" parameter: `pkey -aes256`, PEM_write_bio_PrivateKey with an
 * EVP_CIPHER, i2d_PKCS8PrivateKey_bio with one).
 */
typedef struct sk_keyref_encoder_ctx {
    sk_provctx *provctx;
    int pem;
    int pkcs8; /* registered as structure=PrivateKeyInfo */
    char cipher[64];
} sk_keyref_encoder_ctx;

static void *keyref_newctx(sk_provctx *provctx, int pem, int pkcs8)
{
    sk_keyref_encoder_ctx *ctx;

    if (!SK_CTX_NEW(ctx, provctx, "creating a key encoder"))
        return NULL;
    ctx->pem = pem;
    ctx->pkcs8 = pkcs8;
    return ctx;
}

static void *keyref_pem_newctx(void *provctx)
{
    return keyref_newctx(provctx, 1, 1);
}

static void *keyref_der_newctx(void *provctx)
{
    return keyref_newctx(provctx, 0, 0);
}

static void *keyref_pkcs8_der_newctx(void *provctx)
{
    return keyref_newctx(provctx, 0, 1);
}

static void keyref_freectx(void *ctx)
{
    OPENSSL_free(ctx);
}

static const OSSL_PARAM *keyref_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_ENCODER_PARAM_CIPHER, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ENCODER_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_END,
    };

    return settable;
}

/*
 * Only remembers a requested cipher: refusing here would make OpenSSL
 * report a failed parameter, not the reason. A NULL or empty name
 * withdraws the request (OSSL_ENCODER_CTX_set_cipher(ctx, NULL, ...)).
 */
static int keyref_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sk_keyref_encoder_ctx *ctx = vctx;
    /* params may be NULL: no parameter is found */
    const OSSL_PARAM *p =
        OSSL_PARAM_locate_const(params, OSSL_ENCODER_PARAM_CIPHER);
    size_t i;

    if (p == NULL)
        return 1;
    if (p->data_type != OSSL_PARAM_UTF8_STRING) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "the encoder's '%s' parameter must be a cipher name",
                 OSSL_ENCODER_PARAM_CIPHER);
        return 0;
    }
    memset(ctx->cipher, 0, sizeof(ctx->cipher));
    if (p->data == NULL)
        return 1;
    /* a printable copy, for the message only */
    for (i = 0; i < p->data_size && i + 1 < sizeof(ctx->cipher) &&
                ((const char *)p->data)[i] != '\0';
         i++) {
        unsigned char c = ((const unsigned char *)p->data)[i];

        ctx->cipher[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    return 1;
}

static int keyref_does_selection(void *provctx, int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

/*
 * Requests this encoder refuses rather than hand out a file that is not
 * what the caller asked for. Each says "the private key stays in
 * SmartKey" and what to do instead.
 */
static int keyref_refused(sk_keyref_encoder_ctx *ctx, const sk_key *key,
                          int selection)
{
    /*
     * A reference holds no secret, so there is nothing to encrypt; written
     * unencrypted, it would pass for an encrypted private key.
     */
    if (ctx->cipher[0] != '\0') {
        SK_RAISE(ctx->provctx, SK_R_PRIVATE_KEY_NOT_EXPORTABLE,
                 "the private key stays in SmartKey: key %s cannot be "
                 "written encrypted (cipher %s requested); a key-reference "
                 "file holds no secret: write it without a cipher (openssl "
                 "pkey -in smartkey:... -out FILE) and protect the API key "
                 "instead",
                 key->kid, ctx->cipher);
        return 1;
    }
    /*
     * DER PrivateKeyInfo of the whole key (parameters included) is what
     * OpenSSL's PKCS#8 conversion (EVP_PKEY2PKCS8) asks for: `openssl
     * pkcs12 -export`, `pkcs8 -topk8`, i2d_PKCS8PrivateKey_bio. A reference
     * in its place only ends in ASN.1 parse errors. Plain DER key output
     * (i2d_PrivateKey: `pkey -outform DER`, `genpkey -outform DER`) asks
     * for the key pair alone and still gets the reference.
     */
    if (ctx->pkcs8 && !ctx->pem &&
        (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0) {
        SK_RAISE(ctx->provctx, SK_R_PRIVATE_KEY_NOT_EXPORTABLE,
                 "the private key stays in SmartKey: key %s cannot be "
                 "written as PKCS#8 or PKCS#12 (pkcs12 -export, pkcs8 "
                 "-topk8, DER PrivateKeyInfo); to name the key in a file, "
                 "write a key-reference file (openssl pkey -in "
                 "smartkey:... -out FILE, PEM or -outform DER); to move key "
                 "material to another system, wrap it in SmartKey (BYOK: "
                 "smartkey-wrap-subject)",
                 key->kid);
        return 1;
    }
    return 0;
}

static int keyref_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                         const OSSL_PARAM obj_abstract[], int selection,
                         OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    sk_keyref_encoder_ctx *ctx = vctx;
    sk_provctx *provctx = ctx->provctx;
    const sk_keydata *handle = obj_raw;
    unsigned char *der = NULL;
    size_t der_len = 0;
    BIO *out;
    int ok;

    if (handle == NULL || handle->key == NULL ||
        (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0)
        return 0;
    /* a reference to a public-only key would load as a private key that
       cannot sign or decrypt */
    if (!handle->private_handle) {
        SK_RAISE(provctx, SK_R_NO_PRIVATE_KEY,
                 "key '%.200s' (%s) has no private half in SmartKey: write "
                 "its public key instead (-pubout)",
                 handle->key->name != NULL ? handle->key->name : "",
                 handle->key->kid);
        return 0;
    }
    if (keyref_refused(ctx, handle->key, selection))
        return 0;
    if (!sk_keyref_to_der(handle->key, &der, &der_len)) {
        SK_RAISE(provctx, SK_R_INTERNAL_ERROR,
                 "cannot encode a reference to key %s", handle->key->kid);
        return 0;
    }
    out = BIO_new_from_core_bio(provctx->libctx, cout);
    if (out == NULL) {
        OPENSSL_free(der);
        return 0;
    }
    if (ctx->pem)
        ok = PEM_write_bio(out, SMARTKEY_KEY_REFERENCE_PEM_LABEL, "", der,
                           (long)der_len) > 0;
    else
        ok = BIO_write(out, der, (int)der_len) == (int)der_len;
    BIO_free(out);
    OPENSSL_free(der);
    SK_DEBUG(3, "key %s: wrote a key reference (%s)", handle->key->kid,
             ctx->pem ? "PEM" : "DER");
    return ok;
}

#define SK_KEYREF_ENCODER(name, newctx)                                        \
    const OSSL_DISPATCH name[] = {                                             \
        SK_DISPATCH(ENCODER_NEWCTX, newctx),                                   \
        SK_DISPATCH(ENCODER_FREECTX, keyref_freectx),                          \
        SK_DISPATCH(ENCODER_SETTABLE_CTX_PARAMS, keyref_settable_ctx_params),  \
        SK_DISPATCH(ENCODER_SET_CTX_PARAMS, keyref_set_ctx_params),            \
        SK_DISPATCH(ENCODER_DOES_SELECTION, keyref_does_selection),            \
        SK_DISPATCH(ENCODER_ENCODE, keyref_encode),                            \
        {0, NULL},                                                             \
    }

/* PEM, structure PrivateKeyInfo or type-specific: the same reference */
SK_KEYREF_ENCODER(sk_keyref_pem_encoder_functions, keyref_pem_newctx);
/* DER, structure type-specific (i2d_PrivateKey tries it first) */
SK_KEYREF_ENCODER(sk_keyref_der_encoder_functions, keyref_der_newctx);
/* DER, structure PrivateKeyInfo: PKCS#8 requests are refused */
SK_KEYREF_ENCODER(sk_keyref_pkcs8_der_encoder_functions,
                  keyref_pkcs8_der_newctx);
