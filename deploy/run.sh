#!/usr/bin/env bash
# N keymint instances behind nginx (Debian's) on one Postgres, on this machine:
#
#   deploy/run.sh [N]          start (default 3 instances); prints the address and returns
#   deploy/run.sh stop         stop everything this script started
#   deploy/run.sh restart I    start instance I (0-based) again, with the same settings
#   deploy/run.sh db-stop      stop the private Postgres cluster (for fault injection)
#   deploy/run.sh db-start     start it again
#   deploy/run.sh cli ARGS...  run `keymint ARGS...` with the deployment's settings
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
# Traversable (the postgres user reaches its cluster below), not listable; the KEK file is 0600.
mkdir -p deploy/.state && chmod 711 deploy/.state
STATE=$(realpath deploy/.state)
BIN=${KEYMINT_BIN:-target/release/keymint}
PORT=${PORT:-8080}
FIRST_PORT=${FIRST_PORT:-18081}
PGPORT=$((FIRST_PORT + 900))

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run a Postgres tool as the postgres user when we are root (initdb refuses root).
pg() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -n "$bin" ] || die "no Postgres server binaries: apt install postgresql (or set KEYMINT_DATABASE_URL)"
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/$1" "${@:2}"; else "$bin/$1" "${@:2}"; fi
}

db_start() {
  pg pg_ctl -D "$STATE/pg/data" -w -s -l "$STATE/pg/log" \
    -o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $STATE/pg -c max_connections=200" start
}

db_stop() {
  if [ -d "$STATE/pg/data" ]; then pg pg_ctl -D "$STATE/pg/data" -m fast -w -s stop; fi
}

# The settings every instance and the CLI share (exported for what runs next).
settings() {
  if [ ! -s "$STATE/kek" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$STATE/kek")
  fi
  KEYMINT_KEK=$(cat "$STATE/kek")
  if [ -z "${KEYMINT_DATABASE_URL:-}" ] && [ -s "$STATE/database_url" ]; then
    KEYMINT_DATABASE_URL=$(cat "$STATE/database_url")
  fi
  KEYMINT_ISSUER=${KEYMINT_ISSUER:-http://127.0.0.1:$PORT}
  KEYMINT_TRUSTED_PROXIES=${KEYMINT_TRUSTED_PROXIES:-127.0.0.1}
  KEYMINT_LOG_FORMAT=${KEYMINT_LOG_FORMAT:-json}
  export KEYMINT_KEK KEYMINT_DATABASE_URL KEYMINT_ISSUER KEYMINT_TRUSTED_PROXIES KEYMINT_LOG_FORMAT
}

# start_instance I: instance I on FIRST_PORT + I, in the background, its pid in the state dir.
start_instance() {
  local i=$1
  KEYMINT_BIND=127.0.0.1:$((FIRST_PORT + i)) KEYMINT_KEYS_DIR="$STATE/keys-$i" \
    "$BIN" serve >>"$STATE/keymint-$i.out" 2>>"$STATE/keymint-$i.log" &
  echo $! >"$STATE/keymint-$i.pid"
}

stop_all() {
  local f
  for f in "$STATE"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  db_stop 2>/dev/null || true
  log "stopped"
}

case "${1:-}" in
  stop) stop_all; exit 0 ;;
  db-stop) db_stop; exit 0 ;;
  db-start) db_start; exit 0 ;;
  restart) settings; start_instance "${2:?instance number}"; exit 0 ;;
  cli) settings; shift; KEYMINT_LOG_FORMAT=text RUST_LOG=${RUST_LOG:-warn} exec "$BIN" "$@" ;;
esac
N=${1:-3}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "usage: deploy/run.sh [N] | stop | restart I | db-stop | db-start | cli ARGS..."
[ -x "$BIN" ] || die "no keymint binary at $BIN: cargo build --release --bin keymint"
command -v nginx >/dev/null 2>&1 || die "nginx is missing: apt install nginx-light (or nginx)"
stop_all 2>/dev/null

if [ -z "${KEYMINT_DATABASE_URL:-}" ]; then
  if [ ! -d "$STATE/pg/data" ]; then
    mkdir -p "$STATE/pg"
    [ "$(id -u)" = 0 ] && chown postgres: "$STATE/pg"
    pg initdb -D "$STATE/pg/data" -A trust -U postgres -E UTF8 >/dev/null
  fi
  db_start
  echo "postgres://postgres@127.0.0.1:$PGPORT/postgres" >"$STATE/database_url"
  log "Postgres on 127.0.0.1:$PGPORT ($STATE/pg)"
else
  rm -f "$STATE/database_url"
fi
settings

upstreams=""
for i in $(seq 0 $((N - 1))); do
  start_instance "$i"
  upstreams+="    server 127.0.0.1:$((FIRST_PORT + i)) max_fails=1 fail_timeout=2s;"$'\n'
  # The first instance creates the keys; the others find them.
  if [ "$i" = 0 ]; then
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$FIRST_PORT/readyz" >/dev/null && break; sleep 0.1; done
  fi
done

cat >"$STATE/nginx.conf" <<CONF
worker_processes auto;
pid $STATE/nginx.pid;
error_log $STATE/nginx.log warn;
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
nginx -c "$STATE/nginx.conf" -p "$STATE" -g 'daemon off;' &
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
