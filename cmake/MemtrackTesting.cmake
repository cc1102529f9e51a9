include(GoogleTest)

# memtrack_add_test(NAME SOURCES src... [LIBRARIES lib...] [LABELS label...])
# The one way a test is registered: a GoogleTest executable whose tests CTest discovers when it
# runs (so building never runs test code), labelled for `ctest -L`.
function(memtrack_add_test name)
  cmake_parse_arguments(_mat "" "" "SOURCES;LIBRARIES;LABELS" ${ARGN})
  add_executable(${name} ${_mat_SOURCES})
  target_link_libraries(${name} PRIVATE ${_mat_LIBRARIES} GTest::gtest GTest::gtest_main)
  memtrack_set_warnings(${name})
  set(labels unit)
  if(_mat_LABELS)
    set(labels ${_mat_LABELS})
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${labels}"
    EXTRA_ARGS --gtest_color=no)
endfunction()
