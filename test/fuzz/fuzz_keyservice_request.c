/*
 * libFuzzer harness: smartkey-keyservice's request parser
 * (keyservice/request.c), the code that reads what any client on the
 * network sends. Even first byte: the rest is a request head as read from
 * the connection, parsed, then routed under "" and "/keys", its
 * RequestIdentifier's nonce and its Basic credentials extracted. Odd: the
 * rest, up to its first NUL, is given directly as a RequestIdentifier, a
 * key identifier and an Authorization value. The results are checked
 * against what the service relies on.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyservice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t size)
{
    size_t i, len = strnlen(s, size);

    if (len == size)
        abort(); /* not terminated within its buffer */
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            abort();
}

static void check_nonce(const char *rid, const char *key_id)
{
    char nonce[KS_MAX_NONCE + 1];
    int r = ks_request_nonce(rid, key_id, nonce, sizeof(nonce));

    if (r == 1 && (strlen(nonce) < 16 || strlen(nonce) > KS_MAX_NONCE ||
                   strspn(nonce, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
                                 "RSTUVWXYZ0123456789-") != strlen(nonce)))
        abort();
    if (r < -1 || r > 1)
        abort();
}

static void check_basic(const char *value)
{
    char out[KS_MAX_AUTH];
    int n = ks_basic_credentials(value, out, sizeof(out));

    if (n >= 0 && ((size_t)n >= sizeof(out) || strlen(out) != (size_t)n ||
                   strchr(out, ':') == NULL))
        abort();
}

static void request(const uint8_t *data, size_t size)
{
    /* an exact-size copy: reading past the bytes is a finding */
    char *head = malloc(size ? size : 1);
    static const char *const prefixes[] = {"", "/keys"};
    const char *why = NULL;
    ks_request req;
    size_t end, i;
    int status;

    if (head == NULL)
        return;
    memcpy(head, data, size);
    end = ks_head_end(head, size);
    if (end > size)
        abort();
    status = ks_parse_request(head, end != 0 ? end : size, &req, &why);
    if (why == NULL)
        abort();
    if (status == 0) {
        check_text(req.path, sizeof(req.path));
        check_text(req.request_id, sizeof(req.request_id));
        check_text(req.authorization, sizeof(req.authorization));
        if (req.path[0] != '/')
            abort();
        for (i = 0; i < 2; i++) {
            char id[KS_MAX_KEY_ID + 1];

            if (ks_route(req.path, prefixes[i], id, sizeof(id)) &&
                !ks_valid_key_id(id))
                abort();
            else if (ks_route(req.path, prefixes[i], id, sizeof(id)) &&
                     req.has_request_id)
                check_nonce(req.request_id, id);
        }
        if (req.has_authorization)
            check_basic(req.authorization);
    } else if (status != 400 && status != 405 && status != 413 &&
               status != 414 && status != 431 && status != 505) {
        abort();
    } else if (*why == '\0') {
        abort(); /* a refusal always says why */
    }
    free(head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size == 0)
        return 0;
    if ((data[0] & 1) == 0) {
        request(data + 1, size - 1);
        return 0;
    }
    if ((text = malloc(size)) == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    check_nonce(text, "key-1");
    check_nonce(text, text);
    check_basic(text);
    free(text);
    return 0;
}
