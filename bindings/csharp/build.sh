#!/usr/bin/env bash
# Compiles the C# wrapper, its tests and the example with Mono's mcs (no .NET SDK needed) into
# OUT (default: <repo>/target/csharp), next to a copy of the native library they load.
#   bindings/csharp/build.sh [OUT]
# The native library comes from $SIGNALR_NATIVE_LIB, else target/debug/libsignalr_native.so
# (build it first with `cargo build`; this script never runs cargo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/csharp}
native=${SIGNALR_NATIVE_LIB:-$root/target/debug/libsignalr_native.so}
mkdir -p "$out"

# mcs implements C# up to 7.2; the project targets 7.3 (LangVersion in the csproj), so code that
# compiles here is valid 7.3. -nostdlib is not used: Mono's 4.x profile provides the netstandard2.0 API used.
mcs_flags=(-langversion:7.2 -unsafe -warnaserror+ -nowarn:1591 -debug -optimize+)
refs=(-r:System.dll -r:System.Core.dll -r:System.Runtime.Serialization.dll)

mcs "${mcs_flags[@]}" -target:library -out:"$out/SignalR.Native.dll" -doc:"$out/SignalR.Native.xml" \
  "${refs[@]}" $(find "$here/src" -name '*.cs' | sort)

mcs "${mcs_flags[@]}" -target:exe -out:"$out/SignalR.Native.Tests.exe" \
  "${refs[@]}" -r:"$out/SignalR.Native.dll" $(find "$here/tests" -name '*.cs' | sort)

mcs "${mcs_flags[@]}" -target:exe -out:"$out/Chat.exe" \
  "${refs[@]}" -r:"$out/SignalR.Native.dll" $(find "$root/examples/csharp" -name '*.cs' | sort)

# Mono resolves DllImport("signalr_native") to libsignalr_native.so beside the assembly.
if [ -f "$native" ]; then
  cp -f "$native" "$out/libsignalr_native.so"
else
  echo "build.sh: warning: $native not found; build it with cargo before running" >&2
fi
echo "built into $out"
