/*
 * smartkey: an OpenSSL 3 provider for keys held in SmartKey (Fortanix DSM).
 *
 * Every name a user or an application may type or set: the provider name,
 * the URI syntax, openssl.cnf parameters, environment variables and, in later
 * versions, the operation parameters (-pkeyopt / EVP_PKEY_CTX_set_params).
 * See provider-smartkey(7) (docs/provider-smartkey.7.md).
 */
#ifndef SMARTKEY_SMARTKEY_H
#define SMARTKEY_SMARTKEY_H

/* Name for -provider, OSSL_PROVIDER_load() and property queries
   ("?provider=smartkey"). */
#define SMARTKEY_PROVIDER_NAME "smartkey"

/*
 * Key URIs.
 *
 *   smartkey:name=<percent-encoded name>[;type=private|public|cert]
 *   smartkey:kid=<uuid>[;type=private|public|cert]
 *   smartkey://name=...        same attributes; a file in the current
 *                              directory can never shadow this form
 *   smartkey:                  every key and certificate the app can see
 *                              (storeutl -keys, storeutl -certs)
 *
 * Attribute values are percent-decoded; ';' and '%' inside a name must be
 * written %3B and %25. type=public yields a public-key object (as -pubin
 * expects); without it a key with a private half yields a private-key
 * handle whose material stays in SmartKey. type=cert yields a certificate:
 * the CERTIFICATE object named, or, when the name is a key's, the
 * certificate held in SmartKey whose public key is that key's (the one
 * valid longest when there are several); an application that asks for a
 * certificate (x509 -in, s_server -cert) gets the same without type=cert.
 */
#define SMARTKEY_URI_SCHEME    "smartkey"
#define SMARTKEY_URI_ATTR_NAME "name"
#define SMARTKEY_URI_ATTR_KID  "kid"
#define SMARTKEY_URI_ATTR_TYPE "type"

/*
 * Parameters of the provider's openssl.cnf section, e.g.
 *
 *   [smartkey_sect]
 *   module = smartkey.so
 *   activate = 1
 *   api_endpoint = https://amer.smartkey.io
 *   api_key = file:/etc/smartkey/api-key
 *
 * api_key takes a literal, file:PATH (the file must not be readable by group
 * or others) or env:NAME. Timeouts are in seconds (decimals allowed).
 *
 * api_endpoint may list the nodes of a SmartKey cluster, separated by commas
 * and/or spaces ("https://a.example, https://b.example"): a node that cannot
 * be reached (connection refused or timed out, 502/503/504) is skipped for
 * 30 seconds and the next node answers instead. The session token is shared
 * by the nodes; a node that does not know it answers 401 and the provider
 * re-authenticates there transparently.
 */
#define SMARTKEY_CFG_API_ENDPOINT    "api_endpoint"
#define SMARTKEY_CFG_API_KEY         "api_key"
#define SMARTKEY_CFG_CA_FILE         "ca_file"
#define SMARTKEY_CFG_CA_PATH         "ca_path"
#define SMARTKEY_CFG_CONNECT_TIMEOUT "connect_timeout"
#define SMARTKEY_CFG_REQUEST_TIMEOUT "request_timeout"
#define SMARTKEY_CFG_RETRIES         "retries"
#define SMARTKEY_CFG_CACHE_LIFETIME  "cache_lifetime"
#define SMARTKEY_CFG_DEBUG           "debug"
/* "yes" turns off the verification of SmartKey's TLS certificate (tests
   against a server with a throw-away certificate only: a man in the middle
   then reads the API key). Never implied; loudly warned about on stderr. */
#define SMARTKEY_CFG_INSECURE_SKIP_VERIFY "insecure_skip_verify"
/*
 * Batching (off by default): when several threads sign or decrypt at once,
 * e.g. the workers of a busy TLS server, their operations share one
 * request to SmartKey's batch endpoints. batch_max_size is the most
 * operations per request (0 or 1: off; at most 1000); batch_max_wait the
 * longest, in seconds, an operation waits for others (default 0.001; 0:
 * no wait, a batch takes whatever has queued). A batch also leaves once no
 * other operation has joined it for a quarter of batch_max_wait. An
 * operation waits only while another one of its kind is on the wire, so a
 * lone caller is never delayed; each operation fails or succeeds alone.
 */
#define SMARTKEY_CFG_BATCH_MAX_SIZE "batch_max_size"
#define SMARTKEY_CFG_BATCH_MAX_WAIT "batch_max_wait"
/*
 * How requests authenticate:
 *   "auto" (default)  the first two requests of a process carry the API
 *                     key (SmartKey's session-less mode), later ones a
 *                     Bearer session made on the third: a one-shot command
 *                     never pays for a session, a long-running process
 *                     gets one. A 401 to the API key switches to a session.
 *   "session"         a session from the first request on.
 *   "api-key"         the API key on every request; no session.
 * Calls on transient keys always use a session (they live in one).
 */
#define SMARTKEY_CFG_AUTH "auth"
/*
 * The proxy to SmartKey. By default none: libcurl's environment variables
 * (https_proxy, HTTPS_PROXY, ALL_PROXY, NO_PROXY) are ignored, so the
 * application's environment cannot redirect SmartKey traffic.
 *   proxy = http://proxy.example:3128   this proxy (http://, https://,
 *                                       socks5:// or socks5h://)
 *   proxy = env                         libcurl's environment variables
 *   no_proxy = host1,host2              hosts reached directly (libcurl's
 *                                       NOPROXY syntax)
 */
#define SMARTKEY_CFG_PROXY    "proxy"
#define SMARTKEY_CFG_NO_PROXY "no_proxy"
/*
 * "yes" lets SMARTKEY_API_ENDPOINT, FORTANIX_API_ENDPOINT and
 * SMARTKEY_CA_FILE replace api_endpoint and ca_file even though the API key
 * comes from this section (a literal, file: or env:). Without it they apply
 * only when the API key comes from SMARTKEY_API_KEY or FORTANIX_API_KEY
 * too; otherwise using the provider fails with a configuration error, so
 * the environment cannot send a protected key to another server.
 */
#define SMARTKEY_CFG_ENV_OVERRIDES "env_overrides"
/*
 * Private-key operations inside an OpenSSL ASYNC job (SSL_MODE_ASYNC:
 * HAProxy's ssl-mode-async, openssl s_server -async):
 *   "auto" (default)  the request goes out from the provider's I/O thread
 *                     and the job pauses on a wait fd until SmartKey
 *                     answers: the application's thread serves other
 *                     connections meanwhile.
 *   "off"             the job blocks its thread for the round trip, as
 *                     outside a job.
 * Outside a job nothing changes. No environment variable.
 */
#define SMARTKEY_CFG_ASYNC "async"
/*
 * The hash_alg sent with an Ed25519 signature request. SmartKey's sign
 * request requires one even though pure EdDSA hashes the message with
 * SHA-512 inside the signature; its data model does not say which value an
 * Ed25519 key expects, and Fortanix's clients send SHA512
 * (docs/smartkey-api.md §4.3, §8):
 *   "SHA512" (default), "SHA384", "SHA256", "SHA3_512", "SHA3_384",
 *   "SHA3_256"   SmartKey's spelling of the digest
 * No environment variable.
 */
#define SMARTKEY_CFG_ED25519_HASH_ALG "ed25519_hash_alg"

/*
 * Quorum approval (docs/approval.md): what to do when SmartKey answers
 * that an operation on a key needs the approval of a quorum (the key's
 * group policy protects crypto operations):
 *   "fail" (default)  the operation fails; the error says how to ask.
 *   "request"         an approval request is created in SmartKey with a
 *                     description of the operation for the approvers; the
 *                     operation fails with the request's id and the
 *                     command that completes it once approved (the same
 *                     command with -pkeyopt smartkey-approval-request:ID).
 *   "wait"            the request is created, the user told once on
 *                     stderr, and the operation waits (polling 0.5 s to
 *                     8 s apart, no lock held) until approved (then it
 *                     completes), denied, expired or approval_timeout.
 * approval_timeout: seconds `wait` waits at most (default 600).
 * Environment: SMARTKEY_APPROVAL, SMARTKEY_APPROVAL_TIMEOUT (they win over
 * openssl.cnf). Per operation: the parameters below.
 */
#define SMARTKEY_CFG_APPROVAL             "approval"
#define SMARTKEY_CFG_APPROVAL_TIMEOUT     "approval_timeout"
#define SMARTKEY_ENV_APPROVAL             "SMARTKEY_APPROVAL"
#define SMARTKEY_ENV_APPROVAL_TIMEOUT     "SMARTKEY_APPROVAL_TIMEOUT"
#define SMARTKEY_DEFAULT_APPROVAL_TIMEOUT 600.0

/* Defaults */
#define SMARTKEY_DEFAULT_API_ENDPOINT    "https://apps.smartkey.io"
#define SMARTKEY_DEFAULT_CONNECT_TIMEOUT 5.0
#define SMARTKEY_DEFAULT_REQUEST_TIMEOUT 30.0
#define SMARTKEY_DEFAULT_RETRIES         2
#define SMARTKEY_DEFAULT_CACHE_LIFETIME  300.0
#define SMARTKEY_DEFAULT_BATCH_MAX_SIZE  0
#define SMARTKEY_DEFAULT_BATCH_MAX_WAIT  0.001

/*
 * Environment variables; they override openssl.cnf so scripts can point an
 * existing configuration at another account: the endpoint and the CA file
 * only together with the API key (see SMARTKEY_CFG_ENV_OVERRIDES). The
 * FORTANIX_* spellings are accepted too (SMARTKEY_* wins when both are set).
 * Endpoints are https:// only, from any source.
 */
#define SMARTKEY_ENV_API_ENDPOINT "SMARTKEY_API_ENDPOINT"
#define SMARTKEY_ENV_API_KEY      "SMARTKEY_API_KEY"
#define SMARTKEY_ENV_CA_FILE      "SMARTKEY_CA_FILE"
#define SMARTKEY_ENV_AUTH         "SMARTKEY_AUTH"
#define FORTANIX_ENV_API_ENDPOINT "FORTANIX_API_ENDPOINT"
#define FORTANIX_ENV_API_KEY      "FORTANIX_API_KEY"
/* "1" or "level:N[,file:PATH]": per-call log (never secrets) to stderr or
   PATH. Levels: 1 errors, 2 requests, 3 details. */
#define SMARTKEY_ENV_DEBUG "SMARTKEY_DEBUG"

/*
 * Parameters of the RSA asymmetric cipher on SmartKey keys, besides
 * OpenSSL's own (pad-mode, digest, mgf1-digest, oaep-label, ...): set them
 * with `openssl pkeyutl -pkeyopt NAME:VALUE` or EVP_PKEY_CTX_set_params().
 * They only reach smartkey when smartkey's cipher is the one selected. For
 * a key loaded from a smartkey: URI (public-only keys included) that is
 * always the case, whatever the provider order: such keys never leave
 * smartkey's key manager. A wrapping key from a local PEM file or a
 * certificate belongs to the default provider, whose cipher IGNORES these
 * parameters in EVP_PKEY_CTX_set_params() (a local RSA encryption of the
 * empty input, no wrap): always use the property query "?provider=smartkey"
 * (pkeyutl -propquery, or the propq of EVP_PKEY_CTX_new_from_pkey). See
 * docs/wrapping.md.
 *
 * SMARTKEY_PARAM_WRAP_SUBJECT (UTF8 string): a smartkey: URI naming the key
 *   SmartKey wraps, e.g. "smartkey:name=My%20AES". EVP_PKEY_encrypt() with
 *   empty input then returns SmartKey's wrapped_key: the subject's bytes
 *   encrypted inside SmartKey with RSA-OAEP under the operation's key (one
 *   /crypto/v1/wrapkey request). The subject needs the EXPORT permission,
 *   a SmartKey wrapping key needs WRAPKEY. A wrapping key that is not held
 *   in SmartKey (a cloud's public key read from a file) is registered as a
 *   transient key of the session first; nothing persists on the server.
 *
 * SMARTKEY_PARAM_REMOTE_ENCRYPT (integer, 0 or 1): 1 encrypts the caller's
 *   data in SmartKey (/crypto/v1/encrypt, needs ENCRYPT) instead of locally
 *   with the public key (the default: zero requests).
 */
#define SMARTKEY_PARAM_WRAP_SUBJECT   "smartkey-wrap-subject"
#define SMARTKEY_PARAM_REMOTE_ENCRYPT "smartkey-remote-encrypt"

/*
 * BYOK artifacts (docs/byok/): with SMARTKEY_PARAM_WRAP_SUBJECT set and
 * empty input, these choose what EVP_PKEY_encrypt() returns. Every secret
 * step happens in SmartKey (transient keys of the session); smartkey only
 * concatenates and encodes.
 *
 * SMARTKEY_PARAM_WRAP_FORMAT (UTF8 string), one of:
 *   "rsa-oaep"          (default) one RSA-OAEP block of the subject's bytes
 *   "rsa-aes-key-wrap"  CKM_RSA_AES_KEY_WRAP: RSA-OAEP of a transient
 *                       AES-256 key || RFC 5649 KWP of the subject under it
 *                       (raw bytes for AES/HMAC/SECRET, PKCS#8 for RSA/EC)
 *   "azure-byok"        Azure Key Vault's .byok JSON file around
 *                       rsa-aes-key-wrap with OAEP SHA-1; needs
 *                       SMARTKEY_PARAM_WRAP_KID (the KEK's key id URL)
 *   "jwe"               JWE compact serialization (alg RSA-OAEP, enc
 *                       A256GCM, kid = SMARTKEY_PARAM_WRAP_KID) of the
 *                       subject's bytes
 *   "salesforce-cache-only"  the key service's JSON answer
 *                       {"kid":...,"jwe":...} for Salesforce cache-only keys
 *   "sha256"            SHA-256 of the subject's value, computed in SmartKey
 *                       (hash files of Salesforce and Google Cloud Storage)
 * SMARTKEY_PARAM_WRAP_ENCODING (UTF8 string): "raw" (default), "base64"
 *   (RFC 4648 §4, padded) or "base64url" (§5, unpadded) for the binary
 *   formats (rsa-oaep, rsa-aes-key-wrap, sha256); no line break is added.
 * SMARTKEY_PARAM_WRAP_KID (UTF8 string): the key id the cloud gave its
 *   wrapping key (Azure's KEK URL, Salesforce's key identifier).
 * SMARTKEY_PARAM_WRAP_JTI (UTF8 string): Salesforce replay-detection nonce,
 *   added to the JWE header as "jti" when set.
 */
#define SMARTKEY_PARAM_WRAP_FORMAT   "smartkey-wrap-format"
#define SMARTKEY_PARAM_WRAP_ENCODING "smartkey-wrap-encoding"
#define SMARTKEY_PARAM_WRAP_KID      "smartkey-wrap-kid"
#define SMARTKEY_PARAM_WRAP_JTI      "smartkey-wrap-jti"

#define SMARTKEY_WRAP_FORMAT_RSA_OAEP              "rsa-oaep"
#define SMARTKEY_WRAP_FORMAT_RSA_AES_KEY_WRAP      "rsa-aes-key-wrap"
#define SMARTKEY_WRAP_FORMAT_AZURE_BYOK            "azure-byok"
#define SMARTKEY_WRAP_FORMAT_JWE                   "jwe"
#define SMARTKEY_WRAP_FORMAT_SALESFORCE_CACHE_ONLY "salesforce-cache-only"
#define SMARTKEY_WRAP_FORMAT_SHA256                "sha256"

/*
 * Quorum approval of one operation (signature, RSA cipher: sign, decrypt,
 * wrap, every BYOK format), as -pkeyopt / -sigopt NAME:VALUE:
 *
 * SMARTKEY_PARAM_APPROVAL (UTF8 string): "fail", "request" or "wait", for
 *   this operation instead of the provider's `approval` setting.
 * SMARTKEY_PARAM_APPROVAL_REQUEST (UTF8 string): the id of an approval
 *   request made earlier (approval = request) for this very operation:
 *   the operation is completed from its result instead of being sent again.
 *   Still pending: fails (or, with approval = wait, waits).
 */
#define SMARTKEY_PARAM_APPROVAL         "smartkey-approval"
#define SMARTKEY_PARAM_APPROVAL_REQUEST "smartkey-approval-request"

#define SMARTKEY_APPROVAL_FAIL    "fail"
#define SMARTKEY_APPROVAL_REQUEST "request"
#define SMARTKEY_APPROVAL_WAIT    "wait"

/*
 * Key generation in SmartKey (`openssl genpkey -pkeyopt NAME:VALUE`, or
 * EVP_PKEY_CTX_set_params() on a keygen context), besides OpenSSL's own
 * RSA `bits` and `e` and EC `group` (P-256, P-384, P-521):
 *
 * SMARTKEY_PARAM_KEY_NAME (UTF8 string, required): the new key's name in
 *   SmartKey. Because only smartkey knows this parameter, another
 *   provider's key generator refuses it: a command that sets it can never
 *   make a key locally by accident.
 * SMARTKEY_PARAM_KEY_OPS (UTF8 string): the permitted operations as a
 *   comma list of SmartKey's names, e.g. "SIGN,VERIFY,APPMANAGEABLE".
 *   Default: SmartKey's (every operation of the key type except EXPORT).
 * SMARTKEY_PARAM_EXPORTABLE (integer, 0 or 1): 1 adds EXPORT, so the key
 *   may be read out or wrapped by another key. Default 0.
 * SMARTKEY_PARAM_ENCRYPTION_PADDING (UTF8 string, RSA): the paddings
 *   SmartKey lets the key decrypt (and encrypt, wrap, unwrap) with, a comma
 *   list of "oaep", "pkcs1" (PKCS#1 v1.5: S/MIME key transport, TLS
 *   static-RSA key exchange), "none" (raw RSA decryption) or "any";
 *   SmartKey's rsa.encryption_policy. Default: SmartKey's, OAEP only.
 * SMARTKEY_PARAM_SIGNATURE_PADDING (UTF8 string, RSA): the signature
 *   paddings allowed, "pkcs1", "pss" or "any" (rsa.signature_policy).
 *   Default: SmartKey's, any.
 * SMARTKEY_PARAM_DESCRIPTION (UTF8 string): the key's description.
 * SMARTKEY_PARAM_GROUP (UTF8 string): the id of the SmartKey group the key
 *   is made in. Default: the app's default group.
 * SMARTKEY_PARAM_METADATA (UTF8 string, repeatable): NAME=VALUE, one entry
 *   of the key's custom metadata per use (a repeated NAME replaces).
 *
 * The documented command:
 *   openssl genpkey -provider default -provider smartkey \
 *       -propquery '?provider=smartkey' -algorithm RSA \
 *       -pkeyopt bits:3072 -pkeyopt smartkey-name:web-tls -out web-tls.pem
 */
#define SMARTKEY_PARAM_KEY_NAME           "smartkey-name"
#define SMARTKEY_PARAM_KEY_OPS            "smartkey-key-ops"
#define SMARTKEY_PARAM_EXPORTABLE         "smartkey-exportable"
#define SMARTKEY_PARAM_ENCRYPTION_PADDING "smartkey-encryption-padding"
#define SMARTKEY_PARAM_SIGNATURE_PADDING  "smartkey-signature-padding"
#define SMARTKEY_PARAM_DESCRIPTION        "smartkey-description"
#define SMARTKEY_PARAM_GROUP              "smartkey-group"
#define SMARTKEY_PARAM_METADATA           "smartkey-metadata"

/*
 * Key-reference files: what `genpkey -out` and `openssl pkey -in
 * 'smartkey:...' -out FILE` write for a key held in SmartKey. A PEM block
 * with this label whose DER holds the key's identity only, never a secret:
 *
 *   SmartKeyKeyReference ::= SEQUENCE {
 *       version  INTEGER (1),
 *       keyType  UTF8String,            -- "RSA" or "EC"
 *       kid      UTF8String,            -- the key SmartKey operates with
 *       name     [0] EXPLICIT UTF8String OPTIONAL -- informational
 *   }
 *
 * With the provider active (e.g. through openssl.cnf), programs that take
 * a key *file* (PEM_read_PrivateKey, SSL_CTX_use_PrivateKey_file,
 * OSSL_STORE's file: loader, nginx's ssl_certificate_key) load such a file
 * as the SmartKey key. The account and endpoint come from the provider's
 * configuration, not from the file.
 */
#define SMARTKEY_KEY_REFERENCE_PEM_LABEL "SMARTKEY KEY REFERENCE"
/* Decoder/encoder structure name of the DER inside that PEM block */
#define SMARTKEY_KEY_REFERENCE_STRUCTURE "smartkey-ref"

/*
 * Reason codes an application may act on: ERR_GET_REASON() of an error whose
 * ERR_lib_error_string() is SMARTKEY_PROVIDER_NAME. These three mean that
 * SmartKey cannot answer now and a later attempt may succeed (what
 * smartkey-keyservice answers with 503 and Retry-After).
 */
#define SMARTKEY_R_SERVER_UNREACHABLE 3
#define SMARTKEY_R_TIMEOUT            4
#define SMARTKEY_R_SERVER_BUSY        12

#endif
