/*
 * Key management for RSA, EC and Ed25519 keys held in SmartKey (Ed25519
 * keys are EC objects there, ED25519 keys here): handles on the key
 * objects the store loads. Only the public half can be exported, and only
 * when the private key is not asked for (keymgmt_export). The only
 * import is of RSA public keys, for wrapping under a cloud's key read from
 * a file (rsa_import); EC has none (docs/openssl-dispatch.md §2, §9).
 * Generation (genpkey) makes the key inside SmartKey; the private half
 * never exists anywhere else.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/bn.h>
#include <openssl/params.h>

#include "key.h"
#include "names.h"
#include "params.h"

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_keymgmt_new_fn keymgmt_new;
static OSSL_FUNC_keymgmt_free_fn keymgmt_free;
static OSSL_FUNC_keymgmt_dup_fn keymgmt_dup;
static OSSL_FUNC_keymgmt_has_fn keymgmt_has;
static OSSL_FUNC_keymgmt_match_fn keymgmt_match;
static OSSL_FUNC_keymgmt_export_fn keymgmt_export;
static OSSL_FUNC_keymgmt_get_params_fn keymgmt_get_params;
static OSSL_FUNC_keymgmt_load_fn rsa_load;
static OSSL_FUNC_keymgmt_gen_init_fn rsa_gen_init;
static OSSL_FUNC_keymgmt_gen_set_params_fn gen_set_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn rsa_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_fn keymgmt_gen;
static OSSL_FUNC_keymgmt_gen_cleanup_fn gen_cleanup;
static OSSL_FUNC_keymgmt_export_types_fn rsa_public_types_of;
static OSSL_FUNC_keymgmt_import_types_fn rsa_public_types_of;
static OSSL_FUNC_keymgmt_import_fn rsa_import;
static OSSL_FUNC_keymgmt_gettable_params_fn rsa_gettable_params;
static OSSL_FUNC_keymgmt_query_operation_name_fn rsa_query_operation_name;
static OSSL_FUNC_keymgmt_load_fn ec_load;
static OSSL_FUNC_keymgmt_gen_init_fn ec_gen_init;
static OSSL_FUNC_keymgmt_gen_settable_params_fn ec_gen_settable_params;
static OSSL_FUNC_keymgmt_export_types_fn ec_export_types;
static OSSL_FUNC_keymgmt_gettable_params_fn ec_gettable_params;
static OSSL_FUNC_keymgmt_query_operation_name_fn ec_query_operation_name;
static OSSL_FUNC_keymgmt_load_fn ed25519_load;
static OSSL_FUNC_keymgmt_gen_init_fn ed25519_gen_init;
static OSSL_FUNC_keymgmt_gen_settable_params_fn ed25519_gen_settable_params;
static OSSL_FUNC_keymgmt_export_types_fn ed25519_export_types;
static OSSL_FUNC_keymgmt_gettable_params_fn ed25519_gettable_params;
static OSSL_FUNC_keymgmt_query_operation_name_fn ed25519_query_operation_name;

static void *keymgmt_new(void *provctx)
{
    sk_keydata *keydata;

    SK_CTX_NEW(keydata, provctx, "creating a key handle");
    return keydata;
}

static void keymgmt_free(void *keydata)
{
    sk_keydata *handle = keydata;

    if (handle == NULL)
        return;
    sk_key_free(handle->key);
    OPENSSL_free(handle);
}

static void *load_of_type(const void *reference, size_t reference_size,
                          sk_key_type type)
{
    const sk_key_reference *ref = reference;
    sk_keydata *keydata;

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

static void *ed25519_load(const void *reference, size_t reference_size)
{
    return load_of_type(reference, reference_size, SK_KEY_ED25519);
}

static void *keymgmt_dup(const void *keydata_from, int selection)
{
    const sk_keydata *from = keydata_from;
    sk_keydata *copy = keymgmt_new(from->provctx);

    if (copy == NULL)
        return NULL;
    copy->key = sk_key_up_ref(from->key);
    copy->private_handle =
        from->private_handle && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY);
    return copy;
}

static int keymgmt_has(const void *keydata, int selection)
{
    const sk_keydata *handle = keydata;

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
    const sk_keydata *a = keydata1, *b = keydata2;

    if (a == NULL || b == NULL || a->key == NULL || b->key == NULL)
        return 0;
    /* keys imported from a file have no kid: compare them by value */
    if (a->key == b->key ||
        (a->key->kid[0] != '\0' && strcmp(a->key->kid, b->key->kid) == 0))
        return 1;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return EVP_PKEY_eq(a->key->public_key, b->key->public_key) == 1;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        return EVP_PKEY_parameters_eq(a->key->public_key, b->key->public_key) ==
               1;
    return 1;
}

/*
 * Public parts only, and only for selections without the private key:
 * encoders (-pubout, -text_pub), EVP_PKEY_eq and the cross-provider match
 * ask for public key + parameters (0x86) and get them. Any selection with
 * the private key (OpenSSL asks for 0x87 when it tries to move the key to
 * the provider of an operation it fetched) is refused, for RSA public
 * handles too: that refusal makes OpenSSL fetch the operation from this
 * provider
 * (docs/openssl-dispatch.md §3), so smartkey's cipher sees
 * smartkey-wrap-subject and smartkey's signature verifies. Had a public handle
 * been exported, the default provider's cipher would have ignored the wrap
 * subject and returned a local encryption of the empty input (issue 12).
 * Expected during operation set-up: no error.
 */
static int keymgmt_export(void *keydata, int selection, OSSL_CALLBACK *param_cb,
                          void *cbarg)
{
    sk_keydata *handle = keydata;
    int public_selection;

    if (handle == NULL || handle->key == NULL)
        return 0;
    /* An EC public key has no smartkey parameters to lose: it still goes
       to another provider's ECDH as a peer key, or its ECDSA verifier */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
        (handle->private_handle || handle->key->type == SK_KEY_RSA)) {
        SK_DEBUG(3,
                 "key %s: export with the private key selection refused "
                 "(its operations stay in smartkey)",
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

/*
 * The one import: an RSA *public* key of another provider, e.g. a cloud's
 * wrapping key read from a PEM file or a certificate. OpenSSL exports it
 * here when the operation is fetched from smartkey (-propquery
 * '?provider=smartkey'), so the asym cipher can have SmartKey wrap under it
 * (docs/wrapping.md). OpenSSL asks with the full selection even when it
 * holds only a public key (docs/openssl-dispatch.md §3), so what is refused is
 * private material, not the selection bit. The key gets no kid: it is not held
 * in SmartKey, and the cipher registers it as a transient key when needed.
 */
static int rsa_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    sk_keydata *handle = keydata;
    EVP_PKEY_CTX *from_data;
    EVP_PKEY *public_key = NULL;
    sk_key *key;

    if (handle == NULL || handle->key != NULL ||
        (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0 ||
        OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_N) == NULL)
        return 0;
    if (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D) != NULL) {
        SK_RAISE(handle->provctx, SK_R_UNSUPPORTED_KEY_TYPE,
                 "smartkey takes only public keys from other providers; "
                 "import private keys into SmartKey itself");
        return 0;
    }
    /* the public half lives in the child libctx, never in smartkey */
    from_data = EVP_PKEY_CTX_new_from_name(handle->provctx->libctx, "RSA",
                                           "provider!=" SMARTKEY_PROVIDER_NAME);
    if (from_data == NULL || EVP_PKEY_fromdata_init(from_data) <= 0 ||
        EVP_PKEY_fromdata(from_data, &public_key, EVP_PKEY_PUBLIC_KEY,
                          (OSSL_PARAM *)params) <= 0) {
        EVP_PKEY_CTX_free(from_data);
        SK_RAISE(handle->provctx, SK_R_UNSUPPORTED_KEY_TYPE,
                 "cannot take over the RSA public key");
        return 0;
    }
    EVP_PKEY_CTX_free(from_data);
    key = OPENSSL_zalloc(sizeof(*key));
    if (key == NULL) {
        EVP_PKEY_free(public_key);
        SK_RAISE(handle->provctx, SK_R_OUT_OF_MEMORY, "importing a key");
        return 0;
    }
    atomic_init(&key->refs, 1);
    key->type = SK_KEY_RSA;
    key->public_key = public_key;
    key->key_ops = SK_OP_ENCRYPT | SK_OP_WRAPKEY;
    key->bits = (unsigned)EVP_PKEY_get_bits(public_key);
    key->security_bits = EVP_PKEY_get_security_bits(public_key);
    key->max_size = EVP_PKEY_get_size(public_key);
    handle->key = key;
    handle->private_handle = 0;
    return 1;
}

static const OSSL_PARAM rsa_public_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ed25519_public_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ec_public_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

/* Serves both export_types and import_types: the same public fields. */
static const OSSL_PARAM *rsa_public_types_of(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? rsa_public_types
                                                             : NULL;
}

static const OSSL_PARAM *ed25519_export_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0
               ? ed25519_public_types
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
static int get_public_param(const sk_key *key, OSSL_PARAM *p)
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
 * whose max-size is 0 (docs/openssl-dispatch.md §2). Unknown names are ignored
 * so combined queries succeed.
 */
static int keymgmt_get_params(void *keydata, OSSL_PARAM params[])
{
    sk_keydata *handle = keydata;
    const sk_key *key;
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
        else if (key->type == SK_KEY_ED25519 &&
                 strcmp(p->key, OSSL_PKEY_PARAM_MANDATORY_DIGEST) == 0)
            /* pure EdDSA hashes inside the signature: no digest at all
               (req, x509, cms and TLS sign with a NULL digest) */
            ok = OSSL_PARAM_set_utf8_string(p, "");
        else if (key->type != SK_KEY_ED25519 &&
                 strcmp(p->key, OSSL_PKEY_PARAM_DEFAULT_DIGEST) == 0)
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
        else if (key->type == SK_KEY_ED25519 &&
                 strcmp(p->key, OSSL_PKEY_PARAM_PUB_KEY) == 0)
            ok = get_public_param(key, p);
        else if (strcmp(p->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY) == 0)
            ok = get_public_param(key, p);
        if (!ok)
            return 0;
    }
    return 1;
}

/* The sizes every key type answers (get_params above). */
#define SK_KEY_SIZE_GETTABLE_PARAMS                                            \
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),                                \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),                   \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL)

static const OSSL_PARAM rsa_gettable[] = {
    SK_KEY_SIZE_GETTABLE_PARAMS,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ec_gettable[] = {
    SK_KEY_SIZE_GETTABLE_PARAMS,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ed25519_gettable[] = {
    SK_KEY_SIZE_GETTABLE_PARAMS,
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ed25519_gettable_params(void *provctx)
{
    return ed25519_gettable;
}

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

/* There is no "EC" signature or key exchange (docs/openssl-dispatch.md §3). */
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

/* The signature of an Ed25519 key is pure EdDSA; no key exchange. */
static const char *ed25519_query_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? SK_NAMES_ED25519_SIGNATURE
                                             : NULL;
}

/* --- key generation in SmartKey (genpkey) ------------------------------ */

#define MAX_KEY_OPS  16
#define MAX_METADATA 64

typedef struct sk_genctx {
    sk_provctx *provctx;
    sk_key_type type;
    int selection;
    size_t bits;                /* RSA */
    unsigned long pub_exponent; /* RSA; 0: SmartKey's default */
    sk_curve curve;             /* EC */
    char *name;
    char *key_ops;  /* the user's comma list, NULL: SmartKey's default */
    int exportable; /* -1: not said */
    unsigned encryption_policy; /* RSA: SK_PADDING_POLICY_*; 0: default */
    unsigned signature_policy;
    char *description;
    char *group_id;
    /* custom metadata, in the order given; a repeated name replaces */
    char *metadata_names[MAX_METADATA];
    char *metadata_values[MAX_METADATA];
    size_t metadata_count;
} sk_genctx;

/* SmartKey's default operations, spelled out when EXPORT is added to them
   (sending key_ops replaces the default as a whole). */
static const char *const rsa_default_ops[] = {
    "SIGN",    "VERIFY",    "ENCRYPT",      "DECRYPT",
    "WRAPKEY", "UNWRAPKEY", "APPMANAGEABLE"};
static const char *const ec_default_ops[] = {"SIGN", "VERIFY", "AGREEKEY",
                                             "APPMANAGEABLE"};
/* an Ed25519 key signs only: SmartKey's agreement takes X25519 keys */
static const char *const ed25519_default_ops[] = {"SIGN", "VERIFY",
                                                  "APPMANAGEABLE"};

static void gen_cleanup(void *genctx)
{
    sk_genctx *gen = genctx;

    if (gen == NULL)
        return;
    OPENSSL_free(gen->name);
    OPENSSL_free(gen->key_ops);
    OPENSSL_free(gen->description);
    OPENSSL_free(gen->group_id);
    for (size_t i = 0; i < gen->metadata_count; i++) {
        OPENSSL_free(gen->metadata_names[i]);
        OPENSSL_free(gen->metadata_values[i]);
    }
    OPENSSL_free(gen);
}

static int set_gen_string(sk_genctx *gen, char **slot, const OSSL_PARAM *p)
{
    char value[SK_PARAM_MAX_BYTES + 1];
    char *copy;

    if (!sk_param_text(gen->provctx, p, value, sizeof(value))) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER, "%s must be a string",
                 p->key);
        return 0;
    }
    copy = OPENSSL_strdup(value);
    if (copy == NULL) {
        SK_RAISE(gen->provctx, SK_R_OUT_OF_MEMORY, "reading %s", p->key);
        return 0;
    }
    OPENSSL_free(*slot);
    *slot = copy;
    return 1;
}

/* What every key generation in SmartKey takes, whatever the key type:
   the name and SmartKey's own settings of the new key. */
#define SK_GEN_SETTABLE_PARAMS                                                 \
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_KEY_NAME, NULL, 0),                  \
        OSSL_PARAM_utf8_string(SMARTKEY_PARAM_KEY_OPS, NULL, 0),               \
        OSSL_PARAM_int(SMARTKEY_PARAM_EXPORTABLE, NULL),                       \
        OSSL_PARAM_utf8_string(SMARTKEY_PARAM_DESCRIPTION, NULL, 0),           \
        OSSL_PARAM_utf8_string(SMARTKEY_PARAM_GROUP, NULL, 0),                 \
        OSSL_PARAM_utf8_string(SMARTKEY_PARAM_METADATA, NULL, 0)

static const OSSL_PARAM rsa_gen_settable[] = {
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_ENCRYPTION_PADDING, NULL, 0),
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_SIGNATURE_PADDING, NULL, 0),
    SK_GEN_SETTABLE_PARAMS,
    OSSL_PARAM_END,
};

static const OSSL_PARAM ec_gen_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    SK_GEN_SETTABLE_PARAMS,
    OSSL_PARAM_END,
};

/* Ed25519: a name and SmartKey's own settings, nothing else to choose */
static const OSSL_PARAM ed25519_gen_settable[] = {
    SK_GEN_SETTABLE_PARAMS,
    OSSL_PARAM_END,
};

static int set_gen_name(sk_genctx *gen, const OSSL_PARAM *p)
{
    return set_gen_string(gen, &gen->name, p);
}

static int set_gen_key_ops(sk_genctx *gen, const OSSL_PARAM *p)
{
    return set_gen_string(gen, &gen->key_ops, p);
}

static int set_gen_exportable(sk_genctx *gen, const OSSL_PARAM *p)
{
    int exportable;

    if (!OSSL_PARAM_get_int(p, &exportable) ||
        (exportable != 0 && exportable != 1)) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER, "%s takes 0 or 1",
                 SMARTKEY_PARAM_EXPORTABLE);
        return 0;
    }
    gen->exportable = exportable;
    return 1;
}

static int set_gen_description(sk_genctx *gen, const OSSL_PARAM *p)
{
    return set_gen_string(gen, &gen->description, p);
}

static int set_gen_group(sk_genctx *gen, const OSSL_PARAM *p)
{
    if (!set_gen_string(gen, &gen->group_id, p))
        return 0;
    if (!sk_is_uuid(gen->group_id, strlen(gen->group_id))) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "%s takes a SmartKey group id such as "
                 "0b5c1c0e-3c1f-4a5e-9f6d-2a4b6c8d0e1f",
                 SMARTKEY_PARAM_GROUP);
        return 0;
    }
    return 1;
}

/* NAME=VALUE, once per name (a repeated name replaces its value). */
static int set_gen_metadata(sk_genctx *gen, const OSSL_PARAM *p)
{
    char text[SK_PARAM_MAX_BYTES + 1];
    char *equals, *name, *value;
    size_t i;

    if (!sk_param_text(gen->provctx, p, text, sizeof(text)) ||
        (equals = strchr(text, '=')) == NULL || equals == text) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "%s takes NAME=VALUE (give it once per name)",
                 SMARTKEY_PARAM_METADATA);
        return 0;
    }
    *equals = '\0';
    for (i = 0; i < gen->metadata_count; i++)
        if (strcmp(gen->metadata_names[i], text) == 0)
            break;
    if (i == MAX_METADATA) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER, "at most %d %s entries",
                 MAX_METADATA, SMARTKEY_PARAM_METADATA);
        return 0;
    }
    value = OPENSSL_strdup(equals + 1);
    name = i < gen->metadata_count ? NULL : OPENSSL_strdup(text);
    if (value == NULL || (i == gen->metadata_count && name == NULL)) {
        OPENSSL_free(value);
        OPENSSL_free(name);
        SK_RAISE(gen->provctx, SK_R_OUT_OF_MEMORY, "reading %s", p->key);
        return 0;
    }
    if (i == gen->metadata_count) {
        gen->metadata_names[i] = name;
        gen->metadata_count++;
    } else {
        OPENSSL_free(gen->metadata_values[i]);
    }
    gen->metadata_values[i] = value;
    return 1;
}

/*
 * A comma list of OpenSSL's padding names (pad-mode's spelling) into
 * SmartKey's policy bits; "any" is SmartKey's wildcard entry.
 */
static int set_gen_padding_policy(sk_genctx *gen, const OSSL_PARAM *p,
                                  int signature, unsigned *policy)
{
    static const struct {
        const char *word;
        unsigned bit;
        int for_encryption, for_signature;
    } words[] = {
        {"any", SK_PADDING_POLICY_ANY, 1, 1},
        {"oaep", SK_PADDING_POLICY_OAEP, 1, 0},
        {"pkcs1", SK_PADDING_POLICY_PKCS1_V15, 1, 1},
        {"none", SK_PADDING_POLICY_RAW_DECRYPT, 1, 0},
        {"pss", SK_PADDING_POLICY_PSS, 0, 1},
    };
    char text[256], *token, *save = NULL;
    unsigned bits = 0;

    if (!sk_param_text(gen->provctx, p, text, sizeof(text)))
        goto bad;
    for (token = strtok_r(text, ", ", &save); token != NULL;
         token = strtok_r(NULL, ", ", &save)) {
        size_t i;

        for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strcasecmp(token, words[i].word) == 0 &&
                (signature ? words[i].for_signature : words[i].for_encryption))
                break;
        if (i == sizeof(words) / sizeof(words[0]))
            goto bad;
        bits |= words[i].bit;
    }
    if (bits == 0)
        goto bad;
    *policy = bits;
    return 1;

bad:
    SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
             "%s takes a comma list of %s", p->key,
             signature ? "pkcs1, pss or any" : "oaep, pkcs1, none or any");
    return 0;
}

static int set_gen_encryption_padding(sk_genctx *gen, const OSSL_PARAM *p)
{
    return set_gen_padding_policy(gen, p, 0, &gen->encryption_policy);
}

static int set_gen_signature_padding(sk_genctx *gen, const OSSL_PARAM *p)
{
    return set_gen_padding_policy(gen, p, 1, &gen->signature_policy);
}

static int set_gen_rsa_bits(sk_genctx *gen, const OSSL_PARAM *p)
{
    if (!OSSL_PARAM_get_size_t(p, &gen->bits) || gen->bits < 1024 ||
        gen->bits > 8192) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "RSA keys in SmartKey have 1024 to 8192 bits");
        return 0;
    }
    return 1;
}

static int set_gen_rsa_e(sk_genctx *gen, const OSSL_PARAM *p)
{
    BIGNUM *e = NULL;
    BN_ULONG word;

    if (!OSSL_PARAM_get_BN(p, &e) || (word = BN_get_word(e)) < 3 ||
        word > 0xffffffffUL || !BN_is_odd(e)) {
        BN_free(e);
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "the RSA public exponent must be odd, at least 3 and fit in "
                 "32 bits");
        return 0;
    }
    BN_free(e);
    gen->pub_exponent = (unsigned long)word;
    return 1;
}

static int set_gen_rsa_primes(sk_genctx *gen, const OSSL_PARAM *p)
{
    size_t primes;

    if (!OSSL_PARAM_get_size_t(p, &primes) || primes != 2) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "SmartKey makes two-prime RSA keys only");
        return 0;
    }
    return 1;
}

static int set_gen_ec_group(sk_genctx *gen, const OSSL_PARAM *p)
{
    char group[64];

    if (!sk_param_text(gen->provctx, p, group, sizeof(group)))
        return 0;
    gen->curve = sk_curve_by_name(group);
    if (gen->curve == SK_CURVE_NONE) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "curve '%.64s': SmartKey EC keys here are on P-256, P-384 "
                 "or P-521",
                 group);
        return 0;
    }
    return 1;
}

static int set_gen_ec_encoding(sk_genctx *gen, const OSSL_PARAM *p)
{
    char encoding[32];

    /* SmartKey keys always name their curve */
    if (!sk_param_text(gen->provctx, p, encoding, sizeof(encoding)) ||
        strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "SmartKey EC keys use named curves only");
        return 0;
    }
    return 1;
}

/* Which parameter sets what, for which key type (0: both). */
static const struct {
    const char *key;
    sk_key_type type;
    int (*set)(sk_genctx *gen, const OSSL_PARAM *p);
} gen_setters[] = {
    {SMARTKEY_PARAM_KEY_NAME, 0, set_gen_name},
    {SMARTKEY_PARAM_KEY_OPS, 0, set_gen_key_ops},
    {SMARTKEY_PARAM_EXPORTABLE, 0, set_gen_exportable},
    {SMARTKEY_PARAM_DESCRIPTION, 0, set_gen_description},
    {SMARTKEY_PARAM_GROUP, 0, set_gen_group},
    {SMARTKEY_PARAM_METADATA, 0, set_gen_metadata},
    {SMARTKEY_PARAM_ENCRYPTION_PADDING, SK_KEY_RSA, set_gen_encryption_padding},
    {SMARTKEY_PARAM_SIGNATURE_PADDING, SK_KEY_RSA, set_gen_signature_padding},
    {OSSL_PKEY_PARAM_RSA_BITS, SK_KEY_RSA, set_gen_rsa_bits},
    {OSSL_PKEY_PARAM_RSA_E, SK_KEY_RSA, set_gen_rsa_e},
    {OSSL_PKEY_PARAM_RSA_PRIMES, SK_KEY_RSA, set_gen_rsa_primes},
    {OSSL_PKEY_PARAM_GROUP_NAME, SK_KEY_EC, set_gen_ec_group},
    {OSSL_PKEY_PARAM_EC_ENCODING, SK_KEY_EC, set_gen_ec_encoding},
};

static int gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    sk_genctx *gen = genctx;

    if (gen == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if (!sk_params_check(gen->provctx, params,
                         gen->type == SK_KEY_RSA  ? rsa_gen_settable
                         : gen->type == SK_KEY_EC ? ec_gen_settable
                                                  : ed25519_gen_settable,
                         NULL, "key generation"))
        return 0;
    for (const OSSL_PARAM *p = params; p->key != NULL; p++)
        for (size_t i = 0; i < sizeof(gen_setters) / sizeof(gen_setters[0]);
             i++)
            if ((gen_setters[i].type == 0 ||
                 gen_setters[i].type == gen->type) &&
                strcmp(p->key, gen_setters[i].key) == 0 &&
                !gen_setters[i].set(gen, p))
                return 0;
    return 1;
}

static void *gen_init(void *provctx, int selection, const OSSL_PARAM params[],
                      sk_key_type type)
{
    sk_genctx *gen;

    if (!SK_CTX_NEW(gen, provctx, "starting key generation"))
        return NULL;
    gen->type = type;
    gen->selection = selection;
    gen->bits = 2048;
    gen->curve = SK_CURVE_P256;
    gen->exportable = -1;
    if (!gen_set_params(gen, params)) {
        gen_cleanup(gen);
        return NULL;
    }
    return gen;
}

static void *rsa_gen_init(void *provctx, int selection,
                          const OSSL_PARAM params[])
{
    return gen_init(provctx, selection, params, SK_KEY_RSA);
}

static void *ec_gen_init(void *provctx, int selection,
                         const OSSL_PARAM params[])
{
    return gen_init(provctx, selection, params, SK_KEY_EC);
}

static void *ed25519_gen_init(void *provctx, int selection,
                              const OSSL_PARAM params[])
{
    sk_genctx *gen = gen_init(provctx, selection, params, SK_KEY_ED25519);

    if (gen != NULL)
        gen->curve = SK_CURVE_ED25519;
    return gen;
}

static const OSSL_PARAM *rsa_gen_settable_params(void *genctx, void *provctx)
{
    return rsa_gen_settable;
}

static const OSSL_PARAM *ec_gen_settable_params(void *genctx, void *provctx)
{
    return ec_gen_settable;
}

static const OSSL_PARAM *ed25519_gen_settable_params(void *genctx,
                                                     void *provctx)
{
    return ed25519_gen_settable;
}

/*
 * The operations to send: the user's comma list (upper-cased, checked for
 * SmartKey's spelling), or SmartKey's default spelled out when EXPORT must
 * be added to it. *count 0 with success means "send none: default".
 */
static int gen_key_ops(sk_genctx *gen, char *buf, size_t buf_len,
                       const char **ops, size_t *count)
{
    int has_export = 0;
    char *token, *save = NULL;

    *count = 0;
    if (gen->key_ops != NULL) {
        if (strlen(gen->key_ops) >= buf_len)
            goto bad;
        strcpy(buf, gen->key_ops);
        for (token = strtok_r(buf, ", ", &save); token != NULL;
             token = strtok_r(NULL, ", ", &save)) {
            for (char *c = token; *c != '\0'; c++) {
                if (!isalnum((unsigned char)*c) && *c != '_')
                    goto bad;
                *c = (char)toupper((unsigned char)*c);
            }
            if (*count == MAX_KEY_OPS)
                goto bad;
            has_export |= strcmp(token, "EXPORT") == 0;
            ops[(*count)++] = token;
        }
        if (*count == 0)
            goto bad;
    } else if (gen->exportable == 1) {
        const char *const *defaults = gen->type == SK_KEY_RSA ? rsa_default_ops
                                      : gen->type == SK_KEY_EC
                                          ? ec_default_ops
                                          : ed25519_default_ops;
        size_t n =
            gen->type == SK_KEY_RSA
                ? sizeof(rsa_default_ops) / sizeof(rsa_default_ops[0])
            : gen->type == SK_KEY_EC
                ? sizeof(ec_default_ops) / sizeof(ec_default_ops[0])
                : sizeof(ed25519_default_ops) / sizeof(ed25519_default_ops[0]);

        for (size_t i = 0; i < n; i++)
            ops[(*count)++] = defaults[i];
    }
    if (has_export && gen->exportable == 0) {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "%s lists EXPORT but %s is 0", SMARTKEY_PARAM_KEY_OPS,
                 SMARTKEY_PARAM_EXPORTABLE);
        return 0;
    }
    if (gen->exportable == 1 && !has_export)
        ops[(*count)++] = "EXPORT";
    return 1;

bad:
    SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
             "%s takes a comma list of at most %d SmartKey operations, e.g. "
             "SIGN,VERIFY,APPMANAGEABLE",
             SMARTKEY_PARAM_KEY_OPS, MAX_KEY_OPS);
    return 0;
}

/*
 * One POST /crypto/v1/keys; its answer already holds the public key, so
 * the handle is complete at once (OpenSSL caches bits and size right
 * after gen, docs/openssl-dispatch.md §7).
 */
/* The generation request of gen (key pairs only, named); ops and ops_buf
   hold its key_ops. 0 with an error raised. */
static int gen_request(sk_genctx *gen, sk_generate_request *req,
                       const char **ops, char *ops_buf, size_t ops_buf_len)
{
    if ((gen->selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0) {
        SK_RAISE(gen->provctx, SK_R_UNSUPPORTED_KEY_TYPE,
                 "SmartKey generates key pairs only, not parameters");
        return 0;
    }
    if (gen->name == NULL || gen->name[0] == '\0') {
        SK_RAISE(gen->provctx, SK_R_INVALID_PARAMETER,
                 "a key made in SmartKey needs a name: -pkeyopt %s:NAME",
                 SMARTKEY_PARAM_KEY_NAME);
        return 0;
    }
    memset(req, 0, sizeof(*req));
    req->name = gen->name;
    if (gen->type == SK_KEY_RSA) {
        req->obj_type = "RSA";
        req->key_size = (unsigned)gen->bits;
        req->pub_exponent = gen->pub_exponent;
    } else {
        /* Ed25519 too: an EC object on curve Ed25519
           (docs/smartkey-api.md §3.1) */
        req->obj_type = "EC";
        req->elliptic_curve = sk_curve_smartkey_name(gen->curve);
    }
    if (!gen_key_ops(gen, ops_buf, ops_buf_len, ops, &req->key_ops_count))
        return 0;
    req->key_ops = req->key_ops_count > 0 ? ops : NULL;
    req->encryption_policy = gen->encryption_policy;
    req->signature_policy = gen->signature_policy;
    req->description = gen->description;
    req->group_id = gen->group_id;
    req->metadata_names = (const char *const *)gen->metadata_names;
    req->metadata_values = (const char *const *)gen->metadata_values;
    req->metadata_count = gen->metadata_count;
    return 1;
}

/* The key SmartKey makes for req, checked to be the kind gen asked for;
   NULL with an error raised. */
static sk_key *generate_in_smartkey(sk_genctx *gen,
                                    const sk_generate_request *req)
{
    sk_client *client = sk_provctx_client(gen->provctx);
    sk_key_info *info = NULL;
    sk_error err;
    sk_key *key;
    char subject[256];
    int ok;

    if (client == NULL)
        return NULL;
    memset(&err, 0, sizeof(err));
    /* libcurl's own TLS errors are summed up in err (as in key.c) */
    sk_set_error_mark(gen->provctx);
    ok = sk_client_generate_key(client, req, &info, &err);
    sk_pop_error_to_mark(gen->provctx);
    if (!ok) {
        snprintf(subject, sizeof(subject), "new %s key '%.200s'", req->obj_type,
                 gen->name);
        SK_RAISE_CLIENT(gen->provctx, subject, &err);
        SK_RAISE(gen->provctx, SK_R_KEY_GENERATION_FAILED,
                 "SmartKey did not make %s key '%.200s'", req->obj_type,
                 gen->name);
        return NULL;
    }
    key = sk_key_from_info(gen->provctx, info);
    sk_key_info_free(info);
    if (key != NULL && (key->type != gen->type || !key->has_private)) {
        SK_RAISE(gen->provctx, SK_R_BAD_RESPONSE,
                 "SmartKey answered the generation of '%.200s' with a "
                 "different kind of key (%s)",
                 gen->name, key->kid);
        sk_key_free(key);
        return NULL;
    }
    return key;
}

static void *keymgmt_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    sk_genctx *gen = genctx;
    const char *ops[MAX_KEY_OPS + 1];
    char ops_buf[512];
    sk_generate_request req;
    sk_keydata *keydata;
    sk_key *key;

    if (gen == NULL || !gen_request(gen, &req, ops, ops_buf, sizeof(ops_buf)))
        return NULL;
    key = generate_in_smartkey(gen, &req);
    if (key == NULL)
        return NULL;
    keydata = keymgmt_new(gen->provctx);
    if (keydata == NULL) {
        sk_key_free(key);
        return NULL;
    }
    keydata->key = key;
    keydata->private_handle = 1;
    SK_DEBUG(2, "generated %s key '%.200s' (%s) in SmartKey", req.obj_type,
             gen->name, key->kid);
    return keydata;
}

/* The entries the key managers share (alg: rsa, ec or ed25519). */
#define SK_KEYMGMT_FUNCTIONS(alg)                                              \
    SK_DISPATCH(KEYMGMT_NEW, keymgmt_new),                                     \
        SK_DISPATCH(KEYMGMT_FREE, keymgmt_free),                               \
        SK_DISPATCH(KEYMGMT_DUP, keymgmt_dup),                                 \
        SK_DISPATCH(KEYMGMT_HAS, keymgmt_has),                                 \
        SK_DISPATCH(KEYMGMT_MATCH, keymgmt_match),                             \
        SK_DISPATCH(KEYMGMT_EXPORT, keymgmt_export),                           \
        SK_DISPATCH(KEYMGMT_GET_PARAMS, keymgmt_get_params),                   \
        SK_DISPATCH(KEYMGMT_LOAD, alg##_load),                                 \
        SK_DISPATCH(KEYMGMT_GEN_INIT, alg##_gen_init),                         \
        SK_DISPATCH(KEYMGMT_GEN_SET_PARAMS, gen_set_params),                   \
        SK_DISPATCH(KEYMGMT_GEN_SETTABLE_PARAMS, alg##_gen_settable_params),   \
        SK_DISPATCH(KEYMGMT_GEN, keymgmt_gen),                                 \
        SK_DISPATCH(KEYMGMT_GEN_CLEANUP, gen_cleanup),                         \
        SK_DISPATCH(KEYMGMT_GETTABLE_PARAMS, alg##_gettable_params),           \
        SK_DISPATCH(KEYMGMT_QUERY_OPERATION_NAME, alg##_query_operation_name)

const OSSL_DISPATCH sk_rsa_keymgmt_functions[] = {
    SK_KEYMGMT_FUNCTIONS(rsa),
    /* the one import: public keys of other providers (rsa_import) */
    SK_DISPATCH(KEYMGMT_EXPORT_TYPES, rsa_public_types_of),
    SK_DISPATCH(KEYMGMT_IMPORT, rsa_import),
    SK_DISPATCH(KEYMGMT_IMPORT_TYPES, rsa_public_types_of),
    {0, NULL},
};

const OSSL_DISPATCH sk_ec_keymgmt_functions[] = {
    SK_KEYMGMT_FUNCTIONS(ec),
    SK_DISPATCH(KEYMGMT_EXPORT_TYPES, ec_export_types),
    {0, NULL},
};

const OSSL_DISPATCH sk_ed25519_keymgmt_functions[] = {
    SK_KEYMGMT_FUNCTIONS(ed25519),
    SK_DISPATCH(KEYMGMT_EXPORT_TYPES, ed25519_export_types),
    {0, NULL},
};
