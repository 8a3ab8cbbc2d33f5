#!/usr/bin/env bash
# Builds memtrace with the tools and tests under ASan/UBSan (the preload
# library itself is never sanitized: it lives inside the traced program) and
# runs every test: cmocka unit tests and the integration suite, via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
cmake -S . -B build-test -DMEMTRACE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j"$(nproc)"
ctest --test-dir build-test --output-on-failure -j"$(nproc)" "$@"
