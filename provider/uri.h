/*
 * smartkey: URIs (syntax in include/smartkey/smartkey.h). Pure parsing: no
 * provider state, so unit tests link it alone.
 */
#ifndef SMARTKEY_URI_H
#define SMARTKEY_URI_H

#include <stddef.h>

typedef enum sk_uri_type {
    SK_URI_TYPE_ANY = 0, /* the key as it is: private if it has one */
    SK_URI_TYPE_PRIVATE,
    SK_URI_TYPE_PUBLIC,
    SK_URI_TYPE_CERT, /* a CERTIFICATE object, or the certificate of a key */
} sk_uri_type;

typedef struct sk_uri {
    char *name; /* percent-decoded; NULL unless name= was given */
    char *kid;  /* NULL unless kid= was given */
    sk_uri_type type;
} sk_uri;

/*
 * Parses uri into out (zeroed first). Neither name nor kid set means "every
 * key". On failure returns 0 and writes a sentence for the user into why.
 */
int sk_uri_parse(const char *uri, sk_uri *out, char *why, size_t why_len);
void sk_uri_clear(sk_uri *uri);

#endif
