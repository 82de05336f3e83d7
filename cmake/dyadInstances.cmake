# dyad_add_instances(<name> <flags target> [SCALARS float double]): a static library of dyad's
# common template instances (dyad/instantiate.hpp) for the listed scalar types (default both),
# one translation unit per type so that they build in parallel, compiled with <flags target>'s
# flags. Linking <name> defines DYAD_EXTERN_TEMPLATES for the consumer, whose own files then skip
# these instances (a scalar type left out here and used by the consumer fails to link, naming the
# missing member). Every consumer must be built with the same flags as the instances (-march,
# sanitizers).
function(dyad_add_instances name flags)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "SCALARS")
  if(NOT arg_SCALARS)
    set(arg_SCALARS float double)
  endif()
  set(sources)
  foreach(scalar IN LISTS arg_SCALARS)
    if(NOT scalar MATCHES "^(float|double)$")
      message(FATAL_ERROR "dyad_add_instances(${name}): SCALARS are float and/or double, not '${scalar}'")
    endif()
    set(source ${CMAKE_CURRENT_BINARY_DIR}/${name}/${scalar}.cpp)
    # file(CONFIGURE) leaves an unchanged file alone, so reconfiguring does not force rebuilds.
    file(CONFIGURE OUTPUT ${source} CONTENT "#include <dyad/instantiate.hpp>\nDYAD_INSTANTIATE(${scalar})\n" @ONLY)
    list(APPEND sources ${source})
  endforeach()
  add_library(${name} STATIC ${sources})
  target_link_libraries(${name} PUBLIC ${flags})
  target_compile_definitions(${name} PUBLIC DYAD_EXTERN_TEMPLATES)
endfunction()
