#!/usr/bin/env bash
# N keymint instances behind nginx (Debian's) on one Postgres, on this machine:
#
#   deploy/run.sh [N]        start (default 3 instances); prints the address and waits
#   deploy/run.sh stop       stop everything this script started
#
# Postgres: KEYMINT_DATABASE_URL when set, otherwise a private cluster of its own (initdb and
# pg_ctl from Debian's postgresql package, in deploy/.state/pg, on a free port). Every instance
# gets the same database, issuer and key-encryption key (generated once into deploy/.state/kek),
# so any instance verifies any token and opens any key. nginx balances round-robin, passes the
# client address in X-Forwarded-For (the instances trust 127.0.0.1), retries another instance
# only for requests that never reached one, and serves on $PORT (default 8080).
#
# Environment: KEYMINT_BIN (default target/release/keymint), PORT, FIRST_PORT (instances listen
# on FIRST_PORT, FIRST_PORT+1, ...; default 18081), and any KEYMINT_* setting, passed through.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=deploy/.state
BIN=${KEYMINT_BIN:-target/release/keymint}
PORT=${PORT:-8080}
FIRST_PORT=${FIRST_PORT:-18081}

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run a Postgres tool as the postgres user when we are root (initdb refuses root).
pg() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -n "$bin" ] || die "no Postgres server binaries: apt install postgresql (or set KEYMINT_DATABASE_URL)"
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/$1" "${@:2}"; else "$bin/$1" "${@:2}"; fi
}

stop_all() {
  local f
  for f in "$STATE"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  if [ -d "$STATE/pg/data" ]; then pg pg_ctl -D "$STATE/pg/data" -m fast -w -s stop 2>/dev/null || true; fi
  log "stopped"
}

if [ "${1:-}" = stop ]; then stop_all; exit 0; fi
N=${1:-3}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "usage: deploy/run.sh [N] | stop"
[ -x "$BIN" ] || die "no keymint binary at $BIN: cargo build --release --bin keymint"
command -v nginx >/dev/null 2>&1 || die "nginx is missing: apt install nginx-light (or nginx)"
# Traversable (the postgres user reaches its cluster below), not listable; the KEK file is 0600.
mkdir -p "$STATE" && chmod 711 "$STATE"
STATE=$(realpath "$STATE")
stop_all 2>/dev/null

# One key-encryption key for every instance.
if [ ! -s "$STATE/kek" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 > "$STATE/kek")
fi
export KEYMINT_KEK
KEYMINT_KEK=$(cat "$STATE/kek")

if [ -z "${KEYMINT_DATABASE_URL:-}" ]; then
  PGPORT=$((FIRST_PORT + 900))
  if [ ! -d "$STATE/pg/data" ]; then
    mkdir -p "$STATE/pg"
    [ "$(id -u)" = 0 ] && chown postgres: "$STATE/pg"
    pg initdb -D "$STATE/pg/data" -A trust -U postgres -E UTF8 >/dev/null
  fi
  pg pg_ctl -D "$STATE/pg/data" -w -s -l "$STATE/pg/log" \
    -o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $(realpath "$STATE/pg") -c max_connections=200" start
  export KEYMINT_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
  echo "$KEYMINT_DATABASE_URL" >"$STATE/database_url"
  log "Postgres on 127.0.0.1:$PGPORT ($STATE/pg)"
fi

export KEYMINT_ISSUER=${KEYMINT_ISSUER:-http://127.0.0.1:$PORT}
export KEYMINT_TRUSTED_PROXIES=${KEYMINT_TRUSTED_PROXIES:-127.0.0.1}
export KEYMINT_LOG_FORMAT=${KEYMINT_LOG_FORMAT:-json}
upstreams=""
for i in $(seq 0 $((N - 1))); do
  p=$((FIRST_PORT + i))
  KEYMINT_BIND=127.0.0.1:$p KEYMINT_KEYS_DIR="$STATE/keys-$i" \
    "$BIN" serve >"$STATE/keymint-$i.out" 2>"$STATE/keymint-$i.log" &
  echo $! >"$STATE/keymint-$i.pid"
  upstreams+="    server 127.0.0.1:$p max_fails=1 fail_timeout=2s;"$'\n'
  # The first instance creates the keys; the others find them.
  if [ "$i" = 0 ]; then
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
  fi
done

cat >"$STATE/nginx.conf" <<CONF
worker_processes auto;
pid $(realpath "$STATE")/nginx.pid;
error_log $(realpath "$STATE")/nginx.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream keymint {
$upstreams    keepalive 64;
  }
  server {
    listen 127.0.0.1:$PORT;
    location / {
      proxy_pass http://keymint;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      # Only what never reached an instance is tried on another (POSTs are not repeated).
      proxy_next_upstream error timeout;
      proxy_connect_timeout 1s;
    }
  }
}
CONF
nginx -c "$(realpath "$STATE/nginx.conf")" -p "$(realpath "$STATE")" -g 'daemon off;' &
echo $! >"$STATE/nginx-master.pid"

for _ in $(seq 100); do
  ready=0
  for i in $(seq 0 $((N - 1))); do
    curl -sf "http://127.0.0.1:$((FIRST_PORT + i))/readyz" >/dev/null && ready=$((ready + 1))
  done
  [ "$ready" = "$N" ] && curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.2
done
[ "$ready" = "$N" ] || die "only $ready of $N instances became ready (see $STATE/keymint-*.log)"
log "$N instances behind nginx on http://127.0.0.1:$PORT (issuer $KEYMINT_ISSUER); 'deploy/run.sh stop' stops them"
