#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "internal.h"

static int wrong_type(const char *field, const char *expected,
                      const char *request, sk_error *err)
{
    sk_error_set(err, SK_ERR_PROTOCOL, request,
                 "field \"%s\" of the response is not %s", field, expected);
    return -1;
}

/* SmartKey treats null exactly like an absent field (docs/smartkey-api.md §1).
 */
static json_t *field_of(json_t *obj, const char *field)
{
    json_t *value = json_is_object(obj) ? json_object_get(obj, field) : NULL;

    return json_is_null(value) ? NULL : value;
}

int sk_json_string(json_t *obj, const char *field, const char **out,
                   const char *request, sk_error *err)
{
    json_t *value = field_of(obj, field);

    if (value == NULL)
        return 0;
    if (!json_is_string(value))
        return wrong_type(field, "a string", request, err);
    /* An embedded NUL would silently shorten names and kids. */
    if (strlen(json_string_value(value)) != json_string_length(value))
        return wrong_type(field, "a string without NUL", request, err);
    *out = json_string_value(value);
    return 1;
}

int sk_json_bool(json_t *obj, const char *field, int *out, const char *request,
                 sk_error *err)
{
    json_t *value = field_of(obj, field);

    if (value == NULL)
        return 0;
    if (!json_is_boolean(value))
        return wrong_type(field, "a boolean", request, err);
    *out = json_is_true(value);
    return 1;
}

int sk_json_uint(json_t *obj, const char *field, unsigned *out,
                 const char *request, sk_error *err)
{
    json_t *value = field_of(obj, field);
    json_int_t n;

    if (value == NULL)
        return 0;
    if (!json_is_integer(value))
        return wrong_type(field, "an integer", request, err);
    n = json_integer_value(value);
    if (n < 0 || n > 1000000)
        return wrong_type(field, "an integer in range", request, err);
    *out = (unsigned)n;
    return 1;
}

/* 1 + the value of each Base64 character (RFC 4648 §4 alphabet), 0 for
   every other byte (those above 127 included). */
static const unsigned char base64_value[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  63, 0,  0,  0,  64, 53, 54, 55, 56, 57, 58, 59, 60, 61,
    62, 0,  0,  0,  0,  0,  0,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
    12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 0,  0,  0,  0,
    0,  0,  27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 0,  0,  0,  0,  0,
};

/*
 * One pass, no OpenSSL: the checks the strict reading needs (the length a
 * multiple of 4, the alphabet, at most two '=' and only at the very end)
 * and the decoding itself, which is OpenSSL's (EVP_DecodeBlock): the bits
 * below the last byte of a padded group are ignored, as it ignores them.
 */
unsigned char *sk_base64_decode(const char *in, size_t in_len, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t padding = 0, groups, n = 0;
    unsigned char *out;

    if (in_len % 4 != 0 || in_len > INT_MAX)
        return NULL;
    if (in_len > 0 && p[in_len - 1] == '=')
        padding = in_len > 1 && p[in_len - 2] == '=' ? 2 : 1;
    out = OPENSSL_malloc(in_len / 4 * 3 + 1);
    if (out == NULL)
        return NULL;
    groups = in_len / 4;
    for (size_t g = 0; g < groups; g++, p += 4) {
        int last = g + 1 == groups;
        unsigned a = base64_value[p[0]], b = base64_value[p[1]];
        unsigned c = last && padding == 2 ? 1 : base64_value[p[2]];
        unsigned d = last && padding > 0 ? 1 : base64_value[p[3]];

        if (a-- == 0 || b-- == 0 || c-- == 0 || d-- == 0) {
            OPENSSL_clear_free(out, in_len / 4 * 3 + 1);
            return NULL;
        }
        out[n++] = (unsigned char)(a << 2 | b >> 4);
        if (!last || padding < 2)
            out[n++] = (unsigned char)(b << 4 | c >> 2);
        if (!last || padding < 1)
            out[n++] = (unsigned char)(c << 6 | d);
    }
    *out_len = n;
    return out;
}

int sk_json_base64(json_t *obj, const char *field, unsigned char **out,
                   size_t *out_len, const char *request, sk_error *err)
{
    json_t *value = field_of(obj, field);
    unsigned char *bytes;

    if (value == NULL)
        return 0;
    if (!json_is_string(value))
        return wrong_type(field, "a string", request, err);
    bytes = sk_base64_decode(json_string_value(value),
                             json_string_length(value), out_len);
    if (bytes == NULL)
        return wrong_type(field, "valid Base64", request, err);
    *out = bytes;
    return 1;
}

int sk_json_need_string(json_t *obj, const char *field, const char **out,
                        const char *request, sk_error *err)
{
    int found = sk_json_string(obj, field, out, request, err);

    if (found == 0)
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "field \"%s\" missing from the response", field);
    return found == 1;
}

int sk_json_need_base64(json_t *obj, const char *field, unsigned char **out,
                        size_t *out_len, const char *request, sk_error *err)
{
    int found = sk_json_base64(obj, field, out, out_len, request, err);

    if (found == 0)
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "field \"%s\" missing from the response", field);
    return found == 1;
}

json_t *sk_json_from_bytes(const unsigned char *in, size_t len)
{
    size_t b64_len = (len + 2) / 3 * 4;
    char *b64;
    json_t *value;

    if (len > INT_MAX / 2)
        return NULL;
    b64 = OPENSSL_malloc(b64_len + 1);
    if (b64 == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)b64, in, (int)len);
    value = json_stringn(b64, b64_len);
    /* The bytes may be a plaintext or a digest of one. */
    OPENSSL_clear_free(b64, b64_len + 1);
    return value;
}

int sk_is_uuid(const char *s, size_t len)
{
    if (s == NULL || len != 36)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

void sk_json_dumped_free(char *text)
{
    json_malloc_t malloc_fn;
    json_free_t free_fn;

    if (text == NULL)
        return;
    OPENSSL_cleanse(text, strlen(text));
    json_get_alloc_funcs(&malloc_fn, &free_fn);
    free_fn(text);
}
