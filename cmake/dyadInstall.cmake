# Installs the headers, the exported INTERFACE targets dyad::dyad, dyad::native and
# dyad::monitor (with SQLite), and a relocatable package config.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/dyad DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS dyad dyad_native dyad_monitor EXPORT dyadTargets)
install(EXPORT dyadTargets NAMESPACE dyad:: DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/dyad)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/dyadConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/dyadConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/dyad)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/dyadConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/dyadConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/dyadConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/dyadXsimdFixup.cmake ${CMAKE_CURRENT_LIST_DIR}/dyadInstances.cmake
  DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/dyad)
