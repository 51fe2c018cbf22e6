#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>

#include "byok.h"
#include "config.h"
#include "key.h"
#include "provider.h"

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_provider_teardown_fn teardown;
static OSSL_FUNC_provider_gettable_params_fn gettable_params;
static OSSL_FUNC_provider_get_params_fn get_params;
static OSSL_FUNC_provider_query_operation_fn query_operation;
static OSSL_FUNC_provider_get_reason_strings_fn get_reason_strings;

/*
 * Static tables: query_operation also runs inside libcurl's own TLS
 * handshakes (same libcrypto), so it must not lock or allocate
 * (docs/openssl-dispatch.md §9).
 */
static const OSSL_ALGORITHM keymgmt_algorithms[] = {
    {SK_NAMES_RSA, SK_PROPS, sk_rsa_keymgmt_functions,
     "RSA key held in SmartKey"},
    {SK_NAMES_EC, SK_PROPS, sk_ec_keymgmt_functions, "EC key held in SmartKey"},
    {SK_NAMES_ED25519, SK_PROPS, sk_ed25519_keymgmt_functions,
     "Ed25519 key held in SmartKey"},
    {NULL, NULL, NULL, NULL},
};

#define SK_KEYREF_ENCODER_PROPS(output, structure)                             \
    SK_PROPS ",output=" output ",structure=" structure

static const OSSL_ALGORITHM encoder_algorithms[] = {
    {SK_NAMES_RSA, SK_PROPS ",output=text", sk_text_encoder_functions,
     "Describes an RSA key held in SmartKey"},
    {SK_NAMES_EC, SK_PROPS ",output=text", sk_text_encoder_functions,
     "Describes an EC key held in SmartKey"},
    {SK_NAMES_ED25519, SK_PROPS ",output=text", sk_text_encoder_functions,
     "Describes an Ed25519 key held in SmartKey"},
    /* "private key" output of a SmartKey key: a reference file
       (docs/openssl-dispatch.md §5), in the structures `pkey`/`rsa`
       (PrivateKeyInfo), `ec` and i2d_PrivateKey (type-specific) and `rsa
       -traditional` (pkcs1) ask for; DER PrivateKeyInfo refuses PKCS#8
       conversions (encoder.c) */
    {SK_NAMES_RSA, SK_KEYREF_ENCODER_PROPS("pem", "PrivateKeyInfo"),
     sk_keyref_pem_encoder_functions, "Reference to an RSA key in SmartKey"},
    {SK_NAMES_EC, SK_KEYREF_ENCODER_PROPS("pem", "PrivateKeyInfo"),
     sk_keyref_pem_encoder_functions, "Reference to an EC key in SmartKey"},
    {SK_NAMES_RSA, SK_KEYREF_ENCODER_PROPS("der", "PrivateKeyInfo"),
     sk_keyref_pkcs8_der_encoder_functions,
     "Reference to an RSA key in SmartKey"},
    {SK_NAMES_EC, SK_KEYREF_ENCODER_PROPS("der", "PrivateKeyInfo"),
     sk_keyref_pkcs8_der_encoder_functions,
     "Reference to an EC key in SmartKey"},
    {SK_NAMES_RSA, SK_KEYREF_ENCODER_PROPS("pem", "type-specific"),
     sk_keyref_pem_encoder_functions, "Reference to an RSA key in SmartKey"},
    {SK_NAMES_EC, SK_KEYREF_ENCODER_PROPS("pem", "type-specific"),
     sk_keyref_pem_encoder_functions, "Reference to an EC key in SmartKey"},
    {SK_NAMES_RSA, SK_KEYREF_ENCODER_PROPS("der", "type-specific"),
     sk_keyref_der_encoder_functions, "Reference to an RSA key in SmartKey"},
    {SK_NAMES_EC, SK_KEYREF_ENCODER_PROPS("der", "type-specific"),
     sk_keyref_der_encoder_functions, "Reference to an EC key in SmartKey"},
    {SK_NAMES_ED25519, SK_KEYREF_ENCODER_PROPS("pem", "PrivateKeyInfo"),
     sk_keyref_pem_encoder_functions,
     "Reference to an Ed25519 key in SmartKey"},
    {SK_NAMES_ED25519, SK_KEYREF_ENCODER_PROPS("der", "PrivateKeyInfo"),
     sk_keyref_pkcs8_der_encoder_functions,
     "Reference to an Ed25519 key in SmartKey"},
    {SK_NAMES_RSA, SK_KEYREF_ENCODER_PROPS("pem", "pkcs1"),
     sk_keyref_pem_encoder_functions, "Reference to an RSA key in SmartKey"},
    {SK_NAMES_RSA, SK_KEYREF_ENCODER_PROPS("der", "pkcs1"),
     sk_keyref_der_encoder_functions, "Reference to an RSA key in SmartKey"},
    {NULL, NULL, NULL, NULL},
};

/* Key-reference files, in two stages (docs/openssl-dispatch.md §5, decoder.c).
 */
static const OSSL_ALGORITHM decoder_algorithms[] = {
    {"DER", SK_PROPS ",input=pem", sk_keyref_pem_decoder_functions,
     "SmartKey key reference PEM block"},
    {SK_NAMES_RSA,
     SK_PROPS ",input=der,structure=" SMARTKEY_KEY_REFERENCE_STRUCTURE,
     sk_keyref_rsa_decoder_functions, "RSA key in SmartKey, by reference"},
    {SK_NAMES_EC,
     SK_PROPS ",input=der,structure=" SMARTKEY_KEY_REFERENCE_STRUCTURE,
     sk_keyref_ec_decoder_functions, "EC key in SmartKey, by reference"},
    {SK_NAMES_ED25519,
     SK_PROPS ",input=der,structure=" SMARTKEY_KEY_REFERENCE_STRUCTURE,
     sk_keyref_ed25519_decoder_functions,
     "Ed25519 key in SmartKey, by reference"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM asym_cipher_algorithms[] = {
    /* byok.c hands everything but the BYOK artifacts to
       sk_rsa_asym_cipher_functions */
    {SK_NAMES_RSA, SK_PROPS, sk_rsa_byok_asym_cipher_functions,
     "RSA decryption and server-side key wrapping in SmartKey"},
    {NULL, NULL, NULL, NULL},
};

#ifdef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT
/* The signature algorithms with a digest of OpenSSL 3.4+ (signature.c),
   under the default provider's names, aliases and OIDs. */
#define SK_SIGALGS(X)                                                          \
    X(rsa, sha1,                                                               \
      "RSA-SHA1:RSA-SHA-1:sha1WithRSAEncryption:1.2.840.113549.1.1.5")         \
    X(rsa, sha224,                                                             \
      "RSA-SHA2-224:RSA-SHA224:sha224WithRSAEncryption:1.2.840.113549.1.1.14") \
    X(rsa, sha256,                                                             \
      "RSA-SHA2-256:RSA-SHA256:sha256WithRSAEncryption:1.2.840.113549.1.1.11") \
    X(rsa, sha384,                                                             \
      "RSA-SHA2-384:RSA-SHA384:sha384WithRSAEncryption:1.2.840.113549.1.1.12") \
    X(rsa, sha512,                                                             \
      "RSA-SHA2-512:RSA-SHA512:sha512WithRSAEncryption:1.2.840.113549.1.1.13") \
    X(rsa, sha3_224,                                                           \
      "RSA-SHA3-224:id-rsassa-pkcs1-v1_5-with-sha3-224:2.16.840.1.101.3.4.3."  \
      "13")                                                                    \
    X(rsa, sha3_256,                                                           \
      "RSA-SHA3-256:id-rsassa-pkcs1-v1_5-with-sha3-256:2.16.840.1.101.3.4.3."  \
      "14")                                                                    \
    X(rsa, sha3_384,                                                           \
      "RSA-SHA3-384:id-rsassa-pkcs1-v1_5-with-sha3-384:2.16.840.1.101.3.4.3."  \
      "15")                                                                    \
    X(rsa, sha3_512,                                                           \
      "RSA-SHA3-512:id-rsassa-pkcs1-v1_5-with-sha3-512:2.16.840.1.101.3.4.3."  \
      "16")                                                                    \
    X(ecdsa, sha1, "ECDSA-SHA1:ECDSA-SHA-1:ecdsa-with-SHA1:1.2.840.10045.4.1") \
    X(ecdsa, sha224,                                                           \
      "ECDSA-SHA2-224:ECDSA-SHA224:ecdsa-with-SHA224:1.2.840.10045.4.3.1")     \
    X(ecdsa, sha256,                                                           \
      "ECDSA-SHA2-256:ECDSA-SHA256:ecdsa-with-SHA256:1.2.840.10045.4.3.2")     \
    X(ecdsa, sha384,                                                           \
      "ECDSA-SHA2-384:ECDSA-SHA384:ecdsa-with-SHA384:1.2.840.10045.4.3.3")     \
    X(ecdsa, sha512,                                                           \
      "ECDSA-SHA2-512:ECDSA-SHA512:ecdsa-with-SHA512:1.2.840.10045.4.3.4")     \
    X(ecdsa, sha3_224,                                                         \
      "ECDSA-SHA3-224:ecdsa_with_SHA3-224:id-ecdsa-with-sha3-224:"             \
      "2.16.840.1.101.3.4.3.9")                                                \
    X(ecdsa, sha3_256,                                                         \
      "ECDSA-SHA3-256:ecdsa_with_SHA3-256:id-ecdsa-with-sha3-256:"             \
      "2.16.840.1.101.3.4.3.10")                                               \
    X(ecdsa, sha3_384,                                                         \
      "ECDSA-SHA3-384:ecdsa_with_SHA3-384:id-ecdsa-with-sha3-384:"             \
      "2.16.840.1.101.3.4.3.11")                                               \
    X(ecdsa, sha3_512,                                                         \
      "ECDSA-SHA3-512:ecdsa_with_SHA3-512:id-ecdsa-with-sha3-512:"             \
      "2.16.840.1.101.3.4.3.12")

#define SK_SIGALG_EXTERN(alg, id, names)                                       \
    extern const OSSL_DISPATCH sk_##alg##_##id##_signature_functions[];
SK_SIGALGS(SK_SIGALG_EXTERN)
#define SK_SIGALG_ENTRY(alg, id, names)                                        \
    {names, SK_PROPS, sk_##alg##_##id##_signature_functions,                   \
     "Signature with its digest, made in SmartKey"},
#endif

static const OSSL_ALGORITHM signature_algorithms[] = {
    {SK_NAMES_RSA, SK_PROPS, sk_rsa_signature_functions,
     "RSA signatures (PKCS#1 v1.5, PSS) made in SmartKey"},
    {SK_NAMES_ECDSA, SK_PROPS, sk_ecdsa_signature_functions,
     "ECDSA signatures made in SmartKey"},
    {SK_NAMES_ED25519, SK_PROPS, sk_ed25519_signature_functions,
     "Pure Ed25519 signatures made in SmartKey"},
#ifdef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT
    SK_SIGALGS(SK_SIGALG_ENTRY)
#endif
        {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM store_algorithms[] = {
    {SMARTKEY_URI_SCHEME, SK_PROPS, sk_store_functions,
     "Keys held in SmartKey (smartkey: URIs)"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *query_operation(void *provctx, int operation_id,
                                             int *no_cache)
{
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return keymgmt_algorithms;
    case OSSL_OP_ENCODER:
        return encoder_algorithms;
    case OSSL_OP_DECODER:
        return decoder_algorithms;
    case OSSL_OP_STORE:
        return store_algorithms;
    case OSSL_OP_SIGNATURE:
        return signature_algorithms;
    case OSSL_OP_ASYM_CIPHER:
        return asym_cipher_algorithms;
    }
    return NULL;
}

static const OSSL_PARAM provider_param_types[] = {
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *gettable_params(void *provctx)
{
    return provider_param_types;
}

/* The provider's texts, as OSSL_PROV_PARAM_* asks for them. */
static const struct {
    const char *key;
    const char *text;
} provider_texts[] = {
    {OSSL_PROV_PARAM_NAME, "SmartKey Provider"},
    {OSSL_PROV_PARAM_VERSION, SMARTKEY_VERSION},
    {OSSL_PROV_PARAM_BUILDINFO,
     "smartkey " SMARTKEY_VERSION ", built with " OPENSSL_VERSION_TEXT},
};

static int get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    for (size_t i = 0; i < sizeof(provider_texts) / sizeof(provider_texts[0]);
         i++) {
        p = OSSL_PARAM_locate(params, provider_texts[i].key);
        if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, provider_texts[i].text))
            return 0;
    }
    /* "running": SmartKey itself is only contacted on first use */
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static const OSSL_ITEM *get_reason_strings(void *provctx)
{
    return sk_reason_strings();
}

/*
 * fork() from a multi-threaded program copies our mutexes in whatever state
 * other threads left them; OpenSSL 3 offers providers no fork hook
 * (docs/openssl-dispatch.md §10). Taking every lock around fork() gives the
 * child consistent, unlocked copies. The REST client has handlers of its own
 * for its connections.
 */
static pthread_mutex_t live_contexts_lock = PTHREAD_MUTEX_INITIALIZER;
static sk_provctx *live_contexts;
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    sk_provctx *ctx;

    pthread_mutex_lock(&live_contexts_lock);
    for (ctx = live_contexts; ctx != NULL; ctx = ctx->next_live) {
        sk_key_cache_lock(ctx->key_cache);
        pthread_mutex_lock(&ctx->key_source_lock);
    }
}

static void fork_release(void)
{
    sk_provctx *ctx;

    for (ctx = live_contexts; ctx != NULL; ctx = ctx->next_live) {
        pthread_mutex_unlock(&ctx->key_source_lock);
        sk_key_cache_unlock(ctx->key_cache);
    }
    pthread_mutex_unlock(&live_contexts_lock);
}

static void install_fork_handlers(void)
{
    pthread_atfork(fork_prepare, fork_release, fork_release);
}

static void add_live_context(sk_provctx *ctx)
{
    pthread_once(&fork_handlers_once, install_fork_handlers);
    pthread_mutex_lock(&live_contexts_lock);
    ctx->next_live = live_contexts;
    live_contexts = ctx;
    pthread_mutex_unlock(&live_contexts_lock);
}

static void remove_live_context(sk_provctx *ctx)
{
    sk_provctx **link;

    pthread_mutex_lock(&live_contexts_lock);
    for (link = &live_contexts; *link != NULL; link = &(*link)->next_live) {
        if (*link == ctx) {
            *link = ctx->next_live;
            break;
        }
    }
    pthread_mutex_unlock(&live_contexts_lock);
}

static void teardown(void *provctx)
{
    sk_provctx *ctx = provctx;

    if (ctx == NULL)
        return;
    remove_live_context(ctx);
    /* no network here: this runs from atexit() via OPENSSL_cleanup */
    sk_client_free(atomic_load(&ctx->client));
    sk_key_cache_free(ctx->key_cache);
    OSSL_LIB_CTX_free(ctx->libctx);
    sk_settings_clear(&ctx->settings);
    pthread_mutex_destroy(&ctx->key_source_lock);
    OPENSSL_free(ctx);
}

static const OSSL_DISPATCH provider_functions[] = {
    SK_DISPATCH(PROVIDER_TEARDOWN, teardown),
    SK_DISPATCH(PROVIDER_GETTABLE_PARAMS, gettable_params),
    SK_DISPATCH(PROVIDER_GET_PARAMS, get_params),
    SK_DISPATCH(PROVIDER_QUERY_OPERATION, query_operation),
    SK_DISPATCH(PROVIDER_GET_REASON_STRINGS, get_reason_strings),
    {0, NULL},
};

/* --- configuration ----------------------------------------------------- */

/* *which: the variable the value came from */
static const char *env_setting_from(const char *name, const char *alternative,
                                    const char **which)
{
    const char *value = secure_getenv(name);

    if (which != NULL)
        *which = name;
    if ((value == NULL || *value == '\0') && alternative != NULL) {
        value = secure_getenv(alternative);
        if (which != NULL)
            *which = alternative;
    }
    return value != NULL && *value != '\0' ? value : NULL;
}

static const char *env_setting(const char *name, const char *alternative)
{
    return env_setting_from(name, alternative, NULL);
}

/*
 * openssl.cnf values (every key of the provider's section arrives as a core
 * parameter, docs/openssl-dispatch.md §8), then the environment, which wins so
 * scripts can point an existing configuration at another account (the endpoint
 * and CA only with the API key, or with env_overrides = yes: config.c).
 */
/* The settings the environment gives (they take precedence as config.c
   decides). */
static void read_environment(sk_settings_text *text)
{
    text->env_api_endpoint =
        env_setting_from(SMARTKEY_ENV_API_ENDPOINT, FORTANIX_ENV_API_ENDPOINT,
                         &text->env_api_endpoint_name);
    text->env_api_key = env_setting(SMARTKEY_ENV_API_KEY, FORTANIX_ENV_API_KEY);
    text->env_ca_file = env_setting(SMARTKEY_ENV_CA_FILE, NULL);
    text->env_auth = env_setting(SMARTKEY_ENV_AUTH, NULL);
    text->env_approval = env_setting(SMARTKEY_ENV_APPROVAL, NULL);
    text->env_approval_timeout =
        env_setting(SMARTKEY_ENV_APPROVAL_TIMEOUT, NULL);
}

/* The settings in the debug log: where things come from, never a secret. */
static void debug_settings(const sk_settings *settings)
{
    SK_DEBUG(3, "endpoint %s, ca_file %s, proxy %s, api key %s",
             settings->api_endpoint,
             settings->ca_file != NULL ? settings->ca_file : "(system)",
             settings->proxy == NULL               ? "none"
             : strcmp(settings->proxy, "env") == 0 ? "from the environment"
                                                   : "configured",
             settings->api_key_source == NULL ? "not set"
             : strncmp(settings->api_key_source, "file:", 5) == 0
                 ? "from a file"
             : strncmp(settings->api_key_source, "env:", 4) == 0
                 ? "from the environment"
                 : "given literally");
}

/* The quorum-approval lines of the provider's section (docs/approval.md). */
static int read_approval_settings(const OSSL_CORE_HANDLE *handle,
                                  OSSL_FUNC_core_get_params_fn *core_get_params,
                                  sk_settings_text *text)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_APPROVAL, (char **)&text->approval, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_APPROVAL_TIMEOUT,
                            (char **)&text->approval_timeout, 0),
        OSSL_PARAM_END,
    };

    return core_get_params(handle, params);
}

/* The provider's openssl.cnf section: its values land in text directly and
   the debug level's in *debug (NULL when absent). */
static int read_section(const OSSL_CORE_HANDLE *handle,
                        OSSL_FUNC_core_get_params_fn *core_get_params,
                        sk_settings_text *text, char **debug)
{
    OSSL_PARAM core_params[] = {
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_API_ENDPOINT,
                            (char **)&text->api_endpoint, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_API_KEY, (char **)&text->api_key, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_CA_FILE, (char **)&text->ca_file, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_CA_PATH, (char **)&text->ca_path, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_CONNECT_TIMEOUT,
                            (char **)&text->connect_timeout, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_REQUEST_TIMEOUT,
                            (char **)&text->request_timeout, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_RETRIES, (char **)&text->retries, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_CACHE_LIFETIME,
                            (char **)&text->cache_lifetime, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_DEBUG, debug, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_INSECURE_SKIP_VERIFY,
                            (char **)&text->insecure_skip_verify, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_BATCH_MAX_SIZE,
                            (char **)&text->batch_max_size, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_BATCH_MAX_WAIT,
                            (char **)&text->batch_max_wait, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_AUTH, (char **)&text->auth, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_PROXY, (char **)&text->proxy, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_NO_PROXY, (char **)&text->no_proxy, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_ENV_OVERRIDES,
                            (char **)&text->env_overrides, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_ASYNC, (char **)&text->async, 0),
        OSSL_PARAM_utf8_ptr(SMARTKEY_CFG_ED25519_HASH_ALG,
                            (char **)&text->ed25519_hash_alg, 0),
        OSSL_PARAM_END,
    };

    return core_get_params(handle, core_params) &&
           read_approval_settings(handle, core_get_params, text);
}

static int read_settings(sk_provctx *ctx, const OSSL_CORE_HANDLE *handle,
                         OSSL_FUNC_core_get_params_fn *core_get_params)
{
    sk_settings_text text = {0};
    char *debug = NULL;
    sk_settings *settings = &ctx->settings;
    char why[512];
    int reason;

    if (core_get_params != NULL &&
        !read_section(handle, core_get_params, &text, &debug)) {
        SK_RAISE(ctx, SK_R_INTERNAL_ERROR,
                 "cannot read the provider's openssl.cnf section");
        return 0;
    }
    sk_debug_init(debug);
    read_environment(&text);
    if (!sk_settings_parse(&text, settings, &reason, why, sizeof(why))) {
        if (reason != SK_R_BAD_CONFIGURATION) {
            SK_RAISE(ctx, reason, "%s", why);
            return 0;
        }
        /* the provider still loads (an application that never uses it
           keeps working, with nothing left on its error queue); the
           first key load or operation reports the error */
        ctx->config_error_reason = reason;
        snprintf(ctx->config_error, sizeof(ctx->config_error), "%s", why);
        return 1;
    }
    debug_settings(settings);
    return 1;
}

static char *resolve_api_key(sk_provctx *ctx)
{
    char *source = NULL, *key;
    char why[512];
    int unset, reason = 0;

    /* a copy: another thread may wipe a literal once its client exists */
    pthread_mutex_lock(&ctx->key_source_lock);
    unset = ctx->settings.api_key_source == NULL;
    if (!unset)
        source = OPENSSL_strdup(ctx->settings.api_key_source);
    pthread_mutex_unlock(&ctx->key_source_lock);
    if (unset) {
        SK_RAISE(ctx, SK_R_MISSING_CONFIGURATION,
                 "no SmartKey API key: set %s in the provider's openssl.cnf "
                 "section (a literal, file:PATH or env:NAME) or the %s "
                 "environment variable",
                 SMARTKEY_CFG_API_KEY, SMARTKEY_ENV_API_KEY);
        return NULL;
    }
    if (source == NULL) {
        SK_RAISE(ctx, SK_R_OUT_OF_MEMORY, "reading the API key");
        return NULL;
    }
    key = sk_api_key_resolve(source, &reason, why, sizeof(why));
    if (key == NULL)
        SK_RAISE(ctx, reason, "%s", why);
    OPENSSL_cleanse(source, strlen(source));
    OPENSSL_free(source);
    return key;
}

/* After start-up the API key lives in the client only: a literal from
   openssl.cnf (or SMARTKEY_API_KEY) is wiped from the settings; file: and
   env: name where it is, not the key. */
static void wipe_literal_api_key(sk_provctx *ctx)
{
    char *source;

    pthread_mutex_lock(&ctx->key_source_lock);
    source = ctx->settings.api_key_source;
    if (source != NULL && strncmp(source, "file:", 5) != 0 &&
        strncmp(source, "env:", 4) != 0)
        OPENSSL_cleanse(source, strlen(source));
    pthread_mutex_unlock(&ctx->key_source_lock);
}

/* The client's configuration from the provider's settings. */
static void client_config(const sk_settings *settings, const char *api_key,
                          sk_client_config *config)
{
    memset(config, 0, sizeof(*config));
    config->endpoint = settings->api_endpoint;
    config->api_key = api_key;
    config->ca_file = settings->ca_file;
    config->ca_path = settings->ca_path;
    config->proxy = settings->proxy;
    config->no_proxy = settings->no_proxy;
    config->connect_timeout_ms = (long)(settings->connect_timeout * 1000);
    config->request_timeout_ms = (long)(settings->request_timeout * 1000);
    config->retries = settings->retries;
    config->insecure_skip_verify = settings->insecure_skip_verify;
    config->batch_max_size = (unsigned)settings->batch_max_size;
    /* the client reads 0 as "its default": 0 s here means no wait */
    config->batch_max_wait_us = settings->batch_max_wait > 0
                                    ? (long)(settings->batch_max_wait * 1e6)
                                    : 1;
    config->auth = settings->auth;
    config->async_off = settings->async_off;
    /* debug off: the client formats no message at all */
    config->log = sk_debug_level > 0 ? sk_debug_client_log : NULL;
    config->log_arg = NULL;
    config->log_level = sk_debug_level;
}

sk_client *sk_provctx_client(sk_provctx *ctx)
{
    sk_client_config config;
    sk_client *client, *published = NULL;
    sk_error err;
    char *api_key;

    client = atomic_load(&ctx->client);
    if (client != NULL)
        return client;
    if (ctx->config_error_reason != 0) {
        SK_RAISE(ctx, ctx->config_error_reason, "%s", ctx->config_error);
        return NULL;
    }

    /* another thread may have published a client and wiped a literal
       key meanwhile: then its client is used and this error dropped */
    sk_set_error_mark(ctx);
    api_key = resolve_api_key(ctx);
    if (api_key == NULL) {
        client = atomic_load(&ctx->client);
        if (client != NULL)
            sk_pop_error_to_mark(ctx);
        else
            sk_clear_last_error_mark(ctx);
        return client;
    }
    sk_clear_last_error_mark(ctx);
    client_config(&ctx->settings, api_key, &config);

    memset(&err, 0, sizeof(err));
    client = sk_client_new(&config, &err);
    OPENSSL_cleanse(api_key, strlen(api_key));
    OPENSSL_free(api_key);
    if (client == NULL) {
        char subject[300];

        snprintf(subject, sizeof(subject), "SmartKey at %.256s",
                 ctx->settings.api_endpoint);
        SK_RAISE_CLIENT(ctx, subject, &err);
        return NULL;
    }
    /* threads racing on first use: one client wins, the others (never
       used, no connection yet) are dropped */
    if (!atomic_compare_exchange_strong(&ctx->client, &published, client)) {
        sk_client_free(client);
        client = published;
    } else {
        wipe_literal_api_key(ctx);
    }
    return client;
}

/* --- entry point ------------------------------------------------------- */

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
    __attribute__((visibility("default")));

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *core_get_params = NULL;
    sk_provctx *ctx = OPENSSL_zalloc(sizeof(*ctx));
    const OSSL_DISPATCH *fn;

    if (ctx == NULL)
        return 0;
    ctx->handle = handle;
    atomic_init(&ctx->client, NULL);
    pthread_mutex_init(&ctx->key_source_lock, NULL);
    for (fn = in; fn->function_id != 0; fn++) {
        switch (fn->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            core_get_params = OSSL_FUNC_core_get_params(fn);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            ctx->core_new_error = OSSL_FUNC_core_new_error(fn);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            ctx->core_set_error_debug = OSSL_FUNC_core_set_error_debug(fn);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            ctx->core_vset_error = OSSL_FUNC_core_vset_error(fn);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_MARK:
            ctx->core_set_error_mark = OSSL_FUNC_core_set_error_mark(fn);
            break;
        case OSSL_FUNC_CORE_CLEAR_LAST_ERROR_MARK:
            ctx->core_clear_last_error_mark =
                OSSL_FUNC_core_clear_last_error_mark(fn);
            break;
        case OSSL_FUNC_CORE_POP_ERROR_TO_MARK:
            ctx->core_pop_error_to_mark = OSSL_FUNC_core_pop_error_to_mark(fn);
            break;
        }
    }
    if (ctx->core_new_error == NULL || ctx->core_set_error_debug == NULL ||
        ctx->core_vset_error == NULL)
        ctx->core_new_error = NULL; /* fall back to ERR_raise */

    if (!read_settings(ctx, handle, core_get_params))
        goto fail;
    ctx->key_cache = sk_key_cache_new();
    ctx->libctx = OSSL_LIB_CTX_new_child(handle, in);
    if (ctx->key_cache == NULL || ctx->libctx == NULL) {
        SK_RAISE(ctx, SK_R_OUT_OF_MEMORY, "creating the provider context");
        goto fail;
    }
    add_live_context(ctx);
    *out = provider_functions;
    *provctx = ctx;
    return 1;

fail:
    teardown(ctx);
    return 0;
}
