/*
 * The request engine's asynchronous transport: one I/O thread per client
 * drives a libcurl multi handle; jobs submit requests and pause on an
 * eventfd (see engine.h for the ownership rules).
 *
 * Locking: engine->lock guards the submission queue, the idle handles and
 * the stop flag; it is never held across a libcurl call. Everything else
 * (the multi handle, the requests on the wire, the timers) belongs to the
 * I/O thread alone.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/crypto.h>
#include "client.h"
#include "engine.h"

#define ENGINE_IDLE_HANDLES 256
/* the longest the I/O thread sleeps without a reason to wake */
#define POLL_MAX_MS 1000

struct sk_async_slot {
    int fd; /* eventfd */
    int refs;
    pid_t pid;
    int auth_owner;
    sk_engine_req *pending; /* the request its job waits for, or NULL */
};

typedef struct req_private {
    int refs; /* the job, the engine */
    int done;
    sk_async_slot *slot;
    double due; /* timers: monotonic seconds */
    pid_t pid;  /* the process of the engine that took it */
    struct sk_engine_req *next;
} req_private;

/* sk_engine_req with the engine's part behind it */
typedef struct req_full {
    sk_engine_req pub;
    req_private priv;
} req_full;

#define PRIV(r) (&((req_full *)(r))->priv)

struct sk_engine {
    pthread_mutex_t lock;
    pid_t pid;
    pthread_t thread;
    CURLM *multi;
    int stop;
    sk_engine_req *queue, *queue_tail; /* submitted, not yet taken */
    CURL *idle[ENGINE_IDLE_HANDLES];
    size_t idle_count;
    /* the I/O thread's own */
    sk_engine_req *active; /* in the multi handle */
    sk_engine_req *timers;
};

/* ---- slots: one eventfd per ASYNC_WAIT_CTX ---- */

/* the key of our fd in a wait context: the address of this object */
static const char slot_key = 0;

void sk_async_slot_ref(sk_async_slot *slot)
{
    __atomic_add_fetch(&slot->refs, 1, __ATOMIC_RELAXED);
}

void sk_async_slot_unref(sk_async_slot *slot)
{
    if (slot == NULL || __atomic_sub_fetch(&slot->refs, 1, __ATOMIC_ACQ_REL))
        return;
    /* A parent's fd in a forked child is the child's copy: closing it is
       right in both. */
    close(slot->fd);
    OPENSSL_free(slot);
}

void sk_async_signal(sk_async_slot *slot)
{
    uint64_t one = 1;

    /* EAGAIN only when the counter is about to overflow: readable anyway */
    while (write(slot->fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void sk_async_drain(sk_async_slot *slot)
{
    uint64_t value;

    while (read(slot->fd, &value, sizeof(value)) < 0 && errno == EINTR)
        ;
}

void sk_async_pause(sk_async_slot *slot)
{
    struct pollfd p = {slot->fd, POLLIN, 0};

    ASYNC_pause_job();
    /* Resumed before the fd became readable: pausing is blocked
       (ASYNC_block_pause) or the application resumes blindly. Waiting
       here keeps it correct (and synchronous for this job). */
    if (poll(&p, 1, 0) == 0)
        while (poll(&p, 1, -1) < 0 && errno == EINTR)
            ;
}

void sk_async_announce(sk_async_slot *slot)
{
    sk_async_signal(slot);
    sk_async_pause(slot);
    sk_async_drain(slot);
}

void sk_async_slot_set_auth_owner(sk_async_slot *slot, int yes)
{
    __atomic_store_n(&slot->auth_owner, yes, __ATOMIC_RELEASE);
}

static void req_unref(sk_engine_req *req);

/* The wait context is freed: its job will never run again. */
static void slot_cleanup(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd,
                         void *custom)
{
    sk_async_slot *slot = custom;
    sk_engine_req *pending;

    (void)ctx;
    (void)key;
    (void)fd;
    pending = __atomic_exchange_n(&slot->pending, NULL, __ATOMIC_ACQ_REL);
    if (pending != NULL)
        req_unref(pending); /* the abandoned job's reference */
    if (__atomic_load_n(&slot->auth_owner, __ATOMIC_ACQUIRE))
        sk_client_slot_gone(slot);
    sk_async_slot_unref(slot);
}

sk_async_slot *sk_async_slot_current(void)
{
    ASYNC_JOB *job = ASYNC_get_current_job();
    ASYNC_WAIT_CTX *ctx;
    OSSL_ASYNC_FD fd;
    void *custom = NULL;
    sk_async_slot *slot;

    if (job == NULL || (ctx = ASYNC_get_wait_ctx(job)) == NULL)
        return NULL;
    if (ASYNC_WAIT_CTX_get_fd(ctx, &slot_key, &fd, &custom) && custom != NULL) {
        slot = custom;
        /* A wait context inherited from the parent process: its eventfd
           is shared with the parent, whose wake-ups this process could
           swallow. Synchronous here. */
        return slot->pid == getpid() ? slot : NULL;
    }
    slot = OPENSSL_zalloc(sizeof(*slot));
    if (slot == NULL)
        return NULL;
    /* HAProxy reserves no fds for wait fds: under load this may fail with
       EMFILE, and the call is then made synchronously. */
    slot->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (slot->fd < 0) {
        OPENSSL_free(slot);
        return NULL;
    }
    slot->refs = 1; /* the wait context's */
    slot->pid = getpid();
    if (!ASYNC_WAIT_CTX_set_wait_fd(ctx, &slot_key, slot->fd, slot,
                                    slot_cleanup)) {
        close(slot->fd);
        OPENSSL_free(slot);
        return NULL;
    }
    return slot;
}

/* ---- requests ---- */

sk_engine_req *sk_engine_req_new(void)
{
    req_full *r = OPENSSL_zalloc(sizeof(*r));

    return r != NULL ? &r->pub : NULL;
}

static void req_free(sk_engine_req *req)
{
    req_private *p = PRIV(req);

    for (struct curl_slist *h = req->headers; h != NULL; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(req->headers);
    if (req->body != NULL)
        OPENSSL_clear_free(req->body, req->body_len);
    if (req->answer != NULL && req->answer_free != NULL)
        req->answer_free(req->answer);
    /* only when the handle never reached the engine */
    if (req->handle != NULL)
        curl_easy_cleanup(req->handle);
    sk_async_slot_unref(p->slot);
    OPENSSL_free(req);
}

static void req_unref(sk_engine_req *req)
{
    if (__atomic_sub_fetch(&PRIV(req)->refs, 1, __ATOMIC_ACQ_REL) == 0)
        req_free(req);
}

void sk_engine_req_release(sk_engine_req *req)
{
    req_private *p;

    if (req == NULL)
        return;
    p = PRIV(req);
    if (p->slot == NULL) { /* never submitted: the caller's alone */
        req_free(req);
        return;
    }
    if (__atomic_exchange_n(&p->slot->pending, NULL, __ATOMIC_ACQ_REL) != req)
        return; /* already let go by the slot's cleanup */
    req_unref(req);
}

/* ---- the I/O thread ---- */

static void give_back_handle(sk_engine *e, CURL *handle)
{
    pthread_mutex_lock(&e->lock);
    if (e->idle_count < ENGINE_IDLE_HANDLES) {
        e->idle[e->idle_count++] = handle;
        handle = NULL;
    }
    pthread_mutex_unlock(&e->lock);
    if (handle != NULL)
        curl_easy_cleanup(handle);
}

CURL *sk_engine_handle(sk_engine *e)
{
    CURL *handle = NULL;

    pthread_mutex_lock(&e->lock);
    if (e->idle_count > 0)
        handle = e->idle[--e->idle_count];
    pthread_mutex_unlock(&e->lock);
    return handle != NULL ? handle : curl_easy_init();
}

/* The request is over (answer, error or engine stop): its job may go on. */
static void finish(sk_engine *e, sk_engine_req *req, CURLcode rc)
{
    req_private *p = PRIV(req);
    CURL *h = req->handle;

    req->rc = rc;
    if (h != NULL) {
        curl_multi_remove_handle(e->multi, h);
        if (rc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &req->status);
        else if (curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE,
                                   &req->request_bytes) != CURLE_OK)
            req->request_bytes = 1; /* unknown: assume it was sent */
        /* the header list and the buffers go with the request */
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(h, CURLOPT_PRIVATE, NULL);
        req->handle = NULL;
        give_back_handle(e, h);
    }
    __atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
    sk_async_signal(p->slot);
    req_unref(req); /* the engine's reference */
}

static void fail_list(sk_engine *e, sk_engine_req *list)
{
    while (list != NULL) {
        sk_engine_req *next = PRIV(list)->next;

        if (list->errbuf[0] == '\0')
            strcpy(list->errbuf, "the SmartKey provider is being unloaded");
        finish(e, list, CURLE_ABORTED_BY_CALLBACK);
        list = next;
    }
}

static void unlink_req(sk_engine_req **list, sk_engine_req *req)
{
    for (; *list != NULL; list = &PRIV(*list)->next)
        if (*list == req) {
            *list = PRIV(req)->next;
            return;
        }
}

/* Takes the submitted requests: transfers join the multi handle, delays
   the timers. Returns the stop flag. */
static int take_submissions(sk_engine *e)
{
    sk_engine_req *batch, *req, *next;
    int stop;

    pthread_mutex_lock(&e->lock);
    batch = e->queue;
    e->queue = e->queue_tail = NULL;
    stop = e->stop;
    pthread_mutex_unlock(&e->lock);

    for (req = batch; req != NULL; req = next) {
        req_private *p = PRIV(req);

        next = p->next;
        if (req->handle == NULL) {
            p->next = e->timers;
            e->timers = req;
        } else if (curl_easy_setopt(req->handle, CURLOPT_PRIVATE, req) !=
                       CURLE_OK ||
                   curl_multi_add_handle(e->multi, req->handle) != CURLM_OK) {
            p->next = NULL;
            finish(e, req, CURLE_OUT_OF_MEMORY);
        } else {
            p->next = e->active;
            e->active = req;
        }
    }
    return stop;
}

/* Drives the transfers and finishes those that are done. */
static void perform_transfers(sk_engine *e)
{
    CURLMsg *msg;
    int running, left;

    curl_multi_perform(e->multi, &running);
    while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
        char *priv = NULL;
        sk_engine_req *req;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        req = (sk_engine_req *)priv;
        if (req == NULL)
            continue;
        unlink_req(&e->active, req);
        finish(e, req, msg->data.result);
    }
}

/* Finishes the delays that are due; returns how long the poll may sleep
   before the next one. */
static int run_timers(sk_engine *e)
{
    sk_engine_req *req, *next;
    int timeout_ms = POLL_MAX_MS;
    double now = sk_now_seconds();

    for (req = e->timers; req != NULL; req = next) {
        next = PRIV(req)->next;
        if (PRIV(req)->due <= now) {
            unlink_req(&e->timers, req);
            finish(e, req, CURLE_OK);
        } else {
            double ms = (PRIV(req)->due - now) * 1000 + 1;

            if (ms < timeout_ms)
                timeout_ms = (int)ms;
        }
    }
    return timeout_ms;
}

static void *io_thread(void *arg)
{
    sk_engine *e = arg;

    while (!take_submissions(e)) {
        int timeout_ms;

        perform_transfers(e);
        timeout_ms = run_timers(e);
        /* woken early by curl_multi_wakeup (a submission, the stop) */
        curl_multi_poll(e->multi, NULL, 0, timeout_ms, NULL);
    }

    /* stopping: every request still here fails, its fd becomes readable */
    fail_list(e, e->active);
    e->active = NULL;
    fail_list(e, e->timers);
    e->timers = NULL;
    return NULL;
}

sk_engine *sk_engine_new(void)
{
    sk_engine *e = OPENSSL_zalloc(sizeof(*e));

    if (e == NULL)
        return NULL;
    e->multi = curl_multi_init();
    if (e->multi == NULL) {
        OPENSSL_free(e);
        return NULL;
    }
    /* Keep as many connections as the pool of the synchronous path. No
       CURLMOPT_MAX_HOST_CONNECTIONS or MAX_TOTAL_CONNECTIONS (unlimited)
       and no PIPEWAIT (HTTP/1.1): a handle that finds no idle connection
       opens its own at once, so paused jobs on a cold engine connect in
       parallel instead of queueing for each other's connections. */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
                      (long)ENGINE_IDLE_HANDLES);
    pthread_mutex_init(&e->lock, NULL);
    e->pid = getpid();
    if (pthread_create(&e->thread, NULL, io_thread, e) != 0) {
        curl_multi_cleanup(e->multi);
        pthread_mutex_destroy(&e->lock);
        OPENSSL_free(e);
        return NULL;
    }
    return e;
}

int sk_engine_is_ours(const sk_engine *e)
{
    return e->pid == getpid();
}

void sk_engine_fork_prepare(sk_engine *e)
{
    pthread_mutex_lock(&e->lock);
}

void sk_engine_fork_release(sk_engine *e)
{
    pthread_mutex_unlock(&e->lock);
}

void sk_engine_free(sk_engine *e)
{
    if (e == NULL)
        return;
    if (!sk_engine_is_ours(e))
        return; /* the parent's: its thread, connections and requests stay
                   the parent's; a job here that waits on one gives up
                   (sk_engine_run checks the process) */
    pthread_mutex_lock(&e->lock);
    e->stop = 1;
    pthread_mutex_unlock(&e->lock);
    curl_multi_wakeup(e->multi);
    pthread_join(e->thread, NULL);
    /* submitted after the thread's last look at the queue */
    fail_list(e, e->queue);
    e->queue = NULL;
    for (size_t i = 0; i < e->idle_count; i++)
        curl_easy_cleanup(e->idle[i]);
    curl_multi_cleanup(e->multi);
    pthread_mutex_destroy(&e->lock);
    OPENSSL_free(e);
}

int sk_engine_run(sk_engine *e, sk_async_slot *slot, sk_engine_req *req)
{
    req_private *p = PRIV(req);
    int stopping;

    p->slot = slot;
    sk_async_slot_ref(slot);
    p->refs = 2; /* the job, the engine */
    p->pid = e->pid;
    if (req->handle == NULL)
        p->due = sk_now_seconds() + (double)req->delay_ms / 1000.0;
    __atomic_store_n(&slot->pending, req, __ATOMIC_RELEASE);

    pthread_mutex_lock(&e->lock);
    stopping = e->stop;
    if (!stopping) {
        if (e->queue_tail != NULL)
            PRIV(e->queue_tail)->next = req;
        else
            e->queue = req;
        e->queue_tail = req;
    }
    pthread_mutex_unlock(&e->lock);
    if (stopping) {
        __atomic_store_n(&slot->pending, NULL, __ATOMIC_RELEASE);
        p->refs = 0;
        req_free(req);
        return 0;
    }
    curl_multi_wakeup(e->multi);

    /* Paused at least once, even when the answer is already in: the
       application learns of the fd only at a pause (SSL_ERROR_WANT_ASYNC),
       and HAProxy removes from its poller, at close, every fd of the wait
       context, whether it had seen it or not. */
    for (;;) {
        sk_async_pause(slot);
        sk_async_drain(slot);
        if (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE))
            return 1;
        if (p->pid != getpid()) {
            /* resumed in a child: the parent's engine will never answer
               here */
            req->rc = CURLE_ABORTED_BY_CALLBACK;
            strcpy(req->errbuf, "the process forked while the request was "
                                "in flight");
            return 1;
        }
    }
}
