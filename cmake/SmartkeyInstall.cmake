# Where `cmake --install` (and the .deb) put smartkey, and the manual page
# built from docs/provider-smartkey.7.md. See docs/install.md.
include(GNUInstallDirs)

# Installing (and cpack's "preinstall" step) never rebuilds: the install
# tests package the build tree while the rest of the suite runs its
# smartkey.so, which a relink would pull from under them. Build first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# OpenSSL finds a provider given by bare name (`module = smartkey.so`,
# `-provider smartkey`) only in its modules directory, which is fixed when
# libcrypto is built and does not follow our install prefix: ask libcrypto.
pkg_get_variable(libcrypto_modulesdir libcrypto modulesdir)
if(NOT libcrypto_modulesdir)
  set(libcrypto_modulesdir ${CMAKE_INSTALL_FULL_LIBDIR}/ossl-modules)
endif()
set(SMARTKEY_MODULES_DIR ${libcrypto_modulesdir} CACHE PATH
  "Where smartkey.so is installed (OpenSSL's modules directory)")

# The configuration belongs with the system's OpenSSL too, and every document
# (the snippet's own comments, provider-smartkey(7)) names /etc/smartkey, so
# it does not follow the prefix either.
set(SMARTKEY_CONF_DIR /etc/smartkey CACHE PATH
  "Where the openssl.cnf snippet is installed (openssl.cnf, *.cnf)")

install(FILES ${PROJECT_SOURCE_DIR}/include/smartkey/smartkey.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/smartkey)

# The snippet is a complete configuration for OPENSSL_CONF; it is installed
# under the name the documentation uses. Any further snippet keeps its name.
file(GLOB smartkey_snippets CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/openssl.cnf.d/*.cnf)
set(SMARTKEY_INSTALLED_CONFFILES "")
foreach(snippet ${smartkey_snippets})
  get_filename_component(snippet_name ${snippet} NAME)
  if(snippet_name STREQUAL "smartkey.cnf")
    set(snippet_name openssl.cnf)
  endif()
  install(FILES ${snippet} DESTINATION ${SMARTKEY_CONF_DIR}
    RENAME ${snippet_name})
  list(APPEND SMARTKEY_INSTALLED_CONFFILES ${SMARTKEY_CONF_DIR}/${snippet_name})
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/
  DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")

# The manual pages, regenerated whenever their Markdown changes. pandoc's
# man writer keeps tables (tbl) and definition lists; the filter turns the
# Markdown's headings into the page's sections.
# smartkey_man_page(NAME SECTION): docs/NAME.SECTION.md -> manSECTION/NAME.SECTION.gz;
# sets SMARTKEY_MAN_PAGE_<NAME> to the generated page ("" without pandoc).
find_program(PANDOC_EXECUTABLE pandoc)
find_program(GZIP_EXECUTABLE gzip)
function(smartkey_man_page name section)
  set(source ${PROJECT_SOURCE_DIR}/docs/${name}.${section}.md)
  set(page ${PROJECT_BINARY_DIR}/man/${name}.${section})
  if(NOT PANDOC_EXECUTABLE OR NOT GZIP_EXECUTABLE OR NOT EXISTS ${source})
    message(WARNING "pandoc or gzip not found (scripts/setup installs them): "
      "${name}.${section} is neither built nor installed")
    set(SMARTKEY_MAN_PAGE_${name} "" PARENT_SCOPE)
    return()
  endif()
  string(TOUPPER ${name} title)
  # The configure date, or SOURCE_DATE_EPOCH's for reproducible packages.
  string(TIMESTAMP man_date "%Y-%m-%d" UTC)
  add_custom_command(OUTPUT ${page} ${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND ${PANDOC_EXECUTABLE} --standalone --from markdown --to man
      --lua-filter ${PROJECT_SOURCE_DIR}/cmake/man-page.lua
      --metadata title=${title} --metadata section=${section}
      --metadata "date=${man_date}"
      --metadata "footer=smartkey ${PROJECT_VERSION}"
      --metadata "header=smartkey"
      --output ${page} ${source}
    # -n: no name or time stamp inside, so the .gz is reproducible too
    COMMAND ${GZIP_EXECUTABLE} -9nkf ${page}
    DEPENDS ${source} ${PROJECT_SOURCE_DIR}/cmake/man-page.lua
    COMMENT "Generating ${name}.${section} from docs/${name}.${section}.md"
    VERBATIM)
  add_custom_target(man-${name} ALL DEPENDS ${page})
  install(FILES ${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  set(SMARTKEY_MAN_PAGE_${name} ${page} PARENT_SCOPE)
endfunction()

smartkey_man_page(provider-smartkey 7)
set(SMARTKEY_MAN_PAGE ${SMARTKEY_MAN_PAGE_provider-smartkey})
