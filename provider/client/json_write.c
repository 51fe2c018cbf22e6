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
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
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
   OPENSSL_malloc'd buffer (the copy jansson made is wiped). */
static char *dumped(json_t *value, size_t *len)
{
    char *text = json_dumps(value, JSON_COMPACT), *copy;

    if (text == NULL)
        return NULL;
    *len = strlen(text);
    copy = OPENSSL_malloc(*len + 1);
    if (copy != NULL)
        memcpy(copy, text, *len + 1);
    OPENSSL_cleanse(text, *len);
    free(text);
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
