#!/usr/bin/env bash
# Prove that `.ci/run` passes on a fresh machine: clone the committed HEAD (or REV) into a
# temporary directory with ../shared beside it, point CARGO_HOME at an empty directory (no
# registry cache, no cargo-installed tools; the toolchain stays where rustup keeps it) and run
# `CI=true bash .ci/run` there. A missing install or fetch step fails here before it fails for
# a new contributor. Slow: it downloads every crate and builds everything from nothing.
# Usage: .ci/fresh.sh [REV]
#   FRESH_KEEP=1  keep the temporary directory after a pass (it is always kept after a failure)
# The output is also written to target/fresh.log of this repository.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
[ -d "$REPO/../shared" ] || { echo "fresh.sh: $REPO/../shared is missing (.ci/run needs it)"; exit 1; }
SHARED="$(cd "$REPO/../shared" && pwd)"
REV="$(git -C "$REPO" rev-parse --verify "${1:-HEAD}^{commit}")"
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
  echo "fresh.sh: note: uncommitted changes in $REPO are NOT part of this run (it tests $REV)"
fi

# The toolchain: rustup's proxies (cargo, rustc, rustfmt, ...), without anything else of the
# old cargo home's bin/ (a cargo-deny or cargo-fuzz there would hide a missing install step).
OLD_CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
RUSTUP_BIN="$(command -v rustup || true)"
[ -n "$RUSTUP_BIN" ] || RUSTUP_BIN="$OLD_CARGO_BIN/rustup"
[ -x "$RUSTUP_BIN" ] || { echo "fresh.sh: rustup not found (looked on PATH and in $OLD_CARGO_BIN)"; exit 1; }
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"

FRESH="$(mktemp -d "${TMPDIR:-/tmp}/keymint-fresh.XXXXXX")"
echo "fresh.sh: testing $REV in $FRESH"
mkdir "$FRESH/cargo-home" "$FRESH/rustup-bin"
ln -s "$RUSTUP_BIN" "$FRESH/rustup-bin/rustup"
for f in "$(dirname "$RUSTUP_BIN")"/*; do  # every proxy: a link to (or copy of) rustup
  if [ "$f" -ef "$RUSTUP_BIN" ]; then ln -sf "$RUSTUP_BIN" "$FRESH/rustup-bin/$(basename "$f")"; fi
done
ln -s "$SHARED" "$FRESH/shared"
git clone -q --no-checkout "$REPO" "$FRESH/main"
git -C "$FRESH/main" checkout -q --detach "$REV" \
  || { echo "fresh.sh: $REV is not on a branch or tag of $REPO, so the clone lacks it"; exit 1; }

# The environment of a fresh machine: empty cargo home first on PATH (where .ci/run's
# `cargo install`s land), then the proxies, then the rest of PATH without the old cargo bin.
export CARGO_HOME="$FRESH/cargo-home"
path=
IFS=: read -ra entries <<<"$PATH"
for p in "${entries[@]}"; do
  [ "$p" -ef "$OLD_CARGO_BIN" ] || path="$path:$p"
done
export PATH="$CARGO_HOME/bin:$FRESH/rustup-bin$path"
export PIP_CACHE_DIR="$FRESH/pip-cache"   # no wheels cached by earlier runs
# Nothing may point the build at shared state outside the clone.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_INSTALL_ROOT RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER
echo "fresh.sh: CARGO_HOME=$CARGO_HOME RUSTUP_HOME=$RUSTUP_HOME"
echo "fresh.sh: cargo is $(command -v cargo): $(cargo --version)"
for tool in cargo-deny cargo-fuzz; do
  if command -v "$tool" >/dev/null 2>&1; then
    echo "fresh.sh: warning: $tool is already on PATH ($(command -v "$tool")); .ci/run will not install it"
  fi
done

mkdir -p "$REPO/target"
LOG="$REPO/target/fresh.log"
start=$(date +%s)
set +e
(cd "$FRESH/main" && CI=true bash .ci/run) 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
took=$(($(date +%s) - start))
took="$took s ($((took / 60)) min $((took % 60)) s)"
if [ "$rc" -eq 0 ]; then
  if [ -n "${FRESH_KEEP:-}" ]; then echo "fresh.sh: kept $FRESH"; else rm -rf "$FRESH"; fi
  echo "fresh.sh: .ci/run PASSED from a fresh clone of $REV in $took; log in $LOG"
else
  echo "fresh.sh: .ci/run FAILED (exit $rc) from a fresh clone of $REV after $took;" \
    "log in $LOG, clone and cargo home kept in $FRESH (rm -rf it when done)"
fi
exit "$rc"
