/*
 * The REST client's life cycle (sk_client_new, sk_client_free) and the
 * generic JSON call every typed call goes through (sk_http_json): the
 * body, the choice of authentication, one re-authentication on a refused
 * session, the status and the parsed answer. The layers below it are in
 * session.c, retry.c and pool.c (see http_private.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "http_private.h"

void sk_client_log(sk_client *client, int level, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    if (client == NULL || level > client->log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    client->log(client->log_arg, level, msg);
}

/* ---- client life cycle ---- */

static void free_nodes(sk_client *c)
{
    if (c->nodes == NULL)
        return;
    for (size_t i = 0; i < c->node_count; i++)
        OPENSSL_free(c->nodes[i].url);
    OPENSSL_free(c->nodes);
    c->nodes = NULL;
    c->node_count = 0;
}

static char *dup_or_null(const char *s, int *ok)
{
    char *copy;

    if (s == NULL || *s == '\0')
        return NULL;
    copy = OPENSSL_strdup(s);
    if (copy == NULL)
        *ok = 0;
    return copy;
}

int sk_has_control_chars(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f)
            return 1;
    return 0;
}

/* The configuration's checks that need no allocation: the endpoints
   (parsed into *urls), the API key and the proxy. */
static int check_config(const sk_client_config *cfg, char ***urls,
                        size_t *url_count, sk_error *err)
{
    if (cfg == NULL || !sk_endpoints_parse(cfg->endpoint, urls, url_count, err))
        return 0;
    /* The key goes verbatim into a header: a line break would let it
       smuggle other headers (and would never authenticate anyway). */
    if (cfg->api_key == NULL || *cfg->api_key == '\0' ||
        sk_has_control_chars(cfg->api_key) ||
        strlen(cfg->api_key) > SECRET_KEY_MAX) {
        sk_error_set(err, SK_ERR_CONFIG, NULL,
                     "an API key is required (one line, no spaces, at most "
                     "%d characters)",
                     SECRET_KEY_MAX);
    } else if (cfg->proxy != NULL && sk_has_control_chars(cfg->proxy)) {
        sk_error_set(err, SK_ERR_CONFIG, NULL,
                     "the proxy must be one URL without spaces");
    } else {
        return 1;
    }
    sk_endpoints_free(*urls, *url_count);
    return 0;
}

/* Frees what copy_config may have allocated, and c itself. */
static void free_config(sk_client *c)
{
    sk_secrets_free(c->secrets, c->secrets_size);
    free_nodes(c);
    OPENSSL_free(c->ca_file);
    OPENSSL_free(c->ca_path);
    OPENSSL_free(c->proxy);
    OPENSSL_free(c->no_proxy);
    OPENSSL_free(c);
}

/* Copies the configuration into c (the URLs are taken). 0 on no memory. */
static int copy_config(sk_client *c, const sk_client_config *cfg, char **urls,
                       size_t url_count)
{
    int ok = 1;

    c->nodes = OPENSSL_zalloc(url_count * sizeof(*c->nodes));
    if (c->nodes != NULL) {
        for (size_t i = 0; i < url_count; i++) {
            c->nodes[i].url = urls[i];
            urls[i] = NULL;
        }
        c->node_count = url_count;
    }
    sk_endpoints_free(urls, url_count);
    c->secrets = sk_secrets_new(&c->secrets_size);
    if (c->secrets != NULL) {
        strcpy(c->secrets->api_key, cfg->api_key);
        c->api_key = c->secrets->api_key;
    }
    c->auth = cfg->auth;
    c->ca_file = dup_or_null(cfg->ca_file, &ok);
    c->ca_path = dup_or_null(cfg->ca_path, &ok);
    if (cfg->proxy != NULL && strcmp(cfg->proxy, "env") == 0) {
        c->proxy_env = 1;
    } else {
        c->proxy = dup_or_null(cfg->proxy, &ok);
    }
    c->no_proxy = dup_or_null(cfg->no_proxy, &ok);
    c->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    c->request_timeout_ms =
        cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 30000;
    c->retries = cfg->retries >= 0 ? cfg->retries : 2;
    c->insecure_skip_verify = cfg->insecure_skip_verify;
    c->log = cfg->log;
    c->log_arg = cfg->log_arg;
    c->log_level = cfg->log == NULL     ? 0
                   : cfg->log_level > 0 ? cfg->log_level
                                        : INT_MAX;
    c->async_off = cfg->async_off;
    return c->nodes != NULL && c->secrets != NULL && ok;
}

/* What a new client says once: an insecure setting, a weak libcurl. */
static void announce(sk_client *c, int curl_thread_safe)
{
    /* Users must not run this by accident: a man in the middle then reads
       the API key. Said at level 1 and on stderr, whatever the debug
       setting. */
    if (c->insecure_skip_verify) {
        fprintf(stderr, "smartkey: WARNING: TLS certificate verification of "
                        "SmartKey is OFF (insecure_skip_verify): anyone on "
                        "the network path can read the API key\n");
        sk_client_log(c, 1,
                      "WARNING: TLS certificate verification is OFF "
                      "(insecure_skip_verify)");
    }
    if (!curl_thread_safe)
        sk_client_log(c, 1,
                      "libcurl %s lacks the threadsafe feature: initialise "
                      "it before starting threads",
                      curl_version_info(CURLVERSION_NOW)->version);
}

sk_client *sk_client_new(const sk_client_config *cfg, sk_error *err)
{
    sk_client *c;
    char **urls = NULL;
    size_t url_count = 0;
    int curl_thread_safe;
    CURLcode curl_rc;

    sk_error_clear(err);
    curl_rc = sk_pool_global_init(&curl_thread_safe);
    if (curl_rc != CURLE_OK) {
        sk_error_set(err, SK_ERR_CONFIG, NULL, "libcurl failed to start: %s",
                     curl_easy_strerror(curl_rc));
        return NULL;
    }
    if (!check_config(cfg, &urls, &url_count, err))
        return NULL;
    c = OPENSSL_zalloc(sizeof(*c));
    if (c == NULL) {
        sk_endpoints_free(urls, url_count);
        goto nomem;
    }
    if (!copy_config(c, cfg, urls, url_count)) {
        free_config(c);
        goto nomem;
    }
    /* on no memory batching stays off: every call still works alone */
    c->batcher = sk_batcher_new(cfg->batch_max_size, cfg->batch_max_wait_us);
    c->pid = getpid();
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->auth_done, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    sk_pool_register(c);
    announce(c, curl_thread_safe);
    return c;

nomem:
    sk_error_set(err, SK_ERR_NOMEM, NULL, "out of memory");
    return NULL;
}

void sk_client_free(sk_client *client)
{
    if (client == NULL)
        return;
    sk_pool_unregister(client);

    /* Jobs paused on a request get their fd readable and an error; the
       engine's handles let go of the share before it is cleaned up. */
    sk_engine_free(client->engine);
    sk_pool_release(client);
    sk_session_wake_waiters(client);
    sk_batcher_free(client->batcher);
    pthread_cond_destroy(&client->auth_done);
    pthread_mutex_destroy(&client->lock);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&client->share_locks[i]);
    free_config(client);
}

struct sk_batcher *sk_client_batcher(sk_client *client)
{
    return client->batcher;
}

static int is_permission_message(const char *text)
{
    /* 403 answers that are about the key or the policy, not the session
       (docs/smartkey-api.md §2.4, §5.2): those must not trigger a
       re-authentication. */
    return text != NULL && (strstr(text, "not allowed") != NULL ||
                            strstr(text, "requires approval") != NULL ||
                            strstr(text, "ermission") != NULL);
}

void sk_http_status_error(sk_client *c, const http_answer *ans,
                          const char *request, sk_error *err)
{
    sk_err_kind kind;
    long s = ans->status;

    if (s == 401)
        kind = SK_ERR_AUTH;
    else if (s == 403)
        kind =
            ans->body != NULL && strstr(ans->body, "requires approval") != NULL
                ? SK_ERR_APPROVAL
                : SK_ERR_FORBIDDEN;
    else
        kind = sk_err_kind_of_status(s);
    sk_error_set(err, kind, request, "%s", "");
    err->http_status = s;
    if (ans->body != NULL && ans->len > 0) {
        const char *secrets[2];

        /* the token cannot change while the lock is held; no network */
        pthread_mutex_lock(&c->lock);
        secrets[0] = c->api_key;
        secrets[1] = c->token;
        sk_error_set_server_text(err, ans->body, ans->len, secrets,
                                 c->token != NULL ? 2 : 1);
        pthread_mutex_unlock(&c->lock);
    } else
        snprintf(err->message, sizeof(err->message), "HTTP status %ld", s);
}

/* ---- the generic JSON call ---- */

/* One JSON call's request, as sent (body serialised). */
typedef struct json_call {
    const char *method;
    const char *path;
    const char *request;
    const char *body; /* NULL: none */
    size_t body_len;
    unsigned flags;
} json_call;

/* Auto mode: SmartKey answered 401 to the API key on the first attempt;
   returns 1 when the call goes again with a session. api-key mode has no
   session to fall back on: its 401 is final (status_error). */
static int api_key_refused(sk_client *c, const json_call *call, int first,
                           const http_answer *ans)
{
    if (ans->status != 401 || c->auth != SK_AUTH_AUTO || !first)
        return 0;
    sk_session_key_refused(c);
    sk_client_log(c, 2, "%s: 401 to the API key, using a session",
                  call->request);
    return 1;
}

/* The session was refused (401, or a 403 that is not about permissions):
   returns 1 when the call goes again with a new session. */
static int session_refused(sk_client *c, const json_call *call, int first,
                           unsigned long generation, const http_answer *ans)
{
    if (ans->status != 401 &&
        (ans->status != 403 || is_permission_message(ans->body))) {
        sk_session_used(c, generation);
        return 0;
    }
    sk_session_refused(c, generation);
    if (!first)
        return 0;
    sk_client_log(c, 2, "%s: %ld, re-authenticating", call->request,
                  ans->status);
    return 1;
}

/* One attempt with the API key or the session, as the mode and the body
   say. Returns 1 with an answer, 0 with err filled; sets *again when the
   credentials were refused and the call goes once more. */
static int send_attempt(sk_client *c, const json_call *call, int session_only,
                        int first, http_answer *ans, int *again, sk_error *err)
{
    int api_key = sk_session_use_api_key(c, session_only), ok;
    unsigned long generation = 0;
    char *authorization = api_key ? sk_session_basic_header(c->api_key)
                                  : sk_session_header(c, &generation, err);

    *again = 0;
    if (authorization == NULL) {
        if (api_key)
            sk_error_set(err, SK_ERR_NOMEM, call->request, "out of memory");
        return 0;
    }
    ok = sk_exchange_with_retries(c, call->method, call->path, call->request,
                                  authorization, call->body, call->body_len,
                                  call->flags, ans, err);
    sk_free_secret(authorization);
    if (!ok)
        return 0;
    *again = api_key ? api_key_refused(c, call, first, ans)
                     : session_refused(c, call, first, generation, ans);
    return 1;
}

/* The answer's status and JSON body into *response (NULL when empty). */
static int parse_answer(sk_client *c, const http_answer *ans,
                        const char *request, json_t **response, sk_error *err)
{
    json_error_t json_err;

    if (ans->status < 200 || ans->status > 299) {
        sk_http_status_error(c, ans, request, err);
        return 0;
    }
    if (ans->len == 0)
        return 1;
    *response =
        json_loadb(ans->body, ans->len, JSON_REJECT_DUPLICATES, &json_err);
    if (*response == NULL) {
        /* json_err.text may quote the body: only its position. */
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "invalid JSON in the response (at byte %d)",
                     json_err.position);
        err->http_status = ans->status;
        return 0;
    }
    return 1;
}

int sk_http_text(sk_client *client, const char *method, const char *path,
                 const char *request, const char *body, size_t body_len,
                 int session_only, unsigned flags, json_t **response,
                 sk_error *err)
{
    http_answer ans = {0};
    json_call call = {method, path, request, body, body_len, flags};
    int ok = 0, again = 1;

    sk_error_clear(err);
    *response = NULL;
    for (int first = 1; again; first = 0) {
        ok =
            send_attempt(client, &call, session_only, first, &ans, &again, err);
        if (!ok)
            break;
    }
    ok = ok && parse_answer(client, &ans, request, response, err);
    sk_http_answer_reset(&ans);
    if (ok)
        sk_error_clear(err);
    return ok;
}

int sk_http_json(sk_client *client, const char *method, const char *path,
                 const char *request, json_t *body, unsigned flags,
                 json_t **response, sk_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int ok;

    if (body != NULL && (text = sk_json_compact(body, &len)) == NULL) {
        sk_error_clear(err);
        *response = NULL;
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    ok =
        sk_http_text(client, method, path, request, text, len,
                     sk_session_body_needs_session(body), flags, response, err);
    /* Request bodies may carry plaintext (encrypt) or wrap material: the
       text is wiped rather than left on the heap. */
    if (text != NULL)
        OPENSSL_clear_free(text, len + 1);
    return ok;
}
