#!/usr/bin/env bash
# Installs the Debian packages memtrace needs that are missing.
#   install-deps.sh          build and run: compiler, cmake, libraries, python3
#   install-deps.sh --test   also what the tests and benchmarks use
set -euo pipefail

packages=(build-essential cmake pkg-config libzstd-dev libjansson-dev libcmocka-dev
          libunwind-dev libdw-dev python3 python3-dev)
# the pprof export: protobuf-c writes profile.proto (protoc-c generates its
# code at build time), zlib gzips it
packages+=(libprotobuf-c-dev protobuf-c-compiler zlib1g-dev)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(valgrind)
    # the run tests drive a Makefile
    packages+=(make)
    # the fuzz test (libFuzzer: clang and its runtime) and the HTML report
    # in a headless browser
    packages+=(clang libclang-rt-14-dev chromium)
    # the exports read by their consumers: `go tool pprof`, and speedscope
    # (from the npm registry, below) in the browser
    packages+=(golang-go)
    # npm: Debian's, unless a Node.js with its own npm is installed
    command -v npm >/dev/null || packages+=(npm)
    # CPython 3.13 and 3.13t, built by scripts/pythons.sh: the modules the
    # tests use (ctypes, zlib, bz2, lzma) need these
    packages+=(libffi-dev zlib1g-dev libbz2-dev liblzma-dev)
    # a real multi-threaded program for bench/bench.py (`--only ripgrep`)
    packages+=(ripgrep)
fi

missing=()
for p in "${packages[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "memtrace: installing ${missing[*]}" >&2
    sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The npm packages of tests/integration/npm (speedscope), at the versions
# of its package-lock.json, into a cache outside the repository; the tests
# look for them there.  Installed again only when the lock file changes.
if [[ "${1:-}" == "--test" ]]; then
    npm_src="$(dirname "$0")/../tests/integration/npm"
    npm_dir="${XDG_CACHE_HOME:-$HOME/.cache}/memtrace/npm"
    if ! cmp -s "$npm_src/package-lock.json" "$npm_dir/installed-lock.json"; then
        echo "memtrace: installing the npm packages of tests/integration/npm" >&2
        mkdir -p "$npm_dir"
        cp "$npm_src/package.json" "$npm_src/package-lock.json" "$npm_dir/"
        npm ci --prefix "$npm_dir" --ignore-scripts --no-audit --no-fund --loglevel=error
        cp "$npm_src/package-lock.json" "$npm_dir/installed-lock.json"
    fi
fi
