/*
 * The provider's configuration as text (openssl.cnf values and environment
 * variables) turned into sk_settings, and the API key read from where the
 * configuration names it. No OSSL core, so it can be unit-tested and fuzzed
 * alone.
 */
#ifndef SMARTKEY_CONFIG_H
#define SMARTKEY_CONFIG_H

#include <stddef.h>

#include "provider.h"

typedef struct sk_settings_text {
    /* openssl.cnf values; NULL when the line is absent */
    const char *api_endpoint;
    const char *api_key;
    const char *ca_file;
    const char *ca_path;
    const char *connect_timeout;
    const char *request_timeout;
    const char *retries;
    const char *cache_lifetime;
    const char *insecure_skip_verify;
    const char *batch_max_size;
    const char *batch_max_wait;
    const char *auth;
    const char *proxy;
    const char *no_proxy;
    const char *env_overrides;
    const char *async;
    const char *ed25519_hash_alg;
    const char *approval;
    const char *approval_timeout;
    /* environment variables (already chosen between SMARTKEY_* and
       FORTANIX_*); they win over openssl.cnf. NULL when unset or empty. */
    const char *env_api_endpoint;
    const char *env_api_key;
    const char *env_ca_file;
    const char *env_auth;
    const char *env_approval;
    const char *env_approval_timeout;
    /* which variable env_api_endpoint came from (for messages); NULL:
       SMARTKEY_API_ENDPOINT */
    const char *env_api_endpoint_name;
} sk_settings_text;

/*
 * Fills out (cleared first; free with sk_settings_clear). On failure
 * returns 0, *reason (SK_R_*) and a sentence for the user in why; the
 * sentence never quotes the API key.
 */
int sk_settings_parse(const sk_settings_text *in, sk_settings *out, int *reason,
                      char *why, size_t why_len);
void sk_settings_clear(sk_settings *settings);

/*
 * An API key as read from a literal, a variable or a file: trailing white
 * space (editors' newlines) removed, then it must be one non-empty line of
 * printable characters. Returns an OPENSSL_malloc'd copy (zeroise before
 * OPENSSL_free) or
 * NULL with a sentence in why that does not quote the key.
 */
char *sk_api_key_from_text(const char *text, size_t len, char *why,
                           size_t why_len);

/*
 * The API key from its source in the configuration: a literal, file:PATH
 * (a regular file only its owner can read) or env:NAME. The one function
 * here that reads files and the environment. Returns an OPENSSL_malloc'd key
 * (zeroise before free) or NULL with the SK_R_* reason in *reason and a
 * sentence in why that names the source, never the key.
 */
char *sk_api_key_resolve(const char *source, int *reason, char *why,
                         size_t why_len);

#endif
