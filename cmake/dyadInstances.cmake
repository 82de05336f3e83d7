# dyad_add_instances(<name> <flags target>): a static library of dyad's common template
# instances (dyad/instantiate.hpp), one translation unit per scalar type so that they build in
# parallel, compiled with <flags target>'s flags. Linking <name> defines DYAD_EXTERN_TEMPLATES
# for the consumer, whose own files then skip these instances. Every consumer must be built with
# the same flags as the instances (-march, sanitizers).
function(dyad_add_instances name flags)
  set(sources)
  foreach(scalar float double)
    set(source ${CMAKE_CURRENT_BINARY_DIR}/${name}/${scalar}.cpp)
    # file(CONFIGURE) leaves an unchanged file alone, so reconfiguring does not force rebuilds.
    file(CONFIGURE OUTPUT ${source} CONTENT "#include <dyad/instantiate.hpp>\nDYAD_INSTANTIATE(${scalar})\n" @ONLY)
    list(APPEND sources ${source})
  endforeach()
  add_library(${name} STATIC ${sources})
  target_link_libraries(${name} PUBLIC ${flags})
  target_compile_definitions(${name} PUBLIC DYAD_EXTERN_TEMPLATES)
endfunction()
