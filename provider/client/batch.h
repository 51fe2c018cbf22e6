/*
 * Batching of concurrent remote operations (issue #7): sign and decrypt
 * calls that arrive while another one is on the wire are coalesced into
 * one /crypto/v1/keys/batch/sign or /batch/decrypt request. Off unless
 * sk_client_config.batch_max_size > 1. Private to the REST client.
 */
#ifndef SMARTKEY_CLIENT_BATCH_H
#define SMARTKEY_CLIENT_BATCH_H

#include <stddef.h>
#include <jansson.h>
#include "client.h"

typedef struct sk_batcher sk_batcher;

/* NULL when batching is off (max_size <= 1) or on no memory. max_wait_us
   0: the default (1000). */
sk_batcher *sk_batcher_new(unsigned max_size, long max_wait_us);
void sk_batcher_free(sk_batcher *batcher);

/* The client's fork handlers (pool.c) call this with the client's lock
   held, at each stage of fork(); a NULL batcher is ignored. The child's
   queues start empty. */
typedef enum sk_fork_stage {
    SK_FORK_PREPARE,
    SK_FORK_PARENT,
    SK_FORK_CHILD,
} sk_fork_stage;
void sk_batcher_at_fork(sk_batcher *batcher, sk_fork_stage stage);

struct sk_request_body;

/*
 * Sends the single-call request `body` (a POST to `path`, answered by an
 * object whose Base64 field `field` is the result) as an item of a batch.
 * Returns -1 when this call is not batched (batching off, another path, a
 * key named without its kid): the caller then sends it alone. Otherwise 1
 * with *out (OPENSSL_malloc'd) or 0 with err filled for this item only.
 * The body stays the caller's (it wipes it).
 */
int sk_batch_call(sk_client *client, const char *path,
                  const struct sk_request_body *body, const char *field,
                  unsigned char **out, size_t *out_len, sk_error *err);

#endif
