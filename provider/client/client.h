/*
 * The SmartKey REST client: the only code in smartkey that knows HTTP, JSON
 * and SmartKey's wire format (docs/smartkey-api.md). Callers pass and get
 * C types.
 *
 * Thread safety: one sk_client is shared by every thread of the process.
 * All calls may run concurrently. No lock is held across a network call.
 * Fork: a child process abandons the parent's connections (never closes
 * them) and reconnects lazily; a valid session token is reused.
 */
#ifndef SMARTKEY_CLIENT_H
#define SMARTKEY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sk_client sk_client;

/* Why a call failed. Mapped to provider reason codes by the provider. */
typedef enum sk_err_kind {
    SK_ERR_NONE = 0,
    SK_ERR_CONFIG,      /* bad endpoint/credentials configuration */
    SK_ERR_NETWORK,     /* cannot connect / connection lost */
    SK_ERR_TIMEOUT,     /* connect or request timeout */
    SK_ERR_TLS,         /* certificate or TLS handshake failure */
    SK_ERR_TLS_NAME,    /* the certificate does not name the endpoint's host */
    SK_ERR_AUTH,        /* 401: bad API key, or re-authentication failed */
    SK_ERR_FORBIDDEN,   /* 403: operation not allowed on the key */
    SK_ERR_APPROVAL,    /* 403 "This operation requires approval" */
    SK_ERR_NOT_FOUND,   /* 404: no such key */
    SK_ERR_BAD_REQUEST, /* 400 and other 4xx */
    SK_ERR_THROTTLED,   /* 429 after the retry budget */
    SK_ERR_SERVER,      /* 5xx after the retry budget */
    SK_ERR_PROTOCOL,    /* malformed, truncated or unexpected response */
    SK_ERR_NOMEM,
    /* quorum approvals (sk_approval below) */
    SK_ERR_APPROVAL_PENDING,  /* the approval request exists, not approved */
    SK_ERR_APPROVAL_DENIED,   /* an approver denied it (message: reason) */
    SK_ERR_APPROVAL_EXPIRED,  /* it expired (or was deleted) unapproved */
    SK_ERR_APPROVAL_TIMEOUT,  /* approval_timeout passed while waiting */
    SK_ERR_APPROVAL_MISMATCH, /* the request to resume is for another call */
} sk_err_kind;

typedef struct sk_error {
    sk_err_kind kind;
    long http_status;  /* 0 when there was no HTTP answer */
    char request[64];  /* e.g. "POST /crypto/v1/keys/info" */
    char message[512]; /* SmartKey's plain-text body or curl's reason;
                          never contains a secret */
} sk_error;

/*
 * How requests authenticate (docs/smartkey-api.md §2.1).
 *   SESSION: the API key is exchanged once for a Bearer session.
 *   API_KEY: every request carries the API key (SmartKey's session-less
 *            mode) and a 401 is final.
 *   AUTO:    the first SK_AUTH_AUTO_BASIC_REQUESTS requests carry the API
 *            key, later ones a session: a one-shot command never pays for a
 *            session, a long-running process gets one. A 401 to the API
 *            key (a server that wants sessions) switches to a session.
 * In every mode, calls on transient keys use a session: a transient key
 * lives only inside the session that made it.
 */
typedef enum sk_auth_mode {
    SK_AUTH_SESSION = 0,
    SK_AUTH_API_KEY,
    SK_AUTH_AUTO
} sk_auth_mode;
#define SK_AUTH_AUTO_BASIC_REQUESTS 2

typedef struct sk_client_config {
    /* "https://host[:port]" (no path), or the nodes of a SmartKey cluster
       separated by commas and/or spaces: a node that cannot be reached
       (connection refused or timed out, 502/503/504) is skipped for a
       cool-down and the next one is used. One session is kept for all
       nodes; a node that does not know it answers 401 and the client
       re-authenticates there transparently. */
    const char *endpoint;
    const char *api_key; /* copied; zeroised by sk_client_free */
    const char *ca_file; /* NULL: system trust store */
    const char *ca_path;
    /* The proxy: NULL or "" none, whatever the environment says (libcurl
       would read https_proxy, HTTPS_PROXY, ALL_PROXY); "env": libcurl's
       environment variables; otherwise a proxy URL. no_proxy: hosts
       reached directly (libcurl's NOPROXY list); NULL with a proxy URL:
       none, whatever NO_PROXY says. */
    const char *proxy;
    const char *no_proxy;
    long connect_timeout_ms;  /* 0: default 5000 */
    long request_timeout_ms;  /* 0: default 30000 */
    int retries;              /* retries of idempotent calls on 429/5xx/
                                 network errors; -1: default 2 */
    int insecure_skip_verify; /* only by explicit configuration */
    /* Batching of concurrent sign and decrypt calls into SmartKey's batch
       endpoints: at most batch_max_size calls per request (0 or 1: off);
       a call waits at most batch_max_wait_us (0: 1000) for companions, less
       once none has joined for a quarter of it, and only while another
       call of its kind is on the wire. */
    unsigned batch_max_size;
    long batch_max_wait_us;
    sk_auth_mode auth;
    /* 0 (async = auto): a call made inside an OpenSSL ASYNC job (e.g.
       SSL_MODE_ASYNC) sends its request from the client's I/O thread and
       pauses the job on a wait fd until the answer is in; 1: such calls
       block like any other. */
    int async_off;
    /* optional debug log sink; never receives secrets */
    void (*log)(void *arg, int level, const char *msg);
    void *log_arg;
    /* the highest level `log` wants (1 errors, 2 requests...): messages
       above it are not even formatted; 0: every level */
    int log_level;
} sk_client_config;

/*
 * Quorum approval of one call (docs/approval.md). NULL, or mode FAIL
 * without resume_id: a 403 "This operation requires approval" is the
 * error SK_ERR_APPROVAL, as before.
 *   REQUEST: on that 403 the call is posted to /sys/v1/approval_requests
 *            with `description`; the error is SK_ERR_APPROVAL_PENDING and
 *            request_id names the request. A call that names a transient
 *            key is not posted (another process could never complete it):
 *            SK_ERR_APPROVAL with not_resumable set.
 *   WAIT:    the same, then notify(request_id) once, and polling (0.5 s
 *            doubling to 8 s; an ASYNC job pauses on the engine's timer)
 *            until approved (the call's answer is read from .../result),
 *            denied, expired or `timeout` seconds.
 * resume_id: instead of the direct call, the approval request with this id
 *   is checked to be for this very call (method, path and body) and
 *   completed from its result; still pending: SK_ERR_APPROVAL_PENDING
 *   unless mode is WAIT (then it is waited for).
 * No lock is held while waiting.
 */
typedef enum sk_approval_mode {
    SK_APPROVAL_FAIL = 0,
    SK_APPROVAL_REQUEST,
    SK_APPROVAL_WAIT,
} sk_approval_mode;

typedef struct sk_approval {
    sk_approval_mode mode;
    double timeout;          /* WAIT: seconds (<= 0: 600) */
    const char *resume_id;   /* NULL: call directly first */
    const char *description; /* for the approvers; NULL: none */
    void (*notify)(void *arg, const char *request_id);
    void *notify_arg;
    /* out */
    char request_id[37]; /* the approval request made or resumed, or "" */
    int not_resumable;   /* REQUEST refused: the call names a transient key */
    unsigned polls;      /* GET requests made while waiting */
} sk_approval;

/* A key as SmartKey describes it (the subset the provider needs). */
typedef enum sk_obj_type {
    SK_OBJ_OTHER = 0,
    SK_OBJ_RSA,
    SK_OBJ_EC,
    SK_OBJ_AES,
    SK_OBJ_SECRET,
    SK_OBJ_HMAC,
    SK_OBJ_CERTIFICATE, /* an X.509 certificate; pub_key: the certified key */
} sk_obj_type;

typedef enum sk_curve {
    SK_CURVE_NONE = 0,
    SK_CURVE_P256,
    SK_CURVE_P384,
    SK_CURVE_P521,
    SK_CURVE_ED25519, /* an EC object on Ed25519: EdDSA signatures */
    SK_CURVE_X25519,  /* an EC object on X25519: key agreement only */
    SK_CURVE_OTHER,
} sk_curve;

enum {
    SK_OP_SIGN = 1u << 0,
    SK_OP_VERIFY = 1u << 1,
    SK_OP_ENCRYPT = 1u << 2,
    SK_OP_DECRYPT = 1u << 3,
    SK_OP_WRAPKEY = 1u << 4,
    SK_OP_UNWRAPKEY = 1u << 5,
    SK_OP_EXPORT = 1u << 6,
    SK_OP_APPMANAGEABLE = 1u << 7,
};

typedef struct sk_key_info {
    char kid[37];
    char *name;
    sk_obj_type obj_type;
    unsigned key_size; /* bits */
    sk_curve curve;
    unsigned key_ops; /* SK_OP_* */
    int enabled;
    int public_only;
    unsigned char *pub_key; /* DER SubjectPublicKeyInfo (RSA/EC) */
    size_t pub_key_len;
    int active; /* state is "Active" (or not reported) */
} sk_key_info;

/* Names a key: exactly one of kid or name. */
typedef struct sk_key_ref {
    const char *kid;
    const char *name;
} sk_key_ref;

/* No network work here: the session is established on first use. */
sk_client *sk_client_new(const sk_client_config *cfg, sk_error *err);
void sk_client_free(sk_client *client);

/* Seconds on the monotonic clock (cool-downs, lifetimes, cache ages). */
double sk_now_seconds(void);

/* The len bytes at s are a hyphenated UUID (a kid), hex digits in either
   case; s need not be NUL-terminated. */
int sk_is_uuid(const char *s, size_t len);

/* POST /crypto/v1/keys/info?show_pub_key=true */
int sk_client_key_info(sk_client *client, const sk_key_ref *key,
                       sk_key_info **out, sk_error *err);
/* GET /crypto/v1/keys (optionally filtered by exact name) */
int sk_client_list_keys(sk_client *client, const char *name, sk_key_info ***out,
                        size_t *count, sk_error *err);
/* GET /crypto/v1/keys?obj_type=CERTIFICATE: every certificate object
   (pub_key is the certified key's; no value) */
int sk_client_list_certificates(sk_client *client, sk_key_info ***out,
                                size_t *count, sk_error *err);
/*
 * POST /crypto/v1/keys/info?show_value=true for the CERTIFICATE object kid:
 * its DER X.509 certificate in *der (OPENSSL_malloc'd). SmartKey returns the
 * value only to apps allowed EXPORT on the object (SK_ERR_FORBIDDEN
 * otherwise); an answer about another object or type is refused.
 */
int sk_client_certificate(sk_client *client, const char *kid,
                          unsigned char **der, size_t *der_len, sk_error *err);
void sk_key_info_free(sk_key_info *info);
void sk_key_info_list_free(sk_key_info **list, size_t count);

/*
 * Remote operations. Byte buffers returned in *out are OPENSSL_malloc'd
 * (free with OPENSSL_free, or OPENSSL_clear_free for plaintext). All of them
 * are retried like the lookups above: they change nothing on the server.
 */

/* RSA signature padding (SmartKey's "mode"); NONE for ECDSA. */
typedef enum sk_sig_padding {
    SK_SIG_NONE = 0,
    SK_SIG_PKCS1_V15,
    SK_SIG_PSS, /* salt length = digest length, MGF1 hash = mgf1_hash */
} sk_sig_padding;

typedef struct sk_sign_request {
    sk_key_ref key;
    const char *hash_alg;      /* SmartKey spelling: "SHA256", "SHA3_256" ... */
    const unsigned char *hash; /* the digest computed locally */
    size_t hash_len;
    sk_sig_padding padding;
    const char *mgf1_hash; /* PSS only; NULL: hash_alg */
    sk_approval *approval; /* NULL: a quorum approval is an error */
    /* instead of hash: the message itself (pure EdDSA signs the message,
       docs/smartkey-api.md §4.3); exactly one of hash and data */
    const unsigned char *data;
    size_t data_len;
} sk_sign_request;

/* POST /crypto/v1/sign: RSA signature (modulus length), ECDSA DER or
   Ed25519 R || S (64 bytes). */
int sk_client_sign(sk_client *client, const sk_sign_request *req,
                   unsigned char **signature, size_t *signature_len,
                   sk_error *err);

/* RSA encryption padding (SmartKey's "mode"). */
typedef enum sk_rsa_padding {
    SK_RSA_OAEP = 0, /* label hash = MGF1 hash = oaep_hash */
    SK_RSA_PKCS1_V15,
    SK_RSA_RAW, /* RAW_DECRYPT */
} sk_rsa_padding;

/* An RSA decrypt or encrypt with a SmartKey key. */
typedef struct sk_rsa_request {
    sk_key_ref key;             /* needs DECRYPT, or ENCRYPT */
    sk_rsa_padding padding;     /* encrypt: OAEP or PKCS1_V15 only */
    const char *oaep_hash;      /* OAEP only; NULL: "SHA1" */
    const unsigned char *label; /* OAEP label; sent only when non-empty */
    size_t label_len;
    const unsigned char *in; /* decrypt: the ciphertext; encrypt: the text */
    size_t in_len;
    sk_approval *approval;
    /* encrypt only: instead of key, the handle of a transient key, as for
       wrapkey */
    const char *transient_key;
} sk_rsa_request;

/* POST /crypto/v1/decrypt with alg RSA: req->in is "cipher", the answer's
   "plain" is returned. */
int sk_client_decrypt(sk_client *client, const sk_rsa_request *req,
                      unsigned char **plain, size_t *plain_len, sk_error *err);
/* POST /crypto/v1/encrypt with alg RSA: req->in is "plain", the answer's
   "cipher" is returned. */
int sk_client_encrypt(sk_client *client, const sk_rsa_request *req,
                      unsigned char **cipher, size_t *cipher_len,
                      sk_error *err);

typedef struct sk_wrapkey_request {
    sk_key_ref wrapping_key; /* needs WRAPKEY */
    sk_key_ref wrap_subject; /* the key being wrapped; needs EXPORT */
    const char *alg;         /* algorithm of the wrapping key: "RSA", "AES" */
    /* RSA wrapping keys: OAEP with this MGF1 hash (NULL: "SHA1").
       AES wrapping keys: the cipher mode, e.g. "KW" or "KWP". */
    const char *oaep_hash;
    const char *cipher_mode;
    /* instead of wrapping_key: the handle of a transient key, valid only
       in the session that created it (create_transient_public_key) */
    const char *wrapping_transient_key;
    sk_approval *approval;
} sk_wrapkey_request;

/* POST /crypto/v1/wrapkey: the subject wrapped inside SmartKey. */
int sk_client_wrapkey(sk_client *client, const sk_wrapkey_request *req,
                      unsigned char **wrapped, size_t *wrapped_len,
                      sk_error *err);

/*
 * PUT /crypto/v1/keys with "transient":true: registers a public key (DER
 * SubjectPublicKeyInfo of type obj_type, e.g. "RSA") for this session only,
 * allowed to WRAPKEY and ENCRYPT. Nothing persists on the server: the handle
 * (*transient_key, OPENSSL_malloc'd) dies with the session. Not retried
 * after a 5xx: it creates an object.
 */
int sk_client_create_transient_public_key(sk_client *client,
                                          const char *obj_type,
                                          const unsigned char *spki,
                                          size_t spki_len, char **transient_key,
                                          sk_error *err);

/*
 * RSA padding policies of a new key (SmartKey's rsa.encryption_policy and
 * rsa.signature_policy, docs/smartkey-api.md §3.5): a bit set; 0 sends
 * nothing (SmartKey's default: OAEP only for encryption, anything for
 * signatures); ANY is the wildcard entry {}.
 */
enum {
    SK_PADDING_POLICY_ANY = 1u << 0,
    SK_PADDING_POLICY_OAEP = 1u << 1,
    SK_PADDING_POLICY_PKCS1_V15 = 1u << 2,
    SK_PADDING_POLICY_RAW_DECRYPT = 1u << 3, /* encryption policy only */
    SK_PADDING_POLICY_PSS = 1u << 4,         /* signature policy only */
};

/* A new key to generate in SmartKey. */
typedef struct sk_generate_request {
    const char *name;           /* required, unique in the account */
    const char *obj_type;       /* "RSA" or "EC" */
    unsigned key_size;          /* RSA: modulus bits */
    unsigned long pub_exponent; /* RSA; 0: SmartKey's default */
    const char *elliptic_curve; /* EC: "NistP256", "NistP384", "NistP521" */
    /* permitted operations (SmartKey's names); NULL: SmartKey's default,
       every operation of the type except EXPORT */
    const char *const *key_ops;
    size_t key_ops_count;
    unsigned encryption_policy; /* RSA: SK_PADDING_POLICY_*; 0: default */
    unsigned signature_policy;  /* RSA: SK_PADDING_POLICY_*; 0: default */
    const char *description;    /* NULL: none */
    const char *group_id;       /* a group's UUID; NULL: the app's default */
    /* custom_metadata: metadata_count name/value pairs, names unique */
    const char *const *metadata_names;
    const char *const *metadata_values;
    size_t metadata_count;
} sk_generate_request;

/*
 * POST /crypto/v1/keys: generates the key inside SmartKey and returns its
 * description (kid, public key). Retried only when SmartKey cannot have
 * acted on it (429, refused connection): after a lost answer the key may
 * exist, and a retry would fail on its name.
 */
int sk_client_generate_key(sk_client *client, const sk_generate_request *req,
                           sk_key_info **out, sk_error *err);

/*
 * BYOK building blocks (docs/byok/): the pieces of a cloud's import
 * artifact that must be made inside SmartKey.
 */

/*
 * POST /crypto/v1/keys with "transient":true: a fresh AES key of `bits`
 * generated inside SmartKey for this session only. It may WRAPKEY and, so
 * that it can itself be wrapped under a cloud's RSA key, EXPORT: SmartKey
 * lets a key be a wrapkey subject only with EXPORT. smartkey never reads
 * its value; the handle (*transient_key, OPENSSL_malloc'd) dies with the
 * session. Not retried after a 5xx: it creates an object.
 */
int sk_client_generate_transient_aes(sk_client *client, unsigned bits,
                                     char **transient_key, sk_error *err);

/* wrapkey with every field SmartKey has; unset fields are not sent. */
typedef struct sk_wrapkey_ex_request {
    sk_key_ref wrapping_key;            /* or wrapping_transient_key */
    const char *wrapping_transient_key; /* handle of this session */
    sk_key_ref wrap_subject;            /* or subject_transient_key */
    const char *subject_transient_key;
    const char *alg;         /* of the wrapping key: "RSA" or "AES" */
    const char *oaep_hash;   /* RSA: OAEP with this MGF1 hash (NULL SHA1) */
    const char *cipher_mode; /* AES: "KWP", "GCM", ... */
    const char *key_format;  /* NULL (SmartKey's default) or "Pkcs8" */
    const unsigned char *iv; /* GCM: the caller's IV; NULL: none sent */
    size_t iv_len;
    const unsigned char *ad; /* GCM additional data; NULL: none sent */
    size_t ad_len;
    unsigned tag_len_bits; /* GCM tag length; 0: not sent */
    sk_approval *approval;
} sk_wrapkey_ex_request;

typedef struct sk_wrapkey_result {
    unsigned char *wrapped; /* OPENSSL_malloc'd */
    size_t wrapped_len;
    unsigned char *tag; /* GCM only, else NULL */
    size_t tag_len;
} sk_wrapkey_result;

/* POST /crypto/v1/wrapkey; *out is zeroed first and filled on success. */
int sk_client_wrapkey_ex(sk_client *client, const sk_wrapkey_ex_request *req,
                         sk_wrapkey_result *out, sk_error *err);
void sk_wrapkey_result_clear(sk_wrapkey_result *result);

/*
 * POST /crypto/v1/keys/digest: the digest (alg in SmartKey's spelling,
 * e.g. "SHA256") of a key's value, computed inside SmartKey; the value
 * itself is not revealed. SmartKey asks EXPORT of the key.
 */
int sk_client_key_digest(sk_client *client, const sk_key_ref *key,
                         const char *alg, sk_approval *approval,
                         unsigned char **digest, size_t *digest_len,
                         sk_error *err);

/*
 * Splits an endpoint value (see sk_client_config) into its node URLs,
 * trailing slashes removed. Returns 1 with *count >= 1 URLs in *urls (free
 * with sk_endpoints_free), 0 with err filled. No network work.
 */
int sk_endpoints_parse(const char *list, char ***urls, size_t *count,
                       sk_error *err);
void sk_endpoints_free(char **urls, size_t count);

/*
 * Text from a URI, openssl.cnf or a server made safe for a terminal or a
 * log line: CR, LF, TAB and ESC become \r \n \t \e, other C0 controls
 * and DEL \xNN; other bytes are kept. in may be NULL (""); len SIZE_MAX
 * means up to the NUL. Cut with "..." when out is too small. Returns out.
 */
const char *sk_escape_text(const char *in, size_t len, char *out,
                           size_t out_len);
#define SK_ESCAPE_MAX 1024
/* sk_escape_text of a NUL-terminated string into a buffer that lives
   until the end of the enclosing block, e.g. in a printf argument. */
#define SK_ESCAPED(s)                                                          \
    sk_escape_text((s), SIZE_MAX, (char[SK_ESCAPE_MAX]){0}, SK_ESCAPE_MAX)

/*
 * 32 bytes derived from the API key and label (HMAC-SHA256), stable for a
 * configuration, never sent: keys derivations where OpenSSL uses the
 * private key (implicit rejection). 0 when the client has no API key.
 */
int sk_client_derive_secret(sk_client *client, const char *label,
                            unsigned char out[32]);

/* Short stable name of a kind, e.g. "not found". */
const char *sk_err_kind_name(sk_err_kind kind);

/* One line describing err for users: request, status and SmartKey's text,
   e.g. "POST /crypto/v1/keys/info: 404 not found: Sobject does not exist".
   Returns buf. */
const char *sk_error_string(const sk_error *err, char *buf, size_t len);

/* Text jansson allocated (json_dumps, also outside the client: the BYOK
   documents): wiped, then released with jansson's own free function, which
   need not be free(). NULL is ignored. */
void sk_json_dumped_free(char *text);

#endif
