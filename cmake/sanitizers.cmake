# Sanitizer and fuzzing builds (clang only). scripts/test configures them into
# their own build directories; see README "Sanitizers and fuzzing".
#
#   BATON_SANITIZE=address  AddressSanitizer + UndefinedBehaviorSanitizer
#   BATON_SANITIZE=thread   ThreadSanitizer
#   BATON_FUZZ=ON           libFuzzer targets in fuzz/ (with BATON_SANITIZE=address,
#                           so the fuzzers and the ASan suite share one build)
set(BATON_SANITIZE "" CACHE STRING "Sanitizer build: address or thread")
set_property(CACHE BATON_SANITIZE PROPERTY STRINGS "" address thread)
option(BATON_FUZZ "Build the libFuzzer targets (needs clang)" OFF)

if(BATON_SANITIZE OR BATON_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "BATON_SANITIZE and BATON_FUZZ need clang: "
      "configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Optimised enough that the suite's deadlines hold, with line tables so
  # every report names file and line.
  set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O1 -gline-tables-only -DNDEBUG")
  add_compile_options(-fno-omit-frame-pointer)
endif()

if(BATON_SANITIZE STREQUAL "address")
  set(baton_sanitizer_flags -fsanitize=address,undefined
    -fno-sanitize-recover=undefined)
elseif(BATON_SANITIZE STREQUAL "thread")
  set(baton_sanitizer_flags -fsanitize=thread)
elseif(BATON_SANITIZE)
  message(FATAL_ERROR "BATON_SANITIZE must be address or thread, not "
    "'${BATON_SANITIZE}'")
endif()
if(baton_sanitizer_flags)
  add_compile_options(${baton_sanitizer_flags})
  add_link_options(${baton_sanitizer_flags})
endif()

if(BATON_SANITIZE STREQUAL "thread")
  # Tells TSan what absl::Mutex does (see tools/sanitizers/tsan_absl.cc):
  # every executable links the wrappers, and every call of ours to these
  # entry points goes through them.
  add_library(baton_tsan_absl STATIC tools/sanitizers/tsan_absl.cc)
  target_link_libraries(baton_tsan_absl PUBLIC absl::synchronization)
  file(READ tools/sanitizers/tsan_absl.cc baton_wrappers)
  string(REGEX MATCHALL "_ZN4absl7debian3[A-Za-z0-9_]+" baton_wrapped
         "${baton_wrappers}")
  list(REMOVE_DUPLICATES baton_wrapped)
  # --undefined pulls each wrapper out of the archive even into a program
  # that locks nothing itself: ld checks the shared libraries' references
  # against the wrapped names too.
  foreach(symbol IN LISTS baton_wrapped)
    add_link_options(-Wl,--wrap=${symbol} -Wl,--undefined=__wrap_${symbol})
  endforeach()
  link_libraries(baton_tsan_absl)
endif()

if(BATON_FUZZ)
  if(NOT BATON_SANITIZE STREQUAL "address")
    message(FATAL_ERROR "BATON_FUZZ goes with BATON_SANITIZE=address")
  endif()
  # Coverage for the fuzzers in every library; only the fuzz targets link
  # libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
