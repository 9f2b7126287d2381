# Sourced by the CI check scripts: start a throwaway keymint ($BIN) on a free loopback port
# over a temp dir, with a bootstrap admin (admin / admin-password-1), and stop it on exit.
# Extra KEYMINT_* variables may be passed as arguments: start_keymint VAR=value ...
# Sets WORK, BASE and SERVER_PID.
WORK="$(mktemp -d)"
SERVER_PID=
# shellcheck disable=SC2317  # only reached through the trap
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

start_keymint() {
  # Ask the kernel for a free loopback port (tiny race until keymint binds it; fine for CI).
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  BASE="http://127.0.0.1:$port"
  env KEYMINT_BIND="127.0.0.1:$port" KEYMINT_ISSUER="$BASE" \
    KEYMINT_DATABASE_URL="sqlite://$WORK/k.db" KEYMINT_KEYS_DIR="$WORK/keys" \
    KEYMINT_BOOTSTRAP_ADMIN=admin:admin-password-1 RUST_LOG=warn "$@" \
    "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 120); do
    curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "keymint exited during start:"; cat "$WORK/server.log"; exit 1; }
    sleep 0.5
  done
  curl -fs "$BASE/readyz" >/dev/null || { echo "keymint not ready after 60s:"; cat "$WORK/server.log"; exit 1; }
  echo "listening on $BASE"
}
