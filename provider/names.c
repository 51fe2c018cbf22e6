#include <string.h>
#include <strings.h>

#include "key.h"
#include "names.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const sk_digest digests[] = {
    {"SHA1",
     "SHA1",
     {"SHA-1", "SSL3-SHA1", "1.3.14.3.2.26", NULL},
     SK_DIGEST_SIGN | SK_DIGEST_OAEP},
    {"SHA2-224",
     "SHA224",
     {"SHA224", "SHA-224", "2.16.840.1.101.3.4.2.4", NULL},
     SK_DIGEST_SIGN | SK_DIGEST_OAEP},
    {"SHA2-256",
     "SHA256",
     {"SHA256", "SHA-256", "2.16.840.1.101.3.4.2.1", NULL},
     SK_DIGEST_SIGN | SK_DIGEST_OAEP},
    {"SHA2-384",
     "SHA384",
     {"SHA384", "SHA-384", "2.16.840.1.101.3.4.2.2", NULL},
     SK_DIGEST_SIGN | SK_DIGEST_OAEP},
    {"SHA2-512",
     "SHA512",
     {"SHA512", "SHA-512", "2.16.840.1.101.3.4.2.3", NULL},
     SK_DIGEST_SIGN | SK_DIGEST_OAEP},
    {"SHA3-224", "SHA3_224", {NULL}, SK_DIGEST_SIGN},
    {"SHA3-256", "SHA3_256", {NULL}, SK_DIGEST_SIGN},
    {"SHA3-384", "SHA3_384", {NULL}, SK_DIGEST_SIGN},
    {"SHA3-512", "SHA3_512", {NULL}, SK_DIGEST_SIGN},
};

const sk_digest *sk_digest_by_name(const char *name, unsigned int use)
{
    for (size_t i = 0; i < N_ELEMENTS(digests); i++) {
        const sk_digest *d = &digests[i];

        if ((d->uses & use) != use)
            continue;
        if (strcasecmp(name, d->openssl_name) == 0)
            return d;
        for (size_t a = 0; a < N_ELEMENTS(d->aliases) && d->aliases[a] != NULL;
             a++)
            if (strcasecmp(name, d->aliases[a]) == 0)
                return d;
    }
    return NULL;
}

const sk_digest *sk_digest_of_md(const EVP_MD *md, unsigned int use)
{
    for (size_t i = 0; i < N_ELEMENTS(digests); i++)
        if ((digests[i].uses & use) == use &&
            EVP_MD_is_a(md, digests[i].openssl_name))
            return &digests[i];
    return NULL;
}

const sk_digest *sk_digest_oaep_default(void)
{
    return &digests[0];
}

static const struct {
    const char *name;
    sk_curve curve;
} curve_names[] = {
    {"P-256", SK_CURVE_P256},     {"prime256v1", SK_CURVE_P256},
    {"secp256r1", SK_CURVE_P256}, {"P-384", SK_CURVE_P384},
    {"secp384r1", SK_CURVE_P384}, {"P-521", SK_CURVE_P521},
    {"secp521r1", SK_CURVE_P521},
};

static const struct {
    sk_curve curve;
    const char *openssl_name, *smartkey_name;
} curves[] = {
    {SK_CURVE_P256, "P-256", "NistP256"},
    {SK_CURVE_P384, "P-384", "NistP384"},
    {SK_CURVE_P521, "P-521", "NistP521"},
    /* EC objects in SmartKey, key types of their own in OpenSSL */
    {SK_CURVE_ED25519, "ED25519", "Ed25519"},
    {SK_CURVE_X25519, "X25519", "X25519"},
};

sk_curve sk_curve_by_name(const char *name)
{
    for (size_t i = 0; i < N_ELEMENTS(curve_names); i++)
        if (strcasecmp(name, curve_names[i].name) == 0)
            return curve_names[i].curve;
    return SK_CURVE_NONE;
}

const char *sk_curve_openssl_name(sk_curve curve)
{
    for (size_t i = 0; i < N_ELEMENTS(curves); i++)
        if (curves[i].curve == curve)
            return curves[i].openssl_name;
    return NULL;
}

const char *sk_curve_smartkey_name(sk_curve curve)
{
    for (size_t i = 0; i < N_ELEMENTS(curves); i++)
        if (curves[i].curve == curve)
            return curves[i].smartkey_name;
    return NULL;
}

static const char *const key_type_names[] = {
    [SK_KEY_RSA] = "RSA",
    [SK_KEY_EC] = "EC",
    [SK_KEY_ED25519] = "ED25519",
};

const char *sk_key_type_name(sk_key_type type)
{
    return (size_t)type < N_ELEMENTS(key_type_names) &&
                   key_type_names[type] != NULL
               ? key_type_names[type]
               : "?";
}

int sk_key_type_of_name(const unsigned char *name, size_t len,
                        sk_key_type *type)
{
    for (size_t i = 0; i < N_ELEMENTS(key_type_names); i++)
        if (key_type_names[i] != NULL && strlen(key_type_names[i]) == len &&
            memcmp(name, key_type_names[i], len) == 0) {
            *type = (sk_key_type)i;
            return 1;
        }
    return 0;
}
