# shellcheck shell=bash
# Functions of the BYOK tests on top of the wrap tests' lib.sh (sourced
# read-only: cli_init, emulator_start, rest, counter, run, check, ossl_order,
# oaep_opts ...).

source "$(dirname "${BASH_SOURCE[0]}")/../wrap/lib.sh"

BYOK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The verifiers need Debian's python3-cryptography and python3-jwcrypto
# (scripts/setup); a python3 earlier on PATH (a virtualenv, pyenv) may lack
# them, so the system interpreter is the fallback.
find_python() {
    local candidate
    for candidate in python3 /usr/bin/python3; do
        if "$candidate" -c 'import cryptography, jwcrypto' 2>/dev/null; then
            PYTHON=$candidate
            return 0
        fi
    done
    echo "python3 with cryptography and jwcrypto is missing (scripts/setup)" >&2
    exit 2
}

# verify SUBCOMMAND ARGS...: the offline verifier (test/byok/verify.py);
# its reason goes to $WORK/verify.err.
verify() {
    "$PYTHON" "$BYOK_DIR/verify.py" "$@" 2>"$WORK/verify.err"
}
verify_fails() { ! verify "$@"; }

# import_key NAME OBJ_TYPE VALUE_FILE [CURVE]: a key with known material and
# EXPORT (so that SmartKey may wrap it); prints its kid. The test keeps the
# material to compare with, so nothing is ever exported from the server.
import_key() {
    rest PUT /crypto/v1/keys "$(jq -nc --arg name "$1" --arg type "$2" \
        --arg value "$(base64 -w0 "$3")" --arg curve "${4:-}" \
        '{name: $name, obj_type: $type, value: $value,
          key_ops: ["EXPORT", "APPMANAGEABLE"]}
         + (if $curve == "" then {} else {elliptic_curve: $curve} end)')" |
        jq -re .kid
}

# make_asymmetric_targets: an RSA-2048 and an EC P-256 key the test knows,
# in $WORK: rsa.pem and ec.pem, and their PKCS#8 DER rsa.p8 and ec.p8.
make_asymmetric_targets() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$WORK/rsa.pem" 2>/dev/null &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -out "$WORK/ec.pem" 2>/dev/null &&
        openssl pkcs8 -topk8 -nocrypt -in "$WORK/rsa.pem" -outform DER \
            -out "$WORK/rsa.p8" &&
        openssl pkcs8 -topk8 -nocrypt -in "$WORK/ec.pem" -outform DER \
            -out "$WORK/ec.p8"
}

# byok_artifact OUT KEY_ARGS HASH SUBJECT FORMAT [-pkeyopt ...]: the
# documented command, default provider first.
byok_artifact() {
    local out=$1 key_args=$2 hash=$3 subject=$4 format=$5
    shift 5
    rm -f "$out"
    # shellcheck disable=SC2046,SC2086
    run ossl pkeyutl -encrypt $key_args -propquery "$SMARTKEY_PROPQ" \
        -in /dev/null -out "$out" $(oaep_opts "$hash") \
        -pkeyopt "smartkey-wrap-subject:smartkey:name=$subject" \
        -pkeyopt "smartkey-wrap-format:$format" "$@"
}
