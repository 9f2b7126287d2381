#!/usr/bin/env bash
# CPU profiles of keymint's hot paths: a release keymint on SQLite under wrk (64 connections),
# sampled by `perf record --call-graph dwarf` and drawn as flame graphs with inferno.
#
#   benches/profile.sh [path/to/keymint] [LABEL]   (default target/release/keymint, "after")
#
# Writes benches/profiles/LABEL-PATH.svg (the flame graph) and LABEL-PATH.txt (the command, the
# request rate during the sample, and the 25 hottest functions by self time) for PATH in jwks,
# me, introspect, client_credentials, refresh and login. Needs perf (Debian's linux-perf, and
# root or kernel.perf_event_paranoid <= 1) and inferno (`cargo install inferno --locked`); the
# release binary keeps its symbols and .eh_frame, which is all dwarf unwinding needs.
# Knobs: SECONDS_PER_PATH (4), FREQ (Hz per CPU, 250), CONNS (64), PATHS (all six).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BIN=${1:-$repo/target/release/keymint}
LABEL=${2:-after}
SECS=${SECONDS_PER_PATH:-4}
FREQ=${FREQ:-250}
CONNS=${CONNS:-64}
PATHS=${PATHS:-jwks me introspect client_credentials refresh login}
out=$here/profiles
ADMIN=admin:admin-password-1
LUA="$here/wrk/keymint.lua"
BENCH_NAME=profile
# shellcheck source=benches/lib.sh
. "$here/lib.sh"
need_tools wrk curl jq perf:linux-perf
command -v inferno-flamegraph >/dev/null || die "no inferno: cargo install inferno --locked"
bench_start keymint-profile
mkdir -p "$out"

keymint_env_sqlite
start_keymint "$url" "$tmp/keymint.log"
login_body=$(jq -cn --arg u "${ADMIN%%:*}" --arg p "${ADMIN#*:}" '{username: $u, password: $p}')
access=$(curl -sf -H 'Content-Type: application/json' -d "$login_body" "$url/auth/login" | jq -r .access_token)
client=$(curl -sf -H "Authorization: Bearer $access" -H 'Content-Type: application/json' \
  -d '{"name":"bench","grant_types":["client_credentials"],"scopes":["a"]}' "$url/admin/clients")
basic=$(printf '%s:%s' "$(jq -r .client_id <<<"$client")" "$(jq -r .client_secret <<<"$client")" | base64 -w0)
cctoken=$(curl -sf -H "Authorization: Basic $basic" -d grant_type=client_credentials "$url/oauth/token" | jq -r .access_token)
seq $((CONNS + 8)) | xargs -P 4 -I{} sh -c "curl -sf -H 'Content-Type: application/json' -d '$login_body' '$url/auth/login' | jq -r .refresh_token" >"$tmp/rt"
form=application/x-www-form-urlencoded

profile() { # profile NAME URL [wrk args...]: wrk for SECS+2 s, perf samples SECS s of it
  local name=$1 target=$2
  shift 2
  log "$name: wrk $CONNS conns, perf -F $FREQ for $SECS s"
  KM_THREADS=2 timeout $((SECS + 60)) wrk -t2 -c"$CONNS" -d"$((SECS + 2))s" --timeout 30s --latency \
    -s "$LUA" "$@" "$target" >"$tmp/$name.wrk" 2>&1 &
  local w=$!
  sleep 1
  perf record -q -F "$FREQ" --call-graph dwarf,16384 -p "$kpid" -o "$tmp/$name.data" -- sleep "$SECS" >/dev/null 2>&1
  wait "$w" || true
  perf script -i "$tmp/$name.data" 2>/dev/null | inferno-collapse-perf >"$tmp/$name.folded"
  inferno-flamegraph --title "keymint $LABEL: $name ($CONNS conns, $(kv "$tmp/$name.wrk" rps) req/s)" \
    --minwidth 0.2 <"$tmp/$name.folded" >"$out/$LABEL-$name.svg"
  {
    echo "binary: $BIN ($LABEL); $(date -u +%FT%TZ); nproc=$(nproc)"
    echo "command: benches/profile.sh $BIN $LABEL (PATH $name): wrk -t2 -c$CONNS against $target;" \
      "perf record -F $FREQ --call-graph dwarf,16384 -p <keymint> -- sleep $SECS"
    echo "wrk: $(grep '^KMRESULT' "$tmp/$name.wrk")"
    echo
    echo "hottest functions by self time (% of keymint's samples):"
    perf report -i "$tmp/$name.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
      grep -E '^ +[0-9.]+%' | sed 's/[[:space:]-]*$//' | awk 'NR <= 25' # awk reads all: no SIGPIPE
  } >"$out/$LABEL-$name.txt"
}
for p in $PATHS; do
  case $p in
    jwks) KM_MODE=get profile jwks "$url/.well-known/jwks.json" ;;
    me) KM_MODE=get profile me "$url/auth/me" -H "Authorization: Bearer $access" ;;
    introspect) KM_MODE=post KM_BODY="token=$cctoken" KM_CONTENT_TYPE=$form \
      profile introspect "$url/oauth/introspect" -H "Authorization: Basic $basic" ;;
    client_credentials) KM_MODE=post KM_BODY=grant_type=client_credentials KM_CONTENT_TYPE=$form \
      profile client_credentials "$url/oauth/token" -H "Authorization: Basic $basic" ;;
    refresh) KM_MODE=refresh KM_TOKENS="$tmp/rt" profile refresh "$url/auth/refresh" ;;
    login) KM_MODE=post KM_BODY="$login_body" profile login "$url/auth/login" ;;
    *) die "unknown path $p" ;;
  esac
done
log "profiles in $out: $(cd "$out" && ls "$LABEL"-* | tr '\n' ' ')"
