/*
 * smartkey-keyservice: the server. A fixed pool of worker threads
 * (max_connections) each accepts a connection on the listening socket,
 * does the TLS handshake with OpenSSL (so the TLS key may be a SmartKey key
 * through the provider), reads one request head, answers and closes.
 * Connections beyond the pool wait in the kernel's backlog. The main thread
 * waits for signals: SIGHUP reloads the configuration, SIGTERM and SIGINT
 * stop. Every request is logged on one line to stderr, without secrets.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include <smartkey/smartkey.h>

#include "keyservice.h"

#define KS_VERSION "0.1.0"

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static ks_config *current;
static ks_replay *replay;
static atomic_int stopping;
static int listen_fd = -1;

/* ---- configuration references: the lock is never held across I/O ---- */

static ks_config *config_get(void)
{
    ks_config *c;

    pthread_mutex_lock(&config_lock);
    c = current;
    c->refs++;
    pthread_mutex_unlock(&config_lock);
    return c;
}

static void config_put(ks_config *c)
{
    int last;

    pthread_mutex_lock(&config_lock);
    last = --c->refs == 0;
    pthread_mutex_unlock(&config_lock);
    if (last)
        ks_config_free(c);
}

/* ---- the log ---- */

__attribute__((format(printf, 1, 2))) static void log_line(const char *fmt, ...)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    va_list args;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    flockfile(stderr);
    fprintf(stderr, "%s smartkey-keyservice: ", stamp);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    fflush(stderr);
    funlockfile(stderr);
}

/* A client's text for the log: anything but [A-Za-z0-9/._~-] as %XX. */
static void log_safe(const char *in, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *in != '\0' && o + 4 < out_size; in++) {
        unsigned char c = (unsigned char)*in;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("/._~-", c) != NULL) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* ---- one request ---- */

typedef struct answer {
    int status;
    const char *reason; /* for the log */
    char why[512];      /* the provider's message, for the log */
    unsigned char *body;
    size_t body_len;
    char extra[128]; /* further header lines, each ending in CRLF */
    int jti;
} answer;

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

/* refuse: an error answer whose JSON body says REASON (a fixed text). */
static void refuse(answer *a, int status, const char *reason)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", reason);

    a->status = status;
    a->reason = reason;
    a->body = OPENSSL_malloc((size_t)n);
    if (a->body != NULL) {
        memcpy(a->body, body, (size_t)n);
        a->body_len = (size_t)n;
    }
}

static int authorized(const ks_config *c, const ks_request *req)
{
    char credentials[KS_MAX_AUTH];
    unsigned char digest[32];
    int n, ok = 0;

    if (!req->has_authorization)
        return 0;
    n = ks_basic_credentials(req->authorization, credentials,
                             sizeof(credentials));
    if (n >= 0 &&
        EVP_Digest(credentials, (size_t)n, digest, NULL, EVP_sha256(), NULL))
        ok = CRYPTO_memcmp(digest, c->credentials_sha256, sizeof(digest)) == 0;
    OPENSSL_cleanse(credentials, sizeof(credentials));
    OPENSSL_cleanse(digest, sizeof(digest));
    return ok;
}

static void callout(const ks_config *c, const ks_request *req, answer *a,
                    char *key_id, size_t key_id_size)
{
    char nonce[KS_MAX_NONCE + 1];
    const ks_key *key;
    ks_callout_status status;

    if (!ks_route(req->path, c->path_prefix, key_id, key_id_size) ||
        (key = ks_config_key(c, key_id)) == NULL) {
        refuse(a, 404, "unknown key identifier");
        return;
    }
    if (c->replay_detection) {
        int parsed = req->has_request_id
                         ? ks_request_nonce(req->request_id, key_id, nonce,
                                            sizeof(nonce))
                         : 0;

        if (parsed == 0) {
            refuse(a, 400, "missing or malformed RequestIdentifier");
            return;
        }
        if (parsed < 0) {
            refuse(a, 400, "RequestIdentifier names another key identifier");
            return;
        }
        if (!ks_replay_check(replay, nonce, time(NULL), c->replay_window,
                             c->replay_capacity)) {
            refuse(a, 409, "RequestIdentifier already used");
            return;
        }
        a->jti = 1;
    }
    status = ks_callout(NULL, key, key_id, a->jti ? nonce : NULL, &a->body,
                        &a->body_len, a->why, sizeof(a->why));
    if (status == KS_CALLOUT_OK) {
        a->status = 200;
        a->reason = "answered";
    } else if (status == KS_CALLOUT_UNAVAILABLE) {
        refuse(a, 503, "SmartKey is unavailable");
        snprintf(a->extra, sizeof(a->extra), "Retry-After: %d\r\n",
                 c->retry_after);
    } else {
        refuse(a, 500, "the answer could not be made");
    }
}

static void handle(const ks_config *c, const char *head, size_t len, answer *a,
                   char *key_id, size_t key_id_size, char *path_for_log,
                   size_t log_size)
{
    ks_request req;
    const char *why;
    int status = ks_parse_request(head, len, &req, &why);

    log_safe(req.path, path_for_log, log_size);
    if (status != 0) {
        refuse(a, status, why);
        if (status == 405)
            snprintf(a->extra, sizeof(a->extra), "Allow: GET\r\n");
    } else if (strcmp(req.path, "/health") == 0) {
        a->status = 200;
        a->reason = "health";
        a->body = (unsigned char *)OPENSSL_strdup("{\"status\":\"ok\"}");
        a->body_len = a->body != NULL ? strlen((char *)a->body) : 0;
    } else if (!authorized(c, &req)) {
        refuse(a, 401, "authentication required");
        snprintf(a->extra, sizeof(a->extra),
                 "WWW-Authenticate: Basic realm=\"smartkey-keyservice\", "
                 "charset=\"UTF-8\"\r\n");
    } else {
        callout(c, &req, a, key_id, key_id_size);
    }
    OPENSSL_cleanse(&req, sizeof(req));
}

static int send_answer(SSL *ssl, const answer *a)
{
    char header[512];
    unsigned char *out;
    int n = snprintf(header, sizeof(header),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\n%s\r\n",
                     a->status, status_text(a->status), a->body_len, a->extra);
    size_t total = (size_t)n + a->body_len;
    int ok;

    if ((out = OPENSSL_malloc(total)) == NULL)
        return 0;
    memcpy(out, header, (size_t)n);
    if (a->body_len > 0)
        memcpy(out + n, a->body, a->body_len);
    ok = SSL_write(ssl, out, (int)total) == (int)total;
    OPENSSL_clear_free(out, total);
    return ok;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* read_head: the request head into BUF (SIZE bytes at most) within
   TIMEOUT seconds in all (a client trickling bytes cannot hold a worker);
   returns its length, 0 when the client stopped or was too slow, -1 when
   the head does not fit. */
static long read_head(SSL *ssl, char *buf, size_t size, int timeout)
{
    size_t have = 0, end;
    double deadline = now_seconds() + timeout;

    while (have < size) {
        int n = SSL_read(ssl, buf + have, (int)(size - have));

        if (n <= 0 || now_seconds() > deadline)
            return 0;
        have += (size_t)n;
        if ((end = ks_head_end(buf, have)) != 0)
            return (long)end;
    }
    return -1;
}

static void peer_text(const struct sockaddr_storage *peer, char *out,
                      size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (peer->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, host,
                  sizeof(host));
    else if (peer->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr,
                  host, sizeof(host));
    snprintf(out, size, "%s", host);
}

static void serve(int fd, const struct sockaddr_storage *peer)
{
    ks_config *c = config_get();
    struct timeval tv = {.tv_sec = c->io_timeout};
    SSL *ssl = SSL_new(c->tls);
    char *buf = OPENSSL_malloc((size_t)c->max_request_size);
    char from[INET6_ADDRSTRLEN], path[3 * KS_MAX_PATH + 1] = "-";
    char key_id[KS_MAX_KEY_ID + 1] = "-";
    answer a;
    long len;

    memset(&a, 0, sizeof(a));
    peer_text(peer, from, sizeof(from));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (ssl == NULL || buf == NULL || !SSL_set_fd(ssl, fd) ||
        SSL_accept(ssl) != 1) {
        unsigned long e = ERR_peek_last_error();
        char text[256] = "closed";

        if (e != 0)
            ERR_error_string_n(e, text, sizeof(text));
        log_line("%s TLS handshake failed: %s", from, text);
        goto end;
    }
    len = read_head(ssl, buf, (size_t)c->max_request_size, c->io_timeout);
    if (len == 0) {
        log_line("%s closed before a complete request", from);
        goto end;
    }
    if (len < 0)
        refuse(&a, 431, "request head larger than max_request_size");
    else
        handle(c, buf, (size_t)len, &a, key_id, sizeof(key_id), path,
               sizeof(path));
    if (!send_answer(ssl, &a))
        a.reason = "the answer could not be sent";
    else
        SSL_shutdown(ssl);
    log_line("%s \"GET %s\" %d key=%s jti=%s: %s%s%s", from, path, a.status,
             key_id, a.jti ? "yes" : "no", a.reason,
             a.why[0] != '\0' ? ": " : "", a.why);

end:
    if (buf != NULL)
        OPENSSL_clear_free(buf, (size_t)c->max_request_size);
    OPENSSL_clear_free(a.body, a.body_len);
    SSL_free(ssl);
    ERR_clear_error();
    config_put(c);
}

static void *worker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int fd = accept4(listen_fd, (struct sockaddr *)&peer, &peer_len,
                         SOCK_CLOEXEC);

        if (fd < 0) {
            if (atomic_load(&stopping))
                break;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM)
                usleep(100000);
            continue;
        }
        serve(fd, &peer);
        close(fd);
    }
    return NULL;
}

/* ---- start ---- */

/* write_ready_file: ADDRESS into PATH, atomically (a reader never sees a
   partial line). */
static int write_ready_file(const char *path, const char *address)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL || fprintf(f, "%s\n", address) < 0 ||
        fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "smartkey-keyservice: cannot write %s\n", path);
        return 0;
    }
    return 1;
}

/* listen_on: "host:port" or "[v6]:port"; writes the bound address to
   READY_FILE (atomically) when given. */
static int listen_on(const char *spec, const char *ready_file)
{
    char host[256], port[16], bound[300];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    struct sockaddr_storage addr;
    socklen_t addr_len = sizeof(addr);
    size_t host_len;
    int one = 1, zero = 0, err;

    if (colon == NULL || strlen(colon + 1) >= sizeof(port) ||
        (size_t)(colon - spec) >= sizeof(host)) {
        fprintf(stderr, "smartkey-keyservice: listen is host:port: %s\n", spec);
        return 0;
    }
    host_len = (size_t)(colon - spec);
    memcpy(host, spec, host_len);
    host[host_len] = '\0';
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    strcpy(port, colon + 1);
    if ((err = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints,
                           &res)) != 0) {
        fprintf(stderr, "smartkey-keyservice: listen %s: %s\n", spec,
                gai_strerror(err));
        return 0;
    }
    listen_fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd >= 0) {
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (res->ai_family == AF_INET6)
            setsockopt(listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
                       sizeof(zero));
    }
    if (listen_fd < 0 || bind(listen_fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(listen_fd, 128) != 0 ||
        getsockname(listen_fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        fprintf(stderr, "smartkey-keyservice: listen %s: %s\n", spec,
                strerror(errno));
        freeaddrinfo(res);
        return 0;
    }
    freeaddrinfo(res);
    peer_text(&addr, host, sizeof(host));
    snprintf(bound, sizeof(bound),
             addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
             ntohs(addr.ss_family == AF_INET6
                       ? ((struct sockaddr_in6 *)&addr)->sin6_port
                       : ((struct sockaddr_in *)&addr)->sin_port));
    log_line("listening on %s", bound);
    return ready_file == NULL || write_ready_file(ready_file, bound);
    return 1;
}

/* The providers: what openssl.cnf activated, else default and smartkey
   (from PROVIDER_PATH when given: the build tree, a test). */
static OSSL_PROVIDER *loaded[2]; /* the ones loaded here, unloaded at exit */

static int load_providers(const char *provider_path)
{
    if (!OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL))
        return 0;
    if (provider_path != NULL &&
        !OSSL_PROVIDER_set_default_search_path(NULL, provider_path))
        return 0;
    if (!OSSL_PROVIDER_available(NULL, "default") &&
        (loaded[0] = OSSL_PROVIDER_load(NULL, "default")) == NULL)
        return 0;
    if (!OSSL_PROVIDER_available(NULL, SMARTKEY_PROVIDER_NAME) &&
        (loaded[1] = OSSL_PROVIDER_load(NULL, SMARTKEY_PROVIDER_NAME)) == NULL)
        return 0;
    return 1;
}

static void unload_providers(void)
{
    if (loaded[1] != NULL)
        OSSL_PROVIDER_unload(loaded[1]);
    if (loaded[0] != NULL)
        OSSL_PROVIDER_unload(loaded[0]);
}

static void reload(const char *path)
{
    ks_config *fresh = ks_config_load(path, NULL), *old;

    if (fresh == NULL) {
        log_line("reload of %s failed: the running configuration stays", path);
        return;
    }
    pthread_mutex_lock(&config_lock);
    old = current;
    if (strcmp(fresh->listen, old->listen) != 0 ||
        fresh->max_connections != old->max_connections)
        log_line("listen and max_connections change at the next restart");
    current = fresh;
    pthread_mutex_unlock(&config_lock);
    config_put(old);
    log_line("reloaded %s: %zu key identifiers", path, fresh->nkeys);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: smartkey-keyservice [-c CONFIG] [--check] "
                "[--ready-file FILE] [--provider-path DIR]\n"
                "       smartkey-keyservice --version\n"
                "CONFIG defaults to /etc/smartkey/keyservice.conf; see "
                "smartkey-keyservice(8).\n");
}

typedef struct options {
    const char *config_path, *ready_file, *provider_path;
    int check_only;
} options;

/* parse_options: 0 to go on, otherwise the exit status + 1. */
static int parse_options(int argc, char **argv, options *o)
{
    int i;

    o->config_path = "/etc/smartkey/keyservice.conf";
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            o->config_path = argv[++i];
        else if (strcmp(argv[i], "--ready-file") == 0 && i + 1 < argc)
            o->ready_file = argv[++i];
        else if (strcmp(argv[i], "--provider-path") == 0 && i + 1 < argc)
            o->provider_path = argv[++i];
        else if (strcmp(argv[i], "--check") == 0)
            o->check_only = 1;
        else if (strcmp(argv[i], "--version") == 0) {
            printf("smartkey-keyservice %s\n", KS_VERSION);
            return 1;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 1;
        } else {
            usage(stderr);
            return 3;
        }
    }
    return 0;
}

/* serve_until_stopped: the workers, then signals until SIGTERM or SIGINT;
   returns once every worker has finished its connection. */
static int serve_until_stopped(const options *o, const sigset_t *signals)
{
    int i, n = current->max_connections, sig;
    pthread_t *workers = calloc((size_t)n, sizeof(*workers));

    replay = ks_replay_new();
    if (replay == NULL || workers == NULL ||
        !listen_on(current->listen, o->ready_file)) {
        free(workers);
        return 0;
    }
    for (i = 0; i < n; i++)
        if (pthread_create(&workers[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "smartkey-keyservice: cannot start a thread\n");
            exit(1);
        }
    log_line("serving %zu key identifiers, replay detection %s, %d "
             "connections at once",
             current->nkeys, current->replay_detection ? "on" : "off", n);
    for (;;) {
        sig = 0;
        if (sigwait(signals, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        reload(o->config_path);
    }
    log_line("stopping");
    atomic_store(&stopping, 1);
    shutdown(listen_fd, SHUT_RDWR);
    for (i = 0; i < n; i++)
        pthread_join(workers[i], NULL);
    close(listen_fd);
    free(workers);
    return 1;
}

int main(int argc, char **argv)
{
    options o = {0};
    sigset_t signals;
    int status = parse_options(argc, argv, &o), ok;

    if (status != 0)
        return status - 1;
    /* the workers inherit the mask: signals reach the main thread alone */
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!load_providers(o.provider_path)) {
        fprintf(stderr, "smartkey-keyservice: cannot load the providers\n");
        ERR_print_errors_fp(stderr);
        unload_providers();
        return 1;
    }
    if ((current = ks_config_load(o.config_path, NULL)) == NULL) {
        unload_providers();
        return 1;
    }
    if (o.check_only) {
        printf("%s: %zu key identifiers, OK\n", o.config_path, current->nkeys);
        ok = 1;
    } else {
        ok = serve_until_stopped(&o, &signals);
    }
    ks_replay_free(replay);
    config_put(current);
    unload_providers();
    return ok ? 0 : 1;
}
