/*
 * The REST client inside OpenSSL ASYNC jobs (issue 13): a call made in a
 * job sends its request from the client's I/O thread, gives the job a wait
 * fd and pauses; the driver here is a minimal event loop (ASYNC_start_job,
 * poll on the wait fds, resume the readable ones), as HAProxy's
 * ssl-mode-async does with TLS handshakes. The emulator answers every
 * request 20 ms late (with-emulator.sh --latency-ms 20), so requests
 * overlap only when the jobs really run concurrently. Counts come from the
 * emulator; nothing asserts wall-clock times. Out of file descriptors
 * (RLIMIT_NOFILE lowered in this process): no wait fd means a synchronous
 * call, no socket a clear error.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include "cunit_run.h"
#include "client.h"
#include "emu.h"
#include "test_common.h"

#define AUTH_REQUEST       "POST /sys/v1/session/auth"
#define SIGN_REQUEST       "POST /crypto/v1/sign"
#define BATCH_SIGN_REQUEST "POST /crypto/v1/keys/batch/sign"
#define MANY_JOBS          300
#define COLD_JOBS          64
/* a job that is not resumed within this long has hung */
#define POLL_LIMIT_MS 20000

static emu_env env;
static char ec_kid[37];
static EVP_PKEY *ec_public;

/* One signature made inside a job. */
typedef struct sign_job {
    sk_client *client;
    unsigned char hash[32];
    unsigned char *sig;
    size_t sig_len;
    sk_error err;
    int ok;
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    int ret;
    int finished;
} sign_job;

/* Jobs abandoned on purpose (never resumed): kept reachable, as an
   application that keeps its connection objects would. */
static ASYNC_JOB *volatile abandoned[8];
static size_t abandoned_count;

static int sign_in_job(void *arg)
{
    sign_job *s = *(sign_job **)arg;
    sk_sign_request req = {{ec_kid, NULL}, "SHA256", s->hash, 32, SK_SIG_NONE,
                           NULL,           NULL,     NULL,    0};

    s->ok = sk_client_sign(s->client, &req, &s->sig, &s->sig_len, &s->err);
    return s->ok;
}

static sign_job *new_jobs(sk_client *client, size_t n)
{
    sign_job *jobs = calloc(n, sizeof(*jobs));

    for (size_t i = 0; jobs != NULL && i < n; i++) {
        jobs[i].client = client;
        RAND_bytes(jobs[i].hash, sizeof(jobs[i].hash));
        jobs[i].wctx = ASYNC_WAIT_CTX_new();
    }
    return jobs;
}

static void free_jobs(sign_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        OPENSSL_free(jobs[i].sig);
        ASYNC_WAIT_CTX_free(jobs[i].wctx);
    }
    free(jobs);
}

/* Starts (or resumes) job i; returns 1 while it is paused. */
static int step(sign_job *s)
{
    sign_job *arg = s;
    int rc = ASYNC_start_job(&s->job, s->wctx, &s->ret, sign_in_job, &arg,
                             sizeof(arg));

    if (rc == ASYNC_PAUSE)
        return 1;
    CU_ASSERT_EQUAL(rc, ASYNC_FINISH);
    s->finished = 1;
    return 0;
}

/*
 * Starts n jobs, then resumes each as its wait fd becomes readable until
 * all have finished. Returns how many were paused at once at most, or -1
 * when one stayed paused without its fd becoming readable.
 */
static int run_jobs(sign_job *jobs, size_t n)
{
    struct pollfd *fds = calloc(n, sizeof(*fds));
    size_t *owner = calloc(n, sizeof(*owner));
    int paused = 0, max_paused = 0;

    for (size_t i = 0; i < n; i++)
        paused += step(&jobs[i]);
    max_paused = paused;
    while (paused > 0) {
        size_t nfds = 0;
        int ready;

        for (size_t i = 0; i < n; i++) {
            OSSL_ASYNC_FD fd[4];
            size_t count = 0;

            if (jobs[i].finished)
                continue;
            if (!ASYNC_WAIT_CTX_get_all_fds(jobs[i].wctx, NULL, &count) ||
                count != 1 ||
                !ASYNC_WAIT_CTX_get_all_fds(jobs[i].wctx, fd, &count)) {
                CU_FAIL("a paused job has no single wait fd");
                max_paused = -1;
                goto end;
            }
            fds[nfds].fd = fd[0];
            fds[nfds].events = POLLIN;
            fds[nfds].revents = 0;
            owner[nfds++] = i;
        }
        ready = poll(fds, nfds, POLL_LIMIT_MS);
        if (ready <= 0) {
            CU_FAIL("paused jobs whose fd never became readable");
            max_paused = -1;
            goto end;
        }
        for (size_t k = 0; k < nfds; k++)
            if (fds[k].revents & POLLIN)
                paused -= !step(&jobs[owner[k]]);
    }
end:
    free(fds);
    free(owner);
    return max_paused;
}

static int verifies(const sign_job *s)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(ec_public, NULL);
    int ok =
        ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
        EVP_PKEY_verify(ctx, s->sig, s->sig_len, s->hash, sizeof(s->hash)) == 1;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int all_signed(const sign_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i].ok || !verifies(&jobs[i])) {
            fprintf(stderr, "job %zu: %s\n", i,
                    jobs[i].ok ? "bad signature" : jobs[i].err.message);
            return 0;
        }
    }
    return 1;
}

static sk_client *client_with(const char *endpoint, sk_auth_mode auth,
                              int async_off, unsigned batch)
{
    sk_client_config cfg = {0};
    sk_error err;
    sk_client *client;

    cfg.endpoint = endpoint;
    cfg.api_key = env.api_key;
    cfg.ca_file = env.ca_file;
    cfg.retries = -1;
    /* 300 new TLS connections at once take the I/O thread seconds under
       a sanitizer's allocator on a busy machine: generous timeouts */
    cfg.connect_timeout_ms = 30000;
    cfg.request_timeout_ms = 30000;
    cfg.auth = auth;
    cfg.async_off = async_off;
    cfg.batch_max_size = batch;
    cfg.batch_max_wait_us = 20000;
    client = sk_client_new(&cfg, &err);
    if (client == NULL)
        fprintf(stderr, "sk_client_new: %s\n", err.message);
    return client;
}

/* A synchronous lookup: opens the session (and a connection). */
static int warm_up(sk_client *client)
{
    sk_key_ref ref = {ec_kid, NULL};
    sk_key_info *info = NULL;
    sk_error err;
    int ok = sk_client_key_info(client, &ref, &info, &err);

    sk_key_info_free(info);
    return ok;
}

static int suite_init(void)
{
    sk_client *client;
    sk_key_ref ref = {NULL, "async-ec"};
    sk_key_info *info = NULL;
    sk_error err;
    const unsigned char *p;

    if (!emu_init(&env) ||
        !emu_create_key(&env,
                        "{\"name\":\"async-ec\",\"obj_type\":\"EC\","
                        "\"elliptic_curve\":\"NistP256\","
                        "\"key_ops\":[\"SIGN\",\"VERIFY\",\"APPMANAGEABLE\"]}",
                        ec_kid))
        return 1;
    client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    if (client == NULL || !sk_client_key_info(client, &ref, &info, &err))
        return 1;
    p = info->pub_key;
    ec_public = d2i_PUBKEY(NULL, &p, (long)info->pub_key_len);
    sk_key_info_free(info);
    sk_client_free(client);
    return ec_public == NULL;
}

static int suite_clean(void)
{
    EVP_PKEY_free(ec_public);
    return 0;
}

/* ---- concurrency ---- */

static void test_300_jobs_paused_at_once_in_one_thread_all_sign(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    sign_job *jobs;

    CU_ASSERT_FATAL(client != NULL && warm_up(client));
    jobs = new_jobs(client, MANY_JOBS);
    CU_ASSERT_FATAL(jobs != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_EQUAL(run_jobs(jobs, MANY_JOBS), MANY_JOBS);
    CU_ASSERT(all_signed(jobs, MANY_JOBS));
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), MANY_JOBS);
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 0);
    fprintf(stderr, "  max_in_flight=%ld\n",
            emu_counter(&env, "max_in_flight"));
    CU_ASSERT(emu_counter(&env, "max_in_flight") > 1);
    free_jobs(jobs, MANY_JOBS);
    sk_client_free(client);
}

/*
 * A cold engine with 64 jobs paused at once opens 64 connections (no
 * connection limit of the multi handle, no handle waiting for another's
 * connection): with every answer 5 s late, all 64 requests are in the
 * emulator at the same time, each on its own new connection (a limit of
 * k connections would show k; handles queueing for one connection, 1).
 * A second wave reuses them: no handshake. The 5 s only has to exceed
 * the I/O thread's CPU for 64 TLS handshakes, even under sanitizers.
 */
static void test_cold_engine_connects_in_parallel_then_reuses(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    sign_job *jobs;

    CU_ASSERT_FATAL(client != NULL && warm_up(client));
    CU_ASSERT_FATAL(tc_set_latency(&env, 5000));
    for (int wave = 0; wave < 2; wave++) {
        jobs = new_jobs(client, COLD_JOBS);
        CU_ASSERT_FATAL(jobs != NULL);
        emu_reset_counters(&env);
        CU_ASSERT_EQUAL(run_jobs(jobs, COLD_JOBS), COLD_JOBS);
        CU_ASSERT(all_signed(jobs, COLD_JOBS));
        CU_ASSERT_EQUAL(emu_counter(&env, "max_in_flight"), COLD_JOBS);
        CU_ASSERT_EQUAL(emu_counter(&env, "tls_handshakes"),
                        wave == 0 ? COLD_JOBS : 0);
        free_jobs(jobs, COLD_JOBS);
    }
    CU_ASSERT(tc_set_latency(&env, 20));
    sk_client_free(client);
}

static void test_async_off_jobs_block_one_at_a_time(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 1, 0);
    sign_job *jobs;

    CU_ASSERT_FATAL(client != NULL && warm_up(client));
    jobs = new_jobs(client, 8);
    CU_ASSERT_FATAL(jobs != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_EQUAL(run_jobs(jobs, 8), 0); /* never paused */
    CU_ASSERT(all_signed(jobs, 8));
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), 8);
    CU_ASSERT_EQUAL(emu_counter(&env, "max_in_flight"), 1);
    free_jobs(jobs, 8);
    sk_client_free(client);
}

/* ---- abandoned jobs, unload, fork ---- */

/* Waits until the emulator has answered everything it received. */
static void wait_for_answers(void)
{
    for (int i = 0; i < 500 && emu_counter(&env, "in_flight") != 0; i++)
        usleep(10000);
    usleep(50000); /* and the I/O thread has read the answer */
}

static void abandon(sign_job *s)
{
    if (abandoned_count < sizeof(abandoned) / sizeof(abandoned[0]))
        abandoned[abandoned_count++] = s->job;
    /* what SSL_free does to a connection closed while its job is paused */
    ASYNC_WAIT_CTX_free(s->wctx);
    s->wctx = NULL;
    s->job = NULL;
}

static void test_abandoned_job_late_answer_is_discarded(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    sign_job *jobs;

    CU_ASSERT_FATAL(client != NULL && warm_up(client));
    jobs = new_jobs(client, 3);
    CU_ASSERT_FATAL(jobs != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(step(&jobs[0]) == 1);
    abandon(&jobs[0]);
    /* the late answer arrives while nobody waits for it (ASan: no write
       into the job's memory, nothing leaked) */
    wait_for_answers();
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), 1);
    /* the client goes on serving other jobs */
    CU_ASSERT_EQUAL(run_jobs(jobs + 1, 2), 2);
    CU_ASSERT(all_signed(jobs + 1, 2));
    free_jobs(jobs, 3);
    sk_client_free(client);
}

static void test_abandoned_authenticating_job_does_not_block_others(void)
{
    /* no session yet: the first job authenticates for everyone */
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    sign_job *first, *others;

    CU_ASSERT_FATAL(client != NULL);
    first = new_jobs(client, 1);
    others = new_jobs(client, 5);
    CU_ASSERT_FATAL(first != NULL && others != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(step(first) == 1); /* paused in the authentication */
    abandon(first);
    CU_ASSERT_EQUAL(run_jobs(others, 5), 5);
    CU_ASSERT(all_signed(others, 5));
    /* the abandoned attempt and the one that replaced it */
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 2);
    wait_for_answers();
    free_jobs(first, 1);
    free_jobs(others, 5);
    sk_client_free(client);
}

static void test_client_free_with_a_request_in_flight_wakes_the_job(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    sign_job *jobs;
    OSSL_ASYNC_FD fd;
    size_t count = 1;
    struct pollfd p;

    CU_ASSERT_FATAL(client != NULL && warm_up(client));
    jobs = new_jobs(client, 1);
    CU_ASSERT_FATAL(jobs != NULL);
    CU_ASSERT_FATAL(emu_add_fault(&env, "{\"path\":\"/crypto/v1/sign\","
                                        "\"count\":1,\"action\":\"stall\","
                                        "\"seconds\":3}"));
    CU_ASSERT_FATAL(step(jobs) == 1);
    CU_ASSERT_FATAL(ASYNC_WAIT_CTX_get_all_fds(jobs->wctx, &fd, &count) &&
                    count == 1);
    /* the provider is unloaded: the I/O thread stops and fails the
       request; the application's poller sees the fd readable */
    sk_client_free(client);
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    CU_ASSERT(poll(&p, 1, POLL_LIMIT_MS) == 1);
    /* the application then frees the connection without resuming */
    abandon(jobs);
    free_jobs(jobs, 1);
    emu_clear_faults(&env);
    wait_for_answers();
}

static void test_forked_child_runs_jobs_on_a_fresh_engine(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    sign_job *jobs;
    int status = -1;
    pid_t pid;

    CU_ASSERT_FATAL(client != NULL && warm_up(client));
    jobs = new_jobs(client, 4);
    CU_ASSERT_FATAL(jobs != NULL);
    /* the parent's engine runs (and keeps connections) */
    CU_ASSERT_EQUAL(run_jobs(jobs, 4), 4);
    CU_ASSERT(all_signed(jobs, 4));
    free_jobs(jobs, 4);
    emu_reset_counters(&env);

    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        sign_job *mine = new_jobs(client, 16);
        int ok =
            mine != NULL && run_jobs(mine, 16) == 16 && all_signed(mine, 16);

        _exit(ok ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), 16);
    CU_ASSERT(emu_counter(&env, "max_in_flight") > 1);

    /* and the parent's engine goes on */
    jobs = new_jobs(client, 4);
    CU_ASSERT_EQUAL(run_jobs(jobs, 4), 4);
    CU_ASSERT(all_signed(jobs, 4));
    free_jobs(jobs, 4);
    sk_client_free(client);
}

/* ---- no file descriptors left (EMFILE) ---- */

/* The process may open no more files: RLIMIT_NOFILE is lowered to the
   lowest free descriptor plus `spare`, and every free one below it but
   `spare` is taken (dup of stdin). Undone by fds_restore. */
typedef struct fd_squeeze {
    struct rlimit saved;
    int held[1024];
    size_t count;
} fd_squeeze;

static int fds_exhaust(fd_squeeze *q, int spare)
{
    int lowest = dup(0);
    struct rlimit low;

    q->count = 0;
    if (lowest < 0 || getrlimit(RLIMIT_NOFILE, &q->saved) != 0)
        return 0;
    close(lowest);
    low = q->saved;
    low.rlim_cur = (rlim_t)lowest + (rlim_t)spare;
    if (setrlimit(RLIMIT_NOFILE, &low) != 0)
        return 0;
    for (int fd; q->count < 1024 && (fd = dup(0)) >= 0;)
        q->held[q->count++] = fd;
    /* leave `spare` free */
    for (int i = 0; i < spare && q->count > 0; i++)
        close(q->held[--q->count]);
    return 1;
}

static void fds_restore(fd_squeeze *q)
{
    while (q->count > 0)
        close(q->held[--q->count]);
    setrlimit(RLIMIT_NOFILE, &q->saved);
}

/* n jobs of a warmed-up client (its synchronous path's connection open
   and pooled), run while every fd but `spare` is taken; returns how many
   were paused at once (run_jobs). */
static int run_without_fds(sign_job **jobs, size_t n, int spare,
                           sk_client **client)
{
    fd_squeeze q;
    int paused;

    *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    *jobs = NULL;
    if (*client == NULL || !warm_up(*client) ||
        (*jobs = new_jobs(*client, n)) == NULL)
        return -2;
    emu_reset_counters(&env);
    if (!fds_exhaust(&q, spare))
        return -2;
    paused = run_jobs(*jobs, n);
    fds_restore(&q);
    return paused;
}

static void test_no_fd_for_the_wait_fd_signs_synchronously(void)
{
    sk_client *client;
    sign_job *jobs;

    /* never paused: no fd to wait on */
    CU_ASSERT_EQUAL_FATAL(run_without_fds(&jobs, 4, 0, &client), 0);
    CU_ASSERT(all_signed(jobs, 4));
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), 4);
    free_jobs(jobs, 4);
    sk_client_free(client);
}

static void test_no_fd_for_a_connection_fails_the_job_with_an_error(void)
{
    sk_client *client;
    sign_job *jobs;

    /* one fd left: the job's wait fd; the engine (new: no connection)
       gets no socket. The job had its wait fd, paused, and finished. */
    CU_ASSERT_EQUAL_FATAL(run_without_fds(&jobs, 1, 1, &client), 1);
    CU_ASSERT(!jobs[0].ok);
    CU_ASSERT(strstr(jobs[0].err.message, "no file descriptor left") != NULL);
    fprintf(stderr, "  %s\n", jobs[0].err.message);
    free_jobs(jobs, 1);
    sk_client_free(client);
}

/* ---- sessions, batching, retries, failover ---- */

static void test_reauth_while_jobs_are_paused_is_single_flight(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    sign_job *jobs;

    CU_ASSERT_FATAL(client != NULL);
    jobs = new_jobs(client, 50);
    CU_ASSERT_FATAL(jobs != NULL);
    emu_reset_counters(&env);
    /* no session: one job authenticates, 49 wait paused */
    CU_ASSERT_EQUAL(run_jobs(jobs, 50), 50);
    CU_ASSERT(all_signed(jobs, 50));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), 50);
    free_jobs(jobs, 50);

    /* the session expires under 50 paused jobs: one re-authentication */
    emu_expire_sessions(&env);
    emu_reset_counters(&env);
    jobs = new_jobs(client, 50);
    CU_ASSERT_FATAL(jobs != NULL);
    CU_ASSERT_EQUAL(run_jobs(jobs, 50), 50);
    CU_ASSERT(all_signed(jobs, 50));
    CU_ASSERT_EQUAL(emu_request_count(&env, AUTH_REQUEST), 1);
    free_jobs(jobs, 50);
    sk_client_free(client);
}

static void test_jobs_bypass_batching_and_sign_concurrently(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 16);
    sign_job *jobs;

    CU_ASSERT_FATAL(client != NULL && warm_up(client));
    jobs = new_jobs(client, 20);
    CU_ASSERT_FATAL(jobs != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_EQUAL(run_jobs(jobs, 20), 20);
    CU_ASSERT(all_signed(jobs, 20));
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), 20);
    CU_ASSERT(emu_request_count(&env, BATCH_SIGN_REQUEST) <= 0);
    CU_ASSERT(emu_counter(&env, "max_in_flight") > 1);
    free_jobs(jobs, 20);
    sk_client_free(client);
}

static void test_503_is_retried_after_a_paused_backoff(void)
{
    sk_client *client = client_with(env.endpoint, SK_AUTH_SESSION, 0, 0);
    sign_job *jobs;

    CU_ASSERT_FATAL(client != NULL && warm_up(client));
    jobs = new_jobs(client, 4);
    CU_ASSERT_FATAL(jobs != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_FATAL(emu_add_fault(&env, "{\"path\":\"/crypto/v1/sign\","
                                        "\"count\":2,\"action\":\"status\","
                                        "\"status\":503}"));
    CU_ASSERT_EQUAL(run_jobs(jobs, 4), 4);
    CU_ASSERT(all_signed(jobs, 4));
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), 6);
    emu_clear_faults(&env);
    free_jobs(jobs, 4);
    sk_client_free(client);
}

static void test_refused_node_fails_over_inside_jobs(void)
{
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof(addr);
    char endpoint[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sk_client *client;
    sign_job *jobs;

    /* a bound, never listening port refuses connections */
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(fd >= 0 &&
                    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
                    getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    snprintf(endpoint, sizeof(endpoint), "https://127.0.0.1:%d,%s",
             ntohs(addr.sin_port), env.endpoint);
    client = client_with(endpoint, SK_AUTH_SESSION, 0, 0);
    CU_ASSERT_FATAL(client != NULL);
    jobs = new_jobs(client, 8);
    CU_ASSERT_FATAL(jobs != NULL);
    emu_reset_counters(&env);
    CU_ASSERT_EQUAL(run_jobs(jobs, 8), 8);
    CU_ASSERT(all_signed(jobs, 8));
    CU_ASSERT_EQUAL(emu_request_count(&env, SIGN_REQUEST), 8);
    free_jobs(jobs, 8);
    sk_client_free(client);
    close(fd);
}

int main(void)
{
    static const cunit_test tests[] = {
        CUNIT_TEST(test_300_jobs_paused_at_once_in_one_thread_all_sign),
        CUNIT_TEST(test_cold_engine_connects_in_parallel_then_reuses),
        CUNIT_TEST(test_async_off_jobs_block_one_at_a_time),
        CUNIT_TEST(test_abandoned_job_late_answer_is_discarded),
        CUNIT_TEST(test_abandoned_authenticating_job_does_not_block_others),
        CUNIT_TEST(test_client_free_with_a_request_in_flight_wakes_the_job),
        CUNIT_TEST(test_forked_child_runs_jobs_on_a_fresh_engine),
        CUNIT_TEST(test_no_fd_for_the_wait_fd_signs_synchronously),
        CUNIT_TEST(test_no_fd_for_a_connection_fails_the_job_with_an_error),
        CUNIT_TEST(test_reauth_while_jobs_are_paused_is_single_flight),
        CUNIT_TEST(test_jobs_bypass_batching_and_sign_concurrently),
        CUNIT_TEST(test_503_is_retried_after_a_paused_backoff),
        CUNIT_TEST(test_refused_node_fails_over_inside_jobs),
    };

    return cunit_run("async", suite_init, suite_clean, tests,
                     CUNIT_COUNT(tests));
}
