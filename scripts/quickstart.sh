#!/usr/bin/env bash
# Installs what is missing, builds memtrace, runs the seven labs under the
# tracer with every CPython on the machine and writes their reports to
# reports/ (labN.txt, labN.html, labN.json), then prints an overview.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
python3 labs/run_labs.py --build build --out reports
