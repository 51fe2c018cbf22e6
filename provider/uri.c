#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include <smartkey/smartkey.h>

#include "client.h"
#include "uri.h"

/* Decodes value[0..len) into a new string; NULL on a bad escape or %00. */
static char *percent_decode(const char *value, size_t len, char *why,
                            size_t why_len, const char *attr)
{
    char *decoded = OPENSSL_malloc(len + 1);
    size_t in, out = 0;

    if (decoded == NULL) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    for (in = 0; in < len; in++) {
        int high, low;

        if (value[in] != '%') {
            decoded[out++] = value[in];
            continue;
        }
        high = in + 2 < len ? OPENSSL_hexchar2int((unsigned char)value[in + 1])
                            : -1;
        low =
            high >= 0 ? OPENSSL_hexchar2int((unsigned char)value[in + 2]) : -1;
        if (high < 0 || low < 0 || (high == 0 && low == 0)) {
            snprintf(why, why_len,
                     "bad percent-escape in %s= (write '%%' as %%25 and ';' "
                     "as %%3B)",
                     attr);
            OPENSSL_free(decoded);
            return NULL;
        }
        decoded[out++] = (char)(high * 16 + low);
        in += 2;
    }
    decoded[out] = '\0';
    return decoded;
}

#define NOT_A_KID                                                              \
    "kid= must be a key id such as 0b5c1c0e-3c1f-4a5e-9f6d-2a4b6c8d0e1f"

/* Keeps decoded in *slot (name=, kid=): refused (and freed) when the
   attribute was given already, or when problem says what is wrong with it. */
static int keep_text_attribute(char **slot, char *decoded, const char *name,
                               const char *problem, char *why, size_t why_len)
{
    if (*slot != NULL) {
        snprintf(why, why_len, "attribute %s= given twice", name);
    } else if (problem != NULL) {
        snprintf(why, why_len, "%s", problem);
    } else {
        *slot = decoded;
        return 1;
    }
    OPENSSL_free(decoded);
    return 0;
}

/* Attribute names compare case-sensitively, as in RFC 7512 (pkcs11:). */
static int set_attribute(sk_uri *out, const char *attr, size_t attr_len,
                         const char *value, size_t value_len, char *why,
                         size_t why_len)
{
    char name[16];
    char *decoded;

    if (attr_len == 0 || attr_len >= sizeof(name)) {
        snprintf(why, why_len,
                 "expected name=, kid= or type= attributes separated by ';'");
        return 0;
    }
    memcpy(name, attr, attr_len);
    name[attr_len] = '\0';
    decoded = percent_decode(value, value_len, why, why_len, name);
    if (decoded == NULL)
        return 0;

    if (strcmp(name, SMARTKEY_URI_ATTR_NAME) == 0)
        return keep_text_attribute(&out->name, decoded, name,
                                   decoded[0] == '\0' ? "empty key name" : NULL,
                                   why, why_len);
    if (strcmp(name, SMARTKEY_URI_ATTR_KID) == 0)
        return keep_text_attribute(
            &out->kid, decoded, name,
            sk_is_uuid(decoded, strlen(decoded)) ? NULL : NOT_A_KID, why,
            why_len);
    if (strcmp(name, SMARTKEY_URI_ATTR_TYPE) == 0) {
        if (out->type != SK_URI_TYPE_ANY)
            goto duplicate;
        if (strcmp(decoded, "private") == 0) {
            out->type = SK_URI_TYPE_PRIVATE;
        } else if (strcmp(decoded, "public") == 0) {
            out->type = SK_URI_TYPE_PUBLIC;
        } else if (strcmp(decoded, "cert") == 0) {
            out->type = SK_URI_TYPE_CERT;
        } else {
            snprintf(why, why_len,
                     "type= must be 'private', 'public' or 'cert'");
            goto fail;
        }
        OPENSSL_free(decoded);
        return 1;
    }
    snprintf(why, why_len,
             "unknown attribute '%.15s' (expected name=, kid= or type=)", name);
    goto fail;

duplicate:
    snprintf(why, why_len, "attribute %s= given twice", name);
fail:
    OPENSSL_free(decoded);
    return 0;
}

int sk_uri_parse(const char *uri, sk_uri *out, char *why, size_t why_len)
{
    size_t scheme_len = strlen(SMARTKEY_URI_SCHEME);
    const char *p;

    memset(out, 0, sizeof(*out));
    if (uri == NULL || strncasecmp(uri, SMARTKEY_URI_SCHEME, scheme_len) != 0 ||
        uri[scheme_len] != ':') {
        snprintf(why, why_len, "a key URI starts with '%s:'",
                 SMARTKEY_URI_SCHEME);
        return 0;
    }
    p = uri + scheme_len + 1;
    if (strncmp(p, "//", 2) == 0)
        p += 2;

    while (*p != '\0') {
        size_t segment_len = strcspn(p, ";");
        const char *equals = memchr(p, '=', segment_len);

        /* tolerate empty segments ("a=b;;c=d", a trailing ';') */
        if (segment_len > 0) {
            if (equals == NULL) {
                snprintf(why, why_len,
                         "expected attribute=value, got '%.*s' (write ';' "
                         "inside a name as %%3B)",
                         (int)(segment_len > 64 ? 64 : segment_len), p);
                goto fail;
            }
            if (!set_attribute(out, p, (size_t)(equals - p), equals + 1,
                               segment_len - (size_t)(equals - p) - 1, why,
                               why_len))
                goto fail;
        }
        p += segment_len;
        if (*p == ';')
            p++;
    }
    if (out->name != NULL && out->kid != NULL) {
        snprintf(why, why_len, "give either name= or kid=, not both");
        goto fail;
    }
    return 1;

fail:
    sk_uri_clear(out);
    return 0;
}

void sk_uri_clear(sk_uri *uri)
{
    OPENSSL_free(uri->name);
    OPENSSL_free(uri->kid);
    memset(uri, 0, sizeof(*uri));
}
