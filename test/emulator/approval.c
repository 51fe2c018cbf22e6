/*
 * Quorum approvals: groups with an approval policy, approval requests and
 * the apps that approve them (docs/smartkey-api.md §6, docs/local-server.md).
 *
 * A crypto call naming a key of a group whose policy protects crypto
 * operations is refused (403 "This operation requires approval"). The
 * caller then posts the call itself (method, operation, body) to
 * /sys/v1/approval_requests; the members of the policy approve or deny it;
 * once the quorum is reached the call runs, as the requester (its app and
 * its session, so its transient keys resolve), and its answer is kept for
 * POST .../result.
 *
 * Locking: one mutex guards the groups, the apps and the requests; it is
 * never held while an approved call runs.
 */
#include "emulator.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define DEFAULT_EXPIRY_S 86400
#define MAX_POLICY_DEPTH 8

typedef struct group {
    char id[37];
    char *name;
    json_t *description;     /* string or NULL */
    json_t *approval_policy; /* as stored, or NULL */
    char created_at[17];
    struct group *next;
} group;

typedef struct app {
    char id[37];
    char *name;
    char *api_key; /* base64("id:secret") */
    struct app *next;
} app;

typedef struct areq {
    char id[37];
    char status[10]; /* PENDING APPROVED DENIED FAILED */
    char method[8];
    char *operation;
    json_t *body;
    json_t *description; /* string or NULL */
    em_principal requester;
    json_t *policies;  /* [QuorumPolicy...], one per protected group */
    json_t *subjects;  /* [{"sobject": kid}...] */
    json_t *approvers; /* [{"app": id}...] */
    char created_at[17];
    double expiry; /* epoch seconds */
    char denier[37];
    char *denial_reason;
    int running; /* the quorum was reached; the call is running */
    int result_status;
    json_t *result_body;
    int result_viewed;
    struct areq *next;
} areq;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static group *groups;
static app *apps;
static areq *requests, **requests_tail = &requests;
static long expiry_seconds = DEFAULT_EXPIRY_S;
/* some group protects crypto operations: lets every other crypto call skip
   the look-ups of em_approval_check */
static int any_protected;

/* Called with the lock held after a group's policy changed. */
static void recount_protected(void)
{
    int n = 0;

    for (group *g = groups; g != NULL; g = g->next)
        if (g->approval_policy != NULL &&
            json_is_true(json_object_get(g->approval_policy,
                                         "protect_crypto_operations")))
            n = 1;
    __atomic_store_n(&any_protected, n, __ATOMIC_RELEASE);
}

static double epoch_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void time_format(double t, char out[17])
{
    time_t s = (time_t)t;
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---------------------------------------------------------------------- */
/* policies                                                                 */

/* Checks a QuorumPolicy: {"quorum":{"n":N,"members":[...]}} or a leaf
   {"user":uuid} / {"app":uuid}. Fills resp (400) when invalid. */
static int policy_valid(json_t *p, int depth, em_response *resp)
{
    json_t *q, *members, *n, *m;
    const char *key;
    json_t *v;
    size_t i;

    if (depth > MAX_POLICY_DEPTH || !json_is_object(p) ||
        json_object_size(p) != 1)
        return em_error(resp, 400,
                        "Invalid approval policy: each policy is an object "
                        "with exactly one of `quorum`, `user`, `app`");
    if ((v = json_object_get(p, "user")) != NULL ||
        (v = json_object_get(p, "app")) != NULL) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != 36)
            return em_error(resp, 400,
                            "Invalid approval policy: `user` and `app` are "
                            "UUIDs");
        return 1;
    }
    q = json_object_get(p, "quorum");
    if (!json_is_object(q))
        return em_error(resp, 400,
                        "Invalid approval policy: unknown field, expected one "
                        "of `quorum`, `user`, `app`");
    json_object_foreach(q, key, v)
    {
        if (strcmp(key, "n") != 0 && strcmp(key, "members") != 0 &&
            strcmp(key, "require_password") != 0 &&
            strcmp(key, "require_2fa") != 0)
            return em_error(resp, 400,
                            "Invalid approval policy: unknown field "
                            "`quorum.%s`, expected one of `n`, `members`, "
                            "`require_password`, `require_2fa`",
                            key);
    }
    n = json_object_get(q, "n");
    members = json_object_get(q, "members");
    if (!json_is_integer(n) || !json_is_array(members) ||
        json_integer_value(n) < 1 ||
        (size_t)json_integer_value(n) > json_array_size(members))
        return em_error(resp, 400,
                        "Invalid approval policy: a quorum needs `n` between "
                        "1 and the number of its `members`");
    json_array_foreach(members, i, m)
    {
        if (!policy_valid(m, depth + 1, resp))
            return 0;
    }
    return 1;
}

/* Whether the approvals (app ids) satisfy the policy. */
static int policy_met(json_t *p, json_t *approvers)
{
    json_t *q = json_object_get(p, "quorum"), *m, *a, *leaf;
    size_t i, j;
    long met = 0;

    if (q == NULL) {
        leaf = json_object_get(p, "app");
        if (leaf == NULL)
            leaf = json_object_get(p, "user");
        json_array_foreach(approvers, j, a)
        {
            if (json_equal(json_object_get(a, "app"), leaf))
                return 1;
        }
        return 0;
    }
    json_array_foreach(json_object_get(q, "members"), i, m)
    {
        met += policy_met(m, approvers);
    }
    return met >= json_integer_value(json_object_get(q, "n"));
}

/* Adds the leaves of the policy ({"app":..} / {"user":..}) to out. */
static void policy_leaves(json_t *p, json_t *out)
{
    json_t *q = json_object_get(p, "quorum"), *m, *o;
    size_t i;

    if (q == NULL) {
        json_array_foreach(out, i, o)
        {
            if (json_equal(o, p))
                return;
        }
        json_array_append_new(out, json_deep_copy(p));
        return;
    }
    json_array_foreach(json_object_get(q, "members"), i, m)
    {
        policy_leaves(m, out);
    }
}

static int is_member(json_t *policies, const char *app_id)
{
    json_t *leaves = json_array(), *l, *p;
    size_t i;
    int found = 0;

    json_array_foreach(policies, i, p)
    {
        policy_leaves(p, leaves);
    }
    json_array_foreach(leaves, i, l)
    {
        const char *id = em_json_str(l, "app");

        if (id == NULL)
            id = em_json_str(l, "user");
        if (id != NULL && strcmp(id, app_id) == 0)
            found = 1;
    }
    json_decref(leaves);
    return found;
}

/* ---------------------------------------------------------------------- */
/* groups                                                                   */

static group *group_find(const char *id)
{
    group *g;

    for (g = groups; g != NULL; g = g->next)
        if (strcmp(g->id, id) == 0)
            return g;
    return NULL;
}

/* The default group exists without being created. */
static group *group_find_or_default(const char *id)
{
    group *g = group_find(id);

    if (g == NULL && strcmp(id, em_store_default_group()) == 0 &&
        (g = calloc(1, sizeof(*g))) != NULL) {
        snprintf(g->id, sizeof(g->id), "%s", id);
        g->name = strdup("Default group");
        em_time_now(g->created_at);
        g->next = groups;
        groups = g;
    }
    return g;
}

int em_group_exists(const char *id)
{
    int found;

    if (strcasecmp(id, em_store_default_group()) == 0)
        return 1;
    pthread_mutex_lock(&lock);
    found = group_find(id) != NULL;
    pthread_mutex_unlock(&lock);
    return found;
}

static json_t *group_json(const group *g)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s}", "group_id", g->id, "name", g->name,
                  "acct_id", em_store_account(), "created_at", g->created_at);

    if (g->description != NULL)
        json_object_set(j, "description", g->description);
    if (g->approval_policy != NULL)
        json_object_set(j, "approval_policy", g->approval_policy);
    return j;
}

static json_t *group_json_of(const char *id)
{
    group *g = group_find_or_default(id);

    return g != NULL ? group_json(g) : NULL;
}

/* Validates and copies an approval_policy field of a group request. */
static int approval_policy_of(json_t *body, json_t **out, em_response *resp)
{
    json_t *ap = json_object_get(body, "approval_policy"), *policy, *v;
    const char *key;

    *out = NULL;
    if (ap == NULL || json_is_null(ap))
        return 1;
    if (!json_is_object(ap))
        return em_error(resp, 400,
                        "Invalid request: `approval_policy` must be an object");
    json_object_foreach(ap, key, v)
    {
        if (strncmp(key, "protect_", 8) == 0 && !json_is_boolean(v) &&
            strcmp(key, "protect_permissions") != 0)
            return em_error(resp, 400,
                            "Invalid request: `approval_policy.%s` must be a "
                            "boolean",
                            key);
    }
    policy = json_object_get(ap, "policy");
    if (policy == NULL || !policy_valid(policy, 0, resp)) {
        if (policy == NULL)
            em_error(resp, 400,
                     "Invalid request: `approval_policy.policy` is required");
        return 0;
    }
    *out = json_deep_copy(ap);
    return 1;
}

int em_h_groups_create(em_request *req, em_response *resp)
{
    const char *name = em_json_str(req->json, "name");
    json_t *policy = NULL, *desc;
    group *g, *other;

    if (!json_is_object(req->json) || name == NULL)
        return em_error(resp, 400, "A group needs a `name`");
    if (!approval_policy_of(req->json, &policy, resp))
        return 0;
    g = calloc(1, sizeof(*g));
    em_uuid(g->id);
    g->name = strdup(name);
    desc = json_object_get(req->json, "description");
    g->description = json_is_string(desc) ? json_incref(desc) : NULL;
    g->approval_policy = policy;
    em_time_now(g->created_at);
    pthread_mutex_lock(&lock);
    for (other = groups; other != NULL; other = other->next)
        if (strcmp(other->name, name) == 0)
            break;
    if (other == NULL) {
        g->next = groups;
        groups = g;
        recount_protected();
    }
    pthread_mutex_unlock(&lock);
    if (other != NULL) {
        json_decref(policy);
        json_decref(g->description);
        free(g->name);
        free(g);
        return em_error(resp, 409, "A group with this name already exists");
    }
    pthread_mutex_lock(&lock);
    em_json(resp, 201, group_json(g));
    pthread_mutex_unlock(&lock);
    return 1;
}

int em_h_groups_list(em_request *req, em_response *resp)
{
    json_t *list = json_array();
    group *g;

    pthread_mutex_lock(&lock);
    group_find_or_default(em_store_default_group());
    for (g = groups; g != NULL; g = g->next)
        json_array_append_new(list, group_json(g));
    pthread_mutex_unlock(&lock);
    return em_json(resp, 200, list);
}

/* A GET of one record: 200 with the JSON that json_of (called under the
   lock) makes of record id, or 404 with SmartKey's text missing. */
static int get_one(json_t *(*json_of)(const char *id), const char *id,
                   const char *missing, em_response *resp)
{
    json_t *json;

    pthread_mutex_lock(&lock);
    json = json_of(id);
    pthread_mutex_unlock(&lock);
    return json != NULL ? em_json(resp, 200, json)
                        : em_error(resp, 404, "%s", missing);
}

int em_h_group_get(em_request *req, const char *id, em_response *resp)
{
    return get_one(group_json_of, id, "Group does not exist", resp);
}

int em_h_group_patch(em_request *req, const char *id, em_response *resp)
{
    json_t *policy = NULL, *ap;
    const char *name = em_json_str(req->json, "name");
    group *g;

    if (!json_is_object(req->json))
        return em_error(resp, 400, "Expected a JSON object");
    ap = json_object_get(req->json, "approval_policy");
    if (!approval_policy_of(req->json, &policy, resp))
        return 0;
    pthread_mutex_lock(&lock);
    g = group_find_or_default(id);
    if (g != NULL) {
        if (ap != NULL) {
            /* null removes the policy */
            json_decref(g->approval_policy);
            g->approval_policy = policy;
            policy = NULL;
        }
        if (name != NULL) {
            free(g->name);
            g->name = strdup(name);
        }
        recount_protected();
        em_json(resp, 200, group_json(g));
    }
    pthread_mutex_unlock(&lock);
    json_decref(policy);
    return g != NULL ? 1 : em_error(resp, 404, "Group does not exist");
}

/* The group's policy when it protects crypto operations (a new
   reference), else NULL. Called with the lock held. */
static json_t *crypto_policy_of(const char *group_id)
{
    group *g = group_find(group_id);
    json_t *ap;

    if (g == NULL || (ap = g->approval_policy) == NULL ||
        !json_is_true(json_object_get(ap, "protect_crypto_operations")))
        return NULL;
    return json_incref(json_object_get(ap, "policy"));
}

/* ---------------------------------------------------------------------- */
/* which keys a crypto call names                                           */

/* Resolves a descriptor and, when its key is in a protected group, adds
   the group's policy and the key to the lists. */
static void protect_descriptor(const em_request *req, json_t *desc,
                               json_t *policies, json_t *subjects,
                               json_t *groups_seen)
{
    em_response scratch = {0};
    em_obj *obj;
    json_t *policy;
    const char *group_id;
    size_t i;
    json_t *seen;
    int known = 0;

    if (!json_is_object(desc))
        return;
    obj = em_resolve(req, desc, "key", &scratch);
    json_decref(scratch.json);
    free(scratch.text);
    if (obj == NULL)
        return; /* the handler answers the bad descriptor */
    if (obj->kid[0] == '\0') {
        em_obj_release(obj); /* transient keys belong to no group */
        return;
    }
    group_id = em_obj_group(obj);
    pthread_mutex_lock(&lock);
    policy = crypto_policy_of(group_id);
    pthread_mutex_unlock(&lock);
    if (policy != NULL) {
        json_array_append_new(subjects,
                              json_pack("{s:s}", "sobject", obj->kid));
        json_array_foreach(groups_seen, i, seen)
        {
            if (strcmp(json_string_value(seen), group_id) == 0)
                known = 1;
        }
        if (!known) {
            json_array_append_new(groups_seen, json_string(group_id));
            json_array_append(policies, policy);
        }
        json_decref(policy);
    }
    em_obj_release(obj);
}

/* The policies and subjects of a crypto call's body. */
static void protection_of(const em_request *req, json_t *body, json_t *policies,
                          json_t *subjects)
{
    json_t *seen = json_array(), *item;
    size_t i;

    if (json_is_object(body)) {
        protect_descriptor(req, json_object_get(body, "key"), policies,
                           subjects, seen);
        protect_descriptor(req, json_object_get(body, "subject"), policies,
                           subjects, seen);
    } else if (json_is_array(body)) {
        json_array_foreach(body, i, item)
        {
            const char *kid = em_json_str(item, "kid");

            if (kid != NULL) {
                json_t *desc = json_pack("{s:s}", "kid", kid);

                protect_descriptor(req, desc, policies, subjects, seen);
                json_decref(desc);
            } else {
                protect_descriptor(req, json_object_get(item, "key"), policies,
                                   subjects, seen);
            }
        }
    }
    json_decref(seen);
}

int em_approval_check(em_request *req, em_response *resp)
{
    json_t *policies, *subjects;
    int protected_call;

    if (!__atomic_load_n(&any_protected, __ATOMIC_ACQUIRE))
        return 1;
    policies = json_array();
    subjects = json_array();
    protection_of(req, req->json, policies, subjects);
    protected_call = json_array_size(policies) > 0;
    json_decref(policies);
    json_decref(subjects);
    if (protected_call)
        return em_error(resp, 403, "This operation requires approval");
    return 1;
}

/* ---------------------------------------------------------------------- */
/* apps (second and third identities for tests)                             */

int em_app_lookup(const char *credential, char app_id[37])
{
    app *a;
    int found = 0;
    size_t len = strlen(credential);

    pthread_mutex_lock(&lock);
    for (a = apps; a != NULL; a = a->next)
        if (strlen(a->api_key) == len &&
            CRYPTO_memcmp(a->api_key, credential, len) == 0) {
            snprintf(app_id, 37, "%s", a->id);
            found = 1;
            break;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

int em_control_apps(em_request *req, em_response *resp)
{
    const char *name = em_json_str(req->json, "name");
    unsigned char secret[24];
    char *secret_b64, *cred, *api_key;
    app *a;

    if (!json_is_object(req->json) || name == NULL ||
        json_object_size(req->json) != 1)
        return em_error(resp, 400, "Expected {\"name\": \"...\"}");
    if (RAND_bytes(secret, sizeof(secret)) != 1)
        return em_error(resp, 500, "No randomness");
    a = calloc(1, sizeof(*a));
    em_uuid(a->id);
    a->name = strdup(name);
    secret_b64 = em_b64_encode(secret, sizeof(secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    if (asprintf(&cred, "%s:%s", a->id, secret_b64) < 0)
        abort();
    api_key = em_b64_encode((unsigned char *)cred, strlen(cred));
    OPENSSL_cleanse(cred, strlen(cred));
    OPENSSL_cleanse(secret_b64, strlen(secret_b64));
    free(cred);
    free(secret_b64);
    a->api_key = api_key;
    pthread_mutex_lock(&lock);
    a->next = apps;
    apps = a;
    pthread_mutex_unlock(&lock);
    return em_json(resp, 201,
                   json_pack("{s:s, s:s, s:s}", "app_id", a->id, "name", name,
                             "api_key", api_key));
}

/* ---------------------------------------------------------------------- */
/* approval requests                                                        */

static void areq_free(areq *r)
{
    free(r->operation);
    json_decref(r->body);
    json_decref(r->description);
    json_decref(r->policies);
    json_decref(r->subjects);
    json_decref(r->approvers);
    json_decref(r->result_body);
    free(r->denial_reason);
    free(r);
}

static areq *areq_find(const char *id)
{
    areq *r;

    for (r = requests; r != NULL; r = r->next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

/* A pending request past its expiry fails (called with the lock held). */
static void areq_expire(areq *r)
{
    if (strcmp(r->status, "PENDING") == 0 && !r->running &&
        epoch_now() >= r->expiry) {
        snprintf(r->status, sizeof(r->status), "FAILED");
        r->result_status = 410;
        r->result_body = json_string("This approval request has expired");
    }
}

static json_t *principal_json(const char *app_id)
{
    return json_pack("{s:s}", "app", app_id);
}

static json_t *areq_json(areq *r)
{
    char expiry[17];
    json_t *reviewers = json_array(), *p, *j;
    size_t i;

    areq_expire(r);
    json_array_foreach(r->policies, i, p)
    {
        policy_leaves(p, reviewers);
    }
    time_format(r->expiry, expiry);
    j = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:o, s:O, s:o, s:O, s:s, "
                  "s:s, s:b}",
                  "request_id", r->id, "status", r->status, "method", r->method,
                  "operation", r->operation, "body", r->body, "acct_id",
                  em_store_account(), "requester",
                  principal_json(r->requester.app_id), "approvers",
                  r->approvers, "reviewers", reviewers, "subjects", r->subjects,
                  "created_at", r->created_at, "expiry", expiry,
                  "result_viewed", r->result_viewed);
    if (r->description != NULL)
        json_object_set(j, "description", r->description);
    if (r->denier[0] != '\0')
        json_object_set_new(j, "denier", principal_json(r->denier));
    if (r->denial_reason != NULL)
        json_object_set_new(j, "denial_reason", json_string(r->denial_reason));
    return j;
}

static json_t *areq_json_of(const char *id)
{
    areq *r = areq_find(id);

    return r != NULL ? areq_json(r) : NULL;
}

int em_h_approval_create(em_request *req, em_response *resp)
{
    const char *method = em_json_str(req->json, "method");
    const char *operation = em_json_str(req->json, "operation");
    json_t *body = json_object_get(req->json, "body");
    json_t *desc = json_object_get(req->json, "description");
    json_t *policies, *subjects;
    em_request inner;
    areq *r;

    if (!json_is_object(req->json) || method == NULL || operation == NULL)
        return em_error(resp, 400,
                        "An approval request needs `method` and `operation`");
    if (desc != NULL && !json_is_null(desc) && !json_is_string(desc))
        return em_error(resp, 400, "`description` must be a string");
    if (!em_http_is_crypto_route(method, operation))
        return em_error(resp, 400,
                        "Operation %.100s %.200s cannot be the subject of an "
                        "approval request",
                        method, operation);
    /* the call is checked as it would be when sent directly */
    memset(&inner, 0, sizeof(inner));
    inner.method = method;
    inner.path = operation;
    inner.json = body;
    inner.who = req->who;
    if (!em_check_request(&inner, operation, resp))
        return 0;
    policies = json_array();
    subjects = json_array();
    protection_of(&inner, body, policies, subjects);
    if (json_array_size(policies) == 0) {
        json_decref(policies);
        json_decref(subjects);
        return em_error(resp, 400,
                        "This operation does not require approval: send it "
                        "directly");
    }
    r = calloc(1, sizeof(*r));
    em_uuid(r->id);
    snprintf(r->status, sizeof(r->status), "PENDING");
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->operation = strdup(operation);
    r->body = body != NULL ? json_deep_copy(body) : json_null();
    r->description = json_is_string(desc) ? json_incref(desc) : NULL;
    r->requester = req->who;
    r->policies = policies;
    r->subjects = subjects;
    r->approvers = json_array();
    em_time_now(r->created_at);
    pthread_mutex_lock(&lock);
    r->expiry = epoch_now() + (double)expiry_seconds;
    *requests_tail = r;
    requests_tail = &r->next;
    em_json(resp, 201, areq_json(r));
    pthread_mutex_unlock(&lock);
    return 1;
}

static int matches_principal(json_t *list, const char *app_id)
{
    json_t *p;
    size_t i;

    json_array_foreach(list, i, p)
    {
        const char *id = em_json_str(p, "app");

        if (id == NULL)
            id = em_json_str(p, "user");
        if (id != NULL && strcmp(id, app_id) == 0)
            return 1;
    }
    return 0;
}

int em_h_approval_list(em_request *req, em_response *resp)
{
    const char *requester = em_query(req, "requester");
    const char *reviewer = em_query(req, "reviewer");
    const char *subject = em_query(req, "subject");
    const char *status = em_query(req, "status");
    json_t *list = json_array();
    areq *r;

    if (status != NULL && strcmp(status, "PENDING") != 0 &&
        strcmp(status, "APPROVED") != 0 && strcmp(status, "DENIED") != 0 &&
        strcmp(status, "FAILED") != 0) {
        json_decref(list);
        return em_error(resp, 400,
                        "Invalid request: unknown variant `%.50s` of "
                        "`status`, expected one of `PENDING`, `APPROVED`, "
                        "`DENIED`, `FAILED`",
                        status);
    }
    pthread_mutex_lock(&lock);
    for (r = requests; r != NULL; r = r->next) {
        json_t *j = areq_json(r);

        if ((requester == NULL ||
             strcmp(requester, r->requester.app_id) == 0) &&
            (reviewer == NULL ||
             matches_principal(json_object_get(j, "reviewers"), reviewer)) &&
            (subject == NULL ||
             json_array_size(r->subjects) > 0) /* refined below */
            && (status == NULL || strcmp(status, r->status) == 0)) {
            int subject_ok = subject == NULL;
            json_t *s;
            size_t i;

            json_array_foreach(r->subjects, i, s)
            {
                const char *kid = em_json_str(s, "sobject");

                if (subject != NULL && kid != NULL && strcmp(kid, subject) == 0)
                    subject_ok = 1;
            }
            if (subject_ok) {
                json_array_append_new(list, j);
                continue;
            }
        }
        json_decref(j);
    }
    pthread_mutex_unlock(&lock);
    return em_json(resp, 200, list);
}

int em_h_approval_get(em_request *req, const char *id, em_response *resp)
{
    return get_one(areq_json_of, id, "Approval request not found", resp);
}

int em_h_approval_delete(em_request *req, const char *id, em_response *resp)
{
    areq **p, *r = NULL;
    int allowed = 1;

    pthread_mutex_lock(&lock);
    for (p = &requests; *p != NULL; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0) {
            r = *p;
            allowed = strcmp(r->requester.app_id, req->who.app_id) == 0 ||
                      is_member(r->policies, req->who.app_id);
            if (allowed && !r->running) {
                *p = r->next;
                if (requests_tail == &r->next)
                    requests_tail = p;
            }
            break;
        }
    pthread_mutex_unlock(&lock);
    if (r == NULL)
        return em_error(resp, 404, "Approval request not found");
    if (!allowed)
        return em_error(resp, 403,
                        "Only the requester or a reviewer may delete an "
                        "approval request");
    if (r->running)
        return em_error(resp, 409, "The approved operation is running");
    areq_free(r);
    resp->status = 204;
    return 1;
}

/* Checks that the caller may review r now; fills resp when not. Called
   with the lock held. */
static int may_review(areq *r, const em_request *req, em_response *resp)
{
    areq_expire(r);
    if (r->running || strcmp(r->status, "PENDING") != 0)
        return em_error(resp, 409,
                        strcmp(r->status, "FAILED") == 0 &&
                                r->result_status == 410
                            ? "This approval request has expired"
                            : "The approval request is not pending (%s)",
                        r->status);
    if (strcmp(r->requester.app_id, req->who.app_id) == 0)
        return em_error(resp, 403,
                        "The requester cannot review its own approval "
                        "request");
    if (!is_member(r->policies, req->who.app_id))
        return em_error(resp, 403,
                        "Not a reviewer of this approval request: the "
                        "quorum policy does not name this app or user");
    return 1;
}

/* The request id with the lock held, when the caller may review it now;
   else NULL, the lock released and resp filled. */
static areq *lock_for_review(const char *id, const em_request *req,
                             em_response *resp)
{
    areq *r;

    pthread_mutex_lock(&lock);
    r = areq_find(id);
    if (r == NULL)
        em_error(resp, 404, "Approval request not found");
    else if (!may_review(r, req, resp))
        r = NULL;
    if (r == NULL)
        pthread_mutex_unlock(&lock);
    return r;
}

/* Runs the approved call as the requester and keeps its answer. */
static void run_approved(areq *r)
{
    em_request inner;
    em_response out = {0};
    json_t *body;

    memset(&inner, 0, sizeof(inner));
    inner.method = r->method;
    inner.path = r->operation;
    inner.json = r->body;
    inner.who = r->requester;
    em_http_execute(&inner, &out);
    if (out.json != NULL)
        body = out.json;
    else
        body = json_string(out.text != NULL ? out.text : "");
    free(out.text);
    pthread_mutex_lock(&lock);
    r->result_status = out.status;
    r->result_body = body;
    r->running = 0;
    snprintf(r->status, sizeof(r->status), "%s",
             out.status < 300 ? "APPROVED" : "FAILED");
    pthread_mutex_unlock(&lock);
}

int em_h_approval_approve(em_request *req, const char *id, em_response *resp)
{
    areq *r;
    int run = 0;
    json_t *p;
    size_t i;

    if (req->json != NULL && !json_is_object(req->json))
        return em_error(resp, 400, "Expected a JSON object");
    r = lock_for_review(id, req, resp);
    if (r == NULL)
        return 0;
    if (!matches_principal(r->approvers, req->who.app_id))
        json_array_append_new(r->approvers, principal_json(req->who.app_id));
    run = 1;
    json_array_foreach(r->policies, i, p)
    {
        if (!policy_met(p, r->approvers))
            run = 0;
    }
    r->running = run;
    pthread_mutex_unlock(&lock);
    /* a request is deleted only when not running: r stays valid */
    if (run)
        run_approved(r);
    pthread_mutex_lock(&lock);
    em_json(resp, 200, areq_json(r));
    pthread_mutex_unlock(&lock);
    return 1;
}

int em_h_approval_deny(em_request *req, const char *id, em_response *resp)
{
    json_t *reason = json_object_get(req->json, "reason");
    areq *r;

    if (req->json != NULL && !json_is_object(req->json))
        return em_error(resp, 400, "Expected a JSON object");
    if (reason != NULL && !json_is_null(reason) && !json_is_string(reason))
        return em_error(resp, 400, "`reason` must be a string");
    r = lock_for_review(id, req, resp);
    if (r == NULL)
        return 0;
    snprintf(r->status, sizeof(r->status), "DENIED");
    snprintf(r->denier, sizeof(r->denier), "%s", req->who.app_id);
    if (json_is_string(reason))
        r->denial_reason = strdup(json_string_value(reason));
    em_json(resp, 200, areq_json(r));
    pthread_mutex_unlock(&lock);
    return 1;
}

int em_h_approval_result(em_request *req, const char *id, em_response *resp)
{
    areq *r;

    pthread_mutex_lock(&lock);
    r = areq_find(id);
    if (r == NULL) {
        pthread_mutex_unlock(&lock);
        return em_error(resp, 404, "Approval request not found");
    }
    if (strcmp(r->requester.app_id, req->who.app_id) != 0) {
        pthread_mutex_unlock(&lock);
        return em_error(resp, 403,
                        "Only the requester may read the result of an "
                        "approval request");
    }
    areq_expire(r);
    if (strcmp(r->status, "PENDING") == 0 || r->running) {
        pthread_mutex_unlock(&lock);
        return em_error(resp, 400, "The approval request is still pending");
    }
    if (strcmp(r->status, "DENIED") == 0) {
        em_error(resp, 400, "The approval request was denied%s%s",
                 r->denial_reason ? ": " : "",
                 r->denial_reason ? r->denial_reason : "");
        pthread_mutex_unlock(&lock);
        return 0;
    }
    r->result_viewed = 1;
    em_json(resp, 200,
            json_pack("{s:i, s:O}", "status", r->result_status, "body",
                      r->result_body));
    pthread_mutex_unlock(&lock);
    return 1;
}

/* POST /_emulator/approval/expiry {"seconds": N[, "request_id": id]}:
   the lifetime of requests made from now on, or, with request_id, the time
   left to that request (0 expires it now). */
int em_control_approval_expiry(em_request *req, em_response *resp)
{
    json_t *seconds = json_object_get(req->json, "seconds");
    const char *id = em_json_str(req->json, "request_id");
    const char *key;
    json_t *v;
    areq *r;

    json_object_foreach(req->json, key, v)
    {
        if (strcmp(key, "seconds") != 0 && strcmp(key, "request_id") != 0)
            return em_error(resp, 400, "Unknown field `%s`", key);
    }
    if (!json_is_integer(seconds) || json_integer_value(seconds) < 0 ||
        json_integer_value(seconds) > 10 * 365 * 86400)
        return em_error(resp, 400,
                        "Expected {\"seconds\": N[, \"request_id\": id]}");
    pthread_mutex_lock(&lock);
    if (id == NULL) {
        expiry_seconds = (long)json_integer_value(seconds);
        if (expiry_seconds == 0)
            expiry_seconds = DEFAULT_EXPIRY_S;
        r = NULL;
    } else if ((r = areq_find(id)) != NULL) {
        r->expiry = epoch_now() + (double)json_integer_value(seconds);
    }
    pthread_mutex_unlock(&lock);
    if (id != NULL && r == NULL)
        return em_error(resp, 404, "Approval request not found");
    return em_json(resp, 200,
                   json_pack("{s:I}", "seconds", json_integer_value(seconds)));
}

void em_approval_shutdown(void)
{
    areq *r, *rn;
    group *g, *gn;
    app *a, *an;

    pthread_mutex_lock(&lock);
    for (r = requests; r != NULL; r = rn) {
        rn = r->next;
        areq_free(r);
    }
    requests = NULL;
    requests_tail = &requests;
    for (g = groups; g != NULL; g = gn) {
        gn = g->next;
        free(g->name);
        json_decref(g->description);
        json_decref(g->approval_policy);
        free(g);
    }
    groups = NULL;
    __atomic_store_n(&any_protected, 0, __ATOMIC_RELEASE);
    for (a = apps; a != NULL; a = an) {
        an = a->next;
        free(a->name);
        OPENSSL_cleanse(a->api_key, strlen(a->api_key));
        free(a->api_key);
        free(a);
    }
    apps = NULL;
    pthread_mutex_unlock(&lock);
}
