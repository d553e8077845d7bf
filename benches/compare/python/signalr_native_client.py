"""This library through its Python package (bindings/python, import signalr_native) on the common
command line (see common.py). The blocking HubConnection for sequential calls, the receive rate
and set-up; the asyncio AsyncHubConnection where calls overlap (pipelined invokes, and starting
the idle connections 100 at a time). SIGNALR_NATIVE_LIBRARY selects the library build."""

from __future__ import annotations

import asyncio
import threading
import time

from common import CONNECT_BATCH, IN_FLIGHT, SETTLE_S, cpu_seconds, emit, exit_now, parse_args, percentiles_us, rss_bytes
from signalr_native import HubConnectionBuilder

args = parse_args()


def builder():
    return HubConnectionBuilder().with_url(args.url, transport="websockets").with_hub_protocol(args.protocol)


def invoke():
    with builder().build() as c:
        c.start()
        samples = []
        for i in range(args.count + args.warm_up):
            t = time.perf_counter()
            c.invoke("Echo", args.echo)
            if i >= args.warm_up:
                samples.append(time.perf_counter() - t)
    emit(**percentiles_us(samples))


async def pipelined():
    async with builder().build_async() as c:
        await c.start()

        async def run(n):
            sent = 0

            async def worker():
                nonlocal sent
                while sent < n:
                    sent += 1
                    await c.invoke("Echo", args.echo)

            await asyncio.gather(*(worker() for _ in range(min(IN_FLIGHT, n))))

        await run(args.warm_up)
        t = time.perf_counter()
        await run(args.count)
        elapsed = time.perf_counter() - t
    emit(calls_per_s=args.count / elapsed)


def flood():
    state = {"received": 0, "expected": 0}
    all_received = threading.Event()

    def on_flood(i, payload):
        state["received"] += 1
        if state["received"] == state["expected"]:
            all_received.set()

    with builder().build() as c:
        c.on("Flood", on_flood)
        c.start()

        def run(n):
            state["received"], state["expected"] = 0, n
            all_received.clear()
            cpu = cpu_seconds()
            t = time.perf_counter()
            c.invoke("Flood", n, args.payload)
            # The handlers run on the library's callback thread, maybe still after the result.
            if not all_received.wait(600):
                raise RuntimeError(f"received {state['received']} of {n}")
            return time.perf_counter() - t, cpu_seconds() - cpu

        run(args.warm_up)
        elapsed, cpu = run(args.count)
    emit(msgs_per_s=args.count / elapsed, cpu_s=cpu)


def connect():
    samples = []
    for i in range(args.count + args.warm_up):
        with builder().build() as c:
            t = time.perf_counter()
            c.start()
            if i >= args.warm_up:
                samples.append(time.perf_counter() - t)
    emit(**percentiles_us(samples))


async def idle():
    warm = builder().build_async()  # warms the shared parts; not counted
    await warm.start()
    before = rss_bytes()
    opened = []
    while len(opened) < args.count:
        batch = [builder().build_async() for _ in range(min(CONNECT_BATCH, args.count - len(opened)))]
        await asyncio.gather(*(c.start() for c in batch))
        opened.extend(batch)
    await asyncio.sleep(SETTLE_S)
    emit(bytes_per_conn=(rss_bytes() - before) / args.count)
    exit_now()


run = {"invoke": invoke, "pipelined": pipelined, "flood": flood, "connect": connect, "idle": idle}[args.scenario]
if asyncio.iscoroutinefunction(run):
    asyncio.run(run())
else:
    run()
