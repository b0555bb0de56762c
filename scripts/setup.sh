#!/usr/bin/env bash
# Installs what rask's build and tests need, then builds everything.
# Idempotent: what is present is left alone, and nothing is printed for it.
#
# usage: scripts/setup.sh [--deps-only]
#   --deps-only  install missing tools and stop (scripts/test.sh uses this)
#
# Needs: Rust (rustup, cargo), gcc. Installs when missing: cmake, pkg-config,
# chromium and chromium-driver (for the dashboard's browser tests)
# (Debian packages, with apt-get; as root or through sudo), and the rustfmt
# and clippy components. The build goes to target/ (cargo) and build/ (CMake;
# RASK_BUILD_DIR overrides).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

deps_only=0
case "${1:-}" in
    --deps-only) deps_only=1 ;;
    "") ;;
    *) echo "usage: $0 [--deps-only]" >&2; exit 2 ;;
esac

die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# Runs a command with its output held back; shows it only if the command fails.
quietly() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        die "failed: $*"
    fi
}

# ------------------------------------------------------------ system packages
# Debian packages the build or the tests use, as "command:package".
# openssl makes the certificates of the Python and Julia TLS tests; c++ builds
# and tests bindings/cpp (CI fails without either rather than skipping).
# chromium + chromium-driver: the dashboard's browser tests (headless, driven by
# Selenium); graphviz: the pictures of graph.visualize("g.svg").
apt_wanted=(cmake:cmake pkg-config:pkg-config cc:gcc c++:g++ readelf:binutils openssl:openssl
    chromium:chromium chromedriver:chromium-driver dot:graphviz)

cmake_recent_enough() {
    local v
    v=$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
    [ -n "$v" ] && [ "$(printf '%s\n3.16\n' "$v" | sort -V | head -n 1)" = "3.16" ]
}

install_system_packages() {
    local missing=() entry cmd pkg sudo=()
    for entry in "${apt_wanted[@]}"; do
        cmd=${entry%%:*} pkg=${entry#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if command -v cmake >/dev/null 2>&1 && ! cmake_recent_enough; then
        die "cmake $(cmake --version | head -n 1) is older than 3.16; install a newer one"
    fi
    [ ${#missing[@]} -eq 0 ] && return 0

    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]}, and no apt-get to install them with"
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run as root or install sudo"
        sudo=(sudo -n)
    fi
    echo "setup: installing ${missing[*]} (apt-get)"
    quietly "${sudo[@]}" apt-get update -qq
    quietly "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_rust_components() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup first"
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v rustup >/dev/null 2>&1 || die "missing ${missing[*]} and no rustup to add them with"
    echo "setup: adding Rust components ${missing[*]} (rustup)"
    quietly rustup component add "${missing[@]}"
}

# Later bindings add their own installers here (Python: pip packages for the
# tests; Julia: the Julia toolchain), each quiet when nothing is missing.

# Julia 1.5 for the julia/ package: Debian bullseye's, with bullseye pinned
# low so that nothing else comes from it. That julia crashes on any exception
# thrown from compiled code when it gets a newer libunwind (bookworm's 1.6);
# libjulia looks in its own julia/ directory first (RUNPATH $ORIGIN/julia), so
# bullseye's libunwind goes there, for Julia alone.
julia_throws_ok() { (julia --startup-file=no -e 'f() = error(); try f() catch end'; exit $?) >/dev/null 2>&1; }

install_julia() {
    local sudo=() libdir tmp
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    if ! command -v julia >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || die "julia is missing, and no apt-get to install it with"
        echo "setup: installing julia 1.5 (apt-get, Debian bullseye)"
        echo "deb http://deb.debian.org/debian bullseye main" |
            quietly "${sudo[@]}" tee /etc/apt/sources.list.d/bullseye.list
        printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n' |
            quietly "${sudo[@]}" tee /etc/apt/preferences.d/bullseye-low
        quietly "${sudo[@]}" apt-get update -qq
        quietly "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bullseye julia
    fi
    libdir=$(readlink -m "$(dirname "$(readlink -f "$(command -v julia)")")/../lib/$(gcc -print-multiarch)/julia")
    [ -d "$libdir" ] && [ ! -e "$libdir/libunwind.so.8" ] || return 0
    julia_throws_ok && return 0
    echo "setup: giving julia bullseye's libunwind ($libdir)"
    tmp=$(mktemp -d) && chmod 755 "$tmp"
    quietly "${sudo[@]}" apt-get update -qq
    (cd "$tmp" && quietly apt-get download libunwind8/bullseye)
    quietly dpkg-deb -x "$tmp"/libunwind8_*.deb "$tmp/x"
    quietly "${sudo[@]}" cp -a "$tmp"/x/usr/lib/*/libunwind.so.8* "$libdir/"
    rm -rf "$tmp"
    julia_throws_ok || die "julia still crashes when an exception is thrown"
}

install_system_packages
install_rust_components
install_julia
[ "$deps_only" -eq 1 ] && exit 0

# ------------------------------------------------------------------- build
build_dir=${RASK_BUILD_DIR:-build}
echo "== setup: cargo build --release"
cargo build --release
echo "== setup: cmake configure + build ($build_dir/)"
cmake -S . -B "$build_dir" -DRASK_CARGO_PROFILE=release >/dev/null
cmake --build "$build_dir" --parallel "$(nproc 2>/dev/null || echo 2)"
echo "== setup: done"
