include(GoogleTest)

# memtrack_add_test(NAME SOURCES src... [LIBRARIES lib...] [LABEL label])
# The one way a test is registered: a GoogleTest executable whose tests CTest discovers when it
# runs (so building never runs test code), labelled for `ctest -L`.
function(memtrack_add_test name)
  cmake_parse_arguments(_mat "" "LABEL" "SOURCES;LIBRARIES" ${ARGN})
  add_executable(${name} ${_mat_SOURCES})
  target_link_libraries(${name} PRIVATE ${_mat_LIBRARIES} GTest::gtest GTest::gtest_main)
  memtrack_set_warnings(${name})
  # One label per executable: gtest_discover_tests cannot pass a list-valued property.
  set(label unit)
  if(_mat_LABEL)
    set(label ${_mat_LABEL})
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS ${label}
    EXTRA_ARGS --gtest_color=no)
endfunction()
