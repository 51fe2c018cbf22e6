/*
 * The configuration file (smartkey-keyservice(8)): "name = value" lines,
 * '#' comments, then one "[key ID]" section per key identifier with its
 * SmartKey key (uri) and BYOK certificate (certificate). Every problem is
 * reported as FILE:LINE: what, and nothing is half-loaded.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/store.h>

#include "keyservice.h"

typedef struct loader {
    const char *file;
    int line;
    OSSL_LIB_CTX *libctx;
    char *tls_certificate, *tls_key, *client_ca, *credentials;
} loader;

static void complain(const loader *ld, const char *what, const char *detail)
{
    fprintf(stderr, "smartkey-keyservice: %s:%d: %s%s%s\n", ld->file, ld->line,
            what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

static void complain_openssl(const loader *ld, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char text[256] = "";

    if (e != 0)
        ERR_error_string_n(e, text, sizeof(text));
    complain(ld, what, e != 0 ? text : NULL);
    ERR_clear_error();
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* A file the configuration names: credential:NAME is systemd's
   LoadCredential= file NAME ($CREDENTIALS_DIRECTORY). */
static char *file_name(const loader *ld, const char *value)
{
    char path[PATH_MAX];
    const char *dir;

    if (strncmp(value, "credential:", 11) != 0)
        return strdup(value);
    dir = getenv("CREDENTIALS_DIRECTORY");
    if (dir == NULL || strchr(value + 11, '/') != NULL || value[11] == '\0') {
        complain(ld,
                 "credential: needs systemd's CREDENTIALS_DIRECTORY and "
                 "a plain name",
                 value);
        return NULL;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, value + 11) >=
        sizeof(path))
        return NULL;
    return strdup(path);
}

static int number(const loader *ld, const char *value, long min, long max,
                  long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || n < min || n > max) {
        char range[64];

        snprintf(range, sizeof(range), "%ld..%ld", min, max);
        complain(ld, "expected a whole number in", range);
        return 0;
    }
    *out = n;
    return 1;
}

static int on_off(const loader *ld, const char *value, int *out)
{
    if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0)
        *out = 1;
    else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0)
        *out = 0;
    else {
        complain(ld, "expected on or off", value);
        return 0;
    }
    return 1;
}

static X509 *read_certificate(const loader *ld, const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *cert = X509_new_ex(ld->libctx, NULL);

    if (f == NULL) {
        complain(ld, "cannot open the certificate", path);
        X509_free(cert);
        return NULL;
    }
    if (cert == NULL || PEM_read_X509(f, &cert, NULL, NULL) == NULL) {
        complain_openssl(ld, "no PEM certificate in the file");
        X509_free(cert);
        cert = NULL;
    } else if (EVP_PKEY_get_base_id(X509_get0_pubkey(cert)) != EVP_PKEY_RSA) {
        complain(ld, "the BYOK certificate's key is not RSA", path);
        X509_free(cert);
        cert = NULL;
    }
    fclose(f);
    return cert;
}

/* The numeric settings, all int members of ks_config. */
static const struct {
    const char *name;
    long min, max;
    size_t offset;
} numbers[] = {
    {"replay_window", 1, 86400, offsetof(ks_config, replay_window)},
    {"replay_capacity", 16, 10000000, offsetof(ks_config, replay_capacity)},
    {"retry_after", 1, 3600, offsetof(ks_config, retry_after)},
    {"max_connections", 1, 1024, offsetof(ks_config, max_connections)},
    {"max_request_size", 512, 65536, offsetof(ks_config, max_request_size)},
    {"io_timeout", 1, 300, offsetof(ks_config, io_timeout)},
};

static int set_global(loader *ld, ks_config *c, const char *name,
                      const char *value)
{
    long n;
    size_t i;
    char **file = NULL;

    if (strcmp(name, "listen") == 0) {
        free(c->listen);
        return (c->listen = strdup(value)) != NULL;
    }
    if (strcmp(name, "path_prefix") == 0) {
        if (strcmp(value, "/") == 0)
            value = "";
        if (value[0] != '\0' &&
            (value[0] != '/' || value[strlen(value) - 1] == '/')) {
            complain(ld, "path_prefix is empty or /NAME, no trailing slash",
                     value);
            return 0;
        }
        free(c->path_prefix);
        return (c->path_prefix = strdup(value)) != NULL;
    }
    if (strcmp(name, "replay_detection") == 0)
        return on_off(ld, value, &c->replay_detection);
    if (strcmp(name, "tls_certificate") == 0)
        file = &ld->tls_certificate;
    else if (strcmp(name, "tls_key") == 0)
        file = &ld->tls_key;
    else if (strcmp(name, "client_ca") == 0)
        file = &ld->client_ca;
    else if (strcmp(name, "credentials") == 0)
        file = &ld->credentials;
    if (file != NULL) {
        free(*file);
        /* a smartkey: URI is not a file */
        *file = strncmp(value, "smartkey:", 9) == 0 ? strdup(value)
                                                    : file_name(ld, value);
        return *file != NULL;
    }
    for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        if (strcmp(name, numbers[i].name) == 0) {
            if (!number(ld, value, numbers[i].min, numbers[i].max, &n))
                return 0;
            *(int *)((char *)c + numbers[i].offset) = (int)n;
            return 1;
        }
    complain(ld, "unknown setting", name);
    return 0;
}

static int set_key(loader *ld, ks_key *key, const char *name, const char *value)
{
    if (strcmp(name, "uri") == 0) {
        if (strncmp(value, "smartkey:", 9) != 0) {
            complain(ld, "uri must be a smartkey: URI", value);
            return 0;
        }
        free(key->uri);
        return (key->uri = strdup(value)) != NULL;
    }
    if (strcmp(name, "certificate") == 0) {
        char *path = file_name(ld, value);

        X509_free(key->cert);
        key->cert = path != NULL ? read_certificate(ld, path) : NULL;
        free(path);
        return key->cert != NULL;
    }
    complain(ld, "unknown key setting", name);
    return 0;
}

static int add_key(loader *ld, ks_config *c, const char *header)
{
    char id[KS_MAX_KEY_ID + 2];
    char where[PATH_MAX + 16];
    ks_key *keys;
    size_t len = strlen(header);

    if (len < 6 || strncmp(header, "[key ", 5) != 0 || header[len - 1] != ']' ||
        len - 6 > KS_MAX_KEY_ID) {
        complain(ld, "expected a section [key ID]", header);
        return 0;
    }
    memcpy(id, header + 5, len - 6);
    id[len - 6] = '\0';
    if (!ks_valid_key_id(trim(id))) {
        complain(ld, "a key identifier is 1..128 of A-Z a-z 0-9 . _ ~ -", id);
        return 0;
    }
    if (ks_config_key(c, trim(id)) != NULL) {
        complain(ld, "key identifier listed twice", id);
        return 0;
    }
    keys = realloc(c->keys, (c->nkeys + 1) * sizeof(*keys));
    if (keys == NULL)
        return 0;
    c->keys = keys;
    memset(&keys[c->nkeys], 0, sizeof(*keys));
    strcpy(keys[c->nkeys].id, trim(id));
    snprintf(where, sizeof(where), "%s:%d", ld->file, ld->line);
    keys[c->nkeys].where = strdup(where);
    c->nkeys++;
    return keys[c->nkeys - 1].where != NULL;
}

/* The credentials file: one line "user:password", readable by its owner
   alone. Only its SHA-256 is kept. */
static int read_credentials(loader *ld, ks_config *c)
{
    struct stat st;
    char line[1024];
    FILE *f;
    size_t len;
    int ok = 0;

    if ((f = fopen(ld->credentials, "r")) == NULL ||
        fstat(fileno(f), &st) != 0) {
        complain(ld, "cannot read the credentials file", ld->credentials);
        if (f != NULL)
            fclose(f);
        return 0;
    }
    if ((st.st_mode & 077) != 0) {
        complain(ld,
                 "the credentials file is readable by group or others "
                 "(chmod 600)",
                 ld->credentials);
    } else if (fgets(line, sizeof(line), f) == NULL) {
        complain(ld, "the credentials file is empty", ld->credentials);
    } else {
        len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (memchr(line, ':', len) == NULL || line[0] == ':')
            complain(ld, "the credentials file holds user:password",
                     ld->credentials);
        else
            ok = EVP_Digest(line, len, c->credentials_sha256, NULL,
                            EVP_sha256(), NULL);
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    return ok;
}

static EVP_PKEY *load_tls_key(loader *ld)
{
    OSSL_STORE_CTX *store = OSSL_STORE_open_ex(ld->tls_key, ld->libctx, NULL,
                                               NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *pkey = NULL;

    if (store == NULL) {
        complain_openssl(ld, "cannot open tls_key");
        return NULL;
    }
    while (pkey == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    if (pkey == NULL)
        complain_openssl(ld, "no private key in tls_key");
    return pkey;
}

static int make_tls(loader *ld, ks_config *c)
{
    EVP_PKEY *pkey;
    int ok = 0;

    c->tls = SSL_CTX_new_ex(ld->libctx, NULL, TLS_server_method());
    if (c->tls == NULL ||
        !SSL_CTX_set_min_proto_version(c->tls, TLS1_2_VERSION)) {
        complain_openssl(ld, "cannot make the TLS context");
        return 0;
    }
    if (SSL_CTX_use_certificate_chain_file(c->tls, ld->tls_certificate) != 1) {
        complain_openssl(ld, "cannot use tls_certificate");
        return 0;
    }
    if ((pkey = load_tls_key(ld)) == NULL)
        return 0;
    if (SSL_CTX_use_PrivateKey(c->tls, pkey) != 1 ||
        SSL_CTX_check_private_key(c->tls) != 1)
        complain_openssl(ld, "tls_key does not match tls_certificate");
    else
        ok = 1;
    EVP_PKEY_free(pkey);
    if (ok && ld->client_ca != NULL) {
        if (SSL_CTX_load_verify_locations(c->tls, ld->client_ca, NULL) != 1) {
            complain_openssl(ld, "cannot read client_ca");
            return 0;
        }
        SSL_CTX_set_verify(
            c->tls, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ok;
}

static int finish(loader *ld, ks_config *c)
{
    size_t i;

    ld->line = 0;
    if (ld->tls_certificate == NULL || ld->tls_key == NULL) {
        complain(ld, "tls_certificate and tls_key are required", NULL);
        return 0;
    }
    if (ld->credentials == NULL) {
        complain(ld, "credentials (the file with user:password) is required",
                 NULL);
        return 0;
    }
    if (c->nkeys == 0) {
        complain(ld, "no [key ID] section", NULL);
        return 0;
    }
    for (i = 0; i < c->nkeys; i++)
        if (c->keys[i].uri == NULL || c->keys[i].cert == NULL) {
            fprintf(stderr,
                    "smartkey-keyservice: %s: [key %s] needs uri and "
                    "certificate\n",
                    c->keys[i].where, c->keys[i].id);
            return 0;
        }
    return read_credentials(ld, c) && make_tls(ld, c);
}

ks_config *ks_config_load(const char *path, OSSL_LIB_CTX *libctx)
{
    loader ld = {.file = path, .libctx = libctx};
    ks_config *c = calloc(1, sizeof(*c));
    FILE *f = fopen(path, "r");
    char buf[4096];
    int ok = c != NULL && f != NULL;

    if (f == NULL)
        fprintf(stderr, "smartkey-keyservice: cannot open %s: %s\n", path,
                strerror(errno));
    if (c != NULL) {
        c->refs = 1;
        c->listen = strdup("[::]:8443");
        c->path_prefix = strdup("");
        c->replay_detection = 1;
        c->replay_window = 3600;
        c->replay_capacity = 100000;
        c->retry_after = 30;
        c->max_connections = 16;
        c->max_request_size = 8192;
        c->io_timeout = 10;
        ok = ok && c->listen != NULL && c->path_prefix != NULL;
    }
    while (ok && fgets(buf, sizeof(buf), f) != NULL) {
        char *line = trim(buf), *eq;

        ld.line++;
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (line[0] == '[') {
            ok = add_key(&ld, c, line);
            continue;
        }
        if ((eq = strchr(line, '=')) == NULL) {
            complain(&ld, "expected name = value", line);
            ok = 0;
            break;
        }
        *eq = '\0';
        ok = c->nkeys == 0 ? set_global(&ld, c, trim(line), trim(eq + 1))
                           : set_key(&ld, &c->keys[c->nkeys - 1], trim(line),
                                     trim(eq + 1));
    }
    ok = ok && finish(&ld, c);
    if (f != NULL)
        fclose(f);
    free(ld.tls_certificate);
    free(ld.tls_key);
    free(ld.client_ca);
    free(ld.credentials);
    if (!ok) {
        ks_config_free(c);
        return NULL;
    }
    return c;
}

void ks_config_free(ks_config *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->nkeys; i++) {
        free(c->keys[i].uri);
        free(c->keys[i].where);
        X509_free(c->keys[i].cert);
    }
    free(c->keys);
    free(c->listen);
    free(c->path_prefix);
    SSL_CTX_free(c->tls);
    OPENSSL_cleanse(c->credentials_sha256, sizeof(c->credentials_sha256));
    free(c);
}

const ks_key *ks_config_key(const ks_config *c, const char *id)
{
    size_t i;

    for (i = 0; i < c->nkeys; i++)
        if (strcmp(c->keys[i].id, id) == 0)
            return &c->keys[i];
    return NULL;
}
