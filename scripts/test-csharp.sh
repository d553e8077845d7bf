#!/usr/bin/env bash
# The C# wrapper's suite: compiles bindings/csharp (library, tests, example) with Mono's mcs and
# runs the tests and the chat example's --demo against the test hub. Uses the shared cargo build
# (target/debug/libsignalr_native.so and target/debug/test-hub); never runs cargo itself.
#   scripts/test-csharp.sh [test-name-substring ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/target/csharp"
export TEST_HUB_BIN=${TEST_HUB_BIN:-$root/target/debug/test-hub}
for f in "$root/target/debug/libsignalr_native.so" "$TEST_HUB_BIN"; do
  [ -f "$f" ] || { echo "test-csharp: $f missing: run cargo build --workspace first" >&2; exit 1; }
done

echo "== C# wrapper under Mono (bindings/csharp)"
"$root/bindings/csharp/build.sh" "$out"
mono --debug "$out/SignalR.Native.Tests.exe" "$@"

if [ $# -eq 0 ]; then
  echo "== C# chat example (--demo) against the test hub"
  coproc HUB { exec "$TEST_HUB_BIN" --port 0 --exit-on-stdin-eof; }
  read -r base <&"${HUB[0]}"
  mono --debug "$out/Chat.exe" --demo --name csharp-demo "$base/hub"
  mono --debug "$out/Chat.exe" --demo --messagepack --name csharp-demo "$base/hub"
  eval "exec ${HUB[1]}>&-"   # EOF on the hub's stdin: it exits
  wait "$HUB_PID" 2>/dev/null || true
fi
