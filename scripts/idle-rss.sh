#!/usr/bin/env bash
# The resident memory of an idle `quiver serve`: starts the given binary
# (default target/release/quiver) on a fresh SQLite data folder on loopback,
# waits until it answers and then IDLE_SECONDS (7) more, and prints its RSS
# split into anonymous memory and pages of files (the binary's own, SQLite's
# mapping), and its thread count. The server stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/quiver}
PORT=${IDLE_PORT:-3917}
data=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT

QUIVER_DATA_DIR=$data QUIVER_LISTEN=127.0.0.1:$PORT QUIVER_LOG=warn \
  QUIVER_MASTER_KEY=$(head -c 32 /dev/urandom | base64) \
  "$BIN" serve >"$data/log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" || { cat "$data/log" >&2; exit 1; }
sleep "${IDLE_SECONDS:-7}"

kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/smaps_rollup"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
binary=$(readlink -f "$BIN")
# Resident pages of the binary's own mappings.
own=$(awk -v bin="$binary" '
  /^[0-9a-f]+-[0-9a-f]+ / { mine = ($6 == bin) }
  mine && $1 == "Rss:" { sum += $2 }
  END { print sum + 0 }' "/proc/$pid/smaps")
echo "rss $(mib "$(kib Rss)") MiB: anonymous $(mib "$(kib Anonymous)") MiB," \
  "file pages $(mib $(( $(kib Rss) - $(kib Anonymous) ))) MiB (of which the binary $(mib "$own") MiB);" \
  "threads $(awk '/^Threads:/ { print $2 }' "/proc/$pid/status"); binary $(stat -c %s "$binary") B"
# How much of the code layout in server/quiver.order this binary follows:
# names it no longer has (changed code, dependencies, toolchain) are spread
# over the code again; regenerate the file with scripts/order-code.sh.
if [ -f server/quiver.order ]; then
  nm --defined-only "$binary" | awk '{ print $NF }' | sort -u > "$data/names"
  sort -u server/quiver.order > "$data/order"
  echo "code order: $(comm -12 "$data/names" "$data/order" | wc -l) of $(wc -l < "$data/order") functions of server/quiver.order in the binary"
fi
