#!/usr/bin/env bash
# What the Python package's suite needs: pytest (the machine image usually has it already).
set -euo pipefail
if ! python3 -c "import pytest" 2>/dev/null; then
  python3 -m pip install --user --quiet pytest
fi
