#!/usr/bin/env bash
# README command 1: set everything up, then run the main job - find and compare the faces in the sample
# photos, writing annotated images and a JSON report to ./faceguard-demo (or $1).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
fg_setup
out="${1:-$PWD/faceguard-demo}"
say "running the demo into $out"
"$FG_BUILD/faceguard" demo --out "$out"
