/*
 * smartkey-emulator: command line, state directory, certificates, API key,
 * start and clean stop.
 *
 * The state directory is the whole interface to tests and demos: they wait
 * for DIR/endpoint (written last, atomically) and read DIR/api-key and
 * DIR/ca.pem from it.
 *
 * Options (usage_text below; docs/local-server.md):
 *   --state-dir DIR [--listen HOST:PORT] [--http] [--cert FILE --key FILE]
 *   [--threads N] [--batch-workers N] [--token-lifetime SECONDS] [--persist]
 *   [--test-controls] [--latency-ms N] [--api-key KEY] [--log FILE]
 *   [--quiet] [--lenient] [--help]
 * --batch-workers N: the items of one batch request run on up to N threads
 * (default: online CPUs; 1 = one after another). Latency is still added once
 * per HTTP request, never per item.
 */
#include "emulator.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CERT_DAYS 3650

static const char usage_text[] =
    "Usage: smartkey-emulator --state-dir DIR [options]\n"
    "\n"
    "A local SmartKey (Fortanix DSM) compatible REST server for tests and "
    "demos.\n"
    "\n"
    "  --state-dir DIR         where ca.pem, api-key, pid and endpoint are "
    "written\n"
    "                          (created if missing; required)\n"
    "  --listen HOST:PORT      address to listen on (default 127.0.0.1:0; "
    "port 0\n"
    "                          picks a free port; IPv6 as [::1]:PORT)\n"
    "  --http                  plain HTTP instead of HTTPS (no ca.pem)\n"
    "  --cert FILE --key FILE  serve this PEM certificate and key instead "
    "of the\n"
    "                          generated ones (no ca.pem is written)\n"
    "  --threads N             worker threads (default: number of CPUs, at "
    "least 2)\n"
    "  --batch-workers N       run the items of one batch request on up to N "
    "threads\n"
    "                          (default: number of CPUs; 1 = one after "
    "another)\n"
    "  --token-lifetime SECS   idle lifetime of session tokens (default "
    "600)\n"
    "  --persist               keep security objects in DIR/state.json "
    "across\n"
    "                          restarts (transient keys are never saved)\n"
    "  --test-controls         enable the /_emulator/ test endpoints "
    "(counters,\n"
    "                          faults, latency, session expiry, approval "
    "switch)\n"
    "  --latency-ms N          delay every API answer by N milliseconds\n"
    "  --api-key KEY           accept this API key instead of a generated "
    "one\n"
    "                          (written to DIR/api-key)\n"
    "  --log FILE              append the request log to FILE instead of "
    "stderr\n"
    "  --quiet                 no request log\n"
    "  --lenient               accept unknown request fields, query "
    "parameters,\n"
    "                          enum spellings and form Content-Types "
    "(default:\n"
    "                          400 naming the field)\n"
    "  --help                  this text\n";

typedef struct settings {
    const char *state_dir;
    char *listen_host;
    unsigned short listen_port;
    int http;
    const char *cert_file;
    const char *key_file;
    unsigned threads;
    unsigned batch_workers;
    unsigned token_lifetime;
    int persist;
    int test_controls;
    unsigned latency_ms;
    const char *api_key;
    const char *log_file;
    int quiet;
} settings;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "smartkey-emulator: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static char *path_in(const char *dir, const char *name)
{
    char *path;

    if (asprintf(&path, "%s/%s", dir, name) < 0)
        abort();
    return path;
}

/* Writes a whole file through a temporary and rename, so that readers
   polling for it never see it half written. */
static int write_file(const char *dir, const char *name, const char *data,
                      size_t len, mode_t mode)
{
    char *path = path_in(dir, name), *tmp;
    int fd, ok = 0;

    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
        abort();
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd >= 0) {
        ok = write(fd, data, len) == (ssize_t)len;
        ok = fchmod(fd, mode) == 0 && ok;
        ok = close(fd) == 0 && ok;
        ok = ok && rename(tmp, path) == 0;
        if (!ok)
            unlink(tmp);
    }
    free(tmp);
    free(path);
    return ok;
}

static char *read_path(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1))) {
        if (fread(data, 1, (size_t)size, f) != (size_t)size) {
            free(data);
            data = NULL;
        } else {
            data[size] = '\0';
        }
    }
    fclose(f);
    return data;
}

static char *read_file(const char *dir, const char *name)
{
    char *path = path_in(dir, name), *data = read_path(path);

    free(path);
    return data;
}

static int file_exists(const char *dir, const char *name)
{
    char *path = path_in(dir, name);
    int exists = access(path, R_OK) == 0;

    free(path);
    return exists;
}

/* ---------------------------------------------------------------------- */
/* certificates                                                             */

static char *pem_of(int (*write)(BIO *, const void *), const void *obj)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long len;

    if (bio != NULL && write(bio, obj)) {
        len = BIO_get_mem_data(bio, &data);
        out = malloc((size_t)len + 1);
        if (out != NULL) {
            memcpy(out, data, (size_t)len);
            out[len] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

static int write_cert(BIO *bio, const void *cert)
{
    return PEM_write_bio_X509(bio, (X509 *)cert);
}

static int write_key(BIO *bio, const void *key)
{
    return PEM_write_bio_PrivateKey(bio, (EVP_PKEY *)key, NULL, NULL, 0, NULL,
                                    NULL);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static X509 *new_cert(EVP_PKEY *key, const char *common_name)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char serial[16];
    BIGNUM *bn;

    if (cert == NULL || name == NULL || RAND_bytes(serial, 16) != 1)
        goto fail;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert))) {
        BN_free(bn);
        goto fail;
    }
    BN_free(bn);
    if (!X509_set_version(cert, 2) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"smartkey", -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)common_name, -1, -1,
                                    0) ||
        !X509_set_subject_name(cert, name) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert),
                         (long)CERT_DAYS * 24 * 3600) ||
        !X509_set_pubkey(cert, key))
        goto fail;
    X509_NAME_free(name);
    return cert;
fail:
    X509_NAME_free(name);
    X509_free(cert);
    return NULL;
}

/* A private EC P-256 CA and a server certificate for every loopback name a
   client may use; tests trust DIR/ca.pem. */
static int generate_certificates(const char *dir)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *server_key = EVP_EC_gen("P-256");
    X509 *ca = NULL, *server = NULL;
    char *ca_pem = NULL, *ca_key_pem = NULL, *server_pem = NULL,
         *server_key_pem = NULL;
    int ok = 0;

    if (ca_key == NULL || server_key == NULL)
        goto done;
    ca = new_cert(ca_key, "smartkey-emulator local CA");
    if (ca == NULL || !X509_set_issuer_name(ca, X509_get_subject_name(ca)) ||
        !add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(ca, ca, NID_subject_key_identifier, "hash") ||
        !X509_sign(ca, ca_key, EVP_sha256()))
        goto done;
    server = new_cert(server_key, "localhost");
    if (server == NULL ||
        !X509_set_issuer_name(server, X509_get_subject_name(ca)) ||
        !add_ext(server, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(server, ca, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(server, ca, NID_ext_key_usage, "serverAuth") ||
        !add_ext(server, ca, NID_subject_alt_name,
                 "DNS:localhost,IP:127.0.0.1,IP:::1") ||
        !add_ext(server, ca, NID_subject_key_identifier, "hash") ||
        !add_ext(server, ca, NID_authority_key_identifier, "keyid:always") ||
        !X509_sign(server, ca_key, EVP_sha256()))
        goto done;
    ca_pem = pem_of(write_cert, ca);
    ca_key_pem = pem_of(write_key, ca_key);
    server_pem = pem_of(write_cert, server);
    server_key_pem = pem_of(write_key, server_key);
    /* ca.pem last: its presence means the set is complete */
    ok = ca_pem && ca_key_pem && server_pem && server_key_pem &&
         write_file(dir, "ca-key.pem", ca_key_pem, strlen(ca_key_pem), 0600) &&
         write_file(dir, "server-key.pem", server_key_pem,
                    strlen(server_key_pem), 0600) &&
         write_file(dir, "server.pem", server_pem, strlen(server_pem), 0644) &&
         write_file(dir, "ca.pem", ca_pem, strlen(ca_pem), 0644);
done:
    if (ca_key_pem)
        OPENSSL_cleanse(ca_key_pem, strlen(ca_key_pem));
    if (server_key_pem)
        OPENSSL_cleanse(server_key_pem, strlen(server_key_pem));
    free(ca_pem);
    free(ca_key_pem);
    free(server_pem);
    free(server_key_pem);
    X509_free(ca);
    X509_free(server);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(server_key);
    ERR_clear_error();
    return ok;
}

/* ---------------------------------------------------------------------- */
/* API key                                                                  */

/* The app id is the part before ':' in base64(app-uuid:secret). */
static int app_id_of(const char *api_key, char app_id[37])
{
    size_t len = 0;
    unsigned char *raw = em_b64_decode(api_key, &len);
    unsigned char *colon;
    int ok = 0;

    if (raw == NULL)
        return 0;
    colon = memchr(raw, ':', len);
    if (colon != NULL && colon - raw == 36) {
        memcpy(app_id, raw, 36);
        app_id[36] = '\0';
        ok = 1;
    }
    OPENSSL_clear_free(raw, len);
    return ok;
}

static char *load_or_create_api_key(const char *dir, const char *given,
                                    char app_id[37])
{
    char *key = NULL, *line;

    if (given != NULL) {
        key = strdup(given);
    } else if ((key = read_file(dir, "api-key")) != NULL) {
        key[strcspn(key, "\r\n")] = '\0';
        if (!app_id_of(key, app_id)) {
            free(key);
            key = NULL;
        }
    }
    if (key == NULL) {
        unsigned char secret[32];
        char *secret_b64, *plain;

        em_uuid(app_id);
        if (RAND_bytes(secret, sizeof(secret)) != 1)
            abort();
        secret_b64 = em_b64_encode(secret, sizeof(secret));
        if (asprintf(&plain, "%s:%s", app_id, secret_b64) < 0)
            abort();
        key = em_b64_encode((unsigned char *)plain, strlen(plain));
        OPENSSL_cleanse(plain, strlen(plain));
        OPENSSL_cleanse(secret_b64, strlen(secret_b64));
        OPENSSL_cleanse(secret, sizeof(secret));
        free(plain);
        free(secret_b64);
    }
    /* a key given on the command line need not have the app-id:secret
       shape; the app id is then made up */
    if (!app_id_of(key, app_id))
        em_uuid(app_id);
    if (asprintf(&line, "%s\n", key) < 0)
        abort();
    if (!write_file(dir, "api-key", line, strlen(line), 0600))
        die("cannot write %s/api-key", dir);
    OPENSSL_cleanse(line, strlen(line));
    free(line);
    return key;
}

/* ---------------------------------------------------------------------- */
/* command line                                                             */

static unsigned parse_unsigned(const char *text, const char *flag,
                               unsigned long max)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || text[0] == '-' || v > max)
        die("invalid value for %s", flag);
    return (unsigned)v;
}

static void parse_listen(settings *s, const char *arg)
{
    const char *colon;
    size_t host_len;

    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');

        if (close == NULL || close[1] != ':')
            die("--listen expects HOST:PORT, got %s", arg);
        s->listen_host = strndup(arg + 1, (size_t)(close - arg - 1));
        colon = close + 1;
    } else {
        colon = strrchr(arg, ':');
        if (colon == NULL)
            die("--listen expects HOST:PORT, got %s", arg);
        host_len = (size_t)(colon - arg);
        s->listen_host = strndup(arg, host_len);
    }
    s->listen_port =
        (unsigned short)parse_unsigned(colon + 1, "--listen", 65535);
}

enum {
    O_STATE = 1,
    O_LISTEN,
    O_HTTP,
    O_CERT,
    O_KEY,
    O_THREADS,
    O_BATCH_WORKERS,
    O_LIFETIME,
    O_PERSIST,
    O_CONTROLS,
    O_LATENCY,
    O_APIKEY,
    O_LOG,
    O_QUIET,
    O_LENIENT,
    O_HELP
};

static const struct option options[] = {
    {"state-dir", required_argument, NULL, O_STATE},
    {"listen", required_argument, NULL, O_LISTEN},
    {"http", no_argument, NULL, O_HTTP},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"threads", required_argument, NULL, O_THREADS},
    {"batch-workers", required_argument, NULL, O_BATCH_WORKERS},
    {"token-lifetime", required_argument, NULL, O_LIFETIME},
    {"persist", no_argument, NULL, O_PERSIST},
    {"test-controls", no_argument, NULL, O_CONTROLS},
    {"latency-ms", required_argument, NULL, O_LATENCY},
    {"api-key", required_argument, NULL, O_APIKEY},
    {"log", required_argument, NULL, O_LOG},
    {"quiet", no_argument, NULL, O_QUIET},
    {"lenient", no_argument, NULL, O_LENIENT},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0}};

/* A worker count from 1 to 256 for FLAG; dies otherwise. */
static unsigned parse_count(const char *text, const char *flag)
{
    unsigned n = parse_unsigned(text, flag, 256);

    if (n == 0)
        die("%s must be at least 1", flag);
    return n;
}

/* Sets the option without an argument C; returns 0 if C takes one. */
static int apply_flag(settings *s, int c)
{
    switch (c) {
    case O_HTTP:
        s->http = 1;
        return 1;
    case O_PERSIST:
        s->persist = 1;
        return 1;
    case O_CONTROLS:
        s->test_controls = 1;
        return 1;
    case O_QUIET:
        s->quiet = 1;
        return 1;
    case O_LENIENT:
        em_lenient = 1;
        return 1;
    case O_HELP:
        fputs(usage_text, stdout);
        exit(0);
    default:
        return 0;
    }
}

/* Sets option C from its argument ARG; usage and exit 2 if C is unknown. */
static void apply_option(settings *s, int c, char *arg)
{
    switch (c) {
    case O_STATE:
        s->state_dir = arg;
        break;
    case O_LISTEN:
        free(s->listen_host);
        parse_listen(s, arg);
        break;
    case O_CERT:
        s->cert_file = arg;
        break;
    case O_KEY:
        s->key_file = arg;
        break;
    case O_THREADS:
        s->threads = parse_count(arg, "--threads");
        break;
    case O_BATCH_WORKERS:
        s->batch_workers = parse_count(arg, "--batch-workers");
        break;
    case O_LIFETIME:
        s->token_lifetime =
            parse_unsigned(arg, "--token-lifetime", 86400 * 365);
        break;
    case O_LATENCY:
        s->latency_ms = parse_unsigned(arg, "--latency-ms", 600000);
        break;
    case O_APIKEY:
        s->api_key = arg;
        break;
    case O_LOG:
        s->log_file = arg;
        break;
    default:
        if (apply_flag(s, c))
            break;
        fputs(usage_text, stderr);
        exit(2);
    }
}

static void parse_args(settings *s, int argc, char **argv)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int c;

    memset(s, 0, sizeof(*s));
    s->threads = cpus > 2 ? (unsigned)cpus : 2;
    s->batch_workers = cpus > 1 ? (unsigned)cpus : 1;
    s->token_lifetime = 600;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1)
        apply_option(s, c, optarg);
    if (optind < argc)
        die("unexpected argument %s (see --help)", argv[optind]);
    if (s->state_dir == NULL)
        die("%s is required (see --help)", "--state-dir");
    if ((s->cert_file == NULL) != (s->key_file == NULL))
        die("%s: --cert and --key go together", "--cert/--key");
    if (s->listen_host == NULL)
        s->listen_host = strdup("127.0.0.1");
}

/* ---------------------------------------------------------------------- */

/* Reads the PEM certificate and key to serve (given, or generated in the
   state directory) into *CERT and *KEY; leaves them NULL with --http. */
static void load_certificates(const settings *s, char **cert, char **key)
{
    if (s->http)
        return;
    if (s->cert_file != NULL) {
        *cert = read_path(s->cert_file);
        *key = read_path(s->key_file);
        if (*cert == NULL || *key == NULL)
            die("cannot read %s", *cert ? s->key_file : s->cert_file);
        return;
    }
    if (!(file_exists(s->state_dir, "ca.pem") &&
          file_exists(s->state_dir, "server.pem") &&
          file_exists(s->state_dir, "server-key.pem")) &&
        !generate_certificates(s->state_dir))
        die("cannot create certificates in %s", s->state_dir);
    *cert = read_file(s->state_dir, "server.pem");
    *key = read_file(s->state_dir, "server-key.pem");
    if (*cert == NULL || *key == NULL)
        die("cannot read the certificates in %s", s->state_dir);
}

/* Opens the request log named by the settings (NULL with --quiet). */
static FILE *open_log(const settings *s)
{
    FILE *log = stderr;

    if (s->quiet) {
        log = NULL;
    } else if (s->log_file != NULL) {
        log = fopen(s->log_file, "a");
        if (log == NULL)
            die("cannot open the log file %s", s->log_file);
    }
    if (log != NULL)
        setvbuf(log, NULL, _IOLBF, 0);
    return log;
}

/* Blocks SIGTERM and SIGINT (left to sigwait) and ignores SIGPIPE. */
static void block_stop_signals(sigset_t *stop_signals)
{
    /* Blocked before any thread starts so that only sigwait sees them. */
    sigemptyset(stop_signals);
    sigaddset(stop_signals, SIGTERM);
    sigaddset(stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Starts the batch workers and the HTTP server; returns the bound port. */
static unsigned short start_server(const settings *s, char *cert, char *key,
                                   const char *api_key, const char *app_id,
                                   FILE *log)
{
    em_server_options opts;
    unsigned short port;

    memset(&opts, 0, sizeof(opts));
    opts.listen_host = s->listen_host;
    opts.listen_port = s->listen_port;
    opts.use_tls = !s->http;
    opts.cert_pem = cert;
    opts.key_pem = key;
    opts.threads = s->threads;
    opts.token_lifetime = s->token_lifetime;
    opts.test_controls = s->test_controls;
    opts.latency_ms = s->latency_ms;
    opts.api_key = api_key;
    opts.app_id = app_id;
    opts.log = log;
    /* after the signal mask: the helpers must not take SIGTERM */
    if (!em_batch_start(s->batch_workers))
        die("cannot start %u batch workers", s->batch_workers);
    port = em_http_start(&opts);
    if (port == 0)
        die("cannot listen on %s port %u (see the messages above)",
            s->listen_host, (unsigned)s->listen_port);
    return port;
}

/* Writes DIR/pid, then DIR/endpoint (the ready signal), and says so. */
static void announce(const settings *s, unsigned short port)
{
    char line[128];

    snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    if (!write_file(s->state_dir, "pid", line, strlen(line), 0644))
        die("cannot write %s/pid", s->state_dir);
    if (strchr(s->listen_host, ':') != NULL)
        snprintf(line, sizeof(line), "%s://[%s]:%u\n",
                 s->http ? "http" : "https", s->listen_host, (unsigned)port);
    else
        snprintf(line, sizeof(line), "%s://%s:%u\n", s->http ? "http" : "https",
                 s->listen_host, (unsigned)port);
    if (!write_file(s->state_dir, "endpoint", line, strlen(line), 0644))
        die("cannot write %s/endpoint", s->state_dir);
    if (!s->quiet)
        fprintf(stderr, "smartkey-emulator: listening on %s", line);
}

int main(int argc, char **argv)
{
    settings s;
    char app_id[37] = "", err[512] = "", *api_key, *cert = NULL, *key = NULL,
         *state_path = NULL, *endpoint_path, *pid_path;
    sigset_t stop_signals;
    FILE *log;
    int sig = 0;

    parse_args(&s, argc, argv);
    if (mkdir(s.state_dir, 0700) != 0 && errno != EEXIST)
        die("cannot create the state directory %s", s.state_dir);
    endpoint_path = path_in(s.state_dir, "endpoint");
    pid_path = path_in(s.state_dir, "pid");
    /* a stale endpoint would tell waiting clients we are ready */
    unlink(endpoint_path);

    load_certificates(&s, &cert, &key);
    api_key = load_or_create_api_key(s.state_dir, s.api_key, app_id);
    if (s.persist)
        state_path = path_in(s.state_dir, "state.json");
    if (!em_store_init(app_id, state_path, err, sizeof(err)))
        die("cannot load the saved state: %s", err);
    log = open_log(&s);
    block_stop_signals(&stop_signals);
    announce(&s, start_server(&s, cert, key, api_key, app_id, log));

    while (sigwait(&stop_signals, &sig) != 0)
        ;
    unlink(endpoint_path);
    em_http_stop();
    em_batch_stop();
    em_store_shutdown();
    unlink(pid_path);
    if (!s.quiet)
        fprintf(stderr, "smartkey-emulator: stopped (signal %d)\n", sig);
    if (log != NULL && log != stderr)
        fclose(log);
    if (key != NULL)
        OPENSSL_cleanse(key, strlen(key));
    OPENSSL_cleanse(api_key, strlen(api_key));
    free(api_key);
    free(cert);
    free(key);
    free(state_path);
    free(endpoint_path);
    free(pid_path);
    free(s.listen_host);
    return 0;
}
