/*
 * HTTP layer: a pool of libcurl easy handles shared by every thread, one
 * SmartKey session (Bearer token) per process, retries, and fork handling.
 *
 * Locking: client->lock guards the pool, the session and the pid; it is
 * never held across a libcurl call (libcurl's TLS runs in the same OpenSSL
 * library context and may call back into the provider, docs/openssl-dispatch.md
 * §9).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/async.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include "batch.h"
#include "engine.h"
#include "internal.h"

#ifndef SMARTKEY_VERSION
#define SMARTKEY_VERSION "0.1.0"
#endif

/* Idle connections kept for reuse: at least the number of threads that call
   at once (a TLS server's workers), or each call beyond it pays a new TLS
   handshake. */
#define MAX_IDLE_HANDLES   256
#define RETRY_AFTER_CAP_MS 5000
#define BACKOFF_BASE_MS    100
#define BACKOFF_CAP_MS     2000
/* Re-authenticate when this share of the idle lifetime has passed since
   the token was last used (docs/smartkey-api.md §2.3: the lifetime slides). */
#define REAUTH_FRACTION 0.8
/* A cluster node that could not be reached is left alone this long before
   it is tried again (unless every other node is unreachable too). */
#define NODE_COOLDOWN_S 30.0

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

    pthread_mutex_t lock;
    pid_t pid;
    CURL *idle[MAX_IDLE_HANDLES];
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

/* Jobs paused until an authentication ends look again (their fds become
   readable). Called with c->lock held, or when nothing else uses c. */
static void wake_auth_waiters(sk_client *c)
{
    while (c->auth_waiters != NULL) {
        auth_waiter *w = c->auth_waiters;

        c->auth_waiters = w->next;
        sk_async_signal(w->slot);
        sk_async_slot_unref(w->slot);
        OPENSSL_free(w);
    }
}

/* ---- process-wide state: libcurl initialisation and fork handlers ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_init_result = CURLE_FAILED_INIT;
static int curl_thread_safe;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sk_client *registry;

/*
 * Fork: mutexes must not be copied in a locked state into the child, so
 * every client lock is taken before fork() and released on both sides. The
 * child then drops its inherited connections lazily (see check_fork).
 */
static void fork_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    for (sk_client *c = registry; c != NULL; c = c->next) {
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_lock(&c->share_locks[i]);
        if (c->engine != NULL)
            sk_engine_fork_prepare(c->engine);
    }
}

static void fork_parent(void)
{
    for (sk_client *c = registry; c != NULL; c = c->next) {
        if (c->engine != NULL)
            sk_engine_fork_release(c->engine);
        for (int i = CURL_LOCK_DATA_LAST - 1; i >= 0; i--)
            pthread_mutex_unlock(&c->share_locks[i]);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
    for (sk_client *c = registry; c != NULL; c = c->next) {
        /* The engine's I/O thread does not exist here: the parent's engine
           is abandoned (its connections are the parent's) and the first
           request of a job makes a fresh one (client_engine). */
        if (c->engine != NULL)
            sk_engine_fork_release(c->engine);
        for (int i = CURL_LOCK_DATA_LAST - 1; i >= 0; i--)
            pthread_mutex_unlock(&c->share_locks[i]);
        /* A thread of the parent that was authenticating does not exist
           here: nobody would ever finish its attempt. Waiters do not exist
           either, so the condition variable starts afresh. */
        if (c->auth_running) {
            c->auth_running = 0;
            c->auth_attempts++;
        }
        c->auth_owner_slot = NULL;
        pthread_cond_init(&c->auth_done, NULL);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

/*
 * At exit, before OPENSSL_cleanup stops tracking threads: the engines' I/O
 * threads end here, so OpenSSL's thread-exit handlers still free what
 * libcurl's TLS made in them (per-thread random generators). A provider
 * unloaded by OPENSSL_cleanup afterwards finds no engine to stop.
 */
static void stop_engines_at_exit(void)
{
    pthread_mutex_lock(&registry_lock);
    for (sk_client *c = registry; c != NULL; c = c->next) {
        sk_engine *e;

        pthread_mutex_lock(&c->lock);
        e = c->engine;
        c->engine = NULL;
        pthread_mutex_unlock(&c->lock);
        sk_engine_free(e); /* joins the thread; no client lock held */
    }
    pthread_mutex_unlock(&registry_lock);
}

static void global_init(void)
{
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);

    /* Without the "threadsafe" feature curl_global_init races with other
       users of libcurl in the process; pthread_once only orders our own
       calls. Reported once per client (debug log) below. */
    curl_thread_safe =
        info != NULL && (info->features & CURL_VERSION_THREADSAFE) != 0;
    global_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    /* OpenSSL keeps the module holding the handler loaded until it ran */
    OPENSSL_atexit(stop_engines_at_exit);
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void sk_client_log(sk_client *client, int level, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    if (client == NULL || client->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    client->log(client->log_arg, level, msg);
}

static void free_secret(char *s)
{
    if (s != NULL)
        OPENSSL_clear_free(s, strlen(s));
}

static sk_secrets *secrets_new(size_t *size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t len = sizeof(sk_secrets);
    void *area;

    if (page > 0)
        len = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
    area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                -1, 0);
    if (area == MAP_FAILED) {
        *size = 0;
        return OPENSSL_zalloc(sizeof(sk_secrets));
    }
#ifdef MADV_DONTDUMP
    /* best effort: a kernel without it still runs the provider */
    (void)madvise(area, len, MADV_DONTDUMP);
#endif
    *size = len;
    return area;
}

static void secrets_free(sk_secrets *secrets, size_t size)
{
    if (secrets == NULL)
        return;
    OPENSSL_cleanse(secrets, sizeof(*secrets));
    if (size > 0)
        munmap(secrets, size);
    else
        OPENSSL_free(secrets);
}

/* Called with c->lock held. */
static void token_clear(sk_client *c)
{
    if (c->token != NULL)
        OPENSSL_cleanse(c->token, strlen(c->token));
    c->token = NULL;
}

/* ---- client life cycle ---- */

static void free_nodes(sk_client *c)
{
    if (c->nodes == NULL)
        return;
    for (size_t i = 0; i < c->node_count; i++)
        OPENSSL_free(c->nodes[i].url);
    OPENSSL_free(c->nodes);
    c->nodes = NULL;
    c->node_count = 0;
}

static char *dup_or_null(const char *s, int *ok)
{
    char *copy;

    if (s == NULL || *s == '\0')
        return NULL;
    copy = OPENSSL_strdup(s);
    if (copy == NULL)
        *ok = 0;
    return copy;
}

static int has_control_chars(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f)
            return 1;
    return 0;
}

sk_client *sk_client_new(const sk_client_config *cfg, sk_error *err)
{
    sk_client *c;
    char **urls = NULL;
    size_t url_count = 0;
    int ok = 1;

    sk_error_clear(err);
    pthread_once(&global_once, global_init);
    if (global_init_result != CURLE_OK) {
        sk_error_set(err, SK_ERR_CONFIG, NULL, "libcurl failed to start: %s",
                     curl_easy_strerror(global_init_result));
        return NULL;
    }
    if (cfg == NULL ||
        !sk_endpoints_parse(cfg->endpoint, &urls, &url_count, err))
        return NULL;
    /* The key goes verbatim into a header: a line break would let it
       smuggle other headers (and would never authenticate anyway). */
    if (cfg->api_key == NULL || *cfg->api_key == '\0' ||
        has_control_chars(cfg->api_key) ||
        strlen(cfg->api_key) > SECRET_KEY_MAX) {
        sk_endpoints_free(urls, url_count);
        sk_error_set(err, SK_ERR_CONFIG, NULL,
                     "an API key is required (one line, no spaces, at most "
                     "%d characters)",
                     SECRET_KEY_MAX);
        return NULL;
    }
    if (cfg->proxy != NULL && has_control_chars(cfg->proxy)) {
        sk_endpoints_free(urls, url_count);
        sk_error_set(err, SK_ERR_CONFIG, NULL,
                     "the proxy must be one URL without spaces");
        return NULL;
    }

    c = OPENSSL_zalloc(sizeof(*c));
    if (c == NULL) {
        sk_endpoints_free(urls, url_count);
        goto nomem;
    }
    c->nodes = OPENSSL_zalloc(url_count * sizeof(*c->nodes));
    if (c->nodes != NULL) {
        for (size_t i = 0; i < url_count; i++) {
            c->nodes[i].url = urls[i];
            urls[i] = NULL;
        }
        c->node_count = url_count;
    }
    sk_endpoints_free(urls, url_count);
    c->secrets = secrets_new(&c->secrets_size);
    if (c->secrets != NULL) {
        strcpy(c->secrets->api_key, cfg->api_key);
        c->api_key = c->secrets->api_key;
    }
    c->auth = cfg->auth;
    c->ca_file = dup_or_null(cfg->ca_file, &ok);
    c->ca_path = dup_or_null(cfg->ca_path, &ok);
    if (cfg->proxy != NULL && strcmp(cfg->proxy, "env") == 0) {
        c->proxy_env = 1;
    } else {
        c->proxy = dup_or_null(cfg->proxy, &ok);
    }
    c->no_proxy = dup_or_null(cfg->no_proxy, &ok);
    if (c->nodes == NULL || c->secrets == NULL || !ok) {
        secrets_free(c->secrets, c->secrets_size);
        free_nodes(c);
        OPENSSL_free(c->ca_file);
        OPENSSL_free(c->ca_path);
        OPENSSL_free(c->proxy);
        OPENSSL_free(c->no_proxy);
        OPENSSL_free(c);
        goto nomem;
    }
    c->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    c->request_timeout_ms =
        cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 30000;
    c->retries = cfg->retries >= 0 ? cfg->retries : 2;
    c->insecure_skip_verify = cfg->insecure_skip_verify;
    c->log = cfg->log;
    c->log_arg = cfg->log_arg;
    /* on no memory batching stays off: every call still works alone */
    c->batcher = sk_batcher_new(cfg->batch_max_size, cfg->batch_max_wait_us);
    c->async_off = cfg->async_off;
    c->pid = getpid();
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->auth_done, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);

    pthread_mutex_lock(&registry_lock);
    c->next = registry;
    registry = c;
    pthread_mutex_unlock(&registry_lock);
    /* Users must not run this by accident: a man in the middle then reads
       the API key. Said at level 1 and on stderr, whatever the debug
       setting. */
    if (c->insecure_skip_verify) {
        fprintf(stderr, "smartkey: WARNING: TLS certificate verification of "
                        "SmartKey is OFF (insecure_skip_verify): anyone on "
                        "the network path can read the API key\n");
        sk_client_log(c, 1,
                      "WARNING: TLS certificate verification is OFF "
                      "(insecure_skip_verify)");
    }
    if (!curl_thread_safe)
        sk_client_log(c, 1,
                      "libcurl %s lacks the threadsafe feature: initialise "
                      "it before starting threads",
                      curl_version_info(CURLVERSION_NOW)->version);
    return c;

nomem:
    sk_error_set(err, SK_ERR_NOMEM, NULL, "out of memory");
    return NULL;
}

void sk_client_free(sk_client *client)
{
    if (client == NULL)
        return;
    pthread_mutex_lock(&registry_lock);
    for (sk_client **p = &registry; *p != NULL; p = &(*p)->next) {
        if (*p == client) {
            *p = client->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);

    /* Jobs paused on a request get their fd readable and an error; the
       engine's handles let go of the share before it is cleaned up. */
    sk_engine_free(client->engine);
    /* Handles inherited from a parent process are abandoned: closing them
       would send a TLS close_notify on the parent's connections. */
    if (client->pid == getpid()) {
        for (size_t i = 0; i < client->idle_count; i++)
            curl_easy_cleanup(client->idle[i]);
        if (client->share != NULL)
            curl_share_cleanup(client->share);
    }
    wake_auth_waiters(client);
    sk_batcher_free(client->batcher);
    secrets_free(client->secrets, client->secrets_size);
    free_nodes(client);
    OPENSSL_free(client->ca_file);
    OPENSSL_free(client->ca_path);
    OPENSSL_free(client->proxy);
    OPENSSL_free(client->no_proxy);
    pthread_cond_destroy(&client->auth_done);
    pthread_mutex_destroy(&client->lock);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&client->share_locks[i]);
    OPENSSL_free(client);
}

struct sk_batcher *sk_client_batcher(sk_client *client)
{
    return client->batcher;
}

/* ---- the handle pool ---- */

static void share_lock(CURL *handle, curl_lock_data data,
                       curl_lock_access access, void *arg)
{
    sk_client *c = arg;

    pthread_mutex_lock(&c->share_locks[data % CURL_LOCK_DATA_LAST]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *arg)
{
    sk_client *c = arg;

    pthread_mutex_unlock(&c->share_locks[data % CURL_LOCK_DATA_LAST]);
}

/* Called with c->lock held. */
static void check_fork(sk_client *c)
{
    pid_t pid = getpid();

    if (c->pid == pid)
        return;
    /* Deliberately leaked: the parent still owns these connections. */
    c->idle_count = 0;
    c->share = NULL;
    c->pid = pid;
}

static CURLSH *new_share(sk_client *c)
{
    CURLSH *share = curl_share_init();

    if (share == NULL)
        return NULL;
    /* DNS answers and TLS sessions are shared so that a new connection by
       another thread resumes instead of doing a full handshake. */
    if (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) !=
            CURLSHE_OK ||
        curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) !=
            CURLSHE_OK ||
        curl_share_setopt(share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) !=
            CURLSHE_OK ||
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
            CURLSHE_OK) {
        curl_share_cleanup(share);
        return NULL;
    }
    return share;
}

/* Called without c->lock; *share is the client's (made on first use). */
static void make_share(sk_client *c, CURLSH **share)
{
    CURLSH *fresh;

    if (*share != NULL)
        return;
    fresh = new_share(c);
    pthread_mutex_lock(&c->lock);
    if (c->share == NULL) {
        c->share = fresh;
        fresh = NULL;
    }
    *share = c->share;
    pthread_mutex_unlock(&c->lock);
    if (fresh != NULL)
        curl_share_cleanup(fresh);
}

static CURL *take_handle(sk_client *c, CURLSH **share)
{
    CURL *handle = NULL;

    pthread_mutex_lock(&c->lock);
    check_fork(c);
    if (c->idle_count > 0)
        handle = c->idle[--c->idle_count];
    *share = c->share;
    pthread_mutex_unlock(&c->lock);
    if (handle != NULL)
        return handle;
    make_share(c, share);
    return curl_easy_init();
}

/* ---- the asynchronous transport (engine.c) ---- */

/* Inside an ASYNC job with async = auto: the job's wait slot; else NULL
   (then everything happens on the calling thread, as outside a job). */
static sk_async_slot *async_slot(sk_client *c)
{
    if (c->async_off)
        return NULL;
    return sk_async_slot_current();
}

int sk_http_async_now(sk_client *client)
{
    return !client->async_off && ASYNC_get_current_job() != NULL;
}

/* The client's engine, started on first use; a fresh one in a forked
   child (the parent's is abandoned with its thread). */
static sk_engine *client_engine(sk_client *c)
{
    sk_engine *e;

    pthread_mutex_lock(&c->lock);
    if (c->engine != NULL && !sk_engine_is_ours(c->engine))
        c->engine = NULL;
    if (c->engine == NULL)
        c->engine = sk_engine_new(); /* no network: starts the thread */
    e = c->engine;
    pthread_mutex_unlock(&c->lock);
    return e;
}

/* Waits ms (a retry's backoff): a job pauses, a thread sleeps. */
static void wait_ms(sk_client *c, long ms)
{
    sk_async_slot *slot = async_slot(c);
    sk_engine *e = slot != NULL ? client_engine(c) : NULL;
    sk_engine_req *req = e != NULL ? sk_engine_req_new() : NULL;

    if (req != NULL) {
        req->delay_ms = ms;
        if (sk_engine_run(e, slot, req)) {
            sk_engine_req_release(req);
            return;
        }
    } else if (slot != NULL) {
        sk_async_announce(slot);
    }
    sleep_ms(ms);
}

static void return_handle(sk_client *c, CURL *handle, int reusable)
{
    pthread_mutex_lock(&c->lock);
    if (reusable && c->pid == getpid() && c->idle_count < MAX_IDLE_HANDLES) {
        c->idle[c->idle_count++] = handle;
        handle = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (handle != NULL)
        curl_easy_cleanup(handle);
}

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

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    http_answer *ans = arg;
    size_t bytes = size * n;

    if (bytes > SK_MAX_RESPONSE - ans->len) {
        ans->too_large = 1;
        return 0;
    }
    if (ans->len + bytes + 1 > ans->cap) {
        size_t cap = ans->cap == 0 ? 4096 : ans->cap;
        char *body;

        while (cap < ans->len + bytes + 1)
            cap *= 2;
        body = OPENSSL_clear_realloc(ans->body, ans->cap, cap);
        if (body == NULL)
            return 0;
        ans->body = body;
        ans->cap = cap;
    }
    memcpy(ans->body + ans->len, data, bytes);
    ans->len += bytes;
    ans->body[ans->len] = '\0';
    return bytes;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    http_answer *ans = arg;
    size_t bytes = size * n;
    static const char name[] = "retry-after:";
    char value[16];
    size_t vlen;

    if (bytes > sizeof(name) - 1 &&
        strncasecmp(data, name, sizeof(name) - 1) == 0) {
        vlen = bytes - (sizeof(name) - 1);
        if (vlen >= sizeof(value))
            vlen = sizeof(value) - 1;
        memcpy(value, data + sizeof(name) - 1, vlen);
        value[vlen] = '\0';
        /* Only the delta-seconds form; an HTTP date falls back to the
           backoff schedule. */
        {
            char *end;
            long seconds = strtol(value, &end, 10);

            if (end != value && seconds >= 0)
                ans->retry_after_ms = seconds > RETRY_AFTER_CAP_MS / 1000
                                          ? RETRY_AFTER_CAP_MS
                                          : seconds * 1000;
        }
    }
    return bytes;
}

static void answer_reset(http_answer *ans)
{
    if (ans->body != NULL)
        OPENSSL_clear_free(ans->body, ans->cap);
    memset(ans, 0, sizeof(*ans));
    ans->retry_after_ms = -1;
}

static sk_err_kind curl_kind(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return SK_ERR_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        return SK_ERR_TLS;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return SK_ERR_PROTOCOL;
    case CURLE_OUT_OF_MEMORY:
        return SK_ERR_NOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return SK_ERR_CONFIG;
    default:
        return SK_ERR_NETWORK;
    }
}

/* How safe it is to send a request again after a transport failure. */
enum resend {
    RESEND_NEVER = 0,
    RESEND_IF_IDEMPOTENT, /* it may have been processed; its answer was lost */
    RESEND_ALWAYS,        /* it never reached SmartKey */
};

static enum resend curl_resend(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return RESEND_ALWAYS;
    /* A TLS handshake reset by a node going down. libcurl may already have
       sent the request once on a reused connection that turned out dead,
       then failed to open a new one: whether it got there is unknown. */
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return RESEND_IF_IDEMPOTENT;
    default:
        return RESEND_NEVER;
    }
}

/* Runs after libcurl has set up its SSL_CTX (and its SSLKEYLOGFILE
   callback), before the handshake. */
static CURLcode no_key_log(CURL *handle, void *ssl_ctx, void *arg)
{
    (void)handle;
    (void)arg;
    SSL_CTX_set_keylog_callback((SSL_CTX *)ssl_ctx, NULL);
    return CURLE_OK;
}

static int set_options(sk_client *c, CURL *h, CURLSH *share, const char *method,
                       const char *url, struct curl_slist *headers,
                       const char *body, size_t body_len, unsigned flags,
                       http_answer *ans, char *errbuf)
{
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                          \
    do {                                                                       \
        if (rc == CURLE_OK)                                                    \
            rc = curl_easy_setopt(h, opt, val);                                \
    } while (0)
    /* reset keeps the connection cache, the TLS session cache and the
       share; per-request options never leak into the next request. */
    curl_easy_reset(h);
    SET(CURLOPT_URL, url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    if (share != NULL)
        SET(CURLOPT_SHARE, share);
    SET(CURLOPT_NOSIGNAL, 1L);
    /* HTTPS only: every request carries the API key or a session token
       (endpoints.c refuses other schemes; this is the second lock). */
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* Proxies come from the provider's configuration only: "" turns off
       libcurl's reading of https_proxy, HTTPS_PROXY and ALL_PROXY, and a
       NOPROXY list (even empty) its reading of NO_PROXY. */
    if (!c->proxy_env) {
        SET(CURLOPT_PROXY, c->proxy != NULL ? c->proxy : "");
        SET(CURLOPT_NOPROXY, c->no_proxy != NULL ? c->no_proxy : "");
    } else if (c->no_proxy != NULL) {
        SET(CURLOPT_NOPROXY, c->no_proxy);
    }
    /* libcurl logs TLS secrets to SSLKEYLOGFILE when the application's
       environment has it: not those of SmartKey's connections. */
    SET(CURLOPT_SSL_CTX_FUNCTION, no_key_log);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* libcurl silently sends a request again when a reused connection
       closes without an answer: it cannot tell a stale keep-alive
       connection from a server that ran the request. A request that
       creates an object must never go twice, so it gets a new one. */
    if (!(flags & SK_HTTP_IDEMPOTENT))
        SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, c->request_timeout_ms);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SSL_VERIFYPEER, c->insecure_skip_verify ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, c->insecure_skip_verify ? 0L : 2L);
    if (c->ca_file != NULL)
        SET(CURLOPT_CAINFO, c->ca_file);
    if (c->ca_path != NULL)
        SET(CURLOPT_CAPATH, c->ca_path);
    SET(CURLOPT_USERAGENT, "smartkey/" SMARTKEY_VERSION);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SK_MAX_RESPONSE);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, ans);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, ans);
    if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SET(CURLOPT_POSTFIELDS, body != NULL ? body : "");
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SET
    return rc;
}

/* The Authorization header holds the token or the API key. */
static void cleanse_headers(struct curl_slist *headers)
{
    for (struct curl_slist *h = headers; h != NULL; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(headers);
}

/* "ca_file PATH cannot be read by user NAME (uid N): why" into out, or 0
   when the file can be read. */
static int ca_file_unreadable(const sk_client *c, char *out, size_t len)
{
    struct passwd pw, *found = NULL;
    char names[1024];
    uid_t uid = geteuid();
    int fd, saved;

    if (c->ca_file == NULL)
        return 0;
    fd = open(c->ca_file, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    saved = errno;
    if (getpwuid_r(uid, &pw, names, sizeof(names), &found) != 0)
        found = NULL;
    snprintf(out, len,
             "ca_file %.300s cannot be read by user %.64s (uid %ld), which "
             "runs this process: %s; make it readable by that user",
             c->ca_file, found != NULL ? found->pw_name : "?", (long)uid,
             strerror(saved));
    return 1;
}

/* Failures that may be the configured proxy's (unreachable, or refusing
   the CONNECT tunnel) name it: the generic advice names only api_endpoint
   and the network. */
static const char *proxy_note(const sk_client *c, CURLcode rc)
{
    if (c->proxy == NULL && !c->proxy_env)
        return "";
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
#if LIBCURL_VERSION_NUM >= 0x074e00
    case CURLE_PROXY:
#endif
        return c->proxy_env ? " (through the proxy of the environment: "
                              "proxy = env; check HTTPS_PROXY/ALL_PROXY)"
                            : " (through the configured proxy: check the "
                              "provider's proxy and no_proxy settings)";
    default:
        return "";
    }
}

/* TLS failures whose usual advice ("set ca_file") would be wrong: an
   unreadable ca_file and a certificate for another host name. */
static int tls_problem(sk_client *c, CURLcode rc, const char *errbuf,
                       const char *request, sk_error *err)
{
    char why[480];

    if (curl_kind(rc) != SK_ERR_TLS)
        return 0;
    if (ca_file_unreadable(c, why, sizeof(why))) {
        sk_error_set(err, SK_ERR_CONFIG, request, "%s", why);
        return 1;
    }
    /* libcurl's own host check: "... target host name 'x'" (7.88), "...
       target ipv4 address 'x'" / "ipv6" (8.x) */
    if (rc == CURLE_PEER_FAILED_VERIFICATION &&
        (strstr(errbuf, "target host name") != NULL ||
         strstr(errbuf, "target ipv4 address") != NULL ||
         strstr(errbuf, "target ipv6 address") != NULL)) {
        sk_error_set(err, SK_ERR_TLS_NAME, request, "%s", errbuf);
        return 1;
    }
    return 0;
}

static void answer_free(void *arg)
{
    answer_reset(arg);
    OPENSSL_free(arg);
}

/*
 * The exchange of a job: the request (with copies of everything it points
 * to) goes to the engine's I/O thread, the job pauses until its answer is
 * in. Returns like curl_easy_perform; *headers is taken (set to NULL) once
 * submitted.
 */
static CURLcode exchange_async(sk_client *c, sk_engine *e, sk_async_slot *slot,
                               const char *method, const char *url,
                               struct curl_slist **headers, const char *body,
                               size_t body_len, unsigned flags,
                               http_answer *ans, char *errbuf)
{
    sk_engine_req *req = sk_engine_req_new();
    http_answer *a = OPENSSL_zalloc(sizeof(*a));
    CURLSH *share;
    CURLcode rc;

    if (req == NULL || a == NULL) {
        OPENSSL_free(a);
        sk_engine_req_release(req);
        sk_async_announce(slot);
        return CURLE_OUT_OF_MEMORY;
    }
    answer_reset(a);
    req->answer = a;
    req->answer_free = answer_free;
    if (body != NULL) {
        req->body = OPENSSL_malloc(body_len + 1);
        if (req->body == NULL) {
            sk_engine_req_release(req);
            sk_async_announce(slot);
            return CURLE_OUT_OF_MEMORY;
        }
        memcpy(req->body, body, body_len);
        req->body[body_len] = '\0';
        req->body_len = body_len;
    }
    pthread_mutex_lock(&c->lock);
    check_fork(c);
    share = c->share;
    pthread_mutex_unlock(&c->lock);
    make_share(c, &share);
    req->handle = sk_engine_handle(e);
    rc = req->handle == NULL
             ? CURLE_OUT_OF_MEMORY
             : set_options(c, req->handle, share, method, url, *headers,
                           req->body, body_len, flags, a, req->errbuf);
    if (rc != CURLE_OK) {
        sk_engine_req_release(req);
        sk_async_announce(slot);
        return rc;
    }
    req->headers = *headers;
    *headers = NULL;
    if (!sk_engine_run(e, slot, req)) {
        snprintf(errbuf, CURL_ERROR_SIZE,
                 "the SmartKey provider is being unloaded");
        return CURLE_ABORTED_BY_CALLBACK;
    }
    rc = req->rc;
    *ans = *a; /* the answer moves to the caller */
    memset(a, 0, sizeof(*a));
    ans->status = req->status;
    ans->request_bytes = req->request_bytes;
    ans->transport = rc;
    memcpy(errbuf, req->errbuf, CURL_ERROR_SIZE);
    sk_engine_req_release(req);
    return rc;
}

/*
 * One exchange. Returns 1 when an HTTP answer arrived (any status), 0 on a
 * transport failure (err filled, *resend set). Inside an ASYNC job (async =
 * auto) the job pauses while the engine's I/O thread does the network work.
 */
static int exchange(sk_client *c, const char *base, const char *method,
                    const char *path, const char *request,
                    const char *authorization, const char *body,
                    size_t body_len, unsigned flags, http_answer *ans,
                    enum resend *resend, sk_error *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *h;
    CURLSH *share;
    CURL *handle;
    sk_async_slot *slot;
    sk_engine *engine;
    char *url;
    size_t url_len;
    CURLcode rc;
    double started = now_seconds();
    int reusable = 1;
    /* "Expect:" stops libcurl from waiting for 100-continue on bodies
       over 1 KiB, which costs a round trip. */
    const char *lines[] = {
        authorization,
        "Accept: application/json",
        "Expect:",
        /* no body: "Content-Type:" stops libcurl's form type */
        body != NULL ? "Content-Type: application/json" : "Content-Type:",
    };

    *resend = RESEND_NEVER;
    answer_reset(ans);
    url_len = strlen(base) + strlen(path) + 1;
    url = OPENSSL_malloc(url_len);
    if (url == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    snprintf(url, url_len, "%s%s", base, path);

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (lines[i] == NULL)
            continue;
        h = curl_slist_append(headers, lines[i]);
        if (h == NULL) {
            cleanse_headers(headers);
            OPENSSL_free(url);
            sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
            return 0;
        }
        headers = h;
    }

    slot = async_slot(c);
    engine = slot != NULL ? client_engine(c) : NULL;
    if (slot != NULL && engine == NULL)
        sk_async_announce(slot); /* no engine: synchronous */
    if (engine != NULL) {
        rc = exchange_async(c, engine, slot, method, url, &headers, body,
                            body_len, flags, ans, errbuf);
    } else if ((handle = take_handle(c, &share)) == NULL) {
        rc = CURLE_OUT_OF_MEMORY;
    } else {
        rc = set_options(c, handle, share, method, url, headers, body, body_len,
                         flags, ans, errbuf);
        if (rc == CURLE_OK)
            rc = curl_easy_perform(handle);
        if (rc == CURLE_OK)
            curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &ans->status);
        else if (curl_easy_getinfo(handle, CURLINFO_REQUEST_SIZE,
                                   &ans->request_bytes) != CURLE_OK)
            ans->request_bytes = 1; /* unknown: assume it was sent */
        ans->transport = rc;
        /* The header list goes away below: the handle must not keep a
           pointer to it while it sits in the pool. */
        if (curl_easy_setopt(handle, CURLOPT_HTTPHEADER, NULL) != CURLE_OK)
            reusable = 0;
        curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, NULL);
        return_handle(c, handle, reusable);
    }
    cleanse_headers(headers);
    OPENSSL_free(url);

    if (rc != CURLE_OK) {
        if (ans->too_large)
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "response larger than %d bytes", SK_MAX_RESPONSE);
        else if (rc == CURLE_FILESIZE_EXCEEDED)
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "response larger than %d bytes", SK_MAX_RESPONSE);
        else if (!tls_problem(c, rc, errbuf, request, err))
            sk_error_set(err, curl_kind(rc), request, "%s%s",
                         errbuf[0] ? errbuf : curl_easy_strerror(rc),
                         proxy_note(c, rc));
        *resend = ans->too_large ? RESEND_NEVER : curl_resend(rc);
        sk_client_log(c, 1, "%s: %s", request, err->message);
        return 0;
    }
    sk_client_log(c, 2, "%s: %ld (%ld us)", request, ans->status,
                  (long)((now_seconds() - started) * 1e6));
    return 1;
}

static int is_permission_message(const char *text)
{
    /* 403 answers that are about the key or the policy, not the session
       (docs/smartkey-api.md §2.4, §5.2): those must not trigger a
       re-authentication. */
    return text != NULL && (strstr(text, "not allowed") != NULL ||
                            strstr(text, "requires approval") != NULL ||
                            strstr(text, "ermission") != NULL);
}

static void status_error(sk_client *c, const http_answer *ans,
                         const char *request, sk_error *err)
{
    sk_err_kind kind;
    long s = ans->status;

    if (s == 401)
        kind = SK_ERR_AUTH;
    else if (s == 403)
        kind =
            ans->body != NULL && strstr(ans->body, "requires approval") != NULL
                ? SK_ERR_APPROVAL
                : SK_ERR_FORBIDDEN;
    else if (s == 404)
        kind = SK_ERR_NOT_FOUND;
    else if (s == 429)
        kind = SK_ERR_THROTTLED;
    else if (s >= 500)
        kind = SK_ERR_SERVER;
    else if (s >= 400)
        kind = SK_ERR_BAD_REQUEST;
    else
        kind = SK_ERR_PROTOCOL;
    sk_error_set(err, kind, request, "%s", "");
    err->http_status = s;
    if (ans->body != NULL && ans->len > 0) {
        const char *secrets[2];

        /* the token cannot change while the lock is held; no network */
        pthread_mutex_lock(&c->lock);
        secrets[0] = c->api_key;
        secrets[1] = c->token;
        sk_error_set_server_text(err, ans->body, ans->len, secrets,
                                 c->token != NULL ? 2 : 1);
        pthread_mutex_unlock(&c->lock);
    } else
        snprintf(err->message, sizeof(err->message), "HTTP status %ld", s);
}

static long backoff_ms(int attempt, const http_answer *ans)
{
    long ms = BACKOFF_BASE_MS << (attempt < 5 ? attempt : 5);

    if (ans->retry_after_ms >= 0)
        return ans->retry_after_ms;
    return ms > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : ms;
}

/*
 * The node could not be reached at all, so the request never got there:
 * sending it to another node is safe whatever it does.
 */
static int node_unreachable(const http_answer *ans)
{
    switch (ans->transport) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return 1;
    /* A node that dies while we connect: the kernel may still complete
       the TCP handshake, then the TLS handshake is reset. Nothing was
       sent, so this is as good as a refused connection. */
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return ans->request_bytes == 0;
    default:
        return 0;
    }
}

/* Gateway answers of a load balancer or a node going down: the node
   itself is unhealthy, another one may answer. */
static int node_unhealthy_status(long status)
{
    return status == 502 || status == 503 || status == 504;
}

/*
 * The nodes to try, in order: those not cooling down first (list order:
 * the first node is preferred again once its cool-down ends), then the
 * cooling ones, so a request is never refused without trying. Returns the
 * count written to order.
 */
static size_t node_order(sk_client *c, size_t *order)
{
    double now = now_seconds();
    size_t n = 0;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->node_count; i++)
        if (c->nodes[i].down_until <= now)
            order[n++] = i;
    for (size_t i = 0; i < c->node_count; i++)
        if (c->nodes[i].down_until > now)
            order[n++] = i;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static void node_down(sk_client *c, size_t i, const char *request,
                      const char *why)
{
    pthread_mutex_lock(&c->lock);
    c->nodes[i].down_until = now_seconds() + NODE_COOLDOWN_S;
    pthread_mutex_unlock(&c->lock);
    if (c->node_count > 1)
        sk_client_log(c, 1,
                      "%s: node %s unreachable (%s); skipping it for %.0f s",
                      request, c->nodes[i].url, why, NODE_COOLDOWN_S);
}

static void node_up(sk_client *c, size_t i)
{
    pthread_mutex_lock(&c->lock);
    c->nodes[i].down_until = 0;
    pthread_mutex_unlock(&c->lock);
}

/*
 * One attempt: the request goes to the first reachable node. A node that
 * refuses the connection (or times out before anything was sent) is
 * skipped and the next one tried at once; a 502/503/504 as well when the
 * request may be repeated. Returns like exchange(); the answer or error is
 * the last node's.
 */
static int exchange_any_node(sk_client *c, const char *method, const char *path,
                             const char *request, const char *authorization,
                             const char *body, size_t body_len, unsigned flags,
                             http_answer *ans, enum resend *resend,
                             sk_error *err)
{
    size_t order[16], count;
    int idempotent = (flags & SK_HTTP_IDEMPOTENT) != 0;

    *resend = RESEND_NEVER;
    /* sk_endpoints_parse allows at most 16 nodes */
    count = node_order(c, order);
    for (size_t k = 0; k < count; k++) {
        size_t i = order[k];
        int more = k + 1 < count;

        if (!exchange(c, c->nodes[i].url, method, path, request, authorization,
                      body, body_len, flags, ans, resend, err)) {
            if (node_unreachable(ans)) {
                /* never sent: safe to send anywhere, and to retry later */
                *resend = RESEND_ALWAYS;
            } else if (!(idempotent && *resend == RESEND_IF_IDEMPOTENT)) {
                return 0;
            }
            /* the node failed before answering; a request that may be
               repeated goes on to the next node at once */
            node_down(c, i, request, err->message);
            if (!more)
                return 0;
            continue;
        }
        if (node_unhealthy_status(ans->status)) {
            node_down(c, i, request, "HTTP status");
            if (more && idempotent)
                continue;
            return 1;
        }
        node_up(c, i);
        return 1;
    }
    return 0; /* not reached: there is always a node */
}

/*
 * Sends one request with the retry policy: transport failures, 429 and 5xx
 * are retried with backoff up to c->retries times (only refused
 * connections when the call is not idempotent). Returns 1 with an HTTP
 * answer in ans (any status except the retried ones), 0 with err filled.
 */
static int exchange_with_retries(sk_client *c, const char *method,
                                 const char *path, const char *request,
                                 const char *authorization, const char *body,
                                 size_t body_len, unsigned flags,
                                 http_answer *ans, sk_error *err)
{
    int idempotent = (flags & SK_HTTP_IDEMPOTENT) != 0;

    for (int attempt = 0;; attempt++) {
        enum resend resend;
        int last = attempt >= c->retries;

        if (exchange_any_node(c, method, path, request, authorization, body,
                              body_len, flags, ans, &resend, err)) {
            /* A 429 or 5xx answer may come from a node that ran the
               request (a proxy's timeout, a throttle after the work):
               key generation and imports are never sent twice. */
            if (last || !idempotent ||
                !(ans->status == 429 || ans->status >= 500))
                return 1;
            sk_client_log(c, 1, "%s: %ld, retrying", request, ans->status);
        } else if (last || resend == RESEND_NEVER ||
                   (resend == RESEND_IF_IDEMPOTENT && !idempotent)) {
            return 0;
        }
        wait_ms(c, backoff_ms(attempt, ans));
    }
}

/* ---- the session ---- */

static char *basic_header(const char *api_key)
{
    size_t len = strlen(api_key) + sizeof("Authorization: Basic ");
    char *header = OPENSSL_malloc(len);

    /* The API key is sent verbatim (docs/smartkey-api.md §2.1). */
    if (header != NULL)
        snprintf(header, len, "Authorization: Basic %s", api_key);
    return header;
}

static int authenticate(sk_client *c, char **token, double *expires_in,
                        sk_error *err)
{
    static const char request[] = "POST /sys/v1/session/auth";
    http_answer ans = {0};
    json_t *json = NULL, *value;
    const char *access_token, *token_type = NULL;
    unsigned lifetime = 0;
    char *authorization = basic_header(c->api_key);
    int ok = 0;

    if (authorization == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    /* Retrying is harmless: an unused extra session just expires. */
    ok = exchange_with_retries(c, "POST", "/sys/v1/session/auth", request,
                               authorization, NULL, 0, SK_HTTP_IDEMPOTENT, &ans,
                               err);
    free_secret(authorization);
    if (!ok)
        goto end;
    ok = 0;
    if (ans.status != 200) {
        status_error(c, &ans, request, err);
        if (ans.status == 401 || ans.status == 403)
            err->kind = SK_ERR_AUTH;
        goto end;
    }
    json = json_loadb(ans.body != NULL ? ans.body : "", ans.len,
                      JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(json)) {
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "the answer is not a JSON object");
        goto end;
    }
    if (sk_json_string(json, "token_type", &token_type, request, err) < 0 ||
        !sk_json_need_string(json, "access_token", &access_token, request,
                             err) ||
        sk_json_uint(json, "expires_in", &lifetime, request, err) < 0)
        goto end;
    if (token_type != NULL && strcmp(token_type, "Bearer") != 0) {
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "unsupported token type \"%.32s\"", token_type);
        goto end;
    }
    if (*access_token == '\0' || has_control_chars(access_token) ||
        strlen(access_token) > SECRET_TOKEN_MAX) {
        sk_error_set(err, SK_ERR_PROTOCOL, request, "invalid access token");
        goto end;
    }
    *token = OPENSSL_strdup(access_token);
    if (*token == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        goto end;
    }
    /* No lifetime: assume the documented default for apps (10 min). */
    *expires_in = lifetime > 0 ? lifetime : 600;
    ok = 1;
end:
    if (json != NULL) {
        value = json_object_get(json, "access_token");
        if (json_is_string(value))
            OPENSSL_cleanse((char *)json_string_value(value),
                            json_string_length(value));
        json_decref(json);
    }
    answer_reset(&ans);
    return ok;
}

static char *bearer_header(const char *token)
{
    size_t len = strlen(token) + sizeof("Authorization: Bearer ");
    char *header = OPENSSL_malloc(len);

    if (header != NULL)
        snprintf(header, len, "Authorization: Bearer %s", token);
    return header;
}

/* Called with c->lock held. */
static int token_usable(const sk_client *c)
{
    return c->token != NULL &&
           now_seconds() - c->last_used < REAUTH_FRACTION * c->expires_in;
}

/* Called with c->lock held: the authentication ended (or its job was
   abandoned): threads and paused jobs waiting for it look again. */
static void auth_ended(sk_client *c)
{
    c->auth_running = 0;
    c->auth_owner_slot = NULL;
    pthread_cond_broadcast(&c->auth_done);
    wake_auth_waiters(c);
}

/* Called with c->lock held: the job of slot waits for the authentication
   in progress. 0 on no memory. */
static int auth_wait_async(sk_client *c, sk_async_slot *slot)
{
    auth_waiter *w = OPENSSL_malloc(sizeof(*w));

    if (w == NULL)
        return 0;
    sk_async_slot_ref(slot);
    w->slot = slot;
    w->next = c->auth_waiters;
    c->auth_waiters = w;
    return 1;
}

/* engine.c: the wait context of a job that was authenticating for
   everyone was freed; the job will never finish that authentication. */
void sk_client_slot_gone(sk_async_slot *slot)
{
    pthread_mutex_lock(&registry_lock);
    for (sk_client *c = registry; c != NULL; c = c->next) {
        pthread_mutex_lock(&c->lock);
        if (c->auth_running && c->auth_owner_slot == slot) {
            sk_client_log(c, 2,
                          "an abandoned job was authenticating: the "
                          "next request authenticates again");
            auth_ended(c);
        }
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

/*
 * Returns an "Authorization: Bearer" header for the current session,
 * authenticating first when there is none (or it is about to expire).
 * Only one caller authenticates; the others wait for its result: threads
 * on a condition variable, ASYNC jobs paused on their wait fd (never
 * blocking the thread that must resume the authenticating job). The one
 * exception: a thread outside a job while a job it would have to resume
 * itself is authenticating authenticates too.
 */
static char *session_header(sk_client *c, unsigned long *generation,
                            sk_error *err)
{
    char *header = NULL, *token = NULL;
    double expires_in = 0;
    sk_error auth_err;
    /* made only when the job pauses (see sk_async_announce) */
    sk_async_slot *slot = NULL;
    int in_job = sk_http_async_now(c), ok, parallel = 0;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        unsigned long attempt;

        if (token_usable(c)) {
            header = bearer_header(c->token);
            *generation = c->generation;
            pthread_mutex_unlock(&c->lock);
            if (header == NULL)
                sk_error_set(err, SK_ERR_NOMEM, NULL, "out of memory");
            return header;
        }
        if (!c->auth_running)
            break;
        attempt = c->auth_attempts;
        if (in_job && slot == NULL)
            slot = async_slot(c);
        if (slot != NULL && auth_wait_async(c, slot)) {
            pthread_mutex_unlock(&c->lock);
            sk_async_pause(slot);
            sk_async_drain(slot);
            pthread_mutex_lock(&c->lock);
        } else if (c->auth_owner_slot != NULL &&
                   pthread_equal(c->auth_owner_thread, pthread_self())) {
            parallel = 1;
            break;
        } else {
            while (c->auth_running && c->auth_attempts == attempt)
                pthread_cond_wait(&c->auth_done, &c->lock);
        }
        if (c->auth_attempts != attempt && c->token == NULL) {
            *err = c->auth_error;
            pthread_mutex_unlock(&c->lock);
            return NULL;
        }
    }
    /* the job's requests pause on this slot (exchange) */
    if (in_job && slot == NULL)
        slot = async_slot(c);
    if (!parallel) {
        c->auth_running = 1;
        c->auth_owner_slot = slot;
        c->auth_owner_thread = pthread_self();
        if (slot != NULL)
            sk_async_slot_set_auth_owner(slot, 1);
    }
    pthread_mutex_unlock(&c->lock);

    sk_error_clear(&auth_err);
    ok = authenticate(c, &token, &expires_in, &auth_err);

    pthread_mutex_lock(&c->lock);
    if (slot != NULL)
        sk_async_slot_set_auth_owner(slot, 0);
    token_clear(c);
    if (ok) {
        strcpy(c->secrets->token, token);
        c->token = c->secrets->token;
        free_secret(token);
        token = NULL;
        c->generation++;
        c->expires_in = expires_in;
        c->last_used = now_seconds();
        header = bearer_header(c->token);
        *generation = c->generation;
        if (header == NULL)
            sk_error_set(err, SK_ERR_NOMEM, NULL, "out of memory");
    } else {
        c->auth_error = auth_err;
        *err = auth_err;
    }
    if (!parallel) {
        c->auth_attempts++;
        auth_ended(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (ok)
        sk_client_log(c, 2, "new SmartKey session (idle lifetime %.0f s)",
                      expires_in);
    return header;
}

/* SmartKey's idle timer restarts with every authenticated call. */
static void session_used(sk_client *c, unsigned long generation)
{
    pthread_mutex_lock(&c->lock);
    if (c->generation == generation)
        c->last_used = now_seconds();
    pthread_mutex_unlock(&c->lock);
}

/* Drops the token that was refused, unless another thread already
   replaced it (then the next call simply uses the new one). */
static void session_refused(sk_client *c, unsigned long generation)
{
    pthread_mutex_lock(&c->lock);
    if (c->generation == generation && c->token != NULL)
        token_clear(c);
    pthread_mutex_unlock(&c->lock);
}

/* ---- the generic JSON call ---- */

/*
 * A transient key exists only inside the session that created it: creating
 * one ("transient": true) and every call naming one (a key descriptor with
 * "transient_key") must carry that session's Bearer token even in api-key
 * mode, or SmartKey would not find the handle.
 */
static int needs_session(json_t *body)
{
    const char *field;
    json_t *value;

    if (!json_is_object(body))
        return 0;
    if (json_is_true(json_object_get(body, "transient")))
        return 1;
    json_object_foreach(body, field, value)
    {
        if (json_is_object(value) &&
            json_object_get(value, "transient_key") != NULL)
            return 1;
    }
    return 0;
}

/* Whether this request carries the API key itself rather than a session. */
static int use_api_key(sk_client *c, json_t *body)
{
    int yes;

    if (c->auth == SK_AUTH_SESSION || needs_session(body))
        return 0;
    if (c->auth == SK_AUTH_API_KEY)
        return 1;
    pthread_mutex_lock(&c->lock);
    yes = !c->api_key_refused && c->token == NULL &&
          c->api_key_requests < SK_AUTH_AUTO_BASIC_REQUESTS;
    if (yes)
        c->api_key_requests++;
    pthread_mutex_unlock(&c->lock);
    return yes;
}

/* Auto mode: SmartKey refused the API key on a call (an account that wants
   sessions); from now on every request uses a session. */
static void api_key_refused(sk_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->api_key_refused = 1;
    pthread_mutex_unlock(&c->lock);
}

int sk_http_json(sk_client *client, const char *method, const char *path,
                 const char *request, json_t *body, unsigned flags,
                 json_t **response, sk_error *err)
{
    http_answer ans = {0};
    char *body_text = NULL, *authorization = NULL;
    size_t body_len = 0;
    unsigned long generation = 0;
    json_error_t json_err;
    int ok = 0;

    sk_error_clear(err);
    *response = NULL;
    if (body != NULL) {
        body_text = json_dumps(body, JSON_COMPACT);
        if (body_text == NULL) {
            sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
            return 0;
        }
        body_len = strlen(body_text);
    }

    for (int reauth = 0;; reauth++) {
        if (use_api_key(client, body)) {
            authorization = basic_header(client->api_key);
            if (authorization == NULL) {
                sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
                goto end;
            }
            ok = exchange_with_retries(client, method, path, request,
                                       authorization, body_text, body_len,
                                       flags, &ans, err);
            free_secret(authorization);
            authorization = NULL;
            if (!ok)
                goto end;
            ok = 0;
            /* api-key mode has no session to fall back on: a 401 is final
               (status_error); auto mode tries once more with a session. */
            if (ans.status == 401 && client->auth == SK_AUTH_AUTO &&
                reauth == 0) {
                api_key_refused(client);
                sk_client_log(client, 2,
                              "%s: 401 to the API key, using a session",
                              request);
                continue;
            }
            break;
        }
        authorization = session_header(client, &generation, err);
        if (authorization == NULL)
            goto end;
        ok = exchange_with_retries(client, method, path, request, authorization,
                                   body_text, body_len, flags, &ans, err);
        free_secret(authorization);
        authorization = NULL;
        if (!ok)
            goto end;
        ok = 0;
        if (ans.status == 401 ||
            (ans.status == 403 && !is_permission_message(ans.body))) {
            session_refused(client, generation);
            if (reauth == 0) {
                sk_client_log(client, 2, "%s: %ld, re-authenticating", request,
                              ans.status);
                continue;
            }
        } else {
            session_used(client, generation);
        }
        break;
    }

    if (ans.status < 200 || ans.status > 299) {
        status_error(client, &ans, request, err);
        goto end;
    }
    if (ans.len > 0) {
        *response =
            json_loadb(ans.body, ans.len, JSON_REJECT_DUPLICATES, &json_err);
        if (*response == NULL) {
            /* json_err.text may quote the body: only its position. */
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "invalid JSON in the response (at byte %d)",
                         json_err.position);
            err->http_status = ans.status;
            goto end;
        }
    }
    ok = 1;
end:
    if (body_text != NULL) {
        /* Request bodies may carry plaintext (decrypt answers, wrap
           material); both are wiped rather than left on the heap. */
        OPENSSL_cleanse(body_text, body_len);
        free(body_text);
    }
    answer_reset(&ans);
    if (ok)
        sk_error_clear(err);
    return ok;
}

/*
 * A secret of this configuration that never leaves the process: HMAC-SHA256
 * keyed with the API key over a label. Used where OpenSSL keys a
 * derivation with the private key the provider does not have (implicit
 * rejection). The API key itself stays here.
 */
int sk_client_derive_secret(sk_client *client, const char *label,
                            unsigned char out[32])
{
    static const char purpose[] = "smartkey derived secret v1:";
    unsigned char *data;
    size_t purpose_len = sizeof(purpose) - 1, label_len = strlen(label);
    unsigned int out_len = 0;
    int ok;

    if (client == NULL || client->api_key == NULL)
        return 0;
    data = OPENSSL_malloc(purpose_len + label_len);
    if (data == NULL)
        return 0;
    memcpy(data, purpose, purpose_len);
    memcpy(data + purpose_len, label, label_len);
    ok = HMAC(EVP_sha256(), client->api_key, (int)strlen(client->api_key), data,
              purpose_len + label_len, out, &out_len) != NULL &&
         out_len == 32;
    OPENSSL_free(data);
    return ok;
}
