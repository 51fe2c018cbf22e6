/*
 * The key-reference file format (SMARTKEY_KEY_REFERENCE_PEM_LABEL in
 * smartkey.h): a small DER structure naming a SmartKey key, shared by the
 * encoder that writes it and the decoders that read it back.
 */
#ifndef SMARTKEY_KEYREF_H
#define SMARTKEY_KEYREF_H

#include <stddef.h>

#include "key.h"

/* Reference files are a few hundred bytes; bigger input is not one. */
#define SK_KEYREF_MAX_FILE 65536

typedef struct sk_keyref_fields {
    sk_key_type type;
    char kid[37];
    char *name; /* NULL when the file has none; OPENSSL_free() */
} sk_keyref_fields;

/* DER of key's reference in *der (OPENSSL_free). 0 on failure. */
int sk_keyref_to_der(const sk_key *key, unsigned char **der, size_t *der_len);

/*
 * Parses a reference. 0 when the bytes are not one (wrong structure,
 * version, key type or a kid that is not a UUID); *why then says what is
 * wrong in words fit for an error message.
 */
int sk_keyref_from_der(const unsigned char *der, size_t der_len,
                       sk_keyref_fields *out, const char **why);
void sk_keyref_fields_clear(sk_keyref_fields *fields);

#endif
