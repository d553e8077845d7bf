#!/usr/bin/env bash
# Builds the test hub and the Rust chat example, starts the hub on a free port and runs the
# example's demo against it (README's first command).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -p test-hub
cargo build --release --example chat
coproc HUB { exec "$root/target/release/test-hub" --port 0 --exit-on-stdin-eof; }
trap 'kill "$HUB_PID" 2>/dev/null || true' EXIT
read -r url <&"${HUB[0]}"
echo "test hub at $url"
"$root/target/release/examples/chat" --demo "$url/hub"
