#!/usr/bin/env bash
# Makes the extra CPythons the tests run on and prints their paths, one per
# line: 3.13 and its free-threaded build (3.13t), from Debian trixie's source
# package, fetched through this system's own Debian registry.  Builds go to a
# cache outside the repository and are reused; the first run takes about
# 12 minutes on 2 cores, later runs print the paths at once.  The build
# needs the packages scripts/install-deps.sh --test installs.
#
#   pythons.sh            build what is missing, print every path
#   pythons.sh --cached   build nothing, print the paths already built
#   MEMTRACE_PYTHONS   the cache (default: ~/.cache/memtrace/pythons)
#   MEMTRACE_PYTHONS=none   build nothing, print nothing
set -euo pipefail

cache=${MEMTRACE_PYTHONS:-${XDG_CACHE_HOME:-$HOME/.cache}/memtrace/pythons}
[[ "$cache" == none ]] && exit 0
cached_only=0
[[ "${1:-}" == --cached ]] && cached_only=1
version=3.13

log() { echo "pythons: $*" >&2; }

# The URIs of the system's Debian (not -security) entry, so no registry host
# is ever written here.
debian_uris() {
    local f=/etc/apt/sources.list.d/debian.sources
    if [[ -r $f ]]; then
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) print $i }' "$f" | head -n1
    elif [[ -r /etc/apt/sources.list ]]; then
        awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list
    fi
}

# Downloads the source package into $cache/src once and unpacks the
# upstream tarball into $cache/src/Python-X.Y.Z.
fetch_source() {
    local tree
    tree=$(find "$cache/src" -maxdepth 1 -type d -name "Python-$version.*" 2>/dev/null | head -n1)
    if [[ -n "$tree" && -f "$tree/configure" ]]; then
        echo "$tree"; return
    fi
    local uris apt="$cache/apt"
    uris=$(debian_uris)
    [[ -n "$uris" ]] || { log "no Debian registry in the apt sources"; exit 1; }
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources" "$cache/src"
    cat >"$apt/sources/trixie.sources" <<EOF
Types: deb-src
URIs: $uris
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    local opts=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$apt/sources"
                -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o APT::Sandbox::User=root -qq)
    log "fetching python$version's source from trixie"
    apt-get "${opts[@]}" update
    (cd "$cache/src" && apt-get "${opts[@]}" source --download-only "python$version" >/dev/null)
    local orig
    orig=$(ls "$cache"/src/python"$version"_*.orig.tar.* | head -n1)
    tar -C "$cache/src" -xf "$orig"
    find "$cache/src" -maxdepth 1 -type d -name "Python-$version.*" | head -n1
}

# build NAME EXE CONFIGURE-FLAGS...: configures, builds and installs into
# $cache/NAME unless a complete install is already there (an interrupted
# one is built again).
build() {
    local name=$1 exe=$2; shift 2
    local prefix="$cache/$name"
    if [[ -x "$prefix/bin/$exe" && -f "$prefix/.complete" ]]; then
        echo "$prefix/bin/$exe"; return
    fi
    ((cached_only)) && return
    mkdir -p "$cache"
    local tree
    tree=$(fetch_source)
    local obj="$cache/obj-$name"
    rm -rf "$obj" "$prefix"
    mkdir -p "$obj"
    log "building $name in $obj (about 6 minutes)"
    (cd "$obj" && "$tree/configure" --prefix="$prefix" --with-ensurepip=no "$@" >configure.log 2>&1 \
        && make -j"$(nproc)" >make.log 2>&1 \
        && make altinstall >install.log 2>&1) \
        || { log "building $name failed: see $obj"; exit 1; }
    touch "$prefix/.complete"
    rm -rf "$obj"
    echo "$prefix/bin/$exe"
}

build "$version" "python$version"
build "${version}t" "python${version}t" --disable-gil
