#!/usr/bin/env bash
# Installs what is missing, builds memtrace and traces the demo program,
# printing its report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p reports
build/memtrace run -o reports/demo.trace -- build/memtrace_demo
