/*
 * A SmartKey key as the provider knows it: identity, type, size and the
 * public half decoded from SmartKey's pub_key. Immutable once built and
 * shared between threads and handles through an atomic reference count.
 * Keys are cached in the provider context (cache_lifetime) by kid and name
 * so one key costs one key-info request.
 */
#ifndef SMARTKEY_KEY_H
#define SMARTKEY_KEY_H

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "provider.h"

typedef enum sk_key_type {
    SK_KEY_RSA = 1,
    SK_KEY_EC,
    /* an EC object on curve Ed25519 in SmartKey; OpenSSL's ED25519 */
    SK_KEY_ED25519,
} sk_key_type;

/* OpenSSL's name of a key type: "RSA", "EC", "ED25519" (names.c). */
const char *sk_key_type_name(sk_key_type type);
/* The key type of OpenSSL's name (len bytes, exact case); 0 for others. */
int sk_key_type_of_name(const unsigned char *name, size_t len,
                        sk_key_type *type);

typedef struct sk_key {
    atomic_int refs;
    char kid[37];
    char *name;
    sk_key_type type;
    unsigned bits;
    sk_curve curve;
    unsigned key_ops;     /* SK_OP_* */
    int has_private;      /* SmartKey holds the private half */
    EVP_PKEY *public_key; /* in the provider's child libctx */
    int security_bits;
    int max_size; /* RSA: modulus bytes; EC: DER ECDSA signature; 64 */
    /* EC: the group order, for checking SmartKey's signatures; made once
       per key because building the group costs as much as a request's
       client-side work */
    BIGNUM *ec_order;
} sk_key;

sk_key *sk_key_up_ref(sk_key *key);
void sk_key_free(sk_key *key);

/* "key 'my key'" or "key <kid>", for error messages. */
void sk_key_ref_describe(const sk_key_ref *ref, char *buf, size_t len);

/*
 * The key named by ref: from the cache, or with one key-info request.
 * NULL with an error raised (unknown key, unsupported type, network...).
 */
sk_key *sk_key_fetch(sk_provctx *ctx, const sk_key_ref *ref);
/* The same, except that a CERTIFICATE object is no error when certificate
   is not NULL: NULL is returned, nothing raised, and *certificate holds its
   description (free with sk_key_info_free). */
sk_key *sk_key_fetch_any(sk_provctx *ctx, const sk_key_ref *ref,
                         sk_key_info **certificate);

/* Builds a key from a listing entry (and caches it); NULL with an error
   raised when the entry is not an RSA/EC key with a public key. */
sk_key *sk_key_from_info(sk_provctx *ctx, const sk_key_info *info);

sk_key_cache *sk_key_cache_new(void);
void sk_key_cache_free(sk_key_cache *cache);
/*
 * Drops key (by kid) from the cache: SmartKey answered 404 or 403 for it,
 * so it was deleted, renamed over, or its permissions changed. The next
 * load by name looks it up again instead of trusting the cache until
 * cache_lifetime runs out. Handles already holding the key keep it.
 */
void sk_key_cache_forget(sk_provctx *ctx, const sk_key *key);
/* For the fork handlers: the cache must not be copied mid-update. */
void sk_key_cache_lock(sk_key_cache *cache);
void sk_key_cache_unlock(sk_key_cache *cache);

/*
 * What the store hands to keymgmt load() through OSSL_OBJECT_PARAM_REFERENCE.
 * Deliberately not pointer-sized: the default provider's RSA/EC load()
 * accepts any pointer-sized reference as its own object
 * (docs/openssl-dispatch.md §2).
 */
#define SK_KEY_REFERENCE_MAGIC   0x534b5946u /* "SKYF" */
#define SK_KEY_REFERENCE_VERSION 1u
typedef struct sk_key_reference {
    uint32_t magic;
    uint32_t version;
    sk_provctx *provctx; /* load() gets no provider context */
    sk_key *key;         /* counted: the store holds one reference */
    int public_handle;   /* hand out the public half only */
} sk_key_reference;

/* The keymgmt's key data (the EVP_PKEY's keydata). */
typedef struct sk_keydata {
    sk_provctx *provctx;
    sk_key *key;        /* NULL for an empty keydata from new() */
    int private_handle; /* operations with the private half go to SmartKey */
} sk_keydata;

#endif
