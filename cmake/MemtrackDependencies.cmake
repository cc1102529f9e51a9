# memtrack_require_package(NAME [CONFIG] DEBIAN "pkg ...")
# find_package, and when it fails stop at once naming the Debian package(s) to install, instead
# of failing later with a missing header.
macro(memtrack_require_package name)
  cmake_parse_arguments(_mrp "CONFIG" "DEBIAN" "" ${ARGN})
  if(_mrp_CONFIG)
    find_package(${name} CONFIG QUIET)
  else()
    find_package(${name} QUIET)
  endif()
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR
      "memtrack needs ${name}, which was not found. Install it with:\n"
      "  sudo apt-get install ${_mrp_DEBIAN}\n"
      "or run ./bootstrap.sh, which installs every dependency.")
  endif()
endmacro()
