/*
 * Test helpers that talk to the smartkey-emulator started by
 * with-emulator.sh, independently of the client under test (plain libcurl):
 * test controls (counters, faults, session expiry) and key creation.
 */
#ifndef SMARTKEY_TEST_EMU_H
#define SMARTKEY_TEST_EMU_H

#include <jansson.h>
#include <openssl/evp.h>

typedef struct emu_env {
    const char *endpoint;
    const char *ca_file;
    char api_key[512];
} emu_env;

/* Reads SMARTKEY_TEST_*; returns 0 (with a message on stderr) when the
   program was not started by with-emulator.sh. */
int emu_init(emu_env *env);

/* An answer's body as it arrives: emu_on_body, a libcurl write function
   (CURLOPT_WRITEFUNCTION, CURLOPT_WRITEDATA &buffer), appends to data
   (malloc'ed, NUL-terminated; free it). */
typedef struct emu_buffer {
    char *data;
    size_t len;
} emu_buffer;
size_t emu_on_body(char *data, size_t size, size_t n, void *arg);

/* Runs fn(arg) in count threads at once (count <= 64) and joins them;
   each returns its failures as a (void *)long. Returns their sum, or -1
   when a thread could not start. */
long emu_run_threads(int count, void *(*fn)(void *), void *arg);

/*
 * One request. authorization: NULL (none) or a full header value such as
 * "Basic ...". body may be NULL. Returns the HTTP status (0 on transport
 * failure); *answer (if not NULL) gets the parsed JSON answer or NULL.
 */
long emu_request(const emu_env *env, const char *method, const char *path,
                 const char *authorization, const char *body, json_t **answer);

/* Creates a key with the app API key (POST /crypto/v1/keys); writes its
   kid. Returns 1 on 201. */
int emu_create_key(const emu_env *env, const char *json_request, char kid[37]);

void emu_reset_counters(const emu_env *env);
/* A request count, e.g. "POST /sys/v1/session/auth"; -1 on failure. */
long emu_request_count(const emu_env *env, const char *key);
/* A top-level counter: "connections", "tls_handshakes", "exports"... */
long emu_counter(const emu_env *env, const char *name);
/* POST /_emulator/faults with rule (JSON text). Returns 1 on 2xx. */
int emu_add_fault(const emu_env *env, const char *rule);
void emu_clear_faults(const emu_env *env);
void emu_expire_sessions(const emu_env *env);
int emu_set_approval(const emu_env *env, int required);

/*
 * The first key OSSL_STORE yields for uri (e.g. "smartkey:name=k") in
 * libctx with the property query propq (both may be NULL); NULL when none.
 */
EVP_PKEY *emu_load_pkey(OSSL_LIB_CTX *libctx, const char *propq,
                        const char *uri);
/* The same as emu_load_pkey (no property query), the store told to expect
   a private key (OSSL_STORE_expect). */
EVP_PKEY *emu_load_private_key(OSSL_LIB_CTX *libctx, const char *uri);
/* The same as emu_load_pkey, also taking a public key (a public-only key,
   ;type=public). */
EVP_PKEY *emu_load_any_key(OSSL_LIB_CTX *libctx, const char *propq,
                           const char *uri);

/* A library context with the providers of module_dir loaded: default
   then smartkey, or smartkey first; NULL (errors printed) on failure. */
OSSL_LIB_CTX *emu_provider_libctx(const char *module_dir, int smartkey_first);

/* A small file's bytes: 1 when it has 1 to cap - 1 bytes. */
int emu_read_file(const char *path, unsigned char *buf, size_t cap,
                  size_t *len);

/* RSA-OAEP (SHA-256 label and MGF1 hash) of in under pkey, locally;
 *out_len holds the room in out. Returns 1 on success. */
int emu_oaep_sha256_encrypt(EVP_PKEY *pkey, const unsigned char *in,
                            size_t in_len, unsigned char *out, size_t *out_len);

#endif
