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
  # Tells TSan what absl::Mutex does and how libgrpc orders a call's
  # operations (tools/sanitizers/tsan_absl.cc, tsan_grpc.cc): every
  # executable defines and exports those entry points, so that both our
  # calls and the shared libraries' reach them before the real ones.
  add_library(baton_tsan_hooks STATIC tools/sanitizers/tsan_absl.cc
    tools/sanitizers/tsan_grpc.cc)
  target_link_libraries(baton_tsan_hooks PUBLIC absl::synchronization
    gRPC::grpc ${CMAKE_DL_LIBS})
  file(READ tools/sanitizers/tsan_absl.cc baton_wrappers)
  string(REGEX MATCHALL "_ZN4absl7debian3[A-Za-z0-9_]+" baton_wrapped
         "${baton_wrappers}")
  list(REMOVE_DUPLICATES baton_wrapped)
  # --undefined pulls each definition out of the archive even into a
  # program that locks nothing itself, and ahead of the shared libraries'.
  foreach(symbol IN LISTS baton_wrapped ITEMS grpc_call_start_batch
                 grpc_completion_queue_next grpc_completion_queue_pluck
                 gpr_mu_lock gpr_mu_trylock gpr_mu_unlock gpr_cv_wait)
    add_link_options(-Wl,--undefined=${symbol}
      -Wl,--export-dynamic-symbol=${symbol})
  endforeach()
  link_libraries(baton_tsan_hooks)
endif()

if(BATON_FUZZ)
  if(NOT BATON_SANITIZE STREQUAL "address")
    message(FATAL_ERROR "BATON_FUZZ goes with BATON_SANITIZE=address")
  endif()
  # Coverage for the fuzzers in every library; only the fuzz targets link
  # libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
