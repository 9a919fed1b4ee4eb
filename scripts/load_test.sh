#!/usr/bin/env bash
# Load test of `faceguard serve` with wrk: verify (two 640x480 photos, base64 JSON) and identify (one face
# against a gallery of N templates) at 1, 4 and 16 connections; prints requests/s, p50/p99 latency and errors.
#
#   scripts/load_test.sh [BUILD_DIR]          # default build/
#   DURATION=10s CONNECTIONS="1 4 16" TEMPLATES=100000 WORKERS=2 scripts/load_test.sh build-lead
#
# Needs: wrk (Debian package `wrk`; installed with apt-get when missing and we are root), the models
# (~/.cache/faceguard/models), and photos: ../shared/data/faces-small/deepface when present, else the model
# pack's sample photos. Everything lives in a temporary folder that is removed at the end; the server runs
# on loopback only and is stopped with SIGTERM (graceful) when done or on error.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
FG=$BUILD/faceguard
PREP=$BUILD/apps/server/faceguard_server_prep
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-"1 4 16"}
TEMPLATES=${TEMPLATES:-100000}
WORKERS=${WORKERS:-$(nproc)}
QUEUE=${QUEUE:-32}          # >= the largest connection count: wrk must never see a 503 from backpressure
FSYNC=${FSYNC:-1}           # 0: --no-fsync-audit (shows what the per-record fsync costs)

for f in "$FG" "$PREP"; do
  [[ -x $f ]] || { echo "load_test: $f not built (ninja -C $BUILD faceguard_cli faceguard_server_prep)" >&2; exit 2; }
done
if ! command -v wrk >/dev/null; then
  if [[ $(id -u) = 0 ]] && command -v apt-get >/dev/null; then
    echo "load_test: installing wrk (Debian package)" >&2
    apt-get install -y wrk >/dev/null
  else
    echo "load_test: wrk is missing: apt-get install wrk" >&2
    exit 2
  fi
fi

WORK=$(mktemp -d /tmp/fg-load.XXXXXX)
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- photos ---------------------------------------------------------------------------------------------
SHARED=${FACEGUARD_SHARED_DATA:-$ROOT/../shared/data}
DEEPFACE=$SHARED/faces-small/deepface/tests/unit/dataset
if [[ -f $DEEPFACE/img1.jpg ]]; then
  A=$DEEPFACE/img1.jpg B=$DEEPFACE/img2.jpg ENROL=("$DEEPFACE/img1.jpg" "$DEEPFACE/img26.jpg" "$DEEPFACE/img8.jpg")
else
  S=${FACEGUARD_MODELS:-$HOME/.cache/faceguard/models}/face-api-1.7.15/samples
  A=$S/sample1.jpg B=$S/sample2.jpg ENROL=("$S/sample1.jpg")
fi
"$PREP" photo "$A" "$WORK/a.jpg" 640 480
"$PREP" photo "$B" "$WORK/b.jpg" 640 480

# ---- deployment: profile, keys, master key ----------------------------------------------------------------
DATA=$WORK/data
mkdir -p "$DATA/galleries"
cat >"$WORK/profile.yaml" <<'EOF'
format: 1
name: load test (an office door in Baltimore)
context:
  jurisdiction: {country: US, state: MD, city: baltimore}
EOF
export FACEGUARD_MASTER_KEY
FACEGUARD_MASTER_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
ADMIN=$("$FG" keys create --db "$DATA/keys.db" --operator load-admin --org "Load Test" --role admin --rps 0 2>/dev/null)
OPKEY=$("$FG" keys create --db "$DATA/keys.db" --operator load-op --org "Load Test" --role operator --rps 0 2>/dev/null)

FSYNC_FLAG=()
[[ $FSYNC = 0 ]] && FSYNC_FLAG=(--no-fsync-audit)
start_server() {
  "$FG" serve --host 127.0.0.1 --port 0 --data-dir "$DATA" --profile "$WORK/profile.yaml" \
    --workers "$WORKERS" --queue "$QUEUE" "${FSYNC_FLAG[@]}" >"$WORK/serve.out" 2>"$WORK/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 600); do
    PORT=$(sed -n 's#^listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$WORK/serve.out")
    [[ -n $PORT ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  URL=http://127.0.0.1:$PORT
  until curl -sf "$URL/health" >/dev/null; do sleep 0.2; done
}
# wrk stops after DURATION but the jobs its last requests queued still run: wait for them before the next run,
# or it would be measured behind the previous run's backlog.
drain() {
  for _ in $(seq 600); do
    curl -sf "$URL/health" | grep -q '"busy":0' && curl -sf "$URL/health" | grep -q '"queued":0' && return
    sleep 0.2
  done
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=
}

start_server
MODEL_ID=$(curl -sf "$URL/health" | sed -n 's/.*"model_id":"\([^"]*\)".*/\1/p')

# ---- the gallery: TEMPLATES synthetic templates (written offline) + real subjects over HTTP ----------------
stop_server
echo "load_test: filling a gallery with $TEMPLATES synthetic templates ($MODEL_ID)" >&2
"$PREP" fill "$DATA/galleries/big.fgdb" --count "$TEMPLATES" --model-id "$MODEL_ID" --dim 128
start_server
CTX='"context":{"location":{"type":"access_control"},"purpose":"access_control"}'
i=0
for f in "${ENROL[@]}"; do
  "$PREP" photo "$f" "$WORK/enrol$i.jpg" 640 480
  printf '{"subject_id":"person-%d","image":"%s",%s}' "$i" "$(base64 -w0 "$WORK/enrol$i.jpg")" "$CTX" >"$WORK/enrol.json"
  code=$(curl -s -o "$WORK/enrol.out" -w '%{http_code}' -H "Authorization: Bearer $OPKEY" \
    -H 'Content-Type: application/json' --data-binary @"$WORK/enrol.json" "$URL/v1/galleries/big/subjects")
  [[ $code = 201 ]] || { echo "enrol $f: HTTP $code $(cat "$WORK/enrol.out")" >&2; exit 1; }
  i=$((i + 1))
done
TEMPLATES_NOW=$(curl -sf -H "Authorization: Bearer $OPKEY" "$URL/v1/galleries/big" | sed -n 's/.*"templates":\([0-9]*\).*/\1/p')

printf '{"a":"%s","b":"%s",%s}' "$(base64 -w0 "$WORK/a.jpg")" "$(base64 -w0 "$WORK/b.jpg")" "$CTX" >"$WORK/verify.json"
printf '{"image":"%s","top_k":5,%s}' "$(base64 -w0 "$WORK/b.jpg")" "$CTX" >"$WORK/identify.json"
# One request of each first: a wrong answer must not be measured.
curl -sf -H "Authorization: Bearer $OPKEY" -H 'Content-Type: application/json' --data-binary @"$WORK/verify.json" \
  "$URL/v1/verify" | grep -q '"same":true' || { echo "verify did not match the two photos" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $OPKEY" -H 'Content-Type: application/json' --data-binary @"$WORK/identify.json" \
  "$URL/v1/galleries/big/identify" | grep -q '"subject_id":"person-0"' || { echo "identify did not find person-0" >&2; exit 1; }

cat >"$WORK/post.lua" <<'EOF'
-- POST one prepared JSON body; report requests/s, p50/p99 and every kind of error (non-2xx included).
local f = assert(io.open(os.getenv("FG_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FG_KEY")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d rps=%.2f p50_ms=%.1f p99_ms=%.1f errors=%d non2xx=%d " ..
    "detail='connect %d read %d write %d timeout %d status %d'\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status,
    e.connect, e.read, e.write, e.timeout, e.status))
end
EOF

echo
echo "faceguard load test: $(nproc) cores, $WORKERS workers, queue $QUEUE, audit fsync $FSYNC, $DURATION per run, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "identify gallery: $TEMPLATES_NOW templates; photos 640x480 ($(basename "$A"), $(basename "$B"))"
printf '%-9s %5s %9s %9s %9s %9s %7s\n' endpoint conns requests req/s p50_ms p99_ms errors
for ep in verify identify; do
  path=/v1/verify
  [[ $ep = identify ]] && path=/v1/galleries/big/identify
  for c in $CONNECTIONS; do
    drain
    out=$(FG_BODY=$WORK/$ep.json FG_KEY=$OPKEY wrk -t "$(( c < 4 ? c : 4 ))" -c "$c" -d "$DURATION" --timeout 30s \
      -s "$WORK/post.lua" "$URL$path" 2>&1 | grep '^RESULT' || true)
    [[ -n $out ]] || { echo "wrk failed" >&2; exit 1; }
    eval "$(echo "$out" | sed 's/^RESULT //')"
    # shellcheck disable=SC2154
    printf '%-9s %5d %9d %9.2f %9.1f %9.1f %7d' "$ep" "$c" "$requests" "$rps" "$p50_ms" "$p99_ms" $((errors + non2xx))
    # shellcheck disable=SC2154
    if ((errors + non2xx)); then echo "  ($detail)"; else echo; fi
  done
done
# The server's own view: no rejections expected.
echo
curl -sf "$URL/metrics" | grep -E '^faceguard_(rejections_total|policy_decisions_total)' || true
stop_server
grep -q 'graceful shutdown' "$WORK/serve.log" && echo "server stopped gracefully"
