#include "bench_common.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "test_common.h"

const unsigned char bench_secret[32] = "bench: thirty-two bytes secret!!";

int bench_encrypt_secret(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                         unsigned char cipher[256], size_t *cipher_len)
{
    *cipher_len = 256;
    return tc_encrypt_oaep(libctx, key, bench_secret, sizeof(bench_secret),
                           cipher, cipher_len) &&
           *cipher_len == 256;
}

/* Long enough that every thread's first request, TLS handshake included,
   starts before the first answer comes back, even with 64 threads on one
   client CPU (about 1 ms of handshake each). */
#define WARMUP_LATENCY_MS 150

typedef struct worker {
    bench_op op;
    int thread;
    long count;
    int warmup;
    pthread_barrier_t *warm, *go, *done;
    double *latency_us; /* count entries */
    long failures;
    double mean_gap_us; /* open loop: mean time between this thread's
                           operations; 0: closed loop */
} worker;

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* VmRSS: resident now (ru_maxrss would be the peak). */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void set_latency(const emu_env *env, long ms)
{
    char body[64];

    snprintf(body, sizeof(body), "{\"ms\":%ld}", ms);
    emu_request(env, "POST", "/_emulator/latency", NULL, body, NULL);
}

/* BENCH_ROUND_TRIP_MS: a network round trip the emulator adds to every
   answer (0: loopback as it is). */
static long base_latency_ms(void)
{
    const char *text = getenv("BENCH_ROUND_TRIP_MS");

    return text != NULL ? atol(text) : 0;
}

/* BENCH_RATE: operations per second for the whole point, arriving at
   random (Poisson) whatever the answers' speed, as requests reach a
   server; 0 or unset: each thread starts its next operation when the last
   one is done (closed loop). */
static double open_loop_rate(void)
{
    const char *text = getenv("BENCH_RATE");

    return text != NULL ? atof(text) : 0;
}

static void sleep_until_us(double when)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(when / 1e6);
    ts.tv_nsec = (long)((when - (double)ts.tv_sec * 1e6) * 1e3);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void *work(void *arg)
{
    worker *w = arg;
    unsigned short seed[3] = {(unsigned short)w->thread, 0x5eed, 0x1234};
    double due;

    pthread_barrier_wait(w->warm);
    for (int i = 0; i < w->warmup; i++)
        if (!w->op(w->thread))
            w->failures++;
    /* the main thread resets the counters between these two barriers */
    pthread_barrier_wait(w->done);
    pthread_barrier_wait(w->go);
    due = now_us();
    for (long i = 0; i < w->count; i++) {
        double start;

        if (w->mean_gap_us > 0) {
            /* An operation that starts late because the previous one was
               slow counts its wait: latency runs from when it was due. */
            due += -log(1.0 - erand48(seed)) * w->mean_gap_us;
            if (due > now_us())
                sleep_until_us(due);
            start = due;
        } else {
            start = now_us();
        }
        if (!w->op(w->thread))
            w->failures++;
        w->latency_us[i] = now_us() - start;
    }
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int bench_run(const emu_env *env, bench_op op, int threads, long total,
              int warmup, bench_result *out)
{
    pthread_t ids[BENCH_MAX_THREADS];
    worker workers[BENCH_MAX_THREADS];
    pthread_barrier_t warm, go, done;
    long per_thread = (total + threads - 1) / threads, n = 0;
    double *all, start, cpu_start;
    long requests, handshakes;
    double rate = open_loop_rate();

    if (threads < 1 || threads > BENCH_MAX_THREADS)
        return 0;
    all = calloc((size_t)(per_thread * threads), sizeof(double));
    if (all == NULL)
        return 0;
    memset(out, 0, sizeof(*out));
    pthread_barrier_init(&warm, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&done, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        workers[i] = (worker){op,         i,
                              per_thread, warmup,
                              &warm,      &go,
                              &done,      all + i * per_thread,
                              0,          rate > 0 ? threads * 1e6 / rate : 0};
        if (pthread_create(&ids[i], NULL, work, &workers[i]) != 0)
            abort();
    }
    /* Slow answers during the warm-up make every thread hold a connection
       at the same time: the client's pool then has one per thread, as a
       long-running server's pool does. */
    set_latency(env, WARMUP_LATENCY_MS);
    pthread_barrier_wait(&warm);
    pthread_barrier_wait(&done);
    set_latency(env, base_latency_ms());
    emu_reset_counters(env);
    cpu_start = cpu_us();
    start = now_us();
    pthread_barrier_wait(&go);
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        out->failures += workers[i].failures;
    }
    out->seconds = (now_us() - start) / 1e6;
    out->cpu_us_per_op = 0;
    n = per_thread * threads;
    out->ops = n;
    out->cpu_us_per_op = (cpu_us() - cpu_start) / (double)n;
    requests = emu_counter(env, "requests_total");
    handshakes = emu_counter(env, "tls_handshakes");
    out->requests_per_op = (double)requests / (double)n;
    out->handshakes_per_op = (double)handshakes / (double)n;
    out->rss_kb = rss_kb();
    for (long i = 0; i < n; i++)
        out->mean_us += all[i] / (double)n;
    qsort(all, (size_t)n, sizeof(double), by_value);
    out->p50_us = all[n / 2];
    out->p99_us = all[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
    free(all);
    pthread_barrier_destroy(&warm);
    pthread_barrier_destroy(&done);
    pthread_barrier_destroy(&go);
    return 1;
}

void bench_print(const char *client, const char *op, int threads,
                 const bench_result *r)
{
    printf("RESULT %s %s %d %ld %ld %.3f %.1f %.1f %.1f %.3f %.4f %.1f %ld "
           "%.1f\n",
           client, op, threads, r->ops, r->failures, r->seconds,
           r->seconds > 0 ? r->ops / r->seconds : 0.0, r->p50_us, r->p99_us,
           r->requests_per_op, r->handshakes_per_op, r->cpu_us_per_op,
           r->rss_kb, r->mean_us);
    fflush(stdout);
}

int bench_parse_threads(const char *text, int *threads, int max)
{
    int n = 0;
    const char *p = text;

    while (*p != '\0' && n < max) {
        char *end;
        long value = strtol(p, &end, 10);

        if (end == p || value < 1 || value > BENCH_MAX_THREADS)
            return 0;
        threads[n++] = (int)value;
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return 0;
        p = end;
    }
    return n;
}

void bench_options_init(bench_options *o)
{
    static const int defaults[] = {1, 4, 16, 64};

    memset(o, 0, sizeof(*o));
    o->total = 1000;
    memcpy(o->threads, defaults, sizeof(defaults));
    o->thread_count = 4;
}

int bench_option(bench_options *o, const char *name, const char *value)
{
    if (strcmp(name, "--only") == 0) {
        o->only = value;
    } else if (strcmp(name, "--ops") == 0) {
        o->total = atol(value);
        if (o->total < 1)
            return -1;
    } else if (strcmp(name, "--threads") == 0) {
        o->thread_count = bench_parse_threads(
            value, o->threads, (int)(sizeof(o->threads) / sizeof(int)));
        if (o->thread_count == 0)
            return -1;
    } else {
        return 0;
    }
    return 1;
}

int bench_parse_options(bench_options *o, int argc, char **argv, int first,
                        int (*extra)(const char *name, const char *value))
{
    int bad = 0;

    bench_options_init(o);
    for (int i = first; i + 1 < argc; i += 2)
        if ((extra == NULL || !extra(argv[i], argv[i + 1])) &&
            bench_option(o, argv[i], argv[i + 1]) != 1)
            bad = 1;
    if (bad)
        fprintf(stderr, "%s: bad options\n", argv[0]);
    return !bad;
}

int bench_wanted(const bench_options *o, const char *name)
{
    size_t len = strlen(name);

    for (const char *p = o->only; p != NULL && *p != '\0';) {
        if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
            return 1;
        p = strchr(p, ',');
        p = p != NULL ? p + 1 : NULL;
    }
    return o->only == NULL;
}

int bench_run_all(const emu_env *env, const bench_options *o,
                  const bench_named_op *ops, size_t op_count,
                  const char *client, void (*after_run)(const bench_result *))
{
    for (size_t i = 0; i < op_count; i++) {
        if (!bench_wanted(o, ops[i].name))
            continue;
        for (int t = 0; t < o->thread_count; t++) {
            bench_result r;

            if (!bench_run(env, ops[i].op, o->threads[t], o->total, 2, &r))
                return 0;
            if (after_run != NULL)
                after_run(&r);
            bench_print(client, ops[i].name, o->threads[t], &r);
        }
    }
    return 1;
}
