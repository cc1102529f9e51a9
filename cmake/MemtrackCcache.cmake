# Compile through ccache when it is installed. base_dir and nohashdir make a clean clone in
# another folder (as CI uses) hit the same cache entries as the developer's checkout.
if(MEMTRACK_USE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(MEMTRACK_CCACHE_PROGRAM ccache)
  if(MEMTRACK_CCACHE_PROGRAM)
    set(CMAKE_CXX_COMPILER_LAUNCHER
      "${CMAKE_COMMAND}" -E env "CCACHE_BASEDIR=${PROJECT_SOURCE_DIR}" CCACHE_NOHASHDIR=1
      "${MEMTRACK_CCACHE_PROGRAM}")
  endif()
endif()
