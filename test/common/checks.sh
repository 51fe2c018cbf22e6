# shellcheck shell=bash
# The checks every shell test counts, in the format of the C tests
# (test_common.h): "ok   - WHAT" or "FAIL - WHAT", and the closing
# "N passed, N failed". Sourced by test/cli/lib.sh and test/server/lib.sh;
# a library may define check_failure_details, called with the command of a
# failed check, to say more about it.
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
