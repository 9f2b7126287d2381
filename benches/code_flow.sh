#!/usr/bin/env bash
# The OpenID Connect code flow through the hosted login page, end to end, against the login's
# argon2 limit, on a release keymint with SQLite. One run measures, in this order:
#
#   1. argon2id alone (keymint's own verification, in the driver, before keymint starts):
#      the median time on one thread, giving the machine's limit nproc ÷ that time, and the
#      rate with nproc threads hashing at once;
#   2. one login and one whole flow at a time (1 connection, at rest), with each step's time;
#   3. POST /auth/login (JSON) with CONNS connections: the login rate of this run;
#   4. the code flow with CONNS virtual browsers, each one authorize → GET /login → POST
#      /login → authorize again → POST /oauth/token, a new cookie jar per flow (a new browser);
#   5. POST /auth/login again, so that a change in the machine's load during the run shows
#      (the flow is compared with the mean of 3 and 5).
#
#   benches/code_flow.sh [path/to/keymint]   (or KEYMINT_BIN=...; default target/release/keymint)
#
# The driver is the `code_flow` bench target (benches/code_flow.rs). Unless DRIVER names a
# built one, this runs `cargo build --release --bench code_flow` in this repository (with
# `--bin keymint` too when the binary is the default one): a no-op when both are fresh.
#
# Knobs (environment): CONNS (64, browsers and login connections), DURATION (s, 10),
# WARMUP (s, 2), USERS (64: logins go round-robin over them, so a username is seldom in
# flight twice, far under the per-username allowance), SEQ (20: sequential logins and flows
# at rest), ARGON2_ITERATIONS (20), TARGET (0.9: flows ÷ logins wanted), BRACKET=0 skips the
# second login phase, KEYMINT_LOGIN_IP_FAILURES (1000000, see below), IDLE_WAIT (s to wait
# for other processes to quiet down first, 0), NICE, KEEP_TMP=1, STRICT=1 exits 1 on a
# missed target. Any failed request (every status, Location, cookie and form field is
# checked) fails the run. All traffic goes to 127.0.0.1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
default_bin=$repo/target/release/keymint
BIN=${1:-${KEYMINT_BIN:-$default_bin}}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
USERS=${USERS:-64}
SEQ=${SEQ:-20}
ARGON2_ITERATIONS=${ARGON2_ITERATIONS:-20}
TARGET=${TARGET:-0.9}
BRACKET=${BRACKET:-1}
ADMIN=${KEYMINT_BOOTSTRAP_ADMIN:-admin:admin-password-1}
REDIRECT_URI=http://127.0.0.1:9/cb
BENCH_NAME=code_flow
# shellcheck source=benches/lib.sh
. "$here/lib.sh"

need_tools curl jq awk

# --- the driver (and keymint, when it is the default binary), built in this repository -------
if [ -z "${DRIVER:-}" ]; then
  DRIVER=$(build_benches code_flow | awk '$1 == "code_flow" { print $2 }' | tail -1)
fi
[ -x "${DRIVER:-}" ] || die "no code_flow driver (DRIVER=${DRIVER:-})"
bench_start keymint-code-flow
cores=$(nproc)

# --- 1. argon2id alone, while the machine is idle ----------------------------------------------
busy_before=$(idle_check)
log "machine busy before the run: $busy_before% (of $((cores * 100))%), load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure_argon2

# --- keymint on SQLite -------------------------------------------------------------------------
keymint_env_sqlite
start_keymint "$url" "$tmp/keymint.log"

# --- setup: users and a confidential client with the code flow --------------------------------
admin_body=$(jq -cn --arg u "${ADMIN%%:*}" --arg p "${ADMIN#*:}" '{username: $u, password: $p}')
access=$(curl -sf -m 30 -H 'Content-Type: application/json' -d "$admin_body" "$url/auth/login" | jq -r .access_token) \
  || die "admin login failed"
auth="Authorization: Bearer $access"
client=$(curl -sf -m 30 -H "$auth" -H 'Content-Type: application/json' \
  -d "{\"name\":\"bench\",\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"scopes\":[],\"redirect_uris\":[\"$REDIRECT_URI\"]}" \
  "$url/admin/clients") || die "cannot create the client"
client_id=$(jq -r .client_id <<<"$client")
client_secret=$(jq -r .client_secret <<<"$client")
log "creating $USERS users"
for i in $(seq "$USERS"); do echo "flow$i:flow-bench-password-$i"; done >"$tmp/users.txt"
while IFS=: read -r u p; do
  jq -cn --arg u "$u" --arg p "$p" '{username: $u, password: $p, roles: []}' >"$tmp/user-$u.json"
done <"$tmp/users.txt"
# shellcheck disable=SC2016 # expanded by the inner sh, from its arguments
cut -d: -f1 "$tmp/users.txt" | xargs -P "$cores" -I{} sh -c \
  'c=$(curl -s -m 60 -o /dev/null -w "%{http_code}" -H "$1" -H "Content-Type: application/json" -d @"$2/user-$3.json" "$4/admin/users"); [ "$c" = 201 ] || { echo "user $3: HTTP $c" >&2; exit 1; }' \
  _ "$auth" "$tmp" {} "$url" || die "cannot create the users"

export KM_URL=$url KM_CLIENT_ID=$client_id KM_CLIENT_SECRET=$client_secret \
  KM_REDIRECT_URI=$REDIRECT_URI KM_USERS=$tmp/users.txt

# --- measurement -------------------------------------------------------------------------------
declare -A R # R[name.key]
failed=0
# drive NAME MODE [KM_* assignments...]: one driver run, its CPU and RSS.
drive() {
  local name=$1 mode=$2 c0 rc=0 sh=$BASHPID
  shift 2
  c0=$(cpu_snap "$sh")
  env "$@" timeout $((WARMUP + DURATION + 120)) "$DRIVER" "$mode" >"$tmp/$name.txt" 2>>"$tmp/driver.err" || rc=$?
  echo "KMCPU $(cpu_pct "$c0" "$(cpu_snap "$sh")")" >>"$tmp/$name.txt"
  grep -q '^KMRESULT' "$tmp/$name.txt" || die "driver $name failed (rc $rc): $(tail -5 "$tmp/driver.err")"
  local k
  for k in rate ops p50_ms p90_ms p99_ms max_ms mean_ms errors window_s machine_pct keymint_pct wrk_pct other_pct; do
    R[$name.$k]=$(kv "$tmp/$name.txt" "$k")
  done
  R[$name.rss]=$(rss_kib "$kpid" VmRSS)
  R[$name.hwm]=$(rss_kib "$kpid" VmHWM)
  # keymint's CPU time per operation (ms): robust to the driver and others taking CPU.
  R[$name.cpu_ms]=$(awk -v p="${R[$name.keymint_pct]}" -v w="${R[$name.window_s]}" -v n="${R[$name.ops]}" \
    'BEGIN { if (n > 0) printf "%.1f", p / 100 * w * 1000 / n; else print "-" }')
  if [ "$rc" -ne 0 ] || [ "${R[$name.errors]}" != 0 ]; then
    failed=$((failed + 1))
    log "ERROR: $name: ${R[$name.errors]} failed operations (driver rc $rc); see below"
    sed 's/^/    /' "$tmp/driver.err" | tail -12 >&2
    : >"$tmp/driver.err"
  fi
  log "$(printf '%-12s %7s ops/s  p50 %7s ms  p99 %7s ms  ops %6s  errors %s  RSS %s MiB  CPU%% machine/keymint/driver/other %s/%s/%s/%s  keymint %s ms CPU/op' \
    "$name" "${R[$name.rate]}" "${R[$name.p50_ms]}" "${R[$name.p99_ms]}" "${R[$name.ops]}" "${R[$name.errors]}" \
    "$(mib "${R[$name.rss]}")" "${R[$name.machine_pct]}" "${R[$name.keymint_pct]}" "${R[$name.wrk_pct]}" "${R[$name.other_pct]}" "${R[$name.cpu_ms]}")"
}

log "phase: $SEQ logins, then $SEQ flows, one at a time (at rest)"
drive login_seq login KM_CONCURRENCY=1 KM_COUNT="$SEQ"
drive flow_seq flow KM_CONCURRENCY=1 KM_COUNT="$SEQ"
log "phase: POST /auth/login, $CONNS connections, ${WARMUP}s warm-up + ${DURATION}s"
drive login login KM_CONCURRENCY="$CONNS" KM_WARMUP="$WARMUP" KM_DURATION="$DURATION"
log "phase: code flow, $CONNS browsers, ${WARMUP}s warm-up + ${DURATION}s"
drive flow flow KM_CONCURRENCY="$CONNS" KM_WARMUP="$WARMUP" KM_DURATION="$DURATION"
logins=${R[login.rate]}
if [ "$BRACKET" = 1 ]; then
  log "phase: POST /auth/login again (is the machine as it was?)"
  drive login2 login KM_CONCURRENCY="$CONNS" KM_WARMUP="$WARMUP" KM_DURATION="$DURATION"
  logins=$(awk -v a="${R[login.rate]}" -v b="${R[login2.rate]}" 'BEGIN { printf "%.1f", (a + b) / 2 }')
fi
hwm_end=$(rss_kib "$kpid" VmHWM)
alive "$kpid" || die "keymint died during the run"

# --- report ------------------------------------------------------------------------------------
flows=${R[flow.rate]}
r_login=$(ratio "$flows" "$logins")
r_argon=$(ratio "$flows" "$argon2_limit")
r_logins_argon=$(ratio "$logins" "$argon2_limit")
if awk -v r="$r_login" -v t="$TARGET" 'BEGIN { exit !(r >= t) }'; then verdict=✓; else verdict=✗; fi
steps() { # steps NAME: the KMSTEP lines as "step p50/p99 ms" table cells
  awk '/^KMSTEP/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "| %s | %s | %s | %s | %s |\n", v["step"], v["p50_ms"], v["p99_ms"], v["mean_ms"], v["errors"] }' "$tmp/$1.txt"
}
fmt_ms() { awk -v x="$1" 'BEGIN { if (x < 10) printf "%.1f", x; else printf "%.0f", x }'; }

echo
echo "## keymint code flow benchmark"
echo
echo "binary: $BIN; driver: $DRIVER"
echo "machine: nproc=$cores; busy before the run $busy_before% of $((cores * 100))% (other processes);" \
  "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "driver: $CONNS workers, ${WARMUP}s warm-up + ${DURATION}s per phase, sharing the same $cores cores as keymint;" \
  "$USERS users round-robin; each flow a new cookie jar on the worker's kept-alive connection"
echo "argon2id verify (keymint's, m=19 MiB t=2 p=1), idle machine: median ${hash_ms} ms on one thread" \
  "(min $(kv "$tmp/argon2.txt" min_ms), max $(kv "$tmp/argon2.txt" max_ms)); $cores threads at once: $argon2_par/s"
echo
echo "### phases"
echo
echo "| phase | conns | ops/s | p50 | p90 | p99 | max | ops | errors | VmRSS after | CPU % machine / keymint / driver / other | keymint CPU per op |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in login_seq flow_seq login flow login2; do
  [ -n "${R[$n.rate]:-}" ] || continue
  case $n in *_seq) c=1 ;; *) c=$CONNS ;; esac
  echo "| $n | $c | ${R[$n.rate]} | $(ms "${R[$n.p50_ms]}") | $(ms "${R[$n.p90_ms]}") | $(ms "${R[$n.p99_ms]}") | $(ms "${R[$n.max_ms]}") |" \
    "${R[$n.ops]} | ${R[$n.errors]} | $(mib "${R[$n.rss]}") MiB | ${R[$n.machine_pct]} / ${R[$n.keymint_pct]} / ${R[$n.wrk_pct]} / ${R[$n.other_pct]} | ${R[$n.cpu_ms]} ms |"
done
echo
echo "### the flow's steps (ms), one at a time and with $CONNS browsers"
echo
echo "| step (1 browser) | p50 | p99 | mean | errors |"
echo "|---|---|---|---|---|"
steps flow_seq
echo
echo "| step ($CONNS browsers) | p50 | p99 | mean | errors |"
echo "|---|---|---|---|---|"
steps flow
echo
echo "### summary"
echo
echo "| what | result | target | ratio |"
echo "|---|---|---|---|"
echo "| full code flow (authorize → login → code → token), $CONNS browsers | $(f "$flows") flows/s, p50 $(ms "${R[flow.p50_ms]}"), p99 $(ms "${R[flow.p99_ms]}"), ${R[flow.errors]} errors | ≥ $TARGET × the login rate in the same run | $r_login $verdict |"
if [ "$BRACKET" = 1 ]; then
  echo "| \`POST /auth/login\`, $CONNS conns, before / after the flow | $(f "${R[login.rate]}") / $(f "${R[login2.rate]}") logins/s (mean $(f "$logins")), p50 $(ms "${R[login.p50_ms]}") / $(ms "${R[login2.p50_ms]}") | – | – |"
else
  echo "| \`POST /auth/login\`, $CONNS conns | $(f "$logins") logins/s, p50 $(ms "${R[login.p50_ms]}") | – | – |"
fi
echo "| argon2 limit: $cores cores ÷ ${hash_ms} ms per verification | $(f "$argon2_limit")/s ($cores threads at once: $(f "$argon2_par")/s) | – | flows $r_argon, logins $r_logins_argon |"
echo "| one login / one flow at a time (1 connection) | $(ms "${R[login_seq.mean_ms]}") / $(ms "${R[flow_seq.mean_ms]}") mean | – | – |"
echo "| keymint CPU per login / per flow, under load | ${R[login.cpu_ms]} / ${R[flow.cpu_ms]} ms | – | – |"
echo "| keymint peak RSS (VmHWM) | $(mib "$hwm_end") MiB (idle at start $(mib "$rss_idle") MiB) | – | – |"
echo
echo "README row:"
echo "| full code flow (authorize → login → code → token), $CONNS browsers | $(f "$flows") flows/s, p50 $(fmt_ms "${R[flow.p50_ms]}") ms, p99 $(fmt_ms "${R[flow.p99_ms]}") ms, ${R[flow.errors]} errors | ≥ $TARGET× the login rate in the same run ($(f "$logins") logins/s; argon2 limit $cores ÷ $hash_ms ms = $(f "$argon2_limit")/s) | $r_login $verdict ($r_argon of argon2) |"
echo
log "done in $(($(date +%s) - started_at)) s"
warns=$(grep -ciE ' (WARN|ERROR) ' "$tmp/keymint.log" || true)
if [ "$warns" -gt 0 ]; then
  log "keymint logged $warns WARN/ERROR lines; first ones:"
  grep -iE ' (WARN|ERROR) ' "$tmp/keymint.log" | head -5 >&2
fi
[ "$failed" -gt 0 ] && die "$failed phase(s) had failed requests"
[ "${STRICT:-0}" = 1 ] && [ "$verdict" = ✗ ] && exit 1
exit 0
