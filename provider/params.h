/*
 * Checked decoding of the OSSL_PARAMs callers set on smartkey's operations
 * (set_ctx_params, gen_set_params, the store's set_ctx_params). A caller's
 * parameter may carry NULL data, another type than declared, or megabytes:
 * each is an error naming the parameter, never a crash nor a value taken
 * silently (issue 12).
 */
#ifndef SMARTKEY_PARAMS_H
#define SMARTKEY_PARAMS_H

#include <stddef.h>

#include <openssl/core_dispatch.h>
#include <openssl/params.h>

#include "provider.h"

/* The longest text or octet string any parameter takes. */
#define SK_PARAM_MAX_BYTES 4096

/*
 * Checks each of params that settable declares (others are ignored, as
 * OpenSSL expects): it must carry data, have the declared type and fit
 * SK_PARAM_MAX_BYTES (integers: 8 bytes; big numbers: 512). text_or_int
 * (NULL-terminated, may be NULL) names the text parameters that also take
 * an integer (pad-mode from EVP_PKEY_CTX_set_rsa_padding, ...). what names
 * the operation in the error ("the RSA cipher"). 0 with an error raised.
 */
int sk_params_check(sk_provctx *ctx, const OSSL_PARAM params[],
                    const OSSL_PARAM *settable, const char *const *text_or_int,
                    const char *what);

/*
 * The text of a UTF-8 parameter copied into buf (always NUL-terminated):
 * 0 with an error raised when p is not text, has no data, or does not fit
 * in len - 1 bytes.
 */
int sk_param_text(sk_provctx *ctx, const OSSL_PARAM *p, char *buf, size_t len);

/* A wrap (smartkey-wrap-subject set) takes no input: 0 with an error
   raised when inlen is not 0. */
int sk_wrap_input_is_empty(sk_provctx *ctx, size_t inlen);

/* A copy of s for a duplicated context (dupctx): NULL when s is NULL; when
   the copy fails, NULL and *ok set to 0. */
char *sk_strdup_or_null(const char *s, int *ok);

/*
 * Contexts (the operations', the key manager's, the encoders') are zeroed
 * structs with a provctx member. SK_CTX_NEW(ptr, provctx, doing) allocates
 * *ptr and records provctx in it: 1, or 0 with ptr NULL and
 * SK_R_OUT_OF_MEMORY raised (the message names what was being done, the
 * error the caller's place).
 */
void *sk_ctx_zalloc(sk_provctx *provctx, size_t size, const char *doing,
                    const char *file, int line, const char *func);
#define SK_CTX_ZALLOC(provctx, size, doing)                                    \
    sk_ctx_zalloc((provctx), (size), (doing), __FILE__, __LINE__, __func__)
#define SK_CTX_NEW(ptr, provctx, doing)                                        \
    (((ptr) = SK_CTX_ZALLOC((provctx), sizeof(*(ptr)), (doing))) == NULL       \
         ? 0                                                                   \
         : ((ptr)->provctx = (provctx), 1))

/*
 * newctx and freectx of the operations whose context is the provider's own
 * (the decoders, the TEXT encoder): nothing is allocated. Typed as the
 * decoder's; the encoder's newctx and freectx types are the same.
 */
OSSL_FUNC_decoder_newctx_fn sk_provctx_newctx;
OSSL_FUNC_decoder_freectx_fn sk_provctx_freectx;

/*
 * dupctx in two steps. SK_CTX_DUP(from, doing): a byte copy of *from (its
 * pointers still shared: the caller replaces each one the copy must own),
 * or NULL with SK_R_OUT_OF_MEMORY raised. SK_CTX_DUP_DONE(from, copy, ok,
 * freectx, doing): copy when ok; otherwise copy released with freectx and
 * NULL with SK_R_OUT_OF_MEMORY raised.
 */
void *sk_ctx_dup(sk_provctx *provctx, const void *from, size_t size,
                 const char *doing, const char *file, int line,
                 const char *func);
void *sk_ctx_dup_done(sk_provctx *provctx, void *copy, int ok,
                      void (*freectx)(void *), const char *doing,
                      const char *file, int line, const char *func);
#define SK_CTX_DUP(from, doing)                                                \
    sk_ctx_dup((from)->provctx, (from), sizeof(*(from)), (doing), __FILE__,    \
               __LINE__, __func__)
#define SK_CTX_DUP_DONE(from, copy, ok, freectx, doing)                        \
    sk_ctx_dup_done((from)->provctx, (copy), (ok), (freectx), (doing),         \
                    __FILE__, __LINE__, __func__)

#endif
