/*
 * /crypto/v1/keys*: generate, import, info, list, get, export, patch,
 * delete and digest of security objects.
 *
 * Material comes from crypto.c (em_key_*); the table and the JSON view from
 * store.c. Objects are never modified in place: PATCH publishes a copy.
 */
#include "emulator.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define NAME_MAX_LEN 4096

static const char *const states[] = {"PreActive",   "Active",    "Deactivated",
                                     "Compromised", "Destroyed", "Deleted"};

/* Request fields kept as they were sent and echoed in the Sobject. */
static const char *const extra_fields[] = {
    "description", "custom_metadata", "group_id", "deterministic_signatures",
    "publish_public_key"};

/* Ops a generated or imported key gets without "key_ops": every op valid
   for the type except EXPORT (SmartKey's documented default). */
unsigned em_default_key_ops(const char *obj_type)
{
    if (strcmp(obj_type, "RSA") == 0)
        return EM_OP_SIGN | EM_OP_VERIFY | EM_OP_ENCRYPT | EM_OP_DECRYPT |
               EM_OP_WRAPKEY | EM_OP_UNWRAPKEY | EM_OP_APPMANAGEABLE;
    if (strcmp(obj_type, "EC") == 0)
        return EM_OP_SIGN | EM_OP_VERIFY | EM_OP_AGREEKEY | EM_OP_APPMANAGEABLE;
    if (strcmp(obj_type, "AES") == 0)
        return EM_OP_ENCRYPT | EM_OP_DECRYPT | EM_OP_WRAPKEY | EM_OP_UNWRAPKEY |
               EM_OP_DERIVEKEY | EM_OP_MACGENERATE | EM_OP_MACVERIFY |
               EM_OP_APPMANAGEABLE;
    /* the public-key operations of the certified key */
    if (strcmp(obj_type, "CERTIFICATE") == 0)
        return EM_OP_VERIFY | EM_OP_ENCRYPT | EM_OP_WRAPKEY |
               EM_OP_APPMANAGEABLE;
    if (strcmp(obj_type, "HMAC") == 0)
        return EM_OP_MACGENERATE | EM_OP_MACVERIFY | EM_OP_DERIVEKEY |
               EM_OP_APPMANAGEABLE;
    return EM_OP_DERIVEKEY | EM_OP_APPMANAGEABLE;
}

static int valid_name(const char *name)
{
    size_t len = strlen(name), i;

    if (len == 0 || len > NAME_MAX_LEN || strchr(name, '\n') != NULL)
        return 0;
    for (i = 0; i < len; i++)
        if (name[i] != ' ' && name[i] != '\t' && name[i] != '\r')
            return 1;
    return 0;
}

/* A field that is absent or null (the 2022 Rust client sends null). */
static json_t *field(json_t *body, const char *name)
{
    json_t *v = json_object_get(body, name);

    return json_is_null(v) ? NULL : v;
}

/* The Sobject view for this request (show_pub_key=false drops pub_key). */
static json_t *view(const em_request *req, const em_obj *obj, int with_value)
{
    json_t *j = em_obj_to_json(obj, with_value);
    const char *show_pub_key = em_query(req, "show_pub_key");

    if (show_pub_key != NULL && strcmp(show_pub_key, "false") == 0)
        json_object_del(j, "pub_key");
    return j;
}

static int can_show_value(const em_request *req, const em_obj *obj)
{
    /* show_value only hands out what /keys/export would */
    return em_query_true(req, "show_value") && (obj->key_ops & EM_OP_EXPORT) &&
           (!obj->public_only || em_is_certificate(obj));
}

/* A value shown: key material is counted as an export, a certificate (public
   data) is not. */
static void count_value(const em_obj *obj)
{
    if (!em_is_certificate(obj))
        em_count_export();
}

/*
 * description is a string, custom_metadata a map of strings to strings
 * (docs/smartkey-api.md §3.1), group_id a group the app can use: the
 * default group or one made with POST /sys/v1/groups; any other id is a
 * group it cannot use (404, as for an unknown group).
 */
static int valid_extra_fields(json_t *body, em_response *resp)
{
    json_t *v = field(body, "description"), *value;
    const char *key;

    if (v != NULL && !json_is_string(v))
        return em_error(resp, 400, "description must be a string");
    v = field(body, "custom_metadata");
    if (v != NULL) {
        if (!json_is_object(v))
            return em_error(resp, 400,
                            "custom_metadata must be an object of strings");
        json_object_foreach(v, key, value)
        {
            if (key[0] == '\0' || !json_is_string(value))
                return em_error(resp, 400,
                                "custom_metadata: '%.64s' must be a non-empty "
                                "name with a string value",
                                key);
        }
    }
    v = field(body, "group_id");
    if (v != NULL) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != 36)
            return em_error(resp, 400, "group_id must be a group's UUID");
        if (!em_group_exists(json_string_value(v)))
            return em_error(resp, 404, "Group not found: %.64s",
                            json_string_value(v));
    }
    return 1;
}

/* Type, size and curve of a new object, and the default key_ops of its type. */
static int apply_creation_fields(em_obj *obj, json_t *body, em_response *resp)
{
    json_t *v = field(body, "obj_type");

    if (!json_is_string(v) ||
        strlen(json_string_value(v)) >= sizeof(obj->obj_type))
        return em_error(resp, 400, "obj_type is required");
    strcpy(obj->obj_type, json_string_value(v));
    v = field(body, "key_size");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
            json_integer_value(v) > 65536)
            return em_error(resp, 400, "Invalid key_size");
        obj->key_size = (unsigned)json_integer_value(v);
    }
    v = field(body, "elliptic_curve");
    if (v != NULL) {
        if (!json_is_string(v) ||
            strlen(json_string_value(v)) >= sizeof(obj->curve))
            return em_error(resp, 400, "Invalid elliptic_curve");
        strcpy(obj->curve, json_string_value(v));
    }
    obj->key_ops = em_default_key_ops(obj->obj_type);
    /* an Ed25519 key signs; agreement takes X25519 keys */
    if (em_key_is_ed25519(obj))
        obj->key_ops &= ~EM_OP_AGREEKEY;
    return 1;
}

/* Sets the state named by v, one of `states` (anything else is a 400). */
static int apply_state(em_obj *obj, json_t *v, em_response *resp)
{
    size_t i;

    for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (json_is_string(v) && strcmp(json_string_value(v), states[i]) == 0)
            break;
    if (i == sizeof(states) / sizeof(states[0]))
        return em_error(resp, 400, "Invalid state");
    strcpy(obj->state, states[i]);
    return 1;
}

/* Checks the extra fields and keeps those sent (null clears one) in
   obj->extra. */
static int apply_extra_fields(em_obj *obj, json_t *body, em_response *resp)
{
    size_t i;

    if (!valid_extra_fields(body, resp))
        return 0;
    for (i = 0; i < sizeof(extra_fields) / sizeof(extra_fields[0]); i++) {
        json_t *present = json_object_get(body, extra_fields[i]);

        if (present == NULL)
            continue;
        if (obj->extra == NULL)
            obj->extra = json_object();
        /* on PATCH an explicit null clears the field */
        if (json_is_null(present))
            json_object_del(obj->extra, extra_fields[i]);
        else
            json_object_set(obj->extra, extra_fields[i], present);
    }
    return 1;
}

/* The "rsa" options: RSA objects only; a new RSA key gets the default
   policies, the policies sent replace the old ones whole. */
static int apply_rsa_options(em_obj *obj, json_t *body, int creating,
                             em_response *resp)
{
    json_t *v = field(body, "rsa");
    json_t *enc, *sig;

    if (v == NULL && !(creating && strcmp(obj->obj_type, "RSA") == 0))
        return 1;
    enc = v ? field(v, "encryption_policy") : NULL;
    sig = v ? field(v, "signature_policy") : NULL;
    if (strcmp(obj->obj_type, "RSA") != 0)
        return em_error(resp, 400, "rsa options on a %s object", obj->obj_type);
    if ((v != NULL && !json_is_object(v)) ||
        (enc != NULL && !json_is_array(enc)) ||
        (sig != NULL && !json_is_array(sig)))
        return em_error(resp, 400,
                        "rsa: encryption_policy and signature_policy "
                        "must be arrays");
    if (obj->rsa == NULL)
        obj->rsa = json_pack("{s:[{s:{s:{}}}], s:[{}]}", "encryption_policy",
                             "padding", "OAEP", "signature_policy");
    /* nested objects are replaced whole, as SmartKey does on PATCH */
    if (enc != NULL)
        json_object_set(obj->rsa, "encryption_policy", enc);
    if (sig != NULL)
        json_object_set(obj->rsa, "signature_policy", sig);
    return 1;
}

/*
 * Applies the fields shared by generate, import and patch. `creating`
 * selects the creation rules (obj_type required, defaults applied).
 */
static int apply_fields(em_obj *obj, json_t *body, int creating,
                        em_response *resp)
{
    json_t *v;

    if (creating && !apply_creation_fields(obj, body, resp))
        return 0;
    v = field(body, "name");
    if (v != NULL) {
        if (!json_is_string(v) || !valid_name(json_string_value(v)))
            return em_error(resp, 400,
                            "Invalid name: 1 to 4096 characters, no newline, "
                            "not only whitespace");
        free(obj->name);
        obj->name = strdup(json_string_value(v));
    }
    v = field(body, "key_ops");
    if (v != NULL && !em_key_ops_from_json(v, &obj->key_ops))
        return em_error(resp, 400, "Invalid key_ops");
    v = field(body, "enabled");
    if (v != NULL) {
        if (!json_is_boolean(v))
            return em_error(resp, 400, "enabled must be a boolean");
        obj->enabled = json_is_true(v);
    }
    v = field(body, "state");
    if (v != NULL && !apply_state(obj, v, resp))
        return 0;
    if (!apply_extra_fields(obj, body, resp))
        return 0;
    return apply_rsa_options(obj, body, creating, resp);
}

/* Import: the key material in "value"; a public key loses the private
   ops it was not explicitly given. */
static int import_value(em_obj *obj, json_t *body, em_response *resp)
{
    size_t len = 0;
    unsigned char *value = em_json_b64(body, "value", 1, &len, resp);
    char err[256] = "";

    if (value == NULL)
        return 0;
    if (!em_key_import(obj, value, len, err, sizeof(err))) {
        OPENSSL_clear_free(value, len);
        return em_error(resp, 400, "Invalid key value: %s", err);
    }
    OPENSSL_clear_free(value, len);
    obj->external = 1;
    /* a public key cannot sign, decrypt or unwrap: leave those out of
       the defaults rather than refuse them on every call */
    if (obj->public_only && field(body, "key_ops") == NULL)
        obj->key_ops &=
            ~(unsigned)(EM_OP_SIGN | EM_OP_DECRYPT | EM_OP_UNWRAPKEY);
    return 1;
}

/* Generate: new key material of obj's type (pub_exponent for RSA). */
static int generate_value(em_obj *obj, json_t *body, em_response *resp)
{
    unsigned long pub_exponent = 65537;
    char err[256] = "";
    json_t *v;

    if (strcmp(obj->obj_type, "SECRET") == 0 ||
        strcmp(obj->obj_type, "OPAQUE") == 0 || em_is_certificate(obj))
        return em_error(resp, 400,
                        "%s objects cannot be generated; import them with PUT "
                        "/crypto/v1/keys",
                        obj->obj_type);
    v = field(body, "pub_exponent");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 3 ||
            json_integer_value(v) > 0xffffffffLL)
            return em_error(resp, 400, "Invalid pub_exponent");
        pub_exponent = (unsigned long)json_integer_value(v);
    }
    if (!em_key_generate(obj, pub_exponent, err, sizeof(err)))
        return em_error(resp, 400, "%s", err);
    return 1;
}

/* Shared by generate (value == 0) and import (value == 1). */
static int create_key(em_request *req, em_response *resp, int import)
{
    json_t *body = req->json, *v;
    em_obj *obj;
    int transient;

    if (!json_is_object(body))
        return em_error(resp, 400, "Expected a JSON object");
    v = field(body, "transient");
    if (v != NULL && !json_is_boolean(v))
        return em_error(resp, 400, "transient must be a boolean");
    transient = json_is_true(v);
    obj = em_obj_new();
    if (obj == NULL)
        return em_error(resp, 500, "Out of memory");
    if (!apply_fields(obj, body, 1, resp))
        goto fail;
    if (!transient && obj->name == NULL) {
        em_error(resp, 400, "name is required");
        goto fail;
    }
    if (import ? !import_value(obj, body, resp)
               : !generate_value(obj, body, resp))
        goto fail;
    em_obj_ref(obj); /* kept for the answer: em_store_add takes one */
    if (!em_store_add(req, obj, transient, resp)) {
        em_obj_release(obj);
        return 0;
    }
    em_json(resp, 201, view(req, obj, 0));
    em_obj_release(obj);
    return 1;
fail:
    em_obj_release(obj);
    return 0;
}

int em_h_keys_generate(em_request *req, em_response *resp)
{
    return create_key(req, resp, 0);
}

int em_h_keys_import(em_request *req, em_response *resp)
{
    /* 201 like generate: the status SmartKey uses for a new object */
    return create_key(req, resp, 1);
}

/* Answers obj's view, with its value when the caller may see it (counted);
   releases obj. */
static int answer_view(em_request *req, em_obj *obj, em_response *resp)
{
    int with_value = can_show_value(req, obj);

    if (with_value)
        count_value(obj);
    em_json(resp, 200, view(req, obj, with_value));
    em_obj_release(obj);
    return 1;
}

int em_h_keys_info(em_request *req, em_response *resp)
{
    em_obj *obj = em_resolve(req, req->json, "key", resp);

    if (obj == NULL)
        return 0;
    return answer_view(req, obj, resp);
}

int em_h_key_get(em_request *req, const char *kid, em_response *resp)
{
    em_obj *obj = em_store_get(kid);

    if (obj == NULL)
        return em_error(resp, 404, "Security object not found: kid '%s'", kid);
    return answer_view(req, obj, resp);
}

/* ---------------------------------------------------------------------- */
/* list                                                                     */

typedef struct listing {
    const char *name;
    const char *obj_type;
    const char *group_id;
    em_obj **objs;
    size_t count, cap;
    size_t total;
} listing;

static int collect(em_obj *obj, void *arg)
{
    listing *l = arg;
    const char *group = em_json_str(obj->extra, "group_id");

    l->total++;
    if (l->name != NULL && (obj->name == NULL || strcmp(obj->name, l->name)))
        return 1;
    if (l->obj_type != NULL && strcmp(obj->obj_type, l->obj_type) != 0)
        return 1;
    if (l->group_id != NULL) {
        /* objects without an explicit group are in the app's default group,
           whose id only the JSON view knows */
        json_t *j = group == NULL ? em_obj_to_json(obj, 0) : NULL;
        int other = strcmp(group ? group : em_json_str(j, "group_id"),
                           l->group_id) != 0;

        json_decref(j);
        if (other)
            return 1;
    }
    if (l->count == l->cap) {
        em_obj **grown;

        l->cap = l->cap ? l->cap * 2 : 64;
        grown = realloc(l->objs, l->cap * sizeof(*grown));
        if (grown == NULL)
            return 0;
        l->objs = grown;
    }
    em_obj_ref(obj);
    l->objs[l->count++] = obj;
    return 1;
}

static int sort_descending;

static int by_name(const void *a, const void *b)
{
    const em_obj *x = *(em_obj *const *)a, *y = *(em_obj *const *)b;
    int c = strcmp(x->name ? x->name : "", y->name ? y->name : "");

    return sort_descending ? -c : c;
}

static int by_kid(const void *a, const void *b)
{
    const em_obj *x = *(em_obj *const *)a, *y = *(em_obj *const *)b;
    int c = strcmp(x->kid, y->kid);

    return sort_descending ? -c : c;
}

static int query_number(const em_request *req, const char *name,
                        unsigned long dflt, unsigned long *out)
{
    const char *text = em_query(req, name);
    char *end;

    *out = dflt;
    if (text == NULL)
        return 1;
    *out = strtoul(text, &end, 10);
    return *end == '\0' && end != text && text[0] != '-';
}

/* Sorts the listing by `sort` (kid or name, asc or desc); an unknown order
   releases the listing and answers 400. */
static int sort_listing(listing *l, const char *sort, em_response *resp)
{
    static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;
    int (*cmp)(const void *, const void *) = NULL;
    size_t i;

    if (strcmp(sort, "name:asc") == 0 || strcmp(sort, "name:desc") == 0)
        cmp = by_name;
    else if (strcmp(sort, "kid:asc") == 0 || strcmp(sort, "kid:desc") == 0)
        cmp = by_kid;
    if (cmp == NULL) {
        for (i = 0; i < l->count; i++)
            em_obj_release(l->objs[i]);
        free(l->objs);
        return em_error(resp, 400,
                        "sort must be kid:asc, kid:desc, name:asc or "
                        "name:desc");
    }
    /* qsort has no context argument; listings are rare enough */
    pthread_mutex_lock(&sort_lock);
    sort_descending = strstr(sort, ":desc") != NULL;
    qsort(l->objs, l->count, sizeof(*l->objs), cmp);
    pthread_mutex_unlock(&sort_lock);
    return 1;
}

/* The index of the first object after `start` (a kid or name) in the
   listing sorted by `sort`. */
static size_t page_start(const listing *l, const char *sort, const char *start)
{
    int names = strncmp(sort, "name:", 5) == 0;
    int desc = strstr(sort, ":desc") != NULL;
    size_t first = 0;

    while (first < l->count) {
        const em_obj *o = l->objs[first];
        int c = strcmp(names ? (o->name ? o->name : "") : o->kid, start);

        if (desc ? c < 0 : c > 0)
            break;
        first++;
    }
    return first;
}

int em_h_keys_list(em_request *req, em_response *resp)
{
    listing l;
    unsigned long limit, offset, i;
    const char *sort = em_query(req, "sort");
    const char *start = em_query(req, "start");
    size_t first;
    json_t *items;

    memset(&l, 0, sizeof(l));
    if (!query_number(req, "limit", 1000, &limit) ||
        !query_number(req, "offset", 0, &offset))
        return em_error(resp, 400, "limit and offset must be numbers");
    if (start != NULL && sort == NULL)
        return em_error(resp, 400,
                        "start needs sort (kid:asc, kid:desc, name:asc or "
                        "name:desc): it is a position in that order");
    l.name = em_query(req, "name");
    l.obj_type = em_query(req, "obj_type");
    l.group_id = em_query(req, "group_id");
    em_store_foreach(collect, &l);
    if (sort != NULL && !sort_listing(&l, sort, resp))
        return 0;
    /* start: the page begins after this kid (or name) in the sort order */
    first = start != NULL ? page_start(&l, sort, start) : 0;
    items = json_array();
    for (i = 0; i < l.count; i++) {
        if (i >= first && i - first >= offset && i - first - offset < limit) {
            int with_value = can_show_value(req, l.objs[i]);

            if (with_value)
                count_value(l.objs[i]);
            json_array_append_new(items, view(req, l.objs[i], with_value));
        }
        em_obj_release(l.objs[i]);
    }
    free(l.objs);
    if (em_query_true(req, "with_metadata"))
        return em_json(resp, 200,
                       json_pack("{s:{s:I, s:I}, s:o}", "metadata",
                                 "total_count", (json_int_t)l.total,
                                 "filtered_count", (json_int_t)l.count, "items",
                                 items));
    return em_json(resp, 200, items);
}

/* ---------------------------------------------------------------------- */
/* export, digest                                                           */

int em_h_keys_export(em_request *req, em_response *resp)
{
    em_obj *obj = em_resolve(req, req->json, "key", resp);

    if (obj == NULL)
        return 0;
    if (!em_require_op(obj, EM_OP_EXPORT, !em_is_certificate(obj), resp)) {
        em_obj_release(obj);
        return 0;
    }
    count_value(obj);
    em_json(resp, 200, view(req, obj, 1));
    em_obj_release(obj);
    return 1;
}

static const EVP_MD *digest_of(const char *alg)
{
    static const struct {
        const char *smartkey, *openssl;
    } names[] = {{"SHA1", "SHA1"},         {"SHA224", "SHA224"},
                 {"SHA256", "SHA256"},     {"SHA384", "SHA384"},
                 {"SHA512", "SHA512"},     {"SHA3_224", "SHA3-224"},
                 {"SHA3_256", "SHA3-256"}, {"SHA3_384", "SHA3-384"},
                 {"SHA3_512", "SHA3-512"}};
    size_t i;

    for (i = 0; alg != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(alg, names[i].smartkey) == 0)
            return EVP_get_digestbyname(names[i].openssl);
    return NULL;
}

/*
 * The digest of the key's value in its export format. It reveals a function
 * of the key material, so it needs EXPORT like /keys/export (but is not
 * counted as an export: the value itself does not leave).
 */
int em_h_keys_digest(em_request *req, em_response *resp)
{
    const EVP_MD *md = digest_of(em_json_str(req->json, "alg"));
    unsigned char *value = NULL, out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    size_t len = 0;
    em_obj *obj;
    char *b64;

    if (!json_is_object(req->json))
        return em_error(resp, 400, "Expected {\"key\":..., \"alg\":...}");
    if (md == NULL)
        return em_error(resp, 400, "Unsupported or missing alg");
    obj = em_resolve(req, json_object_get(req->json, "key"), "key", resp);
    if (obj == NULL)
        return 0;
    if (!em_require_op(obj, EM_OP_EXPORT, 1, resp) ||
        !em_key_export(obj, 0, &value, &len) ||
        !EVP_Digest(value, len, out, &outlen, md, NULL)) {
        if (resp->status == 0)
            em_error(resp, 500, "Cannot compute the digest");
        if (value != NULL)
            OPENSSL_clear_free(value, len);
        em_obj_release(obj);
        return 0;
    }
    OPENSSL_clear_free(value, len);
    b64 = em_b64_encode(out, outlen);
    if (obj->kid[0] != '\0')
        em_json(resp, 200,
                json_pack("{s:s, s:s}", "kid", obj->kid, "digest", b64));
    else
        em_json(resp, 200, json_pack("{s:s}", "digest", b64));
    free(b64);
    em_obj_release(obj);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* patch, delete                                                            */

/* Managing a key needs APPMANAGEABLE but, unlike crypto, works on disabled
   or deactivated keys: that is how they get enabled again. */
static int require_manageable(const em_obj *obj, em_response *resp)
{
    if (obj->key_ops & EM_OP_APPMANAGEABLE)
        return 1;
    return em_error(resp, 403,
                    "Requested operation is not allowed: security object "
                    "'%s' does not have key operation APPMANAGEABLE",
                    obj->name ? obj->name : obj->kid);
}

int em_h_key_patch(em_request *req, const char *kid, em_response *resp)
{
    em_obj *obj = em_store_get(kid), *changed;
    int rc;

    if (obj == NULL)
        return em_error(resp, 404, "Security object not found: kid '%s'", kid);
    if (!json_is_object(req->json) || !require_manageable(obj, resp)) {
        if (resp->status == 0)
            em_error(resp, 400, "Expected a JSON object");
        em_obj_release(obj);
        return 0;
    }
    changed = em_obj_copy(obj);
    em_obj_release(obj);
    if (changed == NULL)
        return em_error(resp, 500, "Out of memory");
    if (!apply_fields(changed, req->json, 0, resp)) {
        em_obj_release(changed);
        return 0;
    }
    em_obj_ref(changed); /* kept for the answer */
    rc = em_store_replace(changed);
    if (rc == 1)
        em_json(resp, 200, view(req, changed, 0));
    else if (rc == 0)
        em_error(resp, 404, "Security object not found: kid '%s'", kid);
    else
        em_error(resp, 409, "A security object named '%s' already exists",
                 changed->name);
    em_obj_release(changed);
    return rc == 1;
}

int em_h_key_delete(em_request *req, const char *kid, em_response *resp)
{
    em_obj *obj = em_store_get(kid);

    if (obj == NULL)
        return em_error(resp, 404, "Security object not found: kid '%s'", kid);
    if (!require_manageable(obj, resp)) {
        em_obj_release(obj);
        return 0;
    }
    em_obj_release(obj);
    if (!em_store_delete(kid))
        return em_error(resp, 404, "Security object not found: kid '%s'", kid);
    resp->status = 204;
    return 1;
}
