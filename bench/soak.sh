#!/usr/bin/env bash
# Bounded soak per store: token issuance (authorization code and client_credentials),
# validation, refresh rotation and revocation mixed (bench/soak.py) against the release
# bench server, on loopback, for SECS seconds per store; then it stops by itself.
#
#   bench/soak.sh                         # memory sqlite postgres redis, 180 s each
#   SECS=120 THREADS=8 bench/soak.sh sqlite postgres
#
# Lifetimes are short so that expiry and purge happen during the soak: access tokens
# ACCESS_TTL=20 s, refresh tokens REFRESH_TTL=60 s, codes 10 s, purge every PURGE_SECS=5 s.
# Samples RSS and table rows (Redis: keys) at the start, every 30 s and at the end; prints
# p50/p99 of the first and last 30 s and the errors, and writes everything to
# bench/results/<date>-soak.txt (or $OUT). Stores as in bench/stores.sh (PG_URL, REDIS_URL,
# a fresh SQLite file); the bench's schema and keys are removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-180}; THREADS=${THREADS:-8}; PORT=${PORT:-8320}
ACCESS_TTL=${ACCESS_TTL:-20}; REFRESH_TTL=${REFRESH_TTL:-60}; PURGE_SECS=${PURGE_SECS:-5}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
BIN=${BIN:-./target/release/twisted-oauth2-bench}
STORES=("$@"); [ ${#STORES[@]} -gt 0 ] || STORES=(memory sqlite postgres redis)
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p twisted-oauth2-bench
mkdir -p bench/results
OUT=${OUT:-bench/results/$(date -u +%F)-soak.txt}
BASE="http://127.0.0.1:$PORT"
SQLITE_DIR=$(mktemp -d)
PID=
stop() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }; }
trap 'stop; rm -rf "$SQLITE_DIR"' EXIT
url_of() {
  case $1 in
    memory) echo memory ;;
    sqlite) echo "sqlite://$SQLITE_DIR/soak.db" ;;
    postgres) echo "$PG_URL" ;;
    redis) echo "$REDIS_URL" ;;
    *) echo "unknown store $1" >&2; exit 2 ;;
  esac
}
status=0
{
  echo "# bench/soak.sh: ${SECS}s per store, $THREADS driver threads, access ${ACCESS_TTL}s, refresh ${REFRESH_TTL}s, purge every ${PURGE_SECS}s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  for store in "${STORES[@]}"; do
    rm -f "$SQLITE_DIR"/soak.db*
    BENCH_ACCESS_TTL=$ACCESS_TTL BENCH_REFRESH_TTL=$REFRESH_TTL BENCH_CODE_TTL=10 \
      BENCH_PURGE_SECS=$PURGE_SECS "$BIN" "$PORT" "$(url_of "$store")" & PID=$!
    for _ in $(seq 1 200); do curl -s -o /dev/null "$BASE/open" && break; sleep 0.05; done
    echo "## $store"
    python3 bench/soak.py "$BASE" "$SECS" "$THREADS" || status=1
    # One more sample after a purge interval with no load: what purge leaves behind.
    sleep $((PURGE_SECS + 1))
    echo "sample idle $(curl -s "$BASE/bench/stats")"
    stop
  done
} 2>&1 | tee "$OUT"
echo "results: $OUT"
exit $status
