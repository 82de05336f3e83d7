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

foreach(name app app_native app_monitor)
  find_program(${name}_bin NAMES ${name} PATHS "${WORK_DIR}/build" "${WORK_DIR}/build/${BUILD_TYPE}"
               NO_DEFAULT_PATH NO_CACHE)
  if(NOT ${name}_bin)
    message(FATAL_ERROR "package_downstream: no ${name} binary under ${WORK_DIR}/build")
  endif()
  run(run "${${name}_bin}")
endforeach()

# The build-type warning: a consumer compiling without optimisation is told so.
file(WRITE "${WORK_DIR}/unoptimised.cpp" "#include <dyad/config.hpp>\nint main() { return 0; }\n")
execute_process(COMMAND "${CXX_COMPILER}" -std=c++20 -O0 -fsyntax-only "-I${prefix}/include" "${WORK_DIR}/unoptimised.cpp"
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT err MATCHES "compiled without optimisation")
  message(FATAL_ERROR "package_downstream: an -O0 build of dyad gave no warning (exit ${rc}): ${err}")
endif()
execute_process(COMMAND "${CXX_COMPILER}" -std=c++20 -O2 -fsyntax-only "-I${prefix}/include" "${WORK_DIR}/unoptimised.cpp"
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR err MATCHES "compiled without optimisation")
  message(FATAL_ERROR "package_downstream: an -O2 build of dyad warned (exit ${rc}): ${err}")
endif()
