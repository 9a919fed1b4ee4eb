#!/usr/bin/env bash
# README command 2: set everything up, then run the whole test suite:
#   - the Release build's unit, model and fuzz-replay tests (ctest)
#   - the face-api.js parity reference (Node, pure-JS TF.js), generated once and cached
#   - an AddressSanitizer+UBSan build of the image and weights-manifest paths
# Long evaluations (LFW, benchmarks) are separate commands: see README.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
fg_setup

export FACEGUARD_REQUIRE_MODELS=1
if [ -x "$FG_ROOT/scripts/reference/run.sh" ]; then
  say "face-api.js reference for the parity test"
  export FACEGUARD_REFERENCE_DIR="${FACEGUARD_REFERENCE_DIR:-$FG_BUILD/reference}"
  "$FG_ROOT/scripts/reference/run.sh" "$FACEGUARD_REFERENCE_DIR"
fi

say "tests (Release)"
ctest --test-dir "$FG_BUILD" --output-on-failure -j "$FG_JOBS" --timeout 600

if [ "${FACEGUARD_SKIP_ASAN:-0}" != "1" ]; then
  asan="$FG_ROOT/build-asan"
  if [ ! -f "$asan/build.ninja" ]; then
    cmake -S "$FG_ROOT" -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFACEGUARD_SANITIZE=ON \
      -DFACEGUARD_BUILD_BENCH=OFF -DFACEGUARD_BUILD_SERVER=OFF >/dev/null
  fi
  say "AddressSanitizer build: image and manifest paths"
  cmake --build "$asan" -j "$FG_JOBS" --target unit_core $(cd "$FG_ROOT/tests/fuzz" && ls fuzz_*.cpp 2>/dev/null | sed 's/\.cpp$//')
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$asan" --output-on-failure -j "$FG_JOBS" -R '^(fuzz_|Weights|Image|Models)' --timeout 600
fi
say "all tests passed"
