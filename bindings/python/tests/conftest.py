"""Fixtures: the real test hub (tests/hub, see tests/hub/SPEC.md) and the transport × protocol
matrix every feature test runs over."""

from __future__ import annotations

import asyncio
import gc
import time
import os
import subprocess
import threading
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

import signalr_native
from signalr_native import HubConnectionBuilder

ROOT = Path(__file__).resolve().parents[3]


def hub_binary() -> str:
    path = os.environ.get("TEST_HUB_BIN") or str(ROOT / "target" / "debug" / "test-hub")
    if not Path(path).is_file():
        raise RuntimeError(f"test hub binary not found at {path}: build it (cargo build -p test-hub) or set TEST_HUB_BIN")
    return path


class Hub:
    """One test-hub process; the URL of its hubs is ``hub.url + "/hub"``."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [hub_binary(), "--port", "0", "--exit-on-stdin-eof", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("http"):
            self.close()
            raise RuntimeError(f"test hub did not print its URL (got {line!r})")
        self.url = line

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    h = Hub()
    yield h
    h.close()


@pytest.fixture
def spawn_hub() -> Iterator[Callable[..., Hub]]:
    """A hub with its own command-line options, stopped after the test."""
    hubs: List[Hub] = []

    def spawn(*args: str) -> Hub:
        h = Hub(*args)
        hubs.append(h)
        return h

    yield spawn
    for h in hubs:
        h.close()


# MessagePack is binary; Server-Sent Events carry text only (the hub refuses that pairing).
MATRIX = [
    ("websockets", "json"),
    ("websockets", "messagepack"),
    ("server_sent_events", "json"),
    ("long_polling", "json"),
    ("long_polling", "messagepack"),
]


@pytest.fixture(params=MATRIX, ids=[f"{t}-{p}" for t, p in MATRIX])
def setup(request):
    """(transport, protocol) of one cell of the matrix."""
    return request.param


@pytest.fixture
def builder(hub, setup) -> Callable[..., HubConnectionBuilder]:
    """``builder(path="/hub", **with_url_options)`` configured for the current matrix cell."""
    transport, protocol = setup

    def make(path: str = "/hub", **options) -> HubConnectionBuilder:
        options.setdefault("transport", transport)
        return HubConnectionBuilder().with_url(hub.url + path, **options).with_hub_protocol(protocol)

    return make


@pytest.fixture
def run():
    """Runs a coroutine to completion on a fresh event loop (no pytest-asyncio needed)."""

    def run(coro, timeout: float = 60):
        return asyncio.run(asyncio.wait_for(coro, timeout))

    return run


class Events:
    """Collects values from callbacks on any thread; ``wait(n)`` blocks until n arrived."""

    def __init__(self) -> None:
        self.items: list = []
        self._cond = threading.Condition()

    def __call__(self, *args):
        with self._cond:
            self.items.append(args[0] if len(args) == 1 else args)
            self._cond.notify_all()

    def wait(self, count: int = 1, timeout: float = 20) -> list:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(f"expected {count} events, got {self.items}")
            return list(self.items)


@pytest.fixture
def events() -> Callable[[], Events]:
    return Events


@pytest.fixture(autouse=True)
def no_leaked_callbacks():
    """Every test must leave no registration behind: the library released all user data."""
    from signalr_native._callbacks import handles

    before = len(handles)
    yield
    # A connection closed from inside its own callback finishes its teardown (and releases its
    # user data) on the library thread just after; allow it a moment.
    deadline = time.monotonic() + 10
    while True:
        gc.collect()
        if len(handles) <= before or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert len(handles) <= before, "user data left registered after the test"


def pytest_report_header(config):
    return f"signalr_native {signalr_native.__version__}, library {signalr_native._native.lib._name}"
