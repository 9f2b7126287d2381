# Shared by the benches/*.sh scripts (source it after setting BENCH_NAME): logging, Debian
# tools, the keymint binary, a temp dir whose processes are killed on any exit, free ports, and
# CPU and memory accounting. Every helper is bounded; all traffic stays on 127.0.0.1.

started_at=$(date +%s)

log() { printf '[%s %4ss] %s\n' "$BENCH_NAME" "$(($(date +%s) - started_at))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# need_tools CMD[:PACKAGE]...: install the missing ones with apt-get (Debian packages only).
need_tools() {
  local missing=() t cmd pkg
  for t in "$@"; do
    cmd=${t%%:*}; pkg=${t#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} with apt-get"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# bench_start TMP_PREFIX: resolve $BIN (absolute, executable), apply NICE, raise the descriptor
# limit, make $tmp, and kill every pid in $pids (then run bench_cleanup_extra, if defined, and
# remove $tmp unless KEEP_TMP=1) on any exit.
bench_start() {
  case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
  # Everything started from here on inherits the priority.
  [ "${NICE:-0}" = 0 ] || renice -n "$NICE" -p $$ >/dev/null || log "WARNING: cannot renice to $NICE"
  [ -x "$BIN" ] || die "no keymint binary at $BIN: build it with 'cargo build --release --bin keymint' or pass its path"
  ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
  tmp=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if declare -F bench_cleanup_extra >/dev/null; then bench_cleanup_extra || true; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}

# A free loopback port: nothing accepts a connection on it.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# Running and not a zombie (a dead child stays visible to kill -0 until it is reaped).
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
# kv FILE KEY: a value from the KMRESULT / KMCPU lines.
kv() { grep '^KM' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# CPU accounting, because wrk, keymint and anything else running share the same few cores:
# prints "busy total keymint" jiffies (machine busy, machine total, keymint's utime+stime).
cpu_snap() { # cpu_snap [SHELL_PID]: that shell's reaped children are the wrk runs it waited for
  awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat | tr '\n' ' '
  { awk '{ print $14 + $15 }' "/proc/${kpid:-self}/stat" 2>/dev/null || echo 0; } | tr '\n' ' '
  awk '{ print $16 + $17 }' "/proc/${1:-$$}/stat"
}
# cpu_pct "SNAP0" "SNAP1": machine busy and keymint CPU in % of one core (max nproc x 100).
cpu_pct() { # cpu_pct SNAP0 SNAP1 [CLEANUP_JIFFIES [DB_JIFFIES]]
  # CLEANUP_JIFFIES of the reaped children were the cleanup CLI's, not wrk's; DB_JIFFIES were
  # spent by keymint's own Postgres backends.
  awk -v a="$1" -v b="$2" -v c="${3:-0}" -v d="${4:-0}" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ")
    t = y[2] - x[2]; if (t <= 0) t = 1; f = 100 * n / t
    m = (y[1] - x[1]) * f; k = (y[3] - x[3]) * f; w = (y[4] - x[4] - c) * f; o = m - k - w - c * f - d * f
    printf "machine_pct=%.0f keymint_pct=%.0f wrk_pct=%.0f other_pct=%.0f", m, k, w, (o < 0 ? 0 : o)
    if (c > 0) printf " cleanup_pct=%.0f", c * f
    if (d > 0) printf " db_pct=%.0f", d * f }'
}
# The Postgres backends serving keymint's database (its pool), to tell their CPU from others'.
# Before measuring: how busy is the machine with other work (a build, tests)?
idle_check() {
  local deadline=$(($(date +%s) + ${IDLE_WAIT:-0})) a b busy
  while :; do
    a=$(cpu_snap); sleep 2; b=$(cpu_snap)
    busy=$(cpu_pct "$a" "$b" | sed 's/machine_pct=\([0-9]*\).*/\1/')
    [ "$busy" -le 20 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "WARNING: other processes keep the machine $busy% busy (of $(( $(nproc) * 100 ))%): numbers will be low and noisy"
      break
    fi
    log "machine $busy% busy with other work; waiting (IDLE_WAIT)"
    sleep 5
  done
  echo "$busy"
}

rss_kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
ms() { awk -v x="$1" 'BEGIN { if (x == "") print "-"; else if (x < 10) printf "%.2f ms", x; else printf "%.1f ms", x }'; }
f() { awk -v x="$1" 'BEGIN { if (x == "") print "-"; else printf "%.0f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
us_req() { awk -v c="$1" -v r="$2" 'BEGIN { if (r == "" || r == 0 || c == "") print "-"; else printf "%.0f", c / 100 * 1e6 / r }'; }

# build_benches NAME...: `cargo build --release --bench NAME...` in the repository (with
# `--bin keymint` too when $BIN is the default binary); prints "NAME PATH" per executable built.
build_benches() {
  local build=() n
  for n in "$@"; do build+=(--bench "$n"); done
  [ "$BIN" = "$repo/target/release/keymint" ] && build+=(--bin keymint)
  log "cargo build --release ${build[*]} (in $repo)"
  (cd "$repo" && cargo build --release "${build[@]}" --message-format=json-render-diagnostics) |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null) | "\(.target.name) \(.executable)"'
}

# measure_argon2: keymint's own argon2id verification alone ($DRIVER argon2), ARGON2_ITERATIONS
# times on one thread, then on every core at once; run it while the machine is idle. Sets
# hash_ms (median), argon2_par (per second, all cores at once) and argon2_limit (cores ÷ hash_ms).
measure_argon2() {
  local cores
  cores=$(nproc)
  log "argon2id: ${ARGON2_ITERATIONS:-20} verifications on one thread, then on $cores threads at once"
  KM_ITERATIONS=${ARGON2_ITERATIONS:-20} KM_THREADS=$cores "$DRIVER" argon2 >"$tmp/argon2.txt" 2>"$tmp/argon2.err" \
    || die "argon2 timing failed: $(tail -3 "$tmp/argon2.err")"
  hash_ms=$(kv "$tmp/argon2.txt" median_ms)
  argon2_par=$(kv "$tmp/argon2.txt" parallel_per_s)
  argon2_limit=$(awk -v c="$cores" -v t="$hash_ms" 'BEGIN { printf "%.1f", c * 1000 / t }')
  log "argon2id verify: median $hash_ms ms (min $(kv "$tmp/argon2.txt" min_ms), max $(kv "$tmp/argon2.txt" max_ms)) on one thread:" \
    "limit $cores ÷ $hash_ms ms = $argon2_limit/s; $cores threads at once: $argon2_par/s"
}

# keymint_env_sqlite: the environment of a benchmarked keymint on SQLite in $tmp, on a free
# loopback port (sets port and url; needs ADMIN).
keymint_env_sqlite() {
  port=$(free_port) || die "no free port"
  url="http://127.0.0.1:$port"
  export KEYMINT_BIND="127.0.0.1:$port" KEYMINT_ISSUER="$url" \
    KEYMINT_DATABASE_URL="sqlite://$tmp/k.db" KEYMINT_KEYS_DIR="$tmp/keys" \
    KEYMINT_BOOTSTRAP_ADMIN="$ADMIN" RUST_LOG=${RUST_LOG:-warn}
  # Scheduled jobs (RSA key generation, cleanup) must not fire inside a measurement window.
  export KEYMINT_ROTATION_CRON="0 0 4 1 1 *" KEYMINT_CLEANUP_CRON="0 0 4 1 1 *"
  # Every benchmarked login succeeds, but the limiter reserves each attempt as a failure until
  # its password checks out, and all connections come from 127.0.0.1: at the default
  # per-address allowance most concurrent logins would be refused with 429.
  export KEYMINT_LOGIN_IP_FAILURES=${KEYMINT_LOGIN_IP_FAILURES:-1000000}
}

# start_keymint URL LOGFILE: `$BIN serve` with the exported environment, waited for until URL's
# /readyz answers 200 (60 s at most); sets kpid and rss_idle (KiB).
start_keymint() {
  log "starting $BIN serve on $1 ($KEYMINT_DATABASE_URL)"
  "$BIN" serve >>"$2" 2>&1 &
  kpid=$!
  pids+=("$kpid")
  for _ in $(seq 600); do
    alive "$kpid" || die "keymint exited: $(tail -5 "$2")"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/readyz")" = 200 ] && break
    sleep 0.1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/readyz")" = 200 ] || die "keymint not ready after 60 s"
  rss_idle=$(rss_kib "$kpid" VmRSS)
  log "keymint ready (pid $kpid, RSS $(mib "$rss_idle") MiB)"
}

# stop_keymint: SIGTERM to $kpid, SIGKILL after 10 s.
stop_keymint() {
  kill "$kpid" 2>/dev/null || true
  for _ in $(seq 100); do alive "$kpid" || break; sleep 0.1; done
  kill -9 "$kpid" 2>/dev/null || true
  wait "$kpid" 2>/dev/null || true
}
