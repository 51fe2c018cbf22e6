/*
 * The cloud formats of the BYOK cipher (byok.c): each artifact built from
 * SmartKey calls. Every secret step runs in SmartKey: the AES key of the
 * hybrid formats is a transient key of the session, generated there, used
 * there as the KWP or GCM key and wrapped there under the cloud's RSA key.
 * Only ciphertexts, tags and digests reach this file, which concatenates
 * and encodes them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "byok_formats.h"
#include "provider.h"

#define TRANSIENT_AES_BITS 256
/* JWE A256GCM (RFC 7518 §5.3): 96-bit IV, 128-bit tag. */
#define JWE_IV_BYTES 12
#define JWE_TAG_BITS 128
#define SHA256_BYTES 32

const char *const sk_byok_format_names[FORMAT_COUNT] = {
    SMARTKEY_WRAP_FORMAT_RSA_OAEP,
    SMARTKEY_WRAP_FORMAT_RSA_AES_KEY_WRAP,
    SMARTKEY_WRAP_FORMAT_AZURE_BYOK,
    SMARTKEY_WRAP_FORMAT_JWE,
    SMARTKEY_WRAP_FORMAT_SALESFORCE_CACHE_ONLY,
    SMARTKEY_WRAP_FORMAT_SHA256,
};

/* ---- encodings ------------------------------------------------------- */

size_t sk_byok_base64_size(size_t n)
{
    return 4 * ((n + 2) / 3);
}

/* base64 (padded) or base64url (unpadded) into a NUL-terminated string. */
char *sk_byok_base64(const unsigned char *in, size_t len, int url)
{
    char *out = OPENSSL_malloc(sk_byok_base64_size(len) + 1);
    int n;

    if (out == NULL)
        return NULL;
    n = len > 0 ? EVP_EncodeBlock((unsigned char *)out, in, (int)len) : 0;
    out[n] = '\0';
    if (url) {
        for (int i = 0; i < n; i++) {
            if (out[i] == '+')
                out[i] = '-';
            else if (out[i] == '/')
                out[i] = '_';
        }
        while (n > 0 && out[n - 1] == '=')
            out[--n] = '\0';
    }
    return out;
}

/* ---- SmartKey calls -------------------------------------------------- */

typedef struct byok_call {
    sk_byok_cipher *ctx;
    sk_client *client;
    wrap_settings *ws;
    char *wrapping_transient; /* the cloud's key from a file, registered */
    char *aes_transient;      /* the transient AES key */
    sk_error err;
    const char *failed; /* what failed, for the message */
    /* the approval of the call being made (one per protected call) */
    sk_approval_ctx approval;
} byok_call;

static void call_clear(byok_call *call)
{
    OPENSSL_free(call->wrapping_transient);
    OPENSSL_free(call->aes_transient);
    call->wrapping_transient = call->aes_transient = NULL;
}

static int held_in_smartkey(const sk_key *key)
{
    return key->kid[0] != '\0';
}

static void subject_ref(const wrap_settings *ws, sk_key_ref *ref)
{
    ref->name = ws->subject.name;
    ref->kid = ws->subject.kid;
}

/*
 * The wrapping key as SmartKey knows it: by kid, or a transient key of the
 * session holding the public key read from the cloud's file or certificate.
 */
static int wrapping_key(byok_call *call, sk_key_ref *ref,
                        const char **transient)
{
    const sk_key *key = call->ctx->key;
    unsigned char *spki = NULL;
    int spki_len, ok;

    memset(ref, 0, sizeof(*ref));
    *transient = NULL;
    if (held_in_smartkey(key)) {
        ref->kid = key->kid;
        return 1;
    }
    if (call->wrapping_transient == NULL) {
        spki_len = i2d_PUBKEY(key->public_key, &spki);
        if (spki_len <= 0) {
            call->failed = "encoding the wrapping key";
            return 0;
        }
        call->failed = "registering the wrapping key from a local file "
                       "with SmartKey";
        ok = sk_client_create_transient_public_key(
            call->client, "RSA", spki, (size_t)spki_len,
            &call->wrapping_transient, &call->err);
        OPENSSL_free(spki);
        if (!ok)
            return 0;
    }
    *transient = call->wrapping_transient;
    return 1;
}

/*
 * The approval of one step: approvers read the format, the key whose
 * artifact is made, the cloud's wrapping key (its fingerprint) and the
 * step. Only the steps on persisted keys can need one (transient keys
 * belong to no group): the subject's wrap, and the wrap under the cloud's
 * key when that key is held in a protected group of SmartKey.
 */
static sk_approval *step_approval(byok_call *call, const char *step)
{
    const sk_key *key = call->ctx->key;
    char what[400], fingerprint[128];

    fingerprint[0] = '\0';
    if (sk_approval_describes(call->ctx->provctx, &call->ctx->approval))
        sk_approval_fingerprint(key->public_key, fingerprint,
                                sizeof(fingerprint));
    snprintf(what, sizeof(what), "%s artifact of %.200s (%s)",
             sk_byok_format_names[call->ctx->format], call->ws->subject_uri,
             step);
    return sk_approval_prepare(
        &call->approval, call->ctx->provctx, &call->ctx->approval, what,
        "BYOK: make the %s import artifact of the key %.200s for the cloud "
        "RSA wrapping key %s%s%s%s%s (public key %s); this step: %s",
        sk_byok_format_names[call->ctx->format], call->ws->subject_uri,
        held_in_smartkey(key) ? "held in SmartKey as " : "from a local file",
        held_in_smartkey(key) && key->name != NULL ? "'" : "",
        held_in_smartkey(key) && key->name != NULL ? key->name : "",
        held_in_smartkey(key) && key->name != NULL ? "' " : "",
        held_in_smartkey(key) ? key->kid : "", fingerprint, step);
}

/* A result SmartKey returned that cannot be right: the call fails as a
   bad answer, naming what was wrong. */
static int answer_wrong(byok_call *call, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int answer_wrong(byok_call *call, const char *what, const char *fmt, ...)
{
    va_list args;

    call->failed = what;
    call->err.kind = SK_ERR_PROTOCOL;
    va_start(args, fmt);
    vsnprintf(call->err.message, sizeof(call->err.message), fmt, args);
    va_end(args);
    return 0;
}

/* The call fails for want of memory while doing what doing says. */
static int out_of_memory(byok_call *call, const char *doing)
{
    call->failed = doing;
    call->err.kind = SK_ERR_NOMEM;
    return 0;
}

/* An RSA-OAEP block under the wrapping key is exactly its modulus long. */
static int oaep_block_sound(byok_call *call, const sk_wrapkey_result *rsa)
{
    size_t modulus = (size_t)call->ctx->key->max_size;

    if (rsa->wrapped_len == modulus)
        return 1;
    return answer_wrong(call, "checking the RSA-OAEP block SmartKey returned",
                        "it has %zu bytes, the wrapping key's modulus %zu",
                        rsa->wrapped_len, modulus);
}

/* R3: a fresh AES-256 key, generated and kept in SmartKey. */
static int make_transient_aes(byok_call *call)
{
    call->failed = "generating the transient AES-256 key";
    return sk_client_generate_transient_aes(call->client, TRANSIENT_AES_BITS,
                                            &call->aes_transient, &call->err);
}

/* R2: the transient AES key wrapped with RSA-OAEP under the cloud's key. */
static int wrap_transient_under_rsa(byok_call *call, sk_wrapkey_result *out)
{
    sk_wrapkey_ex_request req;

    memset(&req, 0, sizeof(req));
    if (!wrapping_key(call, &req.wrapping_key, &req.wrapping_transient_key))
        return 0;
    req.subject_transient_key = call->aes_transient;
    req.alg = "RSA";
    req.oaep_hash = call->ws->oaep_hash;
    req.approval = step_approval(call, "wrap the transient AES key under the "
                                       "cloud's RSA key with RSA-OAEP");
    call->failed = "wrapping the transient AES key under the RSA key";
    return sk_client_wrapkey_ex(call->client, &req, out, &call->err);
}

/*
 * R4 (KWP, RFC 5649) or R5 (GCM with the caller's IV and AAD): the subject
 * wrapped under the transient AES key. key_format Pkcs8 is what every
 * cloud takes for RSA and EC keys; only those have a PKCS#8 form, so it is
 * sent for them only (raw keys are wrapped as their bytes).
 */
static int wrap_subject_under_aes(byok_call *call, const char *mode,
                                  const unsigned char *iv, size_t iv_len,
                                  const unsigned char *ad, size_t ad_len,
                                  sk_wrapkey_result *out)
{
    sk_wrapkey_ex_request req;

    memset(&req, 0, sizeof(req));
    req.wrapping_transient_key = call->aes_transient;
    subject_ref(call->ws, &req.wrap_subject);
    /* KWP of an RSA or EC subject carries its PKCS#8; symmetric subjects
       have no key_format (the JWE formats take symmetric subjects only) */
    if (iv == NULL && call->ws->subject_asymmetric)
        req.key_format = "Pkcs8";
    req.alg = "AES";
    req.cipher_mode = mode;
    if (iv != NULL) {
        req.iv = iv;
        req.iv_len = iv_len;
        req.ad = ad;
        req.ad_len = ad_len;
        req.tag_len_bits = JWE_TAG_BITS;
    }
    req.approval = step_approval(
        call, iv != NULL ? "wrap (export) the key under a transient AES-256 "
                           "key with AES-GCM"
                         : "wrap (export) the key under a transient AES-256 "
                           "key with AES-KWP (RFC 5649)");
    call->failed = "wrapping the key under the transient AES key";
    return sk_client_wrapkey_ex(call->client, &req, out, &call->err);
}

/*
 * KWP (RFC 5649) of n bytes is 8 * ceil(n / 8) + 8 bytes: a multiple of 8,
 * at least 16. n, the subject's PKCS#8 (or raw) size, is known only to
 * SmartKey, so this is the whole check the answer allows.
 */
static int kwp_block_sound(byok_call *call, const sk_wrapkey_result *kwp)
{
    if (kwp->wrapped_len >= 16 && kwp->wrapped_len % 8 == 0)
        return 1;
    return answer_wrong(call, "checking the AES key wrap SmartKey returned",
                        "%zu bytes is not the length of an AES key wrap "
                        "(RFC 5649: a multiple of 8, at least 16)",
                        kwp->wrapped_len);
}

/* RSA-OAEP block || KWP block (PKCS#11 CKM_RSA_AES_KEY_WRAP). */
static int rsa_aes_key_wrap(byok_call *call, unsigned char **out,
                            size_t *out_len)
{
    sk_wrapkey_result kwp, rsa;
    int ok = 0;

    memset(&kwp, 0, sizeof(kwp));
    memset(&rsa, 0, sizeof(rsa));
    if (make_transient_aes(call) &&
        wrap_subject_under_aes(call, "KWP", NULL, 0, NULL, 0, &kwp) &&
        wrap_transient_under_rsa(call, &rsa) && oaep_block_sound(call, &rsa) &&
        kwp_block_sound(call, &kwp)) {
        *out_len = rsa.wrapped_len + kwp.wrapped_len;
        *out = OPENSSL_malloc(*out_len);
        if (*out != NULL) {
            memcpy(*out, rsa.wrapped, rsa.wrapped_len);
            memcpy(*out + rsa.wrapped_len, kwp.wrapped, kwp.wrapped_len);
            ok = 1;
        } else {
            out_of_memory(call, "assembling the artifact");
        }
    }
    sk_wrapkey_result_clear(&kwp);
    sk_wrapkey_result_clear(&rsa);
    return ok;
}

static int set_string(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, json_string(value)) == 0;
}

/* The JOSE protected header; key order as Salesforce's documentation. */
static char *jwe_header(const sk_byok_cipher *ctx)
{
    json_t *header = json_object();
    char *text = NULL;

    if (header != NULL && set_string(header, "alg", "RSA-OAEP") &&
        set_string(header, "enc", "A256GCM") &&
        set_string(header, "kid", ctx->kid) &&
        (ctx->jti == NULL || set_string(header, "jti", ctx->jti)))
        text = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(header);
    return text;
}

/*
 * JWE compact serialization (RFC 7516 §3.1): the subject's bytes are the
 * plaintext of A256GCM under a transient CEK in SmartKey, with the ASCII of
 * the encoded header as AAD; the CEK is wrapped with RSA-OAEP (SHA-1).
 */
static int jwe_compact(byok_call *call, char **out)
{
    unsigned char iv[JWE_IV_BYTES];
    sk_wrapkey_result gcm, rsa;
    char *header = NULL, *parts[5] = {NULL, NULL, NULL, NULL, NULL};
    size_t total = 0;
    int ok = 0;

    memset(&gcm, 0, sizeof(gcm));
    memset(&rsa, 0, sizeof(rsa));
    *out = NULL;
    call->failed = "assembling the JWE";
    call->err.kind = SK_ERR_NOMEM;
    header = jwe_header(call->ctx);
    if (header == NULL)
        goto done;
    parts[0] = sk_byok_base64((unsigned char *)header, strlen(header), 1);
    /* the IV is public; a fresh one per JWE is all GCM asks */
    if (parts[0] == NULL ||
        RAND_bytes_ex(call->ctx->provctx->libctx, iv, sizeof(iv), 0) <= 0)
        goto done;
    call->err.kind = SK_ERR_NONE;
    if (!make_transient_aes(call) ||
        !wrap_subject_under_aes(call, "GCM", iv, sizeof(iv),
                                (unsigned char *)parts[0], strlen(parts[0]),
                                &gcm) ||
        !wrap_transient_under_rsa(call, &rsa) || !oaep_block_sound(call, &rsa))
        goto done;
    if (gcm.tag_len != JWE_TAG_BITS / 8) {
        answer_wrong(call, "reading SmartKey's GCM tag",
                     "the tag is %zu bytes, not %d", gcm.tag_len,
                     JWE_TAG_BITS / 8);
        goto done;
    }
    call->failed = "assembling the JWE";
    call->err.kind = SK_ERR_NOMEM;
    parts[1] = sk_byok_base64(rsa.wrapped, rsa.wrapped_len, 1);
    parts[2] = sk_byok_base64(iv, sizeof(iv), 1);
    parts[3] = sk_byok_base64(gcm.wrapped, gcm.wrapped_len, 1);
    parts[4] = sk_byok_base64(gcm.tag, gcm.tag_len, 1);
    for (int i = 0; i < 5; i++) {
        if (parts[i] == NULL)
            goto done;
        total += strlen(parts[i]) + 1;
    }
    *out = OPENSSL_malloc(total);
    if (*out == NULL)
        goto done;
    snprintf(*out, total, "%s.%s.%s.%s.%s", parts[0], parts[1], parts[2],
             parts[3], parts[4]);
    call->err.kind = SK_ERR_NONE;
    ok = 1;
done:
    sk_json_dumped_free(header);
    for (int i = 0; i < 5; i++)
        OPENSSL_free(parts[i]);
    sk_wrapkey_result_clear(&gcm);
    sk_wrapkey_result_clear(&rsa);
    return ok;
}

/* A JSON document as the artifact's bytes. */
/* The artifact as doc's indented text (doc is released); on failure the
   call records doing as what ran out of memory. */
static int json_artifact(byok_call *call, json_t *doc, const char *doing,
                         unsigned char **out, size_t *out_len)
{
    char *text = doc != NULL
                     ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                     : NULL;

    json_decref(doc);
    if (text == NULL)
        return out_of_memory(call, doing);
    *out_len = strlen(text);
    *out = OPENSSL_memdup(text, *out_len);
    sk_json_dumped_free(text);
    return *out != NULL ? 1 : out_of_memory(call, doing);
}

/* Azure Key Vault's "Bring your own key specification" transfer file. */
static int azure_byok(byok_call *call, unsigned char **out, size_t *out_len)
{
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    char *ciphertext;
    json_t *doc;

    if (!rsa_aes_key_wrap(call, &blob, &blob_len))
        return 0;
    ciphertext = sk_byok_base64(blob, blob_len, 1);
    OPENSSL_free(blob);
    doc = ciphertext == NULL
              ? NULL
              : json_pack("{s:s,s:{s:s,s:s,s:s},s:s,s:s}", "schema_version",
                          "1.0.0", "header", "kid", call->ctx->kid, "alg",
                          "dir", "enc", "CKM_RSA_AES_KEY_WRAP", "ciphertext",
                          ciphertext, "generator",
                          "smartkey " SMARTKEY_VERSION " (OpenSSL provider); "
                          "SmartKey");
    OPENSSL_free(ciphertext);
    return json_artifact(call, doc, "assembling the .byok file", out, out_len);
}

/* The compact JWE, or for the Salesforce cache-only format the key
   service's JSON answer around it. */
static int jwe_artifact(byok_call *call, unsigned char **out, size_t *out_len)
{
    char *jwe = NULL;
    json_t *doc;

    if (!jwe_compact(call, &jwe))
        return 0;
    if (call->ctx->format != FORMAT_SALESFORCE_CACHE_ONLY) {
        *out = (unsigned char *)jwe;
        *out_len = strlen(jwe);
        return 1;
    }
    doc = json_pack("{s:s,s:s}", "kid", call->ctx->kid, "jwe", jwe);
    OPENSSL_free(jwe);
    return json_artifact(call, doc, "assembling the key service's answer", out,
                         out_len);
}

/* R7: SHA-256 of the subject's value, computed inside SmartKey. */
static int subject_sha256(byok_call *call, unsigned char **out, size_t *out_len)
{
    sk_key_ref ref;

    subject_ref(call->ws, &ref);
    call->failed = "hashing the key in SmartKey";
    if (!sk_client_key_digest(call->client, &ref, "SHA256",
                              step_approval(call, "SHA-256 of the key's value, "
                                                  "computed in SmartKey"),
                              out, out_len, &call->err))
        return 0;
    if (*out_len == SHA256_BYTES)
        return 1;
    OPENSSL_free(*out);
    *out = NULL;
    return answer_wrong(call, "checking the SHA-256 SmartKey returned",
                        "it has %zu bytes, a SHA-256 has %d", *out_len,
                        SHA256_BYTES);
}

typedef int byok_producer(byok_call *call, unsigned char **out,
                          size_t *out_len);

/* The sequence of SmartKey calls of each format (FORMAT_RSA_OAEP is the
   plain RSA cipher's: none here). */
static byok_producer *const producers[FORMAT_COUNT] = {
    [FORMAT_RSA_AES_KEY_WRAP] = rsa_aes_key_wrap,
    [FORMAT_AZURE_BYOK] = azure_byok,
    [FORMAT_JWE] = jwe_artifact,
    [FORMAT_SALESFORCE_CACHE_ONLY] = jwe_artifact,
    [FORMAT_SHA256] = subject_sha256,
};

/* The error of a failed artifact: the format, the subject, the wrapping
   key and the step that failed, with SmartKey's answer when there is one. */
static void report_failure(sk_byok_cipher *ctx, const wrap_settings *ws,
                           byok_call *call)
{
    char subject[512];

    if (SK_RAISE_APPROVAL(&call->approval, &call->err))
        return;
    snprintf(subject, sizeof(subject), "%s for %.200s (%s): %s",
             sk_byok_format_names[ctx->format], ws->subject_uri,
             held_in_smartkey(ctx->key) ? ctx->key->kid
                                        : "wrapping key from a file",
             call->failed != NULL ? call->failed : "internal error");
    if (call->err.kind == SK_ERR_NOMEM || call->err.kind == SK_ERR_NONE)
        SK_RAISE(ctx->provctx,
                 call->err.kind == SK_ERR_NOMEM ? SK_R_OUT_OF_MEMORY
                                                : SK_R_INTERNAL_ERROR,
                 "%s", subject);
    else
        SK_RAISE_CLIENT(ctx->provctx, subject, &call->err);
}

/*
 * The artifact's bytes before the encoding. A transient handle is lost when
 * SmartKey renews the session between two calls (404): then the whole
 * sequence runs once more in the new session.
 */
int sk_byok_produce(sk_byok_cipher *ctx, wrap_settings *ws, unsigned char **out,
                    size_t *out_len)
{
    byok_producer *produce =
        ctx->format < FORMAT_COUNT ? producers[ctx->format] : NULL;
    byok_call call;
    int ok = 0;

    memset(&call, 0, sizeof(call));
    call.ctx = ctx;
    call.ws = ws;
    call.client = sk_provctx_client(ctx->provctx);
    if (call.client == NULL)
        return 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        memset(&call.err, 0, sizeof(call.err));
        call.failed = NULL;
        sk_set_error_mark(ctx->provctx);
        ok = produce != NULL && produce(&call, out, out_len);
        sk_pop_error_to_mark(ctx->provctx);
        call_clear(&call);
        if (ok || call.err.kind != SK_ERR_NOT_FOUND ||
            ctx->format == FORMAT_SHA256)
            break;
    }
    if (!ok)
        report_failure(ctx, ws, &call);
    return ok;
}
