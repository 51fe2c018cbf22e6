/*
 * The asynchronous transport of the request engine (engine.c). Private to
 * the REST client.
 *
 * http.c runs one state machine per call (authentication, failover,
 * retries, the answer's checks) on the caller's thread. Each of its HTTP
 * exchanges goes out either on the caller's pooled easy handle
 * (curl_easy_perform: outside an OpenSSL ASYNC job, as always) or, inside
 * a job, through this engine: the job hands a configured easy handle to
 * ONE provider-owned I/O thread that drives a libcurl multi handle, gives
 * OpenSSL a wait fd (an eventfd per ASYNC_WAIT_CTX) and pauses; the I/O
 * thread makes the fd readable when the answer (or an error) is there.
 *
 * Ownership: a request (sk_engine_req) belongs to the engine once
 * submitted and is reference-counted (the job, the I/O thread): a job that
 * is never resumed (the application freed its wait context) never makes
 * the engine write into its memory, and the late answer is freed by
 * whichever side lets go last. An easy handle belongs to one thread at a
 * time; the multi handle to the I/O thread only.
 */
#ifndef SMARTKEY_CLIENT_ENGINE_H
#define SMARTKEY_CLIENT_ENGINE_H

#include <curl/curl.h>

typedef struct sk_engine sk_engine;
/* The wait fd of one ASYNC_WAIT_CTX (reference-counted). */
typedef struct sk_async_slot sk_async_slot;

/* One exchange: the caller fills the first part, submits it with
   sk_engine_run and reads the second part. */
typedef struct sk_engine_req {
    CURL *handle;               /* configured; NULL: a timer of delay_ms */
    long delay_ms;              /* handle NULL only */
    struct curl_slist *headers; /* cleansed and freed with the request */
    char *body;                 /* cleansed and freed with the request */
    size_t body_len;
    void *answer; /* the write callbacks' target; answer_free(answer) */
    void (*answer_free)(void *answer);
    char errbuf[CURL_ERROR_SIZE];
    /* results, valid once sk_engine_run returned */
    CURLcode rc;
    long status;
    long request_bytes;
} sk_engine_req;

/* A new engine; its I/O thread starts here. NULL when it cannot. */
sk_engine *sk_engine_new(void);
/* Stops the I/O thread (joins it) after failing every request in flight
   (their fds become readable), then frees the engine. In a child process
   the parent's engine is abandoned (its thread does not exist here). */
void sk_engine_free(sk_engine *engine);
/* The process that runs the engine's thread. */
int sk_engine_is_ours(const sk_engine *engine);
/* fork handlers (the engine's lock must not be copied locked) */
void sk_engine_fork_prepare(sk_engine *engine);
void sk_engine_fork_release(sk_engine *engine);

/* An easy handle for a request (the engine's idle one or a new one). */
CURL *sk_engine_handle(sk_engine *engine);

/*
 * Inside an ASYNC job whose wait context can have a wait fd: the job's
 * slot (owned by the wait context). NULL outside a job, in a job without
 * a wait context, or when no fd can be made (EMFILE): the caller then
 * works synchronously.
 */
sk_async_slot *sk_async_slot_current(void);
void sk_async_slot_ref(sk_async_slot *slot);
void sk_async_slot_unref(sk_async_slot *slot);
/* Makes the slot's fd readable (any thread). */
void sk_async_signal(sk_async_slot *slot);
/* In the job: empties the fd (before checking what it waits for), and
   pauses the job until its fd is readable. */
void sk_async_drain(sk_async_slot *slot);
void sk_async_pause(sk_async_slot *slot);
/* A job that got a slot pauses at least once before it finishes (the
   application learns of a new fd only at a pause, and HAProxy drops every
   fd of the wait context at close, seen or not): signal, pause, drain. For
   the paths that got a slot and then work synchronously. */
void sk_async_announce(sk_async_slot *slot);
/* Set while the slot's job authenticates for everyone: when its wait
   context goes away first, sk_client_slot_gone (http.c) is told. */
void sk_async_slot_set_auth_owner(sk_async_slot *slot, int yes);
void sk_client_slot_gone(sk_async_slot *slot);

/* A request for the caller to fill (zeroed, rc CURLE_OK). */
sk_engine_req *sk_engine_req_new(void);
/*
 * In the job of `slot`: submits req (which the engine now owns, with its
 * handle), pauses until it is done and returns 1; the results are in req
 * until sk_engine_req_release. Returns 0 when it could not be submitted
 * (the engine is stopping): req is released, the caller works without it.
 */
int sk_engine_run(sk_engine *engine, sk_async_slot *slot, sk_engine_req *req);
void sk_engine_req_release(sk_engine_req *req);

#endif
