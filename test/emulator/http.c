/*
 * libmicrohttpd glue: routing, authentication and sessions, counters, fault
 * injection, latency, request log and the request/response helpers.
 *
 * Delays (--latency-ms, the latency control and the "stall" fault) suspend
 * the connection and let a timer thread resume it: sleeping inside a handler
 * would block every other connection served by that pool thread.
 */
#include "emulator.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define MAX_BODY        (8u << 20)
#define SESSION_BUCKETS 1024
#define VERSION_STRING  "0.1.0-emulator"

static em_server_options opts;
static struct MHD_Daemon *daemon_handle;

/* ---------------------------------------------------------------------- */
/* helpers for handlers                                                     */

const char *em_query(const em_request *req, const char *name)
{
    if (req->conn == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int em_query_true(const em_request *req, const char *name)
{
    const char *v = em_query(req, name);

    return v != NULL && strcmp(v, "true") == 0;
}

/* The response becomes status with a JSON body or a plain-text one (the
   other NULL); what it held before is freed. */
static void set_response(em_response *resp, int status, json_t *json,
                         char *text)
{
    json_decref(resp->json);
    free(resp->text);
    resp->json = json;
    resp->text = text;
    resp->status = status;
}

int em_error(em_response *resp, int status, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;

    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    set_response(resp, status, NULL, text);
    return 0;
}

int em_json(em_response *resp, int status, json_t *body)
{
    set_response(resp, status, body, NULL);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* counters                                                                 */

static long exports_count;
static long requests_total;
static long connections_count;
static long handshakes_count;
/* API requests between their arrival and their answer being queued (a
   latency suspension included), and the most seen at once since the last
   reset: the proof that a client had several requests on the wire. */
static long in_flight_count;
static long max_in_flight_count;

static void in_flight_begin(void)
{
    long now = __atomic_add_fetch(&in_flight_count, 1, __ATOMIC_RELAXED);
    long max = __atomic_load_n(&max_in_flight_count, __ATOMIC_RELAXED);

    while (now > max &&
           !__atomic_compare_exchange_n(&max_in_flight_count, &max, now, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static void in_flight_end(void)
{
    __atomic_sub_fetch(&in_flight_count, 1, __ATOMIC_RELAXED);
}

/* requests on paths no route knows, keyed by "METHOD path" */
typedef struct other_count {
    char *key;
    long count;
    struct other_count *next;
} other_count;
static pthread_mutex_t other_lock = PTHREAD_MUTEX_INITIALIZER;
static other_count *other_counts;

void em_count_export(void)
{
    __atomic_add_fetch(&exports_count, 1, __ATOMIC_RELAXED);
}

static void count_other(const char *method, const char *path)
{
    other_count *c;
    char *key;

    if (asprintf(&key, "%s %s", method, path) < 0)
        return;
    pthread_mutex_lock(&other_lock);
    for (c = other_counts; c != NULL; c = c->next)
        if (strcmp(c->key, key) == 0)
            break;
    if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL) {
        c->key = key;
        key = NULL;
        c->next = other_counts;
        other_counts = c;
    }
    if (c != NULL)
        c->count++;
    pthread_mutex_unlock(&other_lock);
    free(key);
}

/* ---------------------------------------------------------------------- */
/* sessions                                                                 */

typedef struct session {
    char token[65];
    char id[33];
    char app_id[37]; /* the app that authenticated */
    long long last_used_ms;
    struct session *next;
} session;

static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;
static session *sessions[SESSION_BUCKETS];
static unsigned long sessions_created;

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned token_bucket(const char *token)
{
    unsigned h = 2166136261u;

    while (*token)
        h = (h ^ (unsigned char)*token++) * 16777619u;
    return h % SESSION_BUCKETS;
}

static void random_hex(char *out, size_t bytes)
{
    unsigned char buf[32];
    size_t i;

    if (bytes > sizeof(buf) || RAND_bytes(buf, (int)bytes) != 1)
        abort();
    for (i = 0; i < bytes; i++)
        sprintf(out + 2 * i, "%02x", buf[i]);
}

static int session_expired(const session *s, long long now)
{
    return now - s->last_used_ms > (long long)opts.token_lifetime * 1000;
}

/* Unlinks sessions matching `all` or idle too long; callers then free them
   (and their transient keys) outside the lock. */
static session *unlink_sessions(int all)
{
    session *gone = NULL, **p, *s;
    long long now = now_ms();
    size_t i;

    for (i = 0; i < SESSION_BUCKETS; i++)
        for (p = &sessions[i]; *p != NULL;) {
            s = *p;
            if (all || session_expired(s, now)) {
                *p = s->next;
                s->next = gone;
                gone = s;
            } else {
                p = &s->next;
            }
        }
    return gone;
}

static void free_sessions(session *gone)
{
    session *next;

    for (; gone != NULL; gone = next) {
        next = gone->next;
        em_store_drop_session(gone->id);
        OPENSSL_cleanse(gone->token, sizeof(gone->token));
        free(gone);
    }
}

static session *session_new(const char *app_id)
{
    session *s = calloc(1, sizeof(*s)), *expired = NULL;
    unsigned b;

    if (s == NULL)
        return NULL;
    snprintf(s->app_id, sizeof(s->app_id), "%s", app_id);
    random_hex(s->token, 32);
    random_hex(s->id, 16);
    s->last_used_ms = now_ms();
    b = token_bucket(s->token);
    pthread_mutex_lock(&session_lock);
    /* sessions nobody terminates would pile up in long benchmarks */
    if (++sessions_created % 256 == 0)
        expired = unlink_sessions(0);
    s->next = sessions[b];
    sessions[b] = s;
    pthread_mutex_unlock(&session_lock);
    free_sessions(expired);
    return s;
}

/* Removes the session of `token`; returns 1 when it existed. */
static int session_end(const char *token)
{
    session **p, *s = NULL;

    pthread_mutex_lock(&session_lock);
    for (p = &sessions[token_bucket(token)]; *p != NULL; p = &(*p)->next)
        if (strcmp((*p)->token, token) == 0) {
            s = *p;
            *p = s->next;
            s->next = NULL;
            break;
        }
    pthread_mutex_unlock(&session_lock);
    free_sessions(s);
    return s != NULL;
}

/* Looks a bearer token up and slides its idle window; 0 when expired or
   unknown (an expired session is dropped with its transient keys). */
static int session_use(const char *token, char id[65], char app_id[37])
{
    session **p, *s, *expired = NULL;
    long long now = now_ms();
    int ok = 0;

    pthread_mutex_lock(&session_lock);
    for (p = &sessions[token_bucket(token)]; *p != NULL; p = &(*p)->next) {
        s = *p;
        if (strcmp(s->token, token) != 0)
            continue;
        if (session_expired(s, now)) {
            *p = s->next;
            s->next = NULL;
            expired = s;
        } else {
            s->last_used_ms = now;
            snprintf(id, 65, "%s", s->id);
            snprintf(app_id, 37, "%s", s->app_id);
            ok = 1;
        }
        break;
    }
    pthread_mutex_unlock(&session_lock);
    free_sessions(expired);
    return ok;
}

static void sessions_expire_all(void)
{
    session *gone;

    pthread_mutex_lock(&session_lock);
    gone = unlink_sessions(1);
    pthread_mutex_unlock(&session_lock);
    free_sessions(gone);
}

/* ---------------------------------------------------------------------- */
/* session and version endpoints                                           */

static json_t *auth_response(const session *s)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "token_type", "Bearer",
                     "access_token", s->token, "expires_in",
                     (json_int_t)opts.token_lifetime, "entity_id", s->app_id);
}

static int h_auth(em_request *req, em_response *resp)
{
    session *s = session_new(req->who.app_id);

    if (s == NULL)
        return em_error(resp, 500, "Out of memory");
    return em_json(resp, 200, auth_response(s));
}

static int h_version(em_request *req, em_response *resp)
{
    return em_json(resp, 200,
                   json_pack("{s:s, s:s, s:s}", "version", VERSION_STRING,
                             "api_version", "1.0", "server_mode", "Software"));
}

/* ---------------------------------------------------------------------- */
/* routing                                                                  */

enum auth_kind {
    AUTH_NONE,   /* version */
    AUTH_BASIC,  /* /sys/v1/session/auth: the API key only */
    AUTH_BEARER, /* session management: a session token only */
    AUTH_ANY,    /* crypto and key management: token or API key */
};

enum session_action {
    SESSION_NONE,
    SESSION_TERMINATE,
    SESSION_REFRESH,
    SESSION_REAUTH
};

typedef struct route {
    const char *method;
    /* "/crypto/v1/keys/{kid}" matches one segment, also inside a path
       ("/sys/v1/approval_requests/{kid}/approve") */
    const char *path;
    enum auth_kind auth;
    int needs_approval; /* refused while the approval switch is on */
    em_handler handler;
    int (*kid_handler)(em_request *, const char *, em_response *);
    enum session_action session;
    long count;
} route;

/* Most routes: crypto and key management, with a token or the API key;
   GATED_ROUTE ones are refused while the approval switch is on; KID_ROUTE
   handlers take the path's {kid} segment. */
#define ROUTE(verb, pattern, fn)                                               \
    {                                                                          \
        .method = verb, .path = pattern, .auth = AUTH_ANY, .handler = fn       \
    }
#define GATED_ROUTE(verb, pattern, fn)                                         \
    {                                                                          \
        .method = verb, .path = pattern, .auth = AUTH_ANY,                     \
        .needs_approval = 1, .handler = fn                                     \
    }
#define KID_ROUTE(verb, pattern, fn)                                           \
    {                                                                          \
        .method = verb, .path = pattern, .auth = AUTH_ANY, .kid_handler = fn   \
    }
#define SESSION_ROUTE(pattern, action)                                         \
    {                                                                          \
        .method = "POST", .path = pattern, .auth = AUTH_BEARER,                \
        .session = action                                                      \
    }

static route routes[] = {
    {.method = "POST",
     .path = "/sys/v1/session/auth",
     .auth = AUTH_BASIC,
     .handler = h_auth},
    SESSION_ROUTE("/sys/v1/session/terminate", SESSION_TERMINATE),
    SESSION_ROUTE("/sys/v1/session/refresh", SESSION_REFRESH),
    SESSION_ROUTE("/sys/v1/session/reauth", SESSION_REAUTH),
    {.method = "GET",
     .path = "/sys/v1/version",
     .auth = AUTH_NONE,
     .handler = h_version},
    ROUTE("POST", "/crypto/v1/keys", em_h_keys_generate),
    ROUTE("PUT", "/crypto/v1/keys", em_h_keys_import),
    ROUTE("GET", "/crypto/v1/keys", em_h_keys_list),
    ROUTE("POST", "/crypto/v1/keys/info", em_h_keys_info),
    GATED_ROUTE("POST", "/crypto/v1/keys/export", em_h_keys_export),
    GATED_ROUTE("POST", "/crypto/v1/keys/digest", em_h_keys_digest),
    GATED_ROUTE("POST", "/crypto/v1/keys/batch/sign", em_h_batch_sign),
    GATED_ROUTE("POST", "/crypto/v1/keys/batch/verify", em_h_batch_verify),
    GATED_ROUTE("POST", "/crypto/v1/keys/batch/encrypt", em_h_batch_encrypt),
    GATED_ROUTE("POST", "/crypto/v1/keys/batch/decrypt", em_h_batch_decrypt),
    KID_ROUTE("GET", "/crypto/v1/keys/{kid}", em_h_key_get),
    KID_ROUTE("PATCH", "/crypto/v1/keys/{kid}", em_h_key_patch),
    KID_ROUTE("DELETE", "/crypto/v1/keys/{kid}", em_h_key_delete),
    GATED_ROUTE("POST", "/crypto/v1/encrypt", em_h_encrypt),
    GATED_ROUTE("POST", "/crypto/v1/decrypt", em_h_decrypt),
    GATED_ROUTE("POST", "/crypto/v1/sign", em_h_sign),
    GATED_ROUTE("POST", "/crypto/v1/verify", em_h_verify),
    GATED_ROUTE("POST", "/crypto/v1/wrapkey", em_h_wrapkey),
    GATED_ROUTE("POST", "/crypto/v1/unwrapkey", em_h_unwrapkey),
    GATED_ROUTE("POST", "/crypto/v1/digest", em_h_digest),
    ROUTE("POST", "/sys/v1/groups", em_h_groups_create),
    ROUTE("GET", "/sys/v1/groups", em_h_groups_list),
    KID_ROUTE("GET", "/sys/v1/groups/{kid}", em_h_group_get),
    KID_ROUTE("PATCH", "/sys/v1/groups/{kid}", em_h_group_patch),
    ROUTE("POST", "/sys/v1/approval_requests", em_h_approval_create),
    ROUTE("GET", "/sys/v1/approval_requests", em_h_approval_list),
    KID_ROUTE("GET", "/sys/v1/approval_requests/{kid}", em_h_approval_get),
    KID_ROUTE("DELETE", "/sys/v1/approval_requests/{kid}",
              em_h_approval_delete),
    KID_ROUTE("POST", "/sys/v1/approval_requests/{kid}/approve",
              em_h_approval_approve),
    KID_ROUTE("POST", "/sys/v1/approval_requests/{kid}/deny",
              em_h_approval_deny),
    KID_ROUTE("POST", "/sys/v1/approval_requests/{kid}/result",
              em_h_approval_result),
};
#undef ROUTE
#undef GATED_ROUTE
#undef KID_ROUTE
#undef SESSION_ROUTE
#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

/* Matches a route path; a "{kid}" segment captures one path segment
   (into kid, at most 127 bytes). */
static int path_matches(const char *pattern, const char *path, char kid[128])
{
    const char *hole = strstr(pattern, "{kid}"), *end;
    size_t prefix;

    if (hole == NULL)
        return strcmp(pattern, path) == 0;
    prefix = (size_t)(hole - pattern);
    if (strncmp(pattern, path, prefix) != 0 || path[prefix] == '\0' ||
        path[prefix] == '/')
        return 0;
    end = strchr(path + prefix, '/');
    if (end == NULL)
        end = path + strlen(path);
    if (strcmp(end, hole + 5) != 0 || (size_t)(end - path - prefix) > 127)
        return 0;
    memcpy(kid, path + prefix, (size_t)(end - path - prefix));
    kid[end - path - prefix] = '\0';
    return 1;
}

/* Finds the route; *path_known tells a 405 from a 404 when none fits. */
static route *find_route(const char *method, const char *path, char kid[128],
                         int *path_known)
{
    size_t i;

    *path_known = 0;
    /* exact paths first, so /crypto/v1/keys/info is not taken for a kid */
    for (i = 0; i < ROUTE_COUNT; i++)
        if (strstr(routes[i].path, "{kid}") == NULL &&
            path_matches(routes[i].path, path, kid)) {
            *path_known = 1;
            if (strcmp(routes[i].method, method) == 0)
                return &routes[i];
        }
    if (*path_known)
        return NULL;
    for (i = 0; i < ROUTE_COUNT; i++)
        if (strstr(routes[i].path, "{kid}") != NULL &&
            path_matches(routes[i].path, path, kid)) {
            *path_known = 1;
            if (strcmp(routes[i].method, method) == 0)
                return &routes[i];
        }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* faults, latency, approval switch                                         */

enum fault_action {
    FAULT_STATUS,
    FAULT_RESET,
    FAULT_STALL,
    FAULT_TRUNCATE,
    FAULT_MALFORMED,
    FAULT_OVERSIZED,
    FAULT_WRONG_TYPE
};

static const char *const fault_names[] = {"status",    "reset",     "stall",
                                          "truncate",  "malformed", "oversized",
                                          "wrong_type"};

typedef struct fault {
    char *path; /* "*" = any non-control path */
    long remaining;
    enum fault_action action;
    int status;
    long retry_after; /* < 0: no Retry-After header */
    long seconds;
    size_t bytes;
    struct fault *next;
} fault;

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static fault *faults, **faults_tail = &faults;
static int faults_armed; /* lets the common case skip the lock */
static unsigned latency_ms;
static int approval_required;

int em_http_is_crypto_route(const char *method, const char *path)
{
    char kid[128];
    int known;
    route *rt = find_route(method, path, kid, &known);

    return rt != NULL && rt->needs_approval;
}

void em_http_execute(em_request *req, em_response *resp)
{
    char kid[128];
    int known;
    route *rt = find_route(req->method, req->path, kid, &known);

    if (rt == NULL || !rt->needs_approval) {
        em_error(resp, 400, "Not a crypto operation: %s %s", req->method,
                 req->path);
        return;
    }
    if (!em_check_request(req, rt->path, resp))
        return;
    if (rt->kid_handler != NULL)
        rt->kid_handler(req, kid, resp);
    else
        rt->handler(req, resp);
    if (resp->status == 0)
        em_error(resp, 500, "Handler produced no answer");
}

static void faults_clear(void)
{
    fault *f, *next;

    pthread_mutex_lock(&fault_lock);
    for (f = faults; f != NULL; f = next) {
        next = f->next;
        free(f->path);
        free(f);
    }
    faults = NULL;
    faults_tail = &faults;
    __atomic_store_n(&faults_armed, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&fault_lock);
}

/* Consumes one count of the first rule matching path; 1 when one did. */
static int fault_take(const char *path, fault *taken)
{
    fault **p, *f;
    int hit = 0;

    if (!__atomic_load_n(&faults_armed, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&fault_lock);
    for (p = &faults; (f = *p) != NULL; p = &f->next) {
        if (strcmp(f->path, "*") != 0 && strcmp(f->path, path) != 0)
            continue;
        *taken = *f;
        taken->path = NULL;
        taken->next = NULL;
        hit = 1;
        if (--f->remaining <= 0) {
            *p = f->next;
            if (faults_tail == &f->next)
                faults_tail = p;
            free(f->path);
            free(f);
        }
        break;
    }
    if (faults == NULL)
        __atomic_store_n(&faults_armed, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&fault_lock);
    return hit;
}

static long json_long(json_t *obj, const char *field, long dflt, int *bad)
{
    json_t *v = json_object_get(obj, field);

    if (v == NULL || json_is_null(v))
        return dflt;
    if (!json_is_integer(v)) {
        *bad = 1;
        return dflt;
    }
    return (long)json_integer_value(v);
}

static int control_fault_add(em_request *req, em_response *resp)
{
    const char *path = em_json_str(req->json, "path");
    const char *action = em_json_str(req->json, "action");
    fault *f;
    int bad = 0;
    size_t i;

    if (path == NULL || action == NULL)
        return em_error(resp, 400, "A fault needs \"path\" and \"action\"");
    for (i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
        if (strcmp(action, fault_names[i]) == 0)
            break;
    if (i == sizeof(fault_names) / sizeof(fault_names[0]))
        return em_error(resp, 400, "Unknown fault action '%s'", action);
    f = calloc(1, sizeof(*f));
    f->path = strdup(path);
    f->action = (enum fault_action)i;
    f->remaining = json_long(req->json, "count", 1, &bad);
    f->status = (int)json_long(req->json, "status", 503, &bad);
    f->retry_after = json_long(req->json, "retry_after", -1, &bad);
    f->seconds = json_long(req->json, "seconds", 5, &bad);
    f->bytes = (size_t)json_long(req->json, "bytes", 16L << 20, &bad);
    if (bad || f->remaining < 1 || f->status < 100 || f->status > 599 ||
        f->seconds < 0 || f->seconds > 3600 || (long)f->bytes < 0) {
        free(f->path);
        free(f);
        return em_error(resp, 400,
                        "Invalid fault: count >= 1, status 100..599, "
                        "seconds 0..3600 and bytes >= 0 are integers");
    }
    pthread_mutex_lock(&fault_lock);
    *faults_tail = f;
    faults_tail = &f->next;
    __atomic_store_n(&faults_armed, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&fault_lock);
    return em_json(resp, 200,
                   json_pack("{s:s, s:s, s:i}", "path", path, "action", action,
                             "count", (int)f->remaining));
}

static json_t *counters_json(void)
{
    json_t *requests = json_object();
    other_count *c;
    size_t i;

    for (i = 0; i < ROUTE_COUNT; i++) {
        long n = __atomic_load_n(&routes[i].count, __ATOMIC_RELAXED);
        char key[80];

        if (n == 0)
            continue;
        snprintf(key, sizeof(key), "%s %s", routes[i].method, routes[i].path);
        json_object_set_new(requests, key, json_integer(n));
    }
    pthread_mutex_lock(&other_lock);
    for (c = other_counts; c != NULL; c = c->next)
        if (c->count > 0)
            json_object_set_new(requests, c->key, json_integer(c->count));
    pthread_mutex_unlock(&other_lock);
    return json_pack(
        "{s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "requests", requests,
        "in_flight",
        (json_int_t)__atomic_load_n(&in_flight_count, __ATOMIC_RELAXED),
        "max_in_flight",
        (json_int_t)__atomic_load_n(&max_in_flight_count, __ATOMIC_RELAXED),
        "requests_total",
        (json_int_t)__atomic_load_n(&requests_total, __ATOMIC_RELAXED),
        "connections",
        (json_int_t)__atomic_load_n(&connections_count, __ATOMIC_RELAXED),
        "tls_handshakes",
        (json_int_t)__atomic_load_n(&handshakes_count, __ATOMIC_RELAXED),
        "exports",
        (json_int_t)__atomic_load_n(&exports_count, __ATOMIC_RELAXED));
}

static void counters_reset(void)
{
    other_count *c;
    size_t i;

    for (i = 0; i < ROUTE_COUNT; i++)
        __atomic_store_n(&routes[i].count, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&other_lock);
    for (c = other_counts; c != NULL; c = c->next)
        c->count = 0;
    pthread_mutex_unlock(&other_lock);
    __atomic_store_n(&requests_total, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&connections_count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&handshakes_count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&exports_count, 0, __ATOMIC_RELAXED);
    /* the requests in progress now stay counted; the maximum restarts */
    __atomic_store_n(&max_in_flight_count,
                     __atomic_load_n(&in_flight_count, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
}

static int control_counters(em_request *req, em_response *resp)
{
    return em_json(resp, 200, counters_json());
}

static int control_latency(em_request *req, em_response *resp)
{
    json_t *ms = json_object_get(req->json, "ms");

    if (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
        json_integer_value(ms) > 600000)
        return em_error(resp, 400, "Expected {\"ms\": 0..600000}");
    __atomic_store_n(&latency_ms, (unsigned)json_integer_value(ms),
                     __ATOMIC_RELAXED);
    return em_json(resp, 200, json_pack("{s:I}", "ms", json_integer_value(ms)));
}

static int control_approval(em_request *req, em_response *resp)
{
    json_t *required = json_object_get(req->json, "required");

    if (!json_is_boolean(required))
        return em_error(resp, 400, "Expected {\"required\": true|false}");
    __atomic_store_n(&approval_required, json_is_true(required),
                     __ATOMIC_RELAXED);
    return em_json(resp, 200,
                   json_pack("{s:b}", "required", json_is_true(required)));
}

/* The test controls, below /_emulator: a handler, or an action that takes
   no body and answers 204. */
static const struct control {
    const char *method, *path;
    em_handler handler;
    void (*action)(void);
} controls[] = {
    {"GET", "/counters", control_counters, NULL},
    {"POST", "/counters/reset", NULL, counters_reset},
    {"POST", "/faults", control_fault_add, NULL},
    {"DELETE", "/faults", NULL, faults_clear},
    {"POST", "/latency", control_latency, NULL},
    {"POST", "/sessions/expire", NULL, sessions_expire_all},
    {"POST", "/apps", em_control_apps, NULL},
    {"POST", "/approval/expiry", em_control_approval_expiry, NULL},
    {"POST", "/approval", control_approval, NULL},
};

/* /_emulator/...: no auth, not counted, no latency. */
static void handle_control(em_request *req, em_response *resp)
{
    const char *p = req->path + strlen("/_emulator");

    for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++)
        if (strcmp(p, controls[i].path) == 0 &&
            strcmp(req->method, controls[i].method) == 0) {
            if (controls[i].handler != NULL) {
                controls[i].handler(req, resp);
            } else {
                controls[i].action();
                resp->status = 204;
            }
            return;
        }
    em_error(resp, 404, "Unknown test control %s %s", req->method, req->path);
}

/* ---------------------------------------------------------------------- */
/* authentication                                                           */

static int scheme_is(const char *header, const char *scheme)
{
    size_t n = strlen(scheme);

    return strncasecmp(header, scheme, n) == 0 && header[n] == ' ';
}

/* Fills req->who from the Authorization header or answers 401. */
static int authenticate(em_request *req, enum auth_kind kind,
                        const char **bearer, em_response *resp)
{
    const char *header = MHD_lookup_connection_value(
        req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *cred;

    *bearer = NULL;
    if (kind == AUTH_NONE)
        return 1;
    if (header == NULL)
        return em_error(resp, 401, "Missing Authorization header");
    if (scheme_is(header, "Basic") && kind != AUTH_BEARER) {
        size_t len;

        cred = header + 6;
        while (*cred == ' ')
            cred++;
        len = strlen(cred);
        /* base64(app-uuid:secret) is byte for byte the API key */
        if (len == strlen(opts.api_key) &&
            CRYPTO_memcmp(cred, opts.api_key, len) == 0)
            snprintf(req->who.app_id, sizeof(req->who.app_id), "%s",
                     opts.app_id);
        else if (!em_app_lookup(cred, req->who.app_id))
            return em_error(resp, 401, "Invalid API key or credentials");
        req->who.session_id[0] = '\0';
        return 1;
    }
    if (scheme_is(header, "Bearer") && kind != AUTH_BASIC) {
        cred = header + 7;
        while (*cred == ' ')
            cred++;
        if (!session_use(cred, req->who.session_id, req->who.app_id))
            return em_error(resp, 401, "Session expired or unknown");
        *bearer = cred;
        return 1;
    }
    if (kind == AUTH_BASIC)
        return em_error(resp, 401,
                        "Authentication needs Basic credentials (API key)");
    if (kind == AUTH_BEARER)
        return em_error(resp, 401, "This call needs a session (Bearer token)");
    return em_error(resp, 401, "Unsupported Authorization scheme");
}

static void session_call(em_request *req, enum session_action action,
                         const char *bearer, em_response *resp)
{
    session *s;

    switch (action) {
    case SESSION_TERMINATE:
        session_end(bearer);
        resp->status = 204;
        break;
    case SESSION_REFRESH:
        /* session_use has already slid the idle window */
        resp->status = 204;
        break;
    case SESSION_REAUTH:
        /* a new token for a new session; the old token stops working */
        session_end(bearer);
        s = session_new(req->who.app_id);
        if (s == NULL)
            em_error(resp, 500, "Out of memory");
        else
            em_json(resp, 200, auth_response(s));
        break;
    case SESSION_NONE:
        break;
    }
}

/* ---------------------------------------------------------------------- */
/* delayed responses                                                        */

typedef struct delayed {
    long long due_ms;
    struct MHD_Connection *conn;
    struct delayed *next;
} delayed;

static pthread_mutex_t delay_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t delay_cond;
static delayed *delays; /* sorted by due_ms */
static int delay_stop;
static pthread_t delay_thread;
static int delay_thread_started;

static void delay_schedule(struct MHD_Connection *conn, long long due_ms)
{
    delayed *d = malloc(sizeof(*d)), **p;

    if (d == NULL)
        abort();
    d->due_ms = due_ms;
    d->conn = conn;
    pthread_mutex_lock(&delay_lock);
    if (delay_stop) {
        /* shutting down: answer at once */
        pthread_mutex_unlock(&delay_lock);
        free(d);
        MHD_resume_connection(conn);
        return;
    }
    for (p = &delays; *p != NULL && (*p)->due_ms <= due_ms; p = &(*p)->next)
        ;
    d->next = *p;
    *p = d;
    pthread_cond_signal(&delay_cond);
    pthread_mutex_unlock(&delay_lock);
}

static void *delay_main(void *arg)
{
    pthread_mutex_lock(&delay_lock);
    for (;;) {
        long long now = now_ms();

        while (delays != NULL && (delay_stop || delays->due_ms <= now)) {
            delayed *d = delays;

            delays = d->next;
            MHD_resume_connection(d->conn);
            free(d);
        }
        if (delay_stop)
            break;
        if (delays == NULL) {
            pthread_cond_wait(&delay_cond, &delay_lock);
        } else {
            long long due = delays->due_ms;
            struct timespec ts;

            ts.tv_sec = (time_t)(due / 1000);
            ts.tv_nsec = (long)(due % 1000) * 1000000;
            pthread_cond_timedwait(&delay_cond, &delay_lock, &ts);
        }
    }
    pthread_mutex_unlock(&delay_lock);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* request processing                                                       */

typedef struct request_state {
    unsigned char *body;
    size_t len, cap;
    int too_large;
    struct timespec start;
    struct MHD_Response *pending; /* answer kept while suspended */
    unsigned pending_status;
    int control;
    int in_flight; /* counted in in_flight_count */
} request_state;

/* per-connection: whether it already counted as a connection */
typedef struct connection_state {
    int counted;
    int tls;
} connection_state;

static long long elapsed_us(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - start->tv_sec) * 1000000 +
           (now.tv_nsec - start->tv_nsec) / 1000;
}

static void log_request(const char *method, const char *url, unsigned status,
                        const request_state *st)
{
    if (opts.log == NULL)
        return;
    /* one fprintf per line: stdio locks the stream, so lines never mix */
    fprintf(opts.log, "%s %s %u %lldus\n", method, url, status,
            elapsed_us(&st->start));
}

static struct MHD_Response *text_response(const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    return r;
}

static struct MHD_Response *make_response(em_response *resp)
{
    struct MHD_Response *r;

    if (resp->json != NULL) {
        char *text = json_dumps(resp->json, JSON_COMPACT | JSON_ENCODE_ANY);

        r = MHD_create_response_from_buffer(text ? strlen(text) : 0, text,
                                            MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json");
        return r;
    }
    if (resp->text != NULL)
        return text_response(resp->text);
    return MHD_create_response_from_buffer(0, (void *)"",
                                           MHD_RESPMEM_PERSISTENT);
}

/* Body generators for the truncate and oversized faults. */
static const char truncated_body[] = "{\"kid\":\"00000000-0000-4000-8000-";

static ssize_t truncate_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t left;

    if (pos >= sizeof(truncated_body) - 1)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    left = sizeof(truncated_body) - 1 - (size_t)pos;
    if (left > max)
        left = max;
    memcpy(buf, truncated_body + pos, left);
    return (ssize_t)left;
}

static ssize_t oversized_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    uint64_t total = *(uint64_t *)cls, i;

    /* {"pad":"xxxx...x"}: valid JSON of exactly `total` bytes */
    for (i = 0; i < max && pos + i < total; i++) {
        uint64_t at = pos + i;

        if (at < 8)
            buf[i] = "{\"pad\":\""[at];
        else if (at == total - 2)
            buf[i] = '"';
        else if (at == total - 1)
            buf[i] = '}';
        else
            buf[i] = 'x';
    }
    return i == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)i;
}

/* Marks a fault's body as JSON, as the real server would. */
static struct MHD_Response *json_typed(struct MHD_Response *r)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    return r;
}

/* A constant JSON body answered as is. */
static struct MHD_Response *constant_json(const char *body, size_t len)
{
    return json_typed(MHD_create_response_from_buffer(len, (void *)body,
                                                      MHD_RESPMEM_PERSISTENT));
}

/* The "status" fault: its status, a text body and maybe Retry-After. */
static struct MHD_Response *status_fault_response(const fault *f,
                                                  unsigned *status)
{
    struct MHD_Response *r;
    char text[64];

    *status = (unsigned)f->status;
    snprintf(text, sizeof(text), "Injected fault: status %d", f->status);
    r = text_response(text);
    if (f->retry_after >= 0) {
        snprintf(text, sizeof(text), "%ld", f->retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, text);
    }
    return r;
}

/* The "oversized" fault: a valid JSON body of at least 10 bytes. */
static struct MHD_Response *oversized_response(const fault *f)
{
    uint64_t *total = malloc(sizeof(*total));

    *total = f->bytes < 10 ? 10 : f->bytes;
    return json_typed(MHD_create_response_from_callback(
        *total, 64 * 1024, oversized_reader, total, free));
}

/* The "wrong_type" fault: each field a client reads, with a wrong type. */
static struct MHD_Response *wrong_type_response(void)
{
    static const char wrong[] =
        "{\"kid\":42,\"name\":[],\"obj_type\":7,\"key_size\":\"2048\","
        "\"elliptic_curve\":1,\"pub_key\":{},\"key_ops\":\"SIGN\","
        "\"enabled\":\"yes\",\"state\":0,\"signature\":17,\"cipher\":[],"
        "\"plain\":{},\"result\":\"true\",\"digest\":1,"
        "\"wrapped_key\":false,\"value\":5,\"transient_key\":[],"
        "\"iv\":true,\"tag\":3,\"access_token\":7,\"token_type\":[],"
        "\"expires_in\":\"600\",\"entity_id\":0,\"version\":1}";

    return constant_json(wrong, sizeof(wrong) - 1);
}

/* Builds the faulty answer; NULL for "reset" (close without answering). */
static struct MHD_Response *fault_response(const fault *f, unsigned *status)
{
    static const char bad[] = "{\"kid\": \"00000000\", \"signature\": ";
    struct MHD_Response *r = NULL;

    *status = 200;
    switch (f->action) {
    case FAULT_STATUS:
        r = status_fault_response(f, status);
        break;
    case FAULT_RESET:
    case FAULT_STALL:
        break;
    case FAULT_TRUNCATE:
        r = json_typed(MHD_create_response_from_callback(
            256, 64, truncate_reader, NULL, NULL));
        break;
    case FAULT_MALFORMED:
        r = constant_json(bad, sizeof(bad) - 1);
        break;
    case FAULT_OVERSIZED:
        r = oversized_response(f);
        break;
    case FAULT_WRONG_TYPE:
        r = wrong_type_response();
        break;
    }
    return r;
}

static json_t *parse_body(const request_state *st, int *invalid)
{
    json_error_t err;
    size_t i;

    *invalid = 0;
    for (i = 0; i < st->len; i++)
        if (st->body[i] != ' ' && st->body[i] != '\t' && st->body[i] != '\r' &&
            st->body[i] != '\n')
            break;
    if (i == st->len)
        return NULL;
    json_t *json = json_loadb((const char *)st->body, st->len, 0, &err);
    if (json == NULL)
        *invalid = 1;
    return json;
}

/* Counts an API request: in total, its connection and handshake on the
   first one, and its route (or the unknown path). Returns the route, NULL
   when there is none (*path_known: another method has one). */
static route *count_request(struct MHD_Connection *conn, request_state *st,
                            const char *method, const char *url, char *kid,
                            int *path_known)
{
    const union MHD_ConnectionInfo *ci;
    connection_state *cs;
    route *rt;

    __atomic_add_fetch(&requests_total, 1, __ATOMIC_RELAXED);
    st->in_flight = 1;
    in_flight_begin();
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    cs = ci ? ci->socket_context : NULL;
    if (cs != NULL && !cs->counted) {
        /* Counted on the first API request rather than at accept, so the
           tests' own connections to /_emulator/ do not show up. */
        cs->counted = 1;
        __atomic_add_fetch(&connections_count, 1, __ATOMIC_RELAXED);
        if (cs->tls)
            __atomic_add_fetch(&handshakes_count, 1, __ATOMIC_RELAXED);
    }
    rt = find_route(method, url, kid, path_known);
    if (rt != NULL)
        __atomic_add_fetch(&rt->count, 1, __ATOMIC_RELAXED);
    else
        count_other(method, url);
    return rt;
}

/* The checks of a routed API request (size, authentication, JSON, schema,
   approval), then its handler; the answer goes into *resp. */
static void dispatch(em_request *req, route *rt, request_state *st,
                     const char *kid, em_response *resp)
{
    const char *bearer = NULL;
    int invalid = 0;

    if (st->too_large) {
        em_error(resp, 413, "Request body larger than %u bytes", MAX_BODY);
        return;
    }
    if (!authenticate(req, rt->auth, &bearer, resp))
        return;
    req->json = parse_body(st, &invalid);
    if (invalid) {
        em_error(resp, 400, "Invalid JSON body");
        return;
    }
    if (!em_check_request(req, rt->path, resp))
        return;
    if (rt->needs_approval &&
        __atomic_load_n(&approval_required, __ATOMIC_RELAXED)) {
        em_error(resp, 403, "This operation requires approval");
        return;
    }
    /* keys of a group whose policy protects crypto operations */
    if (rt->needs_approval && !em_approval_check(req, resp))
        return;
    if (rt->session != SESSION_NONE)
        session_call(req, rt->session, bearer, resp);
    else if (rt->kid_handler != NULL)
        rt->kid_handler(req, kid, resp);
    else
        rt->handler(req, resp);
    if (resp->status == 0)
        em_error(resp, 500, "Handler produced no answer");
}

/*
 * Runs one complete request. Returns the response to queue (its status in
 * *status), or NULL with *reset set when the connection must be dropped.
 * *delay_ms is the time to hold the answer back.
 */
static struct MHD_Response *process(struct MHD_Connection *conn,
                                    const char *method, const char *url,
                                    request_state *st, unsigned *status,
                                    int *reset, long long *delay_ms)
{
    em_request req;
    em_response resp;
    struct MHD_Response *r;
    char kid[128] = "";
    route *rt;
    int path_known = 0, invalid = 0;
    fault f;

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    *reset = 0;
    *delay_ms = 0;
    req.method = method;
    req.path = url;
    req.conn = conn;
    req.body = st->body;
    req.body_len = st->len;

    if (st->control) {
        req.json = parse_body(st, &invalid);
        if (invalid)
            em_error(&resp, 400, "Invalid JSON body");
        else
            handle_control(&req, &resp);
        goto answer;
    }
    rt = count_request(conn, st, method, url, kid, &path_known);
    *delay_ms = __atomic_load_n(&latency_ms, __ATOMIC_RELAXED);
    if (fault_take(url, &f)) {
        if (f.action == FAULT_STALL) {
            *delay_ms += (long long)f.seconds * 1000;
        } else {
            r = fault_response(&f, status);
            if (r == NULL)
                *reset = 1;
            return r;
        }
    }
    if (rt == NULL) {
        if (path_known)
            em_error(&resp, 405, "Method %s not allowed on %s", method, url);
        else
            em_error(&resp, 404, "No such endpoint: %s", url);
    } else {
        dispatch(&req, rt, st, kid, &resp);
    }

answer:
    json_decref(req.json);
    *status = (unsigned)resp.status;
    r = make_response(&resp);
    json_decref(resp.json);
    free(resp.text);
    return r;
}

/* The state of a new request, made on libmicrohttpd's first call. */
static request_state *request_state_new(const char *url)
{
    request_state *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &st->start);
    st->control = opts.test_controls && strncmp(url, "/_emulator/", 11) == 0;
    return st;
}

/* Appends one piece of the body; past MAX_BODY it is dropped (413 later). */
static enum MHD_Result take_upload(request_state *st, const char *upload_data,
                                   size_t n)
{
    if (st->too_large || st->len + n > MAX_BODY) {
        /* keep reading (and dropping) so the 413 can be answered */
        st->too_large = 1;
        return MHD_YES;
    }
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        unsigned char *grown;

        while (cap < st->len + n + 1)
            cap *= 2;
        grown = realloc(st->body, cap);
        if (grown == NULL)
            return MHD_NO;
        st->body = grown;
        st->cap = cap;
    }
    memcpy(st->body + st->len, upload_data, n);
    st->len += n;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    request_state *st = *con_cls;
    struct MHD_Response *r;
    unsigned status = 0;
    int reset = 0;
    long long delay_ms = 0;
    enum MHD_Result ret;

    if (st == NULL) {
        st = request_state_new(url);
        if (st == NULL)
            return MHD_NO;
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        return take_upload(st, upload_data, n);
    }
    if (st->pending != NULL) {
        /* resumed after a delay */
        r = st->pending;
        status = st->pending_status;
        st->pending = NULL;
    } else {
        r = process(conn, method, url, st, &status, &reset, &delay_ms);
        if (reset) {
            log_request(method, url, 0, st);
            return MHD_NO;
        }
        if (delay_ms > 0) {
            st->pending = r;
            st->pending_status = status;
            MHD_suspend_connection(conn);
            delay_schedule(conn, now_ms() + delay_ms);
            return MHD_YES;
        }
    }
    log_request(method, url, status, st);
    if (st->in_flight) {
        st->in_flight = 0;
        in_flight_end();
    }
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    request_state *st = *con_cls;

    if (st == NULL)
        return;
    if (st->pending != NULL)
        MHD_destroy_response(st->pending);
    if (st->in_flight)
        in_flight_end();
    free(st->body);
    free(st);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        connection_state *cs = calloc(1, sizeof(*cs));

        /* libmicrohttpd completes the TLS handshake on every new TLS
           connection: one accepted connection is one handshake */
        if (cs != NULL)
            cs->tls = opts.use_tls;
        *socket_context = cs;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_context);
        *socket_context = NULL;
    }
}

/* ---------------------------------------------------------------------- */
/* start and stop                                                           */

static int daemon_started;

/* libmicrohttpd's own messages: start-up failures always reach stderr;
   later ones (e.g. a connection closed by a "reset" fault) follow the
   request log so that --quiet stays quiet. */
static void on_mhd_message(void *cls, const char *fmt, va_list ap)
{
    FILE *out =
        __atomic_load_n(&daemon_started, __ATOMIC_ACQUIRE) ? opts.log : stderr;

    if (out == NULL)
        return;
    fputs("smartkey-emulator: libmicrohttpd: ", out);
    vfprintf(out, fmt, ap);
}

/* opts' listen address (IPv6 adds MHD_USE_IPv6); 0 if not an IP/localhost. */
static int listen_address(struct sockaddr_storage *addr, unsigned *flags)
{
    const char *host = opts.listen_host;

    memset(addr, 0, sizeof(*addr));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;

        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(opts.listen_port);
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return 0;
        *flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)addr;

        a4->sin_family = AF_INET;
        a4->sin_port = htons(opts.listen_port);
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return 0;
    }
    return 1;
}

/* Starts the thread that releases delayed answers; 0 on failure. */
static int delay_thread_start(void)
{
    pthread_condattr_t cattr;

    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&delay_cond, &cattr);
    pthread_condattr_destroy(&cattr);
    delay_stop = 0;
    if (pthread_create(&delay_thread, NULL, delay_main, NULL) != 0)
        return 0;
    delay_thread_started = 1;
    return 1;
}

unsigned short em_http_start(const em_server_options *options)
{
    struct sockaddr_storage addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;

    opts = *options;
    latency_ms = opts.latency_ms;
    if (!listen_address(&addr, &flags))
        return 0;
    if (opts.use_tls)
        flags |= MHD_USE_TLS;
    if (!delay_thread_start())
        return 0;

    /* Without TLS the option list simply ends before the certificate. */
    daemon_handle = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_message, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)opts.threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        opts.use_tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, opts.key_pem,
        MHD_OPTION_HTTPS_MEM_CERT, opts.cert_pem, MHD_OPTION_END);
    if (daemon_handle == NULL) {
        em_http_stop();
        return 0;
    }
    __atomic_store_n(&daemon_started, 1, __ATOMIC_RELEASE);
    info = MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

void em_http_stop(void)
{
    if (delay_thread_started) {
        /* held answers are released first: libmicrohttpd must not be
           stopped with suspended connections */
        pthread_mutex_lock(&delay_lock);
        delay_stop = 1;
        pthread_cond_signal(&delay_cond);
        pthread_mutex_unlock(&delay_lock);
        pthread_join(delay_thread, NULL);
        delay_thread_started = 0;
    }
    if (daemon_handle != NULL) {
        MHD_stop_daemon(daemon_handle);
        daemon_handle = NULL;
    }
    sessions_expire_all();
    faults_clear();
    em_approval_shutdown();
}
