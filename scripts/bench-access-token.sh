#!/usr/bin/env bash
# The access-token endpoint under load, measured by an external load
# generator (wrk) against a bare axum handler in the same run.
#
#   scripts/bench-access-token.sh            # SQLite, then PostgreSQL
#   BENCH_DATABASES=sqlite scripts/bench-access-token.sh
#
# For each database: a release `quiver serve` (default settings, log level
# info) on a fresh SQLite file or a fresh schema of PostgreSQL database
# `test` at 127.0.0.1:5432, seeded with an admin, an API key and a Client
# Credentials token fresh for a day (from the test authorization server,
# end2end/authserver); and the bare handler (server/examples/
# bare_access_token.rs) answering the exact body Quiver answered. For each
# connection count, wrk (2 threads, 8 s) runs against the bare handler, then
# against `GET /api/v1/tokens/{id}/access-token`; one line per run and the
# ratio. Everything listens on loopback and stops by itself after
# BENCH_LIMIT seconds (default 600) even if this script is killed.
#
# Settings: BENCH_DATABASES (sqlite,postgres), BENCH_CONNECTIONS (16 64 256),
# BENCH_SECONDS (8), BENCH_THREADS (2), BENCH_BUILD (1: build first),
# QUIVER_TEST_POSTGRES (postgres://postgres@127.0.0.1:5432/test),
# BENCH_QUIVER_LOG (Quiver's log filter; default: as shipped).
# BENCH_QUIVER (the quiver binary to measure; default target/release/quiver).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DATABASES=${BENCH_DATABASES:-sqlite,postgres}
CONNECTIONS=${BENCH_CONNECTIONS:-16 64 256}
SECONDS_EACH=${BENCH_SECONDS:-8}
THREADS=${BENCH_THREADS:-2}
LIMIT=${BENCH_LIMIT:-600}
PG=${QUIVER_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
QUIVER=${BENCH_QUIVER:-$ROOT/target/release/quiver}
BARE=$ROOT/target/release/examples/bare_access_token

for tool in wrk jq curl node; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y wrk jq curl)" >&2; exit 2; }
done
if [ "${BENCH_BUILD:-1}" = 1 ]; then
  # Two builds: built together, the example's dev-dependencies would change
  # the binary's features and so the names server/quiver.order lays out.
  cargo build --release --locked -p server --bin quiver >&2
  cargo build --release --locked -p server --example bare_access_token >&2
fi

TMP=$(mktemp -d)
PIDS=()
SCHEMAS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for schema in "${SCHEMAS[@]}"; do
    psql -q "$PG" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=scripts/loopback.sh
. scripts/loopback.sh

wait_for() { # URL SECONDS
  local deadline=$(( $(date +%s) + $2 ))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bench: $1 did not answer in $2 s" >&2; return 1; }
    sleep 0.1
  done
}

# The test authorization server.
start_authserver http://127.0.0.1:3000/oauth/callback \
  --access-token-ttl 86400 --max-lifetime-seconds 172800
PROVIDER=$(client_credentials_provider bench)

# CPU time (user + system) of process $1 so far, in clock ticks.
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# wrk's output and the server's CPU ticks → "req/s p50_ms p99_ms errors µs_per_request"
summarise() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      return v
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    / requests in / { requests = $1 }
    /Non-2xx or 3xx responses:/ { errors += $NF }
    /Socket errors:/ { gsub(",", ""); errors += $4 + $6 + $8 + $10 }
    END { printf "%.0f %.2f %.2f %d %.1f\n", rps, p50, p99, errors, (requests > 0 ? cpu * 1e6 / hz / requests : 0) }
  ' cpu="$2" hz="$(getconf CLK_TCK)" "$1"
}

load() { # NAME SERVER_PID URL CONNECTIONS [HEADER]
  local out="$TMP/$1.wrk" pid=$2 before
  shift 2
  before=$(ticks "$pid")
  if [ -n "${3:-}" ]; then
    wrk -t"$THREADS" -c"$2" -d"${SECONDS_EACH}s" --latency -H "$3" "$1" > "$out"
  else
    wrk -t"$THREADS" -c"$2" -d"${SECONDS_EACH}s" --latency "$1" > "$out"
  fi
  summarise "$out" "$(( $(ticks "$pid") - before ))"
}

echo "bench: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), wrk -t$THREADS -d${SECONDS_EACH}s, $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >&2
for db in ${DATABASES//,/ }; do
  data="$TMP/$db"
  mkdir -m 700 -p "$data"
  case "$db" in
    sqlite) url="sqlite://$data/quiver.db" ;;
    postgres)
      schema="quiver_bench_$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      psql -q "$PG" -c "CREATE SCHEMA $schema" >/dev/null \
        || { echo "bench: PostgreSQL is not reachable at $PG (scripts/postgres.sh starts it)" >&2; exit 1; }
      SCHEMAS+=("$schema")
      url="$PG?options=-c%20search_path%3D$schema"
      ;;
    *) echo "bench: unknown database $db" >&2; exit 2 ;;
  esac
  port=$(free_port)
  bare_port=$(free_port)
  export QUIVER_DATA_DIR="$data" QUIVER_DATABASE_URL="$url" \
    QUIVER_MASTER_KEY="$(head -c32 /dev/urandom | base64)" \
    QUIVER_ALLOW_INSECURE_LOOPBACK=true QUIVER_LISTEN="127.0.0.1:$port"
  echo "bench admin password" | "$QUIVER" user create --email bench@example.com --admin >/dev/null 2>&1
  key=$("$QUIVER" api-key create --name bench --email bench@example.com 2>/dev/null | sed -n 's/^key (shown once): //p')
  [ -n "$key" ] || { echo "bench: no API key" >&2; exit 1; }
  if [ -n "${BENCH_QUIVER_LOG:-}" ]; then export QUIVER_LOG="$BENCH_QUIVER_LOG"; fi
  timeout "$LIMIT" "$QUIVER" serve 2> "$data/quiver.log" &
  PIDS+=($!)
  quiver_pid=$!
  base="http://127.0.0.1:$port"
  wait_for "$base/healthz" 60
  serve_pid=$(pgrep -P "$quiver_pid" -x quiver)
  auth="Authorization: Bearer $key"
  provider=$(curl -fsS -H "$auth" -H 'content-type: application/json' -d "$PROVIDER" "$base/api/v1/providers" | jq -r .id)
  token=$(curl -fsS -H "$auth" -H 'content-type: application/json' \
    -d "{\"name\":\"access-bench\",\"provider_id\":\"$provider\",\"flow\":\"client_credentials\"}" \
    "$base/api/v1/tokens" | jq -r 'select(.status == "active") | .id')
  [ -n "$token" ] || { echo "bench: the token is not active" >&2; exit 1; }
  path="/api/v1/tokens/$token/access-token"
  curl -fsS -H "$auth" "$base$path" > "$data/body.json"
  timeout "$LIMIT" "$BARE" "127.0.0.1:$bare_port" "$data/body.json" "$LIMIT" &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$bare_port$path" 30
  bare_pid=$(pgrep -P "${PIDS[-1]}" -x bare_access_tok)
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$serve_pid/status" 2>/dev/null || echo '?')
  echo "bench: $db: body $(wc -c < "$data/body.json") B, Quiver RSS before the runs ${rss} MiB" >&2
  for c in $CONNECTIONS; do
    read -r b_rps b_p50 b_p99 b_err b_cpu < <(load "bare-$db-$c" "$bare_pid" "http://127.0.0.1:$bare_port$path" "$c")
    read -r q_rps q_p50 q_p99 q_err q_cpu < <(load "quiver-$db-$c" "$serve_pid" "$base$path" "$c" "$auth")
    ratio=$(awk -v q="$q_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", (b > 0 ? q / b : 0) }')
    echo "BENCH access.$db.c$c: bare $b_rps req/s p50 $b_p50 ms p99 $b_p99 ms ${b_cpu} µs CPU/req ($b_err errors) | quiver $q_rps req/s p50 $q_p50 ms p99 $q_p99 ms ${q_cpu} µs CPU/req ($q_err errors) | ratio $ratio"
  done
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$serve_pid/status" 2>/dev/null || echo '?')
  echo "bench: $db: Quiver RSS after the runs ${rss} MiB" >&2
  grep -E ' ERROR ' "$data/quiver.log" | head -5 >&2 || true
  kill "${PIDS[-1]}" "$quiver_pid" 2>/dev/null || true
  wait "$quiver_pid" "${PIDS[-1]}" 2>/dev/null || true
done
