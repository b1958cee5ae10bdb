#!/usr/bin/env bash
# Install everything Countersign needs to build and test on a fresh Debian 12
# machine: C toolchain and libraries, PostgreSQL 15, Kafka's JVM + Maven, kcat,
# fuzzing/valgrind tools, Chromium for page tests, the OpenID provider of
# tests/oidc (npm ci), the Python test packages
# (tests/requirements.txt) and the Kafka broker jars (tools/kafka.sh fetch).
#
# Usage (as root, from anywhere):  .ci/install-deps.sh
# Idempotent: packages already installed are not fetched again, and apt-get is
# skipped entirely when nothing is missing. Only the Debian archive, PyPI and
# Maven Central are contacted, and the npm registry for tests/oidc.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

readonly APT_PACKAGES=(
    build-essential pkg-config
    postgresql postgresql-contrib libpq-dev
    librdkafka-dev libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev libssl-dev
    kcat
    clang libclang-rt-14-dev valgrind clang-format
    chromium
    maven openjdk-17-jdk-headless
    python3-pip
    curl ca-certificates
)

die() {
    echo "install-deps.sh: error: $*" >&2
    exit 1
}

step() {
    echo "install-deps.sh: $*" >&2
}

# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------

# Print the packages of APT_PACKAGES that are not fully installed.
missing_packages() {
    local pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == "ii "* ]] || echo "$pkg"
    done
}

install_apt_packages() {
    command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"
    local missing
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        step "all ${#APT_PACKAGES[@]} Debian packages already installed"
        return
    fi
    ((EUID == 0)) || die "must run as root to install: ${missing[*]}"
    step "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) || die "still not installed after apt-get install: ${missing[*]}"
}

# ---------------------------------------------------------------------------
# Python packages
# ---------------------------------------------------------------------------

install_python_packages() {
    local req="$REPO_ROOT/tests/requirements.txt" out rc
    [[ -f "$req" ]] || die "missing $req"
    command -v python3 >/dev/null || die "python3 not found"
    python3 -m pip --version >/dev/null 2>&1 ||
        die "'python3 -m pip' does not work for $(command -v python3) (install python3-pip)"
    step "installing Python packages from tests/requirements.txt with $(command -v python3)"
    # Debian's own python3 refuses system-wide pip installs (PEP 668); only then
    # retry with --break-system-packages. pyenv/venv interpreters accept plain installs.
    set +e
    out="$(python3 -m pip install --disable-pip-version-check -r "$req" 2>&1)"
    rc=$?
    set -e
    if ((rc != 0)) && grep -q 'externally-managed-environment' <<<"$out"; then
        step "pip refuses (externally managed environment); retrying with --break-system-packages"
        python3 -m pip install --disable-pip-version-check --break-system-packages -r "$req"
    elif ((rc != 0)); then
        echo "$out" >&2
        die "pip install -r tests/requirements.txt failed"
    else
        grep -v '^Requirement already satisfied' <<<"$out" >&2 || true
    fi
    python3 -c 'import pytest, xdist, psycopg, confluent_kafka, httpx, schemathesis' ||
        die "Python test packages installed but not importable by $(command -v python3)"
}

# ---------------------------------------------------------------------------

# The TypeScript SDK needs Node.js >= 20 with npm. Machines of this kind ship
# it; Debian 12's own nodejs (18) is too old, so it is checked, not installed.
check_node() {
    command -v node >/dev/null && command -v npm >/dev/null ||
        die "node and npm are required (Node.js >= 20) for the TypeScript SDK"
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    ((major >= 20)) || die "Node.js $(node --version) is too old: the TypeScript SDK needs >= 20"
    step "Node.js $(node --version), npm $(npm --version)"
}

# The OpenID provider of the sign-in tests (tests/oidc): `npm ci` from its
# lockfile, only when node_modules is missing or older than the lockfile.
install_oidc_provider() {
    local dir="$REPO_ROOT/tests/oidc"
    local stamp="$dir/node_modules/.package-lock.json"
    if [[ -f "$stamp" && ! "$dir/package-lock.json" -nt "$stamp" ]]; then
        step "tests/oidc: node packages already installed"
        return
    fi
    step "tests/oidc: npm ci (oidc-provider)"
    (cd "$dir" && npm ci --no-audit --no-fund) || die "npm ci in tests/oidc failed"
}

main() {
    install_apt_packages
    install_python_packages
    check_node
    install_oidc_provider
    step "fetching the Kafka broker jars"
    bash "$REPO_ROOT/tools/kafka.sh" fetch
    step "done"
}

main "$@"
