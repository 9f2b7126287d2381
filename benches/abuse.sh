#!/usr/bin/env bash
# Issue 10: abuse benchmark. Runs a keymint (SQLite, default settings) and measures, side by
# side, a legitimate user's logins at rest and while attacks run at full speed for a fixed time:
# success rate and p99 latency, database growth per million throttled attempts, peak RSS.
#
#   benches/abuse.sh [path/to/keymint]     (or KEYMINT_BIN=...; default target/release/keymint)
#
# benches/abuse_probe.py measures the reviewer's reproductions one by one (before/after a change).
# Knobs: SECONDS_PER_PHASE (20), GUESSERS (32 concurrent wrong-password loops), SOCKETS (4000
# silent sockets held open), KEEP_TMP=1. All traffic goes to 127.0.0.0/8 and stops by itself.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BIN=${1:-${KEYMINT_BIN:-$repo/target/release/keymint}}
PHASE=${SECONDS_PER_PHASE:-20}
GUESSERS=${GUESSERS:-32}
SOCKETS=${SOCKETS:-4000}
BENCH_NAME=abuse
# shellcheck source=benches/lib.sh
. "$here/lib.sh"
need_tools curl python3
bench_start keymint-abuse

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export KEYMINT_BIND=127.0.0.1:$port KEYMINT_DATABASE_URL="sqlite://$tmp/keymint.db" \
  KEYMINT_KEYS_DIR="$tmp/keys" RUST_LOG=warn
PASSWORD=correct-horse-battery
printf '%s\n' "$PASSWORD" | "$BIN" users create alice --password-stdin >/dev/null
"$BIN" serve >"$tmp/server.out" 2>"$tmp/server.log" &
pid=$!
pids+=("$pid")
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$tmp/server.log" >&2; exit 1; }

# "DB WAL" bytes: the database file and its write-ahead log, reported apart.
db_bytes() { echo "$(stat -c %s "$tmp/keymint.db" 2>/dev/null || echo 0) $(stat -c %s "$tmp/keymint.db-wal" 2>/dev/null || echo 0)"; }
rss() { awk "/^$1:/ {print \$2}" "/proc/$pid/status"; }

drive() { python3 "$here/abuse_driver.py" --port "$port" --seconds "$PHASE" --password "$PASSWORD" "$@"; }
echo "== at rest: one legitimate login every 250 ms for ${PHASE}s" >&2
rest=$(drive)
db0=$(db_bytes)
echo "== under attack: $GUESSERS guessers at full speed + $SOCKETS silent sockets for ${PHASE}s" >&2
attack=$(drive --attack --guessers "$GUESSERS" --sockets "$SOCKETS")
db1=$(db_bytes)
peak=$(rss VmHWM)
now=$(rss VmRSS)

python3 - "$rest" "$attack" "$db0" "$db1" "$peak" "$now" <<'PY'
import json, sys
rest, attack = json.loads(sys.argv[1]), json.loads(sys.argv[2])
(d0, w0), (d1, w1) = (map(int, sys.argv[3].split()), map(int, sys.argv[4].split()))
peak, now = int(sys.argv[5]), int(sys.argv[6])
db0, db1 = d0 + w0, d1 + w1
throttled = attack["attack_throttled"]
growth = db1 - db0
per_million = growth * 1e6 / throttled if throttled else float("nan")
print(f"{'':34}{'at rest':>12}{'under attack':>14}")
print(f"{'legitimate login success rate':34}{rest['legit_success_rate']:>12.1%}{attack['legit_success_rate']:>14.1%}")
print(f"{'legitimate login p50 (ms)':34}{rest['legit_p50_ms']:>12}{attack['legit_p50_ms']:>14}")
print(f"{'legitimate login p99 (ms)':34}{rest['legit_p99_ms']:>12}{attack['legit_p99_ms']:>14}")
print(f"attack: {sum(attack['attack_responses'].values())} guesses answered "
      f"({throttled} throttled, {attack['attack_hashed']} hashed), "
      f"up to {attack['silent_sockets_max_open_client_side']} silent sockets open client-side")
print(f"database file: {d0} -> {d1} bytes, WAL: {w0} -> {w1} bytes; together +{growth}, "
      f"{per_million / 1024:.1f} KiB per million throttled attempts")
print(f"RSS: peak {peak / 1024:.1f} MiB, now {now / 1024:.1f} MiB")
PY
