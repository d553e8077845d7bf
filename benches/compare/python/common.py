"""What the Python benchmark programs of benches/compare share: the command line, the figures
printed (one JSON line on stdout) and the process measurements. The scenarios are described in
benches/compare/rust/src/lib.rs:

    python PROGRAM invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
from dataclasses import dataclass

IN_FLIGHT = 100
CONNECT_BATCH = 100
SETTLE_S = 0.5
SCENARIOS = ("invoke", "pipelined", "flood", "connect", "idle")


@dataclass
class Args:
    scenario: str
    url: str
    count: int
    payload: int
    protocol: str

    @property
    def warm_up(self) -> int:
        return max(1, self.count // 10)

    @property
    def echo(self) -> str:
        return "x" * self.payload


def parse_args() -> Args:
    argv = sys.argv[1:]
    if len(argv) != 5 or argv[0] not in SCENARIOS or argv[4] not in ("json", "messagepack"):
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(SCENARIOS)} HUB_URL COUNT PAYLOAD_BYTES json|messagepack")
    return Args(argv[0], argv[1], int(argv[2]), int(argv[3]), argv[4])


def emit(**figures: float) -> None:
    print(json.dumps(figures), flush=True)


def unsupported(why: str) -> None:
    print(json.dumps({"unsupported": why}), flush=True)
    sys.exit(0)


def percentiles_us(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    at = lambda p: samples[round((len(samples) - 1) * p)] * 1e6  # noqa: E731
    return {"p50_us": at(0.5), "p99_us": at(0.99)}


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def rss_bytes() -> int:
    gc.collect()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def exit_now() -> None:
    """Ends the process without closing every connection one by one (idle scenario)."""
    sys.stdout.flush()
    os._exit(0)
