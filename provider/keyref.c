/*
 * The DER inside a key-reference file (smartkey.h): identity only, so the
 * file may be copied, backed up or put in an application's configuration
 * like a certificate. SmartKey is asked for the key when it is loaded.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/crypto.h>

#include "client.h"
#include "keyref.h"
#include "uri.h"

#define KEYREF_VERSION 1

typedef struct sk_keyref_asn1 {
    ASN1_INTEGER *version;
    ASN1_UTF8STRING *key_type;
    ASN1_UTF8STRING *kid;
    ASN1_UTF8STRING *name;
} SK_KEYREF_ASN1;

/* clang-format reads OpenSSL's ASN.1 template macros as one statement
   running into the next function: it is off until that function's body */
/* clang-format off */
ASN1_SEQUENCE(SK_KEYREF_ASN1) = {
    ASN1_SIMPLE(SK_KEYREF_ASN1, version, ASN1_INTEGER),
    ASN1_SIMPLE(SK_KEYREF_ASN1, key_type, ASN1_UTF8STRING),
    ASN1_SIMPLE(SK_KEYREF_ASN1, kid, ASN1_UTF8STRING),
    ASN1_EXP_OPT(SK_KEYREF_ASN1, name, ASN1_UTF8STRING, 0),
} static_ASN1_SEQUENCE_END(SK_KEYREF_ASN1)

int sk_keyref_to_der(const sk_key *key, unsigned char **der, size_t *der_len)
{
    /* clang-format on */
    SK_KEYREF_ASN1 *ref;
    const char *type = sk_key_type_name(key->type);
    unsigned char *out = NULL;
    int len = -1;

    *der = NULL;
    /* a key that is not held in SmartKey (an imported public key) has
       nothing to refer to */
    if (key->kid[0] == '\0')
        return 0;
    ref = (SK_KEYREF_ASN1 *)ASN1_item_new(ASN1_ITEM_rptr(SK_KEYREF_ASN1));
    if (ref == NULL)
        return 0;
    if (ASN1_INTEGER_set(ref->version, KEYREF_VERSION) &&
        ASN1_STRING_set(ref->key_type, type, -1) &&
        ASN1_STRING_set(ref->kid, key->kid, -1) &&
        (key->name == NULL || ((ref->name = ASN1_UTF8STRING_new()) != NULL &&
                               ASN1_STRING_set(ref->name, key->name, -1))))
        len = ASN1_item_i2d((ASN1_VALUE *)ref, &out,
                            ASN1_ITEM_rptr(SK_KEYREF_ASN1));
    ASN1_item_free((ASN1_VALUE *)ref, ASN1_ITEM_rptr(SK_KEYREF_ASN1));
    if (len <= 0)
        return 0;
    *der = out;
    *der_len = (size_t)len;
    return 1;
}

/* The key's name from a reference, as a C string: 0 with *why set when
   it cannot be one. */
static int copy_name(const ASN1_STRING *name, char **out, const char **why)
{
    int len = ASN1_STRING_length(name);

    *out = OPENSSL_malloc((size_t)len + 1);
    if (*out == NULL) {
        *why = "out of memory";
        return 0;
    }
    memcpy(*out, ASN1_STRING_get0_data(name), (size_t)len);
    (*out)[len] = '\0';
    /* a name with a NUL inside would print truncated in errors */
    if (strlen(*out) != (size_t)len) {
        *why = "its key name holds a NUL byte";
        return 0;
    }
    return 1;
}

int sk_keyref_from_der(const unsigned char *der, size_t der_len,
                       sk_keyref_fields *out, const char **why)
{
    const unsigned char *p = der;
    SK_KEYREF_ASN1 *ref;
    int ok = 0;

    memset(out, 0, sizeof(*out));
    *why = "it is not DER of a SmartKey key reference";
    if (der == NULL || der_len == 0 || der_len > SK_KEYREF_MAX_FILE)
        return 0;
    ref = (SK_KEYREF_ASN1 *)ASN1_item_d2i(NULL, &p, (long)der_len,
                                          ASN1_ITEM_rptr(SK_KEYREF_ASN1));
    if (ref == NULL)
        return 0;
    /* trailing bytes mean a damaged or hand-edited file */
    if (p != der + der_len)
        goto done;
    if (ASN1_INTEGER_get(ref->version) != KEYREF_VERSION) {
        *why = "its version is not 1 (written by a newer smartkey?)";
        goto done;
    }
    if (!sk_key_type_of_name(ASN1_STRING_get0_data(ref->key_type),
                             (size_t)ASN1_STRING_length(ref->key_type),
                             &out->type)) {
        *why = "its key type is not RSA, EC or ED25519";
        goto done;
    }
    if (!sk_is_uuid((const char *)ASN1_STRING_get0_data(ref->kid),
                    (size_t)ASN1_STRING_length(ref->kid))) {
        *why = "its kid is not a UUID";
        goto done;
    }
    memcpy(out->kid, ASN1_STRING_get0_data(ref->kid), 36);
    out->kid[36] = '\0';
    if (ref->name != NULL && !copy_name(ref->name, &out->name, why))
        goto done;
    ok = 1;
done:
    ASN1_item_free((ASN1_VALUE *)ref, ASN1_ITEM_rptr(SK_KEYREF_ASN1));
    if (!ok)
        sk_keyref_fields_clear(out);
    return ok;
}

void sk_keyref_fields_clear(sk_keyref_fields *fields)
{
    OPENSSL_free(fields->name);
    fields->name = NULL;
}
