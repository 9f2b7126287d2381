#!/usr/bin/env bash
# PKCS#11 signing backend: client_credentials throughput and sequential latency of a release
# keymint signing with the `local` backend (keys sealed with the KEK) and with the `pkcs11`
# backend (SoftHSM2, in a private token directory made and removed by this script), side by side
# in one run, each on its own fresh SQLite database.
#
#   benches/hsm.sh [path/to/keymint]        (or KEYMINT_BIN=...; default target/release/keymint)
#
# Per backend: start keymint, register one client_credentials client, then
#   - wrk (benches/wrk/keymint.lua, as benches/load.sh): WARMUP s, then DURATION s of
#     POST /oauth/token at CONNS connections -> tokens/s, p50, p99;
#   - SEQ single requests, one after the other on one keep-alive connection (one curl process)
#     -> p50 / p99 / mean ms of one request, i.e. one signature plus the rest of the request.
# Target: pkcs11 tokens/s >= RATIO_TARGET (0.6) x local tokens/s.
#
# Knobs (environment): DURATION (s, default 20), WARMUP (s, 2), CONNS (64, as load.sh), THREADS
# (wrk threads, 2), SEQ (200), RATIO_TARGET (0.6), SOFTHSM_MODULE (/usr/lib/softhsm/libsofthsm2.so),
# IDLE_WAIT (s to wait for other processes to quiet down first, 0), NICE, KEEP_TMP=1 (keeps the
# temp dir, token included), STRICT=1 exits 1 on a missed target. The binary is never built here.
# All traffic goes to 127.0.0.1; every wrk run is bounded by its duration (and `timeout`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BIN=${1:-${KEYMINT_BIN:-$repo/target/release/keymint}}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SEQ=${SEQ:-200}
RATIO_TARGET=${RATIO_TARGET:-0.6}
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
ADMIN=${KEYMINT_BOOTSTRAP_ADMIN:-admin:admin-password-1}
LUA="$here/wrk/keymint.lua"
BENCH_NAME=hsm
# shellcheck source=benches/lib.sh
. "$here/lib.sh"

# --- tools: Debian packages only (no prebuilt downloads) ---------------------------------------
need_tools wrk curl jq awk softhsm2-util:softhsm2
[ -r "$SOFTHSM_MODULE" ] || die "no SoftHSM2 module at $SOFTHSM_MODULE (apt-get install softhsm2)"
bench_start keymint-hsm

cores=$(nproc)
busy_before=$(idle_check)
log "machine busy before the run: $busy_before% (of $((cores * 100))%), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- SoftHSM2 in a private token directory (inside $tmp, removed with it) ----------------------
mkdir -p "$tmp/softhsm/tokens"
cat >"$tmp/softhsm/softhsm2.conf" <<EOF
directories.tokendir = $tmp/softhsm/tokens
objectstore.backend = file
log.level = ERROR
EOF
export SOFTHSM2_CONF="$tmp/softhsm/softhsm2.conf"
HSM_TOKEN=keymint-bench
HSM_PIN=1234
softhsm2-util --init-token --free --label "$HSM_TOKEN" --so-pin 5678 --pin "$HSM_PIN" \
  >"$tmp/softhsm/init.log" 2>&1 || die "softhsm2-util --init-token failed: $(tail -3 "$tmp/softhsm/init.log")"
log "SoftHSM2 token '$HSM_TOKEN' initialised in $tmp/softhsm/tokens"
hsm_objects() { find "$tmp/softhsm/tokens" -name '*.object' ! -name token.object 2>/dev/null | wc -l; } # keys only

# --- keymint, one instance per backend ----------------------------------------------------------
export KEYMINT_BOOTSTRAP_ADMIN="$ADMIN" RUST_LOG=${RUST_LOG:-warn}
# Scheduled jobs (RSA key generation, cleanup) must not fire inside a measurement window.
export KEYMINT_ROTATION_CRON="0 0 4 1 1 *" KEYMINT_CLEANUP_CRON="0 0 4 1 1 *"
kpid=""
start_keymint() { # start_keymint BACKEND: sets $kpid and $url
  local b=$1 d="$tmp/$1" port
  mkdir -p "$d"
  port=$(free_port) || die "no free port"
  url="http://127.0.0.1:$port"
  log "starting $BIN serve ($b signer) on $url (SQLite in $d)"
  (
    export KEYMINT_BIND="127.0.0.1:$port" KEYMINT_ISSUER="$url" \
      KEYMINT_DATABASE_URL="sqlite://$d/k.db" KEYMINT_KEYS_DIR="$d/keys" KEYMINT_SIGNER="$b"
    if [ "$b" = pkcs11 ]; then
      export KEYMINT_PKCS11_MODULE="$SOFTHSM_MODULE" KEYMINT_PKCS11_TOKEN="$HSM_TOKEN" \
        KEYMINT_PKCS11_PIN="$HSM_PIN"
    fi
    exec "$BIN" serve
  ) >>"$d/keymint.log" 2>&1 &
  kpid=$!
  pids+=("$kpid")
  for _ in $(seq 600); do # up to 60 s
    alive "$kpid" || die "keymint ($b) exited: $(tail -5 "$d/keymint.log")"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] && break
    sleep 0.1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] || die "keymint ($b) not ready after 60 s"
  log "keymint ($b) ready (pid $kpid, RSS $(mib "$(rss_kib "$kpid" VmRSS)") MiB)"
}
stop_keymint() {
  kill "$kpid" 2>/dev/null || true
  for _ in $(seq 100); do alive "$kpid" || break; sleep 0.1; done
  kill -9 "$kpid" 2>/dev/null || true
  wait "$kpid" 2>/dev/null || true
}

# A client_credentials client through the admin API (as benches/load.sh): sets $basic.
make_client() {
  local user=${ADMIN%%:*} pass=${ADMIN#*:} body access client
  body=$(jq -cn --arg u "$user" --arg p "$pass" '{username: $u, password: $p}')
  access=$(curl -sf -m 30 -H 'Content-Type: application/json' -d "$body" "$url/auth/login" | jq -r .access_token) \
    || die "login failed"
  client=$(curl -sf -H "Authorization: Bearer $access" -H 'Content-Type: application/json' \
    -d '{"name":"bench","grant_types":["client_credentials"],"scopes":["a"]}' "$url/admin/clients") \
    || die "cannot create an OAuth client"
  basic=$(printf '%s:%s' "$(jq -r .client_id <<<"$client")" "$(jq -r .client_secret <<<"$client")" | base64 -w0)
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $basic" \
    -d grant_type=client_credentials "$url/oauth/token")" = 200 ] || die "/oauth/token rejects the client"
}

# run NAME SECONDS: one wrk run of client_credentials at $CONNS connections.
run() {
  local name=$1 secs=$2 t=$THREADS c0 sh=$BASHPID # wrk's CPU shows in this shell's children
  [ "$CONNS" -lt "$t" ] && t=$CONNS
  c0=$(cpu_snap "$sh")
  KM_MODE=post KM_BODY=grant_type=client_credentials KM_CONTENT_TYPE=application/x-www-form-urlencoded \
    KM_THREADS=$t timeout $((secs + 60)) wrk -t"$t" -c"$CONNS" -d"${secs}s" --timeout 30s --latency \
    -s "$LUA" -H "Authorization: Basic $basic" "$url/oauth/token" >"$tmp/$name.txt" 2>&1 || true
  echo "KMCPU $(cpu_pct "$c0" "$(cpu_snap "$sh")")" >>"$tmp/$name.txt"
  grep -q '^KMRESULT' "$tmp/$name.txt" || die "wrk $name failed: $(tail -5 "$tmp/$name.txt")"
}

# seq_latency NAME N: N requests one after another, one curl process on one keep-alive
# connection; writes "p50 p99 mean" in ms to $tmp/NAME.stats.
seq_latency() {
  local name=$1 n=$2 good
  for _ in $(seq "$n"); do
    printf 'url = "%s"\noutput = "/dev/null"\n' "$url/oauth/token"
  done >"$tmp/$name.curl"
  timeout 300 curl -s -K "$tmp/$name.curl" -H "Authorization: Basic $basic" \
    -d grant_type=client_credentials -w '%{http_code} %{time_total}\n' >"$tmp/$name.txt" 2>&1 || true
  good=$(awk '$1 == 200' "$tmp/$name.txt" | wc -l)
  [ "$good" -eq "$n" ] || die "sequential $name: $good of $n requests returned 200: $(grep -v '^200 ' "$tmp/$name.txt" | head -3)"
  awk '$1 == 200 { print $2 * 1000 }' "$tmp/$name.txt" | sort -n | awk '
    { v[NR] = $1; s += $1 }
    END { p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
          printf "%.3f %.3f %.3f\n", p50, p99, s / NR }' >"$tmp/$name.stats"
}

declare -A R # R[backend.key]
measure() { # measure BACKEND
  local b=$1 k
  start_keymint "$b"
  make_client
  if [ "$b" = pkcs11 ]; then
    # The signing key must live in the token: SoftHSM2 keeps one file per object.
    [ "$(hsm_objects)" -gt 0 ] || die "pkcs11 keymint started, but the token holds no objects"
    log "token holds $(hsm_objects) objects"
  fi
  # Sequential first (cold-ish, on an otherwise idle server), after a few warm-up requests.
  seq_latency "$b.seqwarm" 10
  seq_latency "$b.seq" "$SEQ"
  read -r "R[$b.seq_p50]" "R[$b.seq_p99]" "R[$b.seq_mean]" <"$tmp/$b.seq.stats"
  log "$(printf '%-7s sequential x%s: p50 %s ms  p99 %s ms  mean %s ms' "$b" "$SEQ" "${R[$b.seq_p50]}" "${R[$b.seq_p99]}" "${R[$b.seq_mean]}")"
  [ "$WARMUP" -gt 0 ] && run "$b.warm" "$WARMUP"
  run "$b.load" "$DURATION"
  for k in rps p50_ms p99_ms requests non2xx connect read write timeout machine_pct keymint_pct wrk_pct other_pct; do
    R[$b.$k]=$(kv "$tmp/$b.load.txt" "$k")
  done
  log "$(printf '%-7s %8s tokens/s  p50 %7s ms  p99 %8s ms  non2xx %s  sockerr c/r/w/t %s/%s/%s/%s  CPU%% machine/keymint/wrk/other %s/%s/%s/%s' \
    "$b" "${R[$b.rps]}" "${R[$b.p50_ms]}" "${R[$b.p99_ms]}" "${R[$b.non2xx]}" \
    "${R[$b.connect]}" "${R[$b.read]}" "${R[$b.write]}" "${R[$b.timeout]}" \
    "${R[$b.machine_pct]}" "${R[$b.keymint_pct]}" "${R[$b.wrk_pct]}" "${R[$b.other_pct]}")"
  alive "$kpid" || die "keymint ($b) died during the run"
  R[$b.warns]=$(grep -ciE ' (WARN|ERROR) ' "$tmp/$b/keymint.log" || true)
  stop_keymint
}

log "client_credentials: $SEQ sequential requests, then ${WARMUP}s warm-up + ${DURATION}s of wrk at $CONNS connections ($THREADS threads), per backend"
measure local
measure pkcs11

# --- report ------------------------------------------------------------------------------------
r_rps=$(ratio "${R[pkcs11.rps]}" "${R[local.rps]}")
r_seq=$(ratio "${R[pkcs11.seq_p50]}" "${R[local.seq_p50]}")
if awk -v v="$r_rps" -v l="$RATIO_TARGET" 'BEGIN { exit !(v != "-" && v >= l) }'; then verdict=PASS; else verdict=FAIL; fi
busy_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "## keymint signing backends: local vs pkcs11 (SoftHSM2)"
echo
echo "binary: $BIN"
echo "machine: nproc=$cores; busy before the run $busy_before% of $((cores * 100))% (other processes);" \
  "load average at the end $busy_after; wrk and keymint share the same $cores cores"
echo "load: POST /oauth/token grant_type=client_credentials, wrk $THREADS threads, $CONNS connections," \
  "${WARMUP}s warm-up + ${DURATION}s; sequential: $SEQ requests on one keep-alive connection (curl)"
echo
echo "| backend | tokens/s | p50 (load) | p99 (load) | non-2xx | sequential p50 | sequential p99 | sequential mean | CPU % machine / keymint / wrk / other | keymint CPU µs/token |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for b in local pkcs11; do
  echo "| $b | $(f "${R[$b.rps]}") | $(ms "${R[$b.p50_ms]}") | $(ms "${R[$b.p99_ms]}") | ${R[$b.non2xx]} |" \
    "$(ms "${R[$b.seq_p50]}") | $(ms "${R[$b.seq_p99]}") | $(ms "${R[$b.seq_mean]}") |" \
    "${R[$b.machine_pct]} / ${R[$b.keymint_pct]} / ${R[$b.wrk_pct]} / ${R[$b.other_pct]} | $(us_req "${R[$b.keymint_pct]}" "${R[$b.rps]}") |"
done
echo
echo "| ratio pkcs11/local | value | target | verdict |"
echo "|---|---|---|---|"
echo "| tokens/s | $r_rps | ≥ $RATIO_TARGET | $verdict |"
echo "| sequential p50 | $r_seq | - | - |"
echo
log "done in $(($(date +%s) - started_at)) s; tokens/s ratio $r_rps ($verdict)"
for b in local pkcs11; do
  if [ "${R[$b.warns]}" -gt 0 ]; then
    log "keymint ($b) logged ${R[$b.warns]} WARN/ERROR lines; first ones:"
    grep -iE ' (WARN|ERROR) ' "$tmp/$b/keymint.log" | head -5 >&2
  fi
done
[ "${STRICT:-0}" = 1 ] && [ "$verdict" = FAIL ] && exit 1
exit 0
