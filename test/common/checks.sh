# shellcheck shell=bash
# The checks every shell test counts, in the format of the C tests
# (test_common.h): "ok   - WHAT" or "FAIL - WHAT", and the closing
# "N passed, N failed", and the start-up checks need_args, need_tools and
# need_built. Sourced by test/cli/lib.sh and test/server/lib.sh; a library
# may define check_failure_details, called with the command of a failed
# check, to say more about it.
passed=0
failed=0

# record_pass WHAT / record_failure TEXT...: count one check, print its line.
record_pass() {
    passed=$((passed + 1))
    echo "ok   - $1"
}
record_failure() {
    failed=$((failed + 1))
    echo "FAIL - $*"
}

# check WHAT COMMAND...: one check, passed when COMMAND succeeds.
check() {
    local what=$1
    shift
    if "$@"; then
        record_pass "$what"
    else
        record_failure "$what"
        check_failure_details "$@"
    fi
}
check_failure_details() { :; }

# tally: the closing line; its status is 0 when nothing failed.
tally() {
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

# What a test script needs before it starts; each exits 2 (the test cannot
# run) with a line saying what is missing.
# need_args COUNT USAGE ARGS...: at least COUNT arguments ("usage: $0 USAGE").
need_args() {
    local count=$1 usage=$2
    shift 2
    if [[ $# -lt $count ]]; then
        echo "usage: $0 $usage" >&2
        exit 2
    fi
}
# need_tools TOOL...: each on PATH.
need_tools() {
    local tool
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null; then
            echo "missing tool: $tool (see scripts/setup)" >&2
            exit 2
        fi
    done
}
# need_built FILE...: each built.
need_built() {
    local file
    for file in "$@"; do
        if [[ ! -f $file ]]; then
            echo "missing $file: build first" >&2
            exit 2
        fi
    done
}
