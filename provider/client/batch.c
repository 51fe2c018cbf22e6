/*
 * Batching: many threads signing (or decrypting) at once, e.g. the workers
 * of a TLS server under load, share one HTTP request per batch instead of
 * one each.
 *
 * A call that finds no batch of its kind on the wire is sent at once,
 * alone, through the single-item endpoint: a lone caller never waits and
 * sees exactly the unbatched behaviour. Calls that arrive while a batch is
 * on the wire queue up; the first of them leads: it waits until max_size
 * calls are queued or max_wait has passed, detaches up to max_size of them,
 * unlocks, sends them as one batch, then hands every caller its own result
 * under the lock. No lock is held across the network call.
 *
 * Every caller sleeps on a condition variable of its own and is woken only
 * when its result is there or it is its turn to lead: with one shared
 * condition, each batch would wake every waiting thread of a busy server.
 *
 * A failed item (status and text in the batch answer) fails only its own
 * call; a failed batch request fails the calls it carried.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "batch.h"
#include "internal.h"

#define DEFAULT_MAX_WAIT_US 1000

typedef struct batch_item {
    /* the batch endpoint's item for this call (JSON text): the body itself
       (sign) or one made for it (decrypt, owned) */
    const char *item;
    size_t item_len;
    char *owned;
    int done;
    int ok;
    json_t *body; /* the item's answer body on success */
    sk_error err;
    pthread_cond_t wake; /* its result is there, or it is to lead */
    struct batch_item *next;
} batch_item;

typedef struct batch_queue {
    const char *path;           /* the single-call endpoint */
    const char *batch_path;     /* its batch endpoint */
    const char *request;        /* names the batch call in errors */
    const char *single_request; /* names the single call */
    int keyed;                  /* items are {"kid","request"} (decrypt) */
    batch_item *head, **tail;
    size_t queued;
    int in_flight;      /* calls or batches on the wire */
    double last_queued; /* when the newest call joined, monotonic µs */
    batch_item *leader; /* collecting the next batch; NULL: none */
} batch_queue;

struct sk_batcher {
    unsigned max_size;
    long max_wait_us;
    pthread_mutex_t lock;
    batch_queue sign, decrypt;
};

static void queue_init(batch_queue *q, const char *path, const char *batch_path,
                       const char *request, const char *single_request,
                       int keyed)
{
    *q = (batch_queue){.path = path,
                       .batch_path = batch_path,
                       .request = request,
                       .single_request = single_request,
                       .keyed = keyed};
    q->tail = &q->head;
}

/* Empty queues (the other fields of a queue are zero). */
static void reset_queues(sk_batcher *b)
{
    queue_init(&b->sign, "/crypto/v1/sign", "/crypto/v1/keys/batch/sign",
               "POST /crypto/v1/keys/batch/sign", "POST /crypto/v1/sign", 0);
    queue_init(
        &b->decrypt, "/crypto/v1/decrypt", "/crypto/v1/keys/batch/decrypt",
        "POST /crypto/v1/keys/batch/decrypt", "POST /crypto/v1/decrypt", 1);
}

sk_batcher *sk_batcher_new(unsigned max_size, long max_wait_us)
{
    sk_batcher *b;

    if (max_size <= 1)
        return NULL;
    b = OPENSSL_zalloc(sizeof(*b));
    if (b == NULL)
        return NULL;
    b->max_size = max_size;
    b->max_wait_us = max_wait_us > 0 ? max_wait_us : DEFAULT_MAX_WAIT_US;
    pthread_mutex_init(&b->lock, NULL);
    reset_queues(b);
    return b;
}

void sk_batcher_free(sk_batcher *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->lock);
    OPENSSL_free(b);
}

/* The client's fork handlers (pool.c) call these with the client's lock
   held: the lock is held across fork(), so the child finds it in a known
   state. A forked child has none of the parent's other threads: their
   queued calls and batches on the wire will never finish there, so its
   queues start empty. */
void sk_batcher_at_fork(sk_batcher *b, sk_fork_stage stage)
{
    if (b == NULL)
        return;
    if (stage == SK_FORK_PREPARE) {
        pthread_mutex_lock(&b->lock);
        return;
    }
    if (stage == SK_FORK_CHILD)
        reset_queues(b);
    pthread_mutex_unlock(&b->lock);
}

/* The batch endpoint's item for a single-call body into it; 0 when this
   call cannot be batched (or on no memory). */
static int make_item(const batch_queue *q, const sk_request_body *body,
                     batch_item *it)
{
    sk_json_text t = {0};

    if (!q->keyed) {
        it->item = body->text;
        it->item_len = body->len;
        return 1;
    }
    /* decrypt items name their key by kid only (docs/smartkey-api.md §4.6):
       {"kid":K,"request":{<the body's members after the key>} */
    if (body->kid == NULL)
        return 0;
    sk_json_text_raw(&t, "{\"kid\":");
    sk_json_text_string(&t, body->kid);
    sk_json_text_raw(&t, ",\"request\":{");
    sk_json_text_raw(&t, body->text + body->rest);
    sk_json_text_raw(&t, "}");
    it->owned = sk_json_text_finish(&t, &it->item_len);
    it->item = it->owned;
    return it->owned != NULL;
}

static void free_item(batch_item *it)
{
    if (it->owned != NULL)
        OPENSSL_clear_free(it->owned, it->item_len + 1);
    it->owned = NULL;
    it->item = NULL;
}

/* Decrypt answers hold plaintext (Base64) in jansson's strings, and a
   request body may hold secrets too: every string of value (objects and
   arrays included) is wiped before jansson frees it. */
static void wipe_json(json_t *value)
{
    const char *name;
    json_t *member;
    size_t i;

    if (json_is_string(value)) {
        OPENSSL_cleanse((char *)json_string_value(value),
                        json_string_length(value));
    } else if (json_is_object(value)) {
        json_object_foreach(value, name, member)
        {
            wipe_json(member);
        }
    } else if (json_is_array(value)) {
        json_array_foreach(value, i, member)
        {
            wipe_json(member);
        }
    }
}

static sk_err_kind item_kind(long status, const char *text)
{
    if (status == 403 && text != NULL &&
        strstr(text, "requires approval") != NULL)
        return SK_ERR_APPROVAL;
    switch (status) {
    case 401:
        return SK_ERR_AUTH;
    case 403:
        return SK_ERR_FORBIDDEN;
    case 404:
        return SK_ERR_NOT_FOUND;
    case 429:
        return SK_ERR_THROTTLED;
    default:
        return status >= 500 ? SK_ERR_SERVER : SK_ERR_BAD_REQUEST;
    }
}

/* Reads one result of a batch answer into its item. */
static void read_result(const batch_queue *q, json_t *result, batch_item *it)
{
    json_t *status = json_object_get(result, "status");
    json_t *error = json_object_get(result, "error");
    json_t *body = json_object_get(result, "body");

    if (!json_is_object(result) ||
        (status != NULL && !json_is_integer(status))) {
        sk_error_set(&it->err, SK_ERR_PROTOCOL, q->request,
                     "malformed item in the batch answer");
        return;
    }
    if (error != NULL && !json_is_null(error)) {
        const char *text = json_string_value(error);
        long code = status != NULL ? (long)json_integer_value(status) : 0;

        sk_error_set(&it->err, item_kind(code, text), q->request, "item");
        it->err.http_status = code;
        if (text != NULL)
            sk_error_set_text(&it->err, text, strlen(text));
        return;
    }
    if (!json_is_object(body)) {
        sk_error_set(&it->err, SK_ERR_PROTOCOL, q->request,
                     "batch item without an answer body");
        return;
    }
    it->body = json_incref(body);
    it->ok = 1;
}

/* Sends the detached items as one batch; fills each item's result. */
static void send_batch(sk_client *client, const batch_queue *q,
                       batch_item *items, size_t count)
{
    sk_json_text t = {0};
    json_t *answer = NULL;
    char *array;
    size_t i, len = 0;
    batch_item *it;
    sk_error err;

    sk_error_clear(&err);
    /* the items' texts joined into one JSON array */
    sk_json_text_raw(&t, "[");
    for (it = items; it != NULL; it = it->next) {
        sk_json_text_raw(&t, it->item);
        sk_json_text_raw(&t, it->next != NULL ? "," : "]");
    }
    array = sk_json_text_finish(&t, &len);
    if (array == NULL) {
        sk_error_set(&err, SK_ERR_NOMEM, q->request, "out of memory");
    } else if (sk_http_text(client, "POST", q->batch_path, q->request, array,
                            len, 0, SK_HTTP_IDEMPOTENT, &answer, &err) &&
               (!json_is_array(answer) || json_array_size(answer) != count)) {
        sk_error_set(&err, SK_ERR_PROTOCOL, q->request,
                     "the answer does not hold one result per item");
    }
    if (array != NULL)
        OPENSSL_clear_free(array, len + 1);
    for (i = 0, it = items; it != NULL; it = it->next, i++) {
        sk_error_clear(&it->err);
        if (err.kind != SK_ERR_NONE)
            it->err = err;
        else
            read_result(q, json_array_get(answer, i), it);
    }
    /* a refused answer may still hold plaintexts no caller takes; the
       bodies callers took are wiped by them (sk_batch_call) */
    if (err.kind != SK_ERR_NONE)
        wipe_json(answer);
    json_decref(answer);
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static struct timespec at_us(double us)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(us / 1e6);
    ts.tv_nsec = (long)((us - (double)ts.tv_sec * 1e6) * 1e3);
    return ts;
}

/* A call or batch left the wire: the leader stops waiting for companions
   once nothing is on the wire any more. Called with the lock held. */
static void wire_freed(batch_queue *q)
{
    q->in_flight--;
    if (q->in_flight == 0 && q->leader != NULL)
        pthread_cond_signal(&q->leader->wake);
}

/* Called with the lock held, by the caller at the head of the queue, which
   leads the next batch; returns with the lock held and every detached item
   done. */
static void lead(sk_client *client, sk_batcher *b, batch_queue *q,
                 batch_item *self)
{
    double started = now_us(), deadline = started + (double)b->max_wait_us;
    /* Companions that come at once (the threads of a busy server) keep
       the batch open until max_wait; once none has come for a quarter of
       it, waiting longer would only add latency. */
    double idle = (double)b->max_wait_us / 4;
    batch_item *items, **link;
    size_t count = 0;

    q->leader = self;
    while (q->queued < b->max_size && q->in_flight > 0) {
        double last = q->last_queued > started ? q->last_queued : started;
        double until = last + idle < deadline ? last + idle : deadline;
        struct timespec ts;

        if (now_us() >= until)
            break;
        ts = at_us(until);
        pthread_cond_timedwait(&self->wake, &b->lock, &ts);
    }
    items = q->head;
    for (link = &q->head; *link != NULL && count < b->max_size; count++)
        link = &(*link)->next;
    q->head = *link;
    *link = NULL;
    if (q->head == NULL)
        q->tail = &q->head;
    q->queued -= count;
    q->leader = NULL;
    q->in_flight++;
    /* the next caller in line collects the next batch meanwhile */
    if (q->head != NULL)
        pthread_cond_signal(&q->head->wake);
    pthread_mutex_unlock(&b->lock);

    send_batch(client, q, items, count);

    pthread_mutex_lock(&b->lock);
    for (batch_item *it = items; it != NULL; it = it->next) {
        it->done = 1;
        if (it != self)
            pthread_cond_signal(&it->wake);
    }
    wire_freed(q);
}

static int queue_and_wait(sk_client *client, sk_batcher *b, batch_queue *q,
                          batch_item *it)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&it->wake, &attr);
    pthread_condattr_destroy(&attr);
    *q->tail = it;
    q->tail = &it->next;
    q->queued++;
    q->last_queued = now_us();
    if (q->queued >= b->max_size && q->leader != NULL)
        pthread_cond_signal(&q->leader->wake);
    while (!it->done) {
        if (q->leader == NULL && q->head == it)
            lead(client, b, q, it);
        else
            pthread_cond_wait(&it->wake, &b->lock);
    }
    pthread_cond_destroy(&it->wake);
    return it->ok;
}

int sk_batch_call(sk_client *client, const char *path,
                  const sk_request_body *body, const char *field,
                  unsigned char **out, size_t *out_len, sk_error *err)
{
    sk_batcher *b = sk_client_batcher(client);
    batch_queue *q;
    batch_item it;
    json_t *answer = NULL;
    int ok;

    if (b == NULL)
        return -1;
    if (strcmp(path, b->sign.path) == 0)
        q = &b->sign;
    else if (strcmp(path, b->decrypt.path) == 0)
        q = &b->decrypt;
    else
        return -1;
    memset(&it, 0, sizeof(it));
    if (!make_item(q, body, &it))
        return -1;

    pthread_mutex_lock(&b->lock);
    if (q->in_flight == 0 && q->head == NULL) {
        /* nothing on the wire: no one to share a request with */
        q->in_flight++;
        pthread_mutex_unlock(&b->lock);
        free_item(&it);
        ok = sk_http_text(client, "POST", path, q->single_request, body->text,
                          body->len, body->session_only, SK_HTTP_IDEMPOTENT,
                          &answer, err);
        if (ok && !json_is_object(answer)) {
            sk_error_set(err, SK_ERR_PROTOCOL, q->single_request,
                         "the answer is not a JSON object");
            ok = 0;
        }
        pthread_mutex_lock(&b->lock);
        wire_freed(q);
        pthread_mutex_unlock(&b->lock);
        goto decode;
    }
    ok = queue_and_wait(client, b, q, &it);
    pthread_mutex_unlock(&b->lock);
    free_item(&it);
    answer = it.body;
    if (!ok)
        *err = it.err;

decode:
    if (ok)
        ok = sk_json_need_base64(answer, field, out, out_len, q->single_request,
                                 err);
    wipe_json(answer);
    json_decref(answer);
    return ok;
}
