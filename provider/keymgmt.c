/*
 * Key management for RSA and EC keys held in SmartKey: handles on the key
 * objects the store loads. Only the public half can be exported; there is
 * deliberately no import (notes §2.2, §7.3), so nothing from another
 * provider (libcurl's certificate checks included) can land here.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "key.h"

static void *keymgmt_new(void *provctx)
{
    SK_KEYDATA *keydata = calloc(1, sizeof(*keydata));

    if (keydata == NULL) {
        SK_RAISE(provctx, SK_R_OUT_OF_MEMORY, "creating a key handle");
        return NULL;
    }
    keydata->provctx = provctx;
    return keydata;
}

static void keymgmt_free(void *keydata)
{
    SK_KEYDATA *handle = keydata;

    if (handle == NULL)
        return;
    sk_key_free(handle->key);
    free(handle);
}

static void *load_of_type(const void *reference, size_t reference_size,
                          sk_key_type type)
{
    const sk_key_reference *ref = reference;
    SK_KEYDATA *keydata;

    /* anything else is another provider's reference, not ours to read */
    if (ref == NULL || reference_size != sizeof(*ref) ||
        ref->magic != SK_KEY_REFERENCE_MAGIC ||
        ref->version != SK_KEY_REFERENCE_VERSION || ref->key == NULL ||
        ref->key->type != type)
        return NULL;
    keydata = keymgmt_new(ref->provctx);
    if (keydata == NULL)
        return NULL;
    keydata->key = sk_key_up_ref(ref->key);
    keydata->private_handle = ref->key->has_private && !ref->public_handle;
    return keydata;
}

static void *rsa_load(const void *reference, size_t reference_size)
{
    return load_of_type(reference, reference_size, SK_KEY_RSA);
}

static void *ec_load(const void *reference, size_t reference_size)
{
    return load_of_type(reference, reference_size, SK_KEY_EC);
}

static void *keymgmt_dup(const void *keydata_from, int selection)
{
    const SK_KEYDATA *from = keydata_from;
    SK_KEYDATA *copy = keymgmt_new(from->provctx);

    if (copy == NULL)
        return NULL;
    copy->key = sk_key_up_ref(from->key);
    copy->private_handle =
        from->private_handle && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY);
    return copy;
}

static int keymgmt_has(const void *keydata, int selection)
{
    const SK_KEYDATA *handle = keydata;

    if (handle == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL) == 0)
        return 1;
    if (handle->key == NULL)
        return 0;
    /* a private handle "has" the private key: it can be used, not read */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
        !handle->private_handle)
        return 0;
    return 1;
}

static int keymgmt_match(const void *keydata1, const void *keydata2,
                         int selection)
{
    const SK_KEYDATA *a = keydata1, *b = keydata2;

    if (a == NULL || b == NULL || a->key == NULL || b->key == NULL)
        return 0;
    if (a->key == b->key || strcmp(a->key->kid, b->key->kid) == 0)
        return 1;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return EVP_PKEY_eq(a->key->public_key, b->key->public_key) == 1;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        return EVP_PKEY_parameters_eq(a->key->public_key, b->key->public_key) ==
               1;
    return 1;
}

/*
 * Public parts only. A private handle refuses any selection that includes
 * the private key: that refusal is what makes OpenSSL route operations on
 * it back to this provider (notes §2.1). It is expected during operation
 * set-up, so no error is raised. A public handle exports even when 0x87 is
 * asked: OpenSSL asks for everything even for public keys.
 */
static int keymgmt_export(void *keydata, int selection, OSSL_CALLBACK *param_cb,
                          void *cbarg)
{
    SK_KEYDATA *handle = keydata;
    int public_selection;

    if (handle == NULL || handle->key == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
        handle->private_handle) {
        SK_DEBUG(3, "key %s: private key export refused (stays in SmartKey)",
                 handle->key->kid);
        return 0;
    }
    public_selection = selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY |
                                    OSSL_KEYMGMT_SELECT_ALL_PARAMETERS);
    if (public_selection == 0)
        return 0;
    return EVP_PKEY_export(handle->key->public_key, public_selection, param_cb,
                           cbarg);
}

static const OSSL_PARAM rsa_public_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ec_public_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_export_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? rsa_public_types
                                                             : NULL;
}

static const OSSL_PARAM *ec_export_types(int selection)
{
    return (selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY |
                         OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0
               ? ec_public_types
               : NULL;
}

/* One parameter from the public EVP_PKEY (n, e, group, ...). */
static int get_public_param(const SK_KEY *key, OSSL_PARAM *p)
{
    OSSL_PARAM one[2] = {*p, OSSL_PARAM_END};

    if (!EVP_PKEY_get_params(key->public_key, one))
        return 0;
    p->return_size = one[0].return_size;
    return 1;
}

/*
 * bits, security-bits and max-size must all be answered here: OpenSSL
 * caches them once when the EVP_PKEY is created, and TLS refuses an RSA key
 * whose max-size is 0 (notes §2.2, E7f). Unknown names are ignored so
 * combined queries succeed.
 */
static int keymgmt_get_params(void *keydata, OSSL_PARAM params[])
{
    SK_KEYDATA *handle = keydata;
    const SK_KEY *key;
    OSSL_PARAM *p;

    if (handle == NULL || handle->key == NULL)
        return 0;
    key = handle->key;
    for (p = params; p->key != NULL; p++) {
        int ok = 1;

        if (strcmp(p->key, OSSL_PKEY_PARAM_BITS) == 0)
            ok = OSSL_PARAM_set_int(p, (int)key->bits);
        else if (strcmp(p->key, OSSL_PKEY_PARAM_SECURITY_BITS) == 0)
            ok = OSSL_PARAM_set_int(p, key->security_bits);
        else if (strcmp(p->key, OSSL_PKEY_PARAM_MAX_SIZE) == 0)
            ok = OSSL_PARAM_set_int(p, key->max_size);
        else if (strcmp(p->key, OSSL_PKEY_PARAM_DEFAULT_DIGEST) == 0)
            ok = OSSL_PARAM_set_utf8_string(p, "SHA256");
        else if (key->type == SK_KEY_RSA &&
                 (strcmp(p->key, OSSL_PKEY_PARAM_RSA_N) == 0 ||
                  strcmp(p->key, OSSL_PKEY_PARAM_RSA_E) == 0))
            ok = get_public_param(key, p);
        else if (key->type == SK_KEY_EC &&
                 (strcmp(p->key, OSSL_PKEY_PARAM_GROUP_NAME) == 0 ||
                  strcmp(p->key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT) ==
                      0 ||
                  strcmp(p->key, OSSL_PKEY_PARAM_EC_ENCODING) == 0 ||
                  strcmp(p->key, OSSL_PKEY_PARAM_PUB_KEY) == 0))
            ok = get_public_param(key, p);
        else if (strcmp(p->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY) == 0)
            ok = get_public_param(key, p);
        if (!ok)
            return 0;
    }
    return 1;
}

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_gettable_params(void *provctx)
{
    return rsa_gettable;
}

static const OSSL_PARAM *ec_gettable_params(void *provctx)
{
    return ec_gettable;
}

static const char *rsa_query_operation_name(int operation_id)
{
    return "RSA";
}

/* There is no "EC" signature or key exchange (notes §2.1). */
static const char *ec_query_operation_name(int operation_id)
{
    switch (operation_id) {
    case OSSL_OP_SIGNATURE:
        return "ECDSA";
    case OSSL_OP_KEYEXCH:
        return "ECDH";
    }
    return NULL;
}

const OSSL_DISPATCH sk_rsa_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))keymgmt_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))keymgmt_free},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))keymgmt_dup},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))keymgmt_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))keymgmt_match},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))keymgmt_export},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))keymgmt_get_params},
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))rsa_load},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))rsa_export_types},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))rsa_gettable_params},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
     (void (*)(void))rsa_query_operation_name},
    {0, NULL},
};

const OSSL_DISPATCH sk_ec_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))keymgmt_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))keymgmt_free},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))keymgmt_dup},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))keymgmt_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))keymgmt_match},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))keymgmt_export},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))keymgmt_get_params},
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))ec_load},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))ec_export_types},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))ec_gettable_params},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
     (void (*)(void))ec_query_operation_name},
    {0, NULL},
};
