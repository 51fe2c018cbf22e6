/*
 * Decoders for key-reference files (smartkey.h), in two stages so that
 * every way OpenSSL reads a key file reaches them
 * (docs/openssl-dispatch.md §5):
 *
 *   1. "DER" from input=pem: unwraps the SMARTKEY KEY REFERENCE block
 *      into DER with structure "smartkey-ref". OSSL_STORE's file: loader
 *      stops here and decodes that DER into a key itself; a single-stage
 *      PEM-to-key decoder is invisible to it.
 *   2. RSA and EC from input=der,structure=smartkey-ref: look the key up
 *      in SmartKey and hand over a reference. OpenSSL then calls this
 *      provider's keymgmt load(), which it does only because decoder and
 *      keymgmt come from the same provider.
 *
 * Any other PEM block or DER is left alone ("empty-handed" success) so the
 * other providers' decoders get their turn. A block with our label that is
 * damaged is an error that says so.
 */
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "keyref.h"
#include "params.h"

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_decoder_does_selection_fn decoder_does_selection;
static OSSL_FUNC_decoder_decode_fn pem_to_der_decode;
static OSSL_FUNC_decoder_decode_fn rsa_decode;
static OSSL_FUNC_decoder_export_object_fn decoder_export_object;
static OSSL_FUNC_decoder_decode_fn ec_decode;
static OSSL_FUNC_decoder_decode_fn ed25519_decode;

/*
 * Parses a reference without leaving libcrypto's ASN.1 errors behind: the
 * caller decides whether a failure is an error (our PEM label) or just
 * someone else's DER.
 */
static int parse_reference(sk_provctx *provctx, const unsigned char *der,
                           size_t der_len, sk_keyref_fields *fields,
                           const char **why)
{
    int ok;

    sk_set_error_mark(provctx);
    ok = sk_keyref_from_der(der, der_len, fields, why);
    sk_pop_error_to_mark(provctx);
    return ok;
}

static const char *type_name(sk_key_type type)
{
    return sk_key_type_name(type);
}

/*
 * The key a reference names, as SmartKey describes it now: NULL with an
 * error raised when it is gone or no longer what the file says.
 */
static sk_key *referenced_key(sk_provctx *provctx,
                              const sk_keyref_fields *fields)
{
    sk_key_ref ref = {fields->kid, NULL};
    sk_key *key = sk_key_fetch(provctx, &ref);

    if (key == NULL) {
        /*
         * sk_key_fetch raised the cause. Only a key SmartKey does not know
         * (404) gets a word about the file; after an authentication,
         * network or TLS failure "no such key" would be a false lead.
         */
        if (ERR_GET_REASON(ERR_peek_last_error()) == SK_R_UNKNOWN_KEY)
            SK_RAISE(provctx, SK_R_UNKNOWN_KEY,
                     "the key reference names %s key '%.200s' (%s), which "
                     "SmartKey does not know (deleted, or not visible to "
                     "this API key's app): write a new reference with "
                     "openssl pkey -in smartkey:name=... -out FILE",
                     type_name(fields->type),
                     fields->name != NULL ? fields->name : "", fields->kid);
        return NULL;
    }
    if (key->type != fields->type || !key->has_private) {
        SK_RAISE(provctx, SK_R_NO_PRIVATE_KEY,
                 "key %s in SmartKey is %s and has %s private half, unlike "
                 "what the key reference says",
                 key->kid, type_name(key->type), key->has_private ? "a" : "no");
        sk_key_free(key);
        return NULL;
    }
    return key;
}

/*
 * The key that der names when der is a key reference (of type `want`, or of
 * any type when want is 0): 1 with *key and *type set; 0 when der is no
 * such reference (*why, when why is not NULL, says what is wrong when it
 * is no reference at all); -1 with an error raised when SmartKey no longer
 * has the key as written. type may be NULL.
 */
static int load_reference(sk_provctx *provctx, const unsigned char *der,
                          size_t der_len, sk_key_type want, sk_key **key,
                          sk_key_type *type, const char **why)
{
    sk_keyref_fields fields;
    const char *cause = NULL;

    if (why != NULL)
        *why = NULL;
    if (!parse_reference(provctx, der, der_len, &fields,
                         why != NULL ? why : &cause))
        return 0;
    if (type != NULL)
        *type = fields.type;
    if (want != 0 && fields.type != want) {
        sk_keyref_fields_clear(&fields);
        return 0;
    }
    *key = referenced_key(provctx, &fields);
    sk_keyref_fields_clear(&fields);
    return *key != NULL ? 1 : -1;
}

/* The first stage's object: the DER of a key reference of type, for the
   second stage (der_to_key_decode). */
static int pass_reference_der(sk_key_type type, unsigned char *der,
                              size_t der_len, OSSL_CALLBACK *object_cb,
                              void *object_cbarg)
{
    int object_type = OSSL_OBJECT_PKEY;
    OSSL_PARAM params[5];

    /* the construct_ forms: the OSSL_PARAM_utf8_string() initialiser
       leaves the length 0, and OpenSSL then reads an empty type name */
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)type_name(type), 0);
    params[2] = OSSL_PARAM_construct_utf8_string(
        OSSL_OBJECT_PARAM_DATA_STRUCTURE,
        (char *)SMARTKEY_KEY_REFERENCE_STRUCTURE, 0);
    params[3] =
        OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, der_len);
    params[4] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int pem_to_der_decode(void *ctx, OSSL_CORE_BIO *cin, int selection,
                             OSSL_CALLBACK *object_cb, void *object_cbarg,
                             OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    sk_provctx *provctx = ctx;
    BIO *in = BIO_new_from_core_bio(provctx->libctx, cin);
    char *label = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    sk_key *key = NULL;
    sk_key_type type;
    const char *why;
    int ok = 1;

    if (in == NULL)
        return 0;
    /* someone else's PEM (or no PEM at all): not an error of ours */
    sk_set_error_mark(provctx);
    if (!PEM_read_bio(in, &label, &header, &der, &der_len)) {
        sk_pop_error_to_mark(provctx);
        goto done;
    }
    sk_clear_last_error_mark(provctx);
    SK_DEBUG(3, "decoder: PEM block '%.64s'", label);
    if (strcmp(label, SMARTKEY_KEY_REFERENCE_PEM_LABEL) != 0)
        goto done;
    /*
     * The lookup is made here already although the second stage makes it
     * (from the cache) again: OSSL_STORE's file: loader runs the second
     * stage under an error mark it pops, so only errors raised here reach
     * the user ("no such key", not just "unsupported").
     */
    switch (
        load_reference(provctx, der, (size_t)der_len, 0, &key, &type, &why)) {
    case 0:
        SK_RAISE(provctx, SK_R_BAD_KEY_REFERENCE,
                 "the %s block cannot be used: %s",
                 SMARTKEY_KEY_REFERENCE_PEM_LABEL, why);
        ok = 0;
        break;
    case 1:
        sk_key_free(key);
        ok = pass_reference_der(type, der, (size_t)der_len, object_cb,
                                object_cbarg);
        break;
    default:
        ok = 0;
    }
done:
    OPENSSL_free(label);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(in);
    return ok;
}

/* All of the input, up to one byte more than any reference (to recognise
   larger input); NULL when out of memory. */
static unsigned char *read_der(sk_provctx *provctx, OSSL_CORE_BIO *cin,
                               long *der_len)
{
    BIO *in = BIO_new_from_core_bio(provctx->libctx, cin);
    unsigned char *der = OPENSSL_malloc(SK_KEYREF_MAX_FILE + 1);
    int got;

    *der_len = 0;
    if (in == NULL || der == NULL) {
        BIO_free(in);
        OPENSSL_free(der);
        return NULL;
    }
    while (*der_len <= SK_KEYREF_MAX_FILE &&
           (got = BIO_read(in, der + *der_len,
                           (int)(SK_KEYREF_MAX_FILE + 1 - *der_len))) > 0)
        *der_len += got;
    BIO_free(in);
    return der;
}

/* The second stage's object: a reference to key (a struct, never a
   pointer-sized value) for the key manager's load. */
static int pass_key(sk_provctx *provctx, sk_key *key, sk_key_type type,
                    int selection, OSSL_CALLBACK *object_cb, void *object_cbarg)
{
    sk_key_reference reference;
    int object_type = OSSL_OBJECT_PKEY;
    OSSL_PARAM params[4];

    memset(&reference, 0, sizeof(reference));
    reference.magic = SK_KEY_REFERENCE_MAGIC;
    reference.version = SK_KEY_REFERENCE_VERSION;
    reference.provctx = provctx;
    reference.key = key;
    /* -pubin and other public-only loads get a public handle */
    reference.public_handle =
        selection != 0 && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0;
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)type_name(type), 0);
    params[2] = OSSL_PARAM_construct_octet_string(
        OSSL_OBJECT_PARAM_REFERENCE, &reference, sizeof(reference));
    params[3] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int der_to_key_decode(sk_provctx *provctx, OSSL_CORE_BIO *cin,
                             int selection, OSSL_CALLBACK *object_cb,
                             void *object_cbarg, sk_key_type type)
{
    long der_len = 0;
    unsigned char *der = read_der(provctx, cin, &der_len);
    sk_key *key = NULL;
    int ok = 1;

    if (der == NULL)
        return 0;
    /* larger input, DER of another structure, or a reference of the other
       key type: someone else's */
    if (der_len <= SK_KEYREF_MAX_FILE) {
        SK_DEBUG(3, "decoder: %ld bytes of DER for %s (selection 0x%x)",
                 der_len, type_name(type), (unsigned)selection);
        switch (load_reference(provctx, der, (size_t)der_len, type, &key, NULL,
                               NULL)) {
        case 1:
            ok = pass_key(provctx, key, type, selection, object_cb,
                          object_cbarg);
            sk_key_free(key);
            break;
        case -1:
            ok = 0;
            break;
        }
    }
    OPENSSL_free(der);
    return ok;
}

static int rsa_decode(void *ctx, OSSL_CORE_BIO *cin, int selection,
                      OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    return der_to_key_decode(ctx, cin, selection, object_cb, object_cbarg,
                             SK_KEY_RSA);
}

static int ec_decode(void *ctx, OSSL_CORE_BIO *cin, int selection,
                     OSSL_CALLBACK *object_cb, void *object_cbarg,
                     OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    return der_to_key_decode(ctx, cin, selection, object_cb, object_cbarg,
                             SK_KEY_EC);
}

static int ed25519_decode(void *ctx, OSSL_CORE_BIO *cin, int selection,
                          OSSL_CALLBACK *object_cb, void *object_cbarg,
                          OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    return der_to_key_decode(ctx, cin, selection, object_cb, object_cbarg,
                             SK_KEY_ED25519);
}

/*
 * Refuses, for every key, as the store does (store.c): OpenSSL's decoder
 * prefers a key manager of the decoder's own provider and loads the
 * reference there, so a SmartKey key read from a reference file, public
 * handles (-pubin) included, always stays a smartkey key; handed to
 * another provider, its operations would run there and ignore smartkey's
 * parameters (docs/openssl-dispatch.md §3).
 */
static int decoder_export_object(void *ctx, const void *objref,
                                 size_t objref_sz, OSSL_CALLBACK *export_cb,
                                 void *export_cbarg)
{
    return 0;
}

static int decoder_does_selection(void *provctx, int selection)
{
    return selection == 0 ||
           (selection & (OSSL_KEYMGMT_SELECT_PRIVATE_KEY |
                         OSSL_KEYMGMT_SELECT_PUBLIC_KEY)) != 0;
}

const OSSL_DISPATCH sk_keyref_pem_decoder_functions[] = {
    SK_DISPATCH(DECODER_NEWCTX, sk_provctx_newctx),
    SK_DISPATCH(DECODER_FREECTX, sk_provctx_freectx),
    SK_DISPATCH(DECODER_DOES_SELECTION, decoder_does_selection),
    SK_DISPATCH(DECODER_DECODE, pem_to_der_decode),
    {0, NULL},
};

const OSSL_DISPATCH sk_keyref_rsa_decoder_functions[] = {
    SK_DISPATCH(DECODER_NEWCTX, sk_provctx_newctx),
    SK_DISPATCH(DECODER_FREECTX, sk_provctx_freectx),
    SK_DISPATCH(DECODER_DOES_SELECTION, decoder_does_selection),
    SK_DISPATCH(DECODER_DECODE, rsa_decode),
    SK_DISPATCH(DECODER_EXPORT_OBJECT, decoder_export_object),
    {0, NULL},
};

const OSSL_DISPATCH sk_keyref_ec_decoder_functions[] = {
    SK_DISPATCH(DECODER_NEWCTX, sk_provctx_newctx),
    SK_DISPATCH(DECODER_FREECTX, sk_provctx_freectx),
    SK_DISPATCH(DECODER_DOES_SELECTION, decoder_does_selection),
    SK_DISPATCH(DECODER_DECODE, ec_decode),
    SK_DISPATCH(DECODER_EXPORT_OBJECT, decoder_export_object),
    {0, NULL},
};

const OSSL_DISPATCH sk_keyref_ed25519_decoder_functions[] = {
    SK_DISPATCH(DECODER_NEWCTX, sk_provctx_newctx),
    SK_DISPATCH(DECODER_FREECTX, sk_provctx_freectx),
    SK_DISPATCH(DECODER_DOES_SELECTION, decoder_does_selection),
    SK_DISPATCH(DECODER_DECODE, ed25519_decode),
    SK_DISPATCH(DECODER_EXPORT_OBJECT, decoder_export_object),
    {0, NULL},
};
