# Included right after xsimd is found, by dyad's CMakeLists.txt and by the installed dyadConfig.cmake.
#
# Debian 12's libxsimd-dev (8.1.0, built with ENABLE_XTL_COMPLEX=ON) exports the target xsimd with
# INTERFACE_LINK_LIBRARIES "xtl" but its config never looks for xtl (xsimd issue #869), so anything
# linking xsimd gets `-lxtl` and fails to link. dyad does not use xsimd's xtl complex support, so
# when no xtl target exists the dangling name is dropped. A real xtl target is left alone.
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_dyad_xsimd_libs xsimd INTERFACE_LINK_LIBRARIES)
  if(_dyad_xsimd_libs AND "xtl" IN_LIST _dyad_xsimd_libs)
    list(REMOVE_ITEM _dyad_xsimd_libs xtl)
    set_property(TARGET xsimd PROPERTY INTERFACE_LINK_LIBRARIES "${_dyad_xsimd_libs}")
  endif()
  unset(_dyad_xsimd_libs)
endif()
