/*
 * Failover and retries of the HTTP layer: the order in which the cluster
 * nodes are tried (unreachable ones cool down), which failures move on to
 * the next node, and the retry policy with its backoff (a sleep, or a
 * timer of the engine inside an ASYNC job).
 */
#include <errno.h>
#include <time.h>
#include "http_private.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS  2000
/* A cluster node that could not be reached is left alone this long before
   it is tried again (unless every other node is unreachable too). */
#define NODE_COOLDOWN_S 30.0

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Waits ms (a retry's backoff, an approval's poll): a job pauses, a thread
   sleeps. */
void sk_client_pause_ms(sk_client *c, long ms)
{
    sk_async_slot *slot = sk_pool_async_slot(c);
    sk_engine *e = slot != NULL ? sk_pool_engine(c) : NULL;
    sk_engine_req *req = e != NULL ? sk_engine_req_new() : NULL;

    if (req != NULL) {
        req->delay_ms = ms;
        if (sk_engine_run(e, slot, req)) {
            sk_engine_req_release(req);
            return;
        }
    } else if (slot != NULL) {
        sk_async_announce(slot);
    }
    sleep_ms(ms);
}

static long backoff_ms(int attempt, const http_answer *ans)
{
    long ms = BACKOFF_BASE_MS << (attempt < 5 ? attempt : 5);

    if (ans->retry_after_ms >= 0)
        return ans->retry_after_ms;
    return ms > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : ms;
}

/*
 * The node could not be reached at all, so the request never got there:
 * sending it to another node is safe whatever it does.
 */
static int node_unreachable(const http_answer *ans)
{
    switch (ans->transport) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return 1;
    /* A node that dies while we connect: the kernel may still complete
       the TCP handshake, then the TLS handshake is reset. Nothing was
       sent, so this is as good as a refused connection. */
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return ans->request_bytes == 0;
    default:
        return 0;
    }
}

/* Gateway answers of a load balancer or a node going down: the node
   itself is unhealthy, another one may answer. */
static int node_unhealthy_status(long status)
{
    return status == 502 || status == 503 || status == 504;
}

/*
 * The nodes to try, in order: those not cooling down first (list order:
 * the first node is preferred again once its cool-down ends), then the
 * cooling ones, so a request is never refused without trying. Returns the
 * count written to order.
 */
static size_t node_order(sk_client *c, size_t *order)
{
    double now = sk_now_seconds();
    size_t n = 0;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->node_count; i++)
        if (c->nodes[i].down_until <= now)
            order[n++] = i;
    for (size_t i = 0; i < c->node_count; i++)
        if (c->nodes[i].down_until > now)
            order[n++] = i;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static void node_down(sk_client *c, size_t i, const char *request,
                      const char *why)
{
    pthread_mutex_lock(&c->lock);
    c->nodes[i].down_until = sk_now_seconds() + NODE_COOLDOWN_S;
    pthread_mutex_unlock(&c->lock);
    if (c->node_count > 1)
        sk_client_log(c, 1,
                      "%s: node %s unreachable (%s); skipping it for %.0f s",
                      request, c->nodes[i].url, why, NODE_COOLDOWN_S);
}

static void node_up(sk_client *c, size_t i)
{
    pthread_mutex_lock(&c->lock);
    c->nodes[i].down_until = 0;
    pthread_mutex_unlock(&c->lock);
}

/*
 * One attempt: the request goes to the first reachable node. A node that
 * refuses the connection (or times out before anything was sent) is
 * skipped and the next one tried at once; a 502/503/504 as well when the
 * request may be repeated. Returns like sk_pool_exchange(); the answer or error
 * is the last node's.
 */
static int exchange_any_node(sk_client *c, const char *method, const char *path,
                             const char *request, const char *authorization,
                             const char *body, size_t body_len, unsigned flags,
                             http_answer *ans, enum resend *resend,
                             sk_error *err)
{
    size_t order[16], count;
    int idempotent = (flags & SK_HTTP_IDEMPOTENT) != 0;

    *resend = RESEND_NEVER;
    /* sk_endpoints_parse allows at most 16 nodes */
    count = node_order(c, order);
    for (size_t k = 0; k < count; k++) {
        size_t i = order[k];
        int more = k + 1 < count;

        if (!sk_pool_exchange(c, c->nodes[i].url, method, path, request,
                              authorization, body, body_len, flags, ans, resend,
                              err)) {
            if (node_unreachable(ans)) {
                /* never sent: safe to send anywhere, and to retry later */
                *resend = RESEND_ALWAYS;
            } else if (!(idempotent && *resend == RESEND_IF_IDEMPOTENT)) {
                return 0;
            }
            /* the node failed before answering; a request that may be
               repeated goes on to the next node at once */
            node_down(c, i, request, err->message);
            if (!more)
                return 0;
            continue;
        }
        if (node_unhealthy_status(ans->status)) {
            node_down(c, i, request, "HTTP status");
            if (more && idempotent)
                continue;
            return 1;
        }
        node_up(c, i);
        return 1;
    }
    return 0; /* not reached: there is always a node */
}

/*
 * Sends one request with the retry policy: transport failures, 429 and 5xx
 * are retried with backoff up to c->retries times (only refused
 * connections when the call is not idempotent). Returns 1 with an HTTP
 * answer in ans (any status except the retried ones), 0 with err filled.
 */
int sk_exchange_with_retries(sk_client *c, const char *method, const char *path,
                             const char *request, const char *authorization,
                             const char *body, size_t body_len, unsigned flags,
                             http_answer *ans, sk_error *err)
{
    int idempotent = (flags & SK_HTTP_IDEMPOTENT) != 0;

    for (int attempt = 0;; attempt++) {
        enum resend resend;
        int last = attempt >= c->retries;

        if (exchange_any_node(c, method, path, request, authorization, body,
                              body_len, flags, ans, &resend, err)) {
            /* A 429 or 5xx answer may come from a node that ran the
               request (a proxy's timeout, a throttle after the work):
               key generation and imports are never sent twice. */
            if (last || !idempotent ||
                !(ans->status == 429 || ans->status >= 500))
                return 1;
            sk_client_log(c, 1, "%s: %ld, retrying", request, ans->status);
        } else if (last || resend == RESEND_NEVER ||
                   (resend == RESEND_IF_IDEMPOTENT && !idempotent)) {
            return 0;
        }
        sk_client_pause_ms(c, backoff_ms(attempt, ans));
    }
}
