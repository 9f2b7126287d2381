#!/usr/bin/env bash
# A bounded soak under faults: three instances behind nginx on one Postgres (deploy/run.sh),
# mixed traffic (benches/chaos_driver.py: logins, refresh chains, /auth/me, logouts) for
# DURATION seconds (default 300), rotation every ROTATE_EVERY seconds, while the script kills
# one instance (SIGKILL) every KILL_EVERY seconds and restarts it RESTART_AFTER seconds later,
# and stops the database for DB_DOWN seconds every DB_EVERY seconds. Then it checks:
#   1. no acknowledged revocation lost: every token whose logout answered 204 is refused (401)
#      by every instance;
#   2. one rotation per tick: keys made per purpose = 2 + rotation ticks claimed;
#   3. no refresh family with two live tokens;
#   4. every 5xx inside an injected fault window (a kill until RESTART_AFTER + 2 s after it, an
#      outage until 5 s after the database is back).
# Prints each invariant with its count, PASS or FAIL; exits non-zero on any FAIL.
#
#   cargo build --release --bin keymint && bash benches/chaos.sh      # DURATION=60 for a quick run
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-300}
KILL_EVERY=${KILL_EVERY:-20}
RESTART_AFTER=${RESTART_AFTER:-3}
DB_EVERY=${DB_EVERY:-60}
DB_DOWN=${DB_DOWN:-5}
ROTATE_EVERY=${ROTATE_EVERY:-10}
WORKERS=${WORKERS:-6}
PORT=${PORT:-8080}
FIRST_PORT=${FIRST_PORT:-18081}
BIN=${KEYMINT_BIN:-target/release/keymint}
STATE=deploy/.state
N=3
base="http://127.0.0.1:$PORT"
log() { printf '[chaos %4ss] %s\n' "$(($(date +%s) - start))" "$*" >&2; }
start=$(date +%s)
trap 'bash deploy/run.sh stop >/dev/null 2>&1 || true' EXIT

rm -rf "$STATE/pg" "$STATE"/keys-*   # a fresh database and keys for each soak
export KEYMINT_ROTATION_CRON="*/$ROTATE_EVERY * * * * *"
export KEYMINT_BIN=$BIN PORT FIRST_PORT
bash deploy/run.sh "$N"
DB=$(cat "$STATE/database_url")
cli() { bash deploy/run.sh cli "$@"; }

users=()
for i in $(seq 1 "$WORKERS"); do
  echo 'chaos-password-1' | cli users create "chaos$i" --password-stdin >/dev/null
  users+=("chaos$i")
done
results=$(mktemp)
windows=$(mktemp)
deadline=$(($(date +%s) + DURATION))
python3 benches/chaos_driver.py "$base" "$(IFS=,; echo "${users[*]}")" "$deadline" "$results" &
driver=$!

kills=0 outages=0 next_kill=$((start + KILL_EVERY)) next_db=$((start + DB_EVERY))
while [ "$(date +%s)" -lt "$deadline" ]; do
  now=$(date +%s)
  if [ "$now" -ge "$next_kill" ]; then
    i=$((RANDOM % N))
    kill -9 "$(cat "$STATE/keymint-$i.pid")" 2>/dev/null || true
    t0=$(date +%s.%N); kills=$((kills + 1))
    log "killed instance $i"
    sleep "$RESTART_AFTER"
    bash deploy/run.sh restart "$i"
    echo "kill $t0 $(echo "$(date +%s.%N) + 2" | bc)" >>"$windows"
    next_kill=$((now + KILL_EVERY))
  elif [ "$now" -ge "$next_db" ]; then
    t0=$(date +%s.%N); outages=$((outages + 1))
    bash deploy/run.sh db-stop
    log "database stopped"
    sleep "$DB_DOWN"
    bash deploy/run.sh db-start
    log "database started"
    echo "outage $t0 $(echo "$(date +%s.%N) + 5" | bc)" >>"$windows"
    next_db=$((now + DB_EVERY))
  else
    sleep 0.5
  fi
done
wait "$driver"
sleep 2   # let every instance sync once more

total=$(wc -l <"$results")
fail=0
report() { # report NAME COUNT (0 = PASS) DETAIL
  local verdict=PASS
  [ "$2" = 0 ] || { verdict=FAIL; fail=1; }
  printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$verdict"
}
echo "## chaos soak: ${DURATION}s, $N instances, $WORKERS workers, $kills kills, $outages database outages, $total requests"
echo
echo "| invariant | violations | checked | verdict |"
echo "|---|---|---|---|"
# 1. acknowledged revocations, asked of every instance directly (one keep-alive connection each)
read -r acked lost < <(python3 - "$results" "$FIRST_PORT" "$N" <<'PY'
import http.client, json, sys
tokens = [r["token"] for r in map(json.loads, open(sys.argv[1])) if r.get("token")]
lost = 0
for i in range(int(sys.argv[3])):
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]) + i, timeout=10)
    for t in tokens:
        c.request("GET", "/auth/me", headers={"Authorization": "Bearer " + t})
        r = c.getresponse()
        r.read()
        lost += r.status != 401
print(len(tokens), lost)
PY
)
report "acknowledged revocation accepted by an instance" "$lost" "$acked revocations x $N instances"
# 2. one rotation per tick
ticks=$(psql "$DB" -qAtc "SELECT count(*) FROM job_runs WHERE job = 'rotate'")
extra=0 lost_ticks=0
for p in access refresh; do
  made=$(psql "$DB" -qAtc "SELECT count(*) FROM signing_keys WHERE purpose = '$p'")
  rotations=$((made - 2))
  [ "$rotations" -le "$ticks" ] || extra=$((extra + rotations - ticks))
  [ "$rotations" -ge "$ticks" ] || lost_ticks=$((ticks - rotations))
done
report "rotations beyond one per tick" "$extra" "$ticks ticks claimed; $lost_ticks lost with a killed instance"
# 3. refresh families with two live tokens
twins=$(psql "$DB" -qAtc "SELECT count(*) FROM (SELECT family_id FROM refresh_tokens WHERE used_at IS NULL AND revoked_at IS NULL GROUP BY family_id HAVING count(*) > 1) t")
families=$(psql "$DB" -qAtc "SELECT count(*) FROM refresh_families")
report "refresh families with two live tokens" "$twins" "$families families"
# 4. 5xx outside the fault windows
outside=$(python3 - "$results" "$windows" <<'PY'
import json, sys
wins = [tuple(map(float, l.split()[1:])) for l in open(sys.argv[2]) if l.strip()]
bad = [r for r in map(json.loads, open(sys.argv[1]))
       if (r["status"] >= 500 or r["status"] == 0)
       and not any(a <= r["t"] <= b for a, b in wins)]
print(len(bad))
PY
)
fivexx=$(python3 -c 'import json,sys; print(sum(1 for r in map(json.loads, open(sys.argv[1])) if r["status"] >= 500 or r["status"] == 0))' "$results")
report "5xx (or no answer) outside a fault window" "$outside" "$fivexx 5xx in all"
exit "$fail"
