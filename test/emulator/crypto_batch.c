/*
 * smartkey-emulator: /crypto/v1/keys/batch/{encrypt,decrypt,sign,verify}.
 *
 * Each item runs through the single-request handler; the call answers 200
 * with one result per item, in order (docs/smartkey-api.md §4.6).
 *
 * How SmartKey executes a batch's items is not documented (it is a cluster
 * service). Running them one after another on the thread that received the
 * request made a 60-item RSA batch cost 60 private-key operations on one
 * core, so batched latency looked much worse than unbatched: a quirk of this
 * emulator the provider must not be tuned to. So items are spread over
 * --batch-workers threads in all: the thread that received the request
 * plus a persistent pool of workers - 1 helpers shared by every batch.
 *
 * Why a persistent shared pool rather than threads per batch: starting
 * threads would cost every batch, and would multiply with concurrent
 * batches; the pool bounds the extra threads to workers - 1 however many
 * batches arrive, and spreading a batch only costs a wake-up. The receiving
 * thread claims items of its own batch too, so a batch always makes
 * progress even when every helper is busy with older batches.
 *
 * Latency, faults and request counters are applied per HTTP request by
 * http.c before the handler runs, never per item.
 */
#include "emulator.h"

#include <pthread.h>
#include <stdlib.h>

/* Bounds the work one request can cause (decision, see crypto.c). */
#define BATCH_MAX_ITEMS 1000

/* A lone item has nothing to run beside it; it stays on its thread. */
#define BATCH_SPREAD_MIN_ITEMS 2

/* A batch being answered. Everything but results is guarded by pool_lock;
   each results[i] is written by the one thread that claimed item i. */
typedef struct batch_job {
    const em_request *req;
    int keyed;
    em_handler handler;
    json_t *items;
    json_t **results;
    size_t count;
    size_t next_item; /* first unclaimed item */
    size_t answered;
    pthread_cond_t finished;
    struct batch_job *next;
} batch_job;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER;
static batch_job *pool_queue; /* jobs with unclaimed items, oldest first */
static pthread_t *pool_threads;
static unsigned pool_helpers;
static int pool_stopping;

/*
 * Encrypt/decrypt items are {"kid":..,"request":{..}} with the key omitted
 * from the inner request; sign/verify items are complete requests.
 */
static json_t *item_request(json_t *item, int keyed)
{
    json_t *kid, *inner, *request;

    if (!keyed)
        return json_incref(item);
    kid = json_object_get(item, "kid");
    inner = json_object_get(item, "request");
    if (!json_is_string(kid) || !json_is_object(inner))
        return NULL;
    request = json_copy(inner);
    if (request != NULL)
        json_object_set_new(request, "key", json_pack("{s:O}", "kid", kid));
    return request;
}

static json_t *item_result(em_response *item_resp)
{
    json_t *result = json_pack("{s:i}", "status", item_resp->status);

    if (item_resp->status >= 200 && item_resp->status < 300) {
        json_object_set(result, "body",
                        item_resp->json ? item_resp->json : json_null());
    } else if (item_resp->text != NULL) {
        json_object_set_new(result, "error", json_string(item_resp->text));
    } else {
        char *text = item_resp->json ? json_dumps(item_resp->json, 0) : NULL;

        json_object_set_new(result, "error",
                            json_string(text ? text : "Request failed"));
        free(text);
    }
    return result;
}

/*
 * Runs item i on the calling thread. The handlers are the ones MHD's thread
 * pool already calls concurrently; the request copy shares only read-only
 * state with its siblings (the caller's identity, and the connection, which
 * its own thread leaves alone while it waits for the batch).
 */
static void run_item(batch_job *job, size_t i)
{
    em_response item_resp = {0};
    em_request item_req = *job->req;

    item_req.json = item_request(json_array_get(job->items, i), job->keyed);
    item_req.body = NULL;
    item_req.body_len = 0;
    if (item_req.json == NULL)
        em_error(&item_resp, 400,
                 "Each item must be {\"kid\":..,\"request\":{..}}");
    else
        job->handler(&item_req, &item_resp);
    job->results[i] = item_result(&item_resp);
    json_decref(item_req.json);
    json_decref(item_resp.json);
    free(item_resp.text);
}

/* Under pool_lock: the next unclaimed item of job, or count when none is
   left. Claiming the last one takes the job off the queue. */
static size_t claim_item(batch_job *job)
{
    batch_job **p;
    size_t i = job->next_item;

    if (i >= job->count)
        return job->count;
    if (++job->next_item == job->count) {
        for (p = &pool_queue; *p != NULL; p = &(*p)->next)
            if (*p == job) {
                *p = job->next;
                break;
            }
    }
    return i;
}

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        batch_job *job;
        size_t i;

        while (!pool_stopping && pool_queue == NULL)
            pthread_cond_wait(&pool_work, &pool_lock);
        /* queued items are left to their own request threads */
        if (pool_stopping)
            break;
        job = pool_queue;
        i = claim_item(job);
        pthread_mutex_unlock(&pool_lock);
        run_item(job, i);
        pthread_mutex_lock(&pool_lock);
        /* the job lives on its request thread's stack: not touched after
           the answered count reaches count and the lock is released */
        if (++job->answered == job->count)
            pthread_cond_signal(&job->finished);
    }
    pthread_mutex_unlock(&pool_lock);
    return NULL;
}

int em_batch_start(unsigned workers)
{
    unsigned i;

    if (workers <= 1)
        return 1;
    pool_threads = calloc(workers - 1, sizeof(*pool_threads));
    if (pool_threads == NULL)
        return 0;
    pool_stopping = 0;
    for (i = 0; i < workers - 1; i++) {
        if (pthread_create(&pool_threads[i], NULL, helper_main, NULL) != 0) {
            em_batch_stop();
            return 0;
        }
        pool_helpers++;
    }
    return 1;
}

void em_batch_stop(void)
{
    unsigned i;

    pthread_mutex_lock(&pool_lock);
    pool_stopping = 1;
    pthread_cond_broadcast(&pool_work);
    pthread_mutex_unlock(&pool_lock);
    for (i = 0; i < pool_helpers; i++)
        pthread_join(pool_threads[i], NULL);
    pthread_mutex_lock(&pool_lock);
    free(pool_threads);
    pool_threads = NULL;
    pool_helpers = 0;
    pthread_mutex_unlock(&pool_lock);
}

/* Answers every item of job, with the helpers when there are any. */
static void run_items(batch_job *job)
{
    size_t i;
    int spread;

    pthread_mutex_lock(&pool_lock);
    spread = pool_helpers > 0 && !pool_stopping &&
             job->count >= BATCH_SPREAD_MIN_ITEMS;
    pthread_mutex_unlock(&pool_lock);
    if (!spread) {
        for (i = 0; i < job->count; i++)
            run_item(job, i);
        return;
    }
    pthread_cond_init(&job->finished, NULL);
    pthread_mutex_lock(&pool_lock);
    {
        batch_job **tail = &pool_queue;

        while (*tail != NULL)
            tail = &(*tail)->next;
        job->next = NULL;
        *tail = job;
    }
    pthread_cond_broadcast(&pool_work);
    while ((i = claim_item(job)) < job->count) {
        pthread_mutex_unlock(&pool_lock);
        run_item(job, i);
        pthread_mutex_lock(&pool_lock);
        job->answered++;
    }
    while (job->answered < job->count)
        pthread_cond_wait(&job->finished, &pool_lock);
    pthread_mutex_unlock(&pool_lock);
    pthread_cond_destroy(&job->finished);
}

static int run_batch(em_request *req, em_response *resp, int keyed,
                     em_handler handler)
{
    batch_job job = {0};
    json_t *results;
    size_t i;

    if (!json_is_array(req->json))
        return em_error(resp, 400, "The request body must be a JSON array");
    if (json_array_size(req->json) > BATCH_MAX_ITEMS)
        return em_error(resp, 400, "A batch holds at most %d items (got %zu)",
                        BATCH_MAX_ITEMS, json_array_size(req->json));
    job.req = req;
    job.keyed = keyed;
    job.handler = handler;
    job.items = req->json;
    job.count = json_array_size(req->json);
    job.results = calloc(job.count ? job.count : 1, sizeof(*job.results));
    if (job.results == NULL)
        return em_error(resp, 500, "Out of memory");
    run_items(&job);
    results = json_array();
    for (i = 0; i < job.count; i++)
        json_array_append_new(results, job.results[i]);
    free(job.results);
    return em_json(resp, 200, results);
}

int em_h_batch_encrypt(em_request *req, em_response *resp)
{
    return run_batch(req, resp, 1, em_h_encrypt);
}

int em_h_batch_decrypt(em_request *req, em_response *resp)
{
    return run_batch(req, resp, 1, em_h_decrypt);
}

int em_h_batch_sign(em_request *req, em_response *resp)
{
    return run_batch(req, resp, 0, em_h_sign);
}

int em_h_batch_verify(em_request *req, em_response *resp)
{
    return run_batch(req, resp, 0, em_h_verify);
}
