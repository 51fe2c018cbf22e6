/*
 * approval = wait inside an OpenSSL ASYNC job (as HAProxy's ssl-mode-async
 * runs private-key operations): the job's signature needs a quorum
 * approval that async.sh (another process) gives a while later. Between
 * polls the job pauses on the provider's timer instead of sleeping in the
 * thread: while it is paused once, this same thread makes many signatures
 * with an unprotected key. A wait that blocked the thread would let at
 * most one through per pause (the pauses of the requests themselves).
 *
 * Usage: test_approval_async MODULE_DIR (endpoint, API key and CA from the
 * environment, SMARTKEY_APPROVAL=wait set by async.sh).
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "signers.h"
#include "test_common.h"

#define MAX_FDS 8

static int in_job(void *arg)
{
    int *ok = *(int **)arg;
    static const unsigned char msg[] = "signed inside an ASYNC job";

    *ok = tc_sign_and_verify(libctx, protected_key, protected_public, msg,
                             sizeof(msg) - 1);
    return *ok;
}

/* Until one of the job's fds is readable: signs with the free key in
   between (this thread is free while the job is paused). Returns the
   number of signatures made, -1 after 120 s without an event. */
static int serve_others_until_ready(ASYNC_WAIT_CTX *wctx, int *failures)
{
    static const unsigned char msg[] = "served while the job waits";
    OSSL_ASYNC_FD fds[MAX_FDS];
    struct pollfd pfds[MAX_FDS];
    size_t n = 0;
    int made = 0;

    if (!ASYNC_WAIT_CTX_get_all_fds(wctx, NULL, &n) || n == 0 || n > MAX_FDS ||
        !ASYNC_WAIT_CTX_get_all_fds(wctx, fds, &n))
        return 0; /* no fd: the job resumes at once */
    for (int rounds = 0; rounds < 120000; rounds++) {
        for (size_t i = 0; i < n; i++) {
            pfds[i].fd = fds[i];
            pfds[i].events = POLLIN;
        }
        if (poll(pfds, (nfds_t)n, 0) > 0)
            return made;
        if (tc_sign_and_verify(libctx, free_key, free_public, msg,
                               sizeof(msg) - 1))
            made++;
        else
            (*failures)++;
        poll(pfds, (nfds_t)n, 1);
    }
    return -1;
}

int main(int argc, char **argv)
{
    ASYNC_WAIT_CTX *wctx;
    ASYNC_JOB *job = NULL;
    int ok = 0, *okp = &ok, funcret = 0, ret, pauses = 0, most = 0, total = 0;
    int failures = 0;
    int failed;

    if ((failed = signers_load(argc, argv)) != 0)
        return failed;
    wctx = ASYNC_WAIT_CTX_new();
    if (wctx == NULL)
        return tc_setup_failed("cannot prepare the job");

    ret = ASYNC_start_job(&job, wctx, &funcret, in_job, &okp, sizeof(okp));
    while (ret == ASYNC_PAUSE) {
        int made = serve_others_until_ready(wctx, &failures);

        pauses++;
        if (made < 0)
            break;
        total += made;
        if (made > most)
            most = made;
        ret = ASYNC_start_job(&job, wctx, &funcret, in_job, &okp, sizeof(okp));
    }
    if (!ok)
        ERR_print_errors_fp(stderr);
    tc_check(ret == ASYNC_FINISH && ok,
             "the job's signature is made once approved and verifies");
    tc_check(pauses >= 4, "the job paused %d times (requests and waits)",
             pauses);
    tc_check(most >= 10,
             "while the job was paused once, this thread made %d other "
             "signatures (%d in all)",
             most, total);
    tc_check(failures == 0, "none of them failed (%d)", failures);
    ASYNC_WAIT_CTX_free(wctx);
    signers_free();
    return tc_report();
}
