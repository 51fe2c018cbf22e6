/*
 * Replay detection: the nonces of recent callouts. A nonce is kept as its
 * SHA-256 (fixed size whatever the client sent) in a hash table whose
 * entries are also chained oldest first, so expiry and the capacity bound
 * drop from the head. Nothing secret is kept: nonces are public.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "keyservice.h"

#define BUCKETS 65536

typedef struct entry {
    unsigned char digest[32];
    time_t seen;
    struct entry *next_in_bucket;
    struct entry *newer;
} entry;

struct ks_replay {
    pthread_mutex_t lock;
    entry *buckets[BUCKETS];
    entry *oldest, *newest;
    long count;
};

ks_replay *ks_replay_new(void)
{
    ks_replay *r = calloc(1, sizeof(*r));

    if (r != NULL && pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        r = NULL;
    }
    return r;
}

void ks_replay_free(ks_replay *r)
{
    entry *e, *next;

    if (r == NULL)
        return;
    for (e = r->oldest; e != NULL; e = next) {
        next = e->newer;
        free(e);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static size_t bucket_of(const unsigned char *digest)
{
    return ((size_t)digest[0] << 8 | digest[1]) % BUCKETS;
}

/* drops the oldest entry (the caller holds the lock) */
static void drop_oldest(ks_replay *r)
{
    entry *e = r->oldest, **link = &r->buckets[bucket_of(e->digest)];

    while (*link != e)
        link = &(*link)->next_in_bucket;
    *link = e->next_in_bucket;
    r->oldest = e->newer;
    if (r->oldest == NULL)
        r->newest = NULL;
    r->count--;
    free(e);
}

int ks_replay_check(ks_replay *r, const char *nonce, time_t now, int window,
                    int capacity)
{
    unsigned char digest[32];
    entry *e;
    int fresh = 1;

    if (!EVP_Digest(nonce, strlen(nonce), digest, NULL, EVP_sha256(), NULL))
        return 0;
    pthread_mutex_lock(&r->lock);
    while (r->oldest != NULL &&
           (r->oldest->seen + window <= now || r->count >= capacity))
        drop_oldest(r);
    for (e = r->buckets[bucket_of(digest)]; e != NULL; e = e->next_in_bucket)
        if (memcmp(e->digest, digest, sizeof(digest)) == 0) {
            fresh = 0;
            break;
        }
    if (fresh && (e = calloc(1, sizeof(*e))) != NULL) {
        memcpy(e->digest, digest, sizeof(digest));
        e->seen = now;
        e->next_in_bucket = r->buckets[bucket_of(digest)];
        r->buckets[bucket_of(digest)] = e;
        if (r->newest != NULL)
            r->newest->newer = e;
        else
            r->oldest = e;
        r->newest = e;
        r->count++;
    } else if (fresh) {
        fresh = 0; /* cannot remember it: refuse rather than allow a replay */
    }
    pthread_mutex_unlock(&r->lock);
    return fresh;
}
