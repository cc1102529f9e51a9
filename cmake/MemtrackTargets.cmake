# memtrack_set_warnings(TARGET): the project's warning set; errors only when
# MEMTRACK_WARNINGS_AS_ERRORS is ON (CI), never by default for users.
function(memtrack_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast
    -Wno-missing-field-initializers -Wnon-virtual-dtor -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough)
  if(MEMTRACK_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# memtrack_add_library(TARGET EXPORT_NAME NAME SOURCES src...)
# A memtrack library: memtrack::NAME alias (the same name in-tree and installed), public headers
# in include/, the project's warnings.
function(memtrack_add_library target)
  cmake_parse_arguments(_mal "" "EXPORT_NAME" "SOURCES" ${ARGN})
  add_library(${target} ${_mal_SOURCES})
  add_library(memtrack::${_mal_EXPORT_NAME} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${_mal_EXPORT_NAME} OUTPUT_NAME ${target}
    POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  memtrack_set_warnings(${target})
endfunction()
