/*
 * smartkey-emulator: internal interfaces shared by its parts.
 *
 *   main.c     command line, state directory, certificates, start/stop
 *   http.c     libmicrohttpd glue: routing, auth, sessions, counters, faults,
 *              logging, request/response helpers declared below
 *   store.c    the security-object table, descriptors, persistence, JSON
 *              views of objects
 *   keys.c     /crypto/v1/keys* management endpoints (generate, import,
 *              info, list, get, export, patch, delete, digest)
 *   crypto.c   key material: generate/import/export (em_key_*) and the
 *              crypto endpoints (encrypt, decrypt, sign, verify, wrapkey,
 *              unwrapkey, digest)
 *   crypto_batch.c  batch/... endpoints and the pool of batch workers
 *   approval.c groups and their approval policies, approval requests, the
 *              test apps that approve them
 *
 *   schema.c   strict checking of request bodies against SmartKey's model
 *
 * The wire facts are in docs/smartkey-api.md; the emulator's own choices on
 * the points SmartKey leaves open are listed in docs/local-server.md.
 */
#ifndef SMARTKEY_EMULATOR_H
#define SMARTKEY_EMULATOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include <openssl/evp.h>

/* key_ops bits (SmartKey spelling in em_op_names[]) */
enum {
    EM_OP_SIGN = 1u << 0,
    EM_OP_VERIFY = 1u << 1,
    EM_OP_ENCRYPT = 1u << 2,
    EM_OP_DECRYPT = 1u << 3,
    EM_OP_WRAPKEY = 1u << 4,
    EM_OP_UNWRAPKEY = 1u << 5,
    EM_OP_DERIVEKEY = 1u << 6,
    EM_OP_MACGENERATE = 1u << 7,
    EM_OP_MACVERIFY = 1u << 8,
    EM_OP_EXPORT = 1u << 9,
    EM_OP_APPMANAGEABLE = 1u << 10,
    EM_OP_HIGHVOLUME = 1u << 11,
    EM_OP_AGREEKEY = 1u << 12,
};

/*
 * A security object. Once published in the store an object is immutable:
 * PATCH publishes a modified copy. Readers hold a counted reference
 * (em_obj_release) so objects can be used without holding the store lock.
 */
typedef struct em_obj {
    int refs;          /* atomic; use em_obj_ref/em_obj_release */
    char kid[37];      /* "" for transient objects */
    char *name;        /* NULL for transient objects */
    char obj_type[16]; /* "RSA", "EC", "AES", "SECRET", "HMAC" */
    unsigned key_size; /* bits (RSA modulus, AES/SECRET/HMAC length) */
    char curve[16];    /* "NistP256"... for EC, else "" */
    unsigned key_ops;  /* EM_OP_* */
    int enabled;
    char state[16]; /* "Active", "Deactivated", ... */
    int public_only;
    int external;         /* material came from outside (import, unwrap):
                             origin "External" rather than "FortanixHSM" */
    EVP_PKEY *pkey;       /* RSA and EC (public-only or full); the
                             certified key of a CERTIFICATE */
    unsigned char *value; /* raw bytes of AES/SECRET/HMAC objects; the DER
                             X.509 certificate of CERTIFICATE objects */
    size_t value_len;
    json_t *rsa;         /* RSA options as sent/defaulted:
                            {"encryption_policy":[..],
                             "signature_policy":[..],...} */
    json_t *extra;       /* description, custom_metadata, group_id,
                            deterministic_signatures, ... (object) */
    char created_at[17]; /* YYYYMMDDThhmmssZ */
    /* transient objects only */
    char *transient_handle; /* base64 blob handed to the client */
    char session_id[65];    /* session that owns the transient object */
} em_obj;

/* An authenticated caller. session_id is "" for Basic-API-key calls. */
typedef struct em_principal {
    char app_id[37];
    char session_id[65];
} em_principal;

typedef struct em_request {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* without the query string */
    const unsigned char *body; /* raw body, may be empty */
    size_t body_len;
    json_t *json;     /* parsed body; NULL when the body is empty
                         or whitespace only */
    em_principal who; /* filled by http.c for authenticated paths */
    void *conn;       /* struct MHD_Connection * (query args) */
} em_request;

typedef struct em_response {
    int status;
    json_t *json; /* body as JSON (owned), or */
    char *text;   /* plain-text body (owned, malloc'd) */
} em_response;

/* SmartKey spellings of the EM_OP_* bits, indexed by bit number. */
#define EM_OP_COUNT 13
extern const char *const em_op_names[EM_OP_COUNT];

/* A CERTIFICATE object: public only, its value (the certificate) is public
   data, never counted as an export of key material. */
static inline int em_is_certificate(const em_obj *obj)
{
    return strcmp(obj->obj_type, "CERTIFICATE") == 0;
}

/* ---- http.c: helpers for handlers ---- */

/* Query argument of the request, or NULL. */
const char *em_query(const em_request *req, const char *name);
/* True when a query flag is "true". */
int em_query_true(const em_request *req, const char *name);
/* Plain-text error (SmartKey's error bodies are plain text, not JSON). */
int em_error(em_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* JSON body; takes ownership of body. */
int em_json(em_response *resp, int status, json_t *body);
/* Count a successful plaintext export of key material (export endpoint,
   show_value): tests assert it stays 0 while BYOK artifacts are produced. */
void em_count_export(void);

/* ---- schema.c: strict request checking ---- */

/* Set by --lenient: accept unknown fields and parameters, as before. */
extern int em_lenient;
/*
 * Unless em_lenient: refuses (400, plain text naming the field) a request
 * whose JSON body has a field outside SmartKey's request model at any depth,
 * an enum value SmartKey does not spell that way, an unknown query parameter
 * or a form Content-Type on a request without a body. route_path is the route's
 * pattern
 * ("/crypto/v1/keys/{kid}"). Returns 1 when the request may proceed.
 */
int em_check_request(const em_request *req, const char *route_path,
                     em_response *resp);

/* ---- store.c ---- */

em_obj *em_obj_new(void); /* refs = 1, enabled, "Active", times set */
em_obj *em_obj_copy(const em_obj *obj); /* deep copy, refs = 1, unpublished */
void em_obj_ref(em_obj *obj);
void em_obj_release(em_obj *obj);

/*
 * Resolves a descriptor ({"kid"}, {"name"}, {"transient_key"}, {"inline"}) to
 * a counted reference. On failure fills resp (400 bad descriptor: zero or
 * several variants; 404 unknown key; 401/404 transient key of another
 * session) and returns NULL. `what` names the field for messages ("key",
 * "subject").
 */
em_obj *em_resolve(const em_request *req, json_t *descriptor, const char *what,
                   em_response *resp);

/*
 * Checks that obj may perform `op` (one EM_OP_* bit): enabled, Active, has
 * the op, not public-only when the op needs the private half. Fills resp with
 * 403 ("Requested operation is not allowed: ...") and returns 0 when not.
 */
int em_require_op(const em_obj *obj, unsigned op, int needs_private,
                  em_response *resp);

/*
 * Publishes a new object: assigns a kid (or a transient handle bound to
 * req->who.session_id when transient), refuses a duplicate name (409).
 * Takes ownership of obj on success (returns 1) and on failure (returns 0,
 * resp filled).
 */
int em_store_add(const em_request *req, em_obj *obj, int transient,
                 em_response *resp);
/* Replaces the object with the same kid by `obj` (takes ownership).
   Returns 1, 0 when the kid is unknown, -1 when the new name is taken. */
int em_store_replace(em_obj *obj);
/* Returns 1 when the object existed. */
int em_store_delete(const char *kid);
/* Counted reference to a persisted object by kid, or NULL. */
em_obj *em_store_get(const char *kid);
/* Calls fn for each persisted object in creation order (references held
   during the call); stops when fn returns 0. */
void em_store_foreach(int (*fn)(em_obj *obj, void *arg), void *arg);
/* Drops transient objects of a session (called when it ends/expires). */
void em_store_drop_session(const char *session_id);

/* Sobject JSON as SmartKey returns it; with_value adds "value". */
json_t *em_obj_to_json(const em_obj *obj, int with_value);

/* key_ops <-> JSON array of strings; returns 0 on an unknown spelling. */
int em_key_ops_from_json(json_t *array, unsigned *ops);
/* The ops a generated, imported or unwrapped object gets without
   "key_ops": every op valid for obj_type except EXPORT (keys.c). */
unsigned em_default_key_ops(const char *obj_type);
json_t *em_key_ops_to_json(unsigned ops);

/* ---- crypto.c: key material ---- */

/*
 * Creates material for obj according to obj_type/key_size/curve (and
 * pub_exponent for RSA). Returns 0 and writes a message on unsupported
 * parameters (the caller answers 400).
 */
int em_key_generate(em_obj *obj, unsigned long pub_exponent, char *err,
                    size_t errlen);
/* An EC object on curve Ed25519 (an OpenSSL ED25519 key). */
int em_key_is_ed25519(const em_obj *obj);

/*
 * Imports `value` (decoded base64) into obj according to obj_type: RSA =
 * DER PKCS#1 RSAPrivateKey, PKCS#8 or SPKI (public only); EC = DER RFC 5915
 * ECPrivateKey, PKCS#8 or SPKI; others raw bytes. Sets key_size/curve and
 * public_only.
 */
int em_key_import(em_obj *obj, const unsigned char *value, size_t len,
                  char *err, size_t errlen);
/*
 * Serialises the key value: SmartKey's default export format (RSA PKCS#1,
 * EC RFC 5915, raw bytes otherwise) or, with pkcs8, PKCS#8 PrivateKeyInfo
 * for RSA/EC. Returns 0 for public-only objects.
 */
int em_key_export(const em_obj *obj, int pkcs8, unsigned char **out,
                  size_t *outlen);
/* DER SubjectPublicKeyInfo of an RSA/EC object. */
int em_key_public_der(const em_obj *obj, unsigned char **out, size_t *outlen);

/* ---- crypto.c: endpoint handlers ---- */

typedef int (*em_handler)(em_request *req, em_response *resp);

int em_h_encrypt(em_request *req, em_response *resp);
int em_h_decrypt(em_request *req, em_response *resp);
int em_h_sign(em_request *req, em_response *resp);
int em_h_verify(em_request *req, em_response *resp);
int em_h_wrapkey(em_request *req, em_response *resp);
int em_h_unwrapkey(em_request *req, em_response *resp);
int em_h_digest(em_request *req, em_response *resp);
int em_h_batch_sign(em_request *req, em_response *resp);
int em_h_batch_verify(em_request *req, em_response *resp);
int em_h_batch_encrypt(em_request *req, em_response *resp);
int em_h_batch_decrypt(em_request *req, em_response *resp);

/*
 * crypto_batch.c: spreads the items of a batch over `workers` threads in all
 * (the thread that received the request and a shared pool of workers - 1
 * helpers, started here). 1, or no call, = items run one after another.
 * Returns 0 when a thread cannot be started. Stop only once no batch is
 * being answered (after em_http_stop).
 */
int em_batch_start(unsigned workers);
void em_batch_stop(void);

/* ---- keys.c: management handlers ---- */

int em_h_keys_generate(em_request *req, em_response *resp); /* POST keys */
int em_h_keys_import(em_request *req, em_response *resp);   /* PUT keys */
int em_h_keys_list(em_request *req, em_response *resp);     /* GET keys */
int em_h_keys_info(em_request *req, em_response *resp);     /* POST info */
int em_h_keys_export(em_request *req, em_response *resp);   /* POST export */
int em_h_keys_digest(em_request *req, em_response *resp);   /* POST digest */
/* GET/PATCH/DELETE /crypto/v1/keys/{kid}: kid passed separately */
int em_h_key_get(em_request *req, const char *kid, em_response *resp);
int em_h_key_patch(em_request *req, const char *kid, em_response *resp);
int em_h_key_delete(em_request *req, const char *kid, em_response *resp);

/* ---- shared small utilities (store.c) ---- */

/* Standard base64 with padding. Decoding rejects anything else. */
char *em_b64_encode(const unsigned char *in, size_t len);
unsigned char *em_b64_decode(const char *in, size_t *outlen);
/* Base64 field of a JSON object: returns NULL and fills resp (400) when
   present but invalid, or when required and absent (null counts as absent).*/
unsigned char *em_json_b64(json_t *obj, const char *field, int required,
                           size_t *outlen, em_response *resp);
/* String field; NULL when absent or null. */
const char *em_json_str(json_t *obj, const char *field);
void em_time_now(char out[17]); /* YYYYMMDDThhmmssZ, UTC */
void em_uuid(char out[37]);     /* random lower-case v4 UUID */

/* ---- approval.c: groups, quorum approvals, test apps ---- */

int em_h_groups_create(em_request *req, em_response *resp); /* POST groups */
/* 1 when id is the default group or a group made with POST groups. */
int em_group_exists(const char *id);
int em_h_groups_list(em_request *req, em_response *resp); /* GET groups */
int em_h_group_get(em_request *req, const char *id, em_response *resp);
int em_h_group_patch(em_request *req, const char *id, em_response *resp);
int em_h_approval_create(em_request *req, em_response *resp);
int em_h_approval_list(em_request *req, em_response *resp);
int em_h_approval_get(em_request *req, const char *id, em_response *resp);
int em_h_approval_delete(em_request *req, const char *id, em_response *resp);
int em_h_approval_approve(em_request *req, const char *id, em_response *resp);
int em_h_approval_deny(em_request *req, const char *id, em_response *resp);
int em_h_approval_result(em_request *req, const char *id, em_response *resp);
/* Returns 1 when the crypto call may run directly; 0 with 403 "This
   operation requires approval" when a key it names is in a group whose
   policy protects crypto operations. */
int em_approval_check(em_request *req, em_response *resp);
/* 1 and the app's id when credential is the API key of a test app. */
int em_app_lookup(const char *credential, char app_id[37]);
/* test controls: POST /_emulator/apps, POST /_emulator/approval/expiry */
int em_control_apps(em_request *req, em_response *resp);
int em_control_approval_expiry(em_request *req, em_response *resp);
void em_approval_shutdown(void);

/* ---- http.c: what approval.c needs to run an approved call ---- */

/* method + path is a crypto call that may need approval. */
int em_http_is_crypto_route(const char *method, const char *path);
/* Runs a crypto call as req->who without the approval check (the strict
   schema check included); fills resp. */
void em_http_execute(em_request *req, em_response *resp);

/* ---- store.c: the identity's account and default group ---- */

const char *em_store_account(void);
const char *em_store_default_group(void);
/* The object's group (its group_id, or the default group). */
const char *em_obj_group(const em_obj *obj);

/* ---- start-up glue between main.c, http.c and store.c ---- */

typedef struct em_server_options {
    const char *listen_host;    /* numeric IPv4/IPv6 address or "localhost" */
    unsigned short listen_port; /* 0 = ephemeral */
    int use_tls;
    const char *cert_pem; /* PEM text (use_tls) */
    const char *key_pem;
    unsigned threads;
    unsigned token_lifetime; /* idle seconds */
    int test_controls;
    unsigned latency_ms;
    const char *api_key; /* base64("app-uuid:secret") */
    const char *app_id;
    FILE *log; /* NULL = no request log */
} em_server_options;

/* Starts the HTTP(S) daemon; returns the bound port, 0 on failure. */
unsigned short em_http_start(const em_server_options *opts);
void em_http_stop(void);

/*
 * Sets the identity shown in objects (creator app, account and group ids)
 * and, when persist_path is not NULL, loads it and saves every mutation of
 * persisted objects to it. Returns 0 with a message on a corrupt file.
 */
int em_store_init(const char *app_id, const char *persist_path, char *err,
                  size_t errlen);
void em_store_shutdown(void);

#endif
