#!/usr/bin/env bash
# Load benchmark per store: the token endpoint (client_credentials, HTTP Basic) and an
# #[oauth] route, each beside its ceiling in the same release binary (bench/server) and run,
# on the memory store, a SQLite file, PostgreSQL and Redis. Request logging off, wrk.
#
#   bench/stores.sh                       # all four stores
#   bench/stores.sh sqlite postgres       # some of them
#   DUR=8s CONN=32 THREADS=2 REPS=3 PORT=8310 bench/stores.sh
#   CACHE=1 bench/stores.sh               # also the protected route with the validation cache
#   PAIRS=protected CACHE=1 bench/stores.sh   # only the protected pairs (PAIRS=token: only token)
#
# Ceilings (same binary, same driver, no library): memory: `GET /open`, `POST /form`;
# SQLite / PostgreSQL: `POST /ceiling/token` (the form plus one INSERT of a token-sized row
# via sqlx) and `GET /ceiling/protected` (one SELECT by primary key); Redis: one SET / GET
# via the redis crate. Each pair runs alternately (A B A B ...). Prints one line per run and
# a table of medians, and writes both to bench/results/<date>-stores.txt (or $OUT); draw it
# with `python3 bench/chart.py <results file> docs/images/benchmarks-stores.png`.
#
# Stores: PG_URL (default postgres://postgres@127.0.0.1:5432/test; the bench uses the schema
# bench_oauth2_<port> and drops it at exit), REDIS_URL (default redis://127.0.0.1:6379; keys
# under bench-oauth2-<port>: and bench-ceiling-<port>:, deleted at exit), a fresh SQLite
# file in $TMPDIR. Runs on different PORTs do not share tables or keys.
# CACHE=1 restarts each shared store's server with BENCH_OAUTH2_TOML=$CACHE_TOML (default:
# [oauth2.validation_cache] enabled = true, max_entries = 100000, max_staleness = 5) and
# adds `protected_cache` rows (beside `cache_ceiling`, the same ceiling in that server),
# compared with the memory store's `protected`.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-8s}; CONN=${CONN:-32}; THREADS=${THREADS:-2}; REPS=${REPS:-3}; PORT=${PORT:-8310}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
CACHE=${CACHE:-0}
PAIRS=${PAIRS:-token,protected}
CACHE_TOML=${CACHE_TOML:-$'[oauth2.validation_cache]\nenabled = true\nmax_entries = 100000\nmax_staleness = 5'}
BIN=${BIN:-./target/release/twisted-oauth2-bench}
STORES=("$@"); [ ${#STORES[@]} -gt 0 ] || STORES=(memory sqlite postgres redis)
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p twisted-oauth2-bench
mkdir -p bench/results
OUT=${OUT:-bench/results/$(date -u +%F)-stores.txt}
BASE="http://127.0.0.1:$PORT"
export WRK_SUMMARY="$PWD/bench/wrk/summary.lua"
HZ=$(getconf CLK_TCK)
RAW=$(mktemp); SQLITE_DIR=$(mktemp -d)
PID=
stop() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }; }
trap 'stop; rm -rf "$SQLITE_DIR"' EXIT

url_of() {
  case $1 in
    memory) echo memory ;;
    sqlite) echo "sqlite://$SQLITE_DIR/bench.db" ;;
    postgres) echo "$PG_URL" ;;
    redis) echo "$REDIS_URL" ;;
    *) echo "unknown store $1" >&2; exit 2 ;;
  esac
}

start() {  # STORE [extra env for the server...]
  local store=$1; shift
  rm -f "$SQLITE_DIR"/bench.db*
  env "$@" "$BIN" "$PORT" "$(url_of "$store")" & PID=$!
  for _ in $(seq 1 200); do curl -s -o /dev/null "$BASE/open" && return 0; sleep 0.05; done
  echo "server for $store did not start" >&2; exit 1
}

ticks() { awk '{print $14+$15}' "/proc/$PID/stat"; }
rss_mb() { awk '/VmRSS/{printf "%d", $2/1024}' "/proc/$PID/status"; }

once() {  # STORE NAME SCRIPT PATH TOKEN RUN
  local store=$1 name=$2 script=$3 path=$4 tok=$5 i=$6 out t0 t1 reqs cpu_us
  t0=$(ticks)
  out=$(RESOURCE_PATH=$path TOKEN_PATH=$path TOKEN=$tok wrk -t"$THREADS" -c"$CONN" -d"$DUR" -s "$script" "$BASE" | grep SUMMARY)
  t1=$(ticks)
  reqs=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
  cpu_us=$(awk -v t=$((t1 - t0)) -v r="$reqs" -v hz="$HZ" 'BEGIN{printf "%.1f", t / hz / r * 1e6}')
  echo "$store $name run$i ${out#SUMMARY } cpu_us_per_req=$cpu_us rss_mb=$(rss_mb)" | tee -a "$RAW"
  sleep 1
}

warm() {  # PATH SCRIPT TOKEN
  RESOURCE_PATH=$1 TOKEN_PATH=$1 TOKEN=$3 wrk -t1 -c4 -d2s -s "$2" "$BASE" >/dev/null 2>&1
}

pair() {  # STORE NAME_A PATH_A NAME_B PATH_B SCRIPT TOKEN
  warm "$3" "$6" "$7"; warm "$5" "$6" "$7"
  for i in $(seq 1 "$REPS"); do
    once "$1" "$2" "$6" "$3" "$7" "$i"
    once "$1" "$4" "$6" "$5" "$7" "$i"
  done
}

token_of() {
  curl -s -u bench:bench-secret -d grant_type=client_credentials -d scope=read "$BASE/oauth2/token" |
    python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])'
}

check() {  # PATH TOKEN EXPECTED
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' ${2:+-H "Authorization: Bearer $2"} "$BASE$1")
  [ "$got" = "$3" ] || { echo "GET $1 answered $got, expected $3" >&2; exit 1; }
}

echo "# bench/stores.sh: wrk -t$THREADS -c$CONN -d$DUR, $REPS runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" | tee "$RAW"
for store in "${STORES[@]}"; do
  start "$store"
  if [ "$store" = memory ]; then
    ceil_token=/form; ceil_prot=/open
  else
    ceil_token=/ceiling/token; ceil_prot=/ceiling/protected
    check /ceiling/protected "" 200
  fi
  TOKEN=$(token_of)
  check /protected "$TOKEN" 200
  check /protected "" 401
  if [[ ",$PAIRS," == *,token,* ]]; then
    pair "$store" token_ceiling "$ceil_token" token /oauth2/token bench/wrk/token.lua ""
  fi
  if [[ ",$PAIRS," == *,protected,* ]]; then
    TOKEN=$(token_of)
    pair "$store" protected_ceiling "$ceil_prot" protected /protected bench/wrk/get.lua "$TOKEN"
  fi
  stop
  if [ "$CACHE" = 1 ] && [ "$store" != memory ]; then
    start "$store" BENCH_OAUTH2_TOML="$CACHE_TOML"
    TOKEN=$(token_of)
    check /protected "$TOKEN" 200
    pair "$store" cache_ceiling "$ceil_prot" protected_cache /protected bench/wrk/get.lua "$TOKEN"
    stop
  fi
done
{
  cat "$RAW"
  python3 bench/summarize.py "$RAW"
} > "$OUT"
python3 bench/summarize.py "$RAW"
echo "results: $OUT"
