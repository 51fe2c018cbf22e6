/*
 * emulator-bench: requests/s and p50/p99 latency of smartkey-emulator for
 * the two calls the provider makes most: ECDSA P-256 sign (hash form) and
 * RSA-2048 OAEP-SHA256 decrypt, over keep-alive HTTPS with 1 and 8 client
 * threads (one curl easy handle and one connection per thread).
 *
 * It prints numbers and asserts nothing about them; it exits non-zero only
 * when set-up fails or a request does not answer 200.
 *
 * Usage: emulator-bench --state-dir DIR [--duration SECONDS | --count N]
 *                       [--threads 1,8]
 * DIR is the emulator's state directory (endpoint, api-key, ca.pem).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#define MAX_THREADS 64

struct bench_target {
    char endpoint[512];
    char ca_file[4096];       /* "" for plain HTTP */
    char authorization[1024]; /* "Authorization: Bearer ..." */
};

/* One measured call: a fixed path and body, sent over and over. */
struct bench_call {
    const char *label;
    const char *path;
    char *body;
};

struct bench_run {
    const struct bench_target *target;
    const struct bench_call *call;
    long requests;   /* per thread; 0 = until the deadline */
    double deadline; /* monotonic seconds; 0 = no deadline */
};

struct bench_thread {
    pthread_t thread;
    const struct bench_run *run;
    double *latencies; /* seconds */
    size_t count;
    size_t capacity;
    long errors;
    long last_status;
};

struct response_buffer {
    char *data;
    size_t len;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct response_buffer *buf = userdata;
    size_t n = size * nmemb;
    char *grown = realloc(buf->data, buf->len + n + 1);

    if (grown == NULL)
        return 0;
    buf->data = grown;
    memcpy(buf->data + buf->len, ptr, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return n;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    return size * nmemb;
}

/* Reads the first line of DIR/NAME into out; 0 when absent. */
static int read_state_line(const char *dir, const char *name, char *out,
                           size_t outlen)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(out, (int)outlen, f) == NULL) {
        fclose(f);
        return 0;
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return 1;
}

static CURL *new_handle(const struct bench_target *target,
                        struct curl_slist **headers, const char *authorization)
{
    CURL *curl = curl_easy_init();

    if (curl == NULL)
        return NULL;
    *headers = curl_slist_append(NULL, "Content-Type: application/json");
    *headers = curl_slist_append(*headers, authorization);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    if (target->ca_file[0] != '\0')
        curl_easy_setopt(curl, CURLOPT_CAINFO, target->ca_file);
    return curl;
}

/*
 * One set-up call with its own handle; returns the parsed JSON body (or
 * NULL) and the HTTP status. Set-up is not measured.
 */
static json_t *setup_call(const struct bench_target *target,
                          const char *authorization, const char *method,
                          const char *path, const char *body, long *status)
{
    struct curl_slist *headers = NULL;
    struct response_buffer buf = {NULL, 0};
    char url[1024];
    json_t *json = NULL;
    CURL *curl = new_handle(target, &headers, authorization);

    *status = 0;
    if (curl == NULL)
        return NULL;
    snprintf(url, sizeof(url), "%s%s", target->endpoint, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
        if (buf.data != NULL)
            json = json_loads(buf.data, 0, NULL);
    }
    free(buf.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return json;
}

/* Finds the key by name or creates it; returns its kid (malloc'd). */
static char *find_or_create_key(const struct bench_target *target,
                                const char *name, const char *create_body)
{
    long status;
    char *body = NULL;
    char *kid = NULL;
    json_t *key;

    if (asprintf(&body, "{\"name\":\"%s\"}", name) < 0)
        return NULL;
    key = setup_call(target, target->authorization, "POST",
                     "/crypto/v1/keys/info", body, &status);
    free(body);
    if (status == 404) {
        json_decref(key);
        key = setup_call(target, target->authorization, "POST",
                         "/crypto/v1/keys", create_body, &status);
    }
    if (key != NULL && json_string_value(json_object_get(key, "kid")) != NULL)
        kid = strdup(json_string_value(json_object_get(key, "kid")));
    else
        fprintf(stderr, "emulator-bench: cannot find or create %s (HTTP %ld)\n",
                name, status);
    json_decref(key);
    return kid;
}

static char *base64_of(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static int record_latency(struct bench_thread *t, double seconds)
{
    if (t->count == t->capacity) {
        size_t capacity = t->capacity ? t->capacity * 2 : 1024;
        double *grown = realloc(t->latencies, capacity * sizeof(*grown));

        if (grown == NULL)
            return 0;
        t->latencies = grown;
        t->capacity = capacity;
    }
    t->latencies[t->count++] = seconds;
    return 1;
}

static void *client_thread(void *arg)
{
    struct bench_thread *t = arg;
    const struct bench_run *run = t->run;
    struct curl_slist *headers = NULL;
    char url[1024];
    CURL *curl = new_handle(run->target, &headers, run->target->authorization);

    if (curl == NULL) {
        t->errors++;
        return NULL;
    }
    snprintf(url, sizeof(url), "%s%s", run->target->endpoint, run->call->path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, run->call->body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    for (long i = 0; run->requests == 0 || i < run->requests; i++) {
        double start = now_seconds();
        long status = 0;

        if (run->deadline != 0 && start >= run->deadline)
            break;
        if (curl_easy_perform(curl) == CURLE_OK)
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) {
            t->errors++;
            t->last_status = status;
            continue;
        }
        if (!record_latency(t, now_seconds() - start))
            t->errors++;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return NULL;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Runs one call with `threads` clients and prints a result line. */
static long measure(const struct bench_target *target,
                    const struct bench_call *call, int threads, long count,
                    double duration)
{
    struct bench_thread clients[MAX_THREADS];
    struct bench_run run = {target, call, 0, 0};
    size_t total = 0, k = 0;
    long errors = 0, last_status = 0;
    double *all, started, elapsed;

    if (count > 0)
        run.requests = (count + threads - 1) / threads;
    memset(clients, 0, sizeof(clients));
    started = now_seconds();
    if (count == 0)
        run.deadline = started + duration;
    for (int i = 0; i < threads; i++) {
        clients[i].run = &run;
        if (pthread_create(&clients[i].thread, NULL, client_thread,
                           &clients[i]) != 0) {
            fprintf(stderr, "emulator-bench: pthread_create failed\n");
            exit(1);
        }
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(clients[i].thread, NULL);
        total += clients[i].count;
        errors += clients[i].errors;
        if (clients[i].last_status != 0)
            last_status = clients[i].last_status;
    }
    elapsed = now_seconds() - started;

    all = malloc((total ? total : 1) * sizeof(*all));
    if (all == NULL)
        exit(1);
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, clients[i].latencies, clients[i].count * sizeof(*all));
        k += clients[i].count;
        free(clients[i].latencies);
    }
    qsort(all, total, sizeof(*all), compare_doubles);
    printf("%-32s threads %2d  requests %7zu  errors %ld  %9.1f req/s"
           "  p50 %7.2f ms  p99 %7.2f ms\n",
           call->label, threads, total, errors,
           elapsed > 0 ? (double)total / elapsed : 0.0,
           total ? all[total / 2] * 1e3 : 0.0,
           total ? all[(size_t)((double)(total - 1) * 0.99)] * 1e3 : 0.0);
    if (errors != 0)
        fprintf(stderr, "emulator-bench: %ld failed requests (last HTTP %ld)\n",
                errors, last_status);
    free(all);
    fflush(stdout);
    return errors;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: emulator-bench --state-dir DIR [--duration SECONDS | "
            "--count N] [--threads 1,8]\n"
            "  --state-dir DIR   the emulator's state directory (endpoint, "
            "api-key, ca.pem)\n"
            "  --duration S      measure each case for S seconds (default 5)\n"
            "  --count N         measure each case for N requests instead\n"
            "  --threads LIST    comma-separated client thread counts "
            "(default 1,8)\n");
}

/* What the command line asks for. */
struct bench_options {
    const char *state_dir;
    char thread_list[256];
    double duration;
    long count;
};

/* Parses the command line into O; returns -1 to go on, else the exit
   status (0 after --help, 2 after a usage error). */
static int parse_options(int argc, char **argv, struct bench_options *o)
{
    static const struct option options[] = {
        {"state-dir", required_argument, NULL, 's'},
        {"duration", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    o->state_dir = NULL;
    snprintf(o->thread_list, sizeof(o->thread_list), "%s", "1,8");
    o->duration = 5;
    o->count = 0;
    while ((opt = getopt_long(argc, argv, "s:d:c:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            o->state_dir = optarg;
            break;
        case 'd':
            o->duration = strtod(optarg, NULL);
            break;
        case 'c':
            o->count = strtol(optarg, NULL, 10);
            break;
        case 't':
            snprintf(o->thread_list, sizeof(o->thread_list), "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o->state_dir == NULL || o->duration <= 0 || o->count < 0) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Reads the endpoint and API key from STATE_DIR, initialises curl and
   signs in, filling TARGET; returns 0 on failure (after a message). */
static int open_target(const char *state_dir, struct bench_target *target)
{
    char api_key[1024], basic[1100];
    long status;
    json_t *session;

    memset(target, 0, sizeof(*target));
    if (!read_state_line(state_dir, "endpoint", target->endpoint,
                         sizeof(target->endpoint)) ||
        !read_state_line(state_dir, "api-key", api_key, sizeof(api_key))) {
        fprintf(stderr, "emulator-bench: no endpoint/api-key in %s\n",
                state_dir);
        return 0;
    }
    if (strncmp(target->endpoint, "https:", 6) == 0)
        snprintf(target->ca_file, sizeof(target->ca_file), "%s/ca.pem",
                 state_dir);

    curl_global_init(CURL_GLOBAL_DEFAULT);

    snprintf(basic, sizeof(basic), "Authorization: Basic %s", api_key);
    session =
        setup_call(target, basic, "POST", "/sys/v1/session/auth", "", &status);
    if (json_string_value(json_object_get(session, "access_token")) == NULL) {
        fprintf(stderr, "emulator-bench: authentication failed (HTTP %ld)\n",
                status);
        return 0;
    }
    snprintf(target->authorization, sizeof(target->authorization),
             "Authorization: Bearer %s",
             json_string_value(json_object_get(session, "access_token")));
    json_decref(session);
    return 1;
}

/* Builds the body of the RSA-OAEP decrypt call from a ciphertext made
   once by the server (only decryption is measured); 0 on failure. */
static int prepare_decrypt(const struct bench_target *target,
                           const char *rsa_kid, const char *plain_b64,
                           struct bench_call *call)
{
    char *body = NULL;
    long status;
    json_t *encrypted;

    if (asprintf(&body,
                 "{\"key\":{\"kid\":\"%s\"},\"alg\":\"RSA\",\"plain\":\"%s\","
                 "\"mode\":{\"OAEP\":{\"mgf\":{\"mgf1\":{\"hash\":"
                 "\"SHA256\"}}}}}",
                 rsa_kid, plain_b64) < 0)
        return 0;
    encrypted = setup_call(target, target->authorization, "POST",
                           "/crypto/v1/encrypt", body, &status);
    free(body);
    if (json_string_value(json_object_get(encrypted, "cipher")) == NULL) {
        fprintf(stderr, "emulator-bench: encrypt failed (HTTP %ld)\n", status);
        return 0;
    }
    if (asprintf(&call->body,
                 "{\"key\":{\"kid\":\"%s\"},\"alg\":\"RSA\",\"cipher\":\"%s\","
                 "\"mode\":{\"OAEP\":{\"mgf\":{\"mgf1\":{\"hash\":"
                 "\"SHA256\"}}}}}",
                 rsa_kid,
                 json_string_value(json_object_get(encrypted, "cipher"))) < 0)
        return 0;
    json_decref(encrypted);
    return 1;
}

/* Measures each call with each thread count of O's list; returns the
   number of failed requests, or -1 after a bad thread count. */
static long run_all(const struct bench_target *target,
                    const struct bench_call *calls[2],
                    const struct bench_options *o)
{
    long failures = 0;

    printf("emulator-bench: %s, %s\n", target->endpoint,
           o->count > 0 ? "fixed request count" : "fixed duration");
    for (int c = 0; c < 2; c++) {
        char list[256], *save = NULL;

        snprintf(list, sizeof(list), "%s", o->thread_list);
        for (char *item = strtok_r(list, ",", &save); item != NULL;
             item = strtok_r(NULL, ",", &save)) {
            int threads = atoi(item);

            if (threads < 1 || threads > MAX_THREADS) {
                fprintf(stderr, "emulator-bench: bad thread count %s\n", item);
                return -1;
            }
            failures +=
                measure(target, calls[c], threads, o->count, o->duration);
        }
    }
    return failures;
}

int main(int argc, char **argv)
{
    struct bench_options o;
    long failures;
    struct bench_target target;
    struct bench_call sign_call = {"sign ECDSA P-256 (hash SHA256)",
                                   "/crypto/v1/sign", NULL};
    struct bench_call decrypt_call = {"decrypt RSA-2048 OAEP SHA256",
                                      "/crypto/v1/decrypt", NULL};
    const struct bench_call *calls[2] = {&sign_call, &decrypt_call};
    unsigned char digest[32];
    char *hash_b64, *ec_kid, *rsa_kid;
    int rc = parse_options(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (!open_target(o.state_dir, &target))
        return 1;
    ec_kid = find_or_create_key(
        &target, "bench-ec-p256",
        "{\"name\":\"bench-ec-p256\",\"obj_type\":\"EC\","
        "\"elliptic_curve\":\"NistP256\",\"key_ops\":[\"SIGN\",\"VERIFY\"]}");
    rsa_kid = find_or_create_key(
        &target, "bench-rsa-2048",
        "{\"name\":\"bench-rsa-2048\",\"obj_type\":\"RSA\",\"key_size\":2048,"
        "\"key_ops\":[\"ENCRYPT\",\"DECRYPT\"]}");
    if (ec_kid == NULL || rsa_kid == NULL)
        return 1;

    EVP_Digest("emulator bench", 14, digest, NULL, EVP_sha256(), NULL);
    hash_b64 = base64_of(digest, sizeof(digest));
    if (hash_b64 == NULL ||
        asprintf(&sign_call.body,
                 "{\"key\":{\"kid\":\"%s\"},\"hash_alg\":\"SHA256\","
                 "\"hash\":\"%s\"}",
                 ec_kid, hash_b64) < 0)
        return 1;
    if (!prepare_decrypt(&target, rsa_kid, hash_b64, &decrypt_call))
        return 1;

    failures = run_all(&target, calls, &o);
    if (failures < 0)
        return 2;
    free(sign_call.body);
    free(decrypt_call.body);
    free(hash_b64);
    free(ec_kid);
    free(rsa_kid);
    curl_global_cleanup();
    return failures == 0 ? 0 : 1;
}
