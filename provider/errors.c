#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "provider.h"

static const OSSL_ITEM reason_strings[] = {
    {SK_R_UNKNOWN_KEY, "no such key in SmartKey"},
    {SK_R_BAD_API_KEY, "SmartKey rejected the API key"},
    {SK_R_SERVER_UNREACHABLE, "cannot reach the SmartKey server"},
    {SK_R_TIMEOUT, "SmartKey did not answer in time"},
    {SK_R_UNTRUSTED_CERTIFICATE, "TLS with SmartKey failed"},
    {SK_R_API_KEY_FILE_PERMISSIONS,
     "API key file is readable by group or others"},
    {SK_R_MISSING_CONFIGURATION, "smartkey provider is not configured"},
    {SK_R_BAD_CONFIGURATION, "invalid smartkey provider configuration"},
    {SK_R_OPERATION_NOT_ALLOWED, "SmartKey does not allow this operation"},
    {SK_R_APPROVAL_REQUIRED, "the operation requires a quorum approval"},
    {SK_R_BAD_REQUEST, "SmartKey refused the request"},
    {SK_R_SERVER_BUSY, "SmartKey is throttling requests"},
    {SK_R_SERVER_ERROR, "SmartKey server error"},
    {SK_R_BAD_RESPONSE, "unexpected answer from SmartKey"},
    {SK_R_MALFORMED_URI, "malformed smartkey: URI"},
    {SK_R_UNSUPPORTED_KEY_TYPE, "key type not supported"},
    {SK_R_NO_PRIVATE_KEY, "no private key (public-only key or type=public)"},
    {SK_R_PRIVATE_KEY_NOT_EXPORTABLE,
     "private key stays in SmartKey and cannot be exported"},
    {SK_R_INTERNAL_ERROR, "internal error in the smartkey provider"},
    {SK_R_OUT_OF_MEMORY, "out of memory"},
    {SK_R_INVALID_PARAMETER, "invalid operation parameter"},
    {SK_R_BAD_KEY_REFERENCE, "malformed SmartKey key reference file"},
    {SK_R_KEY_GENERATION_FAILED, "key generation in SmartKey failed"},
    {SK_R_SIGNATURE_NOT_VERIFIED,
     "SmartKey returned a signature that does not verify"},
    {SK_R_APPROVAL_PENDING, "the quorum approval request is pending"},
    {SK_R_APPROVAL_DENIED, "the quorum approval was denied"},
    {SK_R_APPROVAL_EXPIRED, "the quorum approval request expired"},
    {SK_R_APPROVAL_TIMEOUT, "no quorum approval within approval_timeout"},
    {SK_R_APPROVAL_MISMATCH, "the approval request is for another operation"},
    {0, NULL},
};

/* The public numbers of <smartkey/smartkey.h> are these reasons. */
_Static_assert(SMARTKEY_R_SERVER_UNREACHABLE == SK_R_SERVER_UNREACHABLE &&
                   SMARTKEY_R_TIMEOUT == SK_R_TIMEOUT &&
                   SMARTKEY_R_SERVER_BUSY == SK_R_SERVER_BUSY,
               "public reason codes");

const OSSL_ITEM *sk_reason_strings(void)
{
    return reason_strings;
}

static const char *reason_text(int reason)
{
    const OSSL_ITEM *item;

    for (item = reason_strings; item->ptr != NULL; item++)
        if ((int)item->id == reason)
            return item->ptr;
    return "?";
}

/* The core's vset_error takes a va_list: this makes one for "%s". */
static void set_core_error(sk_provctx *ctx, int reason, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    if (ctx == NULL || ctx->core_new_error == NULL)
        ERR_vset_error(ERR_LIB_PROV, ERR_R_INTERNAL_ERROR, fmt, args);
    else
        ctx->core_vset_error(ctx->handle, (uint32_t)reason, fmt, args);
    va_end(args);
}

__attribute__((format(printf, 6, 0))) static void
vraise(sk_provctx *ctx, const char *file, int line, const char *func,
       int reason, const char *fmt, va_list args)
{
    /* the build machine's directories mean nothing to users */
    const char *base = strrchr(file, '/');
    char message[1024], escaped[2048];

    file = base != NULL ? base + 1 : file;
    /* key names (from URIs or SmartKey) and server text may hold control
       characters: escaped, so a name cannot forge lines or terminal
       sequences in the error output or the log */
    vsnprintf(message, sizeof(message), fmt, args);
    sk_escape_text(message, SIZE_MAX, escaped, sizeof(escaped));
    if (sk_debug_level >= 1)
        sk_debug_write(1, file, line, func, "error: %s: %s",
                       reason_text(reason), escaped);
    if (ctx == NULL || ctx->core_new_error == NULL) {
        /* before the core handed us its upcalls (or in unit tests) */
        ERR_new();
        ERR_set_debug(file, line, func);
    } else {
        ctx->core_new_error(ctx->handle);
        ctx->core_set_error_debug(ctx->handle, file, line, func);
    }
    set_core_error(ctx, reason, "%s", escaped);
}

void sk_raise(sk_provctx *ctx, const char *file, int line, const char *func,
              int reason, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    vraise(ctx, file, line, func, reason, fmt, args);
    va_end(args);
}

static int reason_of(sk_err_kind kind)
{
    switch (kind) {
    case SK_ERR_CONFIG:
        return SK_R_BAD_CONFIGURATION;
    case SK_ERR_NETWORK:
        return SK_R_SERVER_UNREACHABLE;
    case SK_ERR_TIMEOUT:
        return SK_R_TIMEOUT;
    case SK_ERR_TLS:
    case SK_ERR_TLS_NAME:
        return SK_R_UNTRUSTED_CERTIFICATE;
    case SK_ERR_AUTH:
        return SK_R_BAD_API_KEY;
    case SK_ERR_FORBIDDEN:
        return SK_R_OPERATION_NOT_ALLOWED;
    case SK_ERR_APPROVAL:
        return SK_R_APPROVAL_REQUIRED;
    case SK_ERR_NOT_FOUND:
        return SK_R_UNKNOWN_KEY;
    case SK_ERR_BAD_REQUEST:
        return SK_R_BAD_REQUEST;
    case SK_ERR_THROTTLED:
        return SK_R_SERVER_BUSY;
    case SK_ERR_SERVER:
        return SK_R_SERVER_ERROR;
    case SK_ERR_PROTOCOL:
        return SK_R_BAD_RESPONSE;
    case SK_ERR_NOMEM:
        return SK_R_OUT_OF_MEMORY;
    case SK_ERR_APPROVAL_PENDING:
        return SK_R_APPROVAL_PENDING;
    case SK_ERR_APPROVAL_DENIED:
        return SK_R_APPROVAL_DENIED;
    case SK_ERR_APPROVAL_EXPIRED:
        return SK_R_APPROVAL_EXPIRED;
    case SK_ERR_APPROVAL_TIMEOUT:
        return SK_R_APPROVAL_TIMEOUT;
    case SK_ERR_APPROVAL_MISMATCH:
        return SK_R_APPROVAL_MISMATCH;
    case SK_ERR_NONE:
        break;
    }
    return SK_R_INTERNAL_ERROR;
}

/* What the user can do about it, beyond SmartKey's own words. */
static const char *advice_for(sk_err_kind kind)
{
    switch (kind) {
    case SK_ERR_AUTH:
        return "; check the provider's api_key (or " SMARTKEY_ENV_API_KEY ")";
    case SK_ERR_TLS:
        return "; server certificate not trusted? set ca_file "
               "(or " SMARTKEY_ENV_CA_FILE
               ") to the CA that issued the server's certificate";
    case SK_ERR_TLS_NAME:
        return "; SmartKey's certificate does not match the host name in "
               "api_endpoint (or " SMARTKEY_ENV_API_ENDPOINT
               "): use a host name the certificate names";
    case SK_ERR_NETWORK:
    case SK_ERR_TIMEOUT:
        return "; check api_endpoint (or " SMARTKEY_ENV_API_ENDPOINT
               ") and the network";
    default:
        return "";
    }
}

void sk_raise_client_error(sk_provctx *ctx, const char *file, int line,
                           const char *func, const char *subject,
                           const sk_error *err)
{
    char where[128] = "";
    const char *text =
        err->message[0] != '\0' ? err->message : sk_err_kind_name(err->kind);

    /* "POST /crypto/v1/keys/info -> HTTP 404" */
    if (err->request[0] != '\0' && err->http_status != 0)
        snprintf(where, sizeof(where), "%s -> HTTP %ld: ", err->request,
                 err->http_status);
    else if (err->request[0] != '\0')
        snprintf(where, sizeof(where), "%s: ", err->request);
    else if (err->http_status != 0)
        snprintf(where, sizeof(where), "HTTP %ld: ", err->http_status);
    sk_raise(ctx, file, line, func, reason_of(err->kind), "%s%s%s%s%s",
             subject != NULL ? subject : "", subject != NULL ? ": " : "", where,
             text, advice_for(err->kind));
}

void sk_set_error_mark(sk_provctx *ctx)
{
    if (ctx != NULL && ctx->core_set_error_mark != NULL)
        ctx->core_set_error_mark(ctx->handle);
    else
        ERR_set_mark();
}

void sk_pop_error_to_mark(sk_provctx *ctx)
{
    if (ctx != NULL && ctx->core_pop_error_to_mark != NULL)
        ctx->core_pop_error_to_mark(ctx->handle);
    else
        ERR_pop_to_mark();
}

void sk_clear_last_error_mark(sk_provctx *ctx)
{
    if (ctx != NULL && ctx->core_clear_last_error_mark != NULL)
        ctx->core_clear_last_error_mark(ctx->handle);
    else
        ERR_clear_last_mark();
}
