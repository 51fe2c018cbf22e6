/*
 * Signatures with RSA and EC keys held in SmartKey: RSA PKCS#1 v1.5,
 * RSA-PSS and ECDSA. The message is hashed here, in the provider's child
 * libctx, and only the digest goes to SmartKey: one POST /crypto/v1/sign
 * per signature. Verification never involves SmartKey: it runs on the
 * key's public half, in the default provider of the child libctx.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "approval.h"
#include "names.h"
#include "params.h"
#include "signature.h"

/* The dispatch functions, typed: a wrong signature does not compile. */
static OSSL_FUNC_signature_newctx_fn rsa_newctx;
static OSSL_FUNC_signature_freectx_fn freectx;
static OSSL_FUNC_signature_dupctx_fn dupctx;
static OSSL_FUNC_signature_sign_init_fn sign_init;
static OSSL_FUNC_signature_sign_fn sign;
static OSSL_FUNC_signature_digest_sign_init_fn digest_sign_init;
static OSSL_FUNC_signature_digest_sign_update_fn digest_sign_update;
static OSSL_FUNC_signature_digest_sign_final_fn digest_sign_final;
static OSSL_FUNC_signature_verify_init_fn verify_init;
static OSSL_FUNC_signature_verify_fn verify;
static OSSL_FUNC_signature_verify_recover_init_fn verify_recover_init;
static OSSL_FUNC_signature_verify_recover_fn verify_recover;
static OSSL_FUNC_signature_digest_verify_init_fn digest_verify_init;
static OSSL_FUNC_signature_digest_verify_update_fn digest_verify_update;
static OSSL_FUNC_signature_digest_verify_final_fn digest_verify_final;
static OSSL_FUNC_signature_get_ctx_params_fn get_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn set_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn rsa_gettable_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn rsa_settable_ctx_params;
static OSSL_FUNC_signature_newctx_fn ecdsa_newctx;
static OSSL_FUNC_signature_gettable_ctx_params_fn ecdsa_gettable_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn ecdsa_settable_ctx_params;

/* The key's default digest, also used when a caller names none. */
#define DEFAULT_DIGEST "SHA2-256"

/* Verification is local, with the public key, and must never come back
   here: with default_properties = ?provider=smartkey a NULL query selects
   this very signature again, recursing until the stack overflows. */
#define LOCAL_PROPQ "provider!=" SMARTKEY_PROVIDER_NAME

typedef enum sign_operation {
    OPERATION_NONE = 0,
    OPERATION_SIGN,        /* pkeyutl -sign: the caller hashed */
    OPERATION_DIGEST_SIGN, /* dgst, req, x509, cms, TLS: we hash */
    OPERATION_VERIFY,
    OPERATION_VERIFY_RECOVER, /* RSA: pkeyutl -verifyrecover */
    OPERATION_DIGEST_VERIFY,
} sign_operation;

typedef struct sk_signature_ctx {
    sk_provctx *provctx;
    sk_key_type algorithm; /* of this implementation: RSA or EC */
    sk_key *key;
    sign_operation operation;
    EVP_MD *md; /* NULL for pkeyutl -sign until set or inferred */
    const char *md_smartkey_name;
    EVP_MD_CTX *md_ctx;
    /* RSA only */
    int padding;     /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    EVP_MD *mgf1_md; /* NULL: the signature digest */
    const char *mgf1_smartkey_name;
    /* an explicit salt length in bytes, checked against the digest when
       signing; -1 when the caller asked for "digest" or left it alone */
    int explicit_saltlen;
    /* verification, delegated to the public key: one of the two */
    EVP_PKEY_CTX *verify_ctx;      /* pre-hashed (pkeyutl -verify) */
    EVP_MD_CTX *digest_verify_ctx; /* dgst -prverify, ... */
    int verify_digest_set;
    /* OpenSSL 3.4+ signature algorithms with a digest in their name
       ("RSA-SHA2-256", "ECDSA-SHA2-384"): the name and its digest; NULL
       for the plain RSA and ECDSA algorithms */
    const char *sigalg;
    const char *sigalg_md;
    int message; /* sign_message_init: sign() gets the message, not a hash */
    sk_approval_opts approval; /* smartkey-approval, -approval-request */
} sk_signature_ctx;

/*
 * A digest SmartKey can sign, fetched from the child libctx. Failing here
 * (and not at signing time) matters for TLS: libssl probes which digests
 * a key can do with digest_sign_init calls and picks its signature
 * algorithm from the answers (docs/openssl-dispatch.md §6).
 */
static EVP_MD *fetch_signable_digest(sk_signature_ctx *ctx, const char *name,
                                     const char *properties,
                                     const char **smartkey_name)
{
    EVP_MD *md = EVP_MD_fetch(ctx->provctx->libctx, name, properties);
    const sk_digest *digest;

    if (md == NULL) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER, "unknown digest '%.64s'",
                 name);
        return NULL;
    }
    digest = sk_digest_of_md(md, SK_DIGEST_SIGN);
    if (digest == NULL) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "SmartKey cannot sign with digest '%.64s' (it signs SHA-1, "
                 "SHA-2 and SHA-3 digests)",
                 name);
        EVP_MD_free(md);
        return NULL;
    }
    *smartkey_name = digest->smartkey_name;
    return md;
}

static void *newctx(void *provctx, sk_key_type algorithm)
{
    sk_signature_ctx *ctx;

    if (!SK_CTX_NEW(ctx, provctx, "creating a signature context"))
        return NULL;
    ctx->algorithm = algorithm;
    ctx->padding = RSA_PKCS1_PADDING;
    ctx->explicit_saltlen = -1;
    sk_approval_opts_init(&ctx->approval);
    return ctx;
}

static void *rsa_newctx(void *provctx, const char *properties)
{
    return newctx(provctx, SK_KEY_RSA);
}

static void *ecdsa_newctx(void *provctx, const char *properties)
{
    return newctx(provctx, SK_KEY_EC);
}

static void freectx(void *vctx)
{
    sk_signature_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    sk_key_free(ctx->key);
    EVP_MD_free(ctx->md);
    EVP_MD_free(ctx->mgf1_md);
    EVP_MD_CTX_free(ctx->md_ctx);
    EVP_PKEY_CTX_free(ctx->verify_ctx);
    EVP_MD_CTX_free(ctx->digest_verify_ctx);
    OPENSSL_free(ctx);
}

/* *to: a copy of from's digest state (NULL when from is NULL); 0 with an
   error naming what raised when it cannot be copied. */
static int copy_digest_state(sk_provctx *provctx, EVP_MD_CTX **to,
                             const EVP_MD_CTX *from, const char *what)
{
    *to = NULL;
    if (from == NULL)
        return 1;
    *to = EVP_MD_CTX_new();
    if (*to == NULL || !EVP_MD_CTX_copy_ex(*to, from)) {
        SK_RAISE(provctx, SK_R_INTERNAL_ERROR, "cannot copy the %s state",
                 what);
        return 0;
    }
    return 1;
}

/*
 * EVP_DigestSignFinal signs a copy of the context (docs/openssl-dispatch.md
 * §6), so this runs once per signature. Hashing is local, so a copy is a plain
 * EVP_MD_CTX_copy_ex; SmartKey holds no per-operation state.
 */
static void *dupctx(void *vctx)
{
    const sk_signature_ctx *from = vctx;
    sk_signature_ctx *copy = SK_CTX_DUP(from, "copying a signature context");

    if (copy == NULL)
        return NULL;
    /* The copy takes its own references; what it cannot take stays NULL. */
    copy->key = from->key != NULL ? sk_key_up_ref(from->key) : NULL;
    copy->md = from->md != NULL && EVP_MD_up_ref(from->md) ? from->md : NULL;
    copy->mgf1_md = from->mgf1_md != NULL && EVP_MD_up_ref(from->mgf1_md)
                        ? from->mgf1_md
                        : NULL;
    copy->verify_ctx = NULL;
    copy->digest_verify_ctx = NULL;
    copy->md_ctx = NULL;
    if (from->verify_ctx != NULL &&
        (copy->verify_ctx = EVP_PKEY_CTX_dup(from->verify_ctx)) == NULL) {
        SK_RAISE(from->provctx, SK_R_INTERNAL_ERROR,
                 "cannot copy the verification state");
        freectx(copy);
        return NULL;
    }
    if (!copy_digest_state(from->provctx, &copy->digest_verify_ctx,
                           from->digest_verify_ctx, "verification") ||
        !copy_digest_state(from->provctx, &copy->md_ctx, from->md_ctx,
                           "digest")) {
        freectx(copy);
        return NULL;
    }
    return copy;
}

static int set_ctx_params(void *vctx, const OSSL_PARAM params[]);

/*
 * A TLS server probes its key with digest_sign_init for every digest of
 * every handshake (libssl's check_cert_usable) and drops the errors it
 * raises: without a line on stderr the operator sees only "no suitable
 * signature algorithm" on the client side.
 */
static void report_no_sign_permission(sk_provctx *provctx, const sk_key *key)
{
    const char *name = SK_ESCAPED(key->name != NULL ? key->name : "");

    SK_RAISE(provctx, SK_R_OPERATION_NOT_ALLOWED,
             "key '%s' (kid %s) lacks the SIGN permission in SmartKey: it "
             "cannot sign, and TLS handshakes that need its signature fail "
             "(\"no suitable signature algorithm\"); grant SIGN in the "
             "key's key_ops or use another key",
             name, key->kid);
    sk_report_once("no SIGN", key->kid,
                   "key '%s' (kid %s) lacks the SIGN permission in SmartKey: "
                   "it cannot sign (a TLS server's handshakes that need its "
                   "signature fail with \"no suitable signature "
                   "algorithm\"); grant SIGN (key_ops) to the key in "
                   "SmartKey or use another key",
                   name, key->kid);
}

/*
 * The key of every signature *_init (RSA, ECDSA, Ed25519): provkey, a
 * SmartKey key of this type, replaces *slot. provkey is NULL when OpenSSL
 * re-initialises a context it already set up: EVP_DigestInit_ex on a
 * signing context, e.g. `openssl dgst -sign` resetting its digest BIO
 * (docs/openssl-dispatch.md §6); the previous key stays. Signing needs the
 * private half and the SIGN permission; no request is made: the key's
 * permissions came with its key info, and an unknown key_ops (0) is left
 * for SmartKey to judge.
 */
int sk_signature_init_key(sk_provctx *provctx, sk_key **slot, void *provkey,
                          sk_key_type type, int for_signing)
{
    const sk_keydata *keydata = provkey;

    if (keydata == NULL) {
        if (*slot != NULL)
            return 1;
        SK_RAISE(provctx, SK_R_INTERNAL_ERROR,
                 "signature initialised without a key");
        return 0;
    }
    if (keydata->key == NULL || keydata->key->type != type) {
        SK_RAISE(provctx, SK_R_UNSUPPORTED_KEY_TYPE,
                 "the key is not a SmartKey %s key", sk_key_type_name(type));
        return 0;
    }
    if (for_signing && !keydata->private_handle) {
        SK_RAISE(provctx, SK_R_NO_PRIVATE_KEY,
                 "key %s: signing needs the private key", keydata->key->kid);
        return 0;
    }
    if (for_signing && keydata->key->key_ops != 0 &&
        (keydata->key->key_ops & SK_OP_SIGN) == 0) {
        report_no_sign_permission(provctx, keydata->key);
        return 0;
    }
    sk_key_free(*slot);
    *slot = sk_key_up_ref(keydata->key);
    return 1;
}

static int init_key(sk_signature_ctx *ctx, void *provkey, int for_signing)
{
    if (!sk_signature_init_key(ctx->provctx, &ctx->key, provkey, ctx->algorithm,
                               for_signing))
        return 0;
    if (provkey != NULL && for_signing) {
        /* a new signing key starts from OpenSSL's defaults */
        ctx->padding = RSA_PKCS1_PADDING;
        ctx->explicit_saltlen = -1;
        EVP_MD_free(ctx->mgf1_md);
        ctx->mgf1_md = NULL;
        ctx->mgf1_smartkey_name = NULL;
    }
    return 1;
}

/* *slot (ctx->md or ctx->mgf1_md) and its SmartKey name: the digest name,
   if SmartKey can sign with it. */
static int set_md(sk_signature_ctx *ctx, const char *name,
                  const char *properties, EVP_MD **slot,
                  const char **slot_smartkey_name)
{
    const char *smartkey_name;
    EVP_MD *md = fetch_signable_digest(ctx, name, properties, &smartkey_name);

    if (md == NULL)
        return 0;
    EVP_MD_free(*slot);
    *slot = md;
    *slot_smartkey_name = smartkey_name;
    return 1;
}

static int set_digest(sk_signature_ctx *ctx, const char *name,
                      const char *properties)
{
    return set_md(ctx, name, properties, &ctx->md, &ctx->md_smartkey_name);
}

static int sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    sk_signature_ctx *ctx = vctx;

    if (!init_key(ctx, provkey, 1))
        return 0;
    if (provkey != NULL) {
        /* pkeyutl passes no digest unless -pkeyopt digest:... */
        EVP_MD_free(ctx->md);
        ctx->md = NULL;
        ctx->md_smartkey_name = NULL;
    }
    ctx->operation = OPERATION_SIGN;
    return set_ctx_params(ctx, params);
}

/* The message digest of a digest-sign: ctx->md started afresh. */
static int start_digest(sk_signature_ctx *ctx)
{
    if (ctx->md_ctx == NULL && (ctx->md_ctx = EVP_MD_CTX_new()) == NULL) {
        SK_RAISE(ctx->provctx, SK_R_OUT_OF_MEMORY, "creating a digest");
        return 0;
    }
    if (!EVP_DigestInit_ex2(ctx->md_ctx, ctx->md, NULL)) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "cannot start the %s digest", EVP_MD_get0_name(ctx->md));
        return 0;
    }
    return 1;
}

static int digest_sign_init(void *vctx, const char *mdname, void *provkey,
                            const OSSL_PARAM params[])
{
    sk_signature_ctx *ctx = vctx;

    if (!init_key(ctx, provkey, 1))
        return 0;
    if (mdname != NULL && *mdname != '\0') {
        if (!set_digest(ctx, mdname, NULL))
            return 0;
    } else if (provkey != NULL || ctx->md == NULL) {
        if (!set_digest(ctx, DEFAULT_DIGEST, NULL))
            return 0;
    }
    if (!start_digest(ctx))
        return 0;
    ctx->operation = OPERATION_DIGEST_SIGN;
    SK_DEBUG(3, "key %s: digest-sign with %s", ctx->key->kid,
             EVP_MD_get0_name(ctx->md));
    return set_ctx_params(ctx, params);
}

static int digest_sign_update(void *vctx, const unsigned char *data,
                              size_t datalen)
{
    sk_signature_ctx *ctx = vctx;

    if (ctx->operation != OPERATION_DIGEST_SIGN || ctx->md_ctx == NULL)
        return 0;
    return EVP_DigestUpdate(ctx->md_ctx, data, datalen);
}

/* --- signing ----------------------------------------------------------- */

/* The PSS salt length SmartKey uses is the digest length (docs/smartkey-api.md
 * §4.1). */
static int pss_saltlen_matches(sk_signature_ctx *ctx)
{
    if (ctx->explicit_saltlen < 0 ||
        ctx->explicit_saltlen == EVP_MD_get_size(ctx->md))
        return 1;
    SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
             "SmartKey signs RSA-PSS with a salt as long as the digest "
             "(%d bytes for %s), not %d bytes; use rsa_pss_saltlen:digest",
             EVP_MD_get_size(ctx->md), EVP_MD_get0_name(ctx->md),
             ctx->explicit_saltlen);
    return 0;
}

/*
 * SmartKey's signature checked with the key's public half before anyone
 * sees it, as OpenSSL's own RSA does with its CRT results: a wrong RSA-CRT
 * signature given to a peer can reveal the private key, and a wrong
 * signature in a certificate or a file is worthless. The default provider
 * of the child libctx verifies the very digest that was sent, with the
 * padding, PSS salt length (the digest length, which the
 * AlgorithmIdentifier states) and MGF1 digest in force; no network.
 */
static int signature_verifies(sk_signature_ctx *ctx,
                              const unsigned char *digest, size_t digest_len,
                              const unsigned char *sig, size_t siglen)
{
    EVP_PKEY_CTX *verify_ctx;
    int ok;

    sk_set_error_mark(ctx->provctx);
    verify_ctx = EVP_PKEY_CTX_new_from_pkey(ctx->provctx->libctx,
                                            ctx->key->public_key, LOCAL_PROPQ);
    ok = verify_ctx != NULL && EVP_PKEY_verify_init(verify_ctx) > 0 &&
         EVP_PKEY_CTX_set_signature_md(verify_ctx, ctx->md) > 0;
    if (ok && ctx->algorithm == SK_KEY_RSA) {
        ok = EVP_PKEY_CTX_set_rsa_padding(verify_ctx, ctx->padding) > 0;
        if (ok && ctx->padding == RSA_PKCS1_PSS_PADDING)
            ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(verify_ctx,
                                                  RSA_PSS_SALTLEN_DIGEST) > 0 &&
                 EVP_PKEY_CTX_set_rsa_mgf1_md(verify_ctx, ctx->mgf1_md != NULL
                                                              ? ctx->mgf1_md
                                                              : ctx->md) > 0;
    }
    if (!ok) {
        EVP_PKEY_CTX_free(verify_ctx);
        sk_pop_error_to_mark(ctx->provctx);
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "key %s: cannot set up the check of SmartKey's signature "
                 "with the key's public key",
                 ctx->key->kid);
        return 0;
    }
    ok = EVP_PKEY_verify(verify_ctx, sig, siglen, digest, digest_len) == 1;
    EVP_PKEY_CTX_free(verify_ctx);
    sk_pop_error_to_mark(ctx->provctx);
    if (!ok)
        SK_RAISE(ctx->provctx, SK_R_SIGNATURE_NOT_VERIFIED,
                 "key %s%s%.200s%s: SmartKey returned a %s signature of the "
                 "%s digest that does not verify under the key's public "
                 "key; nothing was output",
                 ctx->key->kid, ctx->key->name != NULL ? " ('" : "",
                 ctx->key->name != NULL ? ctx->key->name : "",
                 ctx->key->name != NULL ? "')" : "",
                 ctx->algorithm == SK_KEY_EC             ? "ECDSA"
                 : ctx->padding == RSA_PKCS1_PSS_PADDING ? "RSA-PSS"
                                                         : "RSA PKCS#1 v1.5",
                 EVP_MD_get0_name(ctx->md));
    return ok;
}

/* The sign request of digest with ctx's key, hash and padding. */
static void sign_request(const sk_signature_ctx *ctx,
                         const unsigned char *digest, size_t digest_len,
                         sk_sign_request *request)
{
    memset(request, 0, sizeof(*request));
    request->key.kid = ctx->key->kid;
    request->hash_alg = ctx->md_smartkey_name;
    request->hash = digest;
    request->hash_len = digest_len;
    request->padding = SK_SIG_NONE;
    if (ctx->algorithm == SK_KEY_RSA)
        request->padding = ctx->padding == RSA_PKCS1_PSS_PADDING
                               ? SK_SIG_PSS
                               : SK_SIG_PKCS1_V15;
    if (request->padding == SK_SIG_PSS)
        request->mgf1_hash = ctx->mgf1_smartkey_name;
}

/* The error of a refused or failed sign call, naming the key; a key
   deleted or re-permissioned is dropped from the cache (the next load
   must ask again). */
static void sign_failed(sk_signature_ctx *ctx, sk_approval_ctx *approval,
                        const sk_error *err)
{
    char subject[300];

    if (SK_RAISE_APPROVAL(approval, err))
        return;
    snprintf(subject, sizeof(subject), "key %s%s%.200s%s", ctx->key->kid,
             ctx->key->name != NULL ? " ('" : "",
             ctx->key->name != NULL ? ctx->key->name : "",
             ctx->key->name != NULL ? "')" : "");
    if (err->kind == SK_ERR_NOT_FOUND || err->kind == SK_ERR_FORBIDDEN)
        sk_key_cache_forget(ctx->provctx, ctx->key);
    SK_RAISE_CLIENT(ctx->provctx, subject, err);
    /* a padding the key's rsa.signature_policy leaves out (400, naming
       the policy): say which one the key takes (genpkey
       smartkey-signature-padding, docs/signing.md) */
    if (ctx->algorithm == SK_KEY_RSA &&
        (err->kind == SK_ERR_BAD_REQUEST || err->kind == SK_ERR_FORBIDDEN) &&
        strstr(err->message, "policy") != NULL)
        SK_RAISE(ctx->provctx, SK_R_OPERATION_NOT_ALLOWED,
                 "%s: SmartKey's signature policy for this key does not "
                 "allow %s signatures; %s",
                 subject,
                 ctx->padding == RSA_PKCS1_PSS_PADDING ? "RSA-PSS"
                                                       : "PKCS#1 v1.5",
                 ctx->padding == RSA_PKCS1_PSS_PADDING
                     ? "sign with PKCS#1 v1.5 padding"
                     : "sign with RSA-PSS (-sigopt rsa_padding_mode:pss)");
}

/* The approval of this signature: what approvers read (the digest, the
   key, the padding) and how the user asked to handle it. */
static sk_approval *prepare_approval(sk_signature_ctx *ctx,
                                     sk_approval_ctx *approval,
                                     const unsigned char *digest,
                                     size_t digest_len)
{
    char what[300], hex[72];

    snprintf(what, sizeof(what), "signing with key %s%.200s%s%s%s",
             ctx->key->name != NULL ? "'" : "",
             ctx->key->name != NULL ? ctx->key->name : ctx->key->kid,
             ctx->key->name != NULL ? "' (" : "",
             ctx->key->name != NULL ? ctx->key->kid : "",
             ctx->key->name != NULL ? ")" : "");
    sk_approval_hex(
        digest,
        sk_approval_describes(ctx->provctx, &ctx->approval) ? digest_len : 0,
        hex, sizeof(hex));
    return sk_approval_prepare(
        approval, ctx->provctx, &ctx->approval, what,
        "Sign the %s digest %s with key '%.200s' (kid %s), %s",
        ctx->md_smartkey_name, hex,
        ctx->key->name != NULL ? ctx->key->name : "", ctx->key->kid,
        ctx->algorithm != SK_KEY_RSA            ? "ECDSA"
        : ctx->padding == RSA_PKCS1_PSS_PADDING ? "RSA-PSS"
                                                : "RSA PKCS#1 v1.5");
}

static int sign_digest(sk_signature_ctx *ctx, unsigned char *sig,
                       size_t *siglen, size_t sigsize,
                       const unsigned char *digest, size_t digest_len)
{
    sk_sign_request request;
    sk_approval_ctx approval;
    sk_client *client;
    sk_error err;
    unsigned char *answer = NULL;
    size_t answer_len = 0;
    int ok;

    if (sigsize < (size_t)ctx->key->max_size) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "signature buffer of %zu bytes, %d needed", sigsize,
                 ctx->key->max_size);
        return 0;
    }
    if (ctx->algorithm == SK_KEY_RSA && ctx->padding == RSA_PKCS1_PSS_PADDING &&
        !pss_saltlen_matches(ctx))
        return 0;
    client = sk_provctx_client(ctx->provctx);
    if (client == NULL)
        return 0;

    sign_request(ctx, digest, digest_len, &request);
    request.approval = prepare_approval(ctx, &approval, digest, digest_len);
    memset(&err, 0, sizeof(err));
    if (!sk_client_sign(client, &request, &answer, &answer_len, &err)) {
        sign_failed(ctx, &approval, &err);
        return 0;
    }
    ok = ctx->algorithm == SK_KEY_RSA
             ? sk_rsa_signature_has_valid_shape(ctx->provctx, ctx->key, answer,
                                                answer_len)
             : sk_ecdsa_signature_has_valid_shape(ctx->provctx, ctx->key,
                                                  answer, answer_len);
    if (ok)
        ok = signature_verifies(ctx, digest, digest_len, answer, answer_len);
    if (ok && answer_len > sigsize) {
        SK_RAISE(ctx->provctx, SK_R_BAD_RESPONSE,
                 "key %s: signature of %zu bytes does not fit the %zu-byte "
                 "buffer",
                 ctx->key->kid, answer_len, sigsize);
        ok = 0;
    }
    if (ok) {
        memcpy(sig, answer, answer_len);
        *siglen = answer_len;
    }
    OPENSSL_clear_free(answer, answer_len);
    return ok;
}

static int digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen,
                             size_t sigsize)
{
    sk_signature_ctx *ctx = vctx;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    if (ctx->operation != OPERATION_DIGEST_SIGN || ctx->md_ctx == NULL)
        return 0;
    /* the size query (sig == NULL) is answered locally */
    if (sig == NULL) {
        *siglen = (size_t)ctx->key->max_size;
        return 1;
    }
    if (!EVP_DigestFinal_ex(ctx->md_ctx, digest, &digest_len)) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "cannot finish the %s digest", EVP_MD_get0_name(ctx->md));
        return 0;
    }
    return sign_digest(ctx, sig, siglen, sigsize, digest, digest_len);
}

/*
 * pkeyutl -sign hands over a digest. Without -pkeyopt digest:NAME no name
 * arrives, but SmartKey needs one (and RSA PKCS#1 v1.5 embeds it):
 * it is inferred from the length, SHA-2 being the family in use.
 */
static const char *digest_of_length(size_t len)
{
    static const struct {
        size_t len;
        const char *name;
    } by_length[] = {
        {20, "SHA1"},     {28, "SHA2-224"}, {32, "SHA2-256"},
        {48, "SHA2-384"}, {64, "SHA2-512"},
    };

    for (size_t i = 0; i < sizeof(by_length) / sizeof(*by_length); i++)
        if (by_length[i].len == len)
            return by_length[i].name;
    return NULL;
}

static int sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                const unsigned char *tbs, size_t tbslen)
{
    sk_signature_ctx *ctx = vctx;
    const char *inferred = digest_of_length(tbslen);
    int ok, infer;

    /* after sign_message_init, one-shot EVP_PKEY_sign hands the message */
    if (ctx->message && ctx->operation == OPERATION_DIGEST_SIGN) {
        if (sig == NULL) {
            *siglen = (size_t)ctx->key->max_size;
            return 1;
        }
        return digest_sign_update(ctx, tbs, tbslen) &&
               digest_sign_final(ctx, sig, siglen, sigsize);
    }
    if (ctx->operation != OPERATION_SIGN || ctx->key == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = (size_t)ctx->key->max_size;
        return 1;
    }
    infer = ctx->md == NULL && inferred != NULL;
    if (infer && !set_digest(ctx, inferred, NULL))
        return 0;
    if (ctx->md == NULL) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "a %zu-byte input is not a SHA digest; name the digest "
                 "with -pkeyopt digest:NAME",
                 tbslen);
        return 0;
    }
    if (tbslen != (size_t)EVP_MD_get_size(ctx->md)) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "the input has %zu bytes, a %s digest has %d", tbslen,
                 EVP_MD_get0_name(ctx->md), EVP_MD_get_size(ctx->md));
        return 0;
    }
    ok = sign_digest(ctx, sig, siglen, sigsize, tbs, tbslen);
    /* an inferred digest holds for this input only */
    if (infer) {
        EVP_MD_free(ctx->md);
        ctx->md = NULL;
        ctx->md_smartkey_name = NULL;
    }
    return ok;
}

/* --- verification: on the public half, never in SmartKey --------------- */

/*
 * Every SmartKey key, public handles included, stays a smartkey key (its
 * export refuses the private-key selection), so OpenSSL brings every
 * verification here: `pkeyutl -verify[recover] -inkey smartkey:`, `dgst
 * -verify`/`-prverify`, certificate checks. The default provider in the
 * child libctx verifies with the public key; parameters are passed
 * through unchanged, so any salt length a verifier wants is accepted here.
 */
static int local_verify_init(sk_signature_ctx *ctx, void *provkey,
                             const OSSL_PARAM params[], int recover)
{
    if (!init_key(ctx, provkey, 0))
        return 0;
    EVP_PKEY_CTX_free(ctx->verify_ctx);
    ctx->verify_ctx = EVP_PKEY_CTX_new_from_pkey(
        ctx->provctx->libctx, ctx->key->public_key, LOCAL_PROPQ);
    if (ctx->verify_ctx == NULL ||
        (recover ? EVP_PKEY_verify_recover_init(ctx->verify_ctx)
                 : EVP_PKEY_verify_init(ctx->verify_ctx)) <= 0) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "key %s: cannot verify with its public key", ctx->key->kid);
        return 0;
    }
    ctx->verify_digest_set = 0;
    ctx->operation = recover ? OPERATION_VERIFY_RECOVER : OPERATION_VERIFY;
    return set_ctx_params(ctx, params);
}

static int verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return local_verify_init(vctx, provkey, params, 0);
}

static int verify_recover_init(void *vctx, void *provkey,
                               const OSSL_PARAM params[])
{
    return local_verify_init(vctx, provkey, params, 1);
}

static int verify_recover(void *vctx, unsigned char *rout, size_t *routlen,
                          size_t routsize, const unsigned char *sig,
                          size_t siglen)
{
    sk_signature_ctx *ctx = vctx;
    size_t len = routsize;

    if (ctx->operation != OPERATION_VERIFY_RECOVER)
        return 0;
    if (EVP_PKEY_verify_recover(ctx->verify_ctx, rout, &len, sig, siglen) <= 0)
        return 0;
    *routlen = len;
    return 1;
}

static int verify(void *vctx, const unsigned char *sig, size_t siglen,
                  const unsigned char *tbs, size_t tbslen)
{
    sk_signature_ctx *ctx = vctx;
    const char *inferred = digest_of_length(tbslen);

    if (ctx->operation != OPERATION_VERIFY)
        return 0;
    /* a signature algorithm's verifier knows its digest, and after
       verify_message_init it takes the message itself */
    if (ctx->sigalg != NULL)
        return EVP_PKEY_verify(ctx->verify_ctx, sig, siglen, tbs, tbslen) == 1;
    /* named by its length when not given, as sign() does */
    if (!ctx->verify_digest_set && inferred != NULL) {
        OSSL_PARAM digest[2];

        digest[0] = OSSL_PARAM_construct_utf8_string(
            OSSL_SIGNATURE_PARAM_DIGEST, (char *)inferred, 0);
        digest[1] = OSSL_PARAM_construct_end();

        if (EVP_PKEY_CTX_set_params(ctx->verify_ctx, digest) <= 0)
            return 0;
        ctx->verify_digest_set = 1;
    }
    return EVP_PKEY_verify(ctx->verify_ctx, sig, siglen, tbs, tbslen) == 1;
}

static int digest_verify_init(void *vctx, const char *mdname, void *provkey,
                              const OSSL_PARAM params[])
{
    sk_signature_ctx *ctx = vctx;

    if (!init_key(ctx, provkey, 0))
        return 0;
    if (mdname != NULL && *mdname == '\0')
        mdname = NULL;
    /* a re-init keeps the verifier and its settings, as for signing */
    if (provkey == NULL && ctx->digest_verify_ctx != NULL) {
        if (EVP_DigestVerifyInit_ex(ctx->digest_verify_ctx, NULL, mdname,
                                    ctx->provctx->libctx, LOCAL_PROPQ, NULL,
                                    NULL) != 1)
            return 0;
    } else {
        EVP_MD_CTX_free(ctx->digest_verify_ctx);
        ctx->digest_verify_ctx = EVP_MD_CTX_new();
        if (ctx->digest_verify_ctx == NULL ||
            EVP_DigestVerifyInit_ex(ctx->digest_verify_ctx, NULL,
                                    mdname != NULL ? mdname : DEFAULT_DIGEST,
                                    ctx->provctx->libctx, LOCAL_PROPQ,
                                    ctx->key->public_key, NULL) != 1) {
            SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                     "key %s: cannot verify %s signatures with its public "
                     "key",
                     ctx->key->kid, mdname != NULL ? mdname : DEFAULT_DIGEST);
            return 0;
        }
    }
    ctx->operation = OPERATION_DIGEST_VERIFY;
    return set_ctx_params(ctx, params);
}

static int digest_verify_update(void *vctx, const unsigned char *data,
                                size_t datalen)
{
    sk_signature_ctx *ctx = vctx;

    if (ctx->operation != OPERATION_DIGEST_VERIFY)
        return 0;
    return EVP_DigestVerifyUpdate(ctx->digest_verify_ctx, data, datalen);
}

static int digest_verify_final(void *vctx, const unsigned char *sig,
                               size_t siglen)
{
    sk_signature_ctx *ctx = vctx;

    if (ctx->operation != OPERATION_DIGEST_VERIFY)
        return 0;
    return EVP_DigestVerifyFinal(ctx->digest_verify_ctx, sig, siglen) == 1;
}

/* The context of the verifier in the default provider, if verifying. */
static EVP_PKEY_CTX *verifier(sk_signature_ctx *ctx)
{
    if (ctx->operation == OPERATION_VERIFY ||
        ctx->operation == OPERATION_VERIFY_RECOVER)
        return ctx->verify_ctx;
    if (ctx->operation == OPERATION_DIGEST_VERIFY)
        return EVP_MD_CTX_get_pkey_ctx(ctx->digest_verify_ctx);
    return NULL;
}

/* --- parameters -------------------------------------------------------- */

static const OSSL_PARAM rsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    /* utf8 so that -sigopt text parses; ints are accepted as well */
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    SK_APPROVAL_SETTABLE_PARAMS,
    OSSL_PARAM_END,
};

static const OSSL_PARAM ecdsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    SK_APPROVAL_SETTABLE_PARAMS,
    OSSL_PARAM_END,
};

/* The text parameters that take an int as well (docs/openssl-dispatch.md §4).
 */
static const char *const text_or_int_params[] = {
    OSSL_SIGNATURE_PARAM_PAD_MODE, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL};

static const OSSL_ITEM padding_names[] = {
    {RSA_PKCS1_PADDING, OSSL_PKEY_RSA_PAD_MODE_PKCSV15},
    {RSA_NO_PADDING, OSSL_PKEY_RSA_PAD_MODE_NONE},
    {RSA_X931_PADDING, OSSL_PKEY_RSA_PAD_MODE_X931},
    {RSA_PKCS1_PSS_PADDING, OSSL_PKEY_RSA_PAD_MODE_PSS},
};

/* pad-mode arrives as int from EVP_PKEY_CTX_set_rsa_padding (TLS, CMS)
   and as utf8 from -sigopt (docs/openssl-dispatch.md §4). */
static int set_padding(sk_signature_ctx *ctx, const OSSL_PARAM *p)
{
    int padding = -1;
    char text[32];

    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (!sk_param_text(ctx->provctx, p, text, sizeof(text)))
            return 0;
        for (size_t i = 0; i < sizeof(padding_names) / sizeof(*padding_names);
             i++)
            if (strcmp(text, padding_names[i].ptr) == 0)
                padding = (int)padding_names[i].id;
    } else if (!OSSL_PARAM_get_int(p, &padding)) {
        padding = -1;
    }
    if (padding != RSA_PKCS1_PADDING && padding != RSA_PKCS1_PSS_PADDING) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "SmartKey signs with RSA padding pkcs1 or pss only");
        return 0;
    }
    ctx->padding = padding;
    return 1;
}

/*
 * SmartKey's PSS has no salt-length field: it always uses the digest
 * length (docs/smartkey-api.md §4.1). "digest" (-1) and the digest's own length
 * are honoured. "auto" (-2) and "auto-digestmax" (-4, 3.1+) are accepted too:
 * they let the signer choose and verifiers detect the length, and the
 * AlgorithmIdentifier we return states the length actually used. "max"
 * (-3) and other lengths are refused: a verifier told to expect them
 * would reject our signatures.
 */
static int set_saltlen(sk_signature_ctx *ctx, const OSSL_PARAM *p)
{
    int saltlen;

    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        char text[32];
        char *end;

        if (!sk_param_text(ctx->provctx, p, text, sizeof(text)))
            return 0;

        if (strcmp(text, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
            saltlen = RSA_PSS_SALTLEN_DIGEST;
        else if (strcmp(text, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
            saltlen = RSA_PSS_SALTLEN_AUTO;
        else if (strcmp(text, "auto-digestmax") == 0)
            saltlen = -4;
        else if (strcmp(text, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0)
            saltlen = RSA_PSS_SALTLEN_MAX;
        else {
            long value = strtol(text, &end, 10);

            if (end == text || *end != '\0' || value < -4 || value > 4096) {
                SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                         "PSS salt length '%.32s' is not a number, digest, "
                         "auto or max",
                         text);
                return 0;
            }
            saltlen = (int)value;
        }
    } else if (!OSSL_PARAM_get_int(p, &saltlen)) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "PSS salt length is not an integer");
        return 0;
    }
    if (saltlen == RSA_PSS_SALTLEN_DIGEST || saltlen == RSA_PSS_SALTLEN_AUTO ||
        saltlen == -4) {
        ctx->explicit_saltlen = -1;
        return 1;
    }
    if (saltlen == RSA_PSS_SALTLEN_MAX) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "SmartKey signs RSA-PSS with a salt as long as the digest, "
                 "not the maximum; use rsa_pss_saltlen:digest");
        return 0;
    }
    if (saltlen < 0) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "PSS salt length %d is not valid", saltlen);
        return 0;
    }
    ctx->explicit_saltlen = saltlen;
    /* refuse at set time when the digest is already known */
    return ctx->md == NULL || pss_saltlen_matches(ctx);
}

/*
 * The local verifier gets copies of the parameters it is meant to see: a
 * caller's text may lack its terminating NUL, and OpenSSL's own providers
 * read it as a C string; OSSL_PARAM_dup() terminates it.
 */
static int forward_to_verifier(sk_signature_ctx *ctx, const OSSL_PARAM params[])
{
    const OSSL_PARAM *settable =
        ctx->algorithm == SK_KEY_RSA ? rsa_settable : ecdsa_settable;
    OSSL_PARAM known[16], *copy;
    size_t n = 0;
    int ok;

    for (const OSSL_PARAM *p = params; p->key != NULL; p++) {
        if (OSSL_PARAM_locate_const(settable, p->key) == NULL)
            continue;
        if (n + 1 == sizeof(known) / sizeof(known[0])) {
            SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                     "too many parameters for the signature at once");
            return 0;
        }
        known[n++] = *p;
    }
    if (n == 0)
        return 1;
    known[n] = OSSL_PARAM_construct_end();
    copy = OSSL_PARAM_dup(known);
    ok = copy != NULL && EVP_PKEY_CTX_set_params(verifier(ctx), copy) > 0;
    OSSL_PARAM_free(copy);
    return ok;
}

/* The digest parameter; the running hash of a digest-sign cannot change
   its algorithm halfway. */
static int set_digest_param(sk_signature_ctx *ctx, const OSSL_PARAM *p,
                            const char *properties)
{
    char name[64];

    if (!sk_param_text(ctx->provctx, p, name, sizeof(name)))
        return 0;
    if (ctx->operation == OPERATION_DIGEST_SIGN && ctx->md != NULL &&
        !EVP_MD_is_a(ctx->md, name)) {
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "the digest is fixed once signing started (%s)",
                 EVP_MD_get0_name(ctx->md));
        return 0;
    }
    return ctx->operation == OPERATION_DIGEST_SIGN ||
           set_digest(ctx, name, properties);
}

/* The MGF1 digest of PSS (one SmartKey can sign with). */
static int set_mgf1_param(sk_signature_ctx *ctx, const OSSL_PARAM *p,
                          const char *properties)
{
    char name[64];

    return sk_param_text(ctx->provctx, p, name, sizeof(name)) &&
           set_md(ctx, name, properties, &ctx->mgf1_md,
                  &ctx->mgf1_smartkey_name);
}

static int sigalg_set_ctx_params(sk_signature_ctx *ctx,
                                 const OSSL_PARAM params[]);

static int set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sk_signature_ctx *ctx = vctx;
    const OSSL_PARAM *p;
    const char *properties = NULL;
    char properties_text[SK_PARAM_MAX_BYTES + 1];

    if (params == NULL)
        return 1;
    /* the verifier (the default provider's) gets only checked parameters
       too */
    if (ctx->sigalg != NULL)
        return sigalg_set_ctx_params(ctx, params);
    if (!sk_params_check(ctx->provctx, params,
                         ctx->algorithm == SK_KEY_RSA ? rsa_settable
                                                      : ecdsa_settable,
                         text_or_int_params, "the signature"))
        return 0;
    if (!sk_approval_set_params(ctx->provctx, &ctx->approval, params))
        return 0;
    if (verifier(ctx) != NULL) {
        if (OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST))
            ctx->verify_digest_set = 1;
        return forward_to_verifier(ctx, params);
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PROPERTIES);
    if (p != NULL) {
        if (!sk_param_text(ctx->provctx, p, properties_text,
                           sizeof(properties_text)))
            return 0;
        properties = properties_text;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && !set_digest_param(ctx, p, properties))
        return 0;
    if (ctx->algorithm != SK_KEY_RSA)
        return 1;

    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && !set_padding(ctx, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && !set_saltlen(ctx, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    return p == NULL || set_mgf1_param(ctx, p, properties);
}

static const OSSL_PARAM *rsa_settable_ctx_params(void *vctx, void *provctx)
{
    return rsa_settable;
}

static const OSSL_PARAM *ecdsa_settable_ctx_params(void *vctx, void *provctx)
{
    return ecdsa_settable;
}

/* The DER AlgorithmIdentifier of the signature being made. */
static int get_algorithm_id(sk_signature_ctx *ctx, OSSL_PARAM *p)
{
    unsigned char *der = NULL;
    int len = ctx->md == NULL
                  ? 0
                  : sk_signature_algorithm_id(ctx->algorithm, ctx->padding,
                                              ctx->md, ctx->mgf1_md, &der);
    int ok = len > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t)len);

    OPENSSL_free(der);
    if (!ok)
        SK_RAISE(ctx->provctx, SK_R_INVALID_PARAMETER,
                 "no signature algorithm identifier for %s with %s",
                 ctx->algorithm == SK_KEY_RSA ? "RSA" : "ECDSA",
                 ctx->md != NULL ? EVP_MD_get0_name(ctx->md) : "no digest");
    return ok;
}

/* A parameter asked for as text (the command line) or as an int (C). */
static int set_text_or_int(OSSL_PARAM *p, const char *text, int value)
{
    return p->data_type == OSSL_PARAM_UTF8_STRING
               ? OSSL_PARAM_set_utf8_string(p, text)
               : OSSL_PARAM_set_int(p, value);
}

static int get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sk_signature_ctx *ctx = vctx;
    OSSL_PARAM *p;

    if (verifier(ctx) != NULL)
        return EVP_PKEY_CTX_get_params(verifier(ctx), params) > 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL && !get_algorithm_id(ctx, p))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && ctx->md != NULL &&
        !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(ctx->md)))
        return 0;
    if (ctx->algorithm != SK_KEY_RSA)
        return 1;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && !set_text_or_int(p,
                                      ctx->padding == RSA_PKCS1_PSS_PADDING
                                          ? OSSL_PKEY_RSA_PAD_MODE_PSS
                                          : OSSL_PKEY_RSA_PAD_MODE_PKCSV15,
                                      ctx->padding))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && !set_text_or_int(p, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST,
                                      RSA_PSS_SALTLEN_DIGEST))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const EVP_MD *mgf1 = ctx->mgf1_md != NULL ? ctx->mgf1_md : ctx->md;

        if (mgf1 != NULL &&
            !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(mgf1)))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM ecdsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_gettable_ctx_params(void *vctx, void *provctx)
{
    return rsa_gettable;
}

static const OSSL_PARAM *ecdsa_gettable_ctx_params(void *vctx, void *provctx)
{
    return ecdsa_gettable;
}

/* --- OpenSSL 3.4+: signature algorithms with their digest ------------- */

/*
 * "RSA-SHA2-256", "ECDSA-SHA2-384", ...: the message-signing API
 * (EVP_PKEY_sign_message_init, _update, _final and one-shot EVP_PKEY_sign
 * of a message) and EVP_PKEY_sign_init_ex2 with such a name (the caller
 * hashed). The digest comes with the name; the signature is made as for the
 * plain algorithms (local hash, one sign request, checked with the public
 * key). RSA ones are PKCS#1 v1.5, as their names say. Verification is
 * handed to the same algorithm of the default provider in the child
 * libctx, on the public key.
 */
#ifdef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT

static int sigalg_set_ctx_params(sk_signature_ctx *ctx,
                                 const OSSL_PARAM params[])
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_SIGNATURE, NULL, 0),
        SK_APPROVAL_SETTABLE_PARAMS,
        OSSL_PARAM_END,
    };
    const OSSL_PARAM *signature;
    OSSL_PARAM forward[2];

    if (!sk_params_check(ctx->provctx, params, settable, NULL,
                         "the signature") ||
        !sk_approval_set_params(ctx->provctx, &ctx->approval, params))
        return 0;
    /* the signature to check at verify_message_final, for the verifier */
    signature = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_SIGNATURE);
    if (ctx->verify_ctx == NULL || signature == NULL)
        return 1;
    forward[0] = *signature;
    forward[1] = OSSL_PARAM_construct_end();
    return EVP_PKEY_CTX_set_params(ctx->verify_ctx, forward) > 0;
}

static OSSL_FUNC_signature_sign_init_fn sigalg_sign_init;
static OSSL_FUNC_signature_sign_message_init_fn sigalg_sign_message_init;
static OSSL_FUNC_signature_sign_message_update_fn sigalg_sign_message_update;
static OSSL_FUNC_signature_sign_message_final_fn sigalg_sign_message_final;
static OSSL_FUNC_signature_verify_init_fn sigalg_verify_init;
static OSSL_FUNC_signature_verify_message_init_fn sigalg_verify_message_init;
static OSSL_FUNC_signature_verify_message_update_fn
    sigalg_verify_message_update;
static OSSL_FUNC_signature_verify_message_final_fn sigalg_verify_message_final;
static OSSL_FUNC_signature_query_key_types_fn rsa_sigalg_key_types;
static OSSL_FUNC_signature_query_key_types_fn ecdsa_sigalg_key_types;
static OSSL_FUNC_signature_settable_ctx_params_fn sigalg_settable_ctx_params;

static void *sigalg_newctx(void *provctx, sk_key_type algorithm,
                           const char *sigalg, const char *md)
{
    sk_signature_ctx *ctx = newctx(provctx, algorithm);

    if (ctx != NULL) {
        ctx->sigalg = sigalg;
        ctx->sigalg_md = md;
    }
    return ctx;
}

/* The signing part of both inits: the key, the digest of the name. */
static int sigalg_init_signing(sk_signature_ctx *ctx, void *provkey)
{
    if (!init_key(ctx, provkey, 1))
        return 0;
    return ctx->md != NULL && provkey == NULL
               ? 1
               : set_digest(ctx, ctx->sigalg_md, NULL);
}

static int sigalg_sign_init(void *vctx, void *provkey,
                            const OSSL_PARAM params[])
{
    sk_signature_ctx *ctx = vctx;

    if (!sigalg_init_signing(ctx, provkey))
        return 0;
    ctx->operation = OPERATION_SIGN;
    ctx->message = 0;
    SK_DEBUG(3, "key %s: sign a digest with %s", ctx->key->kid, ctx->sigalg);
    return sigalg_set_ctx_params(ctx, params);
}

static int sigalg_sign_message_init(void *vctx, void *provkey,
                                    const OSSL_PARAM params[])
{
    sk_signature_ctx *ctx = vctx;

    if (!sigalg_init_signing(ctx, provkey))
        return 0;
    if (!start_digest(ctx))
        return 0;
    ctx->operation = OPERATION_DIGEST_SIGN;
    ctx->message = 1;
    SK_DEBUG(3, "key %s: sign a message with %s", ctx->key->kid, ctx->sigalg);
    return sigalg_set_ctx_params(ctx, params);
}

static int sigalg_sign_message_update(void *vctx, const unsigned char *data,
                                      size_t datalen)
{
    return digest_sign_update(vctx, data, datalen);
}

static int sigalg_sign_message_final(void *vctx, unsigned char *sig,
                                     size_t *siglen, size_t sigsize)
{
    return digest_sign_final(vctx, sig, siglen, sigsize);
}

/* The default provider's algorithm of the same name on the public key. */
static int sigalg_local_verifier(sk_signature_ctx *ctx, void *provkey,
                                 const OSSL_PARAM params[], int message)
{
    EVP_SIGNATURE *local;
    int ok;

    if (!init_key(ctx, provkey, 0))
        return 0;
    EVP_PKEY_CTX_free(ctx->verify_ctx);
    ctx->verify_ctx = EVP_PKEY_CTX_new_from_pkey(
        ctx->provctx->libctx, ctx->key->public_key, LOCAL_PROPQ);
    local = EVP_SIGNATURE_fetch(ctx->provctx->libctx, ctx->sigalg, LOCAL_PROPQ);
    ok = ctx->verify_ctx != NULL && local != NULL &&
         (message ? EVP_PKEY_verify_message_init(ctx->verify_ctx, local, NULL)
                  : EVP_PKEY_verify_init_ex2(ctx->verify_ctx, local, NULL)) > 0;
    EVP_SIGNATURE_free(local);
    if (!ok) {
        SK_RAISE(ctx->provctx, SK_R_INTERNAL_ERROR,
                 "key %s: cannot verify %s signatures with its public key",
                 ctx->key->kid, ctx->sigalg);
        return 0;
    }
    ctx->verify_digest_set = 1;
    ctx->operation = OPERATION_VERIFY;
    ctx->message = message;
    return sigalg_set_ctx_params(ctx, params);
}

static int sigalg_verify_init(void *vctx, void *provkey,
                              const OSSL_PARAM params[])
{
    return sigalg_local_verifier(vctx, provkey, params, 0);
}

static int sigalg_verify_message_init(void *vctx, void *provkey,
                                      const OSSL_PARAM params[])
{
    return sigalg_local_verifier(vctx, provkey, params, 1);
}

static int sigalg_verify_message_update(void *vctx, const unsigned char *data,
                                        size_t datalen)
{
    sk_signature_ctx *ctx = vctx;

    return ctx->operation == OPERATION_VERIFY && ctx->message &&
           EVP_PKEY_verify_message_update(ctx->verify_ctx, data, datalen) > 0;
}

static int sigalg_verify_message_final(void *vctx)
{
    sk_signature_ctx *ctx = vctx;

    return ctx->operation == OPERATION_VERIFY && ctx->message &&
           EVP_PKEY_verify_message_final(ctx->verify_ctx) == 1;
}

static const char **rsa_sigalg_key_types(void)
{
    static const char *types[] = {"RSA", NULL};

    return types;
}

static const char **ecdsa_sigalg_key_types(void)
{
    static const char *types[] = {"EC", NULL};

    return types;
}

static const OSSL_PARAM sigalg_settable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_SIGNATURE, NULL, 0),
    SK_APPROVAL_SETTABLE_PARAMS,
    OSSL_PARAM_END,
};

static const OSSL_PARAM *sigalg_settable_ctx_params(void *vctx, void *provctx)
{
    return sigalg_settable;
}

/* One dispatch table per name: its newctx knows the digest. */
#define SK_SIGALG(alg, type, id, name, md)                                     \
    static OSSL_FUNC_signature_newctx_fn alg##_##id##_newctx;                  \
    static void *alg##_##id##_newctx(void *provctx, const char *properties)    \
    {                                                                          \
        return sigalg_newctx(provctx, type, name, md);                         \
    }                                                                          \
    const OSSL_DISPATCH sk_##alg##_##id##_signature_functions[] = {            \
        SK_DISPATCH(SIGNATURE_NEWCTX, alg##_##id##_newctx),                    \
        SK_DISPATCH(SIGNATURE_FREECTX, freectx),                               \
        SK_DISPATCH(SIGNATURE_DUPCTX, dupctx),                                 \
        SK_DISPATCH(SIGNATURE_SIGN_INIT, sigalg_sign_init),                    \
        SK_DISPATCH(SIGNATURE_SIGN, sign),                                     \
        SK_DISPATCH(SIGNATURE_SIGN_MESSAGE_INIT, sigalg_sign_message_init),    \
        SK_DISPATCH(SIGNATURE_SIGN_MESSAGE_UPDATE,                             \
                    sigalg_sign_message_update),                               \
        SK_DISPATCH(SIGNATURE_SIGN_MESSAGE_FINAL, sigalg_sign_message_final),  \
        SK_DISPATCH(SIGNATURE_VERIFY_INIT, sigalg_verify_init),                \
        SK_DISPATCH(SIGNATURE_VERIFY, verify),                                 \
        SK_DISPATCH(SIGNATURE_VERIFY_MESSAGE_INIT,                             \
                    sigalg_verify_message_init),                               \
        SK_DISPATCH(SIGNATURE_VERIFY_MESSAGE_UPDATE,                           \
                    sigalg_verify_message_update),                             \
        SK_DISPATCH(SIGNATURE_VERIFY_MESSAGE_FINAL,                            \
                    sigalg_verify_message_final),                              \
        SK_DISPATCH(SIGNATURE_QUERY_KEY_TYPES, alg##_sigalg_key_types),        \
        SK_DISPATCH(SIGNATURE_GET_CTX_PARAMS, get_ctx_params),                 \
        SK_DISPATCH(SIGNATURE_GETTABLE_CTX_PARAMS, alg##_gettable_ctx_params), \
        SK_DISPATCH(SIGNATURE_SET_CTX_PARAMS, set_ctx_params),                 \
        SK_DISPATCH(SIGNATURE_SETTABLE_CTX_PARAMS,                             \
                    sigalg_settable_ctx_params),                               \
        {0, NULL},                                                             \
    };

SK_SIGALG(rsa, SK_KEY_RSA, sha1, "RSA-SHA1", "SHA1")
SK_SIGALG(rsa, SK_KEY_RSA, sha224, "RSA-SHA2-224", "SHA2-224")
SK_SIGALG(rsa, SK_KEY_RSA, sha256, "RSA-SHA2-256", "SHA2-256")
SK_SIGALG(rsa, SK_KEY_RSA, sha384, "RSA-SHA2-384", "SHA2-384")
SK_SIGALG(rsa, SK_KEY_RSA, sha512, "RSA-SHA2-512", "SHA2-512")
SK_SIGALG(rsa, SK_KEY_RSA, sha3_224, "RSA-SHA3-224", "SHA3-224")
SK_SIGALG(rsa, SK_KEY_RSA, sha3_256, "RSA-SHA3-256", "SHA3-256")
SK_SIGALG(rsa, SK_KEY_RSA, sha3_384, "RSA-SHA3-384", "SHA3-384")
SK_SIGALG(rsa, SK_KEY_RSA, sha3_512, "RSA-SHA3-512", "SHA3-512")
SK_SIGALG(ecdsa, SK_KEY_EC, sha1, "ECDSA-SHA1", "SHA1")
SK_SIGALG(ecdsa, SK_KEY_EC, sha224, "ECDSA-SHA2-224", "SHA2-224")
SK_SIGALG(ecdsa, SK_KEY_EC, sha256, "ECDSA-SHA2-256", "SHA2-256")
SK_SIGALG(ecdsa, SK_KEY_EC, sha384, "ECDSA-SHA2-384", "SHA2-384")
SK_SIGALG(ecdsa, SK_KEY_EC, sha512, "ECDSA-SHA2-512", "SHA2-512")
SK_SIGALG(ecdsa, SK_KEY_EC, sha3_224, "ECDSA-SHA3-224", "SHA3-224")
SK_SIGALG(ecdsa, SK_KEY_EC, sha3_256, "ECDSA-SHA3-256", "SHA3-256")
SK_SIGALG(ecdsa, SK_KEY_EC, sha3_384, "ECDSA-SHA3-384", "SHA3-384")
SK_SIGALG(ecdsa, SK_KEY_EC, sha3_512, "ECDSA-SHA3-512", "SHA3-512")

#else

/* Before OpenSSL 3.4 no context has a signature algorithm's name. */
static int sigalg_set_ctx_params(sk_signature_ctx *ctx,
                                 const OSSL_PARAM params[])
{
    return 0;
}

#endif /* OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT */

/* --- dispatch ---------------------------------------------------------- */

/* The entries the RSA and ECDSA signatures share (alg: rsa or ecdsa). */
#define SK_SIGNATURE_FUNCTIONS(alg)                                            \
    SK_DISPATCH(SIGNATURE_NEWCTX, alg##_newctx),                               \
        SK_DISPATCH(SIGNATURE_FREECTX, freectx),                               \
        SK_DISPATCH(SIGNATURE_DUPCTX, dupctx),                                 \
        SK_DISPATCH(SIGNATURE_SIGN_INIT, sign_init),                           \
        SK_DISPATCH(SIGNATURE_SIGN, sign),                                     \
        SK_DISPATCH(SIGNATURE_DIGEST_SIGN_INIT, digest_sign_init),             \
        SK_DISPATCH(SIGNATURE_DIGEST_SIGN_UPDATE, digest_sign_update),         \
        SK_DISPATCH(SIGNATURE_DIGEST_SIGN_FINAL, digest_sign_final),           \
        SK_DISPATCH(SIGNATURE_VERIFY_INIT, verify_init),                       \
        SK_DISPATCH(SIGNATURE_VERIFY, verify),                                 \
        SK_DISPATCH(SIGNATURE_DIGEST_VERIFY_INIT, digest_verify_init),         \
        SK_DISPATCH(SIGNATURE_DIGEST_VERIFY_UPDATE, digest_verify_update),     \
        SK_DISPATCH(SIGNATURE_DIGEST_VERIFY_FINAL, digest_verify_final),       \
        SK_DISPATCH(SIGNATURE_GET_CTX_PARAMS, get_ctx_params),                 \
        SK_DISPATCH(SIGNATURE_SET_CTX_PARAMS, set_ctx_params),                 \
        SK_DISPATCH(SIGNATURE_GETTABLE_CTX_PARAMS, alg##_gettable_ctx_params), \
        SK_DISPATCH(SIGNATURE_SETTABLE_CTX_PARAMS, alg##_settable_ctx_params)

const OSSL_DISPATCH sk_rsa_signature_functions[] = {
    SK_SIGNATURE_FUNCTIONS(rsa),
    SK_DISPATCH(SIGNATURE_VERIFY_RECOVER_INIT, verify_recover_init),
    SK_DISPATCH(SIGNATURE_VERIFY_RECOVER, verify_recover),
    {0, NULL},
};

const OSSL_DISPATCH sk_ecdsa_signature_functions[] = {
    SK_SIGNATURE_FUNCTIONS(ecdsa),
    {0, NULL},
};
