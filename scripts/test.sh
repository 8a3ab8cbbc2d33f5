#!/usr/bin/env bash
# Builds memtrace with the tools and tests under ASan/UBSan (the preload
# library itself is never sanitized: it lives inside the traced program) and
# runs every test: cmocka unit tests and the integration suite, via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# CPython 3.13 and 3.13t for the Python tests (built once, about 12 minutes
# on 2 cores, then taken from the cache)
MEMTRACE_TEST_PYTHONS=$(scripts/pythons.sh | paste -sd:)
export MEMTRACE_TEST_PYTHONS
cmake -S . -B build-test -DMEMTRACE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j"$(nproc)"
ctest --test-dir build-test --output-on-failure -j"$(nproc)" "$@"
