#!/usr/bin/env bash
# Schemathesis against a live server: every operation of the OpenAPI description, with
# generated requests, must never answer a server error (5xx), and every answer must be one the
# description lists for it, with its status, content type, headers and body schema. (Not
# checked: that every schema-valid request is accepted — a valid request may still break a rule
# such as "you cannot block yourself" — nor that every invalid one is refused: list `limit` and
# `offset` fall back to their defaults as Django REST framework's did.)
# Needs `pip install schemathesis`.
# Uses the debug binary that `cargo test` built (or BIN=...); bounded by EXAMPLES per operation.
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${EXAMPLES:-25}"
bin="${BIN:-$PWD/target/debug/simple-chat}"
[ -x "$bin" ] || cargo build --quiet
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/schemathesis.sqlite3"
SIMPLE_CHAT_SUPERUSER_PASSWORD=schema-admin-1 "$bin" createsuperuser --username admin --noinput >/dev/null
SIMPLE_CHAT_USER_PASSWORD=schema-alice-1 "$bin" createuser alice --noinput >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
RUST_LOG=warn SIMPLE_CHAT_ACCESS_TOKEN_LIFETIME=3600 "$bin" serve --bind "127.0.0.1:$port" &
server=$!
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
token=$(curl -sf -X POST "$base/api/token/" -H 'Content-Type: application/json' \
  -d '{"username": "admin", "password": "schema-admin-1"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
curl -sf -X POST "$base/chat/thread/" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"user1": "admin", "user2": "alice"}' >/dev/null

# The long poll is told to wait a second at most (each generated request would else wait up to
# a minute for an event).
cat > "$work/schemathesis.toml" <<'TOML'
[[operations]]
include-name = "GET /api/events"
parameters = { "query.timeout" = 1 }
TOML
# The WebSocket is not HTTP past its handshake. Changing a user runs last, on its own: a
# generated password change or deactivation of the run's own account ends its token (as it
# should), and every operation after it would only be answered 401.
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
run() {
  schemathesis --config-file "$work/schemathesis.toml" run "$base/api/schema/" \
    --checks "$checks" \
    --max-examples "$EXAMPLES" \
    --exclude-path /ws \
    --header "Authorization: Bearer $token" \
    --request-timeout 70 \
    --seed 1 \
    --no-color "$@" 2>&1 | tail -40
}
run --exclude-name 'PATCH /api/users/{id}'
run --include-name 'PATCH /api/users/{id}'
