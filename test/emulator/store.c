/*
 * The security-object table: descriptors, persistence and the JSON view of
 * objects, plus the small shared utilities (base64, time, uuid).
 *
 * Objects are immutable once published, so the table lock only guards the
 * two hash indexes; crypto work runs on counted references without it.
 */
#include "emulator.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

const char *const em_op_names[EM_OP_COUNT] = {
    "SIGN",          "VERIFY",     "ENCRYPT",     "DECRYPT",   "WRAPKEY",
    "UNWRAPKEY",     "DERIVEKEY",  "MACGENERATE", "MACVERIFY", "EXPORT",
    "APPMANAGEABLE", "HIGHVOLUME", "AGREEKEY",
};

#define BUCKETS 4096

typedef struct node {
    em_obj *obj;
    unsigned long seq; /* creation order, for listings */
    struct node *id_next;
    struct node *name_next;
} node;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
/* kid for persisted objects, transient handle for transient ones */
static node *by_id[BUCKETS];
/* persisted objects only: names are unique per account */
static node *by_name[BUCKETS];
static unsigned long next_seq;

static char app_id[37];
static char acct_id[37];
static char group_id[37];
static char *persist_path;
static pthread_mutex_t persist_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------------- */
/* small utilities                                                          */

char *em_b64_encode(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static int b64_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

unsigned char *em_b64_decode(const char *in, size_t *outlen)
{
    size_t len = strlen(in), pad = 0, i;
    unsigned char *out;
    int n;

    /* EVP_DecodeBlock skips whitespace and ignores bad padding, so the
       strict RFC 4648 shape (what SmartKey requires) is checked first. */
    if (len % 4 != 0 || len > (size_t)INT32_MAX)
        return NULL;
    if (len > 0 && in[len - 1] == '=')
        pad++;
    if (len > 1 && in[len - 2] == '=')
        pad++;
    for (i = 0; i < len - pad; i++)
        if (!b64_char((unsigned char)in[i]))
            return NULL;
    out = malloc(len / 4 * 3 + 1);
    if (out == NULL)
        return NULL;
    if (len == 0) {
        *outlen = 0;
        return out;
    }
    n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0 || (size_t)n < pad) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)n - pad;
    return out;
}

const char *em_json_str(json_t *obj, const char *field)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, field) : NULL;

    return json_is_string(v) ? json_string_value(v) : NULL;
}

unsigned char *em_json_b64(json_t *obj, const char *field, int required,
                           size_t *outlen, em_response *resp)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, field) : NULL;
    unsigned char *out;

    if (v == NULL || json_is_null(v)) {
        if (required)
            em_error(resp, 400, "Missing required field '%s'", field);
        return NULL;
    }
    if (!json_is_string(v) ||
        (out = em_b64_decode(json_string_value(v), outlen)) == NULL) {
        em_error(resp, 400, "Field '%s' is not valid base64", field);
        return NULL;
    }
    return out;
}

void em_time_now(char out[17])
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void uuid_format(const unsigned char b[16], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

void em_uuid(char out[37])
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1)
        abort();
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

/* Account and group ids stay stable across restarts without a state file
   of their own: they are derived from the app id. */
static void derived_uuid(const char *label, const char *seed, char out[37])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int mdlen = 0;

    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(ctx, label, strlen(label)) ||
        !EVP_DigestUpdate(ctx, seed, strlen(seed)) ||
        !EVP_DigestFinal_ex(ctx, md, &mdlen))
        abort();
    EVP_MD_CTX_free(ctx);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x40);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    uuid_format(md, out);
}

static unsigned long hash_str(const char *s)
{
    unsigned long h = 1469598103934665603UL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211UL;
    return h % BUCKETS;
}

/* ---------------------------------------------------------------------- */
/* key_ops                                                                  */

int em_key_ops_from_json(json_t *array, unsigned *ops)
{
    size_t i, j;
    json_t *v;

    if (!json_is_array(array))
        return 0;
    *ops = 0;
    json_array_foreach(array, i, v)
    {
        const char *s = json_string_value(v);

        if (s == NULL)
            return 0;
        for (j = 0; j < EM_OP_COUNT; j++)
            if (strcmp(s, em_op_names[j]) == 0)
                break;
        if (j == EM_OP_COUNT)
            return 0;
        *ops |= 1u << j;
    }
    return 1;
}

json_t *em_key_ops_to_json(unsigned ops)
{
    json_t *array = json_array();
    size_t j;

    for (j = 0; j < EM_OP_COUNT; j++)
        if (ops & (1u << j))
            json_array_append_new(array, json_string(em_op_names[j]));
    return array;
}

/* ---------------------------------------------------------------------- */
/* objects                                                                  */

em_obj *em_obj_new(void)
{
    em_obj *obj = calloc(1, sizeof(*obj));

    if (obj == NULL)
        return NULL;
    obj->refs = 1;
    obj->enabled = 1;
    strcpy(obj->state, "Active");
    em_time_now(obj->created_at);
    return obj;
}

em_obj *em_obj_copy(const em_obj *obj)
{
    em_obj *copy = malloc(sizeof(*copy));

    if (copy == NULL)
        return NULL;
    *copy = *obj;
    copy->refs = 1;
    copy->name = obj->name ? strdup(obj->name) : NULL;
    /* material never changes, so the copy can share the EVP_PKEY */
    if (copy->pkey != NULL)
        EVP_PKEY_up_ref(copy->pkey);
    copy->value = NULL;
    if (obj->value != NULL) {
        copy->value = malloc(obj->value_len ? obj->value_len : 1);
        if (copy->value != NULL)
            memcpy(copy->value, obj->value, obj->value_len);
    }
    copy->rsa = obj->rsa ? json_deep_copy(obj->rsa) : NULL;
    copy->extra = obj->extra ? json_deep_copy(obj->extra) : NULL;
    copy->transient_handle =
        obj->transient_handle ? strdup(obj->transient_handle) : NULL;
    return copy;
}

void em_obj_ref(em_obj *obj)
{
    __atomic_add_fetch(&obj->refs, 1, __ATOMIC_RELAXED);
}

void em_obj_release(em_obj *obj)
{
    if (obj == NULL || __atomic_sub_fetch(&obj->refs, 1, __ATOMIC_ACQ_REL))
        return;
    free(obj->name);
    EVP_PKEY_free(obj->pkey);
    if (obj->value != NULL)
        OPENSSL_clear_free(obj->value, obj->value_len);
    json_decref(obj->rsa);
    json_decref(obj->extra);
    free(obj->transient_handle);
    free(obj);
}

static const char *obj_id(const em_obj *obj)
{
    return obj->transient_handle ? obj->transient_handle : obj->kid;
}

/* What an error message calls the key: its name, else its kid. */
static const char *obj_label(const em_obj *obj)
{
    if (obj->name != NULL)
        return obj->name;
    if (obj->kid[0] != '\0')
        return obj->kid;
    return "(transient key)";
}

/* ---------------------------------------------------------------------- */
/* table (callers hold table_lock)                                          */

static node *find_id(const char *id)
{
    node *n;

    for (n = by_id[hash_str(id)]; n != NULL; n = n->id_next)
        if (strcmp(obj_id(n->obj), id) == 0)
            return n;
    return NULL;
}

static node *find_name(const char *name)
{
    node *n;

    for (n = by_name[hash_str(name)]; n != NULL; n = n->name_next)
        if (strcmp(n->obj->name, name) == 0)
            return n;
    return NULL;
}

static int has_name_index(const em_obj *obj)
{
    return obj->transient_handle == NULL && obj->name != NULL;
}

static void link_node(node *n)
{
    unsigned long h = hash_str(obj_id(n->obj));

    n->id_next = by_id[h];
    by_id[h] = n;
    if (has_name_index(n->obj)) {
        h = hash_str(n->obj->name);
        n->name_next = by_name[h];
        by_name[h] = n;
    }
}

static void unlink_node(node *n)
{
    node **p;

    for (p = &by_id[hash_str(obj_id(n->obj))]; *p != NULL; p = &(*p)->id_next)
        if (*p == n) {
            *p = n->id_next;
            break;
        }
    if (has_name_index(n->obj))
        for (p = &by_name[hash_str(n->obj->name)]; *p != NULL;
             p = &(*p)->name_next)
            if (*p == n) {
                *p = n->name_next;
                break;
            }
}

static int by_seq(const void *a, const void *b)
{
    const node *x = *(node *const *)a, *y = *(node *const *)b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Counted references to the persisted objects in creation order. */
static em_obj **snapshot(size_t *count)
{
    node **nodes = NULL, *n;
    size_t used = 0, cap = 0, i;
    em_obj **objs;

    pthread_mutex_lock(&table_lock);
    for (i = 0; i < BUCKETS; i++)
        for (n = by_id[i]; n != NULL; n = n->id_next) {
            if (n->obj->transient_handle != NULL)
                continue;
            if (used == cap) {
                node **grown;

                cap = cap ? cap * 2 : 64;
                grown = realloc(nodes, cap * sizeof(*nodes));
                if (grown == NULL)
                    abort();
                nodes = grown;
            }
            nodes[used++] = n;
        }
    if (used > 1)
        qsort(nodes, used, sizeof(*nodes), by_seq);
    objs = malloc((used ? used : 1) * sizeof(*objs));
    if (objs == NULL)
        abort();
    for (i = 0; i < used; i++) {
        objs[i] = nodes[i]->obj;
        em_obj_ref(objs[i]);
    }
    pthread_mutex_unlock(&table_lock);
    free(nodes);
    *count = used;
    return objs;
}

/* ---------------------------------------------------------------------- */
/* persistence                                                              */

static json_t *persist_record(const em_obj *obj)
{
    unsigned char *der = NULL;
    size_t len = 0;
    char *b64 = NULL;
    json_t *rec;
    int ok;

    if (obj->public_only && !em_is_certificate(obj))
        ok = em_key_public_der(obj, &der, &len);
    else
        ok = em_key_export(obj, 0, &der, &len);
    if (!ok)
        return NULL;
    b64 = em_b64_encode(der, len);
    OPENSSL_clear_free(der, len);
    rec = json_pack("{s:s, s:s, s:i, s:s, s:o, s:b, s:s, s:b, s:s, s:s}", "kid",
                    obj->kid, "obj_type", obj->obj_type, "key_size",
                    (int)obj->key_size, "elliptic_curve", obj->curve, "key_ops",
                    em_key_ops_to_json(obj->key_ops), "enabled", obj->enabled,
                    "state", obj->state, "public_only", obj->public_only,
                    "value", b64 ? b64 : "", "created_at", obj->created_at);
    free(b64);
    if (rec == NULL)
        return NULL;
    if (obj->name != NULL)
        json_object_set_new(rec, "name", json_string(obj->name));
    if (obj->rsa != NULL)
        json_object_set(rec, "rsa", obj->rsa);
    if (obj->extra != NULL)
        json_object_set(rec, "extra", obj->extra);
    if (obj->external)
        json_object_set_new(rec, "external", json_true());
    return rec;
}

/* Rewrites the whole state file (small: a demo holds a handful of keys) via
   write-to-temporary and rename, so a crash never leaves half a file. */
static void persist(void)
{
    json_t *root, *objects;
    em_obj **objs;
    size_t count, i;
    char *tmp;
    int rc, fd;

    if (persist_path == NULL)
        return;
    pthread_mutex_lock(&persist_lock);
    objs = snapshot(&count);
    objects = json_array();
    for (i = 0; i < count; i++) {
        json_t *rec = persist_record(objs[i]);

        if (rec != NULL)
            json_array_append_new(objects, rec);
        em_obj_release(objs[i]);
    }
    free(objs);
    root = json_pack("{s:i, s:o}", "version", 1, "objects", objects);
    if (asprintf(&tmp, "%s.tmp", persist_path) < 0)
        abort();
    /* created 0600 from the start: the file holds key material */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    rc = fd < 0 ? -1 : json_dumpfd(root, fd, JSON_INDENT(1));
    /* no fsync: the rename protects against a crash of the emulator, and
       surviving a power cut is not worth a disk flush per new key */
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, persist_path) != 0)
        rc = -1;
    if (rc != 0) {
        unlink(tmp);
        fprintf(stderr, "smartkey-emulator: cannot save %s: %s\n", persist_path,
                strerror(errno));
    }
    free(tmp);
    json_decref(root);
    pthread_mutex_unlock(&persist_lock);
}

/* A new object with a saved record's kid, type and key material; NULL
   with err set when the record cannot be loaded. */
static em_obj *record_key(json_t *rec, char *err, size_t errlen)
{
    const char *kid = em_json_str(rec, "kid");
    const char *type = em_json_str(rec, "obj_type");
    const char *value = em_json_str(rec, "value");
    const char *curve = em_json_str(rec, "elliptic_curve");
    unsigned char *bytes;
    size_t len = 0;
    em_obj *obj;

    if (kid == NULL || strlen(kid) != 36 || type == NULL ||
        strlen(type) >= sizeof(obj->obj_type) || value == NULL) {
        snprintf(err, errlen, "object without kid, obj_type or value");
        return NULL;
    }
    if ((bytes = em_b64_decode(value, &len)) == NULL) {
        snprintf(err, errlen, "object %s: value is not base64", kid);
        return NULL;
    }
    obj = em_obj_new();
    strcpy(obj->kid, kid);
    strcpy(obj->obj_type, type);
    if (curve != NULL && strlen(curve) < sizeof(obj->curve))
        strcpy(obj->curve, curve);
    obj->key_size =
        (unsigned)json_integer_value(json_object_get(rec, "key_size"));
    if (!em_key_import(obj, bytes, len, err, errlen)) {
        OPENSSL_clear_free(bytes, len);
        em_obj_release(obj);
        return NULL;
    }
    OPENSSL_clear_free(bytes, len);
    if (!em_key_ops_from_json(json_object_get(rec, "key_ops"), &obj->key_ops)) {
        snprintf(err, errlen, "object %s: bad key_ops", kid);
        em_obj_release(obj);
        return NULL;
    }
    return obj;
}

static int load_record(json_t *rec, char *err, size_t errlen)
{
    const char *state = em_json_str(rec, "state");
    const char *created = em_json_str(rec, "created_at");
    const char *name = em_json_str(rec, "name");
    em_obj *obj = record_key(rec, err, errlen);
    node *n;

    if (obj == NULL)
        return 0;
    obj->enabled = json_is_true(json_object_get(rec, "enabled"));
    obj->external = json_is_true(json_object_get(rec, "external"));
    if (state != NULL && strlen(state) < sizeof(obj->state))
        strcpy(obj->state, state);
    if (created != NULL && strlen(created) == 16)
        strcpy(obj->created_at, created);
    obj->name = name ? strdup(name) : NULL;
    if (json_is_object(json_object_get(rec, "rsa")))
        obj->rsa = json_incref(json_object_get(rec, "rsa"));
    if (json_is_object(json_object_get(rec, "extra")))
        obj->extra = json_incref(json_object_get(rec, "extra"));

    n = calloc(1, sizeof(*n));
    n->obj = obj;
    n->seq = next_seq++;
    if (find_id(obj->kid) != NULL ||
        (name != NULL && find_name(name) != NULL)) {
        snprintf(err, errlen, "object %s: duplicate kid or name", obj->kid);
        em_obj_release(obj);
        free(n);
        return 0;
    }
    link_node(n);
    return 1;
}

static int load_state(char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root, *objects, *rec;
    size_t i;
    int ok = 1;

    if (access(persist_path, F_OK) != 0)
        return 1;
    root = json_load_file(persist_path, 0, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "%s: %s", persist_path, jerr.text);
        return 0;
    }
    objects = json_object_get(root, "objects");
    if (!json_is_array(objects)) {
        snprintf(err, errlen, "%s: no \"objects\" array", persist_path);
        ok = 0;
    }
    json_array_foreach(ok ? objects : NULL, i, rec)
    {
        if (!load_record(rec, err, errlen)) {
            ok = 0;
            break;
        }
    }
    json_decref(root);
    return ok;
}

int em_store_init(const char *app, const char *path, char *err, size_t errlen)
{
    snprintf(app_id, sizeof(app_id), "%s", app);
    derived_uuid("acct:", app, acct_id);
    derived_uuid("group:", app, group_id);
    if (path == NULL)
        return 1;
    persist_path = strdup(path);
    return load_state(err, errlen);
}

const char *em_store_account(void)
{
    return acct_id;
}

const char *em_store_default_group(void)
{
    return group_id;
}

const char *em_obj_group(const em_obj *obj)
{
    const char *group = em_json_str(obj->extra, "group_id");

    return group != NULL ? group : group_id;
}

void em_store_shutdown(void)
{
    size_t i;
    node *n, *next;

    pthread_mutex_lock(&table_lock);
    for (i = 0; i < BUCKETS; i++) {
        for (n = by_id[i]; n != NULL; n = next) {
            next = n->id_next;
            em_obj_release(n->obj);
            free(n);
        }
        by_id[i] = NULL;
        by_name[i] = NULL;
    }
    pthread_mutex_unlock(&table_lock);
    free(persist_path);
    persist_path = NULL;
}

/* ---------------------------------------------------------------------- */
/* publishing                                                               */

int em_store_add(const em_request *req, em_obj *obj, int transient,
                 em_response *resp)
{
    node *n = calloc(1, sizeof(*n));

    if (n == NULL) {
        em_obj_release(obj);
        return em_error(resp, 500, "Out of memory");
    }
    if (transient) {
        unsigned char handle[48];

        /* The real service hands out its wrapped key blob; any opaque base64
           that cannot be guessed serves the same purpose here. */
        if (req->who.session_id[0] == '\0') {
            free(n);
            em_obj_release(obj);
            return em_error(resp, 400,
                            "Transient keys require a session: authenticate "
                            "with /sys/v1/session/auth first");
        }
        RAND_bytes(handle, sizeof(handle));
        obj->transient_handle = em_b64_encode(handle, sizeof(handle));
        snprintf(obj->session_id, sizeof(obj->session_id), "%s",
                 req->who.session_id);
        obj->kid[0] = '\0';
        /* SmartKey ignores names of transient keys */
        free(obj->name);
        obj->name = NULL;
    } else {
        em_uuid(obj->kid);
    }
    n->obj = obj;
    pthread_mutex_lock(&table_lock);
    if (has_name_index(obj) && find_name(obj->name) != NULL) {
        pthread_mutex_unlock(&table_lock);
        em_error(resp, 409, "A security object named '%s' already exists",
                 obj->name);
        em_obj_release(obj);
        free(n);
        return 0;
    }
    n->seq = next_seq++;
    link_node(n);
    pthread_mutex_unlock(&table_lock);
    if (!transient)
        persist();
    return 1;
}

int em_store_replace(em_obj *obj)
{
    node *n, *named;
    em_obj *old;

    pthread_mutex_lock(&table_lock);
    n = find_id(obj->kid);
    if (n == NULL || obj->kid[0] == '\0') {
        pthread_mutex_unlock(&table_lock);
        em_obj_release(obj);
        return 0;
    }
    named = obj->name ? find_name(obj->name) : NULL;
    if (named != NULL && named != n) {
        pthread_mutex_unlock(&table_lock);
        em_obj_release(obj);
        return -1;
    }
    unlink_node(n);
    old = n->obj;
    n->obj = obj;
    link_node(n);
    pthread_mutex_unlock(&table_lock);
    em_obj_release(old);
    persist();
    return 1;
}

int em_store_delete(const char *kid)
{
    node *n;

    pthread_mutex_lock(&table_lock);
    n = find_id(kid);
    if (n == NULL || n->obj->transient_handle != NULL) {
        pthread_mutex_unlock(&table_lock);
        return 0;
    }
    unlink_node(n);
    pthread_mutex_unlock(&table_lock);
    em_obj_release(n->obj);
    free(n);
    persist();
    return 1;
}

em_obj *em_store_get(const char *kid)
{
    em_obj *obj = NULL;
    node *n;

    pthread_mutex_lock(&table_lock);
    n = find_id(kid);
    if (n != NULL && n->obj->transient_handle == NULL) {
        obj = n->obj;
        em_obj_ref(obj);
    }
    pthread_mutex_unlock(&table_lock);
    return obj;
}

void em_store_foreach(int (*fn)(em_obj *obj, void *arg), void *arg)
{
    size_t count, i;
    em_obj **objs = snapshot(&count);
    int go_on = 1;

    for (i = 0; i < count; i++) {
        if (go_on)
            go_on = fn(objs[i], arg);
        em_obj_release(objs[i]);
    }
    free(objs);
}

void em_store_drop_session(const char *session_id)
{
    node *dropped = NULL, *n, **p;
    size_t i;

    if (session_id == NULL || session_id[0] == '\0')
        return;
    pthread_mutex_lock(&table_lock);
    for (i = 0; i < BUCKETS; i++)
        for (p = &by_id[i]; *p != NULL;) {
            n = *p;
            if (n->obj->transient_handle != NULL &&
                strcmp(n->obj->session_id, session_id) == 0) {
                *p = n->id_next;
                n->id_next = dropped;
                dropped = n;
            } else {
                p = &n->id_next;
            }
        }
    pthread_mutex_unlock(&table_lock);
    for (n = dropped; n != NULL; n = dropped) {
        dropped = n->id_next;
        em_obj_release(n->obj);
        free(n);
    }
}

/* ---------------------------------------------------------------------- */
/* descriptors and permissions                                              */

static em_obj *resolve_inline(json_t *spec, const char *what, em_response *resp)
{
    const char *type = em_json_str(spec, "obj_type");
    unsigned char *value;
    size_t len = 0;
    char err[256] = "";
    em_obj *obj;

    if (type == NULL || strlen(type) >= sizeof(obj->obj_type)) {
        em_error(resp, 400, "Inline %s needs obj_type and value", what);
        return NULL;
    }
    value = em_json_b64(spec, "value", 1, &len, resp);
    if (value == NULL)
        return NULL;
    obj = em_obj_new();
    strcpy(obj->obj_type, type);
    /* an inline key is supplied by the caller for this one call, so every
       operation the type supports is allowed */
    obj->key_ops = ~0u & ~(unsigned)EM_OP_APPMANAGEABLE;
    if (!em_key_import(obj, value, len, err, sizeof(err))) {
        em_error(resp, 400, "Invalid inline %s: %s", what, err);
        em_obj_release(obj);
        obj = NULL;
    }
    OPENSSL_clear_free(value, len);
    return obj;
}

/* The ways a key descriptor names a key, in the order em_resolve numbers
   them. */
static const char *const variants[] = {"kid", "name", "transient_key",
                                       "inline"};

/* The index in `variants` of the one variant the descriptor sets (its value
   in *chosen); -1 with a 400 unless exactly one is set. */
static int descriptor_variant(json_t *descriptor, const char *what,
                              json_t **chosen, em_response *resp)
{
    int found = 0, which = -1, i;

    for (i = 0; i < 4; i++) {
        json_t *v = json_object_get(descriptor, variants[i]);

        if (v != NULL && !json_is_null(v)) {
            found++;
            which = i;
            *chosen = v;
        }
    }
    if (found != 1) {
        em_error(resp, 400,
                 "Invalid descriptor '%s': exactly one of kid, name, "
                 "transient_key or inline is required",
                 what);
        return -1;
    }
    return which;
}

/* A reference to the stored object named `id` (a name when which == 1):
   a transient key of the caller's session for which == 2, else a persistent
   object; NULL when there is none. */
static em_obj *find_stored(const em_request *req, int which, const char *id)
{
    em_obj *obj = NULL;
    node *n;

    pthread_mutex_lock(&table_lock);
    if (which == 1)
        n = find_name(id);
    else
        n = find_id(id);
    if (n != NULL) {
        em_obj *found_obj = n->obj;
        int transient = found_obj->transient_handle != NULL;

        if (which == 2 ? transient && strcmp(found_obj->session_id,
                                             req->who.session_id) == 0
                       : !transient) {
            obj = found_obj;
            em_obj_ref(obj);
        }
    }
    pthread_mutex_unlock(&table_lock);
    return obj;
}

em_obj *em_resolve(const em_request *req, json_t *descriptor, const char *what,
                   em_response *resp)
{
    json_t *chosen = NULL;
    int which;
    em_obj *obj;

    if (!json_is_object(descriptor)) {
        em_error(resp, 400, "Missing or invalid key descriptor '%s'", what);
        return NULL;
    }
    which = descriptor_variant(descriptor, what, &chosen, resp);
    if (which < 0)
        return NULL;
    if (which == 3)
        return resolve_inline(chosen, what, resp);
    if (!json_is_string(chosen)) {
        em_error(resp, 400, "Invalid descriptor '%s': %s must be a string",
                 what, variants[which]);
        return NULL;
    }
    if (which == 2 && req->who.session_id[0] == '\0') {
        em_error(resp, 400,
                 "Transient keys can only be used within the session that "
                 "created them");
        return NULL;
    }
    obj = find_stored(req, which, json_string_value(chosen));
    if (obj == NULL) {
        if (which == 2)
            em_error(resp, 404, "Transient key not found in this session");
        else
            em_error(resp, 404, "Security object not found: %s '%s'",
                     variants[which], json_string_value(chosen));
    }
    return obj;
}

static const char *op_name(unsigned op)
{
    size_t j;

    for (j = 0; j < EM_OP_COUNT; j++)
        if (op == 1u << j)
            return em_op_names[j];
    return "?";
}

int em_require_op(const em_obj *obj, unsigned op, int needs_private,
                  em_response *resp)
{
    /* Every refusal carries "Requested operation is not allowed": clients
       (ours included) re-authenticate on a 403 without it, which would only
       repeat a refusal that no new token can change. */
    if (!obj->enabled)
        em_error(resp, 403,
                 "Requested operation is not allowed: security object '%s' "
                 "is disabled (%s)",
                 obj_label(obj), op_name(op));
    else if (strcmp(obj->state, "Active") != 0)
        em_error(resp, 403,
                 "Requested operation is not allowed: security object '%s' "
                 "is %s, not Active (%s)",
                 obj_label(obj), obj->state, op_name(op));
    else if (!(obj->key_ops & op))
        em_error(resp, 403,
                 "Requested operation is not allowed: security object '%s' "
                 "does not have key operation %s",
                 obj_label(obj), op_name(op));
    else if (needs_private && obj->public_only)
        em_error(resp, 403,
                 "Requested operation is not allowed: security object '%s' "
                 "is public only (%s)",
                 obj_label(obj), op_name(op));
    else
        return 1;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* JSON view                                                                */

static int is_asymmetric(const em_obj *obj)
{
    return obj->pkey != NULL;
}

static json_t *rsa_view(const em_obj *obj)
{
    json_t *rsa = obj->rsa ? json_deep_copy(obj->rsa) : json_object();
    BIGNUM *e = NULL;

    json_object_set_new(rsa, "key_size", json_integer(obj->key_size));
    if (obj->pkey != NULL &&
        EVP_PKEY_get_bn_param(obj->pkey, OSSL_PKEY_PARAM_RSA_E, &e) &&
        BN_num_bits(e) <= 32)
        json_object_set_new(rsa, "public_exponent",
                            json_integer((json_int_t)BN_get_word(e)));
    BN_free(e);
    if (json_object_get(rsa, "encryption_policy") == NULL)
        json_object_set_new(rsa, "encryption_policy", json_array());
    if (json_object_get(rsa, "signature_policy") == NULL)
        json_object_set_new(rsa, "signature_policy", json_array());
    return rsa;
}

json_t *em_obj_to_json(const em_obj *obj, int with_value)
{
    json_t *j = json_object();
    const char *group = em_json_str(obj->extra, "group_id");

    if (obj->extra != NULL)
        json_object_update(j, obj->extra);
    if (obj->kid[0] != '\0')
        json_object_set_new(j, "kid", json_string(obj->kid));
    if (obj->name != NULL)
        json_object_set_new(j, "name", json_string(obj->name));
    json_object_set_new(j, "obj_type", json_string(obj->obj_type));
    if (obj->key_size)
        json_object_set_new(j, "key_size", json_integer(obj->key_size));
    if (obj->curve[0] != '\0')
        json_object_set_new(j, "elliptic_curve", json_string(obj->curve));
    if (is_asymmetric(obj)) {
        unsigned char *der = NULL;
        size_t len = 0;

        if (em_key_public_der(obj, &der, &len)) {
            char *b64 = em_b64_encode(der, len);

            json_object_set_new(j, "pub_key", json_string(b64));
            free(b64);
            free(der);
        }
    }
    json_object_set_new(j, "key_ops", em_key_ops_to_json(obj->key_ops));
    json_object_set_new(j, "enabled", json_boolean(obj->enabled));
    json_object_set_new(j, "state", json_string(obj->state));
    /* ObjectOrigin: where the object was made (docs/smartkey-api.md §3.1) */
    json_object_set_new(j, "origin",
                        json_string(obj->transient_handle ? "Transient"
                                    : obj->external       ? "External"
                                                          : "FortanixHSM"));
    json_object_set_new(j, "public_only", json_boolean(obj->public_only));
    json_object_set_new(j, "acct_id", json_string(acct_id));
    json_object_set_new(j, "group_id", json_string(group ? group : group_id));
    json_object_set_new(j, "creator", json_pack("{s:s}", "app", app_id));
    json_object_set_new(j, "created_at", json_string(obj->created_at));
    json_object_set_new(j, "activation_date", json_string(obj->created_at));
    if (strcmp(obj->obj_type, "RSA") == 0)
        json_object_set_new(j, "rsa", rsa_view(obj));
    if (obj->transient_handle != NULL)
        json_object_set_new(j, "transient_key",
                            json_string(obj->transient_handle));
    if (with_value && (!obj->public_only || em_is_certificate(obj))) {
        unsigned char *value = NULL;
        size_t len = 0;

        if (em_key_export(obj, 0, &value, &len)) {
            char *b64 = em_b64_encode(value, len);

            json_object_set_new(j, "value", json_string(b64));
            OPENSSL_clear_free(b64, strlen(b64));
            OPENSSL_clear_free(value, len);
        }
    }
    return j;
}
