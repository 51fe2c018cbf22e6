/*
 * Checked parameter decoding (params.h). OpenSSL 3.0's typed getters read
 * through a NULL data pointer (OSSL_PARAM_get_int) or hand it back
 * (OSSL_PARAM_get_utf8_string_ptr), and a UTF-8 string's terminating NUL
 * lies outside its data_size: the checks here come first, and text is
 * copied with its length bounded.
 */
#include <string.h>

#include <openssl/crypto.h>

#include <smartkey/smartkey.h>

#include "params.h"

#define MAX_INTEGER_BYTES 8
#define MAX_BIGNUM_BYTES  512

static const char *type_name(unsigned int type)
{
    switch (type) {
    case OSSL_PARAM_INTEGER:
        return "an integer";
    case OSSL_PARAM_UNSIGNED_INTEGER:
        return "an unsigned integer";
    case OSSL_PARAM_REAL:
        return "a real number";
    case OSSL_PARAM_UTF8_STRING:
        return "a UTF-8 string";
    case OSSL_PARAM_OCTET_STRING:
        return "an octet string";
    case OSSL_PARAM_UTF8_PTR:
        return "a UTF-8 string pointer";
    case OSSL_PARAM_OCTET_PTR:
        return "an octet string pointer";
    }
    return "of an unknown type";
}

static int listed(const char *name, const char *const *names)
{
    for (; names != NULL && *names != NULL; names++)
        if (strcmp(name, *names) == 0)
            return 1;
    return 0;
}

static int is_integer(unsigned int type)
{
    return type == OSSL_PARAM_INTEGER || type == OSSL_PARAM_UNSIGNED_INTEGER;
}

static int check_one(sk_provctx *ctx, const OSSL_PARAM *p,
                     const OSSL_PARAM *declared, const char *const *text_or_int,
                     const char *what)
{
    unsigned int want = declared->data_type;
    size_t max = SK_PARAM_MAX_BYTES;
    int type_ok;

    if (is_integer(want)) {
        type_ok = is_integer(p->data_type);
        /* OSSL_PARAM_BN declares no size: a big number */
        max = declared->data_size == 0 ? MAX_BIGNUM_BYTES : MAX_INTEGER_BYTES;
    } else if (want == OSSL_PARAM_UTF8_STRING) {
        type_ok = p->data_type == OSSL_PARAM_UTF8_STRING ||
                  (is_integer(p->data_type) && listed(p->key, text_or_int));
        if (is_integer(p->data_type))
            max = MAX_INTEGER_BYTES;
    } else {
        type_ok = p->data_type == want;
    }
    if (!type_ok) {
        SK_RAISE(ctx, SK_R_INVALID_PARAMETER,
                 "parameter '%.64s' of %s must be %s, not %s", p->key, what,
                 type_name(want), type_name(p->data_type));
        return 0;
    }
    if (p->data == NULL) {
        SK_RAISE(ctx, SK_R_INVALID_PARAMETER,
                 "parameter '%.64s' of %s has no value (NULL data)", p->key,
                 what);
        return 0;
    }
    if (p->data_size > max) {
        SK_RAISE(ctx, SK_R_INVALID_PARAMETER,
                 "parameter '%.64s' of %s is %zu bytes long; it takes at "
                 "most %zu",
                 p->key, what, p->data_size, max);
        return 0;
    }
    return 1;
}

int sk_params_check(sk_provctx *ctx, const OSSL_PARAM params[],
                    const OSSL_PARAM *settable, const char *const *text_or_int,
                    const char *what)
{
    if (params == NULL)
        return 1;
    for (const OSSL_PARAM *p = params; p->key != NULL; p++) {
        const OSSL_PARAM *declared = OSSL_PARAM_locate_const(settable, p->key);

        if (declared != NULL && !check_one(ctx, p, declared, text_or_int, what))
            return 0;
    }
    return 1;
}

int sk_param_text(sk_provctx *ctx, const OSSL_PARAM *p, char *buf, size_t len)
{
    const char *text, *nul;
    size_t text_len;

    if (p->data_type != OSSL_PARAM_UTF8_STRING || p->data == NULL) {
        SK_RAISE(ctx, SK_R_INVALID_PARAMETER,
                 "parameter '%.64s' must be a UTF-8 string with a value",
                 p->key);
        return 0;
    }
    text = p->data;
    nul = memchr(text, '\0', p->data_size);
    text_len = nul != NULL ? (size_t)(nul - text) : p->data_size;
    if (text_len >= len) {
        SK_RAISE(ctx, SK_R_INVALID_PARAMETER,
                 "parameter '%.64s' is %zu bytes long; it takes at most %zu",
                 p->key, text_len, len - 1);
        return 0;
    }
    memcpy(buf, text, text_len);
    buf[text_len] = '\0';
    return 1;
}

int sk_wrap_input_is_empty(sk_provctx *ctx, size_t inlen)
{
    if (inlen != 0) {
        SK_RAISE(ctx, SK_R_INVALID_PARAMETER,
                 "the input must be empty when %s names a key to wrap "
                 "(got %zu bytes); use -in /dev/null",
                 SMARTKEY_PARAM_WRAP_SUBJECT, inlen);
        return 0;
    }
    return 1;
}

char *sk_strdup_or_null(const char *s, int *ok)
{
    char *copy;

    if (s == NULL)
        return NULL;
    copy = OPENSSL_strdup(s);
    if (copy == NULL)
        *ok = 0;
    return copy;
}

void *sk_ctx_zalloc(sk_provctx *provctx, size_t size, const char *doing,
                    const char *file, int line, const char *func)
{
    void *ctx = OPENSSL_zalloc(size);

    if (ctx == NULL)
        sk_raise(provctx, file, line, func, SK_R_OUT_OF_MEMORY, "%s", doing);
    return ctx;
}

void *sk_provctx_newctx(void *provctx)
{
    return provctx;
}

void sk_provctx_freectx(void *ctx)
{
}

void *sk_ctx_dup(sk_provctx *provctx, const void *from, size_t size,
                 const char *doing, const char *file, int line,
                 const char *func)
{
    void *copy = OPENSSL_memdup(from, size);

    if (copy == NULL)
        sk_raise(provctx, file, line, func, SK_R_OUT_OF_MEMORY, "%s", doing);
    return copy;
}

void *sk_ctx_dup_done(sk_provctx *provctx, void *copy, int ok,
                      void (*freectx)(void *), const char *doing,
                      const char *file, int line, const char *func)
{
    if (ok)
        return copy;
    freectx(copy);
    sk_raise(provctx, file, line, func, SK_R_OUT_OF_MEMORY, "%s", doing);
    return NULL;
}
