/*
 * smartkey-keyservice: a Salesforce cache-only key service on top of the
 * smartkey provider (docs/byok/salesforce.md, smartkey-keyservice(8)).
 *
 * The parts: the request parser (request.c, the boundary that reads what
 * the network sends, fuzzed by test/fuzz/fuzz_keyservice_request.c), the
 * configuration (config.c), the replay cache (replay.c), the answer made
 * in SmartKey through EVP (callout.c) and the server (main.c).
 */
#ifndef SMARTKEY_KEYSERVICE_H
#define SMARTKEY_KEYSERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ---- requests (request.c) ---- */

#define KS_MAX_PATH       512
#define KS_MAX_KEY_ID     128
#define KS_MAX_REQUEST_ID 256
#define KS_MAX_NONCE      128
#define KS_MAX_AUTH       512

/* What a request says, after parsing. Strings are NUL-terminated; the
   percent-encoded ones (path, query values) are decoded. */
typedef struct ks_request {
    char path[KS_MAX_PATH];
    char request_id[KS_MAX_REQUEST_ID]; /* "" when absent */
    int has_request_id;
    char authorization[KS_MAX_AUTH]; /* the header's value; a secret */
    int has_authorization;
} ks_request;

/*
 * ks_parse_request: the head of an HTTP/1.x request (request line and
 * header fields, ending with an empty line; LEN bytes, no NUL needed).
 * Returns 0 and fills REQ, or the HTTP status to refuse it with (400, 405
 * method other than GET, 413 a body announced, 414 target too long, 431 a
 * field too long, 505 not HTTP/1.x); *WHY says why in a few words.
 */
int ks_parse_request(const char *head, size_t len, ks_request *req,
                     const char **why);

/* ks_head_end: the length of the head (through its empty line) within
   the LEN bytes read so far, or 0 when it has not ended yet. */
size_t ks_head_end(const char *buf, size_t len);

/*
 * ks_route: the key identifier a callout path names under PREFIX ("" or
 * "/keys"): PATH is PREFIX "/" ID with ID of 1..KS_MAX_KEY_ID characters of
 * [A-Za-z0-9._~-]. Returns 1 and copies ID, or 0.
 */
int ks_route(const char *path, const char *prefix, char *id, size_t id_size);

/* ks_valid_key_id: ID is a key identifier ks_route can return. */
int ks_valid_key_id(const char *id);

/*
 * ks_request_nonce: the nonce of Salesforce's RequestIdentifier RID for
 * the callout of KEY_ID (docs/byok/salesforce.md, "Decisions"): RID is the
 * nonce alone or KEY_ID "_" nonce; a nonce is 16..KS_MAX_NONCE characters
 * of [A-Za-z0-9-]. Returns 1 and copies the nonce, 0 when RID is malformed,
 * -1 when it names another key identifier.
 */
int ks_request_nonce(const char *rid, const char *key_id, char *nonce,
                     size_t nonce_size);

/*
 * ks_basic_credentials: the "user:password" of an Authorization header
 * value "Basic <base64>" into OUT (NUL-terminated, wiped by the caller).
 * Returns its length, or -1 when the value is not Basic or malformed.
 */
int ks_basic_credentials(const char *value, char *out, size_t out_size);

/* ---- configuration (config.c) ---- */

typedef struct ks_key {
    char id[KS_MAX_KEY_ID + 1];
    char *uri;   /* the SmartKey key (smartkey: URI) */
    X509 *cert;  /* the BYOK certificate */
    char *where; /* "file:line" of its section, for messages */
} ks_key;

typedef struct ks_config {
    /* fixed at start (a reload that changes them is refused) */
    char *listen;        /* host:port */
    int max_connections; /* worker threads: callouts served at once */
    /* reloadable */
    char *path_prefix;                    /* "" or "/something" */
    int replay_detection;                 /* 1 on, 0 off */
    int replay_window;                    /* seconds a nonce is remembered */
    int replay_capacity;                  /* nonces remembered at most */
    int retry_after;                      /* seconds, in 503 answers */
    int max_request_size;                 /* bytes of a request head */
    int io_timeout;                       /* seconds per read or write */
    unsigned char credentials_sha256[32]; /* SHA-256 of "user:password" */
    SSL_CTX *tls;
    ks_key *keys;
    size_t nkeys;
    int refs; /* guarded by the server's configuration lock */
} ks_config;

/*
 * ks_config_load: reads PATH and everything it names (certificates, the
 * TLS key through OSSL_STORE, so a smartkey: URI or a key-reference file
 * works, the credentials file). Returns the configuration with refs 1, or
 * NULL after writing why to stderr.
 */
ks_config *ks_config_load(const char *path, OSSL_LIB_CTX *libctx);
void ks_config_free(ks_config *config);
const ks_key *ks_config_key(const ks_config *config, const char *id);

/* ---- replay detection (replay.c) ---- */

typedef struct ks_replay ks_replay;
ks_replay *ks_replay_new(void);
void ks_replay_free(ks_replay *replay);
/* ks_replay_check: 1 when NONCE is new (it is remembered from now on for
   WINDOW seconds, at most CAPACITY nonces: the oldest go first), 0 when it
   was seen within the window. Thread-safe. */
int ks_replay_check(ks_replay *replay, const char *nonce, time_t now,
                    int window, int capacity);

/* ---- the answer (callout.c) ---- */

typedef enum {
    KS_CALLOUT_OK,
    KS_CALLOUT_UNAVAILABLE, /* SmartKey unreachable, timed out, busy */
    KS_CALLOUT_FAILED,      /* anything else */
} ks_callout_status;

/*
 * ks_callout: the body {"kid","jwe"} for KEY, made in SmartKey (a new
 * content key each time), with NONCE as "jti" when not NULL. On success
 * *BODY (OPENSSL_malloc'd) and *LEN; otherwise a reason for the log in
 * WHY (the provider's message: never a secret).
 */
ks_callout_status ks_callout(OSSL_LIB_CTX *libctx, const ks_key *key,
                             const char *key_id, const char *nonce,
                             unsigned char **body, size_t *len, char *why,
                             size_t why_size);

#endif
