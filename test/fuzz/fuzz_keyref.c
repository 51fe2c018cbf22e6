/*
 * libFuzzer harness: key-reference files (smartkey.h,
 * SMARTKEY_KEY_REFERENCE_PEM_LABEL). Anyone who can write a file an
 * application loads chooses these bytes. Odd first byte: the bytes are the
 * DER inside the PEM; even: a whole PEM file, read as the decoder does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "keyref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const unsigned char *der, size_t len)
{
    sk_keyref_fields fields;
    const char *why = NULL;

    if (sk_keyref_from_der(der, len, &fields, &why)) {
        if (strlen(fields.kid) != 36 ||
            (fields.type != SK_KEY_RSA && fields.type != SK_KEY_EC))
            abort();
        sk_keyref_fields_clear(&fields);
    } else if (why == NULL) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    BIO *bio;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;

    if (size < 1)
        return 0;
    if (data[0] & 1) {
        parse(data + 1, size - 1);
        return 0;
    }
    bio = BIO_new_mem_buf(data + 1, (int)(size - 1));
    if (bio == NULL)
        return 0;
    if (PEM_read_bio(bio, &name, &header, &der, &len) &&
        strcmp(name, SMARTKEY_KEY_REFERENCE_PEM_LABEL) == 0)
        parse(der, (size_t)len);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    return 0;
}
