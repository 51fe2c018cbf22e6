#!/usr/bin/env bash
# Runs a test program against its own smartkey-emulator.
#
# Usage: with-emulator.sh PATH-TO-smartkey-emulator PROGRAM [ARGS...]
#        with-emulator.sh PATH-TO-smartkey-emulator [EMULATOR-OPTIONS...] -- \
#            PROGRAM [ARGS...]
#
# Starts the emulator on an ephemeral loopback port with the test controls
# and a fresh state directory, waits for its `endpoint` file, then runs
# PROGRAM with
#   SMARTKEY_TEST_ENDPOINT      the emulator's URL
#   SMARTKEY_TEST_CA            its CA certificate
#   SMARTKEY_TEST_API_KEY_FILE  the file holding the app API key
#   SMARTKEY_TEST_STATE         the state directory
# and stops the emulator afterwards (also when PROGRAM fails or is killed).
# PROGRAM's exit status is the script's.
set -u
emulator=${1:?usage: $0 PATH-TO-smartkey-emulator PROGRAM [ARGS...]}
shift
emulator_options=()
for arg in "$@"; do
    if [[ "$arg" == -- ]]; then
        while [[ "$1" != -- ]]; do
            emulator_options+=("$1")
            shift
        done
        shift
        break
    fi
done
[[ $# -ge 1 ]] || { echo "usage: $0 EMULATOR PROGRAM [ARGS...]" >&2; exit 2; }
[[ -x "$emulator" ]] || { echo "not executable: $emulator" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/smartkey-client-test.XXXXXX")
emulator_pid=""

stop_emulator() {
    [[ -n "$emulator_pid" ]] || return 0
    kill -TERM "$emulator_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$emulator_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
    emulator_pid=""
}
on_exit() {
    local rc=$?
    stop_emulator
    if [[ $rc -ne 0 && -s "$work/emulator.log" ]]; then
        echo "--- last lines of the emulator log ---" >&2
        tail -n 15 "$work/emulator.log" >&2
    fi
    rm -rf "$work"
    exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/state"
"$emulator" --state-dir "$work/state" --listen 127.0.0.1:0 --test-controls \
    "${emulator_options[@]}" --log "$work/emulator.log" 2>>"$work/emulator.stderr" &
emulator_pid=$!
# Up to 60 s: 2 cores run ctest -j, some of it under ASan. The state
# directory is new, so no stale `endpoint` can be mistaken for readiness.
for ((i = 0; i < 600; i++)); do
    [[ -s "$work/state/endpoint" ]] && break
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
        echo "emulator exited during start-up:" >&2
        tail -n 20 "$work/emulator.stderr" >&2
        emulator_pid=""
        exit 1
    fi
    sleep 0.1
done
if [[ ! -s "$work/state/endpoint" ]]; then
    echo "emulator not ready after 60 s" >&2
    exit 1
fi

export SMARTKEY_TEST_ENDPOINT=$(head -n 1 "$work/state/endpoint")
export SMARTKEY_TEST_CA="$work/state/ca.pem"
export SMARTKEY_TEST_API_KEY_FILE="$work/state/api-key"
export SMARTKEY_TEST_STATE="$work/state"
"$@"
