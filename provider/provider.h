/*
 * The smartkey provider's shared internals: the provider context, the
 * algorithm names, the reason codes and the error/debug macros every
 * operation file uses.
 */
#ifndef SMARTKEY_PROVIDER_H
#define SMARTKEY_PROVIDER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>

#include <smartkey/smartkey.h>

#include "client.h"
#include "debug.h"

#ifndef SMARTKEY_VERSION
#define SMARTKEY_VERSION "0.1.0"
#endif

/* Property string of every algorithm we register. */
#define SK_PROPS "provider=" SMARTKEY_PROVIDER_NAME

/*
 * Full alias lists: EVP_PKEY_is_a() (libssl's certificate lookup) and the
 * legacy NID mapping behind EVP_PKEY_get_id() only work when the OID and
 * its long name are registered too (docs/openssl-dispatch.md §2).
 */
#define SK_NAMES_RSA "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define SK_NAMES_EC  "EC:id-ecPublicKey:1.2.840.10045.2.1"
/* Ed25519 (RFC 8410): the key type and its signature share the names */
#define SK_NAMES_ED25519 "ED25519:1.3.101.112"
/* Signature algorithm names (keymgmt query_operation_name answers) */
#define SK_NAMES_ECDSA             "ECDSA"
#define SK_NAMES_ED25519_SIGNATURE "ED25519"

/* Dispatch tables of the operation files */
extern const OSSL_DISPATCH sk_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH sk_ec_keymgmt_functions[];
extern const OSSL_DISPATCH sk_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH sk_ed25519_signature_functions[];
extern const OSSL_DISPATCH sk_store_functions[];
extern const OSSL_DISPATCH sk_text_encoder_functions[];
extern const OSSL_DISPATCH sk_keyref_pem_encoder_functions[];
extern const OSSL_DISPATCH sk_keyref_der_encoder_functions[];
extern const OSSL_DISPATCH sk_keyref_pkcs8_der_encoder_functions[];
extern const OSSL_DISPATCH sk_keyref_pem_decoder_functions[];
extern const OSSL_DISPATCH sk_keyref_rsa_decoder_functions[];
extern const OSSL_DISPATCH sk_keyref_ec_decoder_functions[];
extern const OSSL_DISPATCH sk_keyref_ed25519_decoder_functions[];
extern const OSSL_DISPATCH sk_rsa_signature_functions[];
extern const OSSL_DISPATCH sk_ecdsa_signature_functions[];
extern const OSSL_DISPATCH sk_rsa_asym_cipher_functions[];

/* Reason codes (table of strings in errors.c). */
enum {
    SK_R_UNKNOWN_KEY = 1,
    SK_R_BAD_API_KEY,
    SK_R_SERVER_UNREACHABLE,
    SK_R_TIMEOUT,
    SK_R_UNTRUSTED_CERTIFICATE,
    SK_R_API_KEY_FILE_PERMISSIONS,
    SK_R_MISSING_CONFIGURATION,
    SK_R_BAD_CONFIGURATION,
    SK_R_OPERATION_NOT_ALLOWED,
    SK_R_APPROVAL_REQUIRED,
    SK_R_BAD_REQUEST,
    SK_R_SERVER_BUSY,
    SK_R_SERVER_ERROR,
    SK_R_BAD_RESPONSE,
    SK_R_MALFORMED_URI,
    SK_R_UNSUPPORTED_KEY_TYPE,
    SK_R_NO_PRIVATE_KEY,
    SK_R_PRIVATE_KEY_NOT_EXPORTABLE,
    SK_R_INTERNAL_ERROR,
    SK_R_OUT_OF_MEMORY,
    SK_R_INVALID_PARAMETER,
    SK_R_BAD_KEY_REFERENCE,
    SK_R_KEY_GENERATION_FAILED,
    SK_R_SIGNATURE_NOT_VERIFIED,
    SK_R_APPROVAL_PENDING,
    SK_R_APPROVAL_DENIED,
    SK_R_APPROVAL_EXPIRED,
    SK_R_APPROVAL_TIMEOUT,
    SK_R_APPROVAL_MISMATCH,
};

/* Settings after openssl.cnf and the environment were merged. */
typedef struct sk_settings {
    char *api_endpoint;
    char *api_key_source; /* literal, file:PATH or env:NAME; a secret */
    char *ca_file;
    char *ca_path;
    double connect_timeout;
    double request_timeout;
    int retries;
    double cache_lifetime;
    int insecure_skip_verify; /* only when configured explicitly */
    int batch_max_size;       /* 0: batching off */
    double batch_max_wait;    /* seconds */
    sk_auth_mode auth;        /* auth = auto (default), session, api-key */
    char *proxy;              /* NULL: none; "env"; or a proxy URL */
    char *no_proxy;
    int async_off;           /* async = off */
    int approval_mode;       /* sk_approval_mode (approval = fail...) */
    double approval_timeout; /* seconds */
    /* hash_alg of Ed25519 sign requests, SmartKey's spelling (static) */
    const char *ed25519_hash_alg;
} sk_settings;

typedef struct sk_key_cache sk_key_cache;

typedef struct sk_provctx {
    const OSSL_CORE_HANDLE *handle;
    /* child of the application's libctx: decoding pub_key, hashing */
    OSSL_LIB_CTX *libctx;
    OSSL_FUNC_core_new_error_fn *core_new_error;
    OSSL_FUNC_core_set_error_debug_fn *core_set_error_debug;
    OSSL_FUNC_core_vset_error_fn *core_vset_error;
    OSSL_FUNC_core_set_error_mark_fn *core_set_error_mark;
    OSSL_FUNC_core_clear_last_error_mark_fn *core_clear_last_error_mark;
    OSSL_FUNC_core_pop_error_to_mark_fn *core_pop_error_to_mark;

    sk_settings settings;
    /* A bad openssl.cnf value, raised again on first use: errors of a
       provider activated from openssl.cnf are dropped by OpenSSL (nobody
       prints them), the user would only see "unregistered scheme". */
    int config_error_reason;
    char config_error[512];

    /*
     * Created on first use: loading the provider must not touch the
     * network or read the API key. Published with a compare-and-swap, not
     * under a lock: sk_client_new takes the client's own locks, which its
     * fork handlers take in the opposite order.
     */
    _Atomic(sk_client *) client;
    /* Guards reading settings.api_key_source against its wiping once the
       client exists (the key then lives in the client only). A leaf lock:
       nothing else is taken while it is held. */
    pthread_mutex_t key_source_lock;

    sk_key_cache *key_cache;

    struct sk_provctx *next_live; /* list of live contexts (fork) */
} sk_provctx;

/*
 * The SmartKey client, created on first use. NULL (with an error raised
 * naming what is missing or wrong) when the configuration cannot work.
 */
sk_client *sk_provctx_client(sk_provctx *ctx);

/* Errors: raise through the core so the reason strings of this provider
   show up in ERR_print_errors(). */
void sk_raise(sk_provctx *ctx, const char *file, int line, const char *func,
              int reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* One entry of an OSSL_DISPATCH table: SK_DISPATCH(SIGNATURE_NEWCTX, fn). */
#define SK_DISPATCH(id, fn)                                                    \
    {                                                                          \
        OSSL_FUNC_##id, (void (*)(void))(fn)                                   \
    }

#define SK_RAISE(ctx, reason, ...)                                             \
    sk_raise((ctx), __FILE__, __LINE__, __func__, (reason), __VA_ARGS__)

/*
 * A failed SmartKey call as a user-readable error: what (the key named by
 * subject, e.g. "key 'my key'"), the request, the HTTP status and
 * SmartKey's own text.
 */
void sk_raise_client_error(sk_provctx *ctx, const char *file, int line,
                           const char *func, const char *subject,
                           const sk_error *err);
#define SK_RAISE_CLIENT(ctx, subject, err)                                     \
    sk_raise_client_error((ctx), __FILE__, __LINE__, __func__, (subject), (err))

/* Marks around calls that are allowed to fail, so the error queue stays
   clean for libssl and the apps. */
void sk_set_error_mark(sk_provctx *ctx);
void sk_pop_error_to_mark(sk_provctx *ctx);
void sk_clear_last_error_mark(sk_provctx *ctx);

const OSSL_ITEM *sk_reason_strings(void);

#endif
