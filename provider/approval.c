/*
 * Quorum approvals, the provider's side: which mode an operation runs in,
 * what approvers read, what the user is told (docs/approval.md).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "approval.h"
#include "params.h"

static const struct {
    const char *name;
    sk_approval_mode mode;
} modes[] = {
    {SMARTKEY_APPROVAL_FAIL, SK_APPROVAL_FAIL},
    {SMARTKEY_APPROVAL_REQUEST, SK_APPROVAL_REQUEST},
    {SMARTKEY_APPROVAL_WAIT, SK_APPROVAL_WAIT},
};

void sk_approval_opts_init(sk_approval_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->mode = -1;
}

int sk_approval_set_params(sk_provctx *ctx, sk_approval_opts *opts,
                           const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    char text[64];
    size_t i;

    p = OSSL_PARAM_locate_const(params, SMARTKEY_PARAM_APPROVAL);
    if (p != NULL) {
        if (!sk_param_text(ctx, p, text, sizeof(text)))
            return 0;
        for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
            if (strcasecmp(text, modes[i].name) == 0)
                break;
        if (i == sizeof(modes) / sizeof(modes[0])) {
            SK_RAISE(ctx, SK_R_INVALID_PARAMETER,
                     "%s:%.64s is not fail, request or wait",
                     SMARTKEY_PARAM_APPROVAL, text);
            return 0;
        }
        opts->mode = (int)modes[i].mode;
    }
    p = OSSL_PARAM_locate_const(params, SMARTKEY_PARAM_APPROVAL_REQUEST);
    if (p != NULL) {
        if (!sk_param_text(ctx, p, text, sizeof(text)))
            return 0;
        if (text[0] != '\0' && !sk_is_uuid(text, strlen(text))) {
            SK_RAISE(ctx, SK_R_INVALID_PARAMETER,
                     "%s:%.64s is not the id of an approval request (a "
                     "UUID, as the request's error printed it)",
                     SMARTKEY_PARAM_APPROVAL_REQUEST, text);
            return 0;
        }
        /* a UUID (36 characters) or empty: it fits */
        OPENSSL_strlcpy(opts->resume_id, text, sizeof(opts->resume_id));
    }
    return 1;
}

static const char *mode_name(int mode)
{
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if ((int)modes[i].mode == mode)
            return modes[i].name;
    return "?";
}

/* Printed once per approval request by the waiting thread (stderr is
   what a person running openssl reads; stdio keeps lines whole). */
static void notify_waiting(void *arg, const char *request_id)
{
    sk_approval_ctx *a = arg;

    fprintf(stderr,
            "smartkey: %s needs a quorum approval. Approval request %s is "
            "waiting for the approvers of the key's group in SmartKey "
            "(each approves it in the SmartKey console, or with POST "
            "/sys/v1/approval_requests/%s/approve); waiting up to %.0f s "
            "(approval_timeout).\n",
            a->what, request_id, request_id, a->wire.timeout);
    fflush(stderr);
    SK_DEBUG(1, "waiting for approval request %s (%s)", request_id, a->what);
}

int sk_approval_describes(const sk_provctx *ctx, const sk_approval_opts *opts)
{
    int mode = opts != NULL && opts->mode >= 0 ? opts->mode
                                               : ctx->settings.approval_mode;

    return mode != SK_APPROVAL_FAIL;
}

sk_approval *sk_approval_prepare(sk_approval_ctx *a, sk_provctx *ctx,
                                 const sk_approval_opts *opts, const char *what,
                                 const char *fmt, ...)
{
    char host[64] = "";
    char body[768];
    va_list args;

    memset(a, 0, sizeof(*a));
    a->provctx = ctx;
    a->requested_mode = opts != NULL && opts->mode >= 0
                            ? opts->mode
                            : ctx->settings.approval_mode;
    a->wire.mode = (sk_approval_mode)a->requested_mode;
    a->wire.timeout = ctx->settings.approval_timeout;
    a->wire.resume_id =
        opts != NULL && opts->resume_id[0] != '\0' ? opts->resume_id : NULL;
    a->wire.notify = notify_waiting;
    a->wire.notify_arg = a;
    snprintf(a->what, sizeof(a->what), "%s", what);
    /* approval = fail never makes an approval request: nobody reads the
       description (nor the callers' fingerprints and digests) */
    if (a->wire.mode == SK_APPROVAL_FAIL)
        return &a->wire;
    va_start(args, fmt);
    vsnprintf(body, sizeof(body), fmt, args);
    va_end(args);
    if (gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    snprintf(a->description, sizeof(a->description),
             "%s. Requested with OpenSSL (smartkey provider " SMARTKEY_VERSION
             ")%s%s, process %ld.",
             body, host[0] != '\0' ? " on host " : "", host, (long)getpid());
    a->wire.description = a->description;
    return &a->wire;
}

/* Where an error is raised from (the caller of sk_approval_raise). */
typedef struct raise_site {
    const char *file;
    int line;
    const char *func;
} raise_site;

#define RAISE(site, ctx, reason, ...)                                          \
    sk_raise((ctx), (site)->file, (site)->line, (site)->func, (reason),        \
             __VA_ARGS__)

/* approval = fail, or request on a call that cannot be resumed. */
static void raise_required(const sk_approval_ctx *a, const sk_error *err,
                           const raise_site *site)
{
    if (a->wire.not_resumable) {
        RAISE(site, a->provctx, SK_R_APPROVAL_REQUIRED,
              "%s: SmartKey requires a quorum approval, and this operation "
              "uses a transient key of this process's session (a hybrid "
              "BYOK format, or a wrapping key from a local file) that "
              "another command could not use to complete it: use -pkeyopt "
              "%s:wait (or approval = wait) so that this command waits for "
              "the approvers",
              a->what, SMARTKEY_PARAM_APPROVAL);
        return;
    }
    RAISE(site, a->provctx, SK_R_APPROVAL_REQUIRED,
          "%s: %s -> HTTP %ld: %s (the key's group policy asks a quorum of "
          "approvers). Ask them: run the command again with -pkeyopt "
          "%s:request (it prints the approval request's id; once approved, "
          "run it with -pkeyopt %s:ID) or with -pkeyopt %s:wait to wait for "
          "them (-sigopt with openssl dgst; or approval = request|wait in "
          "openssl.cnf, " SMARTKEY_ENV_APPROVAL " in the environment)",
          a->what, err->request, err->http_status,
          err->message[0] != '\0' ? err->message
                                  : "This operation requires approval",
          SMARTKEY_PARAM_APPROVAL, SMARTKEY_PARAM_APPROVAL_REQUEST,
          SMARTKEY_PARAM_APPROVAL);
}

/* A request made (request) or resumed before the quorum was reached. */
static void raise_pending(const sk_approval_ctx *a, const raise_site *site)
{
    const char *id = a->wire.request_id;

    if (a->wire.resume_id == NULL)
        RAISE(site, a->provctx, SK_R_APPROVAL_PENDING,
              "%s: SmartKey requires a quorum approval; approval request %s "
              "was created for it. Once the approvers have approved it, run "
              "the same command with -pkeyopt %s:%s to complete the "
              "operation",
              a->what, id, SMARTKEY_PARAM_APPROVAL_REQUEST, id);
    else
        RAISE(site, a->provctx, SK_R_APPROVAL_PENDING,
              "%s: approval request %s is still pending: run the command "
              "again once the approvers have approved it, or add -pkeyopt "
              "%s:wait to wait for them",
              a->what, id, SMARTKEY_PARAM_APPROVAL);
}

/* Denied, expired, timed out, or the id of another operation. */
static void raise_outcome(const sk_approval_ctx *a, const sk_error *err,
                          const raise_site *site)
{
    const char *id = a->wire.request_id;

    if (err->kind == SK_ERR_APPROVAL_DENIED)
        RAISE(site, a->provctx, SK_R_APPROVAL_DENIED, "%s: %s", a->what,
              err->message);
    else if (err->kind == SK_ERR_APPROVAL_EXPIRED)
        RAISE(site, a->provctx, SK_R_APPROVAL_EXPIRED,
              "%s: %s; the approvers did not approve it in time: ask again "
              "(-pkeyopt %s:request or :wait, without %s)",
              a->what, err->message, SMARTKEY_PARAM_APPROVAL,
              SMARTKEY_PARAM_APPROVAL_REQUEST);
    else if (err->kind == SK_ERR_APPROVAL_TIMEOUT)
        RAISE(site, a->provctx, SK_R_APPROVAL_TIMEOUT,
              "%s: approval request %s was not approved within %.0f s "
              "(approval_timeout); it stays open: once approved, run the "
              "same command with -pkeyopt %s:%s",
              a->what, id, a->wire.timeout, SMARTKEY_PARAM_APPROVAL_REQUEST,
              id);
    else
        RAISE(site, a->provctx, SK_R_APPROVAL_MISMATCH,
              "%s: %s; %s names the approval request made by the very same "
              "command",
              a->what, err->message, SMARTKEY_PARAM_APPROVAL_REQUEST);
}

int sk_approval_raise(sk_approval_ctx *a, const sk_error *err, const char *file,
                      int line, const char *func)
{
    raise_site site = {file, line, func};

    switch (err->kind) {
    case SK_ERR_APPROVAL:
        raise_required(a, err, &site);
        return 1;
    case SK_ERR_APPROVAL_PENDING:
        raise_pending(a, &site);
        return 1;
    case SK_ERR_APPROVAL_DENIED:
    case SK_ERR_APPROVAL_EXPIRED:
    case SK_ERR_APPROVAL_TIMEOUT:
    case SK_ERR_APPROVAL_MISMATCH:
        raise_outcome(a, err, &site);
        return 1;
    default:
        break;
    }
    /* an approved call that failed: SmartKey's own error, with the id */
    if (a->wire.request_id[0] != '\0')
        SK_DEBUG(1, "approval request %s (mode %s): the call failed",
                 a->wire.request_id, mode_name(a->requested_mode));
    return 0;
}

void sk_approval_hex(const unsigned char *data, size_t len, char *out,
                     size_t out_len)
{
    size_t used = 0;

    if (out_len == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < len && i < 32 && used + 3 <= out_len; i++)
        used += (size_t)snprintf(out + used, out_len - used, "%02x", data[i]);
}

void sk_approval_fingerprint(const EVP_PKEY *pkey, char *out, size_t len)
{
    unsigned char *spki = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int spki_len;
    size_t used = 0;

    if (len == 0)
        return;
    out[0] = '\0';
    spki_len = pkey != NULL ? i2d_PUBKEY((EVP_PKEY *)pkey, &spki) : -1;
    if (spki_len <= 0)
        return;
    if (EVP_Digest(spki, (size_t)spki_len, md, &md_len, EVP_sha256(), NULL)) {
        used = (size_t)snprintf(out, len, "SHA-256 fingerprint ");
        for (unsigned i = 0; i < md_len && used + 4 <= len; i++)
            used += (size_t)snprintf(out + used, len - used, "%s%02x",
                                     i ? ":" : "", md[i]);
    }
    OPENSSL_free(spki);
}
