#!/usr/bin/env bash
# Global activation: an openssl.cnf that activates default then smartkey for
# every application that reads it (as a system-wide configuration would),
# with and without default_properties = ?provider=smartkey. curl's TLS to
# an unrelated server keeps working and still verifies certificates, and
# the provider's own HTTPS connection to SmartKey does not recurse into the
# provider (pkey -pubout works through the configuration alone).
#
# Usage: global.sh MODULE_DIR EMULATOR
source "$(dirname "$0")/../cli/lib.sh"
cli_init "$@"
emulator_start

create_rsa "global rsa" 2048 >/dev/null || fatal "cannot create the RSA key"
create_ec "global ec" NistP256 >/dev/null || fatal "cannot create the EC key"
server_public_key "global rsa" "$WORK/rsa.der" || fatal "no RSA public key"
server_public_key "global ec" "$WORK/ec.der" || fatal "no EC public key"

# ---- an unrelated TLS server: its own CA, an EC and an RSA certificate ----
pki=$WORK/pki
mkdir -p "$pki"
(
    cd "$pki" || exit 1
    # CA:TRUE explicitly: without a configuration OpenSSL 3.0 makes a v1
    # certificate (a CA by default), 3.5 a v3 one that is no CA without it.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj /CN=global-test-ca \
        -addext basicConstraints=critical,CA:TRUE
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca \
        -addext basicConstraints=critical,CA:TRUE
    for alg in ec rsa; do
        if [[ $alg == ec ]]; then
            opts=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
        else
            opts=(-newkey rsa:2048)
        fi
        openssl req "${opts[@]}" -nodes -keyout "$alg.key" -out "$alg.csr" \
            -subj /CN=localhost
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext
        openssl x509 -req -in "$alg.csr" -CA ca.pem -CAkey ca.key \
            -CAcreateserial -days 2 -extfile ext -out "$alg.pem"
    done
) >"$WORK/pki.log" 2>&1 || fatal "cannot make the test PKI"

# start_server ALG: openssl s_server -www with that certificate, outside
# the global configuration (it is the "unrelated" server). Sets PORT. Ready
# means a verified HTTPS answer (only this test's CA is trusted, so not some
# other server on the port); a port taken between choosing and binding it is
# retried with another one. Up to 60 s: 2 cores run ctest -j.
start_server() {
    local tries _ pid log=$WORK/s_server-$1.log
    for _ in 1 2 3 4 5; do
        PORT=$(closed_port)
        OPENSSL_CONF=$WORK/empty.cnf openssl s_server -www -quiet \
            -accept "127.0.0.1:$PORT" -cert "$pki/$1.pem" -key "$pki/$1.key" \
            >"$log" 2>&1 &
        pid=$!
        BACKGROUND_PIDS+=("$pid")
        tries=0
        until curl -s -o /dev/null --cacert "$pki/ca.pem" \
            "https://localhost:$PORT/"; do
            kill -0 "$pid" 2>/dev/null || break
            ((++tries > 600)) && fatal "s_server ($1) was not ready after 60 s"
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && return 0
        grep -qi 'in use' "$log" || break
    done
    fatal "s_server ($1) did not start: $(tail -n 3 "$log")"
}
start_server ec
EC_PORT=$PORT
start_server rsa
RSA_PORT=$PORT

# ---- the configurations under test ----
make_config "$WORK/global.cnf" || fatal "cannot write the configuration"
check "the configuration activates default before smartkey" \
    awk '/^default *=/ { d = NR } /^smartkey *=/ { s = NR }
         END { exit !(d && s && d < s) }' "$WORK/global.cnf"
{
    cat "$WORK/global.cnf"
    printf '\n[openssl_init]\nalg_section = algorithm_sect\n'
    printf '\n[algorithm_sect]\ndefault_properties = ?provider=smartkey\n'
} >"$WORK/prefer.cnf"
# the [openssl_init] section appears twice: OpenSSL merges them
check "the preferring configuration sets default_properties" \
    grep -q '^default_properties = ?provider=smartkey' "$WORK/prefer.cnf"

RUNNER=ossl_plain
for variant in global prefer; do
    export OPENSSL_CONF=$WORK/$variant.cnf
    export SMARTKEY_DEBUG="level:3,file:$WORK/$variant-debug.log"

    run ossl_plain list -providers
    check "$variant: openssl list -providers shows smartkey" \
        stdout_has 'smartkey'

    for alg in ec rsa; do
        port=${alg^^}_PORT
        run timeout "$CLI_TIMEOUT" curl -sS --cacert "$pki/ca.pem" \
            "https://localhost:${!port}/"
        check "$variant: curl to an unrelated TLS server ($alg certificate)" \
            succeeded
        check "$variant: curl gets the page ($alg certificate)" \
            stdout_has 's_server'
        run timeout "$CLI_TIMEOUT" curl -sS --cacert "$pki/other-ca.pem" \
            "https://localhost:${!port}/"
        check "$variant: curl still refuses a certificate of another CA" \
            equals "$RC" 60
    done
    check "$variant: curl loaded the provider (it read its settings)" \
        grep -q 'endpoint' "$WORK/$variant-debug.log"

    run timeout "$CLI_TIMEOUT" curl -sS --cacert "$CA_FILE" \
        "$ENDPOINT/_emulator/counters"
    check "$variant: curl to the SmartKey endpoint itself" succeeded

    run ossl_plain verify -CAfile "$pki/ca.pem" "$pki/rsa.pem"
    check "$variant: openssl verify of an RSA certificate" succeeded
    run ossl_plain verify -CAfile "$pki/other-ca.pem" "$pki/ec.pem"
    check "$variant: openssl verify refuses the wrong CA" failed_cleanly

    check "$variant: pkey -pubout (the provider's own TLS does not recurse)" \
        pubout_matches "smartkey:name=global%20ec" "$WORK/ec.der"
    check "$variant: pkey -pubout of the RSA key" \
        pubout_matches "smartkey:name=global%20rsa" "$WORK/rsa.der"

    run bash -c 'printf "Q\n" | timeout "$1" openssl s_client -brief \
        -verify_return_error -CAfile "$2" -connect "localhost:$3"' _ \
        "$CLI_TIMEOUT" "$pki/ca.pem" "$EC_PORT"
    check "$variant: openssl s_client handshake with verification" succeeded
    unset SMARTKEY_DEBUG
done

background_stop
finish
