/*
 * Authentication of the HTTP layer: the page holding the API key and the
 * session token, the Basic and Bearer headers, POST /sys/v1/session/auth,
 * the session's single-flight (re-)authentication with threads and paused
 * ASYNC jobs waiting for it, the choice between the API key and a session
 * (auto mode), and the secret derived from the API key.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "http_private.h"

/* Re-authenticate when this share of the idle lifetime has passed since
   the token was last used (docs/smartkey-api.md §2.3: the lifetime slides). */
#define REAUTH_FRACTION 0.8

/* Jobs paused until an authentication ends look again (their fds become
   readable). Called with c->lock held, or when nothing else uses c. */
void sk_session_wake_waiters(sk_client *c)
{
    while (c->auth_waiters != NULL) {
        auth_waiter *w = c->auth_waiters;

        c->auth_waiters = w->next;
        sk_async_signal(w->slot);
        sk_async_slot_unref(w->slot);
        OPENSSL_free(w);
    }
}

void sk_free_secret(char *s)
{
    if (s != NULL)
        OPENSSL_clear_free(s, strlen(s));
}

sk_secrets *sk_secrets_new(size_t *size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t len = sizeof(sk_secrets);
    void *area;

    if (page > 0)
        len = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
    area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                -1, 0);
    if (area == MAP_FAILED) {
        *size = 0;
        return OPENSSL_zalloc(sizeof(sk_secrets));
    }
#ifdef MADV_DONTDUMP
    /* best effort: a kernel without it still runs the provider */
    (void)madvise(area, len, MADV_DONTDUMP);
#endif
    *size = len;
    return area;
}

void sk_secrets_free(sk_secrets *secrets, size_t size)
{
    if (secrets == NULL)
        return;
    OPENSSL_cleanse(secrets, sizeof(*secrets));
    if (size > 0)
        munmap(secrets, size);
    else
        OPENSSL_free(secrets);
}

/* Called with c->lock held. */
static void token_clear(sk_client *c)
{
    if (c->token != NULL)
        OPENSSL_cleanse(c->token, strlen(c->token));
    c->token = NULL;
}

/* ---- the session ---- */

char *sk_session_basic_header(const char *api_key)
{
    size_t len = strlen(api_key) + sizeof("Authorization: Basic ");
    char *header = OPENSSL_malloc(len);

    /* The API key is sent verbatim (docs/smartkey-api.md §2.1). */
    if (header != NULL)
        snprintf(header, len, "Authorization: Basic %s", api_key);
    return header;
}

/* The token and its lifetime from the answer of POST /sys/v1/session/auth
   (*token is a copy, NULL on failure). */
static int read_token(json_t *json, const char *request, char **token,
                      double *expires_in, sk_error *err)
{
    const char *access_token, *token_type = NULL;
    unsigned lifetime = 0;

    if (!json_is_object(json)) {
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "the answer is not a JSON object");
        return 0;
    }
    if (sk_json_string(json, "token_type", &token_type, request, err) < 0 ||
        !sk_json_need_string(json, "access_token", &access_token, request,
                             err) ||
        sk_json_uint(json, "expires_in", &lifetime, request, err) < 0)
        return 0;
    if (token_type != NULL && strcmp(token_type, "Bearer") != 0) {
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "unsupported token type \"%.32s\"", token_type);
        return 0;
    }
    if (*access_token == '\0' || sk_has_control_chars(access_token) ||
        strlen(access_token) > SECRET_TOKEN_MAX) {
        sk_error_set(err, SK_ERR_PROTOCOL, request, "invalid access token");
        return 0;
    }
    *token = OPENSSL_strdup(access_token);
    if (*token == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    /* No lifetime: assume the documented default for apps (10 min). */
    *expires_in = lifetime > 0 ? lifetime : 600;
    return 1;
}

static int authenticate(sk_client *c, char **token, double *expires_in,
                        sk_error *err)
{
    static const char request[] = "POST /sys/v1/session/auth";
    http_answer ans = {0};
    json_t *json = NULL, *value;
    char *authorization = sk_session_basic_header(c->api_key);
    int ok = 0;

    if (authorization == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    /* Retrying is harmless: an unused extra session just expires. */
    ok = sk_exchange_with_retries(c, "POST", "/sys/v1/session/auth", request,
                                  authorization, NULL, 0, SK_HTTP_IDEMPOTENT,
                                  &ans, err);
    sk_free_secret(authorization);
    if (ok && ans.status != 200) {
        sk_http_status_error(c, &ans, request, err);
        if (ans.status == 401 || ans.status == 403)
            err->kind = SK_ERR_AUTH;
        ok = 0;
    } else if (ok) {
        json = json_loadb(ans.body != NULL ? ans.body : "", ans.len,
                          JSON_REJECT_DUPLICATES, NULL);
        ok = read_token(json, request, token, expires_in, err);
    }
    if (json != NULL) {
        value = json_object_get(json, "access_token");
        if (json_is_string(value))
            OPENSSL_cleanse((char *)json_string_value(value),
                            json_string_length(value));
        json_decref(json);
    }
    sk_http_answer_reset(&ans);
    return ok;
}

static char *bearer_header(const char *token)
{
    size_t len = strlen(token) + sizeof("Authorization: Bearer ");
    char *header = OPENSSL_malloc(len);

    if (header != NULL)
        snprintf(header, len, "Authorization: Bearer %s", token);
    return header;
}

/* Called with c->lock held. */
static int token_usable(const sk_client *c)
{
    return c->token != NULL &&
           sk_now_seconds() - c->last_used < REAUTH_FRACTION * c->expires_in;
}

/* Called with c->lock held: the authentication ended (or its job was
   abandoned): threads and paused jobs waiting for it look again. */
static void auth_ended(sk_client *c)
{
    c->auth_running = 0;
    c->auth_owner_slot = NULL;
    pthread_cond_broadcast(&c->auth_done);
    sk_session_wake_waiters(c);
}

/* Called with c->lock held: the job of slot waits for the authentication
   in progress. 0 on no memory. */
static int auth_wait_async(sk_client *c, sk_async_slot *slot)
{
    auth_waiter *w = OPENSSL_malloc(sizeof(*w));

    if (w == NULL)
        return 0;
    sk_async_slot_ref(slot);
    w->slot = slot;
    w->next = c->auth_waiters;
    c->auth_waiters = w;
    return 1;
}

static void forget_slot(sk_client *c, void *arg)
{
    pthread_mutex_lock(&c->lock);
    if (c->auth_running && c->auth_owner_slot == arg) {
        sk_client_log(c, 2,
                      "an abandoned job was authenticating: the "
                      "next request authenticates again");
        auth_ended(c);
    }
    pthread_mutex_unlock(&c->lock);
}

/* engine.c: the wait context of a job that was authenticating for
   everyone was freed; the job will never finish that authentication. */
void sk_client_slot_gone(sk_async_slot *slot)
{
    sk_pool_each_client(forget_slot, slot);
}

enum session_state {
    SESSION_READY,       /* a usable token: *header made (NULL: no memory) */
    SESSION_FAILED,      /* the attempt waited for failed: err filled */
    SESSION_AUTHENTICATE /* the caller authenticates */
};

/*
 * Called with c->lock held (released while waiting): waits while another
 * caller authenticates. *slot is the job's once it paused; *parallel is set
 * when this thread must authenticate beside the job it would have to
 * resume itself.
 */
static enum session_state await_session(sk_client *c, int in_job,
                                        sk_async_slot **slot, int *parallel,
                                        unsigned long *generation,
                                        char **header, sk_error *err)
{
    for (;;) {
        unsigned long attempt;

        if (token_usable(c)) {
            *header = bearer_header(c->token);
            *generation = c->generation;
            return SESSION_READY;
        }
        if (!c->auth_running)
            return SESSION_AUTHENTICATE;
        attempt = c->auth_attempts;
        if (in_job && *slot == NULL)
            *slot = sk_pool_async_slot(c);
        if (*slot != NULL && auth_wait_async(c, *slot)) {
            pthread_mutex_unlock(&c->lock);
            sk_async_pause(*slot);
            sk_async_drain(*slot);
            pthread_mutex_lock(&c->lock);
        } else if (c->auth_owner_slot != NULL &&
                   pthread_equal(c->auth_owner_thread, pthread_self())) {
            *parallel = 1;
            return SESSION_AUTHENTICATE;
        } else {
            while (c->auth_running && c->auth_attempts == attempt)
                pthread_cond_wait(&c->auth_done, &c->lock);
        }
        if (c->auth_attempts != attempt && c->token == NULL) {
            *err = c->auth_error;
            return SESSION_FAILED;
        }
    }
}

/* Called with c->lock held: the new token replaces the old one (token is
   wiped and freed). Returns its Bearer header (NULL: no memory). */
static char *store_token(sk_client *c, char *token, double expires_in,
                         unsigned long *generation, sk_error *err)
{
    char *header;

    token_clear(c);
    strcpy(c->secrets->token, token);
    c->token = c->secrets->token;
    sk_free_secret(token);
    c->generation++;
    c->expires_in = expires_in;
    c->last_used = sk_now_seconds();
    header = bearer_header(c->token);
    *generation = c->generation;
    if (header == NULL)
        sk_error_set(err, SK_ERR_NOMEM, NULL, "out of memory");
    return header;
}

/*
 * Returns an "Authorization: Bearer" header for the current session,
 * authenticating first when there is none (or it is about to expire).
 * Only one caller authenticates; the others wait for its result: threads
 * on a condition variable, ASYNC jobs paused on their wait fd (never
 * blocking the thread that must resume the authenticating job). The one
 * exception: a thread outside a job while a job it would have to resume
 * itself is authenticating authenticates too.
 */
char *sk_session_header(sk_client *c, unsigned long *generation, sk_error *err)
{
    char *header = NULL, *token = NULL;
    double expires_in = 0;
    sk_error auth_err;
    /* made only when the job pauses (see sk_async_announce) */
    sk_async_slot *slot = NULL;
    int in_job = sk_http_async_now(c), ok, parallel = 0;

    pthread_mutex_lock(&c->lock);
    switch (
        await_session(c, in_job, &slot, &parallel, generation, &header, err)) {
    case SESSION_READY:
        pthread_mutex_unlock(&c->lock);
        if (header == NULL)
            sk_error_set(err, SK_ERR_NOMEM, NULL, "out of memory");
        return header;
    case SESSION_FAILED:
        pthread_mutex_unlock(&c->lock);
        return NULL;
    case SESSION_AUTHENTICATE:
        break;
    }
    /* the job's requests pause on this slot (exchange) */
    if (in_job && slot == NULL)
        slot = sk_pool_async_slot(c);
    if (!parallel) {
        c->auth_running = 1;
        c->auth_owner_slot = slot;
        c->auth_owner_thread = pthread_self();
        if (slot != NULL)
            sk_async_slot_set_auth_owner(slot, 1);
    }
    pthread_mutex_unlock(&c->lock);

    sk_error_clear(&auth_err);
    ok = authenticate(c, &token, &expires_in, &auth_err);

    pthread_mutex_lock(&c->lock);
    if (slot != NULL)
        sk_async_slot_set_auth_owner(slot, 0);
    if (ok) {
        header = store_token(c, token, expires_in, generation, err);
    } else {
        token_clear(c);
        c->auth_error = auth_err;
        *err = auth_err;
    }
    if (!parallel) {
        c->auth_attempts++;
        auth_ended(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (ok)
        sk_client_log(c, 2, "new SmartKey session (idle lifetime %.0f s)",
                      expires_in);
    return header;
}

/* SmartKey's idle timer restarts with every authenticated call. */
void sk_session_used(sk_client *c, unsigned long generation)
{
    pthread_mutex_lock(&c->lock);
    if (c->generation == generation)
        c->last_used = sk_now_seconds();
    pthread_mutex_unlock(&c->lock);
}

/* Drops the token that was refused, unless another thread already
   replaced it (then the next call simply uses the new one). */
void sk_session_refused(sk_client *c, unsigned long generation)
{
    pthread_mutex_lock(&c->lock);
    if (c->generation == generation && c->token != NULL)
        token_clear(c);
    pthread_mutex_unlock(&c->lock);
}

/* ---- the generic JSON call ---- */

/*
 * A transient key exists only inside the session that created it: creating
 * one ("transient": true) and every call naming one (a key descriptor with
 * "transient_key") must carry that session's Bearer token even in api-key
 * mode, or SmartKey would not find the handle.
 */
int sk_session_body_needs_session(json_t *body)
{
    const char *field;
    json_t *value;

    if (!json_is_object(body))
        return 0;
    if (json_is_true(json_object_get(body, "transient")))
        return 1;
    /* an approval request: the call inside runs in this session */
    if (sk_session_body_needs_session(json_object_get(body, "body")))
        return 1;
    json_object_foreach(body, field, value)
    {
        if (json_is_object(value) &&
            json_object_get(value, "transient_key") != NULL)
            return 1;
    }
    return 0;
}

/* Whether this request carries the API key itself rather than a session. */
int sk_session_use_api_key(sk_client *c, int session_only)
{
    int yes;

    if (c->auth == SK_AUTH_SESSION || session_only)
        return 0;
    if (c->auth == SK_AUTH_API_KEY)
        return 1;
    pthread_mutex_lock(&c->lock);
    yes = !c->api_key_refused && c->token == NULL &&
          c->api_key_requests < SK_AUTH_AUTO_BASIC_REQUESTS;
    if (yes)
        c->api_key_requests++;
    pthread_mutex_unlock(&c->lock);
    return yes;
}

/* Auto mode: SmartKey refused the API key on a call (an account that wants
   sessions); from now on every request uses a session. */
void sk_session_key_refused(sk_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->api_key_refused = 1;
    pthread_mutex_unlock(&c->lock);
}

/*
 * A secret of this configuration that never leaves the process: HMAC-SHA256
 * keyed with the API key over a label. Used where OpenSSL keys a
 * derivation with the private key the provider does not have (implicit
 * rejection). The API key itself stays here.
 */
int sk_client_derive_secret(sk_client *client, const char *label,
                            unsigned char out[32])
{
    static const char purpose[] = "smartkey derived secret v1:";
    unsigned char *data;
    size_t purpose_len = sizeof(purpose) - 1, label_len = strlen(label);
    unsigned int out_len = 0;
    int ok;

    if (client == NULL || client->api_key == NULL)
        return 0;
    data = OPENSSL_malloc(purpose_len + label_len);
    if (data == NULL)
        return 0;
    memcpy(data, purpose, purpose_len);
    memcpy(data + purpose_len, label, label_len);
    ok = HMAC(EVP_sha256(), client->api_key, (int)strlen(client->api_key), data,
              purpose_len + label_len, out, &out_len) != NULL &&
         out_len == 32;
    OPENSSL_free(data);
    return ok;
}
