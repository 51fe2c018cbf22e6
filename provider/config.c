#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"

/* Longer than any timeout anyone means; also keeps the milliseconds the
   client computes within a long. */
#define MAX_SECONDS 86400.0

/* *out: text as a number from 0 to max (a whole one, in decimal, when
   whole is set); unchanged when text is NULL; 0 with why saying text is
   not what (e.g. "a number of seconds"). */
static int parse_number(const char *name, const char *text, int whole,
                        double max, const char *what, double *out, char *why,
                        size_t why_len)
{
    char *end;
    double value;

    if (text == NULL)
        return 1;
    errno = 0;
    value = whole ? (double)strtol(text, &end, 10) : strtod(text, &end);
    /* value != value: strtod accepts "nan" */
    if (errno != 0 || end == text || *end != '\0' || value != value ||
        value < 0 || value > max) {
        snprintf(why, why_len,
                 "%s = '%.64s' in the provider's openssl.cnf section is not "
                 "%s",
                 name, text, what);
        return 0;
    }
    *out = value;
    return 1;
}

static int parse_seconds(const char *name, const char *text, double *out,
                         char *why, size_t why_len)
{
    return parse_number(name, text, 0, MAX_SECONDS, "a number of seconds", out,
                        why, why_len);
}

/* A whole number from 0 to max. The emulator (and, as far as is known,
   SmartKey) caps a batch at 1000; retries are capped at 100. */
static int parse_count(const char *name, const char *text, long max, int *out,
                       char *why, size_t why_len)
{
    char what[48];
    double value = *out;

    snprintf(what, sizeof(what), "a count between 0 and %ld", max);
    if (!parse_number(name, text, 1, (double)max, what, &value, why, why_len))
        return 0;
    *out = (int)value;
    return 1;
}

static int parse_flag(const char *name, const char *text, int *out, char *why,
                      size_t why_len)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};

    if (text == NULL)
        return 1;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    snprintf(why, why_len,
             "%s = '%.64s' in the provider's openssl.cnf section is not "
             "yes or no",
             name, text);
    return 0;
}

/* One spelling of a setting that takes a word, and what it stands for. */
typedef struct {
    const char *text;
    int value;
} sk_choice;

static const sk_choice auth_choices[] = {
    {"auto", SK_AUTH_AUTO},
    {"session", SK_AUTH_SESSION},
    {"api-key", SK_AUTH_API_KEY},
    {NULL, 0},
};

static const sk_choice approval_choices[] = {
    {"fail", SK_APPROVAL_FAIL},
    {"request", SK_APPROVAL_REQUEST},
    {"wait", SK_APPROVAL_WAIT},
    {NULL, 0},
};

static const sk_choice async_choices[] = {
    {"auto", 0}, /* async_off */
    {"off", 1},
    {NULL, 0},
};

/* ed25519_hash_alg: the first is the default (docs/smartkey-api.md §8) */
static const char *const ed25519_hash_names[] = {
    "SHA512", "SHA384", "SHA256", "SHA3_512", "SHA3_384", "SHA3_256",
};

static const sk_choice ed25519_hash_choices[] = {
    {"SHA512", 0},   {"SHA384", 1},   {"SHA256", 2}, {"SHA3_512", 3},
    {"SHA3_384", 4}, {"SHA3_256", 5}, {NULL, 0},
};

/*
 * *out: the value of text among choices (case-insensitive; the first
 * choice when text is NULL), or 0 with why naming the setting, where else
 * it can be set (also, "" or " (or VARIABLE)") and every spelling.
 */
static int parse_choice(const char *name, const char *also, const char *text,
                        const sk_choice *choices, int *out, char *why,
                        size_t why_len)
{
    char spellings[128] = "";
    size_t i;

    for (i = 0; choices[i].text != NULL; i++) {
        if (text == NULL || strcasecmp(text, choices[i].text) == 0) {
            *out = choices[i].value;
            return 1;
        }
    }
    for (i = 0; choices[i].text != NULL; i++)
        snprintf(spellings + strlen(spellings),
                 sizeof(spellings) - strlen(spellings), "%s%s",
                 i == 0                        ? ""
                 : choices[i + 1].text == NULL ? " or "
                                               : ", ",
                 choices[i].text);
    snprintf(why, why_len,
             "%s = '%.64s' in the provider's openssl.cnf section%s is not %s",
             name, text, also, spellings);
    return 0;
}

static int parse_auth(const char *text, sk_auth_mode *mode, char *why,
                      size_t why_len)
{
    int value = SK_AUTH_AUTO;
    int ok = parse_choice(SMARTKEY_CFG_AUTH, " (or " SMARTKEY_ENV_AUTH ")",
                          text, auth_choices, &value, why, why_len);

    *mode = (sk_auth_mode)value;
    return ok;
}

static int parse_async(const char *text, int *off, char *why, size_t why_len)
{
    return parse_choice(SMARTKEY_CFG_ASYNC, "", text, async_choices, off, why,
                        why_len);
}

static int parse_ed25519_hash(const char *text, const char **name, char *why,
                              size_t why_len)
{
    int index = 0;

    if (!parse_choice(SMARTKEY_CFG_ED25519_HASH_ALG, "", text,
                      ed25519_hash_choices, &index, why, why_len))
        return 0;
    *name = ed25519_hash_names[index];
    return 1;
}

/* A node of an endpoint list for a message: escaped, cut, and with any
   user:password@ part replaced by "***@" (it never reaches a message). */
static void describe_node(const char *node, size_t len, char *out,
                          size_t out_len)
{
    const char *scheme_end = strstr(node, "://");
    size_t start = 0, at = 0;
    char masked[96];

    if (scheme_end != NULL && (size_t)(scheme_end - node) < len)
        start = (size_t)(scheme_end - node) + 3;
    for (size_t i = start; i < len && node[i] != '/'; i++)
        if (node[i] == '@')
            at = i;
    if (at == 0) {
        sk_escape_text(node, len < 64 ? len : 64, out, out_len);
        return;
    }
    snprintf(masked, sizeof(masked), "%.*s***%.*s", (int)start, node,
             (int)(len - at < 64 ? len - at : 64), node + at);
    sk_escape_text(masked, SIZE_MAX, out, out_len);
}

/* Every node of an api_endpoint value must be an https:// URL without a
   user name or password: each request carries the API key or a session
   token, and a password in the URL would travel and be logged with it.
   endpoints.c checks the rest of the syntax when the client is made. */
static int check_https(const char *setting, const char *value, char *why,
                       size_t why_len)
{
    static const char separators[] = ", \t\r\n";
    const char *p = value;

    for (;;) {
        size_t len, authority;
        char node[128];

        p += strspn(p, separators);
        if (*p == '\0')
            return 1;
        len = strcspn(p, separators);
        if (len < 8 || strncmp(p, "https://", 8) != 0) {
            describe_node(p, len, node, sizeof(node));
            snprintf(why, why_len,
                     "%s: '%s' is not an https:// URL; the provider speaks "
                     "HTTPS only, so that the API key never travels in "
                     "clear text",
                     setting, node);
            return 0;
        }
        authority = strcspn(p + 8, "/");
        if (memchr(p + 8, '@', authority < len - 8 ? authority : len - 8)) {
            describe_node(p, len, node, sizeof(node));
            snprintf(why, why_len,
                     "%s: '%s' carries a user name or password; SmartKey "
                     "authenticates with the API key (api_key), so remove "
                     "the user:password@ part",
                     setting, node);
            return 0;
        }
        p += len;
    }
}

/* proxy: absent, "none", "env", or a proxy URL of a scheme libcurl
   tunnels HTTPS through. */
static int check_proxy(const char *text, char *why, size_t why_len)
{
    static const char *const schemes[] = {"http://", "https://", "socks5://",
                                          "socks5h://"};

    if (text == NULL || strcmp(text, "env") == 0 || strcmp(text, "none") == 0)
        return 1;
    for (const char *c = text; *c != '\0'; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c == 0x7f)
            goto bad;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strncmp(text, schemes[i], strlen(schemes[i])) == 0 &&
            text[strlen(schemes[i])] != '\0')
            return 1;
bad:
    snprintf(why, why_len,
             "%s in the provider's openssl.cnf section is not a proxy URL "
             "(http://, https://, socks5:// or socks5h://), env or none",
             SMARTKEY_CFG_PROXY);
    return 0;
}

/* The environment may replace where the API key goes (or which CA vouches
   for that server) only when it gives the key too, or openssl.cnf says
   env_overrides = yes. */
static int check_env_precedence(const sk_settings_text *in, char *why,
                                size_t why_len)
{
    int overrides = 0;
    const char *variable = NULL;

    if (!parse_flag(SMARTKEY_CFG_ENV_OVERRIDES, in->env_overrides, &overrides,
                    why, why_len))
        return 0;
    if (overrides || in->env_api_key != NULL || in->api_key == NULL)
        return 1;
    if (in->env_api_endpoint != NULL &&
        (in->api_endpoint == NULL ||
         strcmp(in->env_api_endpoint, in->api_endpoint) != 0))
        variable = in->env_api_endpoint_name != NULL
                       ? in->env_api_endpoint_name
                       : SMARTKEY_ENV_API_ENDPOINT;
    else if (in->env_ca_file != NULL &&
             (in->ca_file == NULL || strcmp(in->env_ca_file, in->ca_file) != 0))
        variable = SMARTKEY_ENV_CA_FILE;
    if (variable == NULL)
        return 1;
    snprintf(why, why_len,
             "the environment variable %s would change where the API key "
             "of the provider's openssl.cnf section is sent (or who is "
             "trusted to receive it): refused. Give the API key in %s too, "
             "unset %s, or set %s = yes in that section",
             variable, SMARTKEY_ENV_API_KEY, variable,
             SMARTKEY_CFG_ENV_OVERRIDES);
    return 0;
}

static int copy(char **slot, const char *value)
{
    *slot = NULL;
    if (value == NULL)
        return 1;
    *slot = OPENSSL_strdup(value);
    return *slot != NULL;
}

void sk_settings_clear(sk_settings *settings)
{
    OPENSSL_free(settings->api_endpoint);
    if (settings->api_key_source != NULL)
        OPENSSL_cleanse(settings->api_key_source,
                        strlen(settings->api_key_source));
    OPENSSL_free(settings->api_key_source);
    OPENSSL_free(settings->ca_file);
    OPENSSL_free(settings->ca_path);
    OPENSSL_free(settings->proxy);
    OPENSSL_free(settings->no_proxy);
    memset(settings, 0, sizeof(*settings));
}

/* The settings kept as text, each from its source (the environment
   first where it may set it); 0 when out of memory. */
static int copy_texts(const sk_settings_text *in, sk_settings *out)
{
    return copy(&out->api_endpoint,
                in->env_api_endpoint != NULL ? in->env_api_endpoint
                : in->api_endpoint != NULL   ? in->api_endpoint
                                             : SMARTKEY_DEFAULT_API_ENDPOINT) &&
           copy(&out->api_key_source,
                in->env_api_key != NULL ? in->env_api_key : in->api_key) &&
           copy(&out->ca_file,
                in->env_ca_file != NULL ? in->env_ca_file : in->ca_file) &&
           copy(&out->ca_path, in->ca_path) &&
           copy(&out->proxy, in->proxy != NULL && strcmp(in->proxy, "none") != 0
                                 ? in->proxy
                                 : NULL) &&
           copy(&out->no_proxy, in->no_proxy);
}

/* Every endpoint list that may be used, now or once a variable goes, is
   https:// only; 0 with why naming its source. */
static int check_endpoint_sources(const sk_settings_text *in,
                                  const sk_settings *out, char *why,
                                  size_t why_len)
{
    if (in->env_api_endpoint != NULL
            ? !check_https(in->env_api_endpoint_name != NULL
                               ? in->env_api_endpoint_name
                               : SMARTKEY_ENV_API_ENDPOINT,
                           in->env_api_endpoint, why, why_len)
            : !check_https("api_endpoint in the provider's openssl.cnf "
                           "section",
                           out->api_endpoint, why, why_len))
        return 0;
    /* a list in openssl.cnf overridden by the environment must not hide
       an http:// node either: it would be used once the variable goes */
    if (in->api_endpoint != NULL &&
        !check_https("api_endpoint in the provider's openssl.cnf section",
                     in->api_endpoint, why, why_len))
        return 0;
    return 1;
}

int sk_settings_parse(const sk_settings_text *in, sk_settings *out, int *reason,
                      char *why, size_t why_len)
{
    static const sk_settings defaults = {
        .connect_timeout = SMARTKEY_DEFAULT_CONNECT_TIMEOUT,
        .request_timeout = SMARTKEY_DEFAULT_REQUEST_TIMEOUT,
        .retries = SMARTKEY_DEFAULT_RETRIES,
        .cache_lifetime = SMARTKEY_DEFAULT_CACHE_LIFETIME,
        .batch_max_size = SMARTKEY_DEFAULT_BATCH_MAX_SIZE,
        .batch_max_wait = SMARTKEY_DEFAULT_BATCH_MAX_WAIT,
        .approval_timeout = SMARTKEY_DEFAULT_APPROVAL_TIMEOUT,
    };

    *out = defaults;

    if (!copy_texts(in, out)) {
        *reason = SK_R_OUT_OF_MEMORY;
        snprintf(why, why_len, "reading the configuration");
        goto fail;
    }
    *reason = SK_R_BAD_CONFIGURATION;
    if (!check_endpoint_sources(in, out, why, why_len))
        goto fail;
    if (!check_env_precedence(in, why, why_len) ||
        !check_proxy(in->proxy, why, why_len))
        goto fail;
    if (!parse_seconds(SMARTKEY_CFG_CONNECT_TIMEOUT, in->connect_timeout,
                       &out->connect_timeout, why, why_len) ||
        !parse_seconds(SMARTKEY_CFG_REQUEST_TIMEOUT, in->request_timeout,
                       &out->request_timeout, why, why_len) ||
        !parse_seconds(SMARTKEY_CFG_CACHE_LIFETIME, in->cache_lifetime,
                       &out->cache_lifetime, why, why_len) ||
        !parse_count(SMARTKEY_CFG_RETRIES, in->retries, 100, &out->retries, why,
                     why_len) ||
        !parse_flag(SMARTKEY_CFG_INSECURE_SKIP_VERIFY, in->insecure_skip_verify,
                    &out->insecure_skip_verify, why, why_len) ||
        !parse_count(SMARTKEY_CFG_BATCH_MAX_SIZE, in->batch_max_size, 1000,
                     &out->batch_max_size, why, why_len) ||
        !parse_seconds(SMARTKEY_CFG_BATCH_MAX_WAIT, in->batch_max_wait,
                       &out->batch_max_wait, why, why_len) ||
        !parse_auth(in->env_auth != NULL ? in->env_auth : in->auth, &out->auth,
                    why, why_len) ||
        !parse_async(in->async, &out->async_off, why, why_len) ||
        !parse_ed25519_hash(in->ed25519_hash_alg, &out->ed25519_hash_alg, why,
                            why_len) ||
        !parse_choice(SMARTKEY_CFG_APPROVAL, " (or " SMARTKEY_ENV_APPROVAL ")",
                      in->env_approval != NULL ? in->env_approval
                                               : in->approval,
                      approval_choices, &out->approval_mode, why, why_len) ||
        !parse_seconds(SMARTKEY_CFG_APPROVAL_TIMEOUT,
                       in->env_approval_timeout != NULL
                           ? in->env_approval_timeout
                           : in->approval_timeout,
                       &out->approval_timeout, why, why_len))
        goto fail;
    return 1;

fail:
    sk_settings_clear(out);
    return 0;
}

char *sk_api_key_from_text(const char *text, size_t len, char *why,
                           size_t why_len)
{
    char *key;

    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
                       text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0) {
        snprintf(why, why_len, "is empty");
        return NULL;
    }
    /* The key goes into an HTTP header: a line break or a NUL would cut or
       smuggle headers. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c < 0x21 || c == 0x7f) {
            snprintf(why, why_len,
                     "is not one line of printable characters (character "
                     "%zu)",
                     i + 1);
            return NULL;
        }
    }
    key = OPENSSL_malloc(len + 1);
    if (key == NULL) {
        snprintf(why, why_len, "cannot be copied: out of memory");
        return NULL;
    }
    memcpy(key, text, len);
    key[len] = '\0';
    return key;
}

/* API keys are a few hundred bytes; anything much larger is not one. */
#define MAX_API_KEY_LEN 8192

/* Strips the trailing newline (and spaces) editors leave in key files. */
static void trim_right(char *text)
{
    size_t len = strlen(text);

    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
                       text[len - 1] == ' ' || text[len - 1] == '\t'))
        text[--len] = '\0';
}

#define FAIL(r, ...)                                                           \
    do {                                                                       \
        *reason = (r);                                                         \
        snprintf(why, why_len, __VA_ARGS__);                                   \
    } while (0)

/* The file must be a regular file that group and others cannot read. */
static int open_api_key_file(const char *path, int *reason, char *why,
                             size_t why_len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        FAIL(SK_R_MISSING_CONFIGURATION, "cannot open the API key file %s: %s",
             path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        FAIL(SK_R_BAD_CONFIGURATION,
             "the API key file %s is not a regular file", path);
        close(fd);
        return -1;
    }
    /* the key is a password: refuse it rather than use a leaked one */
    if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
        FAIL(SK_R_API_KEY_FILE_PERMISSIONS,
             "the API key file %s has mode %04o, so group or others can "
             "read it; run: chmod 600 %s",
             path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return -1;
    }
    return fd;
}

static char *read_api_key_file(const char *path, int *reason, char *why,
                               size_t why_len)
{
    char *key;
    ssize_t got;
    size_t len = 0;
    int fd = open_api_key_file(path, reason, why, why_len);

    if (fd < 0)
        return NULL;
    key = OPENSSL_malloc(MAX_API_KEY_LEN + 1);
    if (key == NULL) {
        close(fd);
        FAIL(SK_R_OUT_OF_MEMORY, "out of memory reading the API key file");
        return NULL;
    }
    while (len < MAX_API_KEY_LEN &&
           (got = read(fd, key + len, MAX_API_KEY_LEN - len)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            FAIL(SK_R_BAD_CONFIGURATION, "cannot read the API key file %s: %s",
                 path, strerror(errno));
            goto fail;
        }
        len += (size_t)got;
    }
    key[len] = '\0';
    trim_right(key);
    if (key[0] == '\0' || len == MAX_API_KEY_LEN) {
        FAIL(SK_R_BAD_CONFIGURATION, "the API key file %s is %s", path,
             key[0] == '\0' ? "empty" : "too large to hold an API key");
        goto fail;
    }
    close(fd);
    return key;

fail:
    OPENSSL_cleanse(key, MAX_API_KEY_LEN + 1);
    OPENSSL_free(key);
    close(fd);
    return NULL;
}

char *sk_api_key_resolve(const char *source, int *reason, char *why,
                         size_t why_len)
{
    const char *text = source;
    char text_why[128];
    char *key;

    if (strncmp(source, "file:", 5) == 0)
        return read_api_key_file(source + 5, reason, why, why_len);
    if (strncmp(source, "env:", 4) == 0) {
        text = secure_getenv(source + 4);
        if (text == NULL || *text == '\0') {
            FAIL(SK_R_MISSING_CONFIGURATION,
                 "%s = env:%.64s, but that environment variable is not set",
                 SMARTKEY_CFG_API_KEY, source + 4);
            return NULL;
        }
    }
    key = sk_api_key_from_text(text, strlen(text), text_why, sizeof(text_why));
    if (key == NULL)
        FAIL(SK_R_BAD_CONFIGURATION, "the API key (%s) %s",
             text == source ? "given literally" : "from the environment",
             text_why);
    return key;
}
