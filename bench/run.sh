#!/usr/bin/env bash
# Load benchmark: #[oauth] routes and the token endpoint against identical routes without
# the library, in one release binary (bench/server), request logging off, driven by wrk.
#
#   bench/run.sh                 # DUR=10s CONN=32 THREADS=2 REPS=3 PORT=8300
#
# Prints one line per run and a summary table (median of REPS) with requests/s, p50/p99
# latency, server CPU per request and server RSS. Needs `wrk` (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}; CONN=${CONN:-32}; THREADS=${THREADS:-2}; REPS=${REPS:-3}; PORT=${PORT:-8300}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
cargo build --release -q -p twisted-oauth2-bench
BASE="http://127.0.0.1:$PORT"
./target/release/twisted-oauth2-bench "$PORT" & PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "$BASE/open" && break; sleep 0.05; done
export WRK_SUMMARY="$PWD/bench/wrk/summary.lua"
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$PID/stat"; }
rss_mb() { awk '/VmRSS/{printf "%d", $2/1024}' "/proc/$PID/status"; }
TOKEN=$(curl -s -u bench:bench-secret -d grant_type=client_credentials -d scope=read "$BASE/oauth2/token" |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/protected")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/protected")" = 401 ]
RESULTS=$(mktemp)
once() {  # NAME SCRIPT PATH TOKEN RUN
  local name=$1 script=$2 path=$3 tok=$4 i=$5 out t0 t1 reqs cpu_us
  t0=$(ticks)
  out=$(RESOURCE_PATH=$path TOKEN_PATH=$path TOKEN=$tok wrk -t"$THREADS" -c"$CONN" -d"$DUR" -s "$script" "$BASE" | grep SUMMARY)
  t1=$(ticks)
  reqs=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
  cpu_us=$(awk -v t=$((t1 - t0)) -v r="$reqs" -v hz="$HZ" 'BEGIN{printf "%.1f", t / hz / r * 1e6}')
  echo "$name run$i ${out#SUMMARY } cpu_us_per_req=$cpu_us rss_mb=$(rss_mb)" | tee -a "$RESULTS"
  sleep 1
}
# Each pair runs alternately (A B A B ...) so drift in machine speed hits both alike. /open
# gets the same Authorization header as /protected: identical requests, one route checks it.
pair() {  # NAME_A PATH_A NAME_B PATH_B SCRIPT TOKEN
  RESOURCE_PATH=$2 TOKEN_PATH=$2 TOKEN=$6 wrk -t1 -c4 -d2s -s "$5" "$BASE" >/dev/null 2>&1
  RESOURCE_PATH=$4 TOKEN_PATH=$4 TOKEN=$6 wrk -t1 -c4 -d2s -s "$5" "$BASE" >/dev/null 2>&1
  for i in $(seq 1 "$REPS"); do
    once "$1" "$5" "$2" "$6" "$i"
    once "$3" "$5" "$4" "$6" "$i"
  done
}
echo "# wrk -t$THREADS -c$CONN -d$DUR, $REPS runs, $(nproc) cores, $(date -u +%FT%TZ)"
pair open /open protected /protected bench/wrk/get.lua "$TOKEN"
pair form /form token /oauth2/token bench/wrk/token.lua ""
python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    kv = dict(p.split("=", 1) for p in parts[2:])
    rows[parts[0]].append(kv)
def med(name, key):
    return statistics.median(float(r[key]) for r in rows[name])
print("\n| route | req/s | p50 ms | p99 ms | server CPU µs/req | RSS MiB | bad |")
print("|---|---:|---:|---:|---:|---:|---:|")
for n in ["open", "protected", "form", "token"]:
    print(f"| {n} | {med(n,'rps'):.0f} | {med(n,'p50_ms'):.3f} | {med(n,'p99_ms'):.3f} | {med(n,'cpu_us_per_req'):.1f} | {med(n,'rss_mb'):.0f} | {sum(int(r['bad_status']) for r in rows[n])} |")
print(f"\nprotected / open = {med('protected','rps')/med('open','rps'):.3f} (target >= 0.9)")
print(f"token / form     = {med('token','rps')/med('form','rps'):.3f} (target >= 0.8)")
PY
