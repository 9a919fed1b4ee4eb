#!/usr/bin/env bash
# Builds the face-api.js numerical reference for tests/model/parity_test.cpp.
#
#   scripts/reference/run.sh [--out DIR | DIR] [--models DIR] [--runs N] [--no-timing] [--force]
#   scripts/reference/run.sh --timing-only [--runs N] [DIR]   # re-time face-api.js only (timings.json: TF.js cpu + wasm)
#
# DIR defaults to <repo>/build/reference (where the parity test looks unless FACEGUARD_REFERENCE_DIR is set).
# Idempotent: `npm ci` runs only when node_modules does not match package-lock.json, and the reference is
# rebuilt only when its inputs (scripts, lock file, model manifests, options) changed or --force is given.
# Offline once the face-api tarball is cached (~/.cache/faceguard/reference, or $FACEGUARD_TARBALL_DIR).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/build/reference"
models="${FACEGUARD_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/faceguard/models}"
force=0
timing_only=0
pass=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --runs) pass+=(--runs "$2"); shift 2 ;;
    --no-timing) pass+=(--no-timing); shift ;;
    --force) force=1; shift ;;
    --timing-only) timing_only=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    *) out="$(mkdir -p "$1" && cd "$1" && pwd)"; shift ;;
  esac
done

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run.sh: '$tool' not found: install Node.js >= 18 with npm (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [[ "$node_major" -lt 18 ]]; then
  echo "run.sh: Node $(node --version) is too old; need >= 18" >&2
  exit 1
fi
if [[ ! -d "$models/face-api-1.7.15/model" ]]; then
  echo "run.sh: no face-api models under $models; run \`faceguard models fetch\` first (or set FACEGUARD_MODELS)" >&2
  exit 1
fi

# npm ci only when the installed tree is not the locked one (npm writes node_modules/.package-lock.json).
lock_sum="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
stamp="$here/node_modules/.faceguard-lock.sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
  echo "run.sh: npm ci in $here" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$stamp"
fi

if [[ "$timing_only" -eq 1 ]]; then
  [[ -f "$out/sample1.json" ]] || { echo "run.sh: no reference in $out to time against; run without --timing-only" >&2; exit 1; }
  exec node "$here/make_reference.js" --out "$out" --models "$models" --timing-only ${pass[@]+"${pass[@]}"}
fi

# The reference is a function of these inputs; skip the (slow, pure-JS) run when none changed.
inputs_sum="$( { cat "$here"/make_reference.js "$here"/lib/*.js "$here/package-lock.json";
                 cat "$models"/face-api-1.7.15/model/*-weights_manifest.json;
                 sha256sum "$models"/face-api-1.7.15/samples/*.jpg | cut -d' ' -f1;
                 echo "${pass[*]:-}"; } | sha256sum | cut -d' ' -f1)"
done_stamp="$out/.inputs.sha256"
if [[ "$force" -eq 0 && -f "$done_stamp" && "$(cat "$done_stamp")" == "$inputs_sum" && -f "$out/reference.json" ]]; then
  echo "run.sh: reference in $out is up to date (use --force to rebuild)" >&2
  exit 0
fi

mkdir -p "$out"
rm -f "$done_stamp"
node "$here/make_reference.js" --out "$out" --models "$models" ${pass[@]+"${pass[@]}"}
echo "$inputs_sum" > "$done_stamp"
echo "run.sh: reference written to $out" >&2
