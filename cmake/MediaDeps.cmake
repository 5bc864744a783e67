# Optional media/data dependencies. Everything here is found quietly: a machine
# with only libtorch (the GPU hosts) still builds model/, losses/ and the trainer
# core, and HALLO_HAVE_MEDIA tells the rest of the tree what it may build.
find_package(PkgConfig QUIET)
set(HALLO_HAVE_MEDIA OFF)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(LIBAV QUIET IMPORTED_TARGET libavformat libavcodec libavutil libswscale libswresample)
  pkg_check_modules(SNDFILE QUIET IMPORTED_TARGET sndfile)
endif()
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs dnn calib3d video)
find_package(dlib QUIET)
# FindHDF5 probes its compiler wrappers with a C test program.
enable_language(C)
find_package(HDF5 QUIET COMPONENTS C CXX)
find_package(TBB QUIET)

set(_missing "")
foreach(_dep LIBAV SNDFILE OpenCV dlib HDF5 TBB)
  if(NOT ${_dep}_FOUND)
    list(APPEND _missing ${_dep})
  endif()
endforeach()
if(_missing)
  message(WARNING "hallo: media/data parts disabled, missing: ${_missing} (run scripts/install-deps.sh)")
else()
  set(HALLO_HAVE_MEDIA ON)
  message(STATUS "hallo: media/data parts enabled (libav, sndfile, OpenCV ${OpenCV_VERSION}, dlib, HDF5 ${HDF5_VERSION}, TBB)")
endif()
