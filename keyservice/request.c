/*
 * The request parser: everything here reads bytes a client chose. A
 * callout is a GET without a body; anything else is refused before the
 * service looks at it. Strict on purpose: CRLF line ends, no folded
 * fields, no control characters, no duplicated field the service reads.
 */
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keyservice.h"

size_t ks_head_end(const char *buf, size_t len)
{
    size_t i;

    for (i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
            buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* percent_decode: LEN bytes of IN into OUT (NUL-terminated); refuses
   malformed escapes, NUL, '/' (in a segment or value) and control
   characters. Returns 1 or 0. */
static int percent_decode(const char *in, size_t len, char *out,
                          size_t out_size, int keep_slash)
{
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        int c = (unsigned char)in[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= len)
                return 0;
            hi = OPENSSL_hexchar2int((unsigned char)in[i + 1]);
            lo = OPENSSL_hexchar2int((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            c = hi * 16 + lo;
            i += 2;
            if (c == '/')
                return 0; /* an encoded slash never splits a path */
        } else if (c == '/' && !keep_slash) {
            return 0;
        }
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (o + 1 >= out_size)
            return 0;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 1;
}

/* The characters of a request target (RFC 3986's unreserved, sub-delims,
   ':', '@', '/', '?', '%'). */
static int target_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=:@/?%", c);
}

static int parse_query(const char *query, size_t len, ks_request *req,
                       const char **why)
{
    const char *p = query, *end = query + len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));

        if (eq != NULL) {
            size_t name_len = (size_t)(eq - p);

            if ((name_len == 9 && strncmp(p, "requestId", 9) == 0) ||
                (name_len == 17 && strncmp(p, "RequestIdentifier", 17) == 0)) {
                if (req->has_request_id) {
                    *why = "RequestIdentifier given twice";
                    return 400;
                }
                if (!percent_decode(eq + 1, (size_t)(stop - eq - 1),
                                    req->request_id, sizeof(req->request_id),
                                    0)) {
                    *why = "malformed RequestIdentifier";
                    return 400;
                }
                req->has_request_id = 1;
            }
        }
        p = amp != NULL ? amp + 1 : end;
    }
    return 0;
}

static int parse_request_line(const char *line, size_t len, ks_request *req,
                              const char **why)
{
    const char *sp1 = memchr(line, ' ', len), *sp2, *target, *query;
    size_t target_len, i;

    if (sp1 == NULL) {
        *why = "malformed request line";
        return 400;
    }
    sp2 = memchr(sp1 + 1, ' ', (size_t)(line + len - sp1 - 1));
    if (sp2 == NULL) {
        *why = "malformed request line";
        return 400;
    }
    if ((size_t)(line + len - sp2 - 1) != 8 ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1')) {
        *why = "not HTTP/1.x";
        return 505;
    }
    if ((size_t)(sp1 - line) != 3 || strncmp(line, "GET", 3) != 0) {
        *why = "method not GET";
        return 405;
    }
    target = sp1 + 1;
    target_len = (size_t)(sp2 - target);
    if (target_len == 0 || target[0] != '/') {
        *why = "the target is not a path";
        return 400;
    }
    if (target_len >= KS_MAX_PATH) {
        *why = "target too long";
        return 414;
    }
    for (i = 0; i < target_len; i++)
        if (!target_char((unsigned char)target[i])) {
            *why = "invalid character in the target";
            return 400;
        }
    query = memchr(target, '?', target_len);
    if (!percent_decode(target,
                        query != NULL ? (size_t)(query - target) : target_len,
                        req->path, sizeof(req->path), 1)) {
        *why = "malformed path";
        return 400;
    }
    if (query != NULL)
        return parse_query(query + 1, (size_t)(target + target_len - query - 1),
                           req, why);
    return 0;
}

/* field_value: VALUE (LEN bytes, surrounding blanks trimmed) into OUT. */
static int field_value(const char *value, size_t len, char *out,
                       size_t out_size, const char **why)
{
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len >= out_size) {
        *why = "header field too long";
        return 431;
    }
    memcpy(out, value, len);
    out[len] = '\0';
    return 0;
}

static int parse_field(const char *line, size_t len, ks_request *req,
                       const char **why)
{
    const char *colon = memchr(line, ':', len), *value;
    size_t name_len, value_len, i;

    if (line[0] == ' ' || line[0] == '\t') {
        *why = "folded header field";
        return 400;
    }
    if (colon == NULL || colon == line) {
        *why = "malformed header field";
        return 400;
    }
    name_len = (size_t)(colon - line);
    for (i = 0; i < name_len; i++)
        if (line[i] <= 0x20 || line[i] == 0x7f) {
            *why = "malformed header field name";
            return 400;
        }
    value = colon + 1;
    value_len = (size_t)(line + len - value);
    for (i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *why = "control character in a header field";
            return 400;
        }
    }
    if (name_len == 13 && strncasecmp(line, "Authorization", 13) == 0) {
        if (req->has_authorization) {
            *why = "Authorization given twice";
            return 400;
        }
        req->has_authorization = 1;
        return field_value(value, value_len, req->authorization,
                           sizeof(req->authorization), why);
    }
    if (name_len == 17 && strncasecmp(line, "RequestIdentifier", 17) == 0) {
        if (req->has_request_id) {
            *why = "RequestIdentifier given twice";
            return 400;
        }
        req->has_request_id = 1;
        return field_value(value, value_len, req->request_id,
                           sizeof(req->request_id), why);
    }
    if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
        *why = "a callout has no body";
        return 413;
    }
    if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
        char number[32];
        int status = field_value(value, value_len, number, sizeof(number), why);

        if (status != 0 || strcmp(number, "0") != 0) {
            *why = "a callout has no body";
            return 413;
        }
    }
    return 0;
}

int ks_parse_request(const char *head, size_t len, ks_request *req,
                     const char **why)
{
    const char *p = head, *end = head + len;
    int first = 1, status;

    memset(req, 0, sizeof(*req));
    *why = "";
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len;

        if (nl == NULL || nl == p || nl[-1] != '\r') {
            *why = "lines must end with CRLF and the head with an empty line";
            return 400;
        }
        line_len = (size_t)(nl - 1 - p);
        if (memchr(p, '\0', line_len) != NULL ||
            memchr(p, '\r', line_len) != NULL) {
            *why = "NUL or CR inside a line";
            return 400;
        }
        if (line_len == 0) {
            if (first) {
                *why = "empty request line";
                return 400;
            }
            if (nl + 1 != end) {
                *why = "bytes after the head";
                return 400;
            }
            return 0;
        }
        status = first ? parse_request_line(p, line_len, req, why)
                       : parse_field(p, line_len, req, why);
        if (status != 0)
            return status;
        first = 0;
        p = nl + 1;
    }
}

int ks_valid_key_id(const char *id)
{
    size_t i, len = strlen(id);

    if (len == 0 || len > KS_MAX_KEY_ID)
        return 0;
    for (i = 0; i < len; i++) {
        char c = id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
              c == '-'))
            return 0;
    }
    /* "." and ".." are path segments, not names */
    return strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
}

int ks_route(const char *path, const char *prefix, char *id, size_t id_size)
{
    size_t prefix_len = strlen(prefix);
    const char *rest;

    if (strncmp(path, prefix, prefix_len) != 0 || path[prefix_len] != '/')
        return 0;
    rest = path + prefix_len + 1;
    if (!ks_valid_key_id(rest) || strlen(rest) >= id_size)
        return 0;
    strcpy(id, rest);
    return 1;
}

static int valid_nonce(const char *nonce)
{
    size_t i, len = strlen(nonce);

    if (len < 16 || len > KS_MAX_NONCE)
        return 0;
    for (i = 0; i < len; i++) {
        char c = nonce[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

int ks_request_nonce(const char *rid, const char *key_id, char *nonce,
                     size_t nonce_size)
{
    const char *sep = strrchr(rid, '_');
    const char *candidate = sep != NULL ? sep + 1 : rid;

    if (!valid_nonce(candidate) || strlen(candidate) >= nonce_size)
        return 0;
    if (sep != NULL && ((size_t)(sep - rid) != strlen(key_id) ||
                        strncmp(rid, key_id, (size_t)(sep - rid)) != 0))
        return -1;
    strcpy(nonce, candidate);
    return 1;
}

int ks_basic_credentials(const char *value, char *out, size_t out_size)
{
    size_t len;
    int n;

    if (strncasecmp(value, "Basic ", 6) != 0)
        return -1;
    value += 6;
    while (*value == ' ')
        value++;
    len = strlen(value);
    if (len == 0 || len % 4 != 0 || len / 4 * 3 + 1 > out_size)
        return -1;
    n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)value,
                        (int)len);
    if (n < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding's zero bytes */
    if (value[len - 1] == '=')
        n--;
    if (value[len - 2] == '=')
        n--;
    out[n] = '\0';
    if (memchr(out, '\0', (size_t)n) != NULL ||
        memchr(out, ':', (size_t)n) == NULL)
        return -1;
    return n;
}
