"""`pip install ./bindings/python` into a fresh virtual environment: the package ships the native
library inside itself and works from there, with nothing of the source tree on the path.

The cargo case builds the release library (as a user's install does); the prebuilt case installs
the library that ``SIGNALR_NATIVE_PREBUILT`` names (here the debug build the suite runs on)."""

from __future__ import annotations

import os
import filecmp
import subprocess
import venv
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]

# Run inside the new environment, from a folder outside the source tree.
CHECK = """
import sys
from pathlib import Path
import signalr_native
from signalr_native import _native
package = Path(signalr_native.__file__).resolve().parent
assert Path(sys.prefix) in package.parents, f"imported from {package}, not the environment"
loaded = Path(_native.lib._name).resolve()
assert loaded == package / "_lib" / loaded.name, f"loaded {loaded}, not the shipped library"
with signalr_native.HubConnectionBuilder().with_url(sys.argv[1]).build() as c:
    c.start()
    print(c.invoke("Echo", "installed"))
print(loaded)
"""


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SIGNALR_NATIVE_LIBRARY", "SIGNALR_NATIVE_PREBUILT")}
    env.update(extra)
    return env


@pytest.mark.parametrize("source", ["cargo", "prebuilt"])
def test_pip_install_ships_the_library(source, hub, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or PACKAGE.parents[1] / "target")
    extra = {}
    if source == "prebuilt":
        extra["SIGNALR_NATIVE_PREBUILT"] = os.environ.get("SIGNALR_NATIVE_LIBRARY") or str(
            target / "debug" / "libsignalr_native.so"
        )
        expected = Path(extra["SIGNALR_NATIVE_PREBUILT"])
    else:
        expected = target / "release" / "libsignalr_native.so"  # what setup.py's cargo build made
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-cache-dir", "--quiet", str(PACKAGE)],
        env=clean_env(**extra),
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    run = subprocess.run(
        [python, "-c", CHECK, hub.url + "/hub"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    answer, loaded = run.stdout.strip().splitlines()
    assert answer == "installed"
    assert filecmp.cmp(loaded, expected, shallow=False), f"{loaded} differs from {expected}"
