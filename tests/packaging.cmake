# Package tests, included from tests/CMakeLists.txt.
#
# headers_self_contained: every header under include/dyad compiles on its own (and twice, so a
#   missing #pragma once shows). One generated .cpp per header, built as the OBJECT library
#   dyad_header_check, which is outside the default build; the test builds it, so only headers
#   changed since the last run are recompiled.
# package_downstream: install this build tree into a temporary prefix and build and run
#   tests/downstream (find_package(dyad) + dyad::dyad) against it.

file(GLOB_RECURSE DYAD_PUBLIC_HEADERS CONFIGURE_DEPENDS
     RELATIVE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/include/dyad/*.hpp)
list(SORT DYAD_PUBLIC_HEADERS)
if(NOT DYAD_WITH_MPI)
  list(REMOVE_ITEM DYAD_PUBLIC_HEADERS dyad/dist/mpi.hpp)  # the one header that needs <mpi.h>
endif()
set(_dyad_header_check_sources)
foreach(header IN LISTS DYAD_PUBLIC_HEADERS)
  set(source ${CMAKE_CURRENT_BINARY_DIR}/header_check/${header}.cpp)
  # file(CONFIGURE) leaves an unchanged file alone, so reconfiguring does not force recompiles.
  file(CONFIGURE OUTPUT ${source} CONTENT "#include <${header}>\n#include <${header}>\n" @ONLY)
  list(APPEND _dyad_header_check_sources ${source})
endforeach()

add_library(dyad_header_check OBJECT EXCLUDE_FROM_ALL ${_dyad_header_check_sources})
target_link_libraries(dyad_header_check PRIVATE dyad_flags)
if(DYAD_WITH_MPI)
  target_link_libraries(dyad_header_check PRIVATE MPI::MPI_CXX)
endif()
get_property(_dyad_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(_dyad_multi_config)
  set(_dyad_config_args --config $<CONFIG>)
  set(_dyad_build_type $<CONFIG>)
else()
  set(_dyad_config_args)
  set(_dyad_build_type ${CMAKE_BUILD_TYPE})
endif()
# Keep going after the first failing header, so one run lists all of them.
set(_dyad_keep_going)
if(CMAKE_GENERATOR MATCHES "Makefiles")
  set(_dyad_keep_going -- -k)
elseif(CMAKE_GENERATOR MATCHES "Ninja")
  set(_dyad_keep_going -- -k 0)
endif()
add_test(NAME headers_self_contained
         COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} ${_dyad_config_args}
                 --target dyad_header_check --parallel 2 ${_dyad_keep_going})
set_tests_properties(headers_self_contained PROPERTIES TIMEOUT 900 PROCESSORS 2)

add_test(NAME package_downstream
         COMMAND ${CMAKE_COMMAND}
                 -DDYAD_BINARY_DIR=${CMAKE_BINARY_DIR}
                 -DDOWNSTREAM_SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/downstream
                 -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/downstream
                 -DCMAKE_GENERATOR=${CMAKE_GENERATOR}
                 -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
                 -DBUILD_TYPE=${_dyad_build_type}
                 -DCONFIG=$<$<BOOL:${_dyad_multi_config}>:$<CONFIG>>
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/downstream/check.cmake)
set_tests_properties(package_downstream PROPERTIES TIMEOUT 900)
