#!/usr/bin/env bash
# Installs rask into a temporary prefix and builds a separate consumer project
# against it, the two ways a user would:
#   1. CMake: find_package(Rask) with -DCMAKE_PREFIX_PATH=<prefix>
#      (tests/cmake-consumer: Rask::rask and Rask::rask_static);
#   2. pkg-config: cc $(pkg-config --cflags --libs rask), from a copy of the
#      prefix moved elsewhere (rask.pc must be relocatable).
# Each program checks that rask.h and librask agree on the ABI version.
#
# usage: scripts/check-install.sh [BUILD_DIR]
#   BUILD_DIR: an already built rask CMake build directory to install from
#   (ctest passes its own). Without it, a fresh one is configured and built.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-}
cc=${CC:-cc}

work=$(mktemp -d "${TMPDIR:-/tmp}/rask-check-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { printf '== check-install: %s\n' "$*"; }
fail() { printf 'check-install: FAILED: %s\n' "$*" >&2; exit 1; }
# check_loads EXE LIB: EXE resolves librask.so to the file LIB.
check_loads() {
    local got
    got=$(ldd "$1" | awk '$1 == "librask.so" { print $3 }')
    [ -n "$got" ] && [ "$(realpath "$got")" = "$(realpath "$2")" ] \
        || fail "$(basename "$1") loads librask.so from '${got:-nowhere}', not $2"
}

if [ -z "$build" ]; then
    build=$work/rask-build
    step "configure and build rask in $build"
    cmake -S "$root" -B "$build" -DBUILD_TESTING=OFF >/dev/null
    cmake --build "$build"
fi

prefix=$work/prefix
step "install into $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null

pc=$(find "$prefix" -name rask.pc -path '*/pkgconfig/*' | head -n 1)
config=$(find "$prefix" -name RaskConfig.cmake | head -n 1)
for f in "$prefix/include/rask.h" "$config" "$(dirname "$config")/RaskConfigVersion.cmake" "$pc"; do
    [ -n "$f" ] && [ -f "$f" ] || fail "missing installed file: ${f:-(rask.pc or RaskConfig.cmake)}"
done
libdir=$(dirname "$(dirname "$pc")")
for f in librask.so librask.a; do
    [ -f "$libdir/$f" ] || fail "missing installed library: $libdir/$f"
done

step "find_package(Rask): build tests/cmake-consumer"
cmake -S "$root/tests/cmake-consumer" -B "$work/consumer-build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer-build"

shared_exe=$work/consumer-build/consumer_shared
static_exe=$work/consumer-build/consumer_static
# The shared consumer must record the library by name (not a build path) and
# load the installed copy.
readelf -d "$shared_exe" | grep -q 'NEEDED.*\[librask\.so\]' \
    || fail "consumer_shared does not depend on librask.so by name"
check_loads "$shared_exe" "$libdir/librask.so"
if readelf -d "$static_exe" | grep -q 'librask'; then
    fail "consumer_static depends on a shared librask"
fi
step "run consumer_shared"
"$shared_exe"
step "run consumer_static"
"$static_exe"

step "pkg-config: build consumer.c from a moved copy of the prefix"
moved=$work/moved-prefix
cp -a "$prefix" "$moved"
moved_pc=$moved/${pc#"$prefix"/}
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$moved_pc")
version=$(pkg-config --modversion rask)
pc_libdir=$(pkg-config --variable=libdir rask)
# shellcheck disable=SC2046 # pkg-config output is meant to be word-split
"$cc" -std=c11 -Wall -Wextra -Werror -DEXPECTED_VERSION="\"$version\"" \
    $(pkg-config --cflags rask) "$root/tests/cmake-consumer/consumer.c" \
    -o "$work/consumer_pkgconfig" $(pkg-config --libs rask) -Wl,-rpath,"$pc_libdir"
check_loads "$work/consumer_pkgconfig" "$(dirname "$(dirname "$moved_pc")")/librask.so"
step "run consumer_pkgconfig"
"$work/consumer_pkgconfig"

echo "check-install: ok (rask $version: find_package shared+static, pkg-config)"
