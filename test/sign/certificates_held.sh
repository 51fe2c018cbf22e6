#!/usr/bin/env bash
# Certificates held in SmartKey (CERTIFICATE objects): `storeutl -certs`
# lists them, `x509 -in` reads them, a key's name with type=cert (or in a
# place that wants a certificate) yields the certificate of that key, and
# `s_server -cert smartkey:... -key smartkey:...` completes TLS handshakes
# with neither the certificate nor the key on disk. type= chooses between
# a key and its certificate; wrong choices fail with the reason.
source "$(dirname "$0")/lib.sh"
sign_test_start "$@"

create_rsa web 2048 >/dev/null || fatal "cannot create the RSA key"
create_ec api NistP256 >/dev/null || fatal "cannot create the EC key"
create_rsa bare 2048 >/dev/null || fatal "cannot create the key without cert"
self_signed web "$WORK/web.crt" || fatal "no RSA certificate"
self_signed api "$WORK/api.crt" || fatal "no EC certificate"
web_cert_kid=$(import_certificate web-cert "$WORK/web.crt") ||
    fatal "cannot import the RSA certificate"
import_certificate api-cert "$WORK/api.crt" >/dev/null ||
    fatal "cannot import the EC certificate"
import_certificate locked-cert "$WORK/web.crt" \
    '["VERIFY","APPMANAGEABLE"]' >/dev/null ||
    fatal "cannot import the certificate without EXPORT"
openssl x509 -in "$WORK/web.crt" -outform DER -out "$WORK/web.der"
openssl x509 -in "$WORK/api.crt" -outform DER -out "$WORK/api.der"

# ---- the local server keeps SmartKey's data model ----
run rest POST /crypto/v1/keys/info '{"name":"web-cert"}'
check "a CERTIFICATE object is public only, with the certified key" \
    jq -e '.obj_type == "CERTIFICATE" and .public_only == true and
           (.pub_key | length > 0) and (has("value") | not)' "$OUT"
server_public_key web "$WORK/web.spki"
check "its pub_key is the key's public key" \
    equals "$(jq -r .pub_key "$OUT")" "$(base64 -w0 "$WORK/web.spki")"
run rest PUT /crypto/v1/keys \
    '{"name":"not-a-cert","obj_type":"CERTIFICATE","value":"AAEC"}'
check "a value that is no DER certificate is refused" failed_cleanly
run rest POST /crypto/v1/keys '{"name":"gen-cert","obj_type":"CERTIFICATE"}'
check "a certificate cannot be generated" failed_cleanly

# ---- listing and reading ----
run ossl storeutl -certs -noout smartkey:
check "storeutl -certs smartkey: succeeds" succeeded
check "it lists the two readable certificates" \
    equals "$(grep -Ec '^[0-9]+: Certificate$' "$OUT")" 2
check "and no key" stdout_lacks 'Pkey'
run ossl storeutl -keys -noout smartkey:
check "storeutl -keys smartkey: still lists the three keys only" \
    equals "$(grep -Ec '^[0-9]+: Pkey$' "$OUT")" 3

counters_reset
run ossl x509 -in smartkey:name=web-cert -outform DER -out "$WORK/read.der"
check "x509 -in smartkey:name=web-cert reads the certificate" succeeded
check "byte for byte the one imported" same_bytes "$WORK/read.der" "$WORK/web.der"
check "two lookups: the object, then its value" \
    equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 2

run ossl x509 -in "smartkey:kid=$web_cert_kid" -outform DER \
    -out "$WORK/by-kid.der"
check "x509 -in smartkey:kid=... reads it by its kid" \
    same_bytes "$WORK/by-kid.der" "$WORK/web.der"

run ossl x509 -in 'smartkey:name=web;type=cert' -outform DER \
    -out "$WORK/of-key.der"
check "a key's name with type=cert yields that key's certificate" \
    same_bytes "$WORK/of-key.der" "$WORK/web.der"
run ossl x509 -in 'smartkey:name=api' -outform DER -out "$WORK/of-ec.der"
check "x509 -in with an EC key's name (a certificate is wanted) yields its" \
    same_bytes "$WORK/of-ec.der" "$WORK/api.der"
run ossl storeutl 'smartkey:name=web-cert'
check "storeutl without a filter yields the certificate object" \
    stdout_has '^0: Certificate$'

server_public_key web "$WORK/web.spki.der"
check "without type=cert the key's name is still the key" \
    pubout_matches 'smartkey:name=web' "$WORK/web.spki.der"

# ---- wrong choices say why ----
run ossl pkey -in smartkey:name=web-cert -pubout
check "a certificate is no key" failed_cleanly
check "and the error says to use type=cert" \
    stderr_line_has web-cert 'is a certificate, not a key.*type=cert'
run ossl pkey -in 'smartkey:name=web;type=cert' -pubout
check "type=cert where a key is wanted fails" failed_cleanly
check "and says to drop type=cert" stderr_has 'type=cert yields a certificate'
run ossl x509 -in 'smartkey:name=bare;type=cert' -noout
check "a key without a certificate fails" failed_cleanly
check "and the error says none certifies it" \
    stderr_line_has bare 'no certificate held in SmartKey certifies key'
run ossl x509 -in 'smartkey:name=locked-cert' -noout
check "a certificate the app may not EXPORT fails" failed_cleanly
check "and the error names EXPORT" \
    stderr_line_has locked-cert 'allowed EXPORT on it'
run ossl x509 -in 'smartkey:name=web;type=certificate' -noout
check "an unknown type= is refused" failed_cleanly
check "with the three types named" \
    stderr_has "type= must be 'private', 'public' or 'cert'"

# ---- TLS with neither file on disk ----
server_start 'smartkey:name=web' 'smartkey:name=web;type=cert' 2 ||
    fatal "s_server with the RSA key and certificate in SmartKey did not start: $(cat "$WORK/server.err")"
handshake "$WORK/web.crt" -tls1_2
check "TLS 1.2: s_server -cert 'smartkey:name=web;type=cert' completes" succeeded
check "the server presented the certificate held in SmartKey" \
    stderr_has '^Peer certificate: CN ?= ?web$'
handshake "$WORK/web.crt" -tls1_3
check "TLS 1.3 completes too" succeeded
server_stop

server_start 'smartkey:name=api' 'smartkey:name=api-cert' 2 ||
    fatal "s_server with the EC key and certificate in SmartKey did not start: $(cat "$WORK/server.err")"
handshake "$WORK/api.crt" -tls1_3
check "ECDSA: s_server -cert smartkey:name=api-cert completes TLS 1.3" \
    succeeded
# the client's trust anchor read from SmartKey too (-CAstore takes a URI)
run bash -c 'printf "GET / HTTP/1.0\r\n\r\n" |
    timeout "$0" openssl s_client -provider-path "$1" -provider default \
        -provider smartkey -connect "127.0.0.1:$2" \
        -CAstore smartkey:name=api-cert -verify_return_error -brief -ign_eof' \
    "$CLI_TIMEOUT" "$MODULE_DIR" "$PORT"
check "s_client -CAstore smartkey:name=api-cert verifies the server" \
    succeeded
check "and says so" stderr_has '^Verification: OK$'
server_stop

# ---- a CA whose key and certificate are both in SmartKey (signing.md) ----
create_rsa ca 2048 >/dev/null || fatal "cannot create the CA key"
self_signed ca "$WORK/ca.crt" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign || fatal "no CA certificate"
import_certificate ca-cert "$WORK/ca.crt" >/dev/null ||
    fatal "cannot import the CA certificate"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/leaf.key" -subj /CN=leaf -out "$WORK/leaf.csr" \
    2>/dev/null || fatal "no CSR"
run ossl x509 -req -in "$WORK/leaf.csr" -CA 'smartkey:name=ca;type=cert' \
    -CAkey smartkey:name=ca -days 1 -out "$WORK/leaf.crt"
check "x509 -req -CA 'smartkey:name=ca;type=cert' -CAkey smartkey:name=ca" \
    succeeded
run openssl verify -CAfile "$WORK/ca.crt" "$WORK/leaf.crt"
check "stock openssl verifies the leaf under the CA" succeeded

run ossl verify -CAstore 'smartkey:name=ca;type=cert' "$WORK/leaf.crt"
check "verify -CAstore 'smartkey:name=ca;type=cert' takes the anchor from SmartKey" \
    succeeded
run ossl verify -CAfile smartkey:name=ca-cert "$WORK/leaf.crt"
check "-CAfile takes a file name only (docs/legacy-apps.md says so)" \
    eval 'failed_cleanly && stderr_has "fopen\(smartkey:name=ca-cert"'

# ---- what docs/legacy-apps.md says of nginx and HAProxy: their
# certificate (and nginx's key) settings take file names, no URI; the
# certificate is exported to a file from SmartKey instead ----
run ossl x509 -in 'smartkey:name=web;type=cert' -out "$WORK/exported.crt"
check "the documented export: x509 -in 'smartkey:name=web;type=cert' -out" \
    eval 'succeeded && cmp -s <(openssl x509 -in "$WORK/exported.crt" \
        -outform DER) "$WORK/web.der"'
if command -v nginx >/dev/null; then
    mkdir -p "$WORK/nginx/logs"
    cat >"$WORK/nginx/nginx.conf" <<CONF
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events {}
http {
    server {
        listen 127.0.0.1:$(closed_port) ssl;
        ssl_certificate "store:smartkey:name=web;type=cert";
        ssl_certificate_key "store:smartkey:name=web";
    }
}
CONF
    run timeout "$CLI_TIMEOUT" nginx -t -p "$WORK/nginx" \
        -c "$WORK/nginx/nginx.conf"
    check "nginx $(nginx -v 2>&1 | sed 's/.*\///'): ssl_certificate store: is read as a file name" \
        eval 'failed_cleanly && stderr_has "cannot load certificate .*store:smartkey:.*fopen"'
    sed -i "s|ssl_certificate \"store:.*|ssl_certificate $WORK/web.crt;|" \
        "$WORK/nginx/nginx.conf"
    run timeout "$CLI_TIMEOUT" nginx -t -p "$WORK/nginx" \
        -c "$WORK/nginx/nginx.conf"
    check "so is ssl_certificate_key store:" \
        eval 'failed_cleanly && stderr_has "cannot load certificate key .*store:smartkey:.*fopen"'
else
    echo "# nginx not installed: its check is skipped"
fi
if command -v haproxy >/dev/null; then
    cat >"$WORK/haproxy.cfg" <<CONF
frontend https
    mode http
    timeout client 5s
    bind 127.0.0.1:$(closed_port) ssl crt "smartkey:name=web;type=cert"
CONF
    run timeout "$CLI_TIMEOUT" haproxy -c -f "$WORK/haproxy.cfg"
    check "HAProxy $(haproxy -v | sed -n '1s/HAProxy version \([^ ]*\).*/\1/p'): crt takes a file, not a URI" \
        eval 'failed_cleanly && stderr_has "unable to stat SSL certificate from file .smartkey:name=web"'
else
    echo "# haproxy not installed: its check is skipped"
fi

# ---- a renewal beside the old certificate: the one valid longest ----
self_signed web "$WORK/web-renewed.crt" -days 30 ||
    fatal "no renewed certificate"
import_certificate web-cert-2 "$WORK/web-renewed.crt" >/dev/null ||
    fatal "cannot import the renewed certificate"
run ossl x509 -in 'smartkey:name=web;type=cert' -noout -enddate
check "type=cert picks the certificate that expires last" \
    equals "$(cat "$OUT")" \
    "$(openssl x509 -in "$WORK/web-renewed.crt" -noout -enddate)"

finish
