#!/usr/bin/env bash
# Runs every test suite of the project against the bundled test hub (README's second command).
# One `cargo build` is shared by all suites; each suite starts its own hub processes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh"

echo "== build (shared by every suite)"
cargo build --workspace --all-targets --locked
export TEST_HUB_BIN="$root/target/debug/test-hub"

echo "== C API: C and C++ suites (valgrind, ASan+UBSan), header check, C example"
"$root/scripts/test-c.sh"

echo "== Rust: client core and test hub"
cargo test --workspace --locked

echo "== Python package (bindings/python) against the test hub"
"$root/scripts/test-python.sh"

echo "== official @microsoft/signalr client against the test hub (conformance)"
(cd tests/conformance && node --test --test-concurrency=1)

echo "== C# wrapper (bindings/csharp) under Mono against the test hub"
"$root/scripts/test-csharp.sh"

echo "== side-by-side benchmark, smoke run (tiny counts; every client must run)"
"$root/scripts/bench.sh" --smoke
