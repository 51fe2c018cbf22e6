/*
 * libcurl for the HTTP layer: the process-wide initialisation with the
 * fork and exit handlers, the registry of clients, the share (DNS, TLS
 * sessions) and the pool of easy handles, the options and callbacks of a
 * request, and one exchange, on the calling thread or (inside an ASYNC
 * job) through the engine's I/O thread. Transport failures are classified
 * here (kind, whether a resend is safe) with the TLS and proxy advice.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <openssl/async.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include "http_private.h"

#ifndef SMARTKEY_VERSION
#define SMARTKEY_VERSION "0.1.0"
#endif

#define RETRY_AFTER_CAP_MS 5000

/* ---- process-wide state: libcurl initialisation and fork handlers ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_init_result = CURLE_FAILED_INIT;
static int curl_thread_safe;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sk_client *registry;
/* This process's id, kept by global_init and the fork handler: the pool
   compares it on every request, and getpid() is a system call. Written
   under pthread_once and in a forked child (one thread), read under a
   client lock. */
static pid_t current_pid;

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
        sk_batcher_at_fork(c->batcher, SK_FORK_PREPARE);
    }
}

static void fork_parent(void)
{
    for (sk_client *c = registry; c != NULL; c = c->next) {
        sk_batcher_at_fork(c->batcher, SK_FORK_PARENT);
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
    current_pid = getpid();
    for (sk_client *c = registry; c != NULL; c = c->next) {
        sk_batcher_at_fork(c->batcher, SK_FORK_CHILD);
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
    current_pid = getpid();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    /* OpenSSL keeps the module holding the handler loaded until it ran */
    OPENSSL_atexit(stop_engines_at_exit);
}

CURLcode sk_pool_global_init(int *thread_safe)
{
    pthread_once(&global_once, global_init);
    *thread_safe = curl_thread_safe;
    return global_init_result;
}

void sk_pool_register(sk_client *c)
{
    pthread_mutex_lock(&registry_lock);
    c->next = registry;
    registry = c;
    pthread_mutex_unlock(&registry_lock);
}

void sk_pool_unregister(sk_client *c)
{
    pthread_mutex_lock(&registry_lock);
    for (sk_client **p = &registry; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

void sk_pool_each_client(void (*fn)(sk_client *c, void *arg), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (sk_client *c = registry; c != NULL; c = c->next)
        fn(c, arg);
    pthread_mutex_unlock(&registry_lock);
}

double sk_now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    pid_t pid = current_pid;

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

/*
 * A pooled easy handle and what stays set on it between requests: every
 * option that is the same for all of a client's requests is set once,
 * when the handle is made (set_constant); a request sets only what is its
 * own (set_request: the URL, the answer, the body and, when they change,
 * the method and FRESH_CONNECT). Its header list is three nodes of its
 * own, set as CURLOPT_HTTPHEADER once and rewritten in place for each
 * request (libcurl reads the list during curl_easy_perform only).
 */
typedef struct sk_handle {
    CURL *curl;
    CURLSH *share; /* the share set on it (NULL: none) */
    /* Authorization, Content-Type, Expect: (the data of the first is the
       request's authorization, set for the request only) */
    struct curl_slist lines[3];
    struct curl_slist *head; /* the list set as CURLOPT_HTTPHEADER */
    int method;              /* set by the last request: METHOD_* */
    int fresh;               /* CURLOPT_FRESH_CONNECT is on */
    char errbuf[CURL_ERROR_SIZE];
} sk_handle;

enum { METHOD_NONE = 0, METHOD_GET, METHOD_POST, METHOD_CUSTOM };

static void handle_free(sk_handle *h)
{
    if (h == NULL)
        return;
    if (h->curl != NULL)
        curl_easy_cleanup(h->curl);
    OPENSSL_free(h);
}

static CURLcode set_constant(sk_client *c, CURL *h, CURLSH *share,
                             char *errbuf);

/* A handle of the pool, or a new one with the client's constant options
   (NULL with *rc set when it cannot be made). */
static sk_handle *take_handle(sk_client *c, CURLcode *rc)
{
    sk_handle *handle = NULL;
    CURLSH *share;

    pthread_mutex_lock(&c->lock);
    check_fork(c);
    if (c->idle_count > 0)
        handle = c->idle[--c->idle_count];
    share = c->share;
    pthread_mutex_unlock(&c->lock);
    if (handle != NULL)
        return handle;
    make_share(c, &share);
    *rc = CURLE_OUT_OF_MEMORY;
    handle = OPENSSL_zalloc(sizeof(*handle));
    if (handle == NULL || (handle->curl = curl_easy_init()) == NULL) {
        handle_free(handle);
        return NULL;
    }
    handle->share = share;
    handle->lines[0].next = &handle->lines[1];
    handle->lines[2].data = (char *)"Expect:";
    *rc = set_constant(c, handle->curl, share, handle->errbuf);
    if (*rc != CURLE_OK) {
        handle_free(handle);
        return NULL;
    }
    return handle;
}

/* ---- the asynchronous transport (engine.c) ---- */

/* Inside an ASYNC job with async = auto: the job's wait slot; else NULL
   (then everything happens on the calling thread, as outside a job). */
sk_async_slot *sk_pool_async_slot(sk_client *c)
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
sk_engine *sk_pool_engine(sk_client *c)
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

static void return_handle(sk_client *c, sk_handle *handle, int reusable)
{
    pthread_mutex_lock(&c->lock);
    if (reusable && c->pid == current_pid && c->idle_count < MAX_IDLE_HANDLES) {
        c->idle[c->idle_count++] = handle;
        handle = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    handle_free(handle);
}

/* Handles inherited from a parent process are abandoned: closing them
   would send a TLS close_notify on the parent's connections. */
void sk_pool_release(sk_client *c)
{
    if (c->pid != getpid())
        return;
    for (size_t i = 0; i < c->idle_count; i++)
        handle_free(c->idle[i]);
    if (c->share != NULL)
        curl_share_cleanup(c->share);
}

/* ---- one HTTP exchange ---- */

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

void sk_http_answer_reset(http_answer *ans)
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

/* Each SET is skipped once one failed; rc holds the first failure. */
#define SET(opt, val)                                                          \
    do {                                                                       \
        if (rc == CURLE_OK)                                                    \
            rc = curl_easy_setopt(h, opt, val);                                \
    } while (0)

/* Whether libcurl has a built-in CA bundle (a file) of its own. */
static int builtin_ca_file(CURL *h)
{
#if LIBCURL_VERSION_NUM >= 0x075400 /* CURLINFO_CAINFO: 7.84.0 */
    char *file = NULL;

    return curl_easy_getinfo(h, CURLINFO_CAINFO, &file) == CURLE_OK &&
           file != NULL;
#else
    (void)h;
    return 0;
#endif
}

/* The options every request of the client has: the share, HTTPS only,
   the proxy, timeouts, TLS verification, the user agent and the answer's
   callbacks. Set once on a pooled handle; errbuf lives as long as h. */
static CURLcode set_constant(sk_client *c, CURL *h, CURLSH *share, char *errbuf)
{
    CURLcode rc = CURLE_OK;

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
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, c->request_timeout_ms);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SSL_VERIFYPEER, c->insecure_skip_verify ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, c->insecure_skip_verify ? 0L : 2L);
    if (c->ca_file != NULL)
        SET(CURLOPT_CAINFO, c->ca_file);
    /* Without ca_path, no directory either when there is a CA file
       (ca_file, or libcurl's built-in bundle: its built-in directory,
       e.g. Debian's /etc/ssl/certs, holds the same certificates): libcurl
       then keeps the CA store it loaded in the multi handle
       (CURLOPT_CA_CACHE_TIMEOUT) instead of parsing the CA file again for
       every new connection (X509_STORE_load_file_ex: 16 % of the CPU
       samples of 300 jobs on a cold engine). */
    if (c->ca_path != NULL)
        SET(CURLOPT_CAPATH, c->ca_path);
    else if (c->ca_file != NULL || builtin_ca_file(h))
        SET(CURLOPT_CAPATH, NULL);
    SET(CURLOPT_USERAGENT, "smartkey/" SMARTKEY_VERSION);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SK_MAX_RESPONSE);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    return rc;
}

static int method_of(const char *method)
{
    if (strcmp(method, "GET") == 0)
        return METHOD_GET;
    return strcmp(method, "POST") == 0 ? METHOD_POST : METHOD_CUSTOM;
}

/* What is a request's own: the URL, the answer, the method and the body,
   FRESH_CONNECT. *was_method and *was_fresh say what h has (METHOD_NONE:
   a handle just reset or made) and are updated. */
static CURLcode set_request(CURL *h, const char *method, const char *url,
                            const char *body, size_t body_len, unsigned flags,
                            http_answer *ans, int *was_method, int *was_fresh)
{
    CURLcode rc = CURLE_OK;
    int kind = method_of(method);
    /* libcurl silently sends a request again when a reused connection
       closes without an answer: it cannot tell a stale keep-alive
       connection from a server that ran the request. A request that
       creates an object must never go twice, so it gets a new one. */
    int fresh = !(flags & SK_HTTP_IDEMPOTENT);

    SET(CURLOPT_URL, url);
    SET(CURLOPT_WRITEDATA, ans);
    SET(CURLOPT_HEADERDATA, ans);
    if (fresh != *was_fresh)
        SET(CURLOPT_FRESH_CONNECT, (long)fresh);
    if (*was_method == METHOD_CUSTOM && kind != METHOD_CUSTOM)
        SET(CURLOPT_CUSTOMREQUEST, NULL);
    if (kind == METHOD_GET) {
        if (*was_method != METHOD_GET)
            SET(CURLOPT_HTTPGET, 1L);
    } else {
        if (*was_method != METHOD_POST && *was_method != METHOD_CUSTOM)
            SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SET(CURLOPT_POSTFIELDS, body != NULL ? body : "");
        if (kind == METHOD_CUSTOM)
            SET(CURLOPT_CUSTOMREQUEST, method);
    }
    /* on a failure the handle's state is unknown: it is not reused */
    *was_method = rc == CURLE_OK ? kind : METHOD_NONE;
    *was_fresh = fresh;
    return rc;
}

/* The engine's handles (engine.c) start from scratch for every request:
   reset keeps the connection cache, the TLS session cache and the share;
   per-request options never leak into the next request. */
static int set_options(sk_client *c, CURL *h, CURLSH *share, const char *method,
                       const char *url, struct curl_slist *headers,
                       const char *body, size_t body_len, unsigned flags,
                       http_answer *ans, char *errbuf)
{
    CURLcode rc;
    int was_method = METHOD_NONE, was_fresh = 0;

    curl_easy_reset(h);
    rc = set_constant(c, h, share, errbuf);
    SET(CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = set_request(h, method, url, body, body_len, flags, ans,
                         &was_method, &was_fresh);
    return rc;
}
#undef SET

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

/* libcurl says "Couldn't connect to server" when it could not even make a
   socket: a process out of file descriptors (a busy event-loop server at
   its RLIMIT_NOFILE) is told so. */
static const char *fd_note(CURLcode rc)
{
    int probe;

    if (rc != CURLE_COULDNT_CONNECT)
        return "";
    probe = eventfd(0, EFD_CLOEXEC);
    if (probe >= 0) {
        close(probe);
        return "";
    }
    return errno == EMFILE || errno == ENFILE
               ? " (no file descriptor left for a connection: raise the "
                 "process's open files limit, ulimit -n / RLIMIT_NOFILE)"
               : "";
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
    sk_http_answer_reset(arg);
    OPENSSL_free(arg);
}

/* A request for the engine with its own answer and a copy of the body
   (NULL on no memory). */
static sk_engine_req *engine_request(const char *body, size_t body_len)
{
    sk_engine_req *req = sk_engine_req_new();
    http_answer *a = OPENSSL_zalloc(sizeof(*a));

    if (req == NULL || a == NULL) {
        OPENSSL_free(a);
        sk_engine_req_release(req);
        return NULL;
    }
    sk_http_answer_reset(a);
    req->answer = a;
    req->answer_free = answer_free;
    if (body != NULL) {
        req->body = OPENSSL_malloc(body_len + 1);
        if (req->body == NULL) {
            sk_engine_req_release(req);
            return NULL;
        }
        memcpy(req->body, body, body_len);
        req->body[body_len] = '\0';
        req->body_len = body_len;
    }
    return req;
}

/* The client's share (made on first use; a fresh one in a forked child). */
static CURLSH *current_share(sk_client *c)
{
    CURLSH *share;

    pthread_mutex_lock(&c->lock);
    check_fork(c);
    share = c->share;
    pthread_mutex_unlock(&c->lock);
    make_share(c, &share);
    return share;
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
    sk_engine_req *req = engine_request(body, body_len);
    CURLSH *share = req != NULL ? current_share(c) : NULL;
    http_answer *a;
    CURLcode rc = CURLE_OUT_OF_MEMORY;

    if (req != NULL && (req->handle = sk_engine_handle(e)) != NULL)
        rc = set_options(c, req->handle, share, method, url, *headers,
                         req->body, body_len, flags, req->answer, req->errbuf);
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
    a = req->answer;
    *ans = *a; /* the answer moves to the caller */
    memset(a, 0, sizeof(*a));
    ans->status = req->status;
    ans->request_bytes = req->request_bytes;
    ans->transport = rc;
    memcpy(errbuf, req->errbuf, CURL_ERROR_SIZE);
    sk_engine_req_release(req);
    return rc;
}

/* The Content-Type line: a JSON body, or none ("Content-Type:" stops
   libcurl's form type). */
#define CONTENT_TYPE(has_body)                                                 \
    ((has_body) ? "Content-Type: application/json" : "Content-Type:")
/* Bodies this long get "Expect:", which stops libcurl from sending
   "Expect: 100-continue" and waiting a round trip for the answer to it
   (libcurl 7.x does so above 1 KiB, 8.x above 1 MiB). */
#define EXPECT_THRESHOLD 1024

/* The request's header list for the engine (NULL on no memory). No
   Accept: libcurl's "Accept: *\/\*" lets SmartKey answer JSON. */
static struct curl_slist *request_headers(const char *authorization,
                                          const char *body, size_t body_len)
{
    struct curl_slist *headers = NULL, *h;
    const char *lines[] = {
        authorization,
        CONTENT_TYPE(body != NULL),
        body_len > EXPECT_THRESHOLD ? "Expect:" : NULL,
    };

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (lines[i] == NULL)
            continue;
        h = curl_slist_append(headers, lines[i]);
        if (h == NULL) {
            cleanse_headers(headers);
            return NULL;
        }
        headers = h;
    }
    return headers;
}

/* The pooled handle's header list for this request, in place; the
   authorization stays the caller's (NULL: none). */
static CURLcode set_headers(sk_handle *h, const char *authorization,
                            const char *body, size_t body_len)
{
    struct curl_slist *head =
        authorization != NULL ? &h->lines[0] : &h->lines[1];

    h->lines[0].data = (char *)authorization;
    h->lines[1].data = (char *)CONTENT_TYPE(body != NULL);
    h->lines[1].next = body_len > EXPECT_THRESHOLD ? &h->lines[2] : NULL;
    if (head == h->head)
        return CURLE_OK;
    h->head = head;
    return curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, head);
}

/* The exchange on the calling thread with a handle of the pool. Returns
   like curl_easy_perform. */
static CURLcode exchange_sync(sk_client *c, const char *method, const char *url,
                              const char *authorization, const char *body,
                              size_t body_len, unsigned flags, http_answer *ans,
                              char *errbuf)
{
    CURLcode rc;
    sk_handle *h = take_handle(c, &rc);
    CURLSH *share;

    if (h == NULL)
        return rc;
    /* a handle made while the share could not be (no memory) gets it on
       a later request */
    share = h->share;
    if (share == NULL && (share = current_share(c)) != NULL &&
        curl_easy_setopt(h->curl, CURLOPT_SHARE, share) == CURLE_OK)
        h->share = share;
    h->errbuf[0] = '\0';
    rc = set_headers(h, authorization, body, body_len);
    if (rc != CURLE_OK)
        h->method = METHOD_NONE; /* its state is unknown: not reused */
    else
        rc = set_request(h->curl, method, url, body, body_len, flags, ans,
                         &h->method, &h->fresh);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &ans->status);
    else if (curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE,
                               &ans->request_bytes) != CURLE_OK)
        ans->request_bytes = 1; /* unknown: assume it was sent */
    ans->transport = rc;
    if (rc != CURLE_OK)
        memcpy(errbuf, h->errbuf, CURL_ERROR_SIZE);
    /* the authorization is the caller's: no pointer to it stays */
    h->lines[0].data = (char *)"";
    return_handle(c, h, h->method != METHOD_NONE);
    return rc;
}

/* A transport failure into err, with whether it may be sent again. */
static void transport_error(sk_client *c, CURLcode rc, const http_answer *ans,
                            const char *errbuf, const char *request,
                            enum resend *resend, sk_error *err)
{
    if (ans->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "response larger than %d bytes", SK_MAX_RESPONSE);
    else if (!tls_problem(c, rc, errbuf, request, err))
        sk_error_set(err, curl_kind(rc), request, "%s%s%s",
                     errbuf[0] ? errbuf : curl_easy_strerror(rc), fd_note(rc),
                     proxy_note(c, rc));
    *resend = ans->too_large ? RESEND_NEVER : curl_resend(rc);
    sk_client_log(c, 1, "%s: %s", request, err->message);
}

/*
 * One exchange. Returns 1 when an HTTP answer arrived (any status), 0 on a
 * transport failure (err filled, *resend set). Inside an ASYNC job (async =
 * auto) the job pauses while the engine's I/O thread does the network work.
 */
int sk_pool_exchange(sk_client *c, const char *base, const char *method,
                     const char *path, const char *request,
                     const char *authorization, const char *body,
                     size_t body_len, unsigned flags, http_answer *ans,
                     enum resend *resend, sk_error *err)
{
    char errbuf[CURL_ERROR_SIZE] = "", short_url[512];
    struct curl_slist *headers = NULL;
    sk_async_slot *slot;
    sk_engine *engine;
    char *url = short_url;
    size_t url_len;
    CURLcode rc;
    double started = c->log_level >= 2 ? sk_now_seconds() : 0;

    *resend = RESEND_NEVER;
    sk_http_answer_reset(ans);
    url_len = strlen(base) + strlen(path) + 1;
    if (url_len > sizeof(short_url))
        url = OPENSSL_malloc(url_len);
    slot = url != NULL ? sk_pool_async_slot(c) : NULL;
    engine = slot != NULL ? sk_pool_engine(c) : NULL;
    if (engine != NULL &&
        (headers = request_headers(authorization, body, body_len)) == NULL)
        sk_async_announce(slot);
    if (url == NULL || (engine != NULL && headers == NULL)) {
        if (url != short_url)
            OPENSSL_free(url);
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    snprintf(url, url_len, "%s%s", base, path);

    if (slot != NULL && engine == NULL)
        sk_async_announce(slot); /* no engine: synchronous */
    if (engine != NULL)
        rc = exchange_async(c, engine, slot, method, url, &headers, body,
                            body_len, flags, ans, errbuf);
    else
        rc = exchange_sync(c, method, url, authorization, body, body_len, flags,
                           ans, errbuf);
    cleanse_headers(headers);
    if (url != short_url)
        OPENSSL_free(url);

    if (rc != CURLE_OK) {
        transport_error(c, rc, ans, errbuf, request, resend, err);
        return 0;
    }
    if (c->log_level >= 2)
        sk_client_log(c, 2, "%s: %ld (%ld us)", request, ans->status,
                      (long)((sk_now_seconds() - started) * 1e6));
    return 1;
}
