# shellcheck shell=bash
# Functions of the wrap tests on top of the CLI tests' lib.sh (sourced
# read-only: cli_init, emulator_start, rest, control, counter, run, check...).

source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

# local_rsa_key PEM PUB_PEM [BITS]: a local RSA key pair of BITS (2048) bits
# made by stock openssl, and its public half; fatal when it cannot be made.
local_rsa_key() {
    openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${3:-2048}" \
        -out "$1" 2>/dev/null &&
        openssl pkey -in "$1" -pubout -out "$2" ||
        fatal "cannot make a local RSA key"
}

# cloud_kek BITS: a cloud's key-encryption key, whose private half stays here
# as the stand-in: $WORK/cloud.pem, cloud-pub.pem, cloud-pub.der and a
# self-signed certificate cloud.crt.
cloud_kek() {
    local_rsa_key "$WORK/cloud.pem" "$WORK/cloud-pub.pem" "$1"
    openssl pkey -in "$WORK/cloud.pem" -pubout -outform DER \
        -out "$WORK/cloud-pub.der" &&
        openssl req -x509 -new -key "$WORK/cloud.pem" -subj /CN=cloud-kek \
            -days 2 -out "$WORK/cloud.crt" 2>/dev/null ||
        fatal "cannot make the local public key and certificate"
}

# The property query that selects smartkey's RSA cipher whatever the order
# of -provider options (docs/wrapping.md).
# shellcheck disable=SC2034
SMARTKEY_PROPQ='?provider=smartkey'

# ossl_order ORDER COMMAND ARGS...: openssl with both providers, ORDER
# "default-first" (what the documentation recommends) or "smartkey-first".
ossl_order() {
    local order=$1 command=$2
    shift 2
    if [[ $order == smartkey-first ]]; then
        timeout "$CLI_TIMEOUT" openssl "$command" -provider-path "$MODULE_DIR" \
            -provider smartkey -provider default "$@"
    else
        timeout "$CLI_TIMEOUT" openssl "$command" -provider-path "$MODULE_DIR" \
            -provider default -provider smartkey "$@"
    fi
}

# create_aes NAME BITS [EXPORTABLE=1]: an AES key in SmartKey; prints its
# kid. Exportable keys may be wrapped (EXPORT) and, for the comparison the
# tests make, exported.
create_aes() {
    local ops='["ENCRYPT", "DECRYPT", "EXPORT", "APPMANAGEABLE"]'
    [[ ${3:-1} == 1 ]] || ops='["ENCRYPT", "DECRYPT", "APPMANAGEABLE"]'
    rest POST /crypto/v1/keys "$(jq -nc --arg name "$1" --argjson bits "$2" \
        --argjson ops "$ops" \
        '{name: $name, obj_type: "AES", key_size: $bits, key_ops: $ops}')" |
        jq -re .kid
}

# import_secret NAME FILE: a SECRET object holding FILE's bytes (EXPORT).
import_secret() {
    rest PUT /crypto/v1/keys "$(jq -nc --arg name "$1" \
        --arg value "$(base64 -w0 "$2")" \
        '{name: $name, obj_type: "SECRET", value: $value,
          key_ops: ["EXPORT", "APPMANAGEABLE"]}')" | jq -re .kid
}

# import_rsa_pair NAME PEM OPS_JSON [POLICY_JSON]: imports a local RSA
# private key (PKCS#1 DER) into SmartKey with the given key_ops and
# optional encryption policy; prints its kid. The tests keep the PEM as the
# stand-in private key of a cloud.
import_rsa_pair() {
    local der=$WORK/import.der policy=${4:-}
    openssl rsa -in "$2" -traditional -outform DER -out "$der" 2>/dev/null ||
        return 1
    rest PUT /crypto/v1/keys "$(jq -nc --arg name "$1" \
        --arg value "$(base64 -w0 "$der")" --argjson ops "$3" \
        --arg policy "$policy" \
        '{name: $name, obj_type: "RSA", value: $value, key_ops: $ops}
         + (if $policy == "" then {}
            else {rsa: {encryption_policy: ($policy | fromjson)}} end)')" |
        jq -re .kid
}

# export_value NAME OUT: the raw key bytes SmartKey holds (for comparison).
export_value() {
    rest POST /crypto/v1/keys/export "$(jq -nc --arg name "$1" \
        '{name: $name}')" | jq -re .value | base64 -d >"$2"
}

# key_count: how many persistent objects the server lists.
key_count() {
    rest GET '/crypto/v1/keys?limit=1000' | jq -r 'length'
}

# oaep_opts HASH: the -pkeyopt options of OAEP with HASH for label and MGF1.
oaep_opts() {
    echo "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:$1" \
        "-pkeyopt rsa_mgf1_md:$1"
}

# local_decrypt PRIV_PEM HASH IN OUT: stock openssl, default provider only.
local_decrypt() {
    # shellcheck disable=SC2046
    timeout "$CLI_TIMEOUT" openssl pkeyutl -decrypt -inkey "$1" -in "$3" \
        -out "$4" $(oaep_opts "$2")
}
