#!/usr/bin/env bash
# Issue 7: HTTP load benchmark of a release keymint on SQLite, with nginx serving the same JWKS
# bytes as the ceiling and `openssl speed` as the RSA limit of this machine.
#
#   benches/load.sh [path/to/keymint]        (or KEYMINT_BIN=...; default target/release/keymint)
#
# Knobs (environment): DURATION (s, default 10), WARMUP (s, 2), CONNS (64), BIG_CONNS (256),
# BIG_DURATION (s, 5), PROBE_CONNS / PROBE_DELAY_MS (the JWKS latency probe run while logins
# load the CPU: 8 connections each waiting 1 ms between requests, a bounded rate, not a flood),
# THREADS (wrk threads, 2), IDLE_WAIT (s to wait for other processes to quiet down first, 0),
# NICE (e.g. -10: run this script and all it starts at that priority, on a shared machine),
# KEEP_TMP=1 keeps the temp dir, STRICT=1 exits 1 on a missed target.
# All traffic goes to 127.0.0.1; every wrk run is bounded by its duration (and `timeout`).
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
LUA="$here/wrk/keymint.lua"
BENCH_NAME=load
# shellcheck source=benches/lib.sh
. "$here/lib.sh"

# --- tools: Debian packages only (no prebuilt downloads) ---------------------------------------
need_tools wrk curl jq openssl awk
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || need_tools nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# Temp dir and cleanup: every process we start is killed by PID on any exit.
bench_start keymint-load

# --- the machine's RSA limit, measured first while the machine is idle -------------------------
cores=$(nproc)
busy_before=$(idle_check)
log "machine busy before the run: $busy_before% (of $((cores * 100))%), load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "nproc=$cores; running openssl speed -seconds 3 rsa2048"
openssl speed -seconds 3 rsa2048 >"$tmp/openssl.txt" 2>/dev/null
read -r sign_s verify_s < <(awk '/^rsa 2048/ { s = $(NF-1); v = $NF } END { print s, v }' "$tmp/openssl.txt")
[ -n "$sign_s" ] && [ -n "$verify_s" ] || die "cannot parse openssl speed output: $(tail -3 "$tmp/openssl.txt")"
log "openssl rsa2048: sign/s=$sign_s verify/s=$verify_s (one core)"

# --- keymint on SQLite -------------------------------------------------------------------------
port=$(free_port) || die "no free port"
url="http://127.0.0.1:$port"
export KEYMINT_BIND="127.0.0.1:$port" KEYMINT_ISSUER="$url" \
  KEYMINT_DATABASE_URL="sqlite://$tmp/k.db" KEYMINT_KEYS_DIR="$tmp/keys" \
  KEYMINT_BOOTSTRAP_ADMIN="$ADMIN" RUST_LOG=${RUST_LOG:-warn}
# Scheduled jobs (RSA key generation, cleanup) must not fire inside a measurement window.
export KEYMINT_ROTATION_CRON="0 0 4 1 1 *" KEYMINT_CLEANUP_CRON="0 0 4 1 1 *"
start_keymint() {
  log "starting $BIN serve on $url (SQLite in $tmp)"
  "$BIN" serve >>"$tmp/keymint.log" 2>&1 &
  kpid=$!
  pids+=("$kpid")
  for _ in $(seq 600); do # up to 60 s
    alive "$kpid" || die "keymint exited: $(tail -5 "$tmp/keymint.log")"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] && break
    sleep 0.1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] || die "keymint not ready after 60 s"
  rss_idle=$(rss_kib "$kpid" VmRSS)
  log "keymint ready (pid $kpid, RSS $(mib "$rss_idle") MiB)"
}
start_keymint

user=${ADMIN%%:*}
pass=${ADMIN#*:}
login_body=$(jq -cn --arg u "$user" --arg p "$pass" '{username: $u, password: $p}')
login() { curl -sf -m 30 -H 'Content-Type: application/json' -d "$login_body" "$url/auth/login"; }
access=$(login | jq -r .access_token) || die "login failed"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $access" "$url/auth/me")" = 200 ] \
  || die "/auth/me rejects a fresh token"

# N refresh tokens, each from its own login (its own family), four logins at a time.
refresh_tokens() {
  local n=$1 out=$2 d="$tmp/logins.$RANDOM"
  mkdir -p "$d"
  seq "$n" | xargs -P 4 -I{} curl -sf -m 60 -o "$d/{}" -H 'Content-Type: application/json' \
    -d "$login_body" "$url/auth/login" || true
  cat "$d"/* 2>/dev/null | jq -r .refresh_token >"$out"
  rm -rf "$d"
  [ "$(grep -c . "$out")" -eq "$n" ] || die "wanted $n refresh tokens, got $(grep -c . "$out")"
}
spare=$((4 * THREADS)) # see the note on request() in wrk/keymint.lua
log "logging in $((2 * (CONNS + BIG_CONNS + 2 * spare))) times for refresh-token chains"
refresh_tokens "$((CONNS + spare))" "$tmp/rt.warm"
refresh_tokens "$((CONNS + spare))" "$tmp/rt.main"
refresh_tokens "$((BIG_CONNS + spare))" "$tmp/rt.bigwarm"
refresh_tokens "$((BIG_CONNS + spare))" "$tmp/rt.big"

client=$(curl -sf -H "Authorization: Bearer $access" -H 'Content-Type: application/json' \
  -d '{"name":"bench","grant_types":["client_credentials"],"scopes":["a"]}' "$url/admin/clients") \
  || die "cannot create an OAuth client"
basic=$(printf '%s:%s' "$(jq -r .client_id <<<"$client")" "$(jq -r .client_secret <<<"$client")" | base64 -w0)
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $basic" \
  -d grant_type=client_credentials "$url/oauth/token")" = 200 ] || die "/oauth/token rejects the client"

# Restart on the same database (tokens, client and keys stay valid): the setup logins above
# leave argon2's memory behind in the allocator, and the RSS figures below are about serving.
kill "$kpid"
for _ in $(seq 100); do alive "$kpid" || break; sleep 0.1; done
kill -9 "$kpid" 2>/dev/null || true
wait "$kpid" 2>/dev/null || true
start_keymint
rss_setup=$rss_idle

# --- nginx on loopback serving the same JWKS bytes ---------------------------------------------
nport=$(free_port) || die "no free port"
mkdir -p "$tmp/www/.well-known" "$tmp/nginx-tmp"
curl -sf -o "$tmp/www/.well-known/jwks.json" "$url/.well-known/jwks.json"
chmod -R a+rX "$tmp/www" && chmod a+x "$tmp"
{
  [ "$(id -u)" = 0 ] && echo "user root;"
  cat <<EOF
worker_processes auto;
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
EOF
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
phase() { # phase NAME CONNS SECONDS URL [wrk args...]: warm up, measure, record
  local name=$1 c=$2 secs=$3
  shift 3
  [ "$WARMUP" -gt 0 ] && run "$name.warm" "$c" "$WARMUP" "$@"
  run "$name" "$c" "$secs" "$@"
  record "$name"
}
record() {
  local name=$1 k
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
jwks="$url/.well-known/jwks.json"
me_hdr="Authorization: Bearer $access"
form="application/x-www-form-urlencoded"

log "phase: $CONNS connections, ${WARMUP}s warm-up + ${DURATION}s each"
KM_MODE=get phase jwks "$CONNS" "$DURATION" "$jwks"
KM_MODE=get phase nginx "$CONNS" "$DURATION" "http://127.0.0.1:$nport/.well-known/jwks.json"
KM_MODE=get phase me "$CONNS" "$DURATION" "$url/auth/me" -H "$me_hdr"
KM_MODE=refresh KM_TOKENS="$tmp/rt.warm" run refresh.warm "$CONNS" "$WARMUP" "$url/auth/refresh"
KM_MODE=refresh KM_TOKENS="$tmp/rt.main" run refresh "$CONNS" "$DURATION" "$url/auth/refresh"
record refresh
KM_MODE=post KM_BODY=grant_type=client_credentials KM_CONTENT_TYPE=$form \
  phase oauth "$CONNS" "$DURATION" "$url/oauth/token" -H "Authorization: Basic $basic"

log "phase: $BIG_CONNS connections, ${BIG_DURATION}s each (for peak RSS)"
KM_MODE=get phase jwks256 "$BIG_CONNS" "$BIG_DURATION" "$jwks"
KM_MODE=get phase me256 "$BIG_CONNS" "$BIG_DURATION" "$url/auth/me" -H "$me_hdr"
KM_MODE=refresh KM_TOKENS="$tmp/rt.bigwarm" run refresh256.warm "$BIG_CONNS" "$WARMUP" "$url/auth/refresh"
KM_MODE=refresh KM_TOKENS="$tmp/rt.big" run refresh256 "$BIG_CONNS" "$BIG_DURATION" "$url/auth/refresh"
record refresh256
KM_MODE=post KM_BODY=grant_type=client_credentials KM_CONTENT_TYPE=$form \
  phase oauth256 "$BIG_CONNS" "$BIG_DURATION" "$url/oauth/token" -H "Authorization: Basic $basic"
hwm256=$(rss_kib "$kpid" VmHWM)
log "VmHWM after the $BIG_CONNS-connection phases: $(mib "$hwm256") MiB"

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
record jwks_login
record login_bg
# The same probe with the CPU otherwise idle, to show what the login load adds.
KM_MODE=get KM_DELAY_MS=$PROBE_DELAY_MS run jwks_probe_idle "$PROBE_CONNS" "$DURATION" "$jwks"
record jwks_probe_idle

hwm_end=$(rss_kib "$kpid" VmHWM)
rss_end=$(rss_kib "$kpid" VmRSS)
alive "$kpid" || die "keymint died during the run"

# --- report ------------------------------------------------------------------------------------
# keymint CPU time per request (µs): robust to other processes taking CPU away from it.
verdict() { # verdict VALUE OP LIMIT -> PASS/FAIL
  if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { exit !((op == ">=") ? v >= l : v <= l) }'; then echo PASS
  else echo FAIL; fi
}
ref_refresh=$(awk -v c="$cores" -v s="$sign_s" 'BEGIN { printf "%.0f", c * s / 2 }')
ref_me=$(awk -v c="$cores" -v v="$verify_s" 'BEGIN { printf "%.0f", c * v }')
r_jwks=$(ratio "${R[jwks.rps]}" "${R[nginx.rps]}")
r_refresh=$(ratio "${R[refresh.rps]}" "$ref_refresh")
r_me=$(ratio "${R[me.rps]}" "$ref_me")
r_p99=$(ratio "${R[jwks_login.p99_ms]}" 5)
r_rss=$(ratio "$hwm256" 65536)
v_jwks=$(verdict "$r_jwks" ">=" 0.80)
v_refresh=$(verdict "$r_refresh" ">=" 0.40)
v_me=$(verdict "$r_me" ">=" 0.50)
v_p99=$(verdict "$r_p99" "<=" 1)
v_rss=$(verdict "$r_rss" "<=" 1)
missed=$(printf '%s\n' "$v_jwks" "$v_refresh" "$v_me" "$v_p99" "$v_rss" | grep -c FAIL || true)

echo
echo "## keymint load benchmark (issue 7)"
echo
echo "binary: $BIN"
echo "machine: nproc=$cores; openssl speed rsa2048 (one core): sign/s=$sign_s verify/s=$verify_s" \
  "($(awk -v s="$sign_s" -v v="$verify_s" 'BEGIN { printf "%.0f µs per signature, %.1f µs per verification", 1e6 / s, 1e6 / v }'));" \
  "busy before the run $busy_before% of $((cores * 100))% (other processes); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $THREADS threads, ${WARMUP}s warm-up, ${DURATION}s per phase at $CONNS connections," \
  "${BIG_DURATION}s at $BIG_CONNS; wrk shares the same $cores cores as the server"
echo "keymint RSS: idle after a restart $(mib "$rss_setup") MiB; VmHWM after the $BIG_CONNS-connection phases" \
  "$(mib "$hwm256") MiB; VmHWM at the end $(mib "$hwm_end") MiB (VmRSS $(mib "$rss_end") MiB)"
echo
echo "### every phase"
echo
echo "| phase | conns | req/s | p50 | p99 | max | requests | non-2xx | socket errors c/r/w/t | VmRSS after | CPU % machine / keymint / wrk / other | keymint CPU µs/req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in jwks nginx me refresh oauth jwks256 me256 refresh256 oauth256 login login_bg jwks_login jwks_probe_idle; do
  case $n in *256) c=$BIG_CONNS ;; jwks_login | jwks_probe_idle) c=$PROBE_CONNS ;; *) c=$CONNS ;; esac
  echo "| $n | $c | $(f "${R[$n.rps]}") | $(ms "${R[$n.p50_ms]}") | $(ms "${R[$n.p99_ms]}") | $(ms "${R[$n.max_ms]}") |" \
    "${R[$n.requests]} | ${R[$n.non2xx]} | ${R[$n.connect]}/${R[$n.read]}/${R[$n.write]}/${R[$n.timeout]} | $(mib "${R[$n.rss]}") MiB | ${R[$n.machine_pct]} / ${R[$n.keymint_pct]} / ${R[$n.wrk_pct]} / ${R[$n.other_pct]} | $(us_req "${R[$n.keymint_pct]}" "${R[$n.rps]}") |"
done
for n in refresh refresh256; do
  echo
  echo "$n: chained=${R[$n.chained]} rejected=${R[$n.rejected]} starved=${R[$n.starved]}" \
    "$(grep -m1 -o 'last_rejection=.*' "$tmp/$n.txt" || true)"
done
echo
echo "### targets"
echo
echo "| what | req/s | p50 | p99 | target | ratio |"
echo "|---|---|---|---|---|---|"
echo "| (a) GET /.well-known/jwks.json, $CONNS conns | $(f "${R[jwks.rps]}") | $(ms "${R[jwks.p50_ms]}") | $(ms "${R[jwks.p99_ms]}") | ≥ 80% of nginx's $(f "${R[nginx.rps]}") req/s | $r_jwks of nginx $v_jwks |"
echo "| (b) nginx, same JWKS bytes, $CONNS conns (ceiling) | $(f "${R[nginx.rps]}") | $(ms "${R[nginx.p50_ms]}") | $(ms "${R[nginx.p99_ms]}") | - | - |"
echo "| (c) GET /auth/me, $CONNS conns | $(f "${R[me.rps]}") | $(ms "${R[me.p50_ms]}") | $(ms "${R[me.p99_ms]}") | ≥ $(f "$(awk -v r="$ref_me" 'BEGIN { print r / 2 }')") req/s (50% of $cores × $verify_s verify/s) | $r_me of $ref_me $v_me |"
echo "| (d) POST /auth/refresh (chained), $CONNS conns | $(f "${R[refresh.rps]}") | $(ms "${R[refresh.p50_ms]}") | $(ms "${R[refresh.p99_ms]}") | ≥ $(f "$(awk -v r="$ref_refresh" 'BEGIN { print r * 0.4 }')") req/s (40% of $cores × $sign_s sign/s ÷ 2) | $r_refresh of $ref_refresh $v_refresh |"
echo "| (e) POST /oauth/token client_credentials, $CONNS conns | $(f "${R[oauth.rps]}") | $(ms "${R[oauth.p50_ms]}") | $(ms "${R[oauth.p99_ms]}") | - | - |"
echo "| (f) POST /auth/login (argon2), $CONNS conns | $(f "${R[login.rps]}") | $(ms "${R[login.p50_ms]}") | $(ms "${R[login.p99_ms]}") | - | - |"
echo "| (g) JWKS ($PROBE_CONNS conns, ${PROBE_DELAY_MS} ms between requests) while logins ($CONNS conns) saturate the CPU | $(f "${R[jwks_login.rps]}") | $(ms "${R[jwks_login.p50_ms]}") | $(ms "${R[jwks_login.p99_ms]}") | p99 < 5 ms | $r_p99 of 5 ms $v_p99 |"
echo "| peak RSS (VmHWM) after $BIG_CONNS-conn phases: $(mib "$hwm256") MiB; at the end: $(mib "$hwm_end") MiB | - | - | - | < 64 MiB at $BIG_CONNS conns | $r_rss of 64 MiB $v_rss |"
echo
log "done in $(($(date +%s) - started_at)) s; $missed target(s) missed"
warns=$(grep -ciE ' (WARN|ERROR) ' "$tmp/keymint.log" || true)
if [ "$warns" -gt 0 ]; then
  log "keymint logged $warns WARN/ERROR lines; first ones:"
  grep -iE ' (WARN|ERROR) ' "$tmp/keymint.log" | head -5 >&2
fi
[ "${STRICT:-0}" = 1 ] && [ "$missed" -gt 0 ] && exit 1
exit 0
