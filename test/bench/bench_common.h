/*
 * What the provider benchmark and the raw libcurl benchmark share: running
 * one operation in N threads, latency percentiles, client CPU time and
 * resident memory, the emulator's counters, and the result line that
 * run-provider-bench turns into the table and the plot's data file.
 */
#ifndef SMARTKEY_BENCH_COMMON_H
#define SMARTKEY_BENCH_COMMON_H

#include <stddef.h>

#include "emu.h"

#define BENCH_MAX_THREADS 256

/* One operation by thread `thread`; returns 1 when its result is right. */
typedef int (*bench_op)(int thread);

typedef struct bench_result {
    long ops;
    long failures;
    double seconds;
    double p50_us, p99_us, mean_us;
    double requests_per_op, handshakes_per_op;
    double cpu_us_per_op; /* this process, user + system */
    long rss_kb;          /* this process, after the run */
} bench_result;

/*
 * Warms up (warmup operations per thread, every thread at once), sets the
 * emulator's added latency to $BENCH_ROUND_TRIP_MS (default 0), resets its
 * counters, then runs `total` operations spread over `threads`
 * threads and fills *out from the clock, getrusage and the counters.
 */
int bench_run(const emu_env *env, bench_op op, int threads, long total,
              int warmup, bench_result *out);

/* "RESULT client op threads ops failures seconds ops/s p50 p99 req/op
   hs/op cpu_us/op rss_kb mean": one line on stdout. */
void bench_print(const char *client, const char *op, int threads,
                 const bench_result *r);

/* Parses "1,4,16,64"; returns the count (0 on a bad list). */
int bench_parse_threads(const char *text, int *threads, int max);

#endif
