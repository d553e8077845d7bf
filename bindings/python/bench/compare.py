#!/usr/bin/env python3
"""Side-by-side measurement against the test hub: invoke round-trip latency and receive rate of
signalr_native (blocking and asyncio) and of the pure-Python clients pysignalr and signalrcore.

    python3 -m venv target/bench-venv && target/bench-venv/bin/pip install pysignalr signalrcore
    SIGNALR_NATIVE_LIBRARY=target/release/libsignalr_native.so \\
        target/bench-venv/bin/python bindings/python/bench/compare.py [--hub target/release/test-hub]

All clients use WebSockets and the JSON protocol (the only combination every one of them has).
Latency: sequential invocations of Echo("ping"), after a warm-up; median and 99th percentile.
Receive rate: the hub's Flood(count, 64) sends `count` invocations as fast as the socket takes
them; the rate is count / time from the request to the last handler call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bindings" / "python"))


def summary(samples):
    samples = sorted(samples)
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99) - 1] * 1e6


# --- signalr_native -----------------------------------------------------------------------------


def native_blocking(url, n, flood):
    from signalr_native import HubConnectionBuilder

    received = threading.Event()
    count = [0]

    def on_flood(i, payload):
        count[0] += 1
        if count[0] == flood:
            received.set()

    with HubConnectionBuilder().with_url(url, transport="websockets").build() as c:
        c.on("Flood", on_flood)
        c.start()
        for _ in range(200):
            c.invoke("Echo", "ping")
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            c.invoke("Echo", "ping")
            samples.append(time.perf_counter() - t)
        t = time.perf_counter()
        c.send("Flood", flood, 64)
        received.wait(120)
        rate = flood / (time.perf_counter() - t)
        c.stop()
    return summary(samples), rate


def native_asyncio(url, n, flood):
    from signalr_native import HubConnectionBuilder

    async def main():
        received = asyncio.Event()
        count = [0]

        def on_flood(i, payload):
            count[0] += 1
            if count[0] == flood:
                received.set()

        async with HubConnectionBuilder().with_url(url, transport="websockets").build_async() as c:
            c.on("Flood", on_flood)
            await c.start()
            for _ in range(200):
                await c.invoke("Echo", "ping")
            samples = []
            for _ in range(n):
                t = time.perf_counter()
                await c.invoke("Echo", "ping")
                samples.append(time.perf_counter() - t)
            t = time.perf_counter()
            await c.send("Flood", flood, 64)
            await asyncio.wait_for(received.wait(), 120)
            rate = flood / (time.perf_counter() - t)
            await c.stop()
        return summary(samples), rate

    return asyncio.run(main())


# --- pysignalr (asyncio, pure Python) -----------------------------------------------------------


def pysignalr_client(url, n, flood):
    from pysignalr.client import SignalRClient

    async def main():
        client = SignalRClient(url)
        opened = asyncio.Event()
        received = asyncio.Event()
        count = [0]

        async def on_open():
            opened.set()

        async def on_flood(args):
            count[0] += 1
            if count[0] == flood:
                received.set()

        client.on_open(on_open)
        client.on("Flood", on_flood)
        runner = asyncio.create_task(client.run())
        await asyncio.wait_for(opened.wait(), 30)

        async def invoke():
            done = asyncio.Event()

            async def completed(message):
                done.set()

            await client.send("Echo", ["ping"], on_invocation=completed)
            await done.wait()

        for _ in range(200):
            await invoke()
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            await invoke()
            samples.append(time.perf_counter() - t)
        t = time.perf_counter()
        await client.send("Flood", [flood, 64])
        await asyncio.wait_for(received.wait(), 300)
        rate = flood / (time.perf_counter() - t)
        runner.cancel()
        try:
            await runner
        except (asyncio.CancelledError, Exception):
            pass
        return summary(samples), rate

    return asyncio.run(main())


# --- signalrcore (threads, pure Python) ---------------------------------------------------------


def signalrcore_client(url, n, flood):
    from signalrcore.hub_connection_builder import HubConnectionBuilder as CoreBuilder

    hub = CoreBuilder().with_url(url).build()
    opened = threading.Event()
    received = threading.Event()
    count = [0]

    def on_flood(args):
        count[0] += 1
        if count[0] == flood:
            received.set()

    hub.on_open(opened.set)
    hub.on("Flood", on_flood)
    hub.start()
    if not opened.wait(30):
        raise RuntimeError("signalrcore did not connect")

    def invoke():
        done = threading.Event()
        hub.send("Echo", ["ping"], on_invocation=lambda message: done.set())
        if not done.wait(30):
            raise RuntimeError("signalrcore: no completion")

    for _ in range(200):
        invoke()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        invoke()
        samples.append(time.perf_counter() - t)
    t = time.perf_counter()
    hub.send("Flood", [flood, 64])
    received.wait(300)
    rate = count[0] / (time.perf_counter() - t)
    hub.stop()
    return summary(samples), rate


CLIENTS = {
    "signalr_native (blocking)": native_blocking,
    "signalr_native (asyncio)": native_asyncio,
    "pysignalr": pysignalr_client,
    "signalrcore": signalrcore_client,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hub", default=str(ROOT / "target" / "release" / "test-hub"))
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--flood", type=int, default=20000)
    parser.add_argument("--only", action="append", help="run only these clients (by name prefix)")
    args = parser.parse_args()

    hub = subprocess.Popen([args.hub, "--port", "0", "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    url = hub.stdout.readline().decode().strip() + "/hub"
    import signalr_native

    print(f"hub {url} ({args.hub}); library {signalr_native._native.lib._name}")
    print(f"python {sys.version.split()[0]}; {args.invocations} invocations, flood of {args.flood} x 64 B; WebSockets, JSON")
    print(f"{'client':28} {'invoke median µs':>17} {'p99 µs':>9} {'receive msg/s':>14}")
    try:
        for name, run in CLIENTS.items():
            if args.only and not any(name.startswith(o) for o in args.only):
                continue
            try:
                (median, p99), rate = run(url, args.invocations, args.flood)
            except Exception as e:  # report and go on with the others
                print(f"{name:28} failed: {type(e).__name__}: {e}")
                continue
            print(f"{name:28} {median:17.1f} {p99:9.1f} {rate:14.0f}", flush=True)
    finally:
        hub.stdin.close()
        hub.wait(10)


if __name__ == "__main__":
    main()
