# shellcheck shell=bash disable=SC2154 # $here, $tmp and $pids are the caller's (load.sh, lib.sh)
# The oidc-provider peer column of benches/load.sh: source it after benches/lib.sh and
# bench_start (it uses log, die, free_port, alive, rss_kib, $tmp, $pids and load.sh's $here).
#
#   peer_available && peer_start   # then: $peer_jwks, $peer_token_url, $peer_basic, $peer_pid
#   peer_rss_kib                   # its VmRSS in KiB
#
# oidc-provider comes from the npm registry, pinned by benches/peer/package-lock.json; the server
# is benches/peer/server.js (one RS256 key, one client whose client_credentials grant is a JWT).
# Every wait is bounded; all traffic stays on 127.0.0.1.

peer_client=bench
peer_secret=bench-secret-bench-secret-bench-secret # the client in benches/peer/server.js

# Node and npm are not Debian-installed here by need_tools: a machine without them skips the
# column instead of failing the whole benchmark.
peer_available() {
  local t
  for t in node npm; do
    if ! command -v "$t" >/dev/null 2>&1; then
      log "skipping the oidc-provider peer: no $t on PATH"
      return 1
    fi
  done
}

# base64url without padding -> its decoded bytes (for a JWT's header).
peer_b64url_decode() {
  local s
  s=$(printf '%s' "$1" | tr '_-' '/+')
  case $((${#s} % 4)) in 2) s="$s==" ;; 3) s="$s=" ;; esac
  printf '%s' "$s" | base64 -d 2>/dev/null
}

peer_start() {
  local dir="$here/peer" code body token h
  # npm ci only when the installed tree is missing or older than the lockfile (npm writes
  # node_modules/.package-lock.json on every install): a re-run does not touch the registry.
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
    || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing oidc-provider into $dir/node_modules (npm ci)"
    timeout 300 npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >"$tmp/peer-npm.log" 2>&1 \
      || die "npm ci for the oidc-provider peer failed: $(tail -5 "$tmp/peer-npm.log")"
  fi

  local port
  port=$(free_port) || die "no free port for the oidc-provider peer"
  peer_url="http://127.0.0.1:$port"
  peer_jwks="$peer_url/jwks"         # oidc-provider's default jwks_uri (checked below)
  peer_token_url="$peer_url/token"   # and its default token_endpoint
  peer_basic=$(printf '%s:%s' "$peer_client" "$peer_secret" | base64 -w0)

  log "starting oidc-provider $(jq -r '.packages["node_modules/oidc-provider"].version' "$dir/package-lock.json") on $peer_url (node $(node --version))"
  PORT=$port NODE_ENV=production node "$dir/server.js" >"$tmp/peer.out" 2>"$tmp/peer.log" &
  peer_pid=$!
  pids+=("$peer_pid")

  # READY on stdout, then the JWKS answers: up to 30 s (the RSA key is generated at start).
  for _ in $(seq 300); do
    alive "$peer_pid" || die "oidc-provider exited: $(tail -5 "$tmp/peer.log")"
    if grep -q '^READY$' "$tmp/peer.out" \
      && [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$peer_jwks")" = 200 ]; then
      break
    fi
    sleep 0.1
  done
  [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$peer_jwks")" = 200 ] \
    || die "oidc-provider not serving $peer_jwks after 30 s: $(tail -5 "$tmp/peer.log")"

  # Its discovery must agree with the paths assumed above, and its JWKS must have keymint's
  # shape (one RSA RS256 signing key), or the columns would not compare like with like.
  body=$(curl -sf -m 10 "$peer_url/.well-known/openid-configuration") \
    || die "oidc-provider has no discovery document"
  [ "$(jq -r '.jwks_uri + " " + .token_endpoint' <<<"$body")" = "$peer_jwks $peer_token_url" ] \
    || die "oidc-provider's discovery disagrees: $(jq -c '{jwks_uri, token_endpoint}' <<<"$body")"
  curl -sf -m 10 "$peer_jwks" | jq -e '.keys | length == 1 and .[0].kty == "RSA" and .[0].alg == "RS256"' >/dev/null \
    || die "oidc-provider's JWKS is not one RS256 RSA key: $(curl -s -m 10 "$peer_jwks" | head -c 300)"

  # One token: 200, and an RS256 JWT (one RSA signature per token, as keymint's cost).
  body=$(curl -s -m 10 -w '\n%{http_code}' -H "Authorization: Basic $peer_basic" \
    -H 'Content-Type: application/x-www-form-urlencoded' -d grant_type=client_credentials "$peer_token_url")
  code=${body##*$'\n'}
  body=${body%$'\n'*}
  [ "$code" = 200 ] || die "oidc-provider's /token answered $code: $(head -c 300 <<<"$body")"
  token=$(jq -r '.access_token // empty' <<<"$body")
  [[ "$token" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] \
    || die "oidc-provider's access token is not a JWT (opaque format?): $(head -c 100 <<<"$token")"
  h=$(peer_b64url_decode "${token%%.*}" | jq -r .alg 2>/dev/null || true)
  [ "$h" = RS256 ] || die "oidc-provider's access token is signed '$h', not RS256"

  log "oidc-provider ready (pid $peer_pid, RSS $(mib "$(peer_rss_kib)") MiB)"
}

peer_rss_kib() { rss_kib "$peer_pid" VmRSS; }
