/*
 * tls-load: C concurrent loops of full TLS handshakes against one loopback
 * server, a bounded number in all; prints the handshakes per second and
 * the failures. Every handshake is a full one: no session is ever offered
 * again (no cache, no tickets kept), so each costs the server one
 * signature.
 *
 * Usage:
 *   tls-load --connect 127.0.0.1:PORT --concurrency C --count N
 *            [--seconds S] [--cafile FILE] [--servername NAME]
 *            [--tls1_2] [--request] [--timeout SECONDS]
 *
 * --count N     at most N handshakes in all (the C loops share them)
 * --seconds S   no new handshake starts after S seconds (0: no limit)
 * --cafile FILE verify the server's certificate against FILE
 * --request     after the handshake, send "GET / HTTP/1.0" and require an
 *               "HTTP/1.x 200" answer (proves the server finished the
 *               handshake, not only signed)
 * --timeout S   socket timeout of one connection (default 60)
 *
 * Output, one line on stdout:
 *   handshakes=H failures=F seconds=T rate=R mean_ms=M max_ms=X
 * The first few failures are described on stderr. Exit status: 0 when no
 * handshake failed and, without --seconds, all N were made; 1 otherwise;
 * 2 for a usage error. Only loopback addresses are accepted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CONCURRENCY     1024
#define MAX_REPORTED_ERRORS 5

static struct {
    struct sockaddr_in addr;
    const char *servername;
    long concurrency;
    long count;
    double seconds;
    long timeout;
    int request;
} opt = {.concurrency = 1, .count = 1, .timeout = 60};

static SSL_CTX *ctx;
static double start_time;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long started, done, failures, reported;
static double total_ms, max_ms;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report_failure(long index, const char *what)
{
    unsigned long e;
    char buf[256];

    pthread_mutex_lock(&lock);
    failures++;
    if (reported++ < MAX_REPORTED_ERRORS) {
        e = ERR_peek_last_error();
        if (e != 0)
            ERR_error_string_n(e, buf, sizeof(buf));
        else
            snprintf(buf, sizeof(buf), "%s", errno ? strerror(errno) : "-");
        fprintf(stderr, "tls-load: handshake %ld: %s: %s\n", index, what, buf);
    }
    pthread_mutex_unlock(&lock);
    ERR_clear_error();
}

/* Takes the next handshake's number, or -1 when the bounds are reached. */
static long next_index(void)
{
    long index = -1;

    pthread_mutex_lock(&lock);
    if (started < opt.count &&
        (opt.seconds <= 0 || now() - start_time < opt.seconds))
        index = started++;
    pthread_mutex_unlock(&lock);
    return index;
}

static int connect_socket(void)
{
    struct timeval tv = {.tv_sec = opt.timeout};
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&opt.addr, sizeof(opt.addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* GET / over the established connection; 1 when the answer is a 200. */
static int request_page(SSL *ssl)
{
    static const char get[] = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    char answer[64];
    size_t have = 0, n;

    if (SSL_write(ssl, get, (int)strlen(get)) <= 0)
        return 0;
    while (have < 12 &&
           SSL_read_ex(ssl, answer + have, sizeof(answer) - 1 - have, &n))
        have += n;
    answer[have] = '\0';
    return have >= 12 && strncmp(answer, "HTTP/1.", 7) == 0 &&
           strncmp(answer + 8, " 200", 4) == 0;
}

static void one_handshake(long index)
{
    double t0 = now(), ms;
    SSL *ssl = NULL;
    int fd;

    errno = 0;
    fd = connect_socket();
    if (fd < 0) {
        report_failure(index, "connect");
        return;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd) ||
        (opt.servername != NULL &&
         !SSL_set_tlsext_host_name(ssl, opt.servername))) {
        report_failure(index, "SSL set-up");
        goto out;
    }
    if (SSL_connect(ssl) != 1) {
        report_failure(index, "handshake");
        goto out;
    }
    if (opt.request && !request_page(ssl)) {
        report_failure(index, "no 200 answer after the handshake");
        goto out;
    }
    SSL_shutdown(ssl);
    ms = (now() - t0) * 1000;
    pthread_mutex_lock(&lock);
    done++;
    total_ms += ms;
    if (ms > max_ms)
        max_ms = ms;
    pthread_mutex_unlock(&lock);
out:
    SSL_free(ssl);
    close(fd);
}

static void *loop(void *arg)
{
    long index;

    (void)arg;
    while ((index = next_index()) >= 0)
        one_handshake(index);
    ERR_clear_error();
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tls-load --connect 127.0.0.1:PORT --concurrency C "
            "--count N\n"
            "                [--seconds S] [--cafile FILE] "
            "[--servername NAME]\n"
            "                [--tls1_2] [--request] [--timeout SECONDS]\n");
    exit(2);
}

static long parse_long(const char *s, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < min || v > max)
        usage();
    return v;
}

static void parse_connect(const char *s)
{
    char host[64];
    const char *colon = strrchr(s, ':');

    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        usage();
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    opt.addr.sin_family = AF_INET;
    opt.addr.sin_port = htons((unsigned short)parse_long(colon + 1, 1, 65535));
    if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1)
        usage();
    /* loopback only: this is a test client */
    if ((ntohl(opt.addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "tls-load: %s is not a loopback address\n", host);
        exit(2);
    }
}

/* Parses the command line into opt, *cafile and *tls12; exits with 2 on a
   usage error. */
static void parse_args(int argc, char **argv, const char **cafile, int *tls12)
{
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"concurrency", required_argument, NULL, 'C'},
        {"count", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 's'},
        {"cafile", required_argument, NULL, 'a'},
        {"servername", required_argument, NULL, 'S'},
        {"tls1_2", no_argument, NULL, '2'},
        {"request", no_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    int c, have_connect = 0;
    char *end;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            parse_connect(optarg);
            have_connect = 1;
            break;
        case 'C':
            opt.concurrency = parse_long(optarg, 1, MAX_CONCURRENCY);
            break;
        case 'n':
            opt.count = parse_long(optarg, 1, 100000000);
            break;
        case 's':
            opt.seconds = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || opt.seconds < 0)
                usage();
            break;
        case 'a':
            *cafile = optarg;
            break;
        case 'S':
            opt.servername = optarg;
            break;
        case '2':
            *tls12 = 1;
            break;
        case 'r':
            opt.request = 1;
            break;
        case 't':
            opt.timeout = parse_long(optarg, 1, 3600);
            break;
        default:
            usage();
        }
    }
    if (!have_connect || optind != argc)
        usage();
}

/* Creates ctx for full handshakes only; returns 0, or the exit status of a
   failure (1 no context, 2 unreadable cafile). */
static int make_ctx(const char *cafile, int tls12)
{
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return 1;
    /* full handshakes only: nothing to resume from */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (cafile != NULL) {
        if (!SSL_CTX_load_verify_locations(ctx, cafile, NULL)) {
            fprintf(stderr, "tls-load: cannot read %s\n", cafile);
            return 2;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return 0;
}

int main(int argc, char **argv)
{
    pthread_t threads[MAX_CONCURRENCY];
    const char *cafile = NULL;
    int tls12 = 0, status;
    long i, created = 0;
    double elapsed;

    parse_args(argc, argv, &cafile, &tls12);
    status = make_ctx(cafile, tls12);
    if (status != 0)
        return status;

    start_time = now();
    for (i = 0; i < opt.concurrency && i < opt.count; i++) {
        if (pthread_create(&threads[i], NULL, loop, NULL) != 0)
            break;
        created++;
    }
    for (i = 0; i < created; i++)
        pthread_join(threads[i], NULL);
    elapsed = now() - start_time;

    printf("handshakes=%ld failures=%ld seconds=%.3f rate=%.1f mean_ms=%.1f "
           "max_ms=%.1f\n",
           done, failures, elapsed, elapsed > 0 ? (double)done / elapsed : 0,
           done ? total_ms / (double)done : 0, max_ms);
    SSL_CTX_free(ctx);
    if (created == 0 || failures != 0)
        return 1;
    if (opt.seconds <= 0 && done != opt.count)
        return 1;
    return 0;
}
