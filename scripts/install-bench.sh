#!/usr/bin/env bash
# What the side-by-side benchmark (scripts/bench.sh, and its smoke run in the test command) needs
# beyond the workspace build; idempotent and quick when done:
# - a venv at target/bench-venv with the PyPI clients and matplotlib (for the chart);
# - the signalrs-client bench program (its own Cargo project, outside the workspace) built once.
# The official Node client comes from tests/conformance/node_modules and Mono from install-csharp.sh;
# install-deps.sh installs them and runs this script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/bench-venv"
requirements="$root/benches/compare/python/requirements.txt"

if ! python3 -c "import ensurepip" 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$venv/.installed" ] || [ "$requirements" -nt "$venv/.installed" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$venv/.installed"
fi

# signalrs-client needs OpenSSL headers (it links native-tls).
if ! pkg-config --exists openssl 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config
fi
(cd "$root/benches/compare/signalrs" \
  && CARGO_TARGET_DIR="$root/target/signalrs" cargo build --release --locked --quiet)
