#!/usr/bin/env bash
# Installs Mono (compiler, runtime and the reference assemblies the C# wrapper and its tests use)
# from Debian's packages. Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  mono-mcs mono-runtime
  libmono-system-core4.0-cil
  libmono-system-runtime-serialization4.0-cil
  libmono-system-xml4.0-cil
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" \
    || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
fi
