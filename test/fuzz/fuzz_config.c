/*
 * libFuzzer harness: the provider's configuration as text. The input is
 * split at newlines into the openssl.cnf values and environment variables
 * of sk_settings_text (an empty line means "absent"); the endpoint value
 * also goes through the cluster-list parser (every node it accepts must be
 * https) and the API key through the key checks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS 24

/* Splits text at newlines into fields (an empty line: NULL); the text is
   cut in place. */
static void split_fields(char *text, char **fields)
{
    char *p;
    int n;

    for (p = text, n = 0; n < FIELDS && p != NULL; n++) {
        char *end = strchr(p, '\n');

        if (end != NULL)
            *end = '\0';
        fields[n] = *p != '\0' ? p : NULL;
        p = end != NULL ? end + 1 : NULL;
    }
}

/* The settings text whose values are fields, in sk_settings_text order. */
static sk_settings_text settings_text(char **fields)
{
    return (sk_settings_text){
        .api_endpoint = fields[0],
        .api_key = fields[1],
        .ca_file = fields[2],
        .ca_path = fields[3],
        .connect_timeout = fields[4],
        .request_timeout = fields[5],
        .retries = fields[6],
        .cache_lifetime = fields[7],
        .insecure_skip_verify = fields[8],
        .env_api_endpoint = fields[9],
        .env_api_key = fields[10],
        .env_ca_file = fields[11],
        .batch_max_size = fields[12],
        .batch_max_wait = fields[13],
        .auth = fields[14],
        .proxy = fields[15],
        .no_proxy = fields[16],
        .env_overrides = fields[17],
        .env_auth = fields[18],
        .approval = fields[19],
        .approval_timeout = fields[20],
        .env_approval = fields[21],
        .env_approval_timeout = fields[22],
        .ed25519_hash_alg = fields[23],
    };
}

/* Aborts unless accepted settings are in range, their endpoint list holds
   https nodes only and the API key goes through the key checks. */
static void check_settings(const sk_settings *settings)
{
    char why[256], **urls = NULL, *key;
    size_t url_count = 0;
    sk_error err;

    if (settings->api_endpoint == NULL || settings->connect_timeout < 0 ||
        settings->request_timeout < 0 || settings->retries < 0 ||
        settings->retries > 100 || settings->approval_mode < 0 ||
        settings->approval_mode > SK_APPROVAL_WAIT ||
        !(settings->approval_timeout >= 0) ||
        settings->ed25519_hash_alg == NULL)
        abort();
    if (sk_endpoints_parse(settings->api_endpoint, &urls, &url_count, &err)) {
        if (url_count == 0)
            abort();
        /* HTTPS only: no accepted node may be anything else */
        for (size_t i = 0; i < url_count; i++)
            if (strncmp(urls[i], "https://", 8) != 0)
                abort();
        sk_endpoints_free(urls, url_count);
    }
    if (settings->api_key_source != NULL) {
        key = sk_api_key_from_text(settings->api_key_source,
                                   strlen(settings->api_key_source), why,
                                   sizeof(why));
        OPENSSL_free(key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *fields[FIELDS] = {0};
    char why[256];
    sk_settings_text in;
    sk_settings settings;
    int reason;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    split_fields(text, fields);
    in = settings_text(fields);
    if (sk_settings_parse(&in, &settings, &reason, why, sizeof(why))) {
        check_settings(&settings);
        sk_settings_clear(&settings);
    }
    free(text);
    return 0;
}
