/*
 * 8 threads of one process sign with a key whose group asks a quorum of 2,
 * with approval = wait (SMARTKEY_APPROVAL=wait, set by threads.sh); each
 * waits for its own approval request, which threads.sh (another process)
 * approves twice. A ninth thread keeps signing with an unprotected key
 * meanwhile: no lock is held while waiting. Every signature verifies.
 *
 * Usage: test_approval_threads MODULE_DIR (the endpoint, API key and CA
 * come from the environment, as for the CLI).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "signers.h"
#include "test_common.h"

#define WAITERS 8

static atomic_int waiters_done, free_signatures, free_failures;
static atomic_int free_before_first_approval = -1;

typedef struct waiter {
    int index;
    int ok;
} waiter;

static void *wait_and_sign(void *arg)
{
    waiter *w = arg;
    char msg[64];

    snprintf(msg, sizeof(msg), "release %d, signed under a quorum", w->index);
    w->ok = tc_sign_and_verify(libctx, protected_key, protected_public,
                               (const unsigned char *)msg, strlen(msg));
    if (!w->ok)
        ERR_print_errors_fp(stderr);
    /* the first one back: how much the other thread did meanwhile */
    if (atomic_fetch_add(&waiters_done, 1) == 0)
        atomic_store(&free_before_first_approval,
                     atomic_load(&free_signatures));
    return NULL;
}

static void *keep_signing(void *arg)
{
    (void)arg;
    while (atomic_load(&waiters_done) < WAITERS) {
        static const unsigned char msg[] = "an unprotected key";

        if (tc_sign_and_verify(libctx, free_key, free_public, msg,
                               sizeof(msg) - 1))
            atomic_fetch_add(&free_signatures, 1);
        else
            atomic_fetch_add(&free_failures, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[WAITERS], other;
    waiter waiters[WAITERS];
    int all = 1;
    int failed;

    if ((failed = signers_load(argc, argv)) != 0)
        return failed;

    pthread_create(&other, NULL, keep_signing, NULL);
    for (int i = 0; i < WAITERS; i++) {
        waiters[i].index = i;
        waiters[i].ok = 0;
        pthread_create(&threads[i], NULL, wait_and_sign, &waiters[i]);
    }
    for (int i = 0; i < WAITERS; i++) {
        pthread_join(threads[i], NULL);
        all &= waiters[i].ok;
    }
    pthread_join(other, NULL);

    tc_check(all,
             "%d threads waiting for approvals: every signature made "
             "and verified",
             WAITERS);
    tc_check(atomic_load(&free_before_first_approval) > 0,
             "another thread signed %d times with an unprotected key while "
             "they waited",
             atomic_load(&free_before_first_approval));
    tc_check(atomic_load(&free_failures) == 0,
             "none of its signatures failed (%d)", atomic_load(&free_failures));
    signers_free();
    return tc_report();
}
