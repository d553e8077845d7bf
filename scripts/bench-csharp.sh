#!/usr/bin/env bash
# Measures invoke round-trip latency and receive rate through the C# wrapper under Mono beside the
# same figures straight on the C API, against one test hub, in one run. Uses the release build of
# the library (cargo build --release -p signalr-native --lib -p test-hub) when present, else debug.
#   scripts/bench-csharp.sh [invokes] [flood_count] [payload_bytes]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
profile=release
[ -f "$root/target/release/libsignalr_native.so" ] || profile=debug
lib="$root/target/$profile/libsignalr_native.so"
hub_bin=${TEST_HUB_BIN:-$root/target/$profile/test-hub}
out="$root/target/csharp-bench"
mkdir -p "$out"
invokes=${1:-2000}; flood=${2:-100000}; payload=${3:-32}

SIGNALR_NATIVE_LIB="$lib" "$root/bindings/csharp/build.sh" "$out" >/dev/null
mcs -langversion:7.2 -optimize+ -out:"$out/Bench.exe" -r:"$out/SignalR.Native.dll" "$root/bindings/csharp/bench/Bench.cs"
cc -O2 -I"$root/include" -o "$out/capi_bench" "$root/bindings/csharp/bench/capi_bench.c" \
  -L"$(dirname "$lib")" -lsignalr_native -Wl,-rpath,"$(dirname "$lib")" -lpthread

coproc HUB { exec "$hub_bin" --port 0 --exit-on-stdin-eof; }
read -r base <&"${HUB[0]}"
echo "library: $profile build; hub: $base; $invokes invokes, $flood messages of $payload bytes"
for protocol in json messagepack; do
  "$out/capi_bench" "$base/hub" "$protocol" "$invokes" "$flood" "$payload"
  mono "$out/Bench.exe" "$base/hub" "$protocol" "$invokes" "$flood" "$payload"
done
eval "exec ${HUB[1]}>&-"
wait "$HUB_PID" 2>/dev/null || true
