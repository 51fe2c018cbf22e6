/*
 * What the provider benchmark and the raw libcurl benchmark share: running
 * one operation in N threads, latency percentiles, client CPU time and
 * resident memory, the emulator's counters, and the result line that
 * run-provider-bench turns into the table and the plot's data file.
 */
#ifndef SMARTKEY_BENCH_COMMON_H
#define SMARTKEY_BENCH_COMMON_H

#include <stddef.h>

#include <openssl/evp.h>

#include "emu.h"

#define BENCH_MAX_THREADS 256

/* The plaintext both benchmarks encrypt and decrypt. */
extern const unsigned char bench_secret[32];

/* bench_secret encrypted with RSA-OAEP SHA-256 under the 2048-bit key
   (fetched in libctx) into cipher; 1 when that gave 256 bytes. */
int bench_encrypt_secret(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                         unsigned char cipher[256], size_t *cipher_len);

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

/* The options both benchmarks take: --only OP,OP --ops N --threads LIST. */
typedef struct bench_options {
    const char *only; /* NULL: every operation */
    long total;       /* operations per run (1000) */
    int threads[16];  /* thread counts (1, 4, 16, 64) */
    int thread_count;
} bench_options;

void bench_options_init(bench_options *o);
/* Takes NAME VALUE if it is one of the common options: 1 when taken, 0
   when NAME is not one, -1 when VALUE is bad. */
int bench_option(bench_options *o, const char *name, const char *value);

/* Fills o from the NAME VALUE pairs of argv from argv[first] on, offering
   each pair to extra first (may be NULL; returns 1 when it takes it). 0,
   after a message on stderr, on a bad option. */
int bench_parse_options(bench_options *o, int argc, char **argv, int first,
                        int (*extra)(const char *name, const char *value));

typedef struct bench_named_op {
    const char *name;
    bench_op op;
} bench_named_op;

/* Whether OP is in the --only list (every OP without one). */
int bench_wanted(const bench_options *o, const char *name);

/* Runs every wanted op at every thread count and prints its RESULT line
   as `client`; after_run (may be NULL) sees each result first. 0 when a
   run could not be made. */
int bench_run_all(const emu_env *env, const bench_options *o,
                  const bench_named_op *ops, size_t op_count,
                  const char *client, void (*after_run)(const bench_result *));

#endif
