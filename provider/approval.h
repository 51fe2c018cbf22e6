/*
 * Quorum approvals seen from the provider (docs/approval.md): the
 * smartkey-approval and smartkey-approval-request operation parameters,
 * the description approvers read, the message shown once while waiting,
 * and the errors that say what to do next. The wire is the client's
 * (client/approval.c).
 */
#ifndef SMARTKEY_APPROVAL_H
#define SMARTKEY_APPROVAL_H

#include <openssl/core.h>
#include <openssl/evp.h>

#include "provider.h"

/* The entries of a settable list (text: -pkeyopt / -sigopt values). */
#define SK_APPROVAL_SETTABLE_PARAMS                                            \
    OSSL_PARAM_utf8_string(SMARTKEY_PARAM_APPROVAL, NULL, 0),                  \
        OSSL_PARAM_utf8_string(SMARTKEY_PARAM_APPROVAL_REQUEST, NULL, 0)

/* What an operation's parameters asked for. */
typedef struct sk_approval_opts {
    int mode;           /* sk_approval_mode, or -1: the provider's setting */
    char resume_id[37]; /* "": none */
} sk_approval_opts;

void sk_approval_opts_init(sk_approval_opts *opts);
/* Reads the two parameters when present; 0 with an error raised. */
int sk_approval_set_params(sk_provctx *ctx, sk_approval_opts *opts,
                           const OSSL_PARAM params[]);

/* One call's approval: the client's part and the words for the user. */
typedef struct sk_approval_ctx {
    sk_approval wire;
    sk_provctx *provctx;
    int requested_mode; /* the mode asked for (wire.mode may be lowered) */
    char what[400];     /* "signing with key 'x' (kid)" */
    char description[1024];
} sk_approval_ctx;

/*
 * Prepares a call: the mode (the operation's parameter, else openssl.cnf /
 * SMARTKEY_APPROVAL), the timeout, the request to resume, and the
 * description for approvers (printf-style; the provider adds where the
 * request comes from). what names the operation and its key for errors.
 * Returns &a->wire, to put in the client's request.
 */
sk_approval *sk_approval_prepare(sk_approval_ctx *a, sk_provctx *ctx,
                                 const sk_approval_opts *opts, const char *what,
                                 const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * When err is about a quorum approval, raises it with what to do next
 * (ask, resume, wait; the request id, the approver's reason) and returns
 * 1; otherwise returns 0 and raises nothing.
 */
int sk_approval_raise(sk_approval_ctx *a, const sk_error *err, const char *file,
                      int line, const char *func);
#define SK_RAISE_APPROVAL(a, err)                                              \
    sk_approval_raise((a), (err), __FILE__, __LINE__, __func__)

/* Whether a call with these options can make an approval request, whose
   description (sk_approval_prepare's text) approvers read: not with
   approval = fail. Callers skip the fingerprints and digests that only
   the description shows (a fingerprint costs more than the request). */
int sk_approval_describes(const sk_provctx *ctx, const sk_approval_opts *opts);

/* "SHA-256 fingerprint ab:cd:..." of a public key's SubjectPublicKeyInfo
   into out (at least 96 bytes); "" when it cannot be computed. */
void sk_approval_fingerprint(const EVP_PKEY *pkey, char *out, size_t len);

/* Hex of the first bytes of data (at most 32), for descriptions. */
void sk_approval_hex(const unsigned char *data, size_t len, char *out,
                     size_t out_len);

#endif
