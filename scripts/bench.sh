#!/usr/bin/env bash
# The side-by-side benchmark of this library (Rust, C, Python, C# APIs) against the official
# Node client, pysignalr, signalrcore, signalrs-client and a bare tokio-tungstenite floor
# (benches/compare/; the driver is benches/compare/run.py).
#
#   scripts/bench.sh [--only CLIENT,...] [--measurements KEY,...]
#       release build, then the full run (about half an hour on 2 cores); writes
#       docs/benchmarks/{results.md,results.json,chart.png,machine.md}. Run it on a quiet machine.
#   scripts/bench.sh --smoke
#       every client and measurement with tiny counts against the debug build that
#       scripts/test-all.sh made (no build here); fails if any client fails. Output in target/bench-smoke.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python="$root/target/bench-venv/bin/python"

if [ "${1:-}" = "--smoke" ]; then
  shift
  for f in target/debug/test-hub target/debug/libsignalr_native.so target/debug/bench-floor target/debug/bench-signalr-native "$python"; do
    [ -e "$f" ] || { echo "bench smoke: $f is missing (run scripts/install-deps.sh and the shared cargo build first)" >&2; exit 1; }
  done
  exec "$python" benches/compare/run.py --smoke --profile debug --out target/bench-smoke "$@"
fi

"$root/scripts/install-deps.sh"  # Node packages (the official client), Mono, the PyPI clients, signalrs-client
cargo build --release --workspace --locked
exec "$python" benches/compare/run.py --profile release --out docs/benchmarks "$@"
