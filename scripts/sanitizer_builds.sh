# Sourced by scripts/test and scripts/fuzz: configures and builds the clang
# sanitizer trees (cmake/sanitizers.cmake) beside build/.
#
#   build-asan  ASan + UBSan, with the fuzz targets (one build serves both)
#   build-tsan  ThreadSanitizer

# build_sanitized DIR SANITIZER [TARGET...]: no targets builds everything.
build_sanitized() {
  local dir=$1 sanitizer=$2
  shift 2
  local fuzz=OFF
  [ "$sanitizer" = address ] && fuzz=ON
  cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBATON_SANITIZE="$sanitizer" \
    -DBATON_FUZZ="$fuzz" >/dev/null
  # The chart tests find helm in the tree's tools/helm; setup fetched it
  # into build/.
  mkdir -p "$dir/tools"
  ln -sfn "$PWD/build/tools/helm" "$dir/tools/helm"
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
}
