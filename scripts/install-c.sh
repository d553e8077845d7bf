#!/usr/bin/env bash
# Installs what the C API suite (scripts/test-c.sh) needs: a C/C++ compiler with AddressSanitizer
# and UBSan (gcc/g++ ship libasan/libubsan), valgrind, pkg-config, CMake and python3 (header name
# check). Idempotent: apt-get runs only when a package is missing.
set -euo pipefail
packages=(gcc g++ make valgrind pkgconf cmake python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing for the C suite: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
