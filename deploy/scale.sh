#!/usr/bin/env bash
# How throughput grows with instances on this machine, and what each operation costs the
# database. For N in 1..MAX_N (default 3): deploy/run.sh N, then wrk through nginx on the JWKS,
# /auth/me and the client_credentials grant (DURATION s each, CONNS connections). Then, on one
# instance, 100 sequential logins, refreshes and logouts with Postgres's own counters
# (pg_stat_database) read before and after: transactions and rows written per operation.
#
#   cargo build --release --bin keymint && bash deploy/scale.sh
#
# Prints two Markdown tables (docs/scaling.md quotes them). wrk, nginx and every instance share
# this machine's cores: the numbers show where one machine binds, not a cluster's capacity.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_N=${MAX_N:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
PORT=${PORT:-8080}
BIN=${KEYMINT_BIN:-target/release/keymint}
STATE=deploy/.state
command -v wrk >/dev/null 2>&1 || { echo "wrk is missing: apt install wrk" >&2; exit 1; }
trap 'bash deploy/run.sh stop >/dev/null 2>&1 || true' EXIT
base="http://127.0.0.1:$PORT"

export KEYMINT_BIN=$BIN PORT
cli() { bash deploy/run.sh cli "$@"; }
rps() { awk '/^Requests\/sec:/ { printf "%d", $2 }'; }
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat; }

echo "| instances | JWKS req/s | /auth/me req/s | client_credentials tokens/s | machine CPU busy |"
echo "|---|---|---|---|---|"
for n in $(seq 1 "$MAX_N"); do
  bash deploy/run.sh "$n" 2>/dev/null
  out=$(cli clients create --name "scale-$n-$RANDOM" --grant client_credentials)
  id=$(echo "$out" | sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p' | head -n1)
  secret=$(echo "$out" | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' | head -n1)
  [ -n "$id" ] && [ -n "$secret" ] || { echo "could not create a client: $out" >&2; exit 1; }
  user="scale-$n-$RANDOM"
  echo 'scale-password-1' | cli users create "$user" --password-stdin >/dev/null
  token=$(curl -sf "$base/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"scale-password-1\"}" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  read -r b0 i0 < <(cpu_ticks)
  jwks=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" "$base/.well-known/jwks.json" | rps)
  me=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -H "Authorization: Bearer $token" "$base/auth/me" | rps)
  cc=$(KM_MODE=post KM_BODY='grant_type=client_credentials' \
    KM_CONTENT_TYPE='application/x-www-form-urlencoded' \
    wrk -t2 -c"$CONNS" -d"${DURATION}s" -s benches/wrk/keymint.lua \
    -H "Authorization: Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)" "$base/oauth/token" | rps)
  read -r b1 i1 < <(cpu_ticks)
  busy=$(( 100 * (b1 - b0) / ((b1 - b0) + (i1 - i0)) ))
  echo "| $n | $jwks | $me | $cc | ${busy} % |"
done

# Database cost per operation, from Postgres's counters, on one instance whose sync loop is
# slowed down so that its polling does not count. A backend publishes its counters at most
# every second while busy and 10 s after it goes idle (PGSTAT_IDLE_INTERVAL), hence the wait.
KEYMINT_SYNC_INTERVAL=60s bash deploy/run.sh 1 2>/dev/null
psql_q() { psql "$(cat "$STATE/database_url")" -qAtc "$1"; }
stats() {
  sleep 11
  psql_q "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = 'postgres'"
}
ops=100
user="cost-$RANDOM"
echo 'cost-password-1' | cli users create "$user" --password-stdin >/dev/null
login() { curl -sf "$base/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"cost-password-1\"}"; }
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
echo
echo "| operation ($ops sequential, through nginx) | commits per op | rows written per op |"
echo "|---|---|---|"
IFS='|' read -r c0 w0 < <(stats)
for _ in $(seq $ops); do login >/dev/null; done
IFS='|' read -r c1 w1 < <(stats)
echo "| login | $(echo "scale=1; ($c1 - $c0) / $ops" | bc) | $(echo "scale=1; ($w1 - $w0) / $ops" | bc) |"
refresh=$(login | field refresh_token)
IFS='|' read -r c0 w0 < <(stats)
for _ in $(seq $ops); do
  refresh=$(curl -sf "$base/auth/refresh" -H 'content-type: application/json' \
    -d "{\"refresh_token\":\"$refresh\"}" | field refresh_token)
done
IFS='|' read -r c1 w1 < <(stats)
echo "| refresh | $(echo "scale=1; ($c1 - $c0) / $ops" | bc) | $(echo "scale=1; ($w1 - $w0) / $ops" | bc) |"
tokens=()
for _ in $(seq $ops); do tokens+=("$(login | field access_token)"); done
IFS='|' read -r c0 w0 < <(stats)
for t in "${tokens[@]}"; do curl -sf -o /dev/null -X POST "$base/auth/logout" -H "Authorization: Bearer $t"; done
IFS='|' read -r c1 w1 < <(stats)
echo "| logout (revocation) | $(echo "scale=1; ($c1 - $c0) / $ops" | bc) | $(echo "scale=1; ($w1 - $w0) / $ops" | bc) |"
out=$(cli clients create --name "cost-$RANDOM" --grant client_credentials)
id=$(echo "$out" | sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p' | head -n1)
secret=$(echo "$out" | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' | head -n1)
IFS='|' read -r c0 w0 < <(stats)
for _ in $(seq $ops); do
  curl -sf -o /dev/null -u "$id:$secret" -d grant_type=client_credentials "$base/oauth/token"
done
IFS='|' read -r c1 w1 < <(stats)
echo "| client_credentials | $(echo "scale=1; ($c1 - $c0) / $ops" | bc) | $(echo "scale=1; ($w1 - $w0) / $ops" | bc) |"
