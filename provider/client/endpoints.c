/*
 * The api_endpoint value: one SmartKey URL or a list of cluster nodes.
 * Pure parsing (no libcurl), so the configuration fuzzer reaches it.
 */
#include <string.h>
#include <openssl/crypto.h>
#include "internal.h"

/* More nodes than any DSM cluster has; a longer list is a typo or an
   attack on the log. */
#define MAX_NODES    16
#define MAX_URL_SIZE 2048

static const char separators[] = ", \t\r\n";

/* "https://host[:port]" with nothing after the authority: the client
   appends "/crypto/v1/..." itself, and user:password@ would put a secret
   into every log line that names the node. HTTPS only: every request
   carries the API key or a session token. */
static int valid_node(const char *url, size_t len)
{
    static const size_t scheme = sizeof("https://") - 1;

    if (len <= scheme || strncmp(url, "https://", scheme) != 0)
        return 0;
    for (size_t i = scheme; i < len; i++) {
        unsigned char c = (unsigned char)url[i];

        if (c < 0x21 || c >= 0x7f || c == '/' || c == '?' || c == '#' ||
            c == '@' || c == '\\' || c == '%')
            return 0;
    }
    return 1;
}

void sk_endpoints_free(char **urls, size_t count)
{
    if (urls == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        OPENSSL_free(urls[i]);
    OPENSSL_free(urls);
}

int sk_endpoints_parse(const char *list, char ***urls, size_t *count,
                       sk_error *err)
{
    char **out = NULL;
    size_t n = 0;
    const char *p = list;

    *urls = NULL;
    *count = 0;
    if (list == NULL)
        goto bad;
    for (;;) {
        size_t len;

        p += strspn(p, separators);
        if (*p == '\0')
            break;
        len = strcspn(p, separators);
        /* "https://host/" is how people copy a URL: the slashes go. */
        while (len > 0 && p[len - 1] == '/')
            len--;
        if (len == 0 || len >= MAX_URL_SIZE || !valid_node(p, len))
            goto bad;
        if (n == MAX_NODES) {
            sk_error_set(err, SK_ERR_CONFIG, NULL,
                         "the API endpoint lists more than %d nodes",
                         MAX_NODES);
            goto fail;
        }
        if (out == NULL &&
            (out = OPENSSL_zalloc(MAX_NODES * sizeof(*out))) == NULL)
            goto nomem;
        if ((out[n] = OPENSSL_strndup(p, len)) == NULL)
            goto nomem;
        n++;
        p += strcspn(p, separators);
    }
    if (n == 0)
        goto bad;
    *urls = out;
    *count = n;
    return 1;

bad:
    sk_error_set(err, SK_ERR_CONFIG, NULL,
                 "the API endpoint must be an https:// URL (scheme, host and "
                 "port only), or several separated by commas");
    goto fail;
nomem:
    sk_error_set(err, SK_ERR_NOMEM, NULL, "out of memory");
fail:
    sk_endpoints_free(out, n);
    return 0;
}
