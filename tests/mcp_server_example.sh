#!/usr/bin/env bash
# examples/mcp-server as its README runs it: the release build, its own Rocket.toml (from its
# directory), a secret_key from the environment. Starts it on a free port with a fresh SQLite
# file, checks the launch banner, and connects the official TypeScript and Python MCP SDK
# clients with the connect scripts (tests/mcp/node/connect.mjs, tests/mcp/python/connect.py):
# registration, the built-in sign-in and consent, both MCP eras, a tool call and a step-up.
# Needs `cd tests/mcp/node && npm ci` and the venv target/mcp-venv (.ci/run makes both).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${MCP_PYTHON:-$ROOT/target/mcp-venv/bin/python}
cargo build --release -p twisted-oauth2-mcp-server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
cp examples/mcp-server/Rocket.toml "$DIR/"
SECRET=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
(cd "$DIR" && ROCKET_SECRET_KEY=$SECRET ROCKET_PORT=$PORT ROCKET_OAUTH2="{issuer=\"http://127.0.0.1:$PORT\"}" \
  exec "$ROOT/target/release/mcp-server" > "$DIR/log" 2>&1) &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/mcp" && break; sleep 0.1; done
fail() { echo "mcp-server example: $1"; cat "$DIR/log"; exit 1; }
# The banner is shown in release (log_level = "normal" in the example's [release] profile).
for line in "authorize:  GET|POST http://127.0.0.1:$PORT/oauth2/authorize (built-in consent page; sign-in at /oauth2/login)" \
            "registration: POST http://127.0.0.1:$PORT/oauth2/register (open)" \
            "client metadata documents: on (any https host)" \
            "origin check: /mcp" "store:      sqlite (mcp-server.db)"; do
  grep -qF "$line" "$DIR/log" || fail "the banner lacks: $line"
done
! grep -q "no configured client may obtain" "$DIR/log" || fail "a false scope warning"
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/mcp)
[ "$code" = 405 ] || fail "GET /mcp gave $code"
URL="http://127.0.0.1:$PORT/mcp"
(cd tests/mcp/node && node connect.mjs --url "$URL" --user alice --password wonderland \
  --call greet --args '{"name":"Ada"}' --call server_stats --expect-step-up) || fail "the TypeScript SDK client failed"
"$PYTHON" tests/mcp/python/connect.py --url "$URL" --user alice --password wonderland \
  --call greet --args '{"name":"Ada"}' --call server_stats --expect-step-up || fail "the Python SDK client failed"
# A wrong password is refused (the connect script exits non-zero).
if (cd tests/mcp/node && node connect.mjs --url "$URL" --user alice --password wrong > "$DIR/wrong" 2>&1); then
  fail "a wrong password signed in"
fi
grep -q "FAILED: signed in" "$DIR/wrong" || fail "a wrong password was not refused at the sign-in: $(tail -3 "$DIR/wrong")"
echo "mcp-server example: ok (release build, port $PORT, TypeScript and Python SDK clients)"
