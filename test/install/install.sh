#!/usr/bin/env bash
# What a user gets from installing smartkey, proved with the installed files
# alone (never the build tree): the module where OpenSSL looks for it, the
# snippet that activates it (`openssl list -providers`), the public header
# (compiles on its own), the manual page (`man -l`), and a server-side wrap
# with the stock `openssl pkeyutl` (docs/wrapping.md) against a private
# smartkey-emulator, configured by the installed snippet plus the
# environment; the installed smartkey-keyservice answers a Salesforce
# callout (replay detection on) with a JWE python3-jwcrypto decrypts to the
# key, and its systemd unit and manual page are there.
#
# MODE cmake: `cmake --install` into a staging root (DESTDIR).
# MODE deb:   `cpack -G DEB`; the package's dependencies are the libraries
#             smartkey.so links (dpkg-shlibdeps); it is installed with
#             `dpkg --root` into an empty root, removed (the conffile stays)
#             and purged (nothing stays).
# Neither touches the real system. With SMARTKEY_TEST_SYSTEM_INSTALL=1 (as
# root, on a throwaway machine) MODE deb also installs the package for real
# with apt-get, runs the same checks, and purges it (also on failure).
#
# Usage: install.sh cmake|deb BUILD_DIR MODULE_DIR EMULATOR MODULES_DIR
#                   CONF_DIR
source "$(dirname "$0")/../keyservice/lib.sh"
if [[ $# -ne 6 || ! $1 =~ ^(cmake|deb)$ ]]; then
    echo "usage: $0 cmake|deb BUILD_DIR MODULE_DIR EMULATOR MODULES_DIR" \
        "CONF_DIR" >&2
    exit 2
fi
mode=$1
build=$2
modules_dir=$5
conf_dir=$6
package=openssl-provider-smartkey
system_install=${SMARTKEY_TEST_SYSTEM_INSTALL:-0}
cli_init "$3" "$4"

for tool in cmake cpack dpkg dpkg-deb cc man gzip readelf nm; do
    command -v "$tool" >/dev/null || fatal "missing tool: $tool (scripts/setup)"
done

ROOT=$WORK/root
mkdir -p "$ROOT"

# ---- the checks, for files installed under ROOT ("" = the real system) ----

# installed_openssl ROOT ARGS...: openssl as a user of that installation
# runs it: the installed snippet, and the installed modules directory (for
# a staging root, through OPENSSL_MODULES since libcrypto's built-in one is
# the real system's).
installed_openssl() {
    local root=$1
    shift
    if [[ -n $root ]]; then
        OPENSSL_MODULES=$root$modules_dir OPENSSL_CONF=$root$conf_dir/openssl.cnf \
            timeout "$CLI_TIMEOUT" openssl "$@"
    else
        env -u OPENSSL_MODULES OPENSSL_CONF="$conf_dir/openssl.cnf" \
            timeout "$CLI_TIMEOUT" openssl "$@"
    fi
}

lists_active_smartkey() {
    run installed_openssl "$1" list -providers
    succeeded && grep -A3 '^  smartkey$' "$OUT" | grep -q 'status: active'
}

exports_only_provider_init() {
    local symbols
    symbols=$(nm -D --defined-only "$1" | awk '$2 ~ /^[TDBR]$/ {print $3}')
    [[ $symbols == OSSL_provider_init ]]
}

# The build tree must not leak into an installed module.
has_no_build_rpath() {
    ! readelf -d "$1" | grep -Eq '(RPATH|RUNPATH)'
}

header_compiles_alone() {
    cat >"$WORK/uses_header.c" <<'EOF'
#include <smartkey/smartkey.h>
#include <string.h>

int main(void) { return strcmp(SMARTKEY_PROVIDER_NAME, "smartkey") != 0; }
EOF
    cc -std=c11 -Wall -Wextra -Werror -I"$1/usr/include" \
        -o "$WORK/uses_header" "$WORK/uses_header.c" 2>"$WORK/cc.err" &&
        "$WORK/uses_header"
}

man_renders() {
    MANWIDTH=80 man -l "$1" 2>/dev/null >"$WORK/man.txt" &&
        grep -q '^NAME' "$WORK/man.txt" &&
        grep -q 'provider-smartkey' "$WORK/man.txt" &&
        grep -q '^SYNOPSIS' "$WORK/man.txt"
}

# The wrap of docs/wrapping.md (a): an AES key wrapped under a SmartKey RSA
# key pair whose private half the test keeps as the cloud's stand-in.
prepare_wrap() {
    emulator_start
    use_env_config
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$WORK/cloud.pem" 2>/dev/null || fatal "cannot make an RSA key"
    create_aes "My AES" 256 >/dev/null || fatal "cannot create the AES key"
    export_value "My AES" "$WORK/aes.bin" || fatal "cannot export the AES key"
    import_rsa_pair "cloud kek" "$WORK/cloud.pem" \
        '["WRAPKEY", "ENCRYPT", "DECRYPT", "APPMANAGEABLE"]' >/dev/null ||
        fatal "cannot import the wrapping key into the emulator"
}

wraps_aes_key() {
    rm -f "$WORK/wrapped.bin" "$WORK/recovered.bin"
    # shellcheck disable=SC2046
    run installed_openssl "$1" pkeyutl -encrypt -propquery "$SMARTKEY_PROPQ" \
        -inkey 'smartkey:name=cloud%20kek' -in /dev/null \
        -out "$WORK/wrapped.bin" $(oaep_opts sha256) \
        -pkeyopt 'smartkey-wrap-subject:smartkey:name=My%20AES'
    succeeded &&
        local_decrypt "$WORK/cloud.pem" sha256 "$WORK/wrapped.bin" \
            "$WORK/recovered.bin" 2>/dev/null &&
        cmp -s "$WORK/recovered.bin" "$WORK/aes.bin"
}

# The service of docs/byok/salesforce.md, from the installed files: the
# installed program loads the installed module (OPENSSL_MODULES for a
# staging root, as for openssl above).
prepare_keyservice() {
    find_python
    ks_prepare
    create_aes "Cache Only" 256 >/dev/null &&
        export_value "Cache Only" "$WORK/dek.bin" ||
        fatal "cannot create the cache-only key"
    ks_config "$WORK/ks.conf"
}

keyservice_answers() { # ROOT
    local root=$1 nonce status
    nonce=$(openssl rand -hex 16)
    if [[ -n $root ]]; then
        OPENSSL_MODULES=$root$modules_dir ks_start "$WORK/ks.conf" \
            "$root/usr/sbin/smartkey-keyservice"
    else
        ks_start "$WORK/ks.conf" /usr/sbin/smartkey-keyservice
    fi
    status=$(callout /keys/key-1 "$nonce")
    ks_stop
    [[ $status == 200 ]] && answer_decrypts key-1 "$nonce"
}

check_installed() { # ROOT DESCRIPTION
    local root=$1 how=$2 module=$1$modules_dir/smartkey.so
    local page=$1/usr/share/man/man7/provider-smartkey.7.gz
    check "$how: smartkey.so is in OpenSSL's modules directory" \
        test -f "$module"
    check "$how: the snippet is $conf_dir/openssl.cnf" \
        test -f "$root$conf_dir/openssl.cnf"
    check "$how: the header is include/smartkey/smartkey.h" \
        test -f "$root/usr/include/smartkey/smartkey.h"
    check "$how: the manual page is man7/provider-smartkey.7.gz" \
        test -f "$page"
    check "$how: smartkey.so exports OSSL_provider_init alone" \
        exports_only_provider_init "$module"
    check "$how: smartkey.so has no RPATH/RUNPATH" has_no_build_rpath "$module"
    check "$how: openssl list -providers shows smartkey active" \
        lists_active_smartkey "$root"
    LAST_COMMAND=""
    check "$how: the installed header compiles on its own" \
        header_compiles_alone "$root"
    check "$how: man -l renders the installed page" man_renders "$page"
    check "$how: pkeyutl wraps an AES key with the installed files" \
        wraps_aes_key "$root"
    check "$how: smartkey-keyservice is in sbin" \
        test -x "$root/usr/sbin/smartkey-keyservice"
    check "$how: its systemd unit is installed" \
        test -f "$root/usr/lib/systemd/system/smartkey-keyservice.service"
    check "$how: its manual page is man8/smartkey-keyservice.8.gz" \
        test -f "$root/usr/share/man/man8/smartkey-keyservice.8.gz"
    check "$how: smartkey-keyservice answers a callout with a JWE of the key" \
        keyservice_answers "$root"
}

# Without the snippet nothing activates smartkey: the snippet did it above.
run env OPENSSL_CONF="$WORK/empty.cnf" openssl list -providers
check "the empty configuration does not list smartkey" \
    stdout_lacks '^  smartkey$'

prepare_wrap
prepare_keyservice
trap ks_cleanup EXIT

# ---- cmake --install ----

if [[ $mode == cmake ]]; then
    run env DESTDIR="$ROOT" cmake --install "$build" --prefix /usr
    check "cmake --install into a staging root succeeds" succeeded
    check_installed "$ROOT" "cmake --install"
    # Only the files listed above, the documentation and nothing of the
    # tests (the emulator is not installed).
    check "cmake --install installs no test program" \
        bash -c "! find '$ROOT' -type f | grep -Eq 'emulator|/bin/'"
    finish
fi

# ---- the .deb ----

run cpack -G DEB --config "$build/CPackConfig.cmake" -B "$WORK/pkg"
deb=$(find "$WORK/pkg" -maxdepth 1 -name "${package}_*.deb" | head -n1)
check "cpack -G DEB builds $package" test -n "$deb"
if [[ -z $deb ]]; then
    # cpack first brings the build tree up to date ("preinstall")
    find "$WORK/pkg" -name PreinstallOutput.log -exec tail -n 20 {} \;
    finish
fi

depends=$(dpkg-deb -f "$deb" Depends)
echo "       Depends: $depends"
for library in libssl3 libcurl4 libjansson4 libc6; do
    check "the package depends on $library (from dpkg-shlibdeps)" \
        grep -Eq "(^|, )$library(t64)? \(>= " <<<"$depends"
done
check "the snippet is a conffile" \
    grep -qx "$conf_dir/openssl.cnf" <(dpkg-deb --ctrl-tarfile "$deb" |
        tar -xOf - ./conffiles)

# An empty dpkg database in ROOT: the libraries are the real system's, so
# the package's dependencies cannot be met there (--force-depends); as a
# non-root user dpkg also needs --force-not-root.
mkdir -p "$ROOT/var/lib/dpkg/info" "$ROOT/var/lib/dpkg/updates"
: >"$ROOT/var/lib/dpkg/status"
: >"$ROOT/var/lib/dpkg/available"
dpkg_root() {
    local force=--force-depends
    [[ $(id -u) -eq 0 ]] || force+=,not-root
    dpkg --root="$ROOT" --log=/dev/null "$force" "$@"
}
package_files() {
    find "$ROOT" -path "$ROOT/var/lib/dpkg" -prune -o ! -type d -print
}

run dpkg_root --install "$deb"
check "dpkg --install into the staging root succeeds" succeeded
check "dpkg reports the package installed" \
    bash -c "dpkg --root='$ROOT' -s $package 2>/dev/null |
        grep -q '^Status: install ok installed'"
check_installed "$ROOT" "dpkg --install"

run dpkg_root --remove "$package"
check "dpkg --remove succeeds" succeeded
check "after --remove only the conffile is left" \
    equals "$(package_files)" "$ROOT$conf_dir/openssl.cnf"
run dpkg_root --purge "$package"
check "dpkg --purge succeeds" succeeded
check "after --purge no file of the package is left" \
    equals "$(package_files)" ""

if [[ $system_install == 1 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        fatal "SMARTKEY_TEST_SYSTEM_INSTALL=1 needs root"
    fi
    if dpkg -s "$package" >/dev/null 2>&1 || [[ -e $conf_dir ]] ||
        [[ -e $modules_dir/smartkey.so ]]; then
        fatal "smartkey is already installed on this system: not touching it"
    fi
    purge_system() {
        local status=$?
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$package" \
            >/dev/null 2>&1
        # cli_cleanup exits with the status it finds in $?
        (exit "$status")
        cli_cleanup
    }
    trap purge_system EXIT
    # apt resolves the dependencies from the system's sources, as a user's
    # `apt install ./package.deb` does.
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$deb"
    check "apt-get install of the .deb on this system succeeds" succeeded
    check_installed "" "system install"
    run env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$package"
    check "apt-get purge removes it from this system" succeeded
    check "no file of the package is left on this system" \
        bash -c "[[ ! -e '$conf_dir' && ! -e '$modules_dir/smartkey.so' &&
            ! -e /usr/include/smartkey ]]"
fi

finish
