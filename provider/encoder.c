/*
 * TEXT encoder for private-key handles: `openssl pkey -text`,
 * `storeutl -keys -text` and EVP_PKEY_print_private() describe the key
 * (type, size, SmartKey name and kid, public half) instead of failing
 * silently because the private half cannot be exported (notes §4).
 * Public-only selections are left to the default provider's encoders,
 * which get the public half through keymgmt export.
 *
 * Key-reference encoders (PEM and DER, structure PrivateKeyInfo): where
 * OpenSSL would write a private key (`genpkey -out`, `pkey -out`,
 * PEM_write_PrivateKey), a private handle is written as a reference to the
 * SmartKey key instead (smartkey.h, keyref.c). Without them genpkey fails
 * after the key was already made in SmartKey (notes §6).
 */
#include <openssl/bio.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "keyref.h"

static void *text_newctx(void *provctx)
{
    return provctx;
}

static void text_freectx(void *ctx)
{
}

static int text_does_selection(void *provctx, int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

static const char *curve_name(sk_curve curve)
{
    switch (curve) {
    case SK_CURVE_P256:
        return "P-256";
    case SK_CURVE_P384:
        return "P-384";
    case SK_CURVE_P521:
        return "P-521";
    default:
        return "?";
    }
}

static int text_encode(void *ctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                       const OSSL_PARAM obj_abstract[], int selection,
                       OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    SK_PROVCTX *provctx = ctx;
    const SK_KEYDATA *handle = obj_raw;
    const SK_KEY *key;
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
    else
        ok = BIO_printf(out, "SmartKey EC %s key, %s (%u bit)\n",
                        handle->private_handle ? "private" : "public",
                        curve_name(key->curve), key->bits) > 0;
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
    {OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))text_newctx},
    {OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))text_freectx},
    {OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))text_does_selection},
    {OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))text_encode},
    {0, NULL},
};

static int keyref_does_selection(void *provctx, int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

static int keyref_encode(SK_PROVCTX *provctx, OSSL_CORE_BIO *cout,
                         const SK_KEYDATA *handle, int selection, int pem)
{
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
    if (pem)
        ok = PEM_write_bio(out, SMARTKEY_KEY_REFERENCE_PEM_LABEL, "", der,
                           (long)der_len) > 0;
    else
        ok = BIO_write(out, der, (int)der_len) == (int)der_len;
    BIO_free(out);
    OPENSSL_free(der);
    SK_DEBUG(3, "key %s: wrote a key reference (%s)", handle->key->kid,
             pem ? "PEM" : "DER");
    return ok;
}

static int keyref_pem_encode(void *ctx, OSSL_CORE_BIO *cout,
                             const void *obj_raw,
                             const OSSL_PARAM obj_abstract[], int selection,
                             OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return keyref_encode(ctx, cout, obj_raw, selection, 1);
}

static int keyref_der_encode(void *ctx, OSSL_CORE_BIO *cout,
                             const void *obj_raw,
                             const OSSL_PARAM obj_abstract[], int selection,
                             OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return keyref_encode(ctx, cout, obj_raw, selection, 0);
}

const OSSL_DISPATCH sk_keyref_pem_encoder_functions[] = {
    {OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))text_newctx},
    {OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))text_freectx},
    {OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))keyref_does_selection},
    {OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))keyref_pem_encode},
    {0, NULL},
};

const OSSL_DISPATCH sk_keyref_der_encoder_functions[] = {
    {OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))text_newctx},
    {OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))text_freectx},
    {OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))keyref_does_selection},
    {OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))keyref_der_encode},
    {0, NULL},
};
