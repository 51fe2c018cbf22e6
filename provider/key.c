#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/objects.h>

#include "key.h"

/*
 * Decoding our own pub_key must never pick this provider's keymgmt (it has
 * no import, and the lookup would recurse into us); any other provider of
 * the application's libctx will do.
 */
#define DECODE_PROPQ "provider!=" SMARTKEY_PROVIDER_NAME

typedef struct cache_entry {
    sk_key *key;
    double expires; /* CLOCK_MONOTONIC seconds */
    struct cache_entry *next;
} cache_entry;

struct sk_key_cache {
    pthread_mutex_t lock;
    cache_entry *entries;
};

sk_key *sk_key_up_ref(sk_key *key)
{
    if (key != NULL)
        atomic_fetch_add(&key->refs, 1);
    return key;
}

void sk_key_free(sk_key *key)
{
    if (key == NULL || atomic_fetch_sub(&key->refs, 1) != 1)
        return;
    EVP_PKEY_free(key->public_key);
    BN_free(key->ec_order);
    OPENSSL_free(key->name);
    OPENSSL_free(key);
}

/* The curve's group order of an EC public key (BN_free it); NULL when the
   key has no usable group. */
static BIGNUM *ec_group_order(OSSL_LIB_CTX *libctx, const EVP_PKEY *public_key)
{
    char group_name[64];
    EC_GROUP *group;
    BIGNUM *order = NULL;

    if (!EVP_PKEY_get_utf8_string_param(public_key, OSSL_PKEY_PARAM_GROUP_NAME,
                                        group_name, sizeof(group_name), NULL))
        return NULL;
    group =
        EC_GROUP_new_by_curve_name_ex(libctx, NULL, OBJ_txt2nid(group_name));
    if (group != NULL)
        order = BN_dup(EC_GROUP_get0_order(group));
    EC_GROUP_free(group);
    return order;
}

void sk_key_ref_describe(const sk_key_ref *ref, char *buf, size_t len)
{
    if (ref->kid != NULL)
        snprintf(buf, len, "key %s", ref->kid);
    else
        snprintf(buf, len, "key '%.200s'", ref->name != NULL ? ref->name : "");
}

sk_key_cache *sk_key_cache_new(void)
{
    sk_key_cache *cache = OPENSSL_zalloc(sizeof(*cache));

    if (cache != NULL)
        pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

void sk_key_cache_free(sk_key_cache *cache)
{
    cache_entry *entry, *next;

    if (cache == NULL)
        return;
    for (entry = cache->entries; entry != NULL; entry = next) {
        next = entry->next;
        sk_key_free(entry->key);
        OPENSSL_free(entry);
    }
    pthread_mutex_destroy(&cache->lock);
    OPENSSL_free(cache);
}

void sk_key_cache_lock(sk_key_cache *cache)
{
    if (cache != NULL)
        pthread_mutex_lock(&cache->lock);
}

void sk_key_cache_unlock(sk_key_cache *cache)
{
    if (cache != NULL)
        pthread_mutex_unlock(&cache->lock);
}

static int entry_matches(const cache_entry *entry, const sk_key_ref *ref)
{
    if (ref->kid != NULL)
        return strcmp(entry->key->kid, ref->kid) == 0;
    return ref->name != NULL && entry->key->name != NULL &&
           strcmp(entry->key->name, ref->name) == 0;
}

static sk_key *cache_lookup(sk_key_cache *cache, const sk_key_ref *ref)
{
    cache_entry **link, *entry;
    sk_key *found = NULL;
    double now = sk_now_seconds();

    pthread_mutex_lock(&cache->lock);
    for (link = &cache->entries; (entry = *link) != NULL;) {
        if (entry->expires <= now) {
            *link = entry->next;
            sk_key_free(entry->key);
            OPENSSL_free(entry);
            continue;
        }
        if (found == NULL && entry_matches(entry, ref))
            found = sk_key_up_ref(entry->key);
        link = &entry->next;
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

/* Removes the entry of kid, if any; the cache's lock is held. */
static void drop_locked(sk_key_cache *cache, const char *kid)
{
    cache_entry **link, *entry;

    for (link = &cache->entries; (entry = *link) != NULL;) {
        if (strcmp(entry->key->kid, kid) == 0) {
            *link = entry->next;
            sk_key_free(entry->key);
            OPENSSL_free(entry);
            continue;
        }
        link = &entry->next;
    }
}

/* A newer description of the same kid replaces the older one (a rename). */
static void cache_put(sk_provctx *ctx, sk_key *key)
{
    sk_key_cache *cache = ctx->key_cache;
    cache_entry *fresh;

    if (cache == NULL || ctx->settings.cache_lifetime <= 0)
        return;
    fresh = OPENSSL_zalloc(sizeof(*fresh));
    if (fresh == NULL)
        return;
    fresh->key = sk_key_up_ref(key);
    fresh->expires = sk_now_seconds() + ctx->settings.cache_lifetime;

    pthread_mutex_lock(&cache->lock);
    drop_locked(cache, key->kid);
    fresh->next = cache->entries;
    cache->entries = fresh;
    pthread_mutex_unlock(&cache->lock);
}

void sk_key_cache_forget(sk_provctx *ctx, const sk_key *key)
{
    sk_key_cache *cache = ctx != NULL ? ctx->key_cache : NULL;

    if (cache == NULL || key == NULL)
        return;
    pthread_mutex_lock(&cache->lock);
    drop_locked(cache, key->kid);
    pthread_mutex_unlock(&cache->lock);
}

/* The type an RSA/EC object of SmartKey has in OpenSSL: Ed25519 keys are EC
   objects in SmartKey (docs/smartkey-api.md §3.1), ED25519 in OpenSSL. */
static sk_key_type key_type_of(const sk_key_info *info)
{
    if (info->obj_type == SK_OBJ_RSA)
        return SK_KEY_RSA;
    return info->curve == SK_CURVE_ED25519 ? SK_KEY_ED25519 : SK_KEY_EC;
}

static EVP_PKEY *decode_public_key(sk_provctx *ctx, const sk_key_info *info)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *decoder;
    const unsigned char *data = info->pub_key;
    size_t len = info->pub_key_len;

    decoder = OSSL_DECODER_CTX_new_for_pkey(
        &pkey, "DER", "SubjectPublicKeyInfo",
        sk_key_type_name(key_type_of(info)), EVP_PKEY_PUBLIC_KEY, ctx->libctx,
        DECODE_PROPQ);
    if (decoder == NULL)
        return NULL;
    if (!OSSL_DECODER_from_data(decoder, &data, &len)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(decoder);
    return pkey;
}

static const char *obj_type_name(sk_obj_type type)
{
    static const char *const names[] = {
        [SK_OBJ_RSA] = "an RSA",   [SK_OBJ_EC] = "an EC",
        [SK_OBJ_AES] = "an AES",   [SK_OBJ_SECRET] = "a SECRET",
        [SK_OBJ_HMAC] = "an HMAC",
    };

    return (size_t)type < sizeof(names) / sizeof(names[0]) &&
                   names[type] != NULL
               ? names[type]
               : "a non-RSA/EC";
}

/* info describes a key OpenSSL can use: RSA, or EC on a supported curve
   (Ed25519 included), with a public key. 0 with an error raised naming
   label. */
static int usable_info(sk_provctx *ctx, const sk_key_info *info,
                       const char *label)
{
    if (info->obj_type == SK_OBJ_CERTIFICATE) {
        SK_RAISE(ctx, SK_R_UNSUPPORTED_KEY_TYPE,
                 "'%.200s' (%s) is a certificate, not a key: name the key it "
                 "certifies, or load the certificate (type=cert)",
                 label, info->kid);
        return 0;
    }
    if (info->obj_type != SK_OBJ_RSA && info->obj_type != SK_OBJ_EC) {
        SK_RAISE(ctx, SK_R_UNSUPPORTED_KEY_TYPE,
                 "key '%.200s' (%s) is %s key; only RSA and EC keys can be "
                 "used as OpenSSL keys",
                 label, info->kid, obj_type_name(info->obj_type));
        return 0;
    }
    if (info->obj_type == SK_OBJ_EC && info->curve != SK_CURVE_P256 &&
        info->curve != SK_CURVE_P384 && info->curve != SK_CURVE_P521 &&
        info->curve != SK_CURVE_ED25519) {
        SK_RAISE(ctx, SK_R_UNSUPPORTED_KEY_TYPE,
                 "key '%.200s' (%s) is on a curve other than P-256, P-384, "
                 "P-521 and Ed25519%s",
                 label, info->kid,
                 info->curve == SK_CURVE_X25519
                     ? " (X25519 keys agree on secrets in SmartKey, which "
                       "OpenSSL's derive cannot use)"
                     : "");
        return 0;
    }
    if (info->pub_key == NULL || info->pub_key_len == 0) {
        SK_RAISE(ctx, SK_R_BAD_RESPONSE,
                 "SmartKey sent no public key for key '%.200s' (%s)", label,
                 info->kid);
        return 0;
    }
    return 1;
}

sk_key *sk_key_from_info(sk_provctx *ctx, const sk_key_info *info)
{
    sk_key *key;
    const char *label = info->name != NULL ? info->name : info->kid;

    if (!usable_info(ctx, info, label))
        return NULL;
    key = OPENSSL_zalloc(sizeof(*key));
    if (key == NULL || (info->name != NULL &&
                        (key->name = OPENSSL_strdup(info->name)) == NULL)) {
        OPENSSL_free(key);
        SK_RAISE(ctx, SK_R_OUT_OF_MEMORY, "building key '%.200s'", label);
        return NULL;
    }
    atomic_init(&key->refs, 1);
    snprintf(key->kid, sizeof(key->kid), "%s", info->kid);
    key->type = key_type_of(info);
    key->curve = info->curve;
    key->key_ops = info->key_ops;
    key->has_private = !info->public_only;

    key->public_key = decode_public_key(ctx, info);
    if (key->public_key == NULL ||
        !EVP_PKEY_is_a(key->public_key, sk_key_type_name(key->type))) {
        SK_RAISE(ctx, SK_R_BAD_RESPONSE,
                 "the public key SmartKey holds for key '%.200s' (%s) is "
                 "not a valid %s SubjectPublicKeyInfo",
                 label, info->kid, sk_key_type_name(key->type));
        sk_key_free(key);
        return NULL;
    }
    key->bits = (unsigned)EVP_PKEY_get_bits(key->public_key);
    key->security_bits = EVP_PKEY_get_security_bits(key->public_key);
    key->max_size = EVP_PKEY_get_size(key->public_key);
    if (key->type == SK_KEY_EC && (key->ec_order = ec_group_order(
                                       ctx->libctx, key->public_key)) == NULL) {
        SK_RAISE(ctx, SK_R_UNSUPPORTED_KEY_TYPE,
                 "key '%.200s' (%s): the curve of its public key is not "
                 "supported",
                 label, info->kid);
        sk_key_free(key);
        return NULL;
    }

    cache_put(ctx, key);
    SK_DEBUG(3, "key '%.200s' (%s): %s %u bits%s", label, key->kid,
             sk_key_type_name(key->type), key->bits,
             key->has_private ? "" : ", public only");
    return key;
}

/*
 * The key SmartKey describes must be the one asked for: a lookup by name
 * answered with another name, or by kid with another kid, would make every
 * later operation use (and cache under the asked name) a key the user did
 * not name. Refused, whatever the reason (a proxy, a broken server).
 */
static int answer_names_ref(sk_provctx *ctx, const sk_key_ref *ref,
                            const sk_key_info *info)
{
    char asked[256];

    if (ref->kid != NULL && strcasecmp(info->kid, ref->kid) != 0) {
        sk_key_ref_describe(ref, asked, sizeof(asked));
        SK_RAISE(ctx, SK_R_BAD_RESPONSE,
                 "%s: SmartKey answered the key lookup with another key "
                 "(kid %s); refused",
                 asked, info->kid);
        return 0;
    }
    if (ref->kid == NULL && ref->name != NULL &&
        (info->name == NULL || strcmp(info->name, ref->name) != 0)) {
        sk_key_ref_describe(ref, asked, sizeof(asked));
        SK_RAISE(ctx, SK_R_BAD_RESPONSE,
                 "%s: SmartKey answered the key lookup with another key "
                 "('%.200s', kid %s); refused",
                 asked, info->name != NULL ? info->name : "(no name)",
                 info->kid);
        return 0;
    }
    return 1;
}

sk_key *sk_key_fetch(sk_provctx *ctx, const sk_key_ref *ref)
{
    return sk_key_fetch_any(ctx, ref, NULL);
}

sk_key *sk_key_fetch_any(sk_provctx *ctx, const sk_key_ref *ref,
                         sk_key_info **certificate)
{
    sk_key *key;
    sk_client *client;
    sk_key_info *info = NULL;
    sk_error err;
    char subject[256];
    int ok;

    if (ctx->key_cache != NULL &&
        (key = cache_lookup(ctx->key_cache, ref)) != NULL) {
        SK_DEBUG(3, "key %s: from the cache", key->kid);
        return key;
    }
    client = sk_provctx_client(ctx);
    if (client == NULL)
        return NULL;

    memset(&err, 0, sizeof(err));
    /*
     * libcurl leaves OpenSSL errors of its own TLS (e.g. "shutdown while in
     * init" after a refused certificate) in this thread's queue; sk_error
     * already says what happened, in the user's terms.
     */
    sk_set_error_mark(ctx);
    ok = sk_client_key_info(client, ref, &info, &err);
    sk_pop_error_to_mark(ctx);
    if (!ok) {
        sk_key_ref_describe(ref, subject, sizeof(subject));
        SK_RAISE_CLIENT(ctx, subject, &err);
        return NULL;
    }
    if (!answer_names_ref(ctx, ref, info)) {
        sk_key_info_free(info);
        return NULL;
    }
    if (certificate != NULL && info->obj_type == SK_OBJ_CERTIFICATE) {
        *certificate = info;
        return NULL;
    }
    key = sk_key_from_info(ctx, info);
    sk_key_info_free(info);
    return key;
}
