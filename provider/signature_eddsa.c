/*
 * Pure Ed25519 signatures (RFC 8032) with keys held in SmartKey. EdDSA
 * hashes the message inside the signature, so there is no local digest:
 * the message itself goes to SmartKey as `data` (docs/smartkey-api.md
 * §4.3), one POST /crypto/v1/sign per signature, and the answer (R || S,
 * 64 bytes) is verified here with the key's public half before anyone sees
 * it, like every signature of this provider.
 *
 * OpenSSL signs Ed25519 in one shot: EVP_DigestSign with a NULL digest
 * (req, x509, cms, TLS 1.3, pkeyutl -rawin), never Update/Final. On
 * OpenSSL 3.4+ the message-signing API (EVP_PKEY_sign_message_init with
 * "ED25519", one-shot EVP_PKEY_sign) reaches the same code. Verification
 * never involves SmartKey: the default provider of the child libctx
 * verifies with the public key.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "approval.h"
#include "params.h"
#include "signature.h"

#define ED25519_SIGNATURE_BYTES 64

/* Verification is local and must never come back here (signature.c). */
#define LOCAL_PROPQ "provider!=" SMARTKEY_PROVIDER_NAME

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_signature_newctx_fn ed25519_newctx;
static OSSL_FUNC_signature_freectx_fn ed25519_freectx;
static OSSL_FUNC_signature_dupctx_fn ed25519_dupctx;
static OSSL_FUNC_signature_digest_sign_init_fn ed25519_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_fn ed25519_digest_sign;
static OSSL_FUNC_signature_digest_verify_init_fn ed25519_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_fn ed25519_digest_verify;
static OSSL_FUNC_signature_get_ctx_params_fn ed25519_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn ed25519_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn ed25519_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn ed25519_settable_ctx_params;
#ifdef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT
static OSSL_FUNC_signature_sign_message_init_fn ed25519_sign_message_init;
static OSSL_FUNC_signature_sign_fn ed25519_sign;
static OSSL_FUNC_signature_verify_message_init_fn ed25519_verify_message_init;
static OSSL_FUNC_signature_verify_fn ed25519_verify;
static OSSL_FUNC_signature_query_key_types_fn ed25519_query_key_types;
#endif

typedef enum ed25519_operation {
    ED25519_NONE = 0,
    ED25519_SIGN,
    ED25519_VERIFY,
} ed25519_operation;

typedef struct sk_ed25519_ctx {
    sk_provctx *provctx;
    sk_key *key;
    ed25519_operation operation;
    sk_approval_opts approval; /* smartkey-approval, -approval-request */
} sk_ed25519_ctx;

static void *ed25519_newctx(void *provctx, const char *properties)
{
    sk_ed25519_ctx *ctx;

    if (SK_CTX_NEW(ctx, provctx, "creating an Ed25519 signature context"))
        sk_approval_opts_init(&ctx->approval);
    return ctx;
}

static void ed25519_freectx(void *vctx)
{
    sk_ed25519_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    sk_key_free(ctx->key);
    OPENSSL_free(ctx);
}

static void *ed25519_dupctx(void *vctx)
{
    const sk_ed25519_ctx *from = vctx;
    sk_ed25519_ctx *copy =
        SK_CTX_DUP(from, "copying an Ed25519 signature context");

    if (copy != NULL)
        copy->key = sk_key_up_ref(from->key);
    return copy;
}

/* Pure Ed25519 takes no digest: only none (NULL, "") is accepted. */
static int no_digest(sk_ed25519_ctx *ctx, const char *mdname)
{
    if (mdname == NULL || mdname[0] == '\0')
        return 1;
    SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
             "Ed25519 signs the message itself: no digest may be named "
             "(got '%.64s')",
             mdname);
    return 0;
}

/* Every init: no digest (mdname NULL or ""), the key (signature.c;
   provkey NULL keeps the key of an earlier init, OpenSSL re-initialises
   with the same key), the parameters. */
static int ed25519_init(void *vctx, const char *mdname, void *provkey,
                        ed25519_operation operation, const OSSL_PARAM params[])
{
    sk_ed25519_ctx *ctx = vctx;

    if (!no_digest(ctx, mdname) ||
        !sk_signature_init_key(ctx->provctx, &ctx->key, provkey, SK_KEY_ED25519,
                               operation == ED25519_SIGN))
        return 0;
    ctx->operation = operation;
    SK_DEBUG(3, "key %s: Ed25519 %s", ctx->key->kid,
             operation == ED25519_SIGN ? "signature" : "verification");
    return ed25519_set_ctx_params(ctx, params);
}

static int ed25519_digest_sign_init(void *vctx, const char *mdname,
                                    void *provkey, const OSSL_PARAM params[])
{
    return ed25519_init(vctx, mdname, provkey, ED25519_SIGN, params);
}

static int ed25519_digest_verify_init(void *vctx, const char *mdname,
                                      void *provkey, const OSSL_PARAM params[])
{
    return ed25519_init(vctx, mdname, provkey, ED25519_VERIFY, params);
}

/* sig over tbs verifies under the key's public half, in the default
   provider of the child libctx (no network). */
static int verifies_locally(sk_ed25519_ctx *ctx, const unsigned char *sig,
                            size_t siglen, const unsigned char *tbs,
                            size_t tbslen)
{
    EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
    int ok;

    sk_set_error_mark(ctx->provctx);
    ok =
        md_ctx != NULL &&
        EVP_DigestVerifyInit_ex(md_ctx, NULL, NULL, ctx->provctx->libctx,
                                LOCAL_PROPQ, ctx->key->public_key, NULL) == 1 &&
        EVP_DigestVerify(md_ctx, sig, siglen, tbs, tbslen) == 1;
    EVP_MD_CTX_free(md_ctx);
    sk_pop_error_to_mark(ctx->provctx);
    return ok;
}

static const char *key_label(const sk_key *key)
{
    return key->name != NULL ? key->name : "";
}

/* SmartKey's answer is released only as a 64-byte signature that
   verifies under the key's public half; 0 with the reason raised. */
static int answer_is_sound(sk_ed25519_ctx *ctx, const unsigned char *answer,
                           size_t answer_len, const sk_sign_request *request)
{
    if (answer_len != ED25519_SIGNATURE_BYTES) {
        SK_RAISE(ctx->provctx, SK_R_BAD_RESPONSE,
                 "key %s ('%.200s'): SmartKey returned a %zu-byte Ed25519 "
                 "signature, not %d bytes; nothing was output",
                 ctx->key->kid, key_label(ctx->key), answer_len,
                 ED25519_SIGNATURE_BYTES);
        return 0;
    }
    if (!verifies_locally(ctx, answer, answer_len, request->data,
                          request->data_len)) {
        SK_RAISE(ctx->provctx, SK_R_SIGNATURE_NOT_VERIFIED,
                 "key %s ('%.200s'): SmartKey returned an Ed25519 signature "
                 "that does not verify under the key's public key (hash_alg "
                 "%s); nothing was output",
                 ctx->key->kid, key_label(ctx->key), request->hash_alg);
        return 0;
    }
    return 1;
}

/* One POST /crypto/v1/sign of the message: the answer, or 0 with the
   error (approval, SmartKey's refusal) raised. */
static int sign_in_smartkey(sk_ed25519_ctx *ctx, sk_client *client,
                            sk_sign_request *request, unsigned char **answer,
                            size_t *answer_len)
{
    sk_approval_ctx approval;
    sk_error err;
    char hex[72], subject[300];

    /* what approvers read when the key's group wants a quorum approval */
    snprintf(subject, sizeof(subject), "signing with key '%.200s' (%s)",
             key_label(ctx->key), ctx->key->kid);
    sk_approval_hex(request->data, request->data_len, hex, sizeof(hex));
    request->approval = sk_approval_prepare(
        &approval, ctx->provctx, &ctx->approval, subject,
        "Sign a %zu-byte message beginning %s with key '%.200s' (kid %s), "
        "Ed25519",
        request->data_len, hex, key_label(ctx->key), ctx->key->kid);
    memset(&err, 0, sizeof(err));
    if (sk_client_sign(client, request, answer, answer_len, &err))
        return 1;
    if (SK_RAISE_APPROVAL(&approval, &err))
        return 0;
    snprintf(subject, sizeof(subject), "key %s ('%.200s')", ctx->key->kid,
             key_label(ctx->key));
    if (err.kind == SK_ERR_NOT_FOUND || err.kind == SK_ERR_FORBIDDEN)
        sk_key_cache_forget(ctx->provctx, ctx->key);
    SK_RAISE_CLIENT(ctx->provctx, subject, &err);
    return 0;
}

/*
 * One sign request with the message as `data` and the configured hash_alg
 * (ed25519_hash_alg, SHA512 by default: docs/smartkey-api.md §8); the
 * answer must be 64 bytes that verify under the public key.
 */
static int sign_message(sk_ed25519_ctx *ctx, unsigned char *sig, size_t *siglen,
                        size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    static const unsigned char empty[1] = {0};
    sk_sign_request request;
    sk_client *client;
    unsigned char *answer = NULL;
    size_t answer_len = 0;
    int ok;

    if (ctx->operation != ED25519_SIGN || ctx->key == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = ED25519_SIGNATURE_BYTES;
        return 1;
    }
    if (sigsize < ED25519_SIGNATURE_BYTES) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "signature buffer of %zu bytes, %d needed", sigsize,
                 ED25519_SIGNATURE_BYTES);
        return 0;
    }
    client = sk_provctx_client(ctx->provctx);
    if (client == NULL)
        return 0;
    memset(&request, 0, sizeof(request));
    request.key.kid = ctx->key->kid;
    request.hash_alg = ctx->provctx->settings.ed25519_hash_alg != NULL
                           ? ctx->provctx->settings.ed25519_hash_alg
                           : "SHA512";
    /* the empty message is a message: data is "" then, never absent */
    request.data = tbs != NULL ? tbs : empty;
    request.data_len = tbslen;
    request.padding = SK_SIG_NONE;
    if (!sign_in_smartkey(ctx, client, &request, &answer, &answer_len))
        return 0;
    ok = answer_is_sound(ctx, answer, answer_len, &request);
    if (ok) {
        memcpy(sig, answer, answer_len);
        *siglen = answer_len;
    }
    OPENSSL_clear_free(answer, answer_len);
    return ok;
}

static int ed25519_digest_sign(void *vctx, unsigned char *sig, size_t *siglen,
                               size_t sigsize, const unsigned char *tbs,
                               size_t tbslen)
{
    return sign_message(vctx, sig, siglen, sigsize, tbs, tbslen);
}

static int ed25519_digest_verify(void *vctx, const unsigned char *sig,
                                 size_t siglen, const unsigned char *tbs,
                                 size_t tbslen)
{
    sk_ed25519_ctx *ctx = vctx;

    if (ctx->operation != ED25519_VERIFY || ctx->key == NULL)
        return 0;
    return verifies_locally(ctx, sig, siglen, tbs, tbslen);
}

#ifdef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT
/* OpenSSL 3.4+: EVP_PKEY_sign_message_init(ctx, "ED25519") then a one-shot
   EVP_PKEY_sign of the message (no update/final: EdDSA is one-shot). */
static int ed25519_sign_message_init(void *vctx, void *provkey,
                                     const OSSL_PARAM params[])
{
    return ed25519_init(vctx, NULL, provkey, ED25519_SIGN, params);
}

static int ed25519_sign(void *vctx, unsigned char *sig, size_t *siglen,
                        size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    return sign_message(vctx, sig, siglen, sigsize, tbs, tbslen);
}

static int ed25519_verify_message_init(void *vctx, void *provkey,
                                       const OSSL_PARAM params[])
{
    return ed25519_init(vctx, NULL, provkey, ED25519_VERIFY, params);
}

static int ed25519_verify(void *vctx, const unsigned char *sig, size_t siglen,
                          const unsigned char *tbs, size_t tbslen)
{
    return ed25519_digest_verify(vctx, sig, siglen, tbs, tbslen);
}

static const char **ed25519_query_key_types(void)
{
    static const char *key_types[] = {"ED25519", NULL};

    return key_types;
}
#endif

/* id-Ed25519 (RFC 8410 §3): an AlgorithmIdentifier without parameters */
static const unsigned char ed25519_algorithm_id[] = {0x30, 0x05, 0x06, 0x03,
                                                     0x2b, 0x65, 0x70};

static int ed25519_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    return p == NULL ||
           OSSL_PARAM_set_octet_string(p, ed25519_algorithm_id,
                                       sizeof(ed25519_algorithm_id));
}

static const OSSL_PARAM ed25519_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ed25519_gettable_ctx_params(void *vctx, void *provctx)
{
    return ed25519_gettable;
}

/* Pure Ed25519 has nothing to set but the approval: Ed25519ph and
   Ed25519ctx (instance, context string) are not SmartKey signatures, so
   they are refused. */
static const OSSL_PARAM ed25519_settable[] = {
    SK_APPROVAL_SETTABLE_PARAMS,
    OSSL_PARAM_END,
};

static int ed25519_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sk_ed25519_ctx *ctx = vctx;

    return params == NULL ||
           (sk_params_check(ctx->provctx, params, ed25519_settable, NULL,
                            "the Ed25519 signature") &&
            sk_approval_set_params(ctx->provctx, &ctx->approval, params));
}

static const OSSL_PARAM *ed25519_settable_ctx_params(void *vctx, void *provctx)
{
    return ed25519_settable;
}

const OSSL_DISPATCH sk_ed25519_signature_functions[] = {
    SK_DISPATCH(SIGNATURE_NEWCTX, ed25519_newctx),
    SK_DISPATCH(SIGNATURE_FREECTX, ed25519_freectx),
    SK_DISPATCH(SIGNATURE_DUPCTX, ed25519_dupctx),
    SK_DISPATCH(SIGNATURE_DIGEST_SIGN_INIT, ed25519_digest_sign_init),
    SK_DISPATCH(SIGNATURE_DIGEST_SIGN, ed25519_digest_sign),
    SK_DISPATCH(SIGNATURE_DIGEST_VERIFY_INIT, ed25519_digest_verify_init),
    SK_DISPATCH(SIGNATURE_DIGEST_VERIFY, ed25519_digest_verify),
#ifdef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT
    SK_DISPATCH(SIGNATURE_SIGN_MESSAGE_INIT, ed25519_sign_message_init),
    SK_DISPATCH(SIGNATURE_SIGN, ed25519_sign),
    SK_DISPATCH(SIGNATURE_VERIFY_MESSAGE_INIT, ed25519_verify_message_init),
    SK_DISPATCH(SIGNATURE_VERIFY, ed25519_verify),
    SK_DISPATCH(SIGNATURE_QUERY_KEY_TYPES, ed25519_query_key_types),
#endif
    SK_DISPATCH(SIGNATURE_GET_CTX_PARAMS, ed25519_get_ctx_params),
    SK_DISPATCH(SIGNATURE_GETTABLE_CTX_PARAMS, ed25519_gettable_ctx_params),
    SK_DISPATCH(SIGNATURE_SET_CTX_PARAMS, ed25519_set_ctx_params),
    SK_DISPATCH(SIGNATURE_SETTABLE_CTX_PARAMS, ed25519_settable_ctx_params),
    {0, NULL},
};
