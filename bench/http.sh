#!/usr/bin/env bash
# Throughput and latency of the main endpoints, as ratios to GET /healthz measured in the same
# run (these machines are noisy). Run on purpose, on an otherwise idle machine:
#
#   bash bench/http.sh            # SQLite (the default)
#   DURATION=20s CONNECTIONS=64 bash bench/http.sh
#
# Needs wrk (apt-get install wrk). Builds the release binary, starts it on a temporary
# database on 127.0.0.1, and stops it afterwards. Client and server share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

# BIN=/path/to/simple-chat measures another build (for before/after comparisons).
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin="${BIN:-$PWD/target/release/simple-chat}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/bench.sqlite3"
SIMPLE_CHAT_USER_PASSWORD=bench-alice-1 "$bin" createuser alice --noinput >/dev/null
SIMPLE_CHAT_USER_PASSWORD=bench-bob-12 "$bin" createuser bob --noinput >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# The bench measures speed, not the posting limit.
RUST_LOG=warn SIMPLE_CHAT_POST_RATE=1000000000 "$bin" serve --bind "127.0.0.1:$port" --access-token-lifetime 3600 &
server=$!
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

token() {
  curl -sf -X POST "$base/api/token/" -H 'Content-Type: application/json' \
    -d "{\"username\": \"$1\", \"password\": \"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
alice=$(token alice bench-alice-1)
thread=$(curl -sf -X POST "$base/chat/thread/" -H "Authorization: Bearer $alice" \
  -H 'Content-Type: application/json' -d '{"user1": "alice", "user2": "bob"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
batch=$(python3 -c 'import json; print(json.dumps({"messages": [{"text": "message %d" % i} for i in range(20)]}))')
curl -sf -X POST "$base/thread/$thread/message/" -H "Authorization: Bearer $alice" \
  -H 'Content-Type: application/json' -d "$batch" >/dev/null

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $alice"
wrk.body = '{"messages": [{"text": "hello from wrk"}]}'
LUA

# name, path, extra wrk arguments
run() {
  local name="$1" path="$2"; shift 2
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$base$path")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "warning: $name had non-2xx answers" >&2; fi
  printf '%s %s %s %s\n' "$name" "$rps" "$p50" "$p99"
}

results=(
  "$(run healthz /healthz)"
  "$(run me /api/me/ -H "Authorization: Bearer $alice")"
  "$(run messages_page_20 "/thread/$thread/message/?limit=20" -H "Authorization: Bearer $alice")"
  "$(run thread_list "/chat/user/1/thread/" -H "Authorization: Bearer $alice")"
  "$(run unread_count "/user/1/message/" -H "Authorization: Bearer $alice")"
  "$(run post_message "/thread/$thread/message/" -s "$work/post.lua")"
)
base_rps=$(awk '{print $2; exit}' <<<"${results[0]}")
printf '%-18s %12s %10s %10s %10s\n' endpoint requests/s 'vs healthz' p50 p99
for line in "${results[@]}"; do
  read -r name rps p50 p99 <<<"$line"
  ratio=$(python3 -c "print(f'{float($rps) / float($base_rps):.2f}')")
  printf '%-18s %12s %10s %10s %10s\n' "$name" "$rps" "$ratio" "$p50" "$p99"
done
