#!/usr/bin/env bash
# The Python package's suite (bindings/python/tests) against the test hub. Uses the shared debug
# build of scripts/test-all.sh (target/debug/libsignalr_native.so and target/debug/test-hub):
# no second cargo build, nothing installed — the package is imported from the source tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

export SIGNALR_NATIVE_LIBRARY="${SIGNALR_NATIVE_LIBRARY:-$root/target/debug/libsignalr_native.so}"
export TEST_HUB_BIN="${TEST_HUB_BIN:-$root/target/debug/test-hub}"
for f in "$SIGNALR_NATIVE_LIBRARY" "$TEST_HUB_BIN"; do
  [ -f "$f" ] || { echo "test-python: $f is missing; run cargo build --workspace first" >&2; exit 1; }
done

cd "$root/bindings/python"
export PYTHONPATH="$root/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
python3 -m pytest -p no:cacheprovider -q "$@"  # testpaths = tests (pyproject.toml)
