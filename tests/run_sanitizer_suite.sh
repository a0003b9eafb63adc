#!/usr/bin/env bash
# Runs the test suite of the sanitizer build (scripts/setup.sh makes it in build/asan). Any ASan or
# UBSan report fails the test that triggered it (halt_on_error, -fno-sanitize-recover).
asan_dir=$1 ctest=$2
if [[ ! -f $asan_dir/CTestTestfile.cmake ]]; then
  echo "SKIPPED: no sanitizer build in $asan_dir (scripts/setup.sh makes it)"
  exit 77
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$ctest" --test-dir "$asan_dir" --output-on-failure -LE gpu
