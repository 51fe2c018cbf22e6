/*
 * Strict request checking: the fields each request body may carry, at every
 * depth, and the spellings of SmartKey's enums (docs/smartkey-api.md §3, §4).
 *
 * A typo in a client's request (an unknown field, "sha256" for "SHA256")
 * is answered 400 with a plain-text message naming the field, so that the
 * whole test suite checks every request the provider sends. Fields of
 * SmartKey's request model that the emulator does not implement are
 * accepted (and ignored by the handlers); `null` counts as absent. Type
 * errors of known fields are left to the handlers. --lenient
 * (em_lenient) turns all of this off.
 */
#include "emulator.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

int em_lenient;

typedef enum kind {
    K_ANY,        /* a value the handlers read (or ignore) as it is */
    K_ENUM,       /* a string from `values` */
    K_ENUMS,      /* an array of strings from `values` */
    K_OBJECT,     /* an object with the fields of `inner` */
    K_OBJECTS,    /* an array of such objects */
    K_CRYPT_MODE, /* a cipher mode from `values`, or an `inner` object */
} kind;

typedef struct field {
    const char *name;
    kind kind;
    const char *const *values;
    const struct field *inner; /* terminated by a NULL name */
} field;

/* clang-format off */
#define FIELD(n, k, v, f) {n, k, v, f}
#define END               FIELD(NULL, K_ANY, NULL, NULL)
#define ANY(n)            FIELD(n, K_ANY, NULL, NULL)
#define ENUM(n, v)        FIELD(n, K_ENUM, v, NULL)
#define ENUMS(n, v)       FIELD(n, K_ENUMS, v, NULL)
#define OBJECT(n, f)      FIELD(n, K_OBJECT, NULL, f)
#define OBJECTS(n, f)     FIELD(n, K_OBJECTS, NULL, f)
/* clang-format on */

/* ---- enum spellings (case-sensitive) ---------------------------------- */

/* alg (Algorithm); obj_type adds the types that are not algorithms */
#define KEY_ALGORITHMS                                                         \
    "AES", "ARIA", "DES", "DES3", "SEED", "RSA", "DSA", "KCDSA", "EC",         \
        "ECKCDSA", "BIP32", "SLIP10", "BLS", "LMS", "XMSS", "MLDSA",           \
        "MLDSABETA", "MLKEM", "MLKEMBETA", "HMAC", "LEDABETA", "ROUND5BETA",   \
        "PBE"
static const char *const algorithms[] = {KEY_ALGORITHMS, NULL};
static const char *const obj_types[] = {KEY_ALGORITHMS, "OPAQUE", "SECRET",
                                        "CERTIFICATE", NULL};

static const char *const digests[] = {
    "SHA1",        "SHA224",      "SHA256",     "SHA384",     "SHA512",
    "SHA3_224",    "SHA3_256",    "SHA3_384",   "SHA3_512",   "RIPEMD160",
    "SSL3",        "BLAKE2B256",  "BLAKE2B384", "BLAKE2B512", "BLAKE2S256",
    "STREEBOG256", "STREEBOG512", NULL};

static const char *const cipher_modes[] = {"ECB", "CBC", "CBCNOPAD", "CFB",
                                           "OFB", "CTR", "GCM",      "CCM",
                                           "KW",  "KWP", "FF1",      NULL};

static const char *const curves[] = {
    "X25519",    "Ed25519",   "Ed448",    "X448",     "SecP192K1",
    "SecP224K1", "SecP256K1", "NistP192", "NistP224", "NistP256",
    "NistP384",  "NistP521",  "Gost256A", NULL};

static const char *const key_ops[] = {
    "SIGN",        "VERIFY",    "ENCRYPT",     "DECRYPT",
    "WRAPKEY",     "UNWRAPKEY", "DERIVEKEY",   "TRANSFORM",
    "MACGENERATE", "MACVERIFY", "EXPORT",      "APPMANAGEABLE",
    "HIGHVOLUME",  "AGREEKEY",  "ENCAPSULATE", "DECAPSULATE",
    NULL};

static const char *const states[] = {"PreActive",   "Active",    "Deactivated",
                                     "Compromised", "Destroyed", "Deleted",
                                     NULL};

static const char *const key_formats[] = {"Default", "Pkcs8", NULL};

static const char *const publish_states[] = {"enabled", "disabled", NULL};

/* ---- shapes ------------------------------------------------------------ */

static const field nothing[] = {END};

/* {"inline":{"value":..,"obj_type":..}} */
static const field inline_key[] = {ANY("value"), ENUM("obj_type", obj_types),
                                   END};

/* SobjectDescriptor: exactly one variant (checked by em_resolve) */
static const field descriptor[] = {ANY("kid"), ANY("name"),
                                   ANY("transient_key"),
                                   OBJECT("inline", inline_key), END};

static const field mgf1[] = {ENUM("hash", digests), END};
static const field mgf[] = {OBJECT("mgf1", mgf1), END};
static const field with_mgf[] = {OBJECT("mgf", mgf), END};

/* RSA padding of encrypt/decrypt/wrap (also the policy entries' shape) */
static const field crypt_padding[] = {OBJECT("OAEP", with_mgf),
                                      OBJECT("PKCS1_V15", nothing),
                                      OBJECT("RAW_DECRYPT", nothing), END};

static const field sign_padding[] = {OBJECT("PKCS1_V15", nothing),
                                     OBJECT("PSS", with_mgf), END};

#define CRYPT_MODE(n) FIELD(n, K_CRYPT_MODE, cipher_modes, crypt_padding)

static const field encryption_policy[] = {OBJECT("padding", crypt_padding),
                                          END};
static const field signature_policy[] = {OBJECT("padding", sign_padding), END};

static const field rsa_options[] = {
    ANY("key_size"),
    ANY("public_exponent"),
    OBJECTS("encryption_policy", encryption_policy),
    OBJECTS("signature_policy", signature_policy),
    ANY("minimum_key_length"),
    END};

static const field publish_public_key[] = {ENUM("state", publish_states),
                                           ANY("list_previous_version"), END};

/* SobjectRequest: generate (POST), import (PUT), update (PATCH) */
static const field sobject_request[] = {
    ANY("name"),
    ENUM("obj_type", obj_types),
    ANY("key_size"),
    ANY("pub_exponent"),
    ENUM("elliptic_curve", curves),
    ENUMS("key_ops", key_ops),
    ANY("value"),
    ANY("enabled"),
    ANY("transient"),
    ANY("group_id"),
    ANY("description"),
    ANY("custom_metadata"),
    ENUM("state", states),
    ANY("activation_date"),
    ANY("deactivation_date"),
    ANY("deterministic_signatures"),
    OBJECT("rsa", rsa_options),
    ANY("aes"),
    OBJECT("publish_public_key", publish_public_key),
    ANY("export_policy"),
    END};

#define ENCRYPT_FIELDS                                                         \
    ENUM("alg", algorithms), ANY("plain"), CRYPT_MODE("mode"), ANY("iv"),      \
        ANY("ad"), ANY("tag_len"), ANY("label")
#define DECRYPT_FIELDS                                                         \
    ENUM("alg", algorithms), ANY("cipher"), CRYPT_MODE("mode"), ANY("iv"),     \
        ANY("ad"), ANY("tag"), ANY("masked"), ANY("label")

static const field encrypt_request[] = {OBJECT("key", descriptor),
                                        ENCRYPT_FIELDS, END};
static const field decrypt_request[] = {OBJECT("key", descriptor),
                                        DECRYPT_FIELDS, END};
/* batch encrypt/decrypt items name the key outside the request */
static const field encrypt_keyless[] = {ENCRYPT_FIELDS, END};
static const field decrypt_keyless[] = {DECRYPT_FIELDS, END};
static const field batch_encrypt_item[] = {
    ANY("kid"), OBJECT("request", encrypt_keyless), END};
static const field batch_decrypt_item[] = {
    ANY("kid"), OBJECT("request", decrypt_keyless), END};

static const field sign_request[] = {OBJECT("key", descriptor),
                                     ENUM("hash_alg", digests),
                                     ANY("hash"),
                                     ANY("data"),
                                     OBJECT("mode", sign_padding),
                                     ANY("deterministic_signature"),
                                     ANY("context"),
                                     END};

static const field verify_request[] = {OBJECT("key", descriptor),
                                       ENUM("hash_alg", digests),
                                       ANY("hash"),
                                       ANY("data"),
                                       OBJECT("mode", sign_padding),
                                       ANY("signature"),
                                       ANY("context"),
                                       END};

static const field wrapkey_request[] = {OBJECT("key", descriptor),
                                        OBJECT("subject", descriptor),
                                        ANY("kid"),
                                        ENUM("alg", algorithms),
                                        CRYPT_MODE("mode"),
                                        ANY("iv"),
                                        ANY("ad"),
                                        ANY("tag_len"),
                                        ENUM("key_format", key_formats),
                                        END};

static const field unwrapkey_request[] = {OBJECT("key", descriptor),
                                          ENUM("alg", algorithms),
                                          ENUM("obj_type", obj_types),
                                          ANY("wrapped_key"),
                                          CRYPT_MODE("mode"),
                                          ANY("iv"),
                                          ANY("ad"),
                                          ANY("tag"),
                                          OBJECT("rsa", rsa_options),
                                          ENUM("elliptic_curve", curves),
                                          ANY("name"),
                                          ANY("group_id"),
                                          ANY("enabled"),
                                          ANY("description"),
                                          ANY("custom_metadata"),
                                          ENUMS("key_ops", key_ops),
                                          ANY("transient"),
                                          ANY("kcv"),
                                          ANY("kcv_method"),
                                          ANY("export_policy"),
                                          END};

static const field digest_request[] = {ENUM("alg", digests), ANY("data"), END};
static const field key_digest_request[] = {OBJECT("key", descriptor),
                                           ENUM("alg", digests), END};

/* groups and approvals (docs/smartkey-api.md §6); the quorum policy
   itself is checked by approval.c */
static const field approval_policy[] = {ANY("policy"),
                                        ANY("protect_crypto_operations"),
                                        ANY("protect_permissions"),
                                        ANY("protect_manage_operations"),
                                        ANY("protect_authentication_methods"),
                                        ANY("protect_cryptographic_policy"),
                                        ANY("protect_logging_config"),
                                        END};
static const field group_request[] = {
    ANY("name"), ANY("description"), OBJECT("approval_policy", approval_policy),
    ANY("custom_metadata"), END};
static const char *const http_methods[] = {"GET",   "POST",   "PUT",
                                           "PATCH", "DELETE", NULL};
/* the nested body is checked as the operation's own request */
static const field approval_request[] = {ENUM("method", http_methods),
                                         ANY("operation"), ANY("body"),
                                         ANY("description"), END};
static const field approve_request[] = {ANY("password"), ANY("u2f"),
                                        ANY("fido2"), END};
static const field deny_request[] = {ANY("reason"), END};

/* ---- query parameters --------------------------------------------------- */

static const char *const list_query[] = {"name",
                                         "group_id",
                                         "creator",
                                         "obj_type",
                                         "limit",
                                         "offset",
                                         "sort",
                                         "start",
                                         "with_metadata",
                                         "show_value",
                                         "show_pub_key",
                                         "show_kcv",
                                         "show_destroyed",
                                         "show_deleted",
                                         "compliant_with_policies",
                                         "filter",
                                         NULL};

static const char *const lookup_query[] = {"view",
                                           "show_value",
                                           "show_pub_key",
                                           "show_destroyed",
                                           "show_deleted",
                                           "show_effective_export_policy",
                                           NULL};

static const char *const approval_list_query[] = {"requester", "reviewer",
                                                  "subject", "status", NULL};

/* ---- routes ------------------------------------------------------------ */

typedef struct body_rule {
    const char *method;
    const char *path;         /* as in http.c's route table */
    const field *fields;      /* NULL: the request takes no JSON body */
    int array;                /* the body is an array of such objects */
    const char *const *query; /* accepted query parameters, NULL: none */
} body_rule;

static const body_rule rules[] = {
    {"POST", "/crypto/v1/keys", sobject_request, 0, lookup_query},
    {"PUT", "/crypto/v1/keys", sobject_request, 0, lookup_query},
    {"GET", "/crypto/v1/keys", NULL, 0, list_query},
    {"POST", "/crypto/v1/keys/info", descriptor, 0, lookup_query},
    {"POST", "/crypto/v1/keys/export", descriptor, 0, lookup_query},
    {"POST", "/crypto/v1/keys/digest", key_digest_request, 0, NULL},
    {"POST", "/crypto/v1/keys/batch/sign", sign_request, 1, NULL},
    {"POST", "/crypto/v1/keys/batch/verify", verify_request, 1, NULL},
    {"POST", "/crypto/v1/keys/batch/encrypt", batch_encrypt_item, 1, NULL},
    {"POST", "/crypto/v1/keys/batch/decrypt", batch_decrypt_item, 1, NULL},
    {"GET", "/crypto/v1/keys/{kid}", NULL, 0, lookup_query},
    {"PATCH", "/crypto/v1/keys/{kid}", sobject_request, 0, lookup_query},
    {"DELETE", "/crypto/v1/keys/{kid}", NULL, 0, NULL},
    {"POST", "/crypto/v1/encrypt", encrypt_request, 0, NULL},
    {"POST", "/crypto/v1/decrypt", decrypt_request, 0, NULL},
    {"POST", "/crypto/v1/sign", sign_request, 0, NULL},
    {"POST", "/crypto/v1/verify", verify_request, 0, NULL},
    {"POST", "/crypto/v1/wrapkey", wrapkey_request, 0, NULL},
    {"POST", "/crypto/v1/unwrapkey", unwrapkey_request, 0, NULL},
    {"POST", "/crypto/v1/digest", digest_request, 0, NULL},
    {"POST", "/sys/v1/groups", group_request, 0, NULL},
    {"PATCH", "/sys/v1/groups/{kid}", group_request, 0, NULL},
    {"POST", "/sys/v1/approval_requests", approval_request, 0, NULL},
    {"GET", "/sys/v1/approval_requests", NULL, 0, approval_list_query},
    {"POST", "/sys/v1/approval_requests/{kid}/approve", approve_request, 0,
     NULL},
    {"POST", "/sys/v1/approval_requests/{kid}/deny", deny_request, 0, NULL},
    /* session calls and version take no body and no parameters */
};

/* ---- checking ------------------------------------------------------------ */

static int is_in(const char *value, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(value, *list) == 0)
            return 1;
    return 0;
}

/* "`a`, `b`, `c`" into buf (truncated with "..." when long). */
static void expected_names(const field *fields, const char *const *values,
                           char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0;
         fields != NULL ? fields[i].name != NULL : values[i] != NULL; i++) {
        const char *name = fields != NULL ? fields[i].name : values[i];
        int n = snprintf(buf + used, len - used, "%s`%s`", i ? ", " : "", name);

        if (n < 0 || (size_t)n >= len - used) {
            snprintf(buf + (used < len - 4 ? used : len - 4), 4, "...");
            return;
        }
        used += (size_t)n;
    }
}

static int unknown_field(em_response *resp, const char *path,
                         const field *fields)
{
    char expected[1024];

    if (fields[0].name == NULL)
        return em_error(resp, 400,
                        "Invalid request: unknown field `%s`, expected no "
                        "fields",
                        path);
    expected_names(fields, NULL, expected, sizeof(expected));
    return em_error(resp, 400,
                    "Invalid request: unknown field `%s`, expected one of %s",
                    path, expected);
}

static int unknown_variant(em_response *resp, const char *path, json_t *value,
                           const char *const *values)
{
    char expected[1024];

    expected_names(NULL, values, expected, sizeof(expected));
    if (!json_is_string(value))
        return em_error(resp, 400,
                        "Invalid request: `%s` must be a string, one of %s",
                        path, expected);
    return em_error(resp, 400,
                    "Invalid request: unknown variant `%.100s` of `%s`, "
                    "expected one of %s",
                    json_string_value(value), path, expected);
}

static int check_object(json_t *obj, const field *fields, char *path,
                        size_t cap, em_response *resp);

static int check_value(json_t *value, const field *f, char *path, size_t cap,
                       em_response *resp);

/* K_ENUMS, K_OBJECTS: each item as a K_ENUM or K_OBJECT, named `path[i]`. */
static int check_array(json_t *value, const field *f, char *path, size_t cap,
                       em_response *resp)
{
    field each = *f;
    size_t base = strlen(path), i;
    json_t *item;

    if (!json_is_array(value))
        return em_error(resp, 400, "Invalid request: `%s` must be an array",
                        path);
    each.kind = f->kind == K_ENUMS ? K_ENUM : K_OBJECT;
    json_array_foreach(value, i, item)
    {
        snprintf(path + base, cap - base, "[%zu]", i);
        if (!check_value(item, &each, path, cap, resp))
            return 0;
    }
    path[base] = '\0';
    return 1;
}

static int check_value(json_t *value, const field *f, char *path, size_t cap,
                       em_response *resp)
{
    switch (f->kind) {
    case K_ANY:
        return 1;
    case K_ENUM:
        return json_is_string(value) &&
                       is_in(json_string_value(value), f->values)
                   ? 1
                   : unknown_variant(resp, path, value, f->values);
    case K_ENUMS:
    case K_OBJECTS:
        return check_array(value, f, path, cap, resp);
    case K_CRYPT_MODE:
        if (json_is_string(value))
            return is_in(json_string_value(value), f->values)
                       ? 1
                       : unknown_variant(resp, path, value, f->values);
        /* an RSA padding object */
        __attribute__((fallthrough));
    case K_OBJECT:
        if (!json_is_object(value))
            return em_error(resp, 400,
                            "Invalid request: `%s` must be an object", path);
        return check_object(value, f->inner, path, cap, resp);
    }
    return 1;
}

static int check_object(json_t *obj, const field *fields, char *path,
                        size_t cap, em_response *resp)
{
    size_t base = strlen(path);
    const char *key;
    json_t *value;

    json_object_foreach(obj, key, value)
    {
        const field *f = fields;

        while (f->name != NULL && strcmp(f->name, key) != 0)
            f++;
        snprintf(path + base, cap - base, "%s%s", base ? "." : "", key);
        if (f->name == NULL)
            return unknown_field(resp, path, fields);
        if (!json_is_null(value) && !check_value(value, f, path, cap, resp))
            return 0;
        path[base] = '\0';
    }
    return 1;
}

typedef struct query_check {
    const char *const *allowed;
    const char *bad;
} query_check;

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind where,
                                 const char *key, const char *value)
{
    query_check *q = cls;

    (void)where;
    (void)value;
    if (q->allowed != NULL &&
        (is_in(key, q->allowed) || (q->allowed == list_query &&
                                    strncmp(key, "custom_metadata.", 16) == 0)))
        return MHD_YES;
    q->bad = key;
    return MHD_NO;
}

/* The rule for this method and route, NULL when there is none. */
static const body_rule *find_rule(const em_request *req, const char *route_path)
{
    const body_rule *rule = NULL;

    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (strcmp(rules[i].method, req->method) == 0 &&
            strcmp(rules[i].path, route_path) == 0)
            rule = &rules[i];
    return rule;
}

/* The Content-Type of a body-less request and the query parameters against
   the rule (no rule: no query parameter is allowed). */
static int check_headers_and_query(const em_request *req, const body_rule *rule,
                                   em_response *resp)
{
    query_check q = {NULL, NULL};
    const char *type;

    if (rule != NULL)
        q.allowed = rule->query;
    if (req->conn == NULL)
        return 1;
    type = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_TYPE);
    /* A form type on a request without a body is what libcurl sends
       for a body-less POST of a client that did not remove it: a body
       is announced that SmartKey's API does not have. (A JSON body
       under a form type is left alone: SmartKey reads JSON anyway.) */
    if (type != NULL && req->json == NULL &&
        (strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0 ||
         strncasecmp(type, "multipart/form-data", 19) == 0))
        return em_error(resp, 400,
                        "Invalid request: Content-Type `%.100s` on a "
                        "request without a body; send no Content-Type",
                        type);
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_arg, &q);
    if (q.bad != NULL)
        return em_error(resp, 400,
                        "Invalid request: unknown query parameter `%.100s`",
                        q.bad);
    return 1;
}

/* The JSON body against the rule's fields (every item of an array body). */
static int check_body(const em_request *req, const body_rule *rule,
                      const char *route_path, em_response *resp)
{
    char path[512] = "";

    if (rule == NULL || rule->fields == NULL) {
        if (json_is_object(req->json))
            return check_object(req->json, nothing, path, sizeof(path), resp);
        return em_error(resp, 400, "Invalid request: %s %s takes no body",
                        req->method, route_path);
    }
    if (!rule->array)
        /* a non-object is the handler's 400 */
        return !json_is_object(req->json) ||
               check_object(req->json, rule->fields, path, sizeof(path), resp);
    if (json_is_array(req->json)) {
        size_t i;
        json_t *item;

        json_array_foreach(req->json, i, item)
        {
            snprintf(path, sizeof(path), "[%zu]", i);
            if (json_is_object(item) &&
                !check_object(item, rule->fields, path, sizeof(path), resp))
                return 0;
        }
    }
    return 1;
}

int em_check_request(const em_request *req, const char *route_path,
                     em_response *resp)
{
    const body_rule *rule;

    if (em_lenient)
        return 1;
    rule = find_rule(req, route_path);
    if (!check_headers_and_query(req, rule, resp))
        return 0;
    if (req->json == NULL)
        return 1;
    return check_body(req, rule, route_path, resp);
}
