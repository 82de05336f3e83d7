# ctest driver (cmake -P) for the `package_downstream` test: install the dyad build tree into a
# temporary prefix, move that prefix (the package must be relocatable), then configure, build and
# run tests/downstream against it.
#
# Inputs (-D): DYAD_BINARY_DIR, DOWNSTREAM_SOURCE_DIR, WORK_DIR, CMAKE_GENERATOR, CXX_COMPILER,
#              BUILD_TYPE, CONFIG (may be empty)
foreach(var DYAD_BINARY_DIR DOWNSTREAM_SOURCE_DIR WORK_DIR CMAKE_GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "package_downstream: ${step} failed (${rc}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(staged "${WORK_DIR}/staged")
set(prefix "${WORK_DIR}/prefix")

set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
run(install ${CMAKE_COMMAND} --install "${DYAD_BINARY_DIR}" --prefix "${staged}" ${config_args})
file(RENAME "${staged}" "${prefix}")

run(configure ${CMAKE_COMMAND} -S "${DOWNSTREAM_SOURCE_DIR}" -B "${WORK_DIR}/build"
    -G "${CMAKE_GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
    "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DDYAD_EXPECTED_PREFIX=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
run(build ${CMAKE_COMMAND} --build "${WORK_DIR}/build" --config "${BUILD_TYPE}")

find_program(app NAMES app PATHS "${WORK_DIR}/build" "${WORK_DIR}/build/${BUILD_TYPE}"
             NO_DEFAULT_PATH NO_CACHE)
if(NOT app)
  message(FATAL_ERROR "package_downstream: no app binary under ${WORK_DIR}/build")
endif()
run(run "${app}")
