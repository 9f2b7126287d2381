#!/usr/bin/env bash
# Browser check: load keymint's Swagger UI (/docs/) in headless Chromium, under the server's real
# Content-Security-Policy, and check that it renders every tag and operation of /openapi.json.
# Usage: .ci/browser.sh path/to/keymint
# Writes target/docs.html (rendered DOM), target/docs.png (screenshot), target/docs-console.log.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="$(realpath "${1:?usage: .ci/browser.sh path/to/keymint}")"
started=$SECONDS

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
/usr/bin/chromium --version 2>/dev/null || true

echo "== keymint"
# shellcheck source=.ci/keymint-server.sh
. .ci/keymint-server.sh
start_keymint
curl -fs "$BASE/openapi.json" -o "$WORK/openapi.json"
echo "CSP of /docs/: $(curl -fsI "$BASE/docs/" | tr -d '\r' | sed -n 's/^content-security-policy: //Ip')"

mkdir -p target
rm -f target/docs.html target/docs.png target/docs-console.log
chrome() {  # chrome ARGS... URL: one headless run with a fresh profile; console goes to stderr
  local profile
  profile="$(mktemp -d "$WORK/profile.XXXXXX")"
  # --virtual-time-budget lets Swagger UI fetch /openapi.json and render before the dump.
  timeout 180 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --enable-logging=stderr --v=0 --virtual-time-budget=15000 "$@"
}

echo "== rendering $BASE/docs/"
chrome --dump-dom "$BASE/docs/" >target/docs.html 2>"$WORK/dom.stderr" \
  || { echo "FAIL: chromium --dump-dom failed:"; tail -n 30 "$WORK/dom.stderr"; exit 1; }
chrome --screenshot=target/docs.png --window-size=1280,2000 "$BASE/docs/" >/dev/null 2>"$WORK/shot.stderr" \
  || { echo "FAIL: chromium --screenshot failed:"; tail -n 30 "$WORK/shot.stderr"; exit 1; }
# Keep only the page's console messages (the rest is D-Bus/GPU noise of a headless container).
grep -h 'CONSOLE' "$WORK/dom.stderr" "$WORK/shot.stderr" >target/docs-console.log || true
[ -s target/docs.png ] || { echo "FAIL: no screenshot written"; cat "$WORK/shot.stderr"; exit 1; }

echo "== checks"
python3 - "$WORK/openapi.json" target/docs.html target/docs-console.log <<'EOF'
import json, sys
from html.parser import HTMLParser

doc = json.load(open(sys.argv[1]))
methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
tags = [t["name"] for t in doc.get("tags", [])]
for item in doc["paths"].values():  # tags used by operations but not declared at the top
    for m, op in item.items():
        if m in methods:
            tags += [t for t in op.get("tags", []) if t not in tags]
ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in methods}

class Dom(HTMLParser):
    """Collects Swagger UI's tag headers and operation blocks (method + path)."""
    def __init__(self):
        super().__init__()
        self.tags, self.opblocks, self.rendered = set(), 0, set()
        self.method = self.in_method = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if "opblock-tag" in cls and a.get("data-tag") is not None:
            self.tags.add(a["data-tag"])
        if "opblock" in cls:
            self.opblocks += 1
        self.in_method = "opblock-summary-method" in cls
        if "opblock-summary-path" in cls and self.method:
            self.rendered.add((self.method, a.get("data-path")))
    def handle_data(self, data):
        if self.in_method:
            self.method, self.in_method = data.strip().upper(), False

html = open(sys.argv[2], encoding="utf-8", errors="replace").read()
dom = Dom()
dom.feed(html)
console = open(sys.argv[3]).read().splitlines()
# Chromium logs each CSP block as a console message naming the violated directive.
csp = [l for l in console if "Content Security Policy" in l or "Refused to" in l]

problems = []
if csp:
    problems.append("the Content-Security-Policy blocked something:\n    " + "\n    ".join(csp))
if "Failed to load API definition" in html:
    problems.append("Swagger UI shows 'Failed to load API definition'")
missing_tags = [t for t in tags if t not in dom.tags]
if missing_tags:
    problems.append(f"tags of /openapi.json not rendered: {missing_tags} (rendered: {sorted(dom.tags)})")
if dom.opblocks == 0:
    problems.append("no operation block (class 'opblock') rendered")
missing_ops = sorted(ops - dom.rendered)
if missing_ops:
    problems.append(f"operations not rendered: {[' '.join(o) for o in missing_ops]}")

print(f"tags rendered: {len(tags) - len(missing_tags)} of {len(tags)} {tags}")
print(f"operation blocks: {dom.opblocks}; operations rendered: {len(ops) - len(missing_ops)} of {len(ops)}")
if console:
    print("console messages:\n  " + "\n  ".join(console))
for p in problems:
    print("FAIL: " + p)
print(f"browser: {0 if problems else 1} passed, {1 if problems else 0} failed")
sys.exit(1 if problems else 0)
EOF
echo "took $((SECONDS - started))s; DOM in target/docs.html, screenshot in target/docs.png"
