# `cpack -G DEB`: the Debian package openssl-provider-smartkey (named like
# Debian's own openssl-provider-legacy). Its run-time dependencies are
# computed by dpkg-shlibdeps from smartkey.so, so they follow the libraries
# it was linked with (libssl3, libcurl4, libjansson4 on Debian 12; the t64
# names on Debian 13). See docs/install.md.
set(CPACK_PACKAGE_NAME smartkey)
set(CPACK_PACKAGE_VENDOR "smartkey project")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "OpenSSL 3 provider for keys held in SmartKey (Fortanix DSM)")
set(CPACK_PACKAGE_DESCRIPTION
  "smartkey exposes keys held in SmartKey (Fortanix Data Security Manager) to\n\
OpenSSL 3 as opaque keys named by smartkey: URIs. Private key material never\n\
leaves SmartKey: signatures, decryption and key wrapping for bring-your-own-\n\
key imports run there, through its REST API. smartkey-keyservice, a\n\
Salesforce cache-only key service built on the provider, is included.")
set(CPACK_PACKAGE_CONTACT "smartkey maintainers <smartkey@localhost>")
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/")

set(CPACK_DEBIAN_PACKAGE_NAME openssl-provider-smartkey)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The provider is loaded by OpenSSL's programs and libraries; the stock
# `openssl` command is how most users reach it.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openssl, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://www.fortanix.com/platform/data-security-manager")
# The .deb installs under /usr whatever CMAKE_INSTALL_PREFIX a developer
# configured; the modules and configuration directories are absolute anyway.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

# Files under /etc are the administrator's once installed: dpkg keeps their
# edits on upgrade and removes them only on purge.
set(conffiles "")
foreach(conffile ${SMARTKEY_INSTALLED_CONFFILES})
  if(conffile MATCHES "^/etc/")
    string(APPEND conffiles "${conffile}\n")
  endif()
endforeach()
if(conffiles)
  file(WRITE ${PROJECT_BINARY_DIR}/debian/conffiles "${conffiles}")
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/debian/conffiles)
endif()

include(CPack)
