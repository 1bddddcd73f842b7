#!/usr/bin/env bash
# Runs the README's curl walk-through against a fresh demo and checks every answer.
#
# The commands are not copied here: they are the README's code blocks fenced as
# ```sh walkthrough, run in order in one shell (so the variables one block sets are there for
# the next), with the demo's address 127.0.0.1:8000 replaced by a free loopback port. Each
# block's comment lines that start a line (`# …`, continued on lines starting with `#` and
# two spaces) are the answers the README shows; the block's output must be exactly those
# lines, in order, where `…` matches anything. So the README cannot drift from the demo.
# Further checks below look at the variables the walk-through sets and at the JSON answers.
#
# Needs bash, curl, jq and cargo. Usage: tests/readme_walkthrough.sh (from anywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

for tool in curl jq cargo; do
  command -v "$tool" >/dev/null || { echo "readme_walkthrough: needs $tool" >&2; exit 2; }
done

WORK=$(mktemp -d)
DEMO_PID=""
cleanup() {
  if [ -n "$DEMO_PID" ]; then
    kill "$DEMO_PID" 2>/dev/null || true
    wait "$DEMO_PID" 2>/dev/null || true
  fi
  [ -n "${JAR:-}" ] && rm -f "$JAR"
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "readme_walkthrough: FAIL: $*" >&2
  if [ -s "$WORK/demo.log" ]; then
    echo "--- last lines of the demo's log" >&2
    tail -n 30 "$WORK/demo.log" >&2
  fi
  exit 1
}

# ---- the blocks, from README.md ----
# Writes $WORK/block.N (the commands, dedented) and $WORK/expect.N (the answers shown).
awk -v dir="$WORK" '
  function flush_answer() { if (answer != "") { print answer > (dir "/expect." n); answer = "" } }
  !inblock && /^[ \t]*```sh walkthrough[ \t]*$/ {
    inblock = 1; n++; match($0, /^[ \t]*/); indent = RLENGTH; answer = ""
    printf "" > (dir "/block." n); printf "" > (dir "/expect." n); next
  }
  inblock && /^[ \t]*```[ \t]*$/ { flush_answer(); inblock = 0; next }
  inblock {
    line = substr($0, indent + 1)
    print line > (dir "/block." n)
    if (line ~ /^#  /) { sub(/^#[ \t]+/, "", line); answer = answer line }
    else if (line ~ /^# /) { flush_answer(); answer = substr(line, 3) }
    else flush_answer()
  }
  END { print n + 0 > (dir "/count") }
' README.md
BLOCKS=$(cat "$WORK/count")
[ "$BLOCKS" -ge 10 ] || fail "found $BLOCKS \`sh walkthrough\` blocks in README.md, expected at least 10"

# ---- the demo, on a free loopback port with memory storage ----
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=""
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 40000))
  if ! port_in_use "$p"; then PORT=$p; break; fi
done
[ -n "$PORT" ] || fail "no free port"
BASE="http://127.0.0.1:$PORT"

echo "readme_walkthrough: building the demo"
cargo build -q -p twisted-oauth2-demo
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/twisted-oauth2-demo"
[ -x "$BIN" ] || fail "no demo binary at $BIN"

echo "readme_walkthrough: starting the demo on $BASE"
ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT=$PORT ROCKET_LOG_LEVEL=normal \
  ROCKET_OAUTH2="{storage=\"memory\",issuer=\"$BASE\"}" \
  "$BIN" >"$WORK/demo.log" 2>&1 &
DEMO_PID=$!
for _ in $(seq 1 300); do
  curl -s -o /dev/null "$BASE/.well-known/oauth-authorization-server" && break
  kill -0 "$DEMO_PID" 2>/dev/null || fail "the demo exited at launch"
  sleep 0.1
done
curl -s -o /dev/null "$BASE/.well-known/oauth-authorization-server" || fail "the demo does not answer on $BASE"

# ---- run each block, compare its output with the answers shown ----
# The README's address, plain and percent-encoded, becomes the test port.
localize() { sed -e "s/127\.0\.0\.1:8000/127.0.0.1:$PORT/g" -e "s/127\.0\.0\.1%3A8000/127.0.0.1%3A$PORT/g" "$1"; }
# A shown answer as a bash pattern: glob characters escaped, `…` matching anything.
pattern() { printf '%s' "$1" | sed -e 's/[][\\*?]/\\&/g' -e 's/…/*/g'; }

SET_BY_README=""
for i in $(seq 1 "$BLOCKS"); do
  code=$(localize "$WORK/block.$i")
  mapfile -t expected < <(localize "$WORK/expect.$i")
  printf '\n--- block %d\n%s\n' "$i" "$code"
  # Every variable a line uses was set by an earlier line of the walk-through (not by this
  # script, nor by the reader's environment).
  while IFS= read -r line; do
    for v in $(printf '%s\n' "$line" | grep -oE '\$\{?[A-Z_][A-Z0-9_]*' | tr -d '${' | sort -u); do
      [[ " $SET_BY_README " == *" $v "* ]] || fail "block $i uses \$$v before the README sets it: $line"
    done
    for v in $(printf '%s\n' "$line" | grep -oE '^[[:space:]]*[A-Z_][A-Z0-9_]*=' | tr -d ' =\t'); do
      SET_BY_README="$SET_BY_README $v"
    done
  done <<<"$code"
  # Run in this shell, so the variables persist; output captured.
  set +e
  { eval "$code"; status=$?; } >"$WORK/out.$i" 2>"$WORK/err.$i"
  set -e
  [ "$status" -eq 0 ] || fail "block $i exited with $status: $(cat "$WORK/err.$i")"
  mapfile -t actual < <(tr -d '\r' <"$WORK/out.$i" | sed '/^[[:space:]]*$/d')
  printf '%s\n' "${actual[@]}"
  [ "${#actual[@]}" -eq "${#expected[@]}" ] ||
    fail "block $i printed ${#actual[@]} lines, the README shows ${#expected[@]}: $(printf '\n  %s' "${actual[@]}")"
  for j in "${!expected[@]}"; do
    pat=$(pattern "${expected[$j]}")
    # shellcheck disable=SC2053 # $pat is a pattern on purpose
    [[ ${actual[$j]} == $pat ]] ||
      fail "block $i, answer $((j + 1)):$(printf '\n  shown:   %s\n  printed: %s' "${expected[$j]}" "${actual[$j]}")"
    # An answer shown as JSON must be JSON.
    if [[ ${expected[$j]} == '{'* ]]; then
      printf '%s' "${actual[$j]}" | jq -e . >/dev/null 2>&1 || fail "block $i, answer $((j + 1)) is not JSON: ${actual[$j]}"
    fi
  done
done

# ---- the shapes behind the answers ----
token_like() { [[ $1 =~ ^[A-Za-z0-9_-]{20,}$ ]]; }
for var in CODE ACCESS_TOKEN REFRESH_TOKEN REQUEST_ID CSRF_TOKEN; do
  token_like "${!var:-}" || fail "\$$var is not set to a token by the walk-through: '${!var:-}'"
done
# demo-svc's token is a JWT (RFC 9068): three base64url parts, a JSON header first.
[[ ${TOKEN:-} =~ ^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] ||
  fail "\$TOKEN is not set to a JWT by the walk-through: '${TOKEN:-}'"
case "${NEXT:-}" in /consent\?request_id=*) ;; *) fail "\$NEXT is not the consent page: '${NEXT:-}'" ;; esac
case "${CALLBACK:-}" in
  "http://127.0.0.1:9000/callback?code=$CODE&state=xyz&iss=http%3A%2F%2F127.0.0.1%3A$PORT") ;;
  *) fail "\$CALLBACK is not the client's redirect URI with code, state and iss: '${CALLBACK:-}'" ;;
esac
# The token answers, key by key: every JSON answer of the walk-through in one stream.
cat "$WORK"/out.* | grep '^{' | jq -se '
  (map(select(has("access_token"))) | length >= 3) and
  all(.[] | select(has("access_token"));
      (.access_token | type == "string") and .token_type == "Bearer"
      and (.expires_in | type == "number") and (.scope | type == "string")) and
  (map(select(has("refresh_token"))) | length == 3) and
  (map(select(.active == true)) | length == 1) and
  (map(select(.active == false)) | length == 1) and
  (map(select(.sub == "alice")) | length == 1) and
  (map(select(has("issuer"))) | .[0] | (.issuer | test("^http://127\\.0\\.0\\.1:[0-9]+$"))
      and (.code_challenge_methods_supported == ["S256"]))
' >/dev/null || fail "the JSON answers do not have the expected shape"

echo
echo "readme_walkthrough: ok ($BLOCKS blocks of README.md against $BASE)"
