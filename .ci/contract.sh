#!/usr/bin/env bash
# Contract check: fuzz a running keymint against its own OpenAPI document with schemathesis.
# Usage: .ci/contract.sh path/to/keymint
# Exits non-zero when schemathesis reports a failure or the server cannot be started.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="$(realpath "${1:?usage: .ci/contract.sh path/to/keymint}")"
SCHEMATHESIS_VERSION=4.32.5   # pinned so a new release cannot change the verdict on its own
# Required checks plus cheap ones that matter for an IdP (ignored_auth: a protected operation
# must not answer without credentials). positive_data_acceptance is not yet on: several
# semantic rules (password length, per-grant required fields, limit ranges) are enforced by
# the server but not yet expressed in the schemas, so it flags those 400s.
CHECKS=not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance,negative_data_rejection,unsupported_method,ignored_auth
MAX_EXAMPLES=300              # per operation; keeps the whole run to a few minutes on 2 cores
SEED=20261123                 # fixed so a failure reproduces run to run
# Operations that revoke the presented access token. They run last, in their own pass, with a
# fresh login per test case, so they neither kill the shared token nor only ever see 401.
SELF_REVOKING=("POST /auth/logout")

started=$SECONDS
VENV="$PWD/target/contract-venv"   # absolute: st runs from $REPORTS
REPORTS=target/contract-report

echo "== schemathesis $SCHEMATHESIS_VERSION"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"

echo "== keymint"
# shellcheck source=.ci/keymint-server.sh
. .ci/keymint-server.sh
# The fuzzer fails thousands of logins from one address; lift the per-address limit so the
# fresh-login hook is not throttled (throttling itself is tested in tests/it/security.rs).
start_keymint KEYMINT_LOGIN_IP_FAILURES=1000000

login() {
  local body
  body="$(curl -s -X POST "$BASE/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"admin-password-1"}')"
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$body" \
    || { echo "login as the bootstrap admin failed: $body" >&2; return 1; }
}
TOKEN="$(login)"

# Auth hook for the self-revoking pass: a fresh admin token for every test case (no caching).
# A rate-limited login (429, after the main pass fuzzed /auth/login) is retried after Retry-After.
cat >"$WORK/fresh_token_hook.py" <<'EOF'
import json, os, time, urllib.error, urllib.request
import schemathesis

@schemathesis.auth(refresh_interval=None)
class FreshAdminToken:
    def get(self, case, ctx):
        for _ in range(10):
            req = urllib.request.Request(
                os.environ["KEYMINT_CONTRACT_BASE"] + "/auth/login",
                data=json.dumps({"username": "admin", "password": "admin-password-1"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return json.load(resp)["access_token"]
            except urllib.error.HTTPError as e:
                if e.code != 429:
                    raise
                time.sleep(min(float(e.headers.get("Retry-After") or 1), 30))
        raise RuntimeError("admin login still rate-limited after 10 tries")

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
EOF

rm -rf "$REPORTS" && mkdir -p "$REPORTS"
st_run() {  # st_run NAME EXTRA_ARGS...: one schemathesis pass, reports under $REPORTS/NAME
  local name=$1; shift
  echo "== schemathesis pass: $name"
  # --output-sanitize false: print the exact request (tokens are throwaway) so failures reproduce.
  # --generation-database none: no examples carried over from earlier runs; the seed decides.
  # -w 1: operations share server state (revocations, rate limits); keep the order fixed.
  # Run from $REPORTS: st writes its .schemathesis/ cache (used by `st replay`) into the cwd,
  # and it must not land in the repository's root.
  (cd "$REPORTS" && timeout 900 "$VENV/bin/st" run "$BASE/openapi.json" \
    --checks "$CHECKS" --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
    --generation-database none --workers 1 --request-timeout 10 \
    --output-sanitize false --no-color \
    --report json,ndjson --report-dir "$name" "$@")
}

status=0
excludes=()
for op in "${SELF_REVOKING[@]}"; do excludes+=(--exclude-name "$op"); done
# The self-revoking passes run first: the main pass may legitimately change the bootstrap
# admin's own password (schemathesis reuses ids it saw in responses, and PATCH
# /admin/users/{id} accepts a valid password), after which the fresh-login hook could not log in.
i=0
for op in "${SELF_REVOKING[@]}"; do
  i=$((i + 1))
  KEYMINT_CONTRACT_BASE="$BASE" SCHEMATHESIS_HOOKS="$WORK/fresh_token_hook.py" \
    st_run "self-revoking-$i" --include-name "$op" || status=1
done
st_run main -H "Authorization: Bearer $TOKEN" "${excludes[@]}" || status=1

echo "== contract summary"
# Sum the passes' JSON reports; the NDJSON event logs give the HTTP requests actually sent.
"$VENV/bin/python" - "$REPORTS" <<'EOF'
import glob, json, sys
root = sys.argv[1]
tested = total = cases = failed = requests = 0
for path in sorted(glob.glob(f"{root}/*/json-*.json")):
    r = json.load(open(path))
    tested += r["operations"]["tested"]
    total = r["operations"]["total"]
    cases += r["test_cases"]["generated"]
    failed += r["test_cases"]["with_failures"] + r["test_cases"]["errored"]
for path in glob.glob(f"{root}/*/ndjson-*.ndjson"):
    for line in open(path):
        ev = json.loads(line).get("ScenarioFinished")
        if ev:
            requests += len(ev["recorder"].get("interactions", {}))
print(f"operations tested: {tested} of {total}; test cases: {cases}; HTTP requests: {requests}")
print(f"contract: {cases - failed} passed, {failed} failed")
EOF
echo "took $((SECONDS - started))s; reports in $REPORTS"
if [ "$status" -ne 0 ]; then echo "contract check FAILED (see the FAILURES sections above)"; fi
exit "$status"
