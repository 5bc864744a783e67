# libFuzzer targets for the weight-format parsers (fuzz/), included by the
# top-level CMakeLists.txt when HALLO_BUILD_TESTS and HALLO_FUZZ are ON.
#
# The main build uses g++ and libtorch; libFuzzer needs clang. So fuzz/ is a
# standalone CMake project built as the ExternalProject `hallo_fuzz` with
# clang++ into <build>/fuzz (part of `make`/ALL, rebuilt on every make so edits
# to model/io are picked up), and two short ctest runs are registered:
#   fuzz_safetensors_smoke, fuzz_unpickler_smoke   (label "fuzz")
# Without clang++ or the compiler-rt fuzzer runtime this prints a STATUS line
# and adds nothing, so HALLO_FUZZ=ON is harmless on machines without clang.
include_guard(GLOBAL)

set(HALLO_FUZZ_SMOKE_SECONDS 15 CACHE STRING "seconds each ctest fuzz smoke run lasts")

find_program(HALLO_FUZZ_CXX NAMES clang++ clang++-14 DOC "clang++ used for the libFuzzer sub-build")

set(_hallo_fuzz_rt "")
if(HALLO_FUZZ_CXX)
  # The runtime that -fsanitize=fuzzer links: first where this clang keeps it...
  execute_process(COMMAND "${HALLO_FUZZ_CXX}" -print-resource-dir
                  OUTPUT_VARIABLE _hallo_fuzz_res OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE _hallo_fuzz_rc)
  if(_hallo_fuzz_rc EQUAL 0 AND _hallo_fuzz_res)
    file(GLOB _hallo_fuzz_rt
         "${_hallo_fuzz_res}/lib/linux/libclang_rt.fuzzer-x86_64.a"
         "${_hallo_fuzz_res}/lib/x86_64-unknown-linux-gnu/libclang_rt.fuzzer.a")
  endif()
  # ...else Debian's libclang-rt-14-dev location (then build with clang++-14 if it exists).
  if(NOT _hallo_fuzz_rt)
    file(GLOB _hallo_fuzz_rt "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a")
    if(_hallo_fuzz_rt)
      find_program(_hallo_clangxx14 NAMES clang++-14 PATHS /usr/lib/llvm-14/bin)
      if(_hallo_clangxx14)
        set(HALLO_FUZZ_CXX "${_hallo_clangxx14}")
      endif()
    endif()
  endif()
endif()

if(NOT HALLO_FUZZ_CXX)
  message(STATUS "Fuzzing: clang++ not found, fuzz targets skipped (apt install clang libclang-rt-dev)")
elseif(NOT _hallo_fuzz_rt)
  message(STATUS "Fuzzing: no libFuzzer runtime (libclang_rt.fuzzer) for ${HALLO_FUZZ_CXX}, "
                 "fuzz targets skipped (apt install libclang-rt-dev)")
else()
  list(GET _hallo_fuzz_rt 0 _hallo_fuzz_rt0)
  message(STATUS "Fuzzing: libFuzzer targets in ${PROJECT_BINARY_DIR}/fuzz with ${HALLO_FUZZ_CXX} (${_hallo_fuzz_rt0})")

  include(ExternalProject)
  set(_hallo_fuzz_args
    -DCMAKE_CXX_COMPILER=${HALLO_FUZZ_CXX}
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DHALLO_SOURCE_DIR=${PROJECT_SOURCE_DIR})
  if(CCACHE_PROGRAM)
    list(APPEND _hallo_fuzz_args -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE_PROGRAM})
  endif()
  ExternalProject_Add(hallo_fuzz
    SOURCE_DIR ${PROJECT_SOURCE_DIR}/fuzz
    BINARY_DIR ${PROJECT_BINARY_DIR}/fuzz
    PREFIX ${PROJECT_BINARY_DIR}/fuzz-ep
    CMAKE_ARGS ${_hallo_fuzz_args}
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON
    EXCLUDE_FROM_ALL OFF)

  # Smoke runs: a fresh copy of the seed corpus per run (fuzz/run_smoke.cmake).
  find_program(HALLO_FUZZ_PYTHON NAMES python3 DOC "python3 for fuzz/make_seeds.py")
  get_filename_component(_hallo_golden "${PROJECT_SOURCE_DIR}/../shared/golden" ABSOLUTE)
  math(EXPR _hallo_fuzz_timeout "${HALLO_FUZZ_SMOKE_SECONDS} + 120")
  foreach(_t safetensors unpickler)
    add_test(NAME fuzz_${_t}_smoke
      COMMAND ${CMAKE_COMMAND}
        -DFUZZER=${PROJECT_BINARY_DIR}/fuzz/fuzz_${_t}
        -DTARGET=${_t}
        -DWORK_DIR=${PROJECT_BINARY_DIR}/fuzz/smoke/${_t}
        -DARTIFACT_DIR=${PROJECT_BINARY_DIR}/fuzz/artifacts/${_t}
        -DPYTHON=${HALLO_FUZZ_PYTHON}
        -DSEED_SCRIPT=${PROJECT_SOURCE_DIR}/fuzz/make_seeds.py
        -DFIXTURES=${PROJECT_SOURCE_DIR}/tests/fixtures
        -DGOLDEN=${_hallo_golden}
        -DMAX_TIME=${HALLO_FUZZ_SMOKE_SECONDS}
        -P ${PROJECT_SOURCE_DIR}/fuzz/run_smoke.cmake)
    set_tests_properties(fuzz_${_t}_smoke PROPERTIES LABELS fuzz TIMEOUT ${_hallo_fuzz_timeout})
  endforeach()
endif()
