/* libFuzzer harness: smartkey: URIs as a user (or an attacker controlling
   a configuration file) may write them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char why[256];
    sk_uri uri;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (sk_uri_parse(text, &uri, why, sizeof(why))) {
        /* what the parser promises: at most one of name and kid */
        if (uri.name != NULL && uri.kid != NULL)
            abort();
        sk_uri_clear(&uri);
    } else if (memchr(why, '\0', sizeof(why)) == NULL) {
        abort();
    }
    free(text);
    return 0;
}
