#!/usr/bin/env bash
# Debian's HAProxy with ONE thread serves HTTPS with a SmartKey EC P-256 key
# from a key-reference file (`crt` = certificate + key reference, the
# provider activated only through openssl.cnf: default first, then
# smartkey), with `ssl-mode-async` off and on, while SmartKey answers
# every request 20 ms late: 64 concurrent clients make 2 full handshakes
# each (no resumption, TLS 1.3), each followed by a request; every
# handshake succeeds, is verified against the test CA, and costs exactly
# one sign request; so do a few TLS 1.2 handshakes. HAProxy runs in the foreground (-db) with its own config in the
# test's directory, on a loopback port, and is stopped by the test.
#
# The proof of the asynchronous engine: with ssl-mode-async more than one
# sign is in flight at once (the emulator's max_in_flight), without it
# exactly one (ASYNC_EXPECT_IN_FLIGHT=0 turns these checks off, see lib.sh).
# Usage: haproxy.sh MODULE_DIR EMULATOR TLS_LOAD
source "$(dirname "$0")/lib.sh"
async_init "$@"

LATENCY_MS=20
CLIENTS=64
PER_CLIENT=2
TOTAL=$((CLIENTS * PER_CLIENT))

emulator_start --latency-ms "$LATENCY_MS"
use_env_config
make_test_ca || fatal "could not make the test CA"
server_key smartkey ec haproxy-ec ||
    fatal "could not make the SmartKey key and its certificate: $(cat "$WORK/haproxy-ec.err")"
config_only_activation

for mode in off on; do
    counters_reset
    haproxy_start "$WORK/haproxy-ec.pem" "$mode" ||
        fatal "HAProxy (ssl-mode-async $mode) did not start"
    check "HAProxy, one thread, ssl-mode-async $mode, started with a key-reference file" \
        kill -0 "$HAPROXY_PID"
    check "  it looked the key up once, at start-up" \
        equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 1

    counters_reset
    tls_load "$CLIENTS" "$TOTAL"
    echo "     tls-load: $(cat "$OUT")"
    check "  $CLIENTS concurrent clients x $PER_CLIENT full handshakes: all $TOTAL succeed (verified, 200 answer)" \
        bash -c "[[ $RC -eq 0 ]] && grep -q 'handshakes=$TOTAL failures=0 ' '$OUT'"
    check "  each handshake cost exactly one sign request" \
        equals "$(sign_requests)" "$TOTAL"
    check "  no key was looked up again" \
        equals "$(counter '.requests["POST /crypto/v1/keys/info"]')" 0
    echo "     emulator: max_in_flight=$(counter .max_in_flight)"
    if expect_in_flight; then
        if [[ $mode == on ]]; then
            check "  with ssl-mode-async, signs were in flight at once (emulator's max_in_flight)" \
                signs_in_flight_at_once 2 "$CLIENTS"
        else
            check "  without ssl-mode-async, one sign at a time (emulator's max_in_flight)" \
                signs_in_flight_at_once 1 1
        fi
    fi

    if [[ $mode == on ]]; then
        # Without latency answers often arrive before the job has paused:
        # it must still pause once (HAProxy drops every fd of a wait
        # context at close, whether it had seen it or not: a crash).
        control POST /_emulator/latency '{"ms":0}' >/dev/null
        counters_reset
        tls_load "$CLIENTS" 512
        control POST /_emulator/latency "{\"ms\":$LATENCY_MS}" >/dev/null
        check "  no added latency: 512 handshakes by $CLIENTS clients succeed, one sign each" \
            bash -c "[[ $RC -eq 0 ]] && grep -q 'handshakes=512 failures=0 ' '$OUT' &&
                     [[ $(sign_requests) == 512 ]]"
        check "  HAProxy is still running" kill -0 "$HAPROXY_PID"

        # Clients that send their ClientHello and reset the connection at
        # once: HAProxy closes connections whose handshake job is paused
        # on a signature (it waits for the wait fd, then frees the SSL
        # without resuming the job); the late answers are dropped.
        counters_reset
        # (the clients load no provider: no instrumented module in python)
        run env OPENSSL_CONF="$WORK/empty.cnf" python3 - "$HAPROXY_PORT" <<'PY'
import socket, ssl, struct, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
socks = []
for _ in range(32):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    s.sendall(outgoing.read())
    socks.append(s)
time.sleep(0.005)  # HAProxy's signatures are on their way (20 ms late)
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
PY
        sleep 0.5
        check "  32 clients reset their connection mid-handshake: HAProxy is still running" \
            bash -c "[[ $RC -eq 0 ]] && kill -0 $HAPROXY_PID"
        echo "     signs for the reset handshakes: $(sign_requests)"
        counters_reset
        tls_load 16 32
        check "  then 32 handshakes by 16 clients succeed, one sign each" \
            bash -c "[[ $RC -eq 0 ]] && grep -q 'handshakes=32 failures=0 ' '$OUT' &&
                     [[ $(sign_requests) == 32 ]]"
    fi

    counters_reset
    tls_load 2 4 --tls1_2
    check "  TLS 1.2: 2 clients x 2 handshakes succeed" \
        bash -c "[[ $RC -eq 0 ]] && grep -q 'handshakes=4 failures=0 ' '$OUT'"
    check "  one sign request each" equals "$(sign_requests)" 4

    # the check is real: a client that does not trust the test CA fails
    tls_load 1 1 --cafile "$CA_FILE"
    check "  a client that does not trust the server's CA is refused" \
        bash -c "[[ $RC -eq 1 ]] && grep -q 'handshakes=0 failures=1 ' '$OUT'"

    haproxy_stop
    # stopped by SIGTERM: 143 (HAProxy 2.6) or 0; a crash is 134 or 139
    check "  HAProxy ran to the end (stopped by the test, no crash)" \
        bash -c "[[ $HAPROXY_STATUS == 143 || $HAPROXY_STATUS == 0 ]]"
    check "  HAProxy wrote no alert" haproxy_quiet
done

# async = off in the provider's section: jobs block their thread again.
make_config "$WORK/openssl.cnf" async=off ||
    fatal "could not write openssl.cnf with async = off"
haproxy_start "$WORK/haproxy-ec.pem" on ||
    fatal "HAProxy (ssl-mode-async, async = off) did not start"
counters_reset
tls_load 16 32
check "ssl-mode-async with async = off in openssl.cnf: 32 handshakes succeed, one sign each" \
    bash -c "[[ $RC -eq 0 ]] && grep -q 'handshakes=32 failures=0 ' '$OUT' &&
             [[ $(sign_requests) == 32 ]]"
check "  one sign at a time (emulator's max_in_flight)" signs_in_flight_at_once 1 1
haproxy_stop
check "  HAProxy ran to the end" \
    bash -c "[[ $HAPROXY_STATUS == 143 || $HAPROXY_STATUS == 0 ]]"

make_config "$WORK/openssl.cnf" async=sometimes ||
    fatal "could not write openssl.cnf"
run ossl_plain pkey -in "$WORK/haproxy-ec.key" -pubout
check "async = sometimes is refused with a clear message" \
    bash -c "[[ $RC -ne 0 ]] && grep -q \"async = 'sometimes'.*is not auto or off\" '$ERR'"

finish
