/*
 * Private interfaces of the REST client.
 *
 *   http.c     the client's life cycle and the JSON call (sk_http_json)
 *   session.c  API key, session token, single-flight authentication
 *   retry.c    node order, failover, retries and backoff
 *   pool.c     libcurl: global init, fork, handle pool, one exchange
 *              (http_private.h: what those four share)
 *   engine.c   the I/O thread of requests made inside ASYNC jobs
 *   batch.c    batching of concurrent calls
 *   json.c     strict readers of SmartKey's JSON and Base64
 *   json_write.c  the request bodies' compact JSON text
 *   api.c      the typed calls of client.h
 *   error.c    sk_error helpers
 *
 * A new typed call only builds its request with jansson, calls
 * sk_http_json() and reads the answer with the sk_json_* readers; a call
 * on the hot path writes its body as text (sk_json_text, json_write.c)
 * and calls sk_http_text().
 */
#ifndef SMARTKEY_CLIENT_INTERNAL_H
#define SMARTKEY_CLIENT_INTERNAL_H

#include <stdarg.h>
#include <jansson.h>
#include "client.h"

/* Larger answers are refused: no SmartKey answer the provider needs comes
   close, and a hostile server must not make us allocate without bound. */
#define SK_MAX_RESPONSE (1024 * 1024)

/* ---- error.c ---- */

void sk_error_clear(sk_error *err);
/* The kind of an HTTP error status with no more specific meaning: 404 not
   found, 429 throttled, 5xx server, other 4xx bad request, anything else
   a protocol error. */
sk_err_kind sk_err_kind_of_status(long status);
void sk_error_set(sk_error *err, sk_err_kind kind, const char *request,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Copies text into err->message keeping printable ASCII only: the body of
   an error may be anything a server (or a proxy) chose to send. */
void sk_error_set_text(sk_error *err, const char *text, size_t len);
/* The same for text a server (or a proxy) answered: every occurrence of
   one of the secrets (the API key, the session token) and whatever
   follows "Basic " or "Bearer " is masked first, so a peer that echoes
   the request's Authorization header cannot put it on the error queue. */
void sk_error_set_server_text(sk_error *err, const char *text, size_t len,
                              const char *const *secrets, size_t n_secrets);

/* ---- http.c and the layers below it ---- */

/* The call changes nothing on the server (lookups, sign, decrypt, wrap):
   it may be sent again after a 429, a 5xx or a lost connection. Without
   it only refused connections (never processed) are retried. */
#define SK_HTTP_IDEMPOTENT 1u

/*
 * Sends `body` (may be NULL) to `path` (with its query string) and returns
 * the parsed JSON answer in *response (NULL for an empty 2xx body).
 * `request` names the call in errors, e.g. "POST /crypto/v1/keys/info".
 * Authenticates (re-authenticating once on a refused session) and retries
 * per `flags` (SK_HTTP_*). Returns 1 on success.
 */
int sk_http_json(sk_client *client, const char *method, const char *path,
                 const char *request, json_t *body, unsigned flags,
                 json_t **response, sk_error *err);
/* The same with the body as JSON text (NULL: none); session_only: the
   request names a transient key (or makes one), which only the session
   that made it can use (sk_session_body_needs_session tells it of a
   tree). */
int sk_http_text(sk_client *client, const char *method, const char *path,
                 const char *request, const char *body, size_t body_len,
                 int session_only, unsigned flags, json_t **response,
                 sk_error *err);
int sk_session_body_needs_session(json_t *body);

/* Waits ms: a job inside an ASYNC job pauses on the engine's timer, a
   thread sleeps (retry.c). */
void sk_client_pause_ms(sk_client *client, long ms);

/* ---- approval.c ---- */

/*
 * sk_http_json with the quorum-approval workflow of `approval` (client.h;
 * NULL: sk_http_json itself).
 */
int sk_approval_call(sk_client *client, const char *method, const char *path,
                     const char *request, json_t *body, unsigned flags,
                     sk_approval *approval, json_t **response, sk_error *err);
/* The same with the body as JSON text (sk_http_text): the body becomes a
   tree only when the workflow needs one (a resume, an approval request). */
int sk_approval_text_call(sk_client *client, const char *method,
                          const char *path, const char *request,
                          const char *body, size_t body_len, int session_only,
                          unsigned flags, sk_approval *approval,
                          json_t **response, sk_error *err);

/* The caller runs inside an OpenSSL ASYNC job and async is not off: its
   requests go through the engine (engine.c) and it must never block on
   another caller (batching is bypassed). */
int sk_http_async_now(sk_client *client);

void sk_client_log(sk_client *client, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The client's batcher (batch.c); NULL when batching is off. */
struct sk_batcher *sk_client_batcher(sk_client *client);

/* ---- api.c: the hot calls' bodies ---- */

/* A request body written as JSON text: {"key":<descriptor>,<rest>} */
typedef struct sk_request_body {
    char *text; /* OPENSSL_malloc'd, NUL-terminated; wiped when cleared */
    size_t len;
    size_t rest;      /* offset of <rest> (the members after the key) */
    const char *kid;  /* the key's kid when it is named by one, else NULL */
    int session_only; /* it names a transient key */
} sk_request_body;
void sk_request_body_clear(sk_request_body *body);
/* The bodies of sign, decrypt, encrypt and wrapkey (the same bytes their
   jansson trees would give); 0 with err filled. Unit tests reach them. */
int sk_sign_body(const sk_sign_request *req, sk_request_body *body,
                 sk_error *err);
int sk_decrypt_body(const sk_rsa_request *req, sk_request_body *body,
                    sk_error *err);
int sk_encrypt_body(const sk_rsa_request *req, sk_request_body *body,
                    sk_error *err);
int sk_wrapkey_body(const sk_wrapkey_ex_request *req, sk_request_body *body,
                    sk_error *err);

/* ---- api.c: response decoders without the network ---- */

/* The decoders the typed calls apply to an answer's body: fuzzing and unit
   tests reach them directly. Not part of client.h, not exported. */
int sk_decode_key_info(const char *body, size_t len, sk_key_info **out,
                       sk_error *err);
int sk_decode_key_list(const char *body, size_t len, sk_key_info ***out,
                       size_t *count, sk_error *err);
/* The Base64 field `field` of an answer object (sign, decrypt, wrapkey). */
int sk_decode_bytes(const char *body, size_t len, const char *field,
                    unsigned char **out, size_t *out_len, sk_error *err);

/* ---- json.c ---- */

/* Each reader returns 1 when the field is present with the right type (and
   writes *out), 0 when absent or null, -1 when present with a wrong type or
   value (and fills err as a protocol error). */
int sk_json_string(json_t *obj, const char *field, const char **out,
                   const char *request, sk_error *err);
int sk_json_bool(json_t *obj, const char *field, int *out, const char *request,
                 sk_error *err);
int sk_json_uint(json_t *obj, const char *field, unsigned *out,
                 const char *request, sk_error *err);
/* Standard padded Base64 only; *out is OPENSSL_malloc'd. */
int sk_json_base64(json_t *obj, const char *field, unsigned char **out,
                   size_t *out_len, const char *request, sk_error *err);

/* Same as above but absence is an error too; returns 1 or 0. */
int sk_json_need_string(json_t *obj, const char *field, const char **out,
                        const char *request, sk_error *err);
int sk_json_need_base64(json_t *obj, const char *field, unsigned char **out,
                        size_t *out_len, const char *request, sk_error *err);

/* Standard padded Base64 of bytes as a JSON string (NULL on no memory). */
json_t *sk_json_from_bytes(const unsigned char *in, size_t len);
/* Strict decoder: rejects whitespace, bad padding and the URL alphabet;
   decodes what it accepts as EVP_DecodeBlock does (*out OPENSSL_malloc'd). */
unsigned char *sk_base64_decode(const char *in, size_t in_len, size_t *out_len);

/* ---- json_write.c ---- */

/* The text json_dumps(value, JSON_COMPACT) makes, byte for byte, in an
   OPENSSL_malloc'd buffer of *len + 1 bytes (NUL-terminated); NULL on no
   memory or when value is neither an object nor an array. */
char *sk_json_compact(json_t *value, size_t *len);

/* A body written directly as JSON text (the hot calls: sign, decrypt,
   encrypt, wrap), without a jansson tree: the same bytes as the tree
   sk_json_compact would write. Appends after a failure (no memory) do
   nothing; finish then returns NULL. The buffer is wiped when it grows
   and when it is freed. Start from a zeroed sk_json_text. */
typedef struct sk_json_text {
    char *buf;
    size_t len, cap;
    int failed;
} sk_json_text;
/* JSON text as is (a literal of the caller) */
void sk_json_text_raw(sk_json_text *t, const char *json);
/* a JSON string of the NUL-terminated UTF-8 text s (escaped) */
void sk_json_text_string(sk_json_text *t, const char *s);
/* a JSON string of the standard padded Base64 of in */
void sk_json_text_base64(sk_json_text *t, const unsigned char *in, size_t len);
/* the text (NUL-terminated, OPENSSL_malloc'd, *len bytes) or NULL */
char *sk_json_text_finish(sk_json_text *t, size_t *len);
void sk_json_text_free(sk_json_text *t);
/* s is valid UTF-8 as jansson requires of its strings */
int sk_utf8_valid(const char *s, size_t len);

#endif
