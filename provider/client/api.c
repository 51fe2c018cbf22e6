/*
 * The typed calls: each builds its request, sends it with sk_http_json()
 * (a jansson tree) or, for the hot calls (sign, decrypt, encrypt, wrap,
 * key digest), sk_http_text() (the body written directly as JSON text,
 * json_write.c), and reads the answer strictly (wrong types, bad Base64
 * or a malformed kid are protocol errors, never crashes).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "batch.h"
#include "internal.h"

static const char info_request[] = "POST /crypto/v1/keys/info";
static const char list_request[] = "GET /crypto/v1/keys";

/* A key reference names its key by exactly one of a kid (a UUID) and a
   name (UTF-8); 0 with err filled when it does not. */
static int key_ref_ok(const sk_key_ref *key, const char *request, sk_error *err)
{
    if (key == NULL || (key->kid == NULL) == (key->name == NULL)) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "name a key by exactly one of kid and name");
        return 0;
    }
    if (key->kid != NULL && !sk_is_uuid(key->kid, strlen(key->kid))) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "a kid is a UUID like "
                     "0b5c2f6e-27e5-4d3a-9b8e-3c7f1a2d4e5f");
        return 0;
    }
    if (key->name != NULL && !sk_utf8_valid(key->name, strlen(key->name))) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "the key name is not valid UTF-8");
        return 0;
    }
    return 1;
}

static json_t *descriptor(const sk_key_ref *key, const char *request,
                          sk_error *err)
{
    json_t *desc;

    if (!key_ref_ok(key, request, err))
        return NULL;
    desc = key->kid != NULL ? json_pack("{s:s}", "kid", key->kid)
                            : json_pack("{s:s}", "name", key->name);
    if (desc == NULL)
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
    return desc;
}

/* The key descriptor as text: {"kid":...}, {"name":...} or, when a
   transient key's handle is given, {"transient_key":...}. */
static int put_descriptor(sk_json_text *t, const sk_key_ref *key,
                          const char *transient_key, const char *request,
                          sk_error *err)
{
    if (transient_key != NULL) {
        if (!sk_utf8_valid(transient_key, strlen(transient_key))) {
            sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                         "the transient key handle is not valid UTF-8");
            return 0;
        }
        sk_json_text_raw(t, "{\"transient_key\":");
        sk_json_text_string(t, transient_key);
    } else if (!key_ref_ok(key, request, err)) {
        return 0;
    } else {
        sk_json_text_raw(t, key->kid != NULL ? "{\"kid\":" : "{\"name\":");
        sk_json_text_string(t, key->kid != NULL ? key->kid : key->name);
    }
    sk_json_text_raw(t, "}");
    return 1;
}

/* Starts a hot call's body: {"key":<descriptor>, and notes where the
   members after the key begin (decrypt batch items leave the key out). */
static int begin_body(sk_request_body *body, sk_json_text *t,
                      const sk_key_ref *key, const char *transient_key,
                      const char *request, sk_error *err)
{
    memset(body, 0, sizeof(*body));
    sk_json_text_raw(t, "{\"key\":");
    if (!put_descriptor(t, key, transient_key, request, err)) {
        sk_json_text_free(t);
        return 0;
    }
    sk_json_text_raw(t, ",");
    body->rest = t->len;
    body->kid = transient_key == NULL ? key->kid : NULL;
    body->session_only = transient_key != NULL;
    return 1;
}

/* Ends the body ("}"); 0 with err filled on no memory. */
static int end_body(sk_request_body *body, sk_json_text *t, const char *request,
                    sk_error *err)
{
    sk_json_text_raw(t, "}");
    body->text = sk_json_text_finish(t, &body->len);
    if (body->text == NULL)
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
    return body->text != NULL;
}

void sk_request_body_clear(sk_request_body *body)
{
    if (body->text != NULL)
        OPENSSL_clear_free(body->text, body->len + 1);
    memset(body, 0, sizeof(*body));
}

/* Enum spellings are SmartKey's, case-sensitive (docs/smartkey-api.md §1). */
static sk_obj_type obj_type_of(const char *s)
{
    static const struct {
        const char *name;
        sk_obj_type type;
    } types[] = {
        {"RSA", SK_OBJ_RSA},   {"EC", SK_OBJ_EC},
        {"AES", SK_OBJ_AES},   {"SECRET", SK_OBJ_SECRET},
        {"HMAC", SK_OBJ_HMAC}, {"CERTIFICATE", SK_OBJ_CERTIFICATE},
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(s, types[i].name) == 0)
            return types[i].type;
    return SK_OBJ_OTHER;
}

static sk_curve curve_of(const char *s)
{
    if (strcmp(s, "NistP256") == 0)
        return SK_CURVE_P256;
    if (strcmp(s, "NistP384") == 0)
        return SK_CURVE_P384;
    if (strcmp(s, "NistP521") == 0)
        return SK_CURVE_P521;
    if (strcmp(s, "Ed25519") == 0)
        return SK_CURVE_ED25519;
    if (strcmp(s, "X25519") == 0)
        return SK_CURVE_X25519;
    return SK_CURVE_OTHER;
}

/* value is a JSON array, or err holds `message` as a protocol error. */
static int is_array(json_t *value, const char *message, const char *request,
                    sk_error *err)
{
    if (json_is_array(value))
        return 1;
    sk_error_set(err, SK_ERR_PROTOCOL, request, "%s", message);
    return 0;
}

static int key_ops_of(json_t *array, unsigned *ops, const char *request,
                      sk_error *err)
{
    static const struct {
        const char *name;
        unsigned op;
    } names[] = {
        {"SIGN", SK_OP_SIGN},       {"VERIFY", SK_OP_VERIFY},
        {"ENCRYPT", SK_OP_ENCRYPT}, {"DECRYPT", SK_OP_DECRYPT},
        {"WRAPKEY", SK_OP_WRAPKEY}, {"UNWRAPKEY", SK_OP_UNWRAPKEY},
        {"EXPORT", SK_OP_EXPORT},   {"APPMANAGEABLE", SK_OP_APPMANAGEABLE},
    };
    size_t i;
    json_t *op;

    if (!is_array(array, "field \"key_ops\" of the response is not an array",
                  request, err))
        return 0;
    *ops = 0;
    json_array_foreach(array, i, op)
    {
        if (!json_is_string(op)) {
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "field \"key_ops\" holds a non-string");
            return 0;
        }
        /* Operations the provider does not use (DERIVEKEY, ...) and new
           ones are ignored. */
        for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++)
            if (strcmp(json_string_value(op), names[n].name) == 0)
                *ops |= names[n].op;
    }
    return 1;
}

void sk_key_info_free(sk_key_info *info)
{
    if (info == NULL)
        return;
    OPENSSL_free(info->name);
    OPENSSL_free(info->pub_key);
    OPENSSL_free(info);
}

void sk_key_info_list_free(sk_key_info **list, size_t count)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        sk_key_info_free(list[i]);
    OPENSSL_free(list);
}

static sk_key_info *parse_sobject(json_t *obj, const char *request,
                                  sk_error *err)
{
    sk_key_info *info;
    const char *kid, *name = NULL, *obj_type, *curve = NULL, *state = NULL;

    if (!json_is_object(obj)) {
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "a key description is not a JSON object");
        return NULL;
    }
    info = OPENSSL_zalloc(sizeof(*info));
    if (info == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return NULL;
    }
    if (!sk_json_need_string(obj, "kid", &kid, request, err) ||
        sk_json_string(obj, "name", &name, request, err) < 0 ||
        !sk_json_need_string(obj, "obj_type", &obj_type, request, err) ||
        sk_json_uint(obj, "key_size", &info->key_size, request, err) < 0 ||
        sk_json_string(obj, "elliptic_curve", &curve, request, err) < 0 ||
        !key_ops_of(json_object_get(obj, "key_ops"), &info->key_ops, request,
                    err) ||
        sk_json_bool(obj, "enabled", &info->enabled, request, err) != 1 ||
        sk_json_bool(obj, "public_only", &info->public_only, request, err) <
            0 ||
        sk_json_string(obj, "state", &state, request, err) < 0 ||
        sk_json_base64(obj, "pub_key", &info->pub_key, &info->pub_key_len,
                       request, err) < 0)
        goto fail;
    if (!sk_is_uuid(kid, strlen(kid))) {
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "field \"kid\" of the response is not a UUID");
        goto fail;
    }
    memcpy(info->kid, kid, sizeof(info->kid));
    if (name != NULL && (info->name = OPENSSL_strdup(name)) == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        goto fail;
    }
    info->obj_type = obj_type_of(obj_type);
    info->curve = curve != NULL ? curve_of(curve) : SK_CURVE_NONE;
    info->active = state == NULL || strcmp(state, "Active") == 0;
    return info;

fail:
    /* A missing "enabled" leaves err unset by sk_json_bool. */
    if (err != NULL && err->kind == SK_ERR_NONE)
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "field \"enabled\" missing from the response");
    sk_key_info_free(info);
    return NULL;
}

int sk_client_key_info(sk_client *client, const sk_key_ref *key,
                       sk_key_info **out, sk_error *err)
{
    json_t *body, *answer = NULL;
    int ok;

    sk_error_clear(err);
    *out = NULL;
    body = descriptor(key, info_request, err);
    if (body == NULL)
        return 0;
    ok = sk_http_json(client, "POST", "/crypto/v1/keys/info?show_pub_key=true",
                      info_request, body, SK_HTTP_IDEMPOTENT, &answer, err);
    json_decref(body);
    if (ok) {
        *out = parse_sobject(answer, info_request, err);
        ok = *out != NULL;
    }
    json_decref(answer);
    return ok;
}

/* RFC 3986 unreserved characters stay; everything else is %XX. */
static char *url_encode(const char *s)
{
    size_t len = strlen(s);
    char *out = OPENSSL_malloc(len * 3 + 1), *p = out;

    if (out == NULL)
        return NULL;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *p++ = (char)c;
        } else {
            snprintf(p, 4, "%%%02X", c);
            p += 3;
        }
    }
    *p = '\0';
    return out;
}

#define LIST_PAGE  1000
#define LIST_LIMIT 100000

static int append_page(json_t *page, sk_key_info ***list, size_t *count,
                       size_t *cap, sk_error *err)
{
    size_t i;
    json_t *item;

    if (!is_array(page, "the answer is not a JSON array", list_request, err))
        return 0;
    json_array_foreach(page, i, item)
    {
        sk_key_info *info = parse_sobject(item, list_request, err);

        if (info == NULL)
            return 0;
        if (*count == *cap) {
            size_t new_cap = *cap == 0 ? 16 : *cap * 2;
            sk_key_info **grown =
                OPENSSL_realloc(*list, new_cap * sizeof(**list));

            if (grown == NULL) {
                sk_key_info_free(info);
                sk_error_set(err, SK_ERR_NOMEM, list_request, "out of memory");
                return 0;
            }
            *list = grown;
            *cap = new_cap;
        }
        (*list)[(*count)++] = info;
    }
    return 1;
}

/* GET /crypto/v1/keys, page after page; name and obj_type filter when set
   (obj_type: a SmartKey spelling from this file, never the caller's text). */
static int list_objects(sk_client *client, const char *name,
                        const char *obj_type, sk_key_info ***out, size_t *count,
                        sk_error *err)
{
    sk_key_info **list = NULL;
    size_t n = 0, cap = 0;
    char *name_query = NULL;
    char path[256];
    int ok = 1;

    sk_error_clear(err);
    *out = NULL;
    *count = 0;
    if (name != NULL) {
        name_query = url_encode(name);
        if (name_query == NULL) {
            sk_error_set(err, SK_ERR_NOMEM, list_request, "out of memory");
            return 0;
        }
    }
    for (size_t offset = 0; ok && offset < LIST_LIMIT; offset += LIST_PAGE) {
        json_t *page = NULL;
        char *full;
        size_t before = n, full_len;

        snprintf(path, sizeof(path),
                 "/crypto/v1/keys?show_pub_key=true&limit=%d&offset=%zu",
                 LIST_PAGE, offset);
        full_len = strlen(path) + (name_query ? strlen(name_query) : 0) +
                   (obj_type ? strlen(obj_type) : 0) + 20;
        full = OPENSSL_malloc(full_len);
        if (full == NULL) {
            sk_error_set(err, SK_ERR_NOMEM, list_request, "out of memory");
            ok = 0;
            break;
        }
        snprintf(full, full_len, "%s%s%s%s%s", path, name_query ? "&name=" : "",
                 name_query ? name_query : "", obj_type ? "&obj_type=" : "",
                 obj_type ? obj_type : "");
        ok = sk_http_json(client, "GET", full, list_request, NULL,
                          SK_HTTP_IDEMPOTENT, &page, err) &&
             append_page(page, &list, &n, &cap, err);
        OPENSSL_free(full);
        json_decref(page);
        /* A short page is the last one. A server that ignores offset
           would repeat the first page forever: stop on a repeated kid. */
        if (!ok || n - before < LIST_PAGE ||
            (before > 0 && strcmp(list[before]->kid, list[0]->kid) == 0))
            break;
    }
    OPENSSL_free(name_query);
    if (!ok) {
        sk_key_info_list_free(list, n);
        return 0;
    }
    *out = list;
    *count = n;
    return 1;
}

int sk_client_list_keys(sk_client *client, const char *name, sk_key_info ***out,
                        size_t *count, sk_error *err)
{
    return list_objects(client, name, NULL, out, count, err);
}

int sk_client_list_certificates(sk_client *client, sk_key_info ***out,
                                size_t *count, sk_error *err)
{
    size_t kept = 0;

    if (!list_objects(client, NULL, "CERTIFICATE", out, count, err))
        return 0;
    /* a server that ignores the filter: keep the certificates only */
    for (size_t i = 0; i < *count; i++) {
        if ((*out)[i]->obj_type == SK_OBJ_CERTIFICATE)
            (*out)[kept++] = (*out)[i];
        else
            sk_key_info_free((*out)[i]);
    }
    *count = kept;
    return 1;
}

/*
 * The DER certificate of a CERTIFICATE object, by kid only: show_value is
 * sent only for an object already known to be a certificate (it would
 * read out the value of an exportable key), and an answer for any other
 * object type is refused without keeping its value.
 */
int sk_client_certificate(sk_client *client, const char *kid,
                          unsigned char **der, size_t *der_len, sk_error *err)
{
    sk_key_ref ref = {.kid = kid};
    json_t *body, *answer = NULL;
    const char *obj_type = NULL, *answer_kid = NULL;
    int ok;

    sk_error_clear(err);
    *der = NULL;
    *der_len = 0;
    if (kid == NULL || !sk_is_uuid(kid, strlen(kid))) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, info_request,
                     "a certificate is read by its kid");
        return 0;
    }
    body = descriptor(&ref, info_request, err);
    if (body == NULL)
        return 0;
    ok = sk_http_json(client, "POST", "/crypto/v1/keys/info?show_value=true",
                      info_request, body, SK_HTTP_IDEMPOTENT, &answer, err);
    json_decref(body);
    if (ok &&
        (!json_is_object(answer) ||
         !sk_json_need_string(answer, "obj_type", &obj_type, info_request,
                              err) ||
         !sk_json_need_string(answer, "kid", &answer_kid, info_request, err))) {
        ok = 0;
        if (err->kind == SK_ERR_NONE)
            sk_error_set(err, SK_ERR_PROTOCOL, info_request,
                         "the answer is not a security object");
    }
    if (ok && (strcmp(obj_type, "CERTIFICATE") != 0 ||
               strcasecmp(answer_kid, kid) != 0)) {
        sk_error_set(err, SK_ERR_PROTOCOL, info_request,
                     "SmartKey answered the lookup of certificate %s with "
                     "another object; refused",
                     kid);
        ok = 0;
    }
    if (ok) {
        int found =
            sk_json_base64(answer, "value", der, der_len, info_request, err);

        if (found == 0)
            sk_error_set(err, SK_ERR_FORBIDDEN, info_request,
                         "SmartKey did not return the value of certificate "
                         "%s: it shows a certificate's value only to apps "
                         "allowed EXPORT on it",
                         kid);
        ok = found == 1;
    }
    json_decref(answer);
    return ok;
}

/* ---- crypto calls ---- */

/* Digest names go into JSON as they are; refuse anything that is not a
   SmartKey spelling rather than send it. */
static int valid_alg_name(const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;

    if (len == 0 || len > 16)
        return 0;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

static void wipe_strings(json_t *obj)
{
    const char *name;
    json_t *value;

    json_object_foreach(obj, name, value)
    {
        if (json_is_string(value))
            OPENSSL_cleanse((char *)json_string_value(value),
                            json_string_length(value));
    }
}

/* Runs the request and returns the Base64 field `field` of the answer.
   Wipes and frees the body. */
static int call_for_bytes(sk_client *client, const char *path,
                          const char *request, sk_request_body *body,
                          sk_approval *approval, const char *field,
                          unsigned char **out, size_t *out_len, sk_error *err)
{
    json_t *answer = NULL;
    int ok;

    /* sign and decrypt may share a batch request with other threads; a
       paused ASYNC job must not wait for a batch leader (it could be a job
       of the same thread): jobs send alone, concurrently. */
    /* a call that may take part in an approval goes alone (the approval
       request names one call) */
    ok = sk_http_async_now(client) ||
                 (approval != NULL && (approval->mode != SK_APPROVAL_FAIL ||
                                       approval->resume_id != NULL))
             ? -1
             : sk_batch_call(client, path, body, field, out, out_len, err);
    if (ok >= 0) {
        sk_request_body_clear(body);
        return ok;
    }
    ok = 0;
    if (sk_approval_text_call(client, "POST", path, request, body->text,
                              body->len, body->session_only, SK_HTTP_IDEMPOTENT,
                              approval, &answer, err)) {
        if (!json_is_object(answer))
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "the answer is not a JSON object");
        else
            ok = sk_json_need_base64(answer, field, out, out_len, request, err);
    }
    /* An encrypt request and a decrypt answer hold plaintext (Base64): the
       body is wiped, the answer's strings before jansson frees them. */
    sk_request_body_clear(body);
    wipe_strings(answer);
    json_decref(answer);
    return ok;
}

/* {"mgf":{"mgf1":{"hash":H}}} */
static void put_mgf1(sk_json_text *t, const char *hash)
{
    sk_json_text_raw(t, "{\"mgf\":{\"mgf1\":{\"hash\":");
    sk_json_text_string(t, hash);
    sk_json_text_raw(t, "}}}");
}

int sk_sign_body(const sk_sign_request *req, sk_request_body *body,
                 sk_error *err)
{
    static const char request[] = "POST /crypto/v1/sign";
    const char *mgf1_hash;
    sk_json_text t = {0};

    /* exactly one of hash (RSA, ECDSA) and data (EdDSA), never empty */
    if (req == NULL || !valid_alg_name(req->hash_alg) ||
        (req->hash == NULL) == (req->data == NULL) ||
        (req->hash != NULL && req->hash_len == 0) ||
        (req->data != NULL && req->padding != SK_SIG_NONE)) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "a digest or a message, and a hash algorithm, are "
                     "required");
        return 0;
    }
    mgf1_hash = req->mgf1_hash != NULL ? req->mgf1_hash : req->hash_alg;
    if (!valid_alg_name(mgf1_hash)) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request, "invalid MGF1 hash");
        return 0;
    }
    if (!begin_body(body, &t, &req->key, NULL, request, err))
        return 0;
    sk_json_text_raw(&t, "\"hash_alg\":");
    sk_json_text_string(&t, req->hash_alg);
    if (req->hash != NULL) {
        sk_json_text_raw(&t, ",\"hash\":");
        sk_json_text_base64(&t, req->hash, req->hash_len);
    } else {
        sk_json_text_raw(&t, ",\"data\":");
        sk_json_text_base64(&t, req->data, req->data_len);
    }
    /* "mode" is for RSA only: SmartKey refuses it on EC keys
       (docs/smartkey-api.md §4.3). */
    if (req->padding == SK_SIG_PKCS1_V15) {
        sk_json_text_raw(&t, ",\"mode\":{\"PKCS1_V15\":{}}");
    } else if (req->padding == SK_SIG_PSS) {
        sk_json_text_raw(&t, ",\"mode\":{\"PSS\":");
        put_mgf1(&t, mgf1_hash);
        sk_json_text_raw(&t, "}");
    }
    return end_body(body, &t, request, err);
}

int sk_client_sign(sk_client *client, const sk_sign_request *req,
                   unsigned char **signature, size_t *signature_len,
                   sk_error *err)
{
    sk_request_body body;

    sk_error_clear(err);
    *signature = NULL;
    if (!sk_sign_body(req, &body, err))
        return 0;
    return call_for_bytes(client, "/crypto/v1/sign", "POST /crypto/v1/sign",
                          &body, req->approval, "signature", signature,
                          signature_len, err);
}

/* "mode": {"PKCS1_V15":{}}, {"RAW_DECRYPT":{}} or OAEP with its hash */
static void put_rsa_mode(sk_json_text *t, sk_rsa_padding padding,
                         const char *oaep_hash)
{
    switch (padding) {
    case SK_RSA_PKCS1_V15:
        sk_json_text_raw(t, "{\"PKCS1_V15\":{}}");
        return;
    case SK_RSA_RAW:
        sk_json_text_raw(t, "{\"RAW_DECRYPT\":{}}");
        return;
    case SK_RSA_OAEP:
        break;
    }
    sk_json_text_raw(t, "{\"OAEP\":");
    put_mgf1(t, oaep_hash != NULL ? oaep_hash : "SHA1");
    sk_json_text_raw(t, "}");
}

/* The members of an RSA encrypt or decrypt after the key: `field` carries
   the data; "label" only when there is one (older servers do not know
   it). */
static void put_rsa_members(sk_json_text *t, const char *field,
                            const unsigned char *data, size_t data_len,
                            sk_rsa_padding padding, const char *oaep_hash,
                            const unsigned char *label, size_t label_len)
{
    sk_json_text_raw(t, "\"alg\":\"RSA\",\"");
    sk_json_text_raw(t, field);
    sk_json_text_raw(t, "\":");
    sk_json_text_base64(t, data, data_len);
    sk_json_text_raw(t, ",\"mode\":");
    put_rsa_mode(t, padding, oaep_hash);
    if (padding == SK_RSA_OAEP && label_len > 0) {
        sk_json_text_raw(t, ",\"label\":");
        sk_json_text_base64(t, label, label_len);
    }
}

int sk_wrapkey_body(const sk_wrapkey_ex_request *req, sk_request_body *body,
                    sk_error *err)
{
    static const char request[] = "POST /crypto/v1/wrapkey";
    sk_json_text t = {0};
    int rsa;

    if (req == NULL || !valid_alg_name(req->alg)) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "the wrapping algorithm is required");
        return 0;
    }
    rsa = strcmp(req->alg, "RSA") == 0;
    if ((rsa && req->oaep_hash != NULL && !valid_alg_name(req->oaep_hash)) ||
        (!rsa && !valid_alg_name(req->cipher_mode)) ||
        (req->key_format != NULL && !valid_alg_name(req->key_format))) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     req->key_format != NULL
                         ? "invalid OAEP hash, cipher mode or key format"
                         : "invalid OAEP hash or cipher mode");
        return 0;
    }
    if (!begin_body(body, &t, &req->wrapping_key, req->wrapping_transient_key,
                    request, err))
        return 0;
    sk_json_text_raw(&t, "\"subject\":");
    if (!put_descriptor(&t, &req->wrap_subject, req->subject_transient_key,
                        request, err)) {
        sk_json_text_free(&t);
        return 0;
    }
    body->session_only |= req->subject_transient_key != NULL;
    sk_json_text_raw(&t, ",\"alg\":");
    sk_json_text_string(&t, req->alg);
    sk_json_text_raw(&t, ",\"mode\":");
    if (rsa)
        put_rsa_mode(&t, SK_RSA_OAEP, req->oaep_hash);
    else
        sk_json_text_string(&t, req->cipher_mode);
    /* the options of sk_client_wrapkey_ex */
    if (req->key_format != NULL) {
        sk_json_text_raw(&t, ",\"key_format\":");
        sk_json_text_string(&t, req->key_format);
    }
    if (req->iv != NULL) {
        sk_json_text_raw(&t, ",\"iv\":");
        sk_json_text_base64(&t, req->iv, req->iv_len);
    }
    if (req->ad != NULL) {
        sk_json_text_raw(&t, ",\"ad\":");
        sk_json_text_base64(&t, req->ad, req->ad_len);
    }
    if (req->tag_len_bits > 0) {
        char digits[24];

        snprintf(digits, sizeof(digits), ",\"tag_len\":%u",
                 (unsigned)req->tag_len_bits);
        sk_json_text_raw(&t, digits);
    }
    return end_body(body, &t, request, err);
}

int sk_client_wrapkey(sk_client *client, const sk_wrapkey_request *req,
                      unsigned char **wrapped, size_t *wrapped_len,
                      sk_error *err)
{
    sk_wrapkey_ex_request ex = {0};
    sk_request_body body;

    sk_error_clear(err);
    *wrapped = NULL;
    if (req != NULL) {
        ex.wrapping_key = req->wrapping_key;
        ex.wrapping_transient_key = req->wrapping_transient_key;
        ex.wrap_subject = req->wrap_subject;
        ex.alg = req->alg;
        ex.oaep_hash = req->oaep_hash;
        ex.cipher_mode = req->cipher_mode;
        ex.approval = req->approval;
    }
    if (!sk_wrapkey_body(req != NULL ? &ex : NULL, &body, err))
        return 0;
    return call_for_bytes(client, "/crypto/v1/wrapkey",
                          "POST /crypto/v1/wrapkey", &body, ex.approval,
                          "wrapped_key", wrapped, wrapped_len, err);
}

/* RSA decrypt and encrypt: the same body but for the name of the input
   and the answer's field; encrypt takes a transient key and no raw mode. */
typedef struct rsa_operation {
    const char *path;
    const char *request;
    const char *in_field;
    const char *out_field;
    int encrypt;
} rsa_operation;

static const rsa_operation rsa_decrypt = {
    "/crypto/v1/decrypt", "POST /crypto/v1/decrypt", "cipher", "plain", 0};
static const rsa_operation rsa_encrypt = {
    "/crypto/v1/encrypt", "POST /crypto/v1/encrypt", "plain", "cipher", 1};

static int rsa_body(const rsa_operation *op, const sk_rsa_request *req,
                    sk_request_body *body, sk_error *err)
{
    sk_json_text t = {0};

    if (req == NULL || req->in == NULL || req->in_len == 0 ||
        (op->encrypt && req->padding == SK_RSA_RAW) ||
        (!op->encrypt && req->transient_key != NULL) ||
        (req->oaep_hash != NULL && !valid_alg_name(req->oaep_hash))) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, op->request,
                     op->encrypt ? "a plaintext, OAEP or PKCS#1 v1.5 (and a "
                                   "valid OAEP hash) are required"
                                 : "a ciphertext (and a valid OAEP hash) are "
                                   "required");
        return 0;
    }
    if (!begin_body(body, &t, &req->key, req->transient_key, op->request, err))
        return 0;
    put_rsa_members(&t, op->in_field, req->in, req->in_len, req->padding,
                    req->oaep_hash, req->label, req->label_len);
    return end_body(body, &t, op->request, err);
}

int sk_decrypt_body(const sk_rsa_request *req, sk_request_body *body,
                    sk_error *err)
{
    return rsa_body(&rsa_decrypt, req, body, err);
}

int sk_encrypt_body(const sk_rsa_request *req, sk_request_body *body,
                    sk_error *err)
{
    return rsa_body(&rsa_encrypt, req, body, err);
}

static int rsa_call(sk_client *client, const rsa_operation *op,
                    const sk_rsa_request *req, unsigned char **out,
                    size_t *out_len, sk_error *err)
{
    sk_request_body body;

    sk_error_clear(err);
    *out = NULL;
    if (!rsa_body(op, req, &body, err))
        return 0;
    return call_for_bytes(client, op->path, op->request, &body, req->approval,
                          op->out_field, out, out_len, err);
}

int sk_client_decrypt(sk_client *client, const sk_rsa_request *req,
                      unsigned char **plain, size_t *plain_len, sk_error *err)
{
    return rsa_call(client, &rsa_decrypt, req, plain, plain_len, err);
}

int sk_client_encrypt(sk_client *client, const sk_rsa_request *req,
                      unsigned char **cipher, size_t *cipher_len, sk_error *err)
{
    return rsa_call(client, &rsa_encrypt, req, cipher, cipher_len, err);
}

/*
 * Sends a body that creates a transient key on /crypto/v1/keys (the method
 * decides between importing and generating one) and hands back its handle.
 * Takes the body (NULL: it could not be built); 0 with err set on failure.
 */
/*
 * A generated key must be what was asked: a transient AES key of other
 * bits would become, e.g., a JWE content key that is not 32 bytes.
 * expect_bits 0: the answer's size is not checked (imports).
 */
static int answer_has_size(json_t *answer, unsigned expect_bits,
                           const char *request, sk_error *err)
{
    unsigned bits = 0;
    int found;

    if (expect_bits == 0)
        return 1;
    found = sk_json_uint(answer, "key_size", &bits, request, err);
    if (found < 0)
        return 0;
    if (found == 0) {
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "the new key's size is missing (%u bits were asked)",
                     expect_bits);
        return 0;
    }
    if (bits != expect_bits) {
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "SmartKey made a %u-bit key, %u bits were asked", bits,
                     expect_bits);
        return 0;
    }
    return 1;
}

static int call_for_transient_key(sk_client *client, const char *method,
                                  const char *request, json_t *body,
                                  unsigned expect_bits, char **transient_key,
                                  sk_error *err)
{
    json_t *answer = NULL;
    const char *handle = NULL;
    int ok = 0;

    if (body == NULL) {
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    if (sk_http_json(client, method, "/crypto/v1/keys", request, body, 0,
                     &answer, err)) {
        if (!json_is_object(answer))
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "the answer is not a JSON object");
        else if (answer_has_size(answer, expect_bits, request, err) &&
                 sk_json_need_string(answer, "transient_key", &handle, request,
                                     err)) {
            *transient_key = OPENSSL_strdup(handle);
            if (*transient_key == NULL)
                sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
            ok = *transient_key != NULL;
        }
    }
    json_decref(body);
    json_decref(answer);
    return ok;
}

int sk_client_create_transient_public_key(sk_client *client,
                                          const char *obj_type,
                                          const unsigned char *spki,
                                          size_t spki_len, char **transient_key,
                                          sk_error *err)
{
    static const char request[] = "PUT /crypto/v1/keys";
    json_t *body;

    sk_error_clear(err);
    *transient_key = NULL;
    if (!valid_alg_name(obj_type) || spki == NULL || spki_len == 0) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "a key type and a SubjectPublicKeyInfo are required");
        return 0;
    }
    body = json_pack("{s:s,s:o,s:b,s:[s,s]}", "obj_type", obj_type, "value",
                     sk_json_from_bytes(spki, spki_len), "transient", 1,
                     "key_ops", "WRAPKEY", "ENCRYPT");
    /* not SK_HTTP_IDEMPOTENT: a lost answer must not leave two objects */
    return call_for_transient_key(client, "PUT", request, body, 0,
                                  transient_key, err);
}

/* One policy array: [{"padding":{"OAEP":{}}}, ...], or [{}] for ANY. */
static json_t *padding_policy(unsigned policy)
{
    static const struct {
        unsigned bit;
        const char *tag;
    } paddings[] = {
        {SK_PADDING_POLICY_OAEP, "OAEP"},
        {SK_PADDING_POLICY_PKCS1_V15, "PKCS1_V15"},
        {SK_PADDING_POLICY_RAW_DECRYPT, "RAW_DECRYPT"},
        {SK_PADDING_POLICY_PSS, "PSS"},
    };
    json_t *entries = json_array();

    if (entries == NULL)
        return NULL;
    if (policy & SK_PADDING_POLICY_ANY) {
        if (json_array_append_new(entries, json_object()) == 0)
            return entries;
        json_decref(entries);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(paddings) / sizeof(paddings[0]); i++)
        if ((policy & paddings[i].bit) &&
            json_array_append_new(entries, json_pack("{s:{s:{}}}", "padding",
                                                     paddings[i].tag)) != 0) {
            json_decref(entries);
            return NULL;
        }
    return entries;
}

/* The optional fields of a new key: policies, description, group,
   custom metadata. 0 when out of memory or a text is not UTF-8. */
static int add_key_options(json_t *body, const sk_generate_request *req)
{
    json_t *rsa, *metadata;

    if (req->encryption_policy != 0 || req->signature_policy != 0) {
        rsa = json_object();
        if (rsa == NULL || json_object_set_new(body, "rsa", rsa) != 0)
            return 0;
        if (req->encryption_policy != 0 &&
            json_object_set_new(rsa, "encryption_policy",
                                padding_policy(req->encryption_policy)) != 0)
            return 0;
        if (req->signature_policy != 0 &&
            json_object_set_new(rsa, "signature_policy",
                                padding_policy(req->signature_policy)) != 0)
            return 0;
    }
    if (req->description != NULL &&
        json_object_set_new(body, "description",
                            json_string(req->description)) != 0)
        return 0;
    if (req->group_id != NULL &&
        json_object_set_new(body, "group_id", json_string(req->group_id)) != 0)
        return 0;
    if (req->metadata_count > 0) {
        metadata = json_object();
        if (metadata == NULL ||
            json_object_set_new(body, "custom_metadata", metadata) != 0)
            return 0;
        for (size_t i = 0; i < req->metadata_count; i++)
            if (json_object_set_new(metadata, req->metadata_names[i],
                                    json_string(req->metadata_values[i])) != 0)
                return 0;
    }
    return 1;
}

/* The size, exponent, curve and operations of a new key into body; 0
   when out of memory. */
static int add_key_shape(json_t *body, const sk_generate_request *req)
{
    json_t *ops;

    if (req->key_size > 0 &&
        json_object_set_new(body, "key_size", json_integer(req->key_size)))
        return 0;
    if (req->pub_exponent > 0 &&
        json_object_set_new(body, "pub_exponent",
                            json_integer((json_int_t)req->pub_exponent)))
        return 0;
    if (req->elliptic_curve != NULL &&
        json_object_set_new(body, "elliptic_curve",
                            json_string(req->elliptic_curve)))
        return 0;
    if (req->key_ops != NULL) {
        ops = json_array();
        if (ops == NULL || json_object_set_new(body, "key_ops", ops))
            return 0;
        for (size_t i = 0; i < req->key_ops_count; i++)
            if (json_array_append_new(ops, json_string(req->key_ops[i])))
                return 0;
    }
    return 1;
}

int sk_client_generate_key(sk_client *client, const sk_generate_request *req,
                           sk_key_info **out, sk_error *err)
{
    static const char request[] = "POST /crypto/v1/keys";
    json_t *body, *answer = NULL;
    int ok = 0;

    sk_error_clear(err);
    *out = NULL;
    if (req->name == NULL || req->name[0] == '\0' || req->obj_type == NULL ||
        !valid_alg_name(req->obj_type)) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "a new key needs a name and a key type");
        return 0;
    }
    body = json_pack("{s:s,s:s}", "name", req->name, "obj_type", req->obj_type);
    if (body == NULL) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "the key name is not valid UTF-8");
        return 0;
    }
    if (!add_key_shape(body, req)) {
        json_decref(body);
        sk_error_set(err, SK_ERR_NOMEM, request, "out of memory");
        return 0;
    }
    if (!add_key_options(body, req)) {
        json_decref(body);
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "a description or metadata text is not valid UTF-8, or "
                     "out of memory");
        return 0;
    }
    if (sk_http_json(client, "POST", "/crypto/v1/keys", request, body, 0,
                     &answer, err)) {
        *out = parse_sobject(answer, request, err);
        ok = *out != NULL;
    }
    json_decref(body);
    json_decref(answer);
    return ok;
}

/* ---- BYOK building blocks ---- */

int sk_client_generate_transient_aes(sk_client *client, unsigned bits,
                                     char **transient_key, sk_error *err)
{
    static const char request[] = "POST /crypto/v1/keys";
    json_t *body;

    sk_error_clear(err);
    *transient_key = NULL;
    if (bits != 128 && bits != 192 && bits != 256) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "an AES key is 128, 192 or 256 bits");
        return 0;
    }
    body = json_pack("{s:s,s:i,s:b,s:[s,s]}", "obj_type", "AES", "key_size",
                     (int)bits, "transient", 1, "key_ops", "WRAPKEY", "EXPORT");
    /* not SK_HTTP_IDEMPOTENT: it creates an object */
    return call_for_transient_key(client, "POST", request, body, bits,
                                  transient_key, err);
}

void sk_wrapkey_result_clear(sk_wrapkey_result *result)
{
    if (result == NULL)
        return;
    OPENSSL_free(result->wrapped);
    OPENSSL_free(result->tag);
    memset(result, 0, sizeof(*result));
}

/* An IV the answer states must be the one sent: GCM output under another
   IV does not open with the IV the artifact carries. */
static int answer_iv_is(json_t *answer, const unsigned char *iv, size_t iv_len,
                        const char *request, sk_error *err)
{
    unsigned char *stated = NULL;
    size_t stated_len = 0;
    int found, same;

    if (iv == NULL)
        return 1;
    found = sk_json_base64(answer, "iv", &stated, &stated_len, request, err);
    if (found <= 0)
        return found == 0;
    same = stated_len == iv_len && CRYPTO_memcmp(stated, iv, iv_len) == 0;
    OPENSSL_free(stated);
    if (!same)
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "the answer states a %zu-byte IV other than the %zu-byte "
                     "IV sent",
                     stated_len, iv_len);
    return same;
}

int sk_client_wrapkey_ex(sk_client *client, const sk_wrapkey_ex_request *req,
                         sk_wrapkey_result *out, sk_error *err)
{
    static const char request[] = "POST /crypto/v1/wrapkey";
    sk_request_body body;
    json_t *answer = NULL;
    int ok = 0;

    sk_error_clear(err);
    memset(out, 0, sizeof(*out));
    if (!sk_wrapkey_body(req, &body, err))
        return 0;
    if (sk_approval_text_call(client, "POST", "/crypto/v1/wrapkey", request,
                              body.text, body.len, body.session_only,
                              SK_HTTP_IDEMPOTENT, req->approval, &answer,
                              err)) {
        if (!json_is_object(answer))
            sk_error_set(err, SK_ERR_PROTOCOL, request,
                         "the answer is not a JSON object");
        else if (sk_json_need_base64(answer, "wrapped_key", &out->wrapped,
                                     &out->wrapped_len, request, err))
            ok = (req->tag_len_bits == 0 ||
                  sk_json_need_base64(answer, "tag", &out->tag, &out->tag_len,
                                      request, err)) &&
                 answer_iv_is(answer, req->iv, req->iv_len, request, err);
    }
    sk_request_body_clear(&body);
    json_decref(answer);
    if (!ok)
        sk_wrapkey_result_clear(out);
    return ok;
}

int sk_client_key_digest(sk_client *client, const sk_key_ref *key,
                         const char *alg, sk_approval *approval,
                         unsigned char **digest, size_t *digest_len,
                         sk_error *err)
{
    static const char request[] = "POST /crypto/v1/keys/digest";
    sk_request_body body;
    sk_json_text t = {0};

    sk_error_clear(err);
    *digest = NULL;
    if (!valid_alg_name(alg)) {
        sk_error_set(err, SK_ERR_BAD_REQUEST, request,
                     "a digest algorithm is required");
        return 0;
    }
    if (!begin_body(&body, &t, key, NULL, request, err))
        return 0;
    sk_json_text_raw(&t, "\"alg\":");
    sk_json_text_string(&t, alg);
    if (!end_body(&body, &t, request, err))
        return 0;
    return call_for_bytes(client, "/crypto/v1/keys/digest", request, &body,
                          approval, "digest", digest, digest_len, err);
}

/* ---- the decoders alone: fuzzing and unit tests feed them a body ---- */

static json_t *load_body(const char *body, size_t len, const char *request,
                         sk_error *err)
{
    /* the same flags as sk_http_json */
    json_t *json = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);

    if (json == NULL)
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "invalid JSON in the response");
    return json;
}

int sk_decode_key_info(const char *body, size_t len, sk_key_info **out,
                       sk_error *err)
{
    json_t *json;

    sk_error_clear(err);
    *out = NULL;
    json = load_body(body, len, info_request, err);
    if (json == NULL)
        return 0;
    *out = parse_sobject(json, info_request, err);
    json_decref(json);
    return *out != NULL;
}

int sk_decode_key_list(const char *body, size_t len, sk_key_info ***out,
                       size_t *count, sk_error *err)
{
    sk_key_info **list = NULL;
    size_t n = 0, cap = 0;
    json_t *json;
    int ok;

    sk_error_clear(err);
    *out = NULL;
    *count = 0;
    json = load_body(body, len, list_request, err);
    if (json == NULL)
        return 0;
    ok = append_page(json, &list, &n, &cap, err);
    json_decref(json);
    if (!ok) {
        sk_key_info_list_free(list, n);
        return 0;
    }
    *out = list;
    *count = n;
    return 1;
}

int sk_decode_bytes(const char *body, size_t len, const char *field,
                    unsigned char **out, size_t *out_len, sk_error *err)
{
    static const char request[] = "POST /crypto/v1/sign";
    json_t *json;
    int ok = 0;

    sk_error_clear(err);
    *out = NULL;
    json = load_body(body, len, request, err);
    if (json == NULL)
        return 0;
    if (!json_is_object(json))
        sk_error_set(err, SK_ERR_PROTOCOL, request,
                     "the answer is not a JSON object");
    else
        ok = sk_json_need_base64(json, field, out, out_len, request, err);
    json_decref(json);
    return ok;
}
