#!/usr/bin/env bash
# Installs the Debian packages memtrace needs that are missing.
#   install-deps.sh          build and run: compiler, cmake, libraries, python3
#   install-deps.sh --test   also what the tests and benchmarks use
set -euo pipefail

packages=(build-essential cmake pkg-config libzstd-dev libjansson-dev libcmocka-dev
          libunwind-dev libdw-dev python3 python3-dev)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(valgrind)
    # the fuzz test (libFuzzer: clang and its runtime) and the HTML report
    # in a headless browser
    packages+=(clang libclang-rt-14-dev chromium)
    # CPython 3.13 and 3.13t, built by scripts/pythons.sh: the modules the
    # tests use (ctypes, zlib, bz2, lzma) need these
    packages+=(libffi-dev zlib1g-dev libbz2-dev liblzma-dev)
fi

missing=()
for p in "${packages[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "memtrace: installing ${missing[*]}" >&2
sudo=()
[[ $(id -u) -ne 0 ]] && sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
