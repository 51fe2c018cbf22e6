/*
 * The request bodies' JSON text: the bytes json_dumps(value, JSON_COMPACT)
 * makes, in two passes over the tree (the exact length, then the text)
 * into one buffer. jansson's dumper goes through a callback, a growing
 * buffer and a UTF-8 decoder per character: for a decrypt request (a
 * 344-character Base64 cipher) it cost a quarter of the client's
 * instructions per request (docs/performance.md, "Client CPU: provider vs
 * raw libcurl"). Strings are copied in runs between the characters that
 * need an escape; jansson's strings are valid UTF-8, passed on unchanged
 * like jansson does without JSON_ENSURE_ASCII. Object members come in
 * json_object_iter's order, as json_dumps writes them (insertion order
 * since jansson 2.14, the hash order before). Reals (no request has one)
 * go through json_dumps itself.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "internal.h"

/* The escape of byte c inside a JSON string: 0 for none, else its length
   (2 for \" \\ \b \f \n \r \t, 6 for \u00XX). */
static size_t escape_len(unsigned char c)
{
    if (c == '"' || c == '\\')
        return 2;
    if (c >= 0x20)
        return 0;
    switch (c) {
    case '\b':
    case '\f':
    case '\n':
    case '\r':
    case '\t':
        return 2;
    default:
        return 6;
    }
}

static size_t string_len(const char *s, size_t len)
{
    size_t n = len + 2;

    for (size_t i = 0; i < len; i++) {
        size_t e = escape_len((unsigned char)s[i]);

        if (e != 0)
            n += e - 1;
    }
    return n;
}

static char *put_string(char *p, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;

    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (escape_len(c) == 0)
            continue;
        memcpy(p, s + run, i - run);
        p += i - run;
        run = i + 1;
        *p++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *p++ = (char)c;
            break;
        case '\b':
            *p++ = 'b';
            break;
        case '\f':
            *p++ = 'f';
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        default:
            memcpy(p, "u00", 3);
            p[3] = hex[c >> 4];
            p[4] = hex[c & 15];
            p += 5;
        }
    }
    memcpy(p, s + run, len - run);
    p += len - run;
    *p++ = '"';
    return p;
}

/* The length of value's text; 0 when it holds a real (or is not JSON). */
static size_t value_len(json_t *value)
{
    char digits[32];
    size_t n, item;

    switch (json_typeof(value)) {
    case JSON_OBJECT:
        n = 2;
        for (void *it = json_object_iter(value); it != NULL;
             it = json_object_iter_next(value, it)) {
            const char *key = json_object_iter_key(it);

            item = value_len(json_object_iter_value(it));
            if (item == 0)
                return 0;
            n += string_len(key, strlen(key)) + 1 + item + 1;
        }
        return json_object_size(value) > 0 ? n - 1 : n;
    case JSON_ARRAY:
        n = 2;
        for (size_t i = 0; i < json_array_size(value); i++) {
            item = value_len(json_array_get(value, i));
            if (item == 0)
                return 0;
            n += item + 1;
        }
        return json_array_size(value) > 0 ? n - 1 : n;
    case JSON_STRING:
        return string_len(json_string_value(value), json_string_length(value));
    case JSON_INTEGER:
        return (size_t)snprintf(digits, sizeof(digits), "%" JSON_INTEGER_FORMAT,
                                json_integer_value(value));
    case JSON_TRUE:
        return 4;
    case JSON_FALSE:
        return 5;
    case JSON_NULL:
        return 4;
    default:
        return 0;
    }
}

/* Writes value's text (value_len bytes and a NUL) at p; returns its end. */
static char *put_value(char *p, json_t *value)
{
    size_t i = 0;

    switch (json_typeof(value)) {
    case JSON_OBJECT:
        *p++ = '{';
        for (void *it = json_object_iter(value); it != NULL;
             it = json_object_iter_next(value, it)) {
            const char *key = json_object_iter_key(it);

            if (i++ > 0)
                *p++ = ',';
            p = put_string(p, key, strlen(key));
            *p++ = ':';
            p = put_value(p, json_object_iter_value(it));
        }
        *p++ = '}';
        break;
    case JSON_ARRAY:
        *p++ = '[';
        for (; i < json_array_size(value); i++) {
            if (i > 0)
                *p++ = ',';
            p = put_value(p, json_array_get(value, i));
        }
        *p++ = ']';
        break;
    case JSON_STRING:
        p = put_string(p, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        /* value_len measured it: the room for the digits and the NUL */
        p += sprintf(p, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        break;
    case JSON_TRUE:
        memcpy(p, "true", 4);
        p += 4;
        break;
    case JSON_FALSE:
        memcpy(p, "false", 5);
        p += 5;
        break;
    default:
        memcpy(p, "null", 4);
        p += 4;
        break;
    }
    *p = '\0';
    return p;
}

/* A tree the writer does not write: jansson's text, moved into an
   OPENSSL_malloc'd buffer (jansson's copy is wiped and freed). */
static char *dumped(json_t *value, size_t *len)
{
    char *text = json_dumps(value, JSON_COMPACT), *copy;

    if (text == NULL)
        return NULL;
    *len = strlen(text);
    copy = OPENSSL_malloc(*len + 1);
    if (copy != NULL)
        memcpy(copy, text, *len + 1);
    sk_json_dumped_free(text);
    return copy;
}

char *sk_json_compact(json_t *value, size_t *len)
{
    size_t n;
    char *text;

    if (!json_is_object(value) && !json_is_array(value))
        return NULL; /* as json_dumps without JSON_ENCODE_ANY */
    n = value_len(value);
    if (n == 0)
        return dumped(value, len);
    text = OPENSSL_malloc(n + 1);
    if (text == NULL)
        return NULL;
    *len = (size_t)(put_value(text, value) - text);
    return text;
}

/* ---- bodies written directly ---- */

static void text_reserve(sk_json_text *t, size_t more)
{
    size_t cap;
    char *buf;

    if (t->failed || t->len + more + 1 <= t->cap)
        return;
    cap = t->cap > 0 ? t->cap : 512;
    while (cap < t->len + more + 1)
        cap *= 2;
    /* the text may hold a plaintext's Base64: the old buffer is wiped */
    buf = OPENSSL_clear_realloc(t->buf, t->cap, cap);
    if (buf == NULL) {
        t->failed = 1;
        return;
    }
    t->buf = buf;
    t->cap = cap;
}

void sk_json_text_raw(sk_json_text *t, const char *json)
{
    size_t n = strlen(json);

    text_reserve(t, n);
    if (t->failed)
        return;
    memcpy(t->buf + t->len, json, n + 1);
    t->len += n;
}

void sk_json_text_string(sk_json_text *t, const char *s)
{
    size_t len = strlen(s);

    text_reserve(t, string_len(s, len));
    if (t->failed)
        return;
    t->len = (size_t)(put_string(t->buf + t->len, s, len) - t->buf);
    t->buf[t->len] = '\0';
}

void sk_json_text_base64(sk_json_text *t, const unsigned char *in, size_t len)
{
    size_t n = (len + 2) / 3 * 4;

    if (len > INT_MAX / 2) {
        t->failed = 1;
        return;
    }
    text_reserve(t, n + 2);
    if (t->failed)
        return;
    t->buf[t->len++] = '"';
    EVP_EncodeBlock((unsigned char *)t->buf + t->len, in, (int)len);
    t->len += n;
    t->buf[t->len++] = '"';
    t->buf[t->len] = '\0';
}

char *sk_json_text_finish(sk_json_text *t, size_t *len)
{
    char *text = t->buf;

    if (t->failed) {
        sk_json_text_free(t);
        return NULL;
    }
    *len = t->len;
    memset(t, 0, sizeof(*t));
    return text;
}

void sk_json_text_free(sk_json_text *t)
{
    OPENSSL_clear_free(t->buf, t->cap);
    memset(t, 0, sizeof(*t));
}

/* RFC 3629, as jansson checks its strings: no overlong forms, no
   surrogates, nothing above U+10FFFF. */
int sk_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned c = *p, n, cp;

        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        if ((size_t)(end - p) <= n)
            return 0;
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        p += n + 1;
    }
    return 1;
}
