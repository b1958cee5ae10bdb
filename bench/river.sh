#!/usr/bin/env bash
# bench/river.sh -- build (once) and print the path of River's CLI, the peer
# Countersign's execution rate is compared against.
#
# Usage: bench/river.sh path     print the cached binary's path, building it first if missing
#
# River is fetched through the Go module proxy as a pinned module
# (github.com/riverqueue/river/cmd/river@$RIVER_VERSION) into a scratch module
# outside the repository, built once and cached in
# ~/.cache/countersign/river-$RIVER_VERSION/river (override with CS_BENCH_CACHE).
# Needs `go` (>= 1.22) on PATH or in /usr/local/go/bin.
set -euo pipefail

RIVER_VERSION="${RIVER_VERSION:-v0.47.0}"
CACHE="${CS_BENCH_CACHE:-$HOME/.cache/countersign}"
DIR="$CACHE/river-$RIVER_VERSION"
BIN="$DIR/river"

die() { echo "river.sh: error: $*" >&2; exit 1; }

build() {
    local go
    go="$(command -v go || true)"
    [[ -n "$go" ]] || { [[ -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go; }
    [[ -n "$go" ]] || die "go not found (install Go >= 1.22 to run the River comparison)"
    mkdir -p "$DIR/src"
    echo "river.sh: building River $RIVER_VERSION (first run only, about a minute)" >&2
    (
        cd "$DIR/src"
        [[ -f go.mod ]] || "$go" mod init countersign.local/riverbench >/dev/null 2>&1
        GOFLAGS=-mod=mod "$go" get "github.com/riverqueue/river/cmd/river@$RIVER_VERSION" >&2
        GOFLAGS=-mod=mod "$go" build -o "$BIN.tmp" github.com/riverqueue/river/cmd/river >&2
        mv "$BIN.tmp" "$BIN"
    ) || die "building River failed"
}

case "${1:-path}" in
    path)
        [[ -x "$BIN" ]] || build
        echo "$BIN"
        ;;
    *) die "usage: bench/river.sh path" ;;
esac
