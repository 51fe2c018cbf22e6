# shellcheck shell=bash
# Functions of the smartkey-keyservice tests on top of the BYOK tests'
# lib.sh (cli_init, emulator_start, rest, counter, run, check, verify...):
# the service is started on an ephemeral loopback port with its own TLS
# certificate, and curl calls it as Salesforce's Named Credential does.

source "$(dirname "${BASH_SOURCE[0]}")/../byok/lib.sh"

KS_PID=""
KS_URL=""
KS_USER=salesforce

# ks_prepare: in $WORK the stand-in BYOK certificate (sf.crt, its private
# key sf.pem: Salesforce's side), the service's TLS certificate (tls.crt,
# tls.pem, for 127.0.0.1), the credentials file (mode 600) and curl's
# configuration holding them (so the password never shows in `ps`).
ks_prepare() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$WORK/sf.pem" 2>/dev/null &&
        openssl req -x509 -new -key "$WORK/sf.pem" -subj /CN=byok -days 2 \
            -out "$WORK/sf.crt" 2>/dev/null ||
        fatal "cannot make the stand-in BYOK certificate"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$WORK/tls.pem" 2>/dev/null &&
        openssl req -x509 -new -key "$WORK/tls.pem" -subj /CN=keyservice \
            -addext subjectAltName=IP:127.0.0.1 -days 2 \
            -out "$WORK/tls.crt" 2>/dev/null ||
        fatal "cannot make the service's TLS certificate"
    KS_PASSWORD=$(openssl rand -hex 16)
    (
        umask 077
        printf '%s:%s\n' "$KS_USER" "$KS_PASSWORD" >"$WORK/credentials"
        printf 'user = "%s:%s"\n' "$KS_USER" "$KS_PASSWORD" >"$WORK/curl-auth"
        printf 'user = "%s:%s"\n' "$KS_USER" "wrong-$KS_PASSWORD" \
            >"$WORK/curl-wrong"
    )
}

# ks_setup MODULE_DIR EMULATOR KEYSERVICE: the start shared by the test
# scripts: the emulator and CLI, the EXIT trap, ks_prepare, the key "Cache
# Only" in SmartKey and its value in $WORK/dek.bin for the comparisons.
ks_setup() {
    KEYSERVICE=${3:?usage: $0 MODULE_DIR EMULATOR KEYSERVICE}
    find_python
    cli_start "$1" "$2"
    trap ks_cleanup EXIT
    need_built "$KEYSERVICE"
    ks_prepare
    create_aes "Cache Only" 256 >/dev/null || fatal "cannot create the key"
    export_value "Cache Only" "$WORK/dek.bin" ||
        fatal "cannot export the key"
}

# ks_config OUT [LINE...]: a configuration serving key-1 (the SmartKey key
# "Cache Only") under /keys; extra global lines come first.
ks_config() {
    local out=$1
    shift
    {
        echo "listen = 127.0.0.1:0"
        echo "tls_certificate = $WORK/tls.crt"
        echo "tls_key = ${KS_TLS_KEY:-$WORK/tls.pem}"
        echo "credentials = $WORK/credentials"
        echo "path_prefix = /keys"
        printf '%s\n' "$@"
        echo "[key key-1]"
        echo "uri = smartkey:name=Cache%20Only"
        echo "certificate = $WORK/sf.crt"
    } >"$out"
}

# ks_start CONFIG [PROGRAM] [ARGS...]: the service (PROGRAM, default
# $KEYSERVICE) in the background, logging to $WORK/keyservice.log; sets
# KS_URL once it listens.
ks_start() {
    local config=$1 program=${2:-$KEYSERVICE} tries=0
    shift 2 2>/dev/null || shift
    rm -f "$WORK/ks.addr"
    "$program" -c "$config" --ready-file "$WORK/ks.addr" "$@" \
        2>>"$WORK/keyservice.log" &
    KS_PID=$!
    while [[ ! -s $WORK/ks.addr ]]; do
        if ! kill -0 "$KS_PID" 2>/dev/null; then
            KS_PID=""
            tail -n 20 "$WORK/keyservice.log"
            fatal "smartkey-keyservice exited before it listened"
        fi
        ((++tries > 600)) && fatal "smartkey-keyservice did not listen in 60 s"
        sleep 0.1
    done
    KS_URL=https://$(<"$WORK/ks.addr")
}

ks_stop() {
    if [[ -n $KS_PID ]]; then
        kill -TERM "$KS_PID" 2>/dev/null
        wait "$KS_PID" 2>/dev/null
        # shellcheck disable=SC2034 # the exit status, for the test scripts
        KS_STATUS=$?
        KS_PID=""
    fi
}

# callout PATH [RID] [AUTH_FILE]: GET as Salesforce does; the body goes to
# $WORK/body (and $WORK/headers), the status code is printed.
callout() {
    local path=$1 rid=${2:-} auth=${3:-$WORK/curl-auth}
    local args=(-sS --max-time 60 --cacert "$WORK/tls.crt" -K "$auth"
        -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}')
    [[ -n $rid ]] && args+=(-H "RequestIdentifier: $rid")
    curl "${args[@]}" "$KS_URL$path"
}

# nonce: a fresh nonce shaped like Salesforce's (32 hex digits).
nonce() { openssl rand -hex 16; }

# answer_decrypts KID [JTI] [PEM]: the last answer ($WORK/body) decrypts
# with PEM (default the stand-in BYOK certificate's key sf.pem) to the key.
answer_decrypts() {
    verify jwe "${3:-$WORK/sf.pem}" "$WORK/body" "$WORK/dek.bin" --kid "$1" \
        ${2:+--jti "$2"} --salesforce
}

# ks_cleanup: the EXIT trap: the service, then the emulator and $WORK.
ks_cleanup() {
    local status=$?
    ks_stop
    if [[ $status -ne 0 && -s $WORK/keyservice.log ]]; then
        echo "--- keyservice log (last 30 lines) ---"
        tail -n 30 "$WORK/keyservice.log"
    fi
    (exit "$status")
    cli_cleanup
}

# log_waits_for TEXT: the service's log shows TEXT within 30 s.
log_waits_for() {
    local tries=0
    until grep -Fq -- "$1" "$WORK/keyservice.log"; do
        ((++tries > 300)) && return 1
        sleep 0.1
    done
}

# ks_import_certificate NAME PEM: puts a certificate into SmartKey as a
# CERTIFICATE object, as docs/legacy-apps.md tells users (EXPORT listed:
# SmartKey shows a certificate's value only to apps allowed it); prints
# its kid.
ks_import_certificate() {
    rest PUT /crypto/v1/keys "$(jq -nc --arg name "$1" \
        --arg value "$(openssl x509 -in "$2" -outform DER | base64 -w0)" \
        '{name: $name, obj_type: "CERTIFICATE", value: $value,
          key_ops: ["VERIFY", "ENCRYPT", "WRAPKEY", "EXPORT",
                    "APPMANAGEABLE"]}')" | jq -re .kid
}
