# Short, bounded libFuzzer run used by the ctest tests fuzz_<target>_smoke
# (registered by cmake/Fuzz.cmake). Run as a script:
#   cmake -DFUZZER=<exe> -DTARGET=safetensors|unpickler -DWORK_DIR=<scratch>
#         -DARTIFACT_DIR=<dir> -DSEED_SCRIPT=fuzz/make_seeds.py -DPYTHON=<python3 or empty>
#         -DFIXTURES=tests/fixtures [-DGOLDEN=../shared/golden] [-DMAX_TIME=15]
#         -P fuzz/run_smoke.cmake
#
# Every run starts from a fresh seed corpus built under WORK_DIR (libFuzzer
# writes new inputs into its first corpus folder, so the source tree is never
# touched). Crash/leak/timeout inputs go to ARTIFACT_DIR, which is kept.
cmake_minimum_required(VERSION 3.18)

foreach(v FUZZER TARGET WORK_DIR ARTIFACT_DIR)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "run_smoke.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT MAX_TIME)
  set(MAX_TIME 15)
endif()
if(NOT EXISTS "${FUZZER}")
  message(FATAL_ERROR "fuzzer ${FUZZER} is not built (run make in the build folder first)")
endif()

set(corpus "${WORK_DIR}/corpus")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${corpus}" "${ARTIFACT_DIR}")

# --- seed corpus ---
set(golden_arg "")
if(GOLDEN AND IS_DIRECTORY "${GOLDEN}")
  set(golden_arg --golden "${GOLDEN}")
endif()
if(PYTHON AND SEED_SCRIPT)
  execute_process(COMMAND "${PYTHON}" "${SEED_SCRIPT}" ${TARGET} "${corpus}" --fixtures "${FIXTURES}" ${golden_arg}
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "make_seeds.py failed (${rc})")
  endif()
elseif(TARGET STREQUAL "safetensors")
  # No python3: safetensors seeds need no mode prefix, copy them directly.
  file(GLOB seeds "${FIXTURES}/*.expected.safetensors")
  if(golden_arg)
    file(GLOB golden_files "${GOLDEN}/*.safetensors")
    foreach(f IN LISTS golden_files)
      file(SIZE "${f}" sz)
      if(sz LESS 1048576)
        list(APPEND seeds "${f}")
      endif()
    endforeach()
  endif()
  file(COPY ${seeds} DESTINATION "${corpus}")
else()
  message(WARNING "python3 not found: fuzz_${TARGET} starts from an empty corpus")
endif()
file(GLOB seed_files "${corpus}/*")
list(LENGTH seed_files nseeds)
message(STATUS "fuzz_${TARGET}: ${nseeds} seeds, ${MAX_TIME} s")

# --- run ---
execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env "UBSAN_OPTIONS=print_stacktrace=1"
          "${FUZZER}" -max_total_time=${MAX_TIME} -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
          "-artifact_prefix=${ARTIFACT_DIR}/" "${corpus}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found "${ARTIFACT_DIR}/*")
  string(REPLACE ";" "\n  " found "${found}")
  message(FATAL_ERROR
    "fuzz_${TARGET} failed (exit ${rc}): a crash, sanitizer report, leak or timeout in the parsers.\n"
    "Inputs saved in ${ARTIFACT_DIR}:\n  ${found}\n"
    "Reproduce with: ${FUZZER} <file>   (see fuzz/README.md)")
endif()
