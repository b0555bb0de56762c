#!/bin/sh
# Makes Julia 1.5's Pkg work offline for `Pkg.develop(path="…/rask/julia")`:
# in a depot with no registry at all, Pkg insists on downloading the General
# registry before it resolves anything, even a package whose dependencies are
# all in the standard library. An empty registry in the depot stops that.
#
#   sh scripts/julia-offline-registry.sh [DEPOT]     (default: the first of
#   $JULIA_DEPOT_PATH, else ~/.julia)
#
# then, in your project: julia --project=. -e 'using Pkg; Pkg.offline(true);
# Pkg.develop(path="/path/to/rask/julia")'. A depot that already has a
# registry (General) needs none of this. Idempotent.
set -eu
depot=${1:-${JULIA_DEPOT_PATH:-$HOME/.julia}}
depot=${depot%%:*}
dir="$depot/registries/RaskOffline"
mkdir -p "$dir"
[ -f "$dir/Registry.toml" ] || cat >"$dir/Registry.toml" <<'TOML'
name = "RaskOffline"
uuid = "3b0e7d9c-5a51-4e36-9a7e-6c1f0d2b8a41"
repo = ""
description = "An empty registry, so that Pkg.develop of rask's Julia package works offline"

[packages]
TOML
echo "$dir/Registry.toml"
