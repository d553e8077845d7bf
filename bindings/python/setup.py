"""Build step of the wheel: put the native library inside the package (signalr_native/_lib/).

The library comes from, in order:
* ``SIGNALR_NATIVE_PREBUILT``: the path of a library built beforehand (CI builds it once);
* otherwise ``cargo build --release --lib`` in the Rust crate this package belongs to (found by
  walking up from this file, or given as ``SIGNALR_NATIVE_SOURCE``).

At run time ``SIGNALR_NATIVE_LIBRARY`` may point at another library instead of the shipped one.
All metadata lives in pyproject.toml.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent


def library_file_name() -> str:
    if sys.platform == "win32":
        return "signalr_native.dll"
    if sys.platform == "darwin":
        return "libsignalr_native.dylib"
    return "libsignalr_native.so"


def crate_root() -> Path:
    given = os.environ.get("SIGNALR_NATIVE_SOURCE")
    if given:
        return Path(given).resolve()
    for folder in [HERE, *HERE.parents]:
        manifest = folder / "Cargo.toml"
        if manifest.is_file() and 'name = "signalr-native"' in manifest.read_text():
            return folder
    sys.exit(
        "signalr-native: cannot find the Rust crate above bindings/python; set SIGNALR_NATIVE_SOURCE "
        "to its folder or SIGNALR_NATIVE_PREBUILT to a built library"
    )


def native_library() -> Path:
    prebuilt = os.environ.get("SIGNALR_NATIVE_PREBUILT")
    if prebuilt:
        path = Path(prebuilt)
        if not path.is_file():
            sys.exit(f"signalr-native: SIGNALR_NATIVE_PREBUILT={prebuilt} is not a file")
        return path
    root = crate_root()
    cargo = os.environ.get("CARGO", "cargo")
    command = [cargo, "build", "--release", "--lib", "-p", "signalr-native"]
    if (root / "Cargo.lock").is_file():
        command.append("--locked")
    print("signalr-native: building the native library:", " ".join(command), file=sys.stderr)
    subprocess.run(command, cwd=root, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    return target / "release" / library_file_name()


class build_with_library(build_py):
    def run(self):
        super().run()
        source = native_library()
        destination = Path(self.build_lib) / "signalr_native" / "_lib"
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination / library_file_name())


class platform_wheel(bdist_wheel):
    """The wheel holds a native library but no CPython extension: any Python 3, this platform."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(cmdclass={"build_py": build_with_library, "bdist_wheel": platform_wheel})
