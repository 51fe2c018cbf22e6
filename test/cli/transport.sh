#!/usr/bin/env bash
# What reaches the network is the provider's choice alone: an http://
# endpoint from any source is refused before anything is sent (a plain-HTTP
# listener records 0 requests); SSLKEYLOGFILE gets no SmartKey secrets;
# HTTPS_PROXY does not redirect SmartKey traffic, the `proxy` parameter
# does; server text echoing the Authorization header never reaches the
# error queue; the debug log is created 0600 and never through a symlink;
# control characters in key names are escaped; a ca_file the process
# cannot read and a host-name mismatch are named as such.
# Usage: transport.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/lib.sh"
cli_start "$@"

create_rsa tr-rsa 2048 >/dev/null || fatal "cannot create the test key"
server_public_key tr-rsa "$WORK/rsa.der"
api_key=$(<"$API_KEY_FILE")

# listen NAME MODE [CERT KEY]: sets PORT_<NAME>; requests in $WORK/NAME.log
listen() {
    local name=$1 mode=$2 tries=0
    shift 2
    python3 "$CLI_DIR/listener.py" "$mode" "$WORK/$name.port" \
        "$WORK/$name.log" "$@" </dev/null >/dev/null 2>&1 &
    BACKGROUND_PIDS+=("$!")
    while [[ ! -s $WORK/$name.port ]]; do
        ((++tries > 300)) && fatal "the $name listener did not start"
        sleep 0.1
    done
    printf -v "PORT_${name^^}" '%s' "$(<"$WORK/$name.port")"
}
requests_to() { wc -l <"$WORK/$1.log"; }

listen plain record
plain=http://127.0.0.1:$PORT_PLAIN

# ---- 1. https only, from every source ----
refused_http() { failed_cleanly && stderr_has 'https://' &&
    stderr_has_text "$1"; }

clear_env_config
export SMARTKEY_API_KEY=$api_key SMARTKEY_CA_FILE=$CA_FILE
SMARTKEY_API_ENDPOINT=$plain run ossl pkey -in smartkey:name=tr-rsa -pubout
check "http:// in SMARTKEY_API_ENDPOINT is refused, naming the variable" \
    refused_http SMARTKEY_API_ENDPOINT
FORTANIX_API_ENDPOINT=$plain run ossl pkey -in smartkey:name=tr-rsa -pubout
check "http:// in FORTANIX_API_ENDPOINT is refused, naming the variable" \
    refused_http FORTANIX_API_ENDPOINT
SMARTKEY_API_ENDPOINT="$ENDPOINT, $plain" \
    run ossl pkey -in smartkey:name=tr-rsa -pubout
check "an http:// node in a list with an https node is refused" \
    refused_http SMARTKEY_API_ENDPOINT
# a password in the URL would travel and be logged with every request
SMARTKEY_API_ENDPOINT="https://user:pw-secret-77@${ENDPOINT#https://}" \
    run ossl pkey -in smartkey:name=tr-rsa -pubout
check "user:password@ in the endpoint is refused, naming the variable" \
    eval 'failed_cleanly && stderr_has "user name or password" &&
          stderr_has_text SMARTKEY_API_ENDPOINT'
check "and the password is not repeated in the message" \
    eval '! stderr_has pw-secret-77'
SMARTKEY_API_ENDPOINT="${plain/http:\/\//http://user:pw-secret-77@}" \
    run ossl pkey -in smartkey:name=tr-rsa -pubout
check "nor in the message for an http:// URL with a password" \
    eval 'refused_http SMARTKEY_API_ENDPOINT && ! stderr_has pw-secret-77'
clear_env_config
make_config "$WORK/http.cnf" "api_endpoint=$plain" ||
    fatal "cannot generate openssl.cnf"
OPENSSL_CONF=$WORK/http.cnf run ossl_plain pkey -in smartkey:name=tr-rsa \
    -pubout
check "http:// as api_endpoint in openssl.cnf is refused, naming it" \
    refused_http api_endpoint
check "the plain-HTTP listener received no request at all" \
    equals "$(requests_to plain)" 0

# ---- 4. the environment's proxies and key log stay out ----
clear_env_config
use_env_config
listen envproxy tunnel
HTTPS_PROXY=http://127.0.0.1:$PORT_ENVPROXY \
    https_proxy=http://127.0.0.1:$PORT_ENVPROXY \
    ALL_PROXY=http://127.0.0.1:$PORT_ENVPROXY \
    run ossl pkey -in smartkey:name=tr-rsa -pubout
check "HTTPS_PROXY/https_proxy/ALL_PROXY set: the operation succeeds" \
    succeeded
check "HTTPS_PROXY/https_proxy/ALL_PROXY set: the proxy saw 0 requests" \
    equals "$(requests_to envproxy)" 0

SSLKEYLOGFILE=$WORK/keylog run ossl pkey -in smartkey:name=tr-rsa -pubout
check "SSLKEYLOGFILE set: the operation succeeds" succeeded
check "SSLKEYLOGFILE set: no TLS secret of SmartKey's session is written" \
    eval '[[ ! -s $WORK/keylog ]]'

# OpenSSL's and curl's CA variables do not make the provider trust a CA:
# without ca_file it uses libcurl's built-in system store only.
SMARTKEY_CA_FILE= SSL_CERT_FILE=$CA_FILE SSL_CERT_DIR=$STATE \
    CURL_CA_BUNDLE=$CA_FILE run ossl pkey -in smartkey:name=tr-rsa -pubout
check "SSL_CERT_FILE/SSL_CERT_DIR/CURL_CA_BUNDLE add no trusted CA" \
    eval 'failed_cleanly && stderr_has "not trusted"'

listen proxy tunnel
clear_env_config
SMARTKEY_API_KEY=$api_key
export SMARTKEY_API_KEY
make_config "$WORK/proxy.cnf" "proxy=http://127.0.0.1:$PORT_PROXY" ||
    fatal "cannot generate openssl.cnf"
OPENSSL_CONF=$WORK/proxy.cnf run ossl_plain pkey -in smartkey:name=tr-rsa \
    -pubout
check "proxy = URL in openssl.cnf: the operation succeeds" succeeded
check "proxy = URL in openssl.cnf: the request went through it (CONNECT)" \
    grep -q "^CONNECT 127.0.0.1:${ENDPOINT##*:} " "$WORK/proxy.log"
refused_port
make_config "$WORK/proxy-down.cnf" "proxy=http://127.0.0.1:$REFUSED_PORT" ||
    fatal "cannot generate openssl.cnf"
OPENSSL_CONF=$WORK/proxy-down.cnf run ossl_plain pkey -in smartkey:name=tr-rsa \
    -pubout
check "an unreachable configured proxy is named as a possible cause" \
    eval 'failed_cleanly && stderr_has "through the configured proxy"'
make_config "$WORK/proxy-env.cnf" "proxy=env" ||
    fatal "cannot generate openssl.cnf"
: >"$WORK/envproxy.log"
HTTPS_PROXY=http://127.0.0.1:$PORT_ENVPROXY \
    OPENSSL_CONF=$WORK/proxy-env.cnf \
    run ossl_plain pkey -in smartkey:name=tr-rsa -pubout
check "proxy = env: HTTPS_PROXY is used (CONNECT recorded)" \
    eval 'succeeded && grep -q "^CONNECT " "$WORK/envproxy.log"'
unset SMARTKEY_API_KEY

# ---- 7. server text echoing the Authorization header ----
clear_env_config
listen echo echo "$STATE/server.pem" "$STATE/server-key.pem"
SMARTKEY_API_ENDPOINT=https://127.0.0.1:$PORT_ECHO SMARTKEY_API_KEY=$api_key \
    SMARTKEY_CA_FILE=$CA_FILE SMARTKEY_DEBUG=level:3 \
    run ossl pkey -in smartkey:name=tr-rsa -pubout
check "an answer echoing the request's headers fails cleanly" failed_cleanly
check "the echoed answer's text is on the error queue" \
    stderr_has 'you sent'
check "the echoed API key is not on the error queue nor in the log" \
    stderr_lacks_text "$api_key"

# ---- 7. key names with control characters are escaped ----
use_env_config
run ossl pkey -in 'smartkey:name=evil%0D%0Aforged%1B[31mred' -pubout
check "a name with CR LF ESC: fails cleanly" failed_cleanly
check "a name with CR LF ESC: shown escaped in the error" \
    stderr_has_text 'evil\r\nforged\e[31mred'
check "a name with CR LF ESC: no raw ESC or CR on stderr" \
    eval '! grep -q $'"'"'[\x1b\r]'"'"' "$ERR"'

# the emulator refuses such names: a relay renames the key in its answers
kid=$(rest POST /crypto/v1/keys/info '{"name":"tr-rsa"}' | jq -re .kid) ||
    fatal "cannot read the test key's kid"
listen rename rename "$STATE/server.pem" "$STATE/server-key.pem" \
    "$ENDPOINT" "$CA_FILE" $'tr\r\nname: forged\e[1m'
SMARTKEY_API_ENDPOINT=https://127.0.0.1:$PORT_RENAME \
    run ossl pkey -in "smartkey:kid=$kid" -text -noout
check "-text of a name with CR LF ESC from SmartKey: escaped" \
    eval 'succeeded && stdout_has_text "name: tr\r\nname: forged\e[1m" &&
          ! grep -q "^name: forged" "$OUT" && ! grep -q $'"'"'\x1b'"'"' "$OUT"'

# ---- 7. the debug log file ----
SMARTKEY_DEBUG=level:2,file:$WORK/new.log run ossl pkey \
    -in smartkey:name=tr-rsa -pubout
check "a new debug log is created with mode 0600" \
    eval '[[ $(stat -c %a "$WORK/new.log") == 600 ]]'
printf 'precious\n' >"$WORK/target"
ln -s "$WORK/target" "$WORK/link.log"
SMARTKEY_DEBUG=level:2,file:$WORK/link.log run ossl pkey \
    -in smartkey:name=tr-rsa -pubout
check "a debug log path that is a symlink is refused on stderr" \
    stderr_has 'symbolic link'
check "the symlink's target is untouched" \
    eval '[[ $(<"$WORK/target") == precious ]]'
install -m 0644 /dev/null "$WORK/shared.log"
SMARTKEY_DEBUG=file:$WORK/shared.log run ossl pkey \
    -in smartkey:name=no-such-key -pubout
check "an existing log readable by others is used, with a warning" \
    eval 'stderr_has "readable or writable by group or others" &&
          grep -q "no-such-key" "$WORK/shared.log"'
SMARTKEY_DEBUG=verbose run ossl pkey -in smartkey:name=tr-rsa -pubout
check "a debug setting it does not understand is said so, not ignored" \
    eval 'succeeded && stderr_has "is not understood"'

# ---- 9. TLS failures that say what is wrong ----
SMARTKEY_CA_FILE=$WORK/no-such-ca.pem run ossl pkey -in smartkey:name=tr-rsa \
    -pubout
check "a ca_file that cannot be read is named, with the user and errno" \
    eval 'failed_cleanly && stderr_has "ca_file .*no-such-ca.pem cannot be read by user [a-z]+ \(uid [0-9]+\).*No such file"'
check "an unreadable ca_file does not get the 'set ca_file' advice" \
    eval '! stderr_has "not trusted"'
# as root: the same file, readable by root only, used by nobody (as an
# Apache worker runs as www-data); only where nobody can load the module
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
chmod 0755 "$WORK"
if [[ $(id -u) != 0 ]] || ! command -v setpriv >/dev/null ||
    ! as_nobody test -r "$MODULE" -a -r "$OPENSSL_CONF"; then
    echo "skip - a ca_file readable by root only, used by nobody" \
        "(not root, no setpriv, or nobody cannot read the module)"
else
    install -m 0600 "$CA_FILE" "$WORK/private-ca.pem"
    SMARTKEY_CA_FILE=$WORK/private-ca.pem run as_nobody \
        timeout "$CLI_TIMEOUT" openssl pkey -provider-path "$MODULE_DIR" \
        -provider default -provider smartkey -in smartkey:name=tr-rsa -pubout
    check "a ca_file only root can read, used by nobody: says so" \
        eval 'failed_cleanly && stderr_has "cannot be read by user nobody.*Permission denied"'
fi

emulator_stop
emulator_start --listen 127.0.0.2:0
use_env_config
# the certificate names localhost, 127.0.0.1 and ::1 only
run ossl pkey -in smartkey:name=tr-rsa -pubout
check "a certificate for another host name: fails cleanly" failed_cleanly
check "a certificate for another host name: says it does not match" \
    eval 'stderr_has "does not match the host name in api_endpoint" &&
          ! stderr_has "set ca_file"'

finish
