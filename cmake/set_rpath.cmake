# Sets the RUNPATH of one ELF file: cmake -DFILE=<file> -DRPATH=<runpath> -P set_rpath.cmake
# setup.py runs it on the libraries it puts into the wheel, so that they find each other and
# torch through $ORIGIN-relative paths and hold no path of the machine that built them.
if(NOT FILE OR NOT DEFINED RPATH)
  message(FATAL_ERROR "usage: cmake -DFILE=<file> -DRPATH=<runpath> -P set_rpath.cmake")
endif()
file(RPATH_SET FILE "${FILE}" NEW_RPATH "${RPATH}")
