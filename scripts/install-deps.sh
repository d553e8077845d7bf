#!/usr/bin/env bash
# Installs what the test suites need beyond Rust, Node and Python (idempotent, quick when done).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# Node packages of the conformance suite (the official client), exactly as locked.
if [ ! -d "$root/tests/conformance/node_modules" ] \
   || [ "$root/tests/conformance/package-lock.json" -nt "$root/tests/conformance/node_modules" ]; then
  (cd "$root/tests/conformance" && npm ci --no-audit --no-fund)
  touch "$root/tests/conformance/node_modules"
fi

# C compiler, sanitizers, valgrind, pkg-config and CMake for the C API suite.
"$root/scripts/install-c.sh"
"$root/scripts/install-csharp.sh"
"$root/scripts/install-python.sh"
"$root/scripts/install-bench.sh"  # the benchmark smoke run (scripts/bench.sh --smoke): PyPI clients venv, signalrs-client build
