#!/usr/bin/env bash
# Writes server/quiver.order: the functions of the release `quiver` binary
# that run, in the order the linker should place them (server/build.rs
# hands the file to the linker for release builds).
#
#   scripts/order-code.sh            # after scripts/build.sh (or ./dev build)
#
# Why: a process's resident memory counts every page of its binary that is
# mapped, and the kernel maps the pages around each one touched (64 KiB at
# a time). The ~3 MB of code an idle server runs is spread over a 32 MB
# `.text`, so an idle server held ~20 MiB of the binary. Placed together,
# that code is resident as a few MiB (docs/BENCHMARKS.md, memory).
#
# How: `quiver serve` runs under valgrind's callgrind (which records every
# function executed) on a new SQLite database: first starting up (creating
# the database) and idling (the functions listed first), then an admin and
# an API key made with the CLI beside it, and a program's work: a provider
# and a Client Credentials token at the test authorization server, access
# tokens handed out, a refresh, a sign-in and the tokens page rendered.
# Names not found in a later build (changed code, another toolchain) are
# skipped by the linker; regenerate the file when the idle figure drifts up
# (scripts/idle-rss.sh).
#
# Settings: ORDER_IDLE_SECONDS (8), ORDER_LIMIT (300: everything stops by
# itself after that many seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/target/release/quiver
OUT=$ROOT/server/quiver.order
LIMIT=${ORDER_LIMIT:-300}

for tool in valgrind callgrind_control curl jq node python3; do
  command -v "$tool" >/dev/null || { echo "order: $tool is missing (apt-get install -y valgrind jq curl)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "order: build the release first (scripts/build.sh)" >&2; exit 2; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# shellcheck source=scripts/loopback.sh
. scripts/loopback.sh
port=$(free_port)
base="http://127.0.0.1:$port"
start_authserver "$base/oauth/callback"

mkdir -m 700 "$TMP/data"
export QUIVER_DATA_DIR="$TMP/data" QUIVER_LISTEN="127.0.0.1:$port" QUIVER_LOG=warn \
  QUIVER_MASTER_KEY="$(head -c32 /dev/urandom | base64)" QUIVER_ALLOW_INSECURE_LOOPBACK=true

# The site as ./dev run serves it, when built.
[ -d target/site ] && export QUIVER_SITE_DIR="$ROOT/target/site"
timeout -s INT "$LIMIT" valgrind --tool=callgrind --demangle=no --compress-strings=no \
  --compress-pos=no --callgrind-out-file="$TMP/callgrind.out" "$BIN" serve 2> "$TMP/serve.log" &
PIDS+=($!)
# valgrind runs as timeout's child.
for _ in $(seq 50); do valgrind_pid=$(pgrep -P "${PIDS[-1]}" || true); [ -n "$valgrind_pid" ] && break; sleep 0.1; done
for _ in $(seq "$LIMIT"); do curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break; sleep 1; done
curl -fsS -o /dev/null "$base/healthz" || { cat "$TMP/serve.log" >&2; exit 1; }
sleep "${ORDER_IDLE_SECONDS:-8}"
# Everything so far is starting up on a new database (its migrations
# included) and idling: the first part.
callgrind_control --dump=idle "$valgrind_pid" >/dev/null 2>&1
for _ in $(seq 100); do [ -s "$TMP/callgrind.out.1" ] && break; sleep 0.1; done
[ -s "$TMP/callgrind.out.1" ] || { echo "order: callgrind did not write the idle part" >&2; exit 1; }

password="order admin password"
echo "$password" | "$BIN" user create --email order@example.com --admin >/dev/null 2>&1
key=$("$BIN" api-key create --name order --email order@example.com 2>/dev/null | sed -n 's/^key (shown once): //p')
[ -n "$key" ] || { echo "order: no API key" >&2; exit 1; }
auth="Authorization: Bearer $key"
json=(-H 'content-type: application/json')
provider=$(curl -fsS -H "$auth" "${json[@]}" -d "$(client_credentials_provider order)" \
  "$base/api/v1/providers" | jq -r .id)
token=$(curl -fsS -H "$auth" "${json[@]}" \
  -d "{\"name\":\"order\",\"provider_id\":\"$provider\",\"flow\":\"client_credentials\"}" \
  "$base/api/v1/tokens" | jq -r 'select(.status == "active") | .id')
[ -n "$token" ] || { echo "order: the token is not active" >&2; exit 1; }
for _ in $(seq 200); do
  curl -fsS -o /dev/null -H "$auth" "$base/api/v1/tokens/$token/access-token"
done
curl -fsS -o /dev/null -H "$auth" -X POST "$base/api/v1/tokens/$token/refresh"
curl -fsS -o /dev/null -H "$auth" "$base/api/v1/tokens"
curl -fsS -o /dev/null -c "$TMP/cookies" "${json[@]}" \
  -d "{\"email\":\"order@example.com\",\"password\":\"$password\"}" "$base/api/v1/session"
curl -fsS -o /dev/null -b "$TMP/cookies" "$base/tokens"
kill -INT "$valgrind_pid"
wait "${PIDS[-1]}" 2>/dev/null || true

# Functions of the binary by dump: the idle part first, then the rest.
python3 - "$BIN" "$OUT" "$TMP"/callgrind.out* <<'EOF'
import os, re, sys

binary, out, dumps = os.path.realpath(sys.argv[1]), sys.argv[2], sys.argv[3:]
def part(path):
    match = re.search(r"\.(\d+)$", path)
    return int(match.group(1)) if match else 1 << 30
order, seen = [], set()
first = None
for path in sorted(dumps, key=part):
    if first is None and order:
        first = len(order)
    obj = None
    with open(path, errors="replace") as dump:
        for line in dump:
            if line.startswith("ob="):
                obj = os.path.realpath(line[3:].strip())
            elif line.startswith("fn=") and obj == binary:
                # callgrind marks recursion levels as name'2.
                name = re.sub(r"'\d+$", "", line[3:].strip())
                # Not symbols: "(below main)", bare addresses.
                if name.startswith(("(", "0x")):
                    continue
                if name not in seen:
                    seen.add(name)
                    order.append(name)
print(f"order: {len(order)} functions, of which {first} start up and idle", file=sys.stderr)
if len(order) < 1000:
    sys.exit(f"order: only {len(order)} functions recorded; is {binary} the binary that ran?")
# Where a function sits within its part makes no difference to what is
# resident; sorted, a regenerated file differs only by what changed.
first = first or len(order)
with open(out, "w") as f:
    f.write("\n".join(sorted(order[:first]) + sorted(order[first:])) + "\n")
print(f"order: {len(order)} functions written to {out}", file=sys.stderr)
EOF
