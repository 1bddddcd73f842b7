#!/usr/bin/env bash
# The demo as users run it: the release build, the repository's Rocket.toml, no secret_key.
# Starts it on a free port, asks for a token and checks the Origin refusal at /mcp.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p twisted-oauth2-demo
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
cp Rocket.toml "$DIR/"
(cd "$DIR" && ROCKET_PORT=$PORT ROCKET_OAUTH2="{issuer=\"http://127.0.0.1:$PORT\"}" \
  exec "$OLDPWD/target/release/twisted-oauth2-demo" > "$DIR/log" 2>&1) &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
code=$(curl -s -o "$DIR/token" -w '%{http_code}' -u demo-svc:secret -d grant_type=client_credentials \
  "http://127.0.0.1:$PORT/oauth2/token")
[ "$code" = 200 ] && grep -q access_token "$DIR/token" || { echo "release demo: token $code"; cat "$DIR/log"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: http://evil.example' "http://127.0.0.1:$PORT/mcp")
[ "$code" = 403 ] || { echo "release demo: /mcp with a foreign Origin gave $code"; exit 1; }
grep -q "no secret_key" "$DIR/log" || { echo "release demo: no secret_key warning"; cat "$DIR/log"; exit 1; }
echo "release demo: ok (port $PORT)"
