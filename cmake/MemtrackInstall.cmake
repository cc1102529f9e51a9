include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MEMTRACK_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/memtrack")

install(DIRECTORY core/include/memtrack DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS memtrack_core EXPORT memtrackTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
if(TARGET memtrack_sim)
  install(DIRECTORY sim/include/memtrack DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
  install(DIRECTORY sim/profiles/ DESTINATION "${CMAKE_INSTALL_DATADIR}/memtrack/profiles")
  install(TARGETS memtrack_sim EXPORT memtrackTargets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
  set(MEMTRACK_HAS_SIM ON)
else()
  set(MEMTRACK_HAS_SIM OFF)
endif()
if(TARGET memtrack_traces)
  install(DIRECTORY traces/include/memtrack DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
  install(TARGETS memtrack_trace_format memtrack_traces EXPORT memtrackTargets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
  set(MEMTRACK_HAS_TRACES ON)
else()
  set(MEMTRACK_HAS_TRACES OFF)
endif()
if(TARGET memtrack_cli)
  install(TARGETS memtrack_cli RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
endif()

install(EXPORT memtrackTargets NAMESPACE memtrack:: DESTINATION "${MEMTRACK_CMAKE_DIR}")
configure_package_config_file(cmake/memtrackConfig.cmake.in
  "${PROJECT_BINARY_DIR}/memtrackConfig.cmake"
  INSTALL_DESTINATION "${MEMTRACK_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/memtrackConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/memtrackConfig.cmake"
  "${PROJECT_BINARY_DIR}/memtrackConfigVersion.cmake"
  DESTINATION "${MEMTRACK_CMAKE_DIR}")
