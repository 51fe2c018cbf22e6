#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "internal.h"

/*
 * Length of the well-formed UTF-8 sequence at in[0..len) for a code point
 * from U+00A0 on (printable beyond ASCII), or 0: C1 controls (U+0080 to
 * U+009F, which some terminals obey), overlong forms, surrogates, stray
 * or truncated bytes are escaped byte by byte instead.
 */
static size_t utf8_printable(const unsigned char *in, size_t len)
{
    unsigned long cp;
    size_t n;

    if (in[0] >= 0xc2 && in[0] <= 0xdf)
        n = 2, cp = in[0] & 0x1f;
    else if (in[0] >= 0xe0 && in[0] <= 0xef)
        n = 3, cp = in[0] & 0x0f;
    else if (in[0] >= 0xf0 && in[0] <= 0xf4)
        n = 4, cp = in[0] & 0x07;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((in[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (in[i] & 0x3f);
    }
    if (cp < 0xa0 || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

/*
 * The escaped form of the character at in[0..len) into seq (at least 5
 * bytes); *used gets the input bytes it stands for. Returns its length.
 */
static size_t escape_unit(const unsigned char *in, size_t len, char *seq,
                          size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = in[0];
    size_t n;

    *used = 1;
    if (c == '\n' || c == '\r' || c == '\t' || c == 0x1b) {
        seq[0] = '\\';
        seq[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 'e';
        return 2;
    }
    if (c >= 0x80 && (n = utf8_printable(in, len)) > 0) {
        memcpy(seq, in, n);
        *used = n;
        return n;
    }
    if (c < 0x20 || c >= 0x7f) {
        seq[0] = '\\';
        seq[1] = 'x';
        seq[2] = hex[c >> 4];
        seq[3] = hex[c & 15];
        return 4;
    }
    seq[0] = (char)c;
    return 1;
}

const char *sk_escape_text(const char *in, size_t len, char *out,
                           size_t out_len)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0, need = 0, limit, used;
    char seq[5];

    if (out == NULL || out_len == 0)
        return out;
    if (in == NULL)
        len = 0;
    else if (len == SIZE_MAX)
        len = strlen(in);
    for (size_t i = 0; i < len; i += used)
        need += escape_unit(u + i, len - i, seq, &used);
    /* too long: whole sequences only, then "..." */
    limit = need < out_len ? need : out_len > 4 ? out_len - 4 : 0;
    for (size_t i = 0; i < len; i += used) {
        size_t n = escape_unit(u + i, len - i, seq, &used);

        if (o + n > limit)
            break;
        memcpy(out + o, seq, n);
        o += n;
    }
    if (need >= out_len && out_len > 4) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* Overwrites with '*' every occurrence of secret in text[0..len). */
static void mask_secret(char *text, size_t len, const char *secret)
{
    size_t slen = secret != NULL ? strlen(secret) : 0;

    /* a very short secret would mask ordinary words; real keys and tokens
       are long */
    if (slen < 8)
        return;
    for (size_t i = 0; i + slen <= len; i++)
        if (memcmp(text + i, secret, slen) == 0)
            memset(text + i, '*', slen);
}

/* Masks the credential after "Basic " / "Bearer " (any case). */
static void mask_schemes(char *text, size_t len)
{
    static const char *const schemes[] = {"basic ", "bearer "};

    for (size_t s = 0; s < sizeof(schemes) / sizeof(schemes[0]); s++) {
        size_t slen = strlen(schemes[s]);

        for (size_t i = 0; i + slen <= len; i++) {
            size_t j;

            if (strncasecmp(text + i, schemes[s], slen) != 0)
                continue;
            for (j = i + slen; j < len && text[j] == ' '; j++)
                ;
            for (; j < len && !isspace((unsigned char)text[j]) &&
                   text[j] != '"' && text[j] != '\'' && text[j] != ',' &&
                   text[j] != '<' && text[j] != ';' && text[j] != '\\';
                 j++)
                text[j] = '*';
        }
    }
}

void sk_error_set_server_text(sk_error *err, const char *text, size_t len,
                              const char *const *secrets, size_t n_secrets)
{
    char *copy;

    if (err == NULL)
        return;
    if (text == NULL || len == 0) {
        err->message[0] = '\0';
        return;
    }
    copy = OPENSSL_malloc(len + 1);
    if (copy == NULL) {
        snprintf(err->message, sizeof(err->message),
                 "(the server's text could not be copied: out of memory)");
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    for (size_t i = 0; i < n_secrets; i++)
        mask_secret(copy, len, secrets[i]);
    mask_schemes(copy, len);
    sk_error_set_text(err, copy, len);
    OPENSSL_clear_free(copy, len + 1);
}

void sk_error_clear(sk_error *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
}

void sk_error_set(sk_error *err, sk_err_kind kind, const char *request,
                  const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    err->kind = kind;
    if (request != NULL)
        snprintf(err->request, sizeof(err->request), "%s", request);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

sk_err_kind sk_err_kind_of_status(long status)
{
    if (status == 404)
        return SK_ERR_NOT_FOUND;
    if (status == 429)
        return SK_ERR_THROTTLED;
    if (status >= 500)
        return SK_ERR_SERVER;
    if (status >= 400)
        return SK_ERR_BAD_REQUEST;
    return SK_ERR_PROTOCOL;
}

void sk_error_set_text(sk_error *err, const char *text, size_t len)
{
    char line[sizeof(err->message)];
    size_t out = 0;
    int last_space = 1;

    if (err == NULL)
        return;
    /* One line: line breaks and tabs become one space, runs of spaces one
       space; then control characters and malformed bytes are escaped
       (sk_escape_text), well-formed UTF-8 is kept. */
    for (size_t i = 0; i < len && out + 1 < sizeof(line); i++) {
        char c = text[i];

        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (c == ' ' && last_space)
            continue;
        last_space = c == ' ';
        line[out++] = c;
    }
    while (out > 0 && line[out - 1] == ' ')
        out--;
    sk_escape_text(line, out, err->message, sizeof(err->message));
    OPENSSL_cleanse(line, sizeof(line));
}

const char *sk_err_kind_name(sk_err_kind kind)
{
    static const char *const names[] = {
        [SK_ERR_NONE] = "no error",
        [SK_ERR_CONFIG] = "configuration error",
        [SK_ERR_NETWORK] = "network error",
        [SK_ERR_TIMEOUT] = "timeout",
        [SK_ERR_TLS] = "TLS error",
        [SK_ERR_TLS_NAME] = "TLS certificate name mismatch",
        [SK_ERR_AUTH] = "authentication failed",
        [SK_ERR_FORBIDDEN] = "operation not allowed",
        [SK_ERR_APPROVAL] = "approval required",
        [SK_ERR_NOT_FOUND] = "not found",
        [SK_ERR_BAD_REQUEST] = "bad request",
        [SK_ERR_THROTTLED] = "throttled",
        [SK_ERR_SERVER] = "server error",
        [SK_ERR_PROTOCOL] = "invalid response",
        [SK_ERR_NOMEM] = "out of memory",
        [SK_ERR_APPROVAL_PENDING] = "approval pending",
        [SK_ERR_APPROVAL_DENIED] = "approval denied",
        [SK_ERR_APPROVAL_EXPIRED] = "approval expired",
        [SK_ERR_APPROVAL_TIMEOUT] = "approval not given in time",
        [SK_ERR_APPROVAL_MISMATCH] = "approval request for another operation",
    };

    return (size_t)kind < sizeof(names) / sizeof(names[0]) &&
                   names[kind] != NULL
               ? names[kind]
               : "unknown error";
}

const char *sk_error_string(const sk_error *err, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return buf;
    if (err == NULL) {
        buf[0] = '\0';
        return buf;
    }
    if (err->http_status != 0)
        snprintf(buf, len, "%s%s%ld %s%s%s", err->request,
                 err->request[0] ? ": " : "", err->http_status,
                 sk_err_kind_name(err->kind), err->message[0] ? ": " : "",
                 err->message);
    else
        snprintf(buf, len, "%s%s%s%s%s", err->request,
                 err->request[0] ? ": " : "", sk_err_kind_name(err->kind),
                 err->message[0] ? ": " : "", err->message);
    return buf;
}
