#!/usr/bin/env bash
# Issue 15: the hot paths against the machine's limits, measured side by side in one run on a
# release keymint: nginx serving the same JWKS bytes, `openssl speed rsa2048` (the RSA sign
# limit), argon2id alone (the login limit, keymint's own hash in the code_flow driver), keymint
# on SQLite and on Postgres, and the node oidc-provider as a peer. Prints every target of issue
# 15 with its ratio and PASS/FAIL, and with README=1 rewrites README's table from this run.
#
#   benches/load.sh [path/to/keymint]        (or KEYMINT_BIN=...; default target/release/keymint)
#
# The argon2 timing and the denylist load come from the `code_flow` and `denylist` bench
# targets: unless DRIVER and DENYLIST_BENCH name built ones, this runs `cargo build --release
# --bench code_flow --bench denylist` here (with `--bin keymint` when the binary is the
# default one): a no-op when they are fresh.
#
# Knobs (environment): DURATION (s, default 10), WARMUP (s, 2), CONNS (64), BIG_CONNS (256),
# BIG_DURATION (s, 5), PROBE_CONNS / PROBE_DELAY_MS (the JWKS latency probe run while logins
# load the CPU: 8 connections each waiting 1 ms between requests, a bounded rate, not a flood),
# THREADS (wrk threads, 2), PG_URL (a Postgres server keymint may create a scratch database on;
# default $KEYMINT_TEST_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/test; PG=0 skips),
# PEER=0 skips oidc-provider, DENYLIST=0 skips the 1M-revocation load, ARGON2_ITERATIONS (20),
# IDLE_WAIT (s to wait for other processes to quiet down first, 0), NICE, KEEP_TMP=1,
# README=1 (rewrite README.md's table between its load-table markers), STRICT=1 (exit 1 on a
# missed target). All traffic goes to 127.0.0.1; every wrk run is bounded by its duration.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BIN=${1:-${KEYMINT_BIN:-$repo/target/release/keymint}}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
BIG_CONNS=${BIG_CONNS:-256}
BIG_DURATION=${BIG_DURATION:-5}
PROBE_CONNS=${PROBE_CONNS:-8}
PROBE_DELAY_MS=${PROBE_DELAY_MS:-1}
THREADS=${THREADS:-2}
ADMIN=${KEYMINT_BOOTSTRAP_ADMIN:-admin:admin-password-1}
ARGON2_ITERATIONS=${ARGON2_ITERATIONS:-20}
PG_URL=${PG_URL:-${KEYMINT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
LUA="$here/wrk/keymint.lua"
BENCH_NAME=load
# shellcheck source=benches/lib.sh
. "$here/lib.sh"
# shellcheck source=benches/peer.sh
. "$here/peer.sh"

# --- tools: Debian packages only (no prebuilt downloads) ---------------------------------------
need_tools wrk curl jq openssl awk
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || need_tools nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- the drivers (argon2 timing, denylist load), built in this repository -----------------------
if [ -z "${DRIVER:-}" ] || { [ "${DENYLIST:-1}" = 1 ] && [ -z "${DENYLIST_BENCH:-}" ]; }; then
  built=$(build_benches code_flow denylist)
  DRIVER=${DRIVER:-$(awk '$1 == "code_flow" { print $2 }' <<<"$built" | tail -1)}
  DENYLIST_BENCH=${DENYLIST_BENCH:-$(awk '$1 == "denylist" { print $2 }' <<<"$built" | tail -1)}
fi
[ -x "${DRIVER:-}" ] || die "no code_flow driver (DRIVER=${DRIVER:-})"
# Temp dir and cleanup: every process we start is killed by PID on any exit.
bench_start keymint-load

# --- the machine's limits, measured first while the machine is idle ----------------------------
cores=$(nproc)
busy_before=$(idle_check)
log "machine busy before the run: $busy_before% (of $((cores * 100))%), load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "nproc=$cores; running openssl speed -seconds 3 rsa2048"
openssl speed -seconds 3 rsa2048 >"$tmp/openssl.txt" 2>/dev/null
read -r sign_s verify_s < <(awk '/^rsa 2048/ { s = $(NF-1); v = $NF } END { print s, v }' "$tmp/openssl.txt")
[ -n "$sign_s" ] && [ -n "$verify_s" ] || die "cannot parse openssl speed output: $(tail -3 "$tmp/openssl.txt")"
log "openssl rsa2048: sign/s=$sign_s verify/s=$verify_s (one core)"
measure_argon2

# --- keymint on SQLite -------------------------------------------------------------------------
keymint_env_sqlite
start_keymint "$url" "$tmp/keymint.log"

user=${ADMIN%%:*}
pass=${ADMIN#*:}
login_body=$(jq -cn --arg u "$user" --arg p "$pass" '{username: $u, password: $p}')
# Everything a run needs from one instance at $u: an access token, refresh-token files, an
# OAuth client (Basic credentials) and one of its tokens to introspect.
setup_instance() { # setup_instance URL PREFIX NAMES...: files $tmp/PREFIX.NAME
  local u=$1 pfx=$2 access client
  shift 2
  access=$(curl -sf -m 30 -H 'Content-Type: application/json' -d "$login_body" "$u/auth/login" | jq -r .access_token) \
    || die "login failed at $u"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $access" "$u/auth/me")" = 200 ] \
    || die "/auth/me rejects a fresh token"
  echo "$access" >"$tmp/$pfx.access"
  local spare=$((4 * THREADS)) name n # see the note on request() in wrk/keymint.lua
  for name in "$@"; do
    case $name in big*) n=$((BIG_CONNS + spare)) ;; *) n=$((CONNS + spare)) ;; esac
    refresh_tokens "$u" "$n" "$tmp/$pfx.$name"
  done
  client=$(curl -sf -H "Authorization: Bearer $access" -H 'Content-Type: application/json' \
    -d '{"name":"bench","grant_types":["client_credentials"],"scopes":["a"]}' "$u/admin/clients") \
    || die "cannot create an OAuth client"
  printf '%s:%s' "$(jq -r .client_id <<<"$client")" "$(jq -r .client_secret <<<"$client")" | base64 -w0 >"$tmp/$pfx.basic"
  curl -sf -H "Authorization: Basic $(cat "$tmp/$pfx.basic")" -d grant_type=client_credentials "$u/oauth/token" \
    | jq -r .access_token >"$tmp/$pfx.cctoken" || die "/oauth/token rejects the client"
  [ "$(curl -sf -H "Authorization: Basic $(cat "$tmp/$pfx.basic")" -d "token=$(cat "$tmp/$pfx.cctoken")" \
    "$u/oauth/introspect" | jq -r .active)" = true ] || die "introspection does not know the client's token"
}
# N refresh tokens, each from its own login (its own family), four logins at a time.
refresh_tokens() { # refresh_tokens URL N FILE
  local u=$1 n=$2 out=$3 d="$tmp/logins.$RANDOM"
  mkdir -p "$d"
  seq "$n" | xargs -P 4 -I{} curl -sf -m 60 -o "$d/{}" -H 'Content-Type: application/json' \
    -d "$login_body" "$u/auth/login" || true
  cat "$d"/* 2>/dev/null | jq -r .refresh_token >"$out"
  rm -rf "$d"
  [ "$(grep -c . "$out")" -eq "$n" ] || die "wanted $n refresh tokens, got $(grep -c . "$out")"
}
log "logging in for refresh-token chains (SQLite)"
setup_instance "$url" sq warm main bigwarm big

# Restart on the same database (tokens, client and keys stay valid): the setup logins above
# leave argon2's memory behind, and the RSS figures below are about serving.
stop_keymint
start_keymint "$url" "$tmp/keymint.log"
rss_setup=$rss_idle
access=$(cat "$tmp/sq.access")
basic=$(cat "$tmp/sq.basic")

# --- nginx on loopback serving the same JWKS bytes ---------------------------------------------
nport=$(free_port) || die "no free port"
mkdir -p "$tmp/www/.well-known" "$tmp/nginx-tmp"
curl -sf -o "$tmp/www/.well-known/jwks.json" "$url/.well-known/jwks.json"
chmod -R a+rX "$tmp/www" && chmod a+x "$tmp"
{
  [ "$(id -u)" = 0 ] && echo "user root;"
  cat <<NGINX
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  client_body_temp_path $tmp/nginx-tmp/body;
  proxy_temp_path $tmp/nginx-tmp/proxy;
  fastcgi_temp_path $tmp/nginx-tmp/fastcgi;
  uwsgi_temp_path $tmp/nginx-tmp/uwsgi;
  scgi_temp_path $tmp/nginx-tmp/scgi;
  # hyper never closes a keep-alive connection after N requests; nginx's default is 1000.
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$nport;
    root $tmp/www;
    location = /.well-known/jwks.json {
      types { }
      default_type application/json;
      add_header Cache-Control "public, max-age=300";
    }
  }
}
NGINX
} >"$tmp/nginx.conf"
"$NGINX" -p "$tmp" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
pids+=("$!")
for _ in $(seq 50); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$nport/.well-known/jwks.json")" = 200 ] && break
  sleep 0.1
done
cmp -s <(curl -s "http://127.0.0.1:$nport/.well-known/jwks.json") "$tmp/www/.well-known/jwks.json" \
  || die "nginx does not serve the JWKS: $(cat "$tmp/nginx.out" "$tmp/nginx-error.log" 2>/dev/null | tail -3)"

# --- measurement -------------------------------------------------------------------------------
# run NAME CONNS SECONDS URL [wrk args...]: one wrk run; KM_* env selects the Lua mode.
run() {
  local name=$1 c=$2 secs=$3 target=$4
  shift 4
  local t=$THREADS
  [ "$c" -lt "$t" ] && t=$c
  local c0 sh=$BASHPID # run may itself be in a background subshell
  c0=$(cpu_snap "$sh")
  KM_THREADS=$t timeout $((secs + 60)) wrk -t"$t" -c"$c" -d"${secs}s" --timeout 30s --latency \
    -s "$LUA" "$@" "$target" >"$tmp/$name.txt" 2>&1 || true
  echo "KMCPU $(cpu_pct "$c0" "$(cpu_snap "$sh")")" >>"$tmp/$name.txt"
  grep -q '^KMRESULT' "$tmp/$name.txt" || die "wrk $name failed: $(tail -5 "$tmp/$name.txt")"
}
declare -A R # R[name.key]
declare -A CONNS_OF
phase() { # phase NAME CONNS SECONDS URL [wrk args...]: warm up, measure, record
  local name=$1 c=$2 secs=$3
  shift 3
  [ "$WARMUP" -gt 0 ] && run "$name.warm" "$c" "$WARMUP" "$@"
  run "$name" "$c" "$secs" "$@"
  record "$name" "$c"
}
record() { # record NAME CONNS
  local name=$1 k
  CONNS_OF[$name]=$2
  for k in rps p50_ms p99_ms max_ms requests non2xx connect read write timeout chained rejected starved machine_pct keymint_pct wrk_pct other_pct; do
    R[$name.$k]=$(kv "$tmp/$name.txt" "$k")
  done
  R[$name.rss]=$(rss_kib "$kpid" VmRSS)
  R[$name.hwm]=$(rss_kib "$kpid" VmHWM)
  local rej
  rej=$(grep -m1 -o 'last_rejection=.*' "$tmp/$name.txt" || true)
  log "$(printf '%-16s %8s req/s  p50 %7s ms  p99 %8s ms  non2xx %s  sockerr c/r/w/t %s/%s/%s/%s  RSS %s MiB  CPU%% machine/keymint/wrk/other %s/%s/%s/%s %s' \
    "$name" "${R[$name.rps]}" "${R[$name.p50_ms]}" "${R[$name.p99_ms]}" "${R[$name.non2xx]}" \
    "${R[$name.connect]}" "${R[$name.read]}" "${R[$name.write]}" "${R[$name.timeout]}" \
    "$(mib "${R[$name.rss]}")" "${R[$name.machine_pct]}" "${R[$name.keymint_pct]}" "${R[$name.wrk_pct]}" "${R[$name.other_pct]}" "$rej")"
}
form="application/x-www-form-urlencoded"
# The hot paths of one instance at $1 (files $tmp/$2.*), phase names suffixed with $3.
hot_paths() { # hot_paths URL PREFIX SUFFIX CONNS SECONDS WARM_FILE MAIN_FILE
  local u=$1 p=$2 x=$3 c=$4 secs=$5
  local b
  b=$(cat "$tmp/$p.basic")
  KM_MODE=refresh KM_TOKENS="$tmp/$p.$6" run "refresh$x.warm" "$c" "$WARMUP" "$u/auth/refresh"
  KM_MODE=refresh KM_TOKENS="$tmp/$p.$7" run "refresh$x" "$c" "$secs" "$u/auth/refresh"
  record "refresh$x" "$c"
  KM_MODE=post KM_BODY=grant_type=client_credentials KM_CONTENT_TYPE=$form \
    phase "oauth$x" "$c" "$secs" "$u/oauth/token" -H "Authorization: Basic $b"
}

log "phase: $CONNS connections, ${WARMUP}s warm-up + ${DURATION}s each"
jwks="$url/.well-known/jwks.json"
KM_MODE=get phase jwks "$CONNS" "$DURATION" "$jwks"
KM_MODE=get phase nginx "$CONNS" "$DURATION" "http://127.0.0.1:$nport/.well-known/jwks.json"
KM_MODE=get phase me "$CONNS" "$DURATION" "$url/auth/me" -H "Authorization: Bearer $access"
KM_MODE=post KM_BODY="token=$(cat "$tmp/sq.cctoken")" KM_CONTENT_TYPE=$form \
  phase introspect "$CONNS" "$DURATION" "$url/oauth/introspect" -H "Authorization: Basic $basic"
hot_paths "$url" sq "" "$CONNS" "$DURATION" warm main

log "phase: $BIG_CONNS connections, ${BIG_DURATION}s each (for peak RSS)"
KM_MODE=get phase jwks256 "$BIG_CONNS" "$BIG_DURATION" "$jwks"
KM_MODE=get phase me256 "$BIG_CONNS" "$BIG_DURATION" "$url/auth/me" -H "Authorization: Bearer $access"
hot_paths "$url" sq 256 "$BIG_CONNS" "$BIG_DURATION" bigwarm big
hwm_serving=$(rss_kib "$kpid" VmHWM)
log "VmHWM after every phase but logins: $(mib "$hwm_serving") MiB"

log "phase: logins (argon2), $CONNS connections"
KM_MODE=post KM_BODY="$login_body" phase login "$CONNS" "$DURATION" "$url/auth/login"
log "phase: JWKS ($PROBE_CONNS connections, ${PROBE_DELAY_MS} ms apart) while $CONNS connections of logins saturate the CPU"
# The login load starts first and outlasts the probe on both sides.
KM_MODE=post KM_BODY="$login_body" run login_bg "$CONNS" $((DURATION + WARMUP + 2)) "$url/auth/login" &
bg=$!
pids+=("$bg")
sleep "$((WARMUP > 0 ? WARMUP : 1))"
KM_MODE=get KM_DELAY_MS=$PROBE_DELAY_MS run jwks_login "$PROBE_CONNS" "$DURATION" "$jwks"
wait "$bg" || true
record jwks_login "$PROBE_CONNS"
record login_bg "$CONNS"
KM_MODE=post KM_BODY="$login_body" phase login256 "$BIG_CONNS" "$BIG_DURATION" "$url/auth/login"
hwm_login=$(rss_kib "$kpid" VmHWM)
alive "$kpid" || die "keymint died during the run"
grep -ciE ' (WARN|ERROR) ' "$tmp/keymint.log" >"$tmp/warns.sq" || true
stop_keymint

# --- keymint on Postgres: the two write paths -------------------------------------------------
pg_state="skipped (PG=0)"
if [ "${PG:-1}" = 1 ]; then
  if ! command -v psql >/dev/null 2>&1; then
    pg_state="skipped: no psql"
  elif ! psql -X -q "$PG_URL" -c "CREATE DATABASE km_load_$$" >/dev/null 2>"$tmp/pg.err"; then
    pg_state="skipped: cannot create a database at $PG_URL: $(head -1 "$tmp/pg.err")"
  else
    pg_db=km_load_$$
    bench_cleanup_extra() { psql -X -q "$PG_URL" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1; }
    port=$(free_port) || die "no free port"
    pg_url="http://127.0.0.1:$port"
    export KEYMINT_BIND="127.0.0.1:$port" KEYMINT_ISSUER="$pg_url" KEYMINT_KEYS_DIR="$tmp/pgkeys" \
      KEYMINT_DATABASE_URL="${PG_URL%/*}/$pg_db"
    start_keymint "$pg_url" "$tmp/keymint-pg.log"
    log "logging in for refresh-token chains (Postgres)"
    setup_instance "$pg_url" pg warm main
    pg_backends() { # CPU jiffies of this database's backends
      local p t=0
      for p in $(psql -X -At "$PG_URL" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$pg_db'" 2>/dev/null); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
      done
      echo "$t"
    }
    log "phase: Postgres, $CONNS connections"
    j0=$(pg_backends)
    hot_paths "$pg_url" pg _pg "$CONNS" "$DURATION" warm main
    pg_db_jiffies=$(($(pg_backends) - j0))
    pg_state="measured"
    alive "$kpid" || die "keymint (Postgres) died during the run"
    stop_keymint
  fi
fi
log "Postgres: $pg_state"

# --- the peer: node oidc-provider, same wrk settings ------------------------------------------
peer_state="skipped (PEER=0)"
if [ "${PEER:-1}" = 1 ]; then
  if peer_available; then
    peer_start
    kpid_keymint=$kpid
    kpid=$peer_pid # cpu_snap and record read this process
    KM_MODE=get phase peer_jwks "$CONNS" "$DURATION" "$peer_jwks"
    KM_MODE=post KM_BODY=grant_type=client_credentials KM_CONTENT_TYPE=$form \
      phase peer_oauth "$CONNS" "$DURATION" "$peer_token_url" -H "Authorization: Basic $peer_basic"
    peer_hwm=$(rss_kib "$peer_pid" VmHWM)
    kpid=$kpid_keymint
    peer_state="oidc-provider $(jq -r '.dependencies["oidc-provider"]' "$here/peer/package.json") on node $(node --version)"
  else
    peer_state="skipped: no node/npm"
  fi
fi

# --- 1M live revocations: load time and memory (a fresh process) -------------------------------
deny_state="skipped (DENYLIST=0)"
if [ "${DENYLIST:-1}" = 1 ]; then
  [ -x "${DENYLIST_BENCH:-}" ] || die "no denylist bench (DENYLIST_BENCH=${DENYLIST_BENCH:-})"
  log "denylist: Denylist::load of 1M live SQLite revocations in a fresh process"
  PART=load ROWS=1000000 "$DENYLIST_BENCH" >"$tmp/denylist.txt" 2>&1 || die "denylist bench failed: $(tail -3 "$tmp/denylist.txt")"
  deny_s=$(kv "$tmp/denylist.txt" load_s)
  deny_mib=$(kv "$tmp/denylist.txt" rss_added_mib)
  deny_state="measured"
fi

# --- report ------------------------------------------------------------------------------------
verdict() { # verdict VALUE OP LIMIT -> PASS/FAIL
  if [ -z "$1" ] || [ "$1" = - ]; then echo FAIL; return; fi
  if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { exit !((op == ">=") ? v >= l : v <= l) }'; then echo PASS
  else echo FAIL; fi
}
sign_limit=$(awk -v c="$cores" -v s="$sign_s" 'BEGIN { printf "%.0f", c * s }')
refresh_limit=$(awk -v c="$cores" -v s="$sign_s" 'BEGIN { printf "%.0f", c * s / 2 }')
login_rss_cap=$((64 + 19 * cores))
T=() # rows: what|measured|limit|ratio|target|verdict
target() { # target WHAT MEASURED LIMIT_TEXT "VALUE LIMIT" OP WANT: the verdict uses the exact ratio
  local v r exact
  read -r v r <<<"$4"
  exact=$(awk -v a="$v" -v b="$r" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.6f", a / b }')
  T+=("$1|$2|$3|$(ratio "$v" "$r")|$5 $6|$(verdict "$exact" "$5" "$6")")
}
rps() { echo "$(f "${R[$1.rps]}") req/s, p99 $(ms "${R[$1.p99_ms]}")"; }
target "GET /.well-known/jwks.json, $CONNS conns" "$(rps jwks)" "nginx, same bytes, 1 worker: $(f "${R[nginx.rps]}") req/s" \
  "${R[jwks.rps]} ${R[nginx.rps]}" ">=" 1.0
target "GET /auth/me, $CONNS conns" "$(rps me)" "keymint's JWKS rate: $(f "${R[jwks.rps]}") req/s" \
  "${R[me.rps]} ${R[jwks.rps]}" ">=" 0.75
target "POST /oauth/introspect, $CONNS conns" "$(rps introspect)" "keymint's JWKS rate: $(f "${R[jwks.rps]}") req/s" \
  "${R[introspect.rps]} ${R[jwks.rps]}" ">=" 0.75
target "client_credentials, SQLite, $CONNS conns" "$(rps oauth)" "$cores cores × $sign_s signs/s = $sign_limit/s" \
  "${R[oauth.rps]} $sign_limit" ">=" 0.9
target "/auth/refresh (chained), SQLite, $CONNS conns" "$(rps refresh)" "$cores × $sign_s ÷ 2 = $refresh_limit/s" \
  "${R[refresh.rps]} $refresh_limit" ">=" 0.8
if [ "$pg_state" = measured ]; then
  target "client_credentials, Postgres, $CONNS conns" "$(rps oauth_pg)" "$cores × $sign_s = $sign_limit/s" \
    "${R[oauth_pg.rps]} $sign_limit" ">=" 0.9
  target "/auth/refresh (chained), Postgres, $CONNS conns" "$(rps refresh_pg)" "$cores × $sign_s ÷ 2 = $refresh_limit/s" \
    "${R[refresh_pg.rps]} $refresh_limit" ">=" 0.8
else
  T+=("client_credentials and /auth/refresh, Postgres|$pg_state|-|-|-|FAIL")
fi
target "POST /auth/login (argon2id), $CONNS conns" "$(rps login)" "$cores ÷ $hash_ms ms (argon2id alone) = $(f "$argon2_limit")/s" \
  "${R[login.rps]} $argon2_limit" ">=" 0.9
target "JWKS p99 ($PROBE_CONNS conns, ${PROBE_DELAY_MS} ms apart) while logins saturate the CPU" \
  "p99 $(ms "${R[jwks_login.p99_ms]}") ($(f "${R[jwks_login.rps]}") req/s)" "5 ms" "${R[jwks_login.p99_ms]} 5" "<=" 1
target "peak RSS (VmHWM) over every phase but logins" "$(mib "$hwm_serving") MiB" "64 MiB" \
  "$hwm_serving 65536" "<=" 1
target "peak RSS through the logins, up to $BIG_CONNS conns" "$(mib "$hwm_login") MiB" \
  "64 + 19 × $cores hashing threads = $login_rss_cap MiB" "$hwm_login $((login_rss_cap * 1024))" "<=" 1
if [ "$deny_state" = measured ]; then
  target "1M live revocations: load at start (SQLite)" "$deny_s s" "1 s" "$deny_s 1" "<=" 1
  target "1M live revocations: RSS they add" "$deny_mib MiB" "100 MiB" "$deny_mib 100" "<=" 1
else
  T+=("1M live revocations|$deny_state|-|-|-|FAIL")
fi
missed=$(printf '%s\n' "${T[@]}" | grep -c '|FAIL$' || true)

table() { # the targets as a markdown table
  echo "| target | measured | limit in the same run | ratio | wanted | |"
  echo "|---|---|---|---|---|---|"
  local row
  for row in "${T[@]}"; do echo "| ${row//|/ | } |"; done
  if [ "$peer_state" != "${peer_state#oidc-provider}" ]; then
    echo "| peer: $peer_state, JWKS | $(rps peer_jwks) | keymint: $(f "${R[jwks.rps]}") req/s | keymint $(ratio "${R[jwks.rps]}" "${R[peer_jwks.rps]}")× | - | |"
    echo "| peer: client_credentials (RS256 JWT) | $(rps peer_oauth) | keymint: $(f "${R[oauth.rps]}") req/s | keymint $(ratio "${R[oauth.rps]}" "${R[peer_oauth.rps]}")× | - | |"
    echo "| peer: peak RSS | $(mib "$peer_hwm") MiB | keymint: $(mib "$hwm_serving") MiB serving | - | - | |"
  else
    echo "| peer (oidc-provider) | $peer_state | - | - | - | |"
  fi
}

echo
echo "## keymint load benchmark (issue 15)"
echo
echo "binary: $BIN"
echo "machine: nproc=$cores; openssl speed rsa2048 (one core): sign/s=$sign_s verify/s=$verify_s;" \
  "argon2id median $hash_ms ms; busy before the run $busy_before% of $((cores * 100))% (other processes);" \
  "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $THREADS threads, ${WARMUP}s warm-up, ${DURATION}s per phase at $CONNS connections," \
  "${BIG_DURATION}s at $BIG_CONNS; wrk shares the same $cores cores as the server"
echo "keymint RSS: idle after a restart $(mib "$rss_setup") MiB; Postgres: $pg_state; peer: $peer_state"
echo
echo "### every phase"
echo
echo "| phase | conns | req/s | p50 | p99 | max | requests | non-2xx | socket errors c/r/w/t | VmRSS after | CPU % machine / server / wrk / other | server CPU µs/req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in jwks nginx me introspect refresh oauth jwks256 me256 refresh256 oauth256 login login_bg jwks_login login256 refresh_pg oauth_pg peer_jwks peer_oauth; do
  [ -n "${CONNS_OF[$n]:-}" ] || continue
  echo "| $n | ${CONNS_OF[$n]} | $(f "${R[$n.rps]}") | $(ms "${R[$n.p50_ms]}") | $(ms "${R[$n.p99_ms]}") | $(ms "${R[$n.max_ms]}") |" \
    "${R[$n.requests]} | ${R[$n.non2xx]} | ${R[$n.connect]}/${R[$n.read]}/${R[$n.write]}/${R[$n.timeout]} | $(mib "${R[$n.rss]}") MiB | ${R[$n.machine_pct]} / ${R[$n.keymint_pct]} / ${R[$n.wrk_pct]} / ${R[$n.other_pct]} | $(us_req "${R[$n.keymint_pct]}" "${R[$n.rps]}") |"
done
if [ "$pg_state" = measured ]; then
  echo
  echo "Postgres backends of keymint's database: $(awk -v j="$pg_db_jiffies" -v hz="$(getconf CLK_TCK)" \
    -v n="$(awk -v a="${R[refresh_pg.requests]}" -v b="${R[oauth_pg.requests]}" 'BEGIN { print a + b }')" \
    'BEGIN { if (n > 0) printf "%.0f µs of CPU per request over the two Postgres phases (warm-ups included)", j / hz * 1e6 / n }') (counted as 'other' above)."
fi
for n in refresh refresh256 refresh_pg; do
  [ -n "${CONNS_OF[$n]:-}" ] || continue
  echo
  echo "$n: chained=${R[$n.chained]} rejected=${R[$n.rejected]} starved=${R[$n.starved]}" \
    "$(grep -m1 -o 'last_rejection=.*' "$tmp/$n.txt" || true)"
done
echo
echo "### targets"
echo
table
echo
if [ "${README:-0}" = 1 ]; then
  readme=$repo/README.md
  grep -q '<!-- load-table:begin -->' "$readme" || die "README.md has no <!-- load-table:begin --> marker"
  {
    sed '/<!-- load-table:begin -->/q' "$readme"
    echo
    echo "\`benches/load.sh\`, $(date -u +%Y-%m-%d), nproc=$cores, openssl speed rsa2048 (one core) $sign_s sign/s," \
      "argon2id $hash_ms ms, wrk $THREADS threads on the same cores, ${DURATION} s per phase:"
    echo
    table
    echo
    sed -n '/<!-- load-table:end -->/,$p' "$readme"
  } >"$tmp/README.new"
  cp "$tmp/README.new" "$readme"
  log "README.md's table rewritten"
fi
log "done in $(($(date +%s) - started_at)) s; $missed target(s) missed"
warns=$(( $(cat "$tmp/warns.sq" 2>/dev/null || echo 0) ))
if [ "$warns" -gt 0 ]; then
  log "keymint logged $warns WARN/ERROR lines; first ones:"
  grep -iE ' (WARN|ERROR) ' "$tmp/keymint.log" | head -5 >&2
fi
[ "${STRICT:-0}" = 1 ] && [ "$missed" -gt 0 ] && exit 1
exit 0
