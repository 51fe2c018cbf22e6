/*
 * The HTTP layer's private parts, shared by its four files:
 *
 *   http.c     the client's life cycle (sk_client_new/free) and the JSON
 *              call (sk_http_json): authentication choice, re-auth on 401
 *   session.c  the secrets page, Basic/Bearer headers, the session token
 *              and its single-flight authentication, auto mode
 *   retry.c    node order and cool-down, failover, retries and backoff
 *   pool.c     libcurl: global init, fork handlers, the share and handle
 *              pool, one exchange (synchronous or through engine.c)
 *
 * Locking: client->lock guards the pool, the session, the nodes and the
 * pid; it is never held across a libcurl call (libcurl's TLS runs in the
 * same OpenSSL library context and may call back into the provider,
 * docs/openssl-dispatch.md §9).
 */
#ifndef SMARTKEY_CLIENT_HTTP_PRIVATE_H
#define SMARTKEY_CLIENT_HTTP_PRIVATE_H

#include <pthread.h>
#include <sys/types.h>
#include <curl/curl.h>
#include "batch.h"
#include "engine.h"
#include "internal.h"

/* Idle connections kept for reuse: at least the number of threads that call
   at once (a TLS server's workers), or each call beyond it pays a new TLS
   handshake. */
#define MAX_IDLE_HANDLES 256

/* The API key and the session token live in one place: pages of their own,
   left out of core dumps (MADV_DONTDUMP, kept across fork), wiped on free.
   Longer keys or tokens are refused. */
#define SECRET_KEY_MAX   8192
#define SECRET_TOKEN_MAX 4096

typedef struct sk_secrets {
    char api_key[SECRET_KEY_MAX + 1];
    char token[SECRET_TOKEN_MAX + 1];
} sk_secrets;

/* One SmartKey cluster node of the endpoint list. */
typedef struct sk_node {
    char *url;         /* "https://host[:port]", no trailing '/' */
    double down_until; /* monotonic seconds; 0: believed reachable */
} sk_node;

struct sk_client {
    sk_node *nodes;
    size_t node_count;
    sk_secrets *secrets;
    size_t secrets_size; /* 0: not mmap'd (OPENSSL_zalloc fallback) */
    const char *api_key; /* secrets->api_key */
    char *ca_file;
    char *ca_path;
    char *proxy;    /* a proxy URL; NULL: none (or proxy_env) */
    int proxy_env;  /* libcurl reads the proxy variables */
    char *no_proxy; /* NULL: none configured */
    long connect_timeout_ms;
    long request_timeout_ms;
    int retries;
    int insecure_skip_verify;
    sk_auth_mode auth;
    unsigned long api_key_requests; /* sent with the API key (auto mode) */
    int api_key_refused; /* auto mode: SmartKey answered 401 to the key */
    void (*log)(void *arg, int level, const char *msg);
    void *log_arg;
    int log_level; /* the highest level logged (0: log is NULL) */

    pthread_mutex_t lock;
    pid_t pid;
    struct sk_handle *idle[MAX_IDLE_HANDLES]; /* pool.c */
    size_t idle_count;
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

    /* the session */
    char *token;                 /* NULL or secrets->token */
    unsigned long generation;    /* bumped by each new token */
    unsigned long auth_attempts; /* finished authentication attempts */
    int auth_running;
    pthread_cond_t auth_done;
    sk_error auth_error; /* result of the last failed attempt */
    double expires_in;
    double last_used;

    /* the authentication in progress is a paused ASYNC job's: its slot
       and the thread it started on */
    sk_async_slot *auth_owner_slot;
    pthread_t auth_owner_thread;
    /* jobs paused until that authentication ends (each holds a ref) */
    struct auth_waiter *auth_waiters;

    sk_client *next;     /* in the fork registry */
    sk_batcher *batcher; /* NULL: batching off (batch.c) */
    int async_off;       /* async = off: jobs are served synchronously */
    sk_engine *engine;   /* NULL until the first request of a job */
};

typedef struct auth_waiter {
    sk_async_slot *slot;
    struct auth_waiter *next;
} auth_waiter;

/* ---- one HTTP exchange ---- */

typedef struct http_answer {
    long status;
    char *body;
    size_t len;
    size_t cap;
    int too_large;
    long retry_after_ms; /* -1: no Retry-After */
    CURLcode transport;  /* CURLE_OK when an HTTP answer arrived */
    long request_bytes;  /* bytes of the request that were sent */
} http_answer;

/* How safe it is to send a request again after a transport failure. */
enum resend {
    RESEND_NEVER = 0,
    RESEND_IF_IDEMPOTENT, /* it may have been processed; its answer was lost */
    RESEND_ALWAYS,        /* it never reached SmartKey */
};

/* ---- http.c ---- */

/* Any byte below '!' or DEL: such a string must not go into a header. */
int sk_has_control_chars(const char *s);
/* Fills err from an HTTP answer that is not a success (kind by status,
   SmartKey's text with the secrets masked). */
void sk_http_status_error(sk_client *c, const http_answer *ans,
                          const char *request, sk_error *err);

/* ---- pool.c ---- */

/* Starts libcurl once per process (and the fork and exit handlers);
 *thread_safe tells whether libcurl has the "threadsafe" feature. */
CURLcode sk_pool_global_init(int *thread_safe);
/* The registry of live clients, for the fork and exit handlers. */
void sk_pool_register(sk_client *c);
void sk_pool_unregister(sk_client *c);
/* Calls fn on every live client, with the registry locked. */
void sk_pool_each_client(void (*fn)(sk_client *c, void *arg), void *arg);
/* Frees the idle handles and the share (not in a forked child: those are
   the parent's connections). */
void sk_pool_release(sk_client *c);
/* Inside an ASYNC job with async = auto: the job's wait slot; else NULL. */
sk_async_slot *sk_pool_async_slot(sk_client *c);
/* The client's engine, started on first use (NULL on no memory). */
sk_engine *sk_pool_engine(sk_client *c);
void sk_http_answer_reset(http_answer *ans);
/* One exchange with the node at `base`: 1 when an HTTP answer arrived
   (any status), 0 on a transport failure (err filled, *resend set). */
int sk_pool_exchange(sk_client *c, const char *base, const char *method,
                     const char *path, const char *request,
                     const char *authorization, const char *body,
                     size_t body_len, unsigned flags, http_answer *ans,
                     enum resend *resend, sk_error *err);

/* ---- retry.c ---- */

/* One request with failover and the retry policy: 1 with an HTTP answer
   (any status but the retried ones), 0 with err filled. */
int sk_exchange_with_retries(sk_client *c, const char *method, const char *path,
                             const char *request, const char *authorization,
                             const char *body, size_t body_len, unsigned flags,
                             http_answer *ans, sk_error *err);

/* ---- session.c ---- */

/* The secrets page (mmap'd, MADV_DONTDUMP; *size 0 for the fallback). */
sk_secrets *sk_secrets_new(size_t *size);
void sk_secrets_free(sk_secrets *secrets, size_t size);
/* Wipes and frees a NUL-terminated secret (a header holding one). */
void sk_free_secret(char *s);
/* "Authorization: Basic <api key>" (NULL on no memory). */
char *sk_session_basic_header(const char *api_key);
/* "Authorization: Bearer <token>", authenticating first when needed;
 *generation identifies the token for sk_session_used/refused. */
char *sk_session_header(sk_client *c, unsigned long *generation, sk_error *err);
void sk_session_used(sk_client *c, unsigned long generation);
void sk_session_refused(sk_client *c, unsigned long generation);
/* Whether this request carries the API key rather than a session
   (session_only: it names a transient key, see below). */
int sk_session_use_api_key(sk_client *c, int session_only);
/* Auto mode: SmartKey refused the API key; sessions from now on. */
void sk_session_key_refused(sk_client *c);
/* Paused jobs waiting for an authentication look again. Called with
   c->lock held, or when nothing else uses c. */
void sk_session_wake_waiters(sk_client *c);

#endif
