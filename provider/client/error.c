#include <stdio.h>
#include <string.h>
#include "internal.h"

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

void sk_error_set_text(sk_error *err, const char *text, size_t len)
{
    size_t out = 0;
    int last_space = 1;

    if (err == NULL)
        return;
    for (size_t i = 0; i < len && out + 1 < sizeof(err->message); i++) {
        unsigned char c = (unsigned char)text[i];

        /* Line breaks and tabs become one space so the message stays one
           line; other bytes outside printable ASCII are dropped. */
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (c < 0x20 || c > 0x7e)
            continue;
        if (c == ' ' && last_space)
            continue;
        last_space = c == ' ';
        err->message[out++] = (char)c;
    }
    while (out > 0 && err->message[out - 1] == ' ')
        out--;
    err->message[out] = '\0';
}

const char *sk_err_kind_name(sk_err_kind kind)
{
    switch (kind) {
    case SK_ERR_NONE:
        return "no error";
    case SK_ERR_CONFIG:
        return "configuration error";
    case SK_ERR_NETWORK:
        return "network error";
    case SK_ERR_TIMEOUT:
        return "timeout";
    case SK_ERR_TLS:
        return "TLS error";
    case SK_ERR_AUTH:
        return "authentication failed";
    case SK_ERR_FORBIDDEN:
        return "operation not allowed";
    case SK_ERR_APPROVAL:
        return "approval required";
    case SK_ERR_NOT_FOUND:
        return "not found";
    case SK_ERR_BAD_REQUEST:
        return "bad request";
    case SK_ERR_THROTTLED:
        return "throttled";
    case SK_ERR_SERVER:
        return "server error";
    case SK_ERR_PROTOCOL:
        return "invalid response";
    case SK_ERR_NOMEM:
        return "out of memory";
    }
    return "unknown error";
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
