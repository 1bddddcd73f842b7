#!/usr/bin/env bash
# Load benchmark: #[oauth] routes and the token endpoint against identical routes without
# the library, in one release binary (bench/server), request logging off, driven by wrk.
#
#   bench/run.sh                 # DUR=10s CONN=32 THREADS=2 REPS=3 PORT=8300
#   FORMAT=jwt bench/run.sh      # also JWT access tokens (RFC 9068), see below
#
# Prints one line per run and a summary table (median of REPS) with requests/s, p50/p99
# latency, server CPU per request and server RSS. Needs `wrk` (apt-get install wrk).
#
# FORMAT=jwt starts two more bench servers beside the memory store's (opaque tokens, port
# PORT): one on the memory store issuing JWT access tokens (PORT+1) and one on PostgreSQL
# issuing JWT access tokens (PORT+2; PG_URL, default postgres://postgres@127.0.0.1:5432/test,
# schema bench_oauth2_<port>, dropped at exit), both with `BENCH_OAUTH2_TOML=$JWT_TOML`
# (generated ES256 key). It adds the pairs, each alternated A B A B as the others:
#   open_jwt / protected_jwt        /open and /protected on the JWT server with one repeat
#                                   JWT (the same Authorization header on both)
#   token_opaque / token_jwt_pg     client_credentials: opaque on the memory store (the
#                                   server of `token`), JWT on PostgreSQL
#   open_pg / protected_jwt_pg      /open and /protected with one repeat JWT on PostgreSQL
# OUT=file also writes the run lines and the summary there (draw it with
# `python3 bench/chart.py --run FILE [CRITERION_OUTPUT] OUT.png`).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}; CONN=${CONN:-32}; THREADS=${THREADS:-2}; REPS=${REPS:-3}; PORT=${PORT:-8300}
FORMAT=${FORMAT:-opaque}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
JWT_TOML=${JWT_TOML:-$'[oauth2]\naccess_token_format = "jwt"\n[oauth2.signing_keys]\nenabled = true'}
BIN=${BIN:-./target/release/twisted-oauth2-bench}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p twisted-oauth2-bench
export WRK_SUMMARY="$PWD/bench/wrk/summary.lua"
HZ=$(getconf CLK_TCK)
RESULTS=$(mktemp)
# Servers by index: BASES[i], PIDS[i]. 0: memory store, opaque tokens.
BASES=(); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done' EXIT
start() {  # PORT STORAGE [env...]
  local port=$1 storage=$2 base="http://127.0.0.1:$1"; shift 2
  env "$@" "$BIN" "$port" "$storage" & PIDS+=($!)
  BASES+=("$base")
  for _ in $(seq 1 200); do curl -s -o /dev/null "$base/open" && return 0; sleep 0.05; done
  echo "the bench server on port $port ($storage) did not start" >&2; exit 1
}
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_mb() { awk '/VmRSS/{printf "%d", $2/1024}' "/proc/$1/status"; }
token_of() {  # SERVER
  curl -s -u bench:bench-secret -d grant_type=client_credentials -d scope=read "${BASES[$1]}/oauth2/token" |
    python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])'
}
check() {  # SERVER PATH TOKEN EXPECTED
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' ${3:+-H "Authorization: Bearer $3"} "${BASES[$1]}$2")
  [ "$got" = "$4" ] || { echo "GET ${BASES[$1]}$2 answered $got, expected $4" >&2; exit 1; }
}
once() {  # NAME SERVER SCRIPT PATH TOKEN RUN
  local name=$1 srv=$2 script=$3 path=$4 tok=$5 i=$6 pid=${PIDS[$2]} out t0 t1 reqs cpu_us
  t0=$(ticks "$pid")
  out=$(RESOURCE_PATH=$path TOKEN_PATH=$path TOKEN=$tok wrk -t"$THREADS" -c"$CONN" -d"$DUR" -s "$script" "${BASES[$srv]}" | grep SUMMARY)
  t1=$(ticks "$pid")
  reqs=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
  cpu_us=$(awk -v t=$((t1 - t0)) -v r="$reqs" -v hz="$HZ" 'BEGIN{printf "%.1f", t / hz / r * 1e6}')
  echo "$name run$i ${out#SUMMARY } cpu_us_per_req=$cpu_us rss_mb=$(rss_mb "$pid")" | tee -a "$RESULTS"
  sleep 1
}
warm() {  # SERVER PATH SCRIPT TOKEN
  RESOURCE_PATH=$2 TOKEN_PATH=$2 TOKEN=$4 wrk -t1 -c4 -d2s -s "$3" "${BASES[$1]}" >/dev/null 2>&1
}
# Each pair runs alternately (A B A B ...) so drift in machine speed hits both alike. /open
# gets the same Authorization header as /protected: identical requests, one route checks it.
pair() {  # NAME_A SERVER_A PATH_A NAME_B SERVER_B PATH_B SCRIPT TOKEN
  warm "$2" "$3" "$7" "$8"; warm "$5" "$6" "$7" "$8"
  for i in $(seq 1 "$REPS"); do
    once "$1" "$2" "$7" "$3" "$8" "$i"
    once "$4" "$5" "$7" "$6" "$8" "$i"
  done
}
start "$PORT" memory
TOKEN=$(token_of 0)
check 0 /protected "$TOKEN" 200
check 0 /protected "" 401
if [ "$FORMAT" = jwt ]; then
  start $((PORT + 1)) memory BENCH_OAUTH2_TOML="$JWT_TOML"
  start $((PORT + 2)) "$PG_URL" BENCH_OAUTH2_TOML="$JWT_TOML"
  JWT=$(token_of 1); JWT_PG=$(token_of 2)
  for t in "$JWT" "$JWT_PG"; do
    python3 -c 'import base64,json,sys;h=sys.argv[1].split(".")[0];sys.exit(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4))).get("typ")!="at+jwt")' "$t" ||
      { echo "not a JWT access token: the JWT servers did not take JWT_TOML" >&2; exit 1; }
  done
  check 1 /protected "$JWT" 200
  check 2 /protected "$JWT_PG" 200
  check 0 /protected "$JWT" 401
fi
{
  echo "# wrk -t$THREADS -c$CONN -d$DUR, $REPS runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), FORMAT=$FORMAT"
} | tee "$RESULTS"
pair open 0 /open protected 0 /protected bench/wrk/get.lua "$TOKEN"
if [ "$FORMAT" = jwt ]; then
  pair open_jwt 1 /open protected_jwt 1 /protected bench/wrk/get.lua "$JWT"
fi
pair form 0 /form token 0 /oauth2/token bench/wrk/token.lua ""
if [ "$FORMAT" = jwt ]; then
  pair token_opaque 0 /oauth2/token token_jwt_pg 2 /oauth2/token bench/wrk/token.lua ""
  pair open_pg 2 /open protected_jwt_pg 2 /protected bench/wrk/get.lua "$JWT_PG"
fi
SUMMARY=$(python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 3 or not parts[1].startswith("run"):
        continue
    kv = dict(p.split("=", 1) for p in parts[2:])
    rows[parts[0]].append(kv)
def med(name, key):
    return statistics.median(float(r[key]) for r in rows[name])
def per_pair(a, b):
    return ", ".join(f"{float(y['rps']) / float(x['rps']):.2f}" for x, y in zip(rows[a], rows[b]))
print("\n| route | req/s | p50 ms | p99 ms | server CPU µs/req | RSS MiB | bad |")
print("|---|---:|---:|---:|---:|---:|---:|")
order = ["open", "protected", "open_jwt", "protected_jwt", "form", "token", "token_opaque",
         "token_jwt_pg",
         "open_pg", "protected_jwt_pg"]
for n in [n for n in order if n in rows]:
    bad = sum(int(r['bad_status']) + int(r['sock_err']) for r in rows[n])
    print(f"| {n} | {med(n,'rps'):.0f} | {med(n,'p50_ms'):.3f} | {med(n,'p99_ms'):.3f} | {med(n,'cpu_us_per_req'):.1f} | {med(n,'rss_mb'):.0f} | {bad} |")
print()
for a, b, target in [("open", "protected", 0.9), ("open_jwt", "protected_jwt", 0.95),
                     ("form", "token", 0.8), ("token_opaque", "token_jwt_pg", 0.8),
                     ("open_pg", "protected_jwt_pg", None)]:
    if a in rows and b in rows:
        t = f" (target >= {target})" if target else ""
        print(f"{b} / {a} = {med(b,'rps')/med(a,'rps'):.3f}{t}; per pair {per_pair(a, b)}; "
              f"CPU µs/req {med(a,'cpu_us_per_req'):.1f} -> {med(b,'cpu_us_per_req'):.1f}")
PY
)
echo "$SUMMARY"
if [ -n "${OUT:-}" ]; then
  { cat "$RESULTS"; echo "$SUMMARY"; } > "$OUT"
  echo "results: $OUT"
fi
