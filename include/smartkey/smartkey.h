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
 *   smartkey:name=<percent-encoded name>[;type=private|public]
 *   smartkey:kid=<uuid>[;type=private|public]
 *   smartkey://name=...        same attributes; a file in the current
 *                              directory can never shadow this form
 *   smartkey:                  every key the app can see (storeutl -keys)
 *
 * Attribute values are percent-decoded; ';' and '%' inside a name must be
 * written %3B and %25. type=public yields a public-key object (as -pubin
 * expects); without it a key with a private half yields a private-key
 * handle whose material stays in SmartKey.
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

/* Defaults */
#define SMARTKEY_DEFAULT_API_ENDPOINT    "https://apps.smartkey.io"
#define SMARTKEY_DEFAULT_CONNECT_TIMEOUT 5.0
#define SMARTKEY_DEFAULT_REQUEST_TIMEOUT 30.0
#define SMARTKEY_DEFAULT_RETRIES         2
#define SMARTKEY_DEFAULT_CACHE_LIFETIME  300.0

/*
 * Environment variables; they override openssl.cnf so scripts can point an
 * existing configuration at another account. The FORTANIX_* spellings are
 * accepted too (SMARTKEY_* wins when both are set).
 */
#define SMARTKEY_ENV_API_ENDPOINT "SMARTKEY_API_ENDPOINT"
#define SMARTKEY_ENV_API_KEY      "SMARTKEY_API_KEY"
#define SMARTKEY_ENV_CA_FILE      "SMARTKEY_CA_FILE"
#define FORTANIX_ENV_API_ENDPOINT "FORTANIX_API_ENDPOINT"
#define FORTANIX_ENV_API_KEY      "FORTANIX_API_KEY"
/* "1" or "level:N[,file:PATH]": per-call log (never secrets) to stderr or
   PATH. Levels: 1 errors, 2 requests, 3 details. */
#define SMARTKEY_ENV_DEBUG "SMARTKEY_DEBUG"

#endif
