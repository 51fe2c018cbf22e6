/*
 * The wire side of quorum approvals (docs/smartkey-api.md §6): a call that
 * SmartKey answers 403 "This operation requires approval" is posted to
 * /sys/v1/approval_requests, polled with GET /sys/v1/approval_requests/{id}
 * and completed from POST /sys/v1/approval_requests/{id}/result. What the
 * user is told is the provider's business (provider/approval.c).
 */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "internal.h"

#define POLL_FIRST_MS       500
#define POLL_MAX_MS         8000
#define DEFAULT_TIMEOUT_S   600.0
#define APPROVALS_PATH      "/sys/v1/approval_requests"
#define APPROVALS_PATH_LEN  (sizeof(APPROVALS_PATH) - 1)
#define APPROVAL_PATH_SPACE (APPROVALS_PATH_LEN + 1 + 36 + 8)

/* Whether the body names a transient key anywhere (a descriptor). */
static int names_transient_key(json_t *value)
{
    const char *field;
    json_t *inner;
    size_t i;

    if (json_is_object(value)) {
        if (json_object_get(value, "transient_key") != NULL)
            return 1;
        json_object_foreach(value, field, inner)
        {
            if (names_transient_key(inner))
                return 1;
        }
    } else if (json_is_array(value)) {
        json_array_foreach(value, i, inner)
        {
            if (names_transient_key(inner))
                return 1;
        }
    }
    return 0;
}

/* The error of a call that failed once approved: SmartKey's status and
   message (a JSON string) as if the call had been answered directly. */
static void result_error(long status, json_t *body, const char *request,
                         const char *id, sk_error *err)
{
    sk_err_kind kind;
    const char *text = json_is_string(body) ? json_string_value(body) : "";

    if (status == 403)
        kind = strstr(text, "not allowed") != NULL ? SK_ERR_FORBIDDEN
                                                   : SK_ERR_APPROVAL_DENIED;
    else if (status != 404 &&
             (status == 410 || strstr(text, "expired") != NULL))
        kind = SK_ERR_APPROVAL_EXPIRED;
    else if (status >= 300 && status < 400)
        kind = SK_ERR_BAD_REQUEST;
    else
        kind = sk_err_kind_of_status(status);
    sk_error_set(err, kind, request, "%s", "");
    err->http_status = status;
    if (text[0] != '\0') {
        char line[400];

        snprintf(line, sizeof(line), "approval request %s: %s", id, text);
        sk_error_set_text(err, line, strlen(line));
    } else {
        snprintf(err->message, sizeof(err->message),
                 "approval request %s: the approved call failed with HTTP "
                 "%ld",
                 id, status);
    }
}

/* POST .../result: the call's answer (status < 300) or its error. */
static int read_result(sk_client *client, const char *id, const char *request,
                       json_t **response, sk_error *err)
{
    char path[APPROVAL_PATH_SPACE];
    json_t *answer = NULL, *body;
    json_int_t status;
    int ok = 0;

    snprintf(path, sizeof(path), APPROVALS_PATH "/%s/result", id);
    if (!sk_http_json(client, "POST", path,
                      "POST " APPROVALS_PATH "/{id}/result", NULL,
                      SK_HTTP_IDEMPOTENT, &answer, err))
        return 0;
    body = json_object_get(answer, "body");
    if (!json_is_object(answer) ||
        !json_is_integer(json_object_get(answer, "status")) || body == NULL) {
        sk_error_set(err, SK_ERR_PROTOCOL,
                     "POST " APPROVALS_PATH "/{id}/result",
                     "the result of approval request %s is not "
                     "{\"status\", \"body\"}",
                     id);
    } else if ((status = json_integer_value(
                    json_object_get(answer, "status"))) >= 300 ||
               status < 200) {
        result_error((long)status, body, request, id, err);
    } else {
        *response = json_incref(body);
        ok = 1;
    }
    json_decref(answer);
    return ok;
}

/* GET the request: its status word into status (PENDING, ...), and for a
   resumed request the check that it is this call. */
static int get_status(sk_client *client, const char *id, char status[16],
                      json_t **request_out, sk_error *err)
{
    static const char request[] = "GET " APPROVALS_PATH "/{id}";
    char path[APPROVAL_PATH_SPACE];
    json_t *answer = NULL;
    const char *s = NULL;

    snprintf(path, sizeof(path), APPROVALS_PATH "/%s", id);
    if (!sk_http_json(client, "GET", path, request, NULL, SK_HTTP_IDEMPOTENT,
                      &answer, err)) {
        if (err->kind == SK_ERR_NOT_FOUND) {
            err->kind = SK_ERR_APPROVAL_EXPIRED;
            snprintf(err->message, sizeof(err->message),
                     "approval request %s does not exist (expired, deleted "
                     "or never made)",
                     id);
        }
        return 0;
    }
    if (!json_is_object(answer) ||
        !sk_json_need_string(answer, "status", &s, request, err)) {
        if (err->kind == SK_ERR_NONE)
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "the approval request is not a JSON object");
        json_decref(answer);
        return 0;
    }
    snprintf(status, 16, "%s", s);
    if (request_out != NULL)
        *request_out = answer;
    else
        json_decref(answer);
    return 1;
}

static void denied_error(json_t *areq, const char *id, const char *request,
                         sk_error *err)
{
    const char *reason = NULL, *denier = NULL;
    json_t *who = json_object_get(areq, "denier");
    char line[400];

    sk_json_string(areq, "denial_reason", &reason, request, err);
    if (json_is_object(who) &&
        sk_json_string(who, "app", &denier, request, err) != 1 &&
        sk_json_string(who, "user", &denier, request, err) != 1)
        denier = NULL;
    sk_error_set(err, SK_ERR_APPROVAL_DENIED, request, "%s", "");
    snprintf(line, sizeof(line), "approval request %s was denied%s%s%s%s", id,
             denier != NULL ? " by " : "", denier != NULL ? denier : "",
             reason != NULL ? ": " : " (no reason given)",
             reason != NULL ? reason : "");
    sk_error_set_text(err, line, strlen(line));
}

/*
 * Polls the request until it is decided (or, unless waiting, once) and
 * completes the call from its result.
 */
static int follow(sk_client *client, sk_approval *a, const char *request,
                  json_t **response, sk_error *err)
{
    double timeout = a->timeout > 0 ? a->timeout : DEFAULT_TIMEOUT_S;
    double deadline = sk_now_seconds() + timeout;
    long delay = POLL_FIRST_MS;
    int told = a->resume_id == NULL; /* a new request was told already */

    for (;;) {
        char status[16];
        json_t *areq = NULL;
        double left;

        if (!get_status(client, a->request_id, status, &areq, err))
            return 0;
        a->polls++;
        if (strcmp(status, "APPROVED") == 0 || strcmp(status, "FAILED") == 0) {
            json_decref(areq);
            return read_result(client, a->request_id, request, response, err);
        }
        if (strcmp(status, "DENIED") == 0) {
            denied_error(areq, a->request_id, request, err);
            json_decref(areq);
            return 0;
        }
        json_decref(areq);
        if (strcmp(status, "PENDING") != 0) {
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "approval request %s has an unknown status",
                         a->request_id);
            return 0;
        }
        if (a->mode != SK_APPROVAL_WAIT) {
            sk_error_set(err, SK_ERR_APPROVAL_PENDING, request,
                         "approval request %s is still pending", a->request_id);
            return 0;
        }
        if (!told && a->notify != NULL)
            a->notify(a->notify_arg, a->request_id);
        told = 1;
        left = deadline - sk_now_seconds();
        if (left <= 0) {
            sk_error_set(err, SK_ERR_APPROVAL_TIMEOUT, request,
                         "approval request %s is still pending after %g s",
                         a->request_id, timeout);
            return 0;
        }
        sk_client_pause_ms(
            client, delay < left * 1000 ? delay : (long)(left * 1000) + 1);
        delay = delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2;
    }
}

/* POST /sys/v1/approval_requests {method, operation, body, description}. */
static int create(sk_client *client, const char *method, const char *path,
                  json_t *body, sk_approval *a, sk_error *err)
{
    static const char request[] = "POST " APPROVALS_PATH;
    json_t *req, *answer = NULL;
    const char *id = NULL;
    int ok = 0;

    req = json_pack("{s:s, s:s, s:O}", "method", method, "operation", path,
                    "body", body != NULL ? body : json_null());
    if (req != NULL && a->description != NULL &&
        json_object_set_new(req, "description", json_string(a->description)) !=
            0)
        json_decref(req), req = NULL;
    if (req == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    /* not idempotent: a retry after a lost answer would make a second
       request for the approvers */
    if (sk_http_json(client, "POST", APPROVALS_PATH, request, req, 0, &answer,
                     err)) {
        if (json_is_object(answer) &&
            sk_json_need_string(answer, "request_id", &id, request, err)) {
            if (!sk_is_uuid(id, strlen(id)))
                sk_error_set(err, SK_ERR_PROTOCOL, request,
                             "field \"request_id\" of the answer is not a "
                             "UUID");
            else {
                snprintf(a->request_id, sizeof(a->request_id), "%s", id);
                ok = 1;
            }
        } else if (err->kind == SK_ERR_NONE) {
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "the answer is not a JSON object");
        }
    }
    json_decref(req);
    json_decref(answer);
    return ok;
}

/* The approval request to resume must be for this very call. */
static int check_resumed(sk_client *client, const char *method,
                         const char *path, json_t *body, sk_approval *a,
                         const char *request, sk_error *err)
{
    char status[16];
    json_t *areq = NULL;
    const char *m = NULL, *op = NULL;
    int same;

    if (!sk_is_uuid(a->resume_id, strlen(a->resume_id))) {
        sk_error_set(err, SK_ERR_APPROVAL_MISMATCH, request,
                     "an approval request id is a UUID like "
                     "0b5c2f6e-27e5-4d3a-9b8e-3c7f1a2d4e5f");
        return 0;
    }
    snprintf(a->request_id, sizeof(a->request_id), "%s", a->resume_id);
    if (!get_status(client, a->request_id, status, &areq, err))
        return 0;
    sk_json_string(areq, "method", &m, request, err);
    sk_json_string(areq, "operation", &op, request, err);
    same = m != NULL && op != NULL && strcmp(m, method) == 0 &&
           strcmp(op, path) == 0 &&
           json_equal(json_object_get(areq, "body"), body);
    if (!same)
        sk_error_set(err, SK_ERR_APPROVAL_MISMATCH, request,
                     "approval request %s is for %s%s%s, not for this "
                     "operation (another key, input or parameters)",
                     a->request_id, m != NULL ? m : "?", " ",
                     op != NULL ? op : "?");
    json_decref(areq);
    return same;
}

/* SmartKey answered that the call needs an approval (err), in mode
   request or wait: the approval request is made and, for wait, followed. */
static int after_refusal(sk_client *client, const char *method,
                         const char *path, const char *request, json_t *body,
                         sk_approval *a, json_t **response, sk_error *err)
{
    sk_error direct = *err;

    if (a->mode == SK_APPROVAL_REQUEST && names_transient_key(body)) {
        /* its transient key dies with this process's session */
        a->not_resumable = 1;
        return 0;
    }
    if (!create(client, method, path, body, a, err))
        return 0;
    if (a->mode == SK_APPROVAL_REQUEST) {
        *err = direct;
        err->kind = SK_ERR_APPROVAL_PENDING;
        snprintf(err->message, sizeof(err->message),
                 "approval request %s created", a->request_id);
        return 0;
    }
    if (a->notify != NULL)
        a->notify(a->notify_arg, a->request_id);
    return follow(client, a, request, response, err);
}

int sk_approval_call(sk_client *client, const char *method, const char *path,
                     const char *request, json_t *body, unsigned flags,
                     sk_approval *a, json_t **response, sk_error *err)
{
    int ok;

    if (a == NULL)
        return sk_http_json(client, method, path, request, body, flags,
                            response, err);
    a->request_id[0] = '\0';
    a->not_resumable = 0;
    if (a->resume_id != NULL) {
        if (!check_resumed(client, method, path, body, a, request, err))
            return 0;
        return follow(client, a, request, response, err);
    }
    ok =
        sk_http_json(client, method, path, request, body, flags, response, err);
    if (ok || err->kind != SK_ERR_APPROVAL || a->mode == SK_APPROVAL_FAIL)
        return ok;
    return after_refusal(client, method, path, request, body, a, response, err);
}

/* The request body as a tree (the approval request carries it, a resumed
   one is compared with it); its strings are wiped when it is freed. */
static json_t *body_tree(const char *text, size_t len, const char *request,
                         sk_error *err)
{
    json_t *tree = text != NULL ? json_loadb(text, len, 0, NULL) : json_null();

    if (tree == NULL)
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
    return tree;
}

static void wipe_tree(json_t *value)
{
    const char *name;
    json_t *member;

    if (json_is_string(value))
        OPENSSL_cleanse((char *)json_string_value(value),
                        json_string_length(value));
    else if (json_is_object(value))
        json_object_foreach(value, name, member)
        {
            wipe_tree(member);
        }
    json_decref(value);
}

int sk_approval_text_call(sk_client *client, const char *method,
                          const char *path, const char *request,
                          const char *body, size_t body_len, int session_only,
                          unsigned flags, sk_approval *a, json_t **response,
                          sk_error *err)
{
    json_t *tree;
    int ok;

    if (a == NULL)
        return sk_http_text(client, method, path, request, body, body_len,
                            session_only, flags, response, err);
    if (a->resume_id != NULL) {
        if ((tree = body_tree(body, body_len, request, err)) == NULL)
            return 0;
        ok = sk_approval_call(client, method, path, request, tree, flags, a,
                              response, err);
        wipe_tree(tree);
        return ok;
    }
    a->request_id[0] = '\0';
    a->not_resumable = 0;
    ok = sk_http_text(client, method, path, request, body, body_len,
                      session_only, flags, response, err);
    if (ok || err->kind != SK_ERR_APPROVAL || a->mode == SK_APPROVAL_FAIL)
        return ok;
    /* only now is the body needed as a tree */
    if ((tree = body_tree(body, body_len, request, err)) == NULL)
        return 0;
    ok = after_refusal(client, method, path, request, tree, a, response, err);
    wipe_tree(tree);
    return ok;
}
