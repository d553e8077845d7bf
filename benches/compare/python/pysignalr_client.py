"""pysignalr (PyPI; asyncio, pure Python) on the common command line (see common.py)."""

from __future__ import annotations

import asyncio
import time

from common import CONNECT_BATCH, IN_FLIGHT, SETTLE_S, cpu_seconds, emit, exit_now, parse_args, percentiles_us, rss_bytes
from pysignalr.client import SignalRClient
from pysignalr.protocol.json import JSONProtocol
from pysignalr.protocol.messagepack import MessagepackProtocol

args = parse_args()


class Connection:
    """A started pysignalr client: run() is a task; on_open marks the end of the start."""

    def __init__(self) -> None:
        protocol = MessagepackProtocol() if args.protocol == "messagepack" else JSONProtocol()
        self.client = SignalRClient(args.url, protocol=protocol)
        self.opened = asyncio.Event()

        async def on_open() -> None:
            self.opened.set()

        self.client.on_open(on_open)
        self.runner: asyncio.Task | None = None

    async def start(self) -> "Connection":
        self.runner = asyncio.create_task(self.client.run())
        opened = asyncio.create_task(self.opened.wait())
        done, _ = await asyncio.wait({opened, self.runner}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if opened not in done:
            opened.cancel()
            raise RuntimeError("pysignalr did not connect")
        return self

    async def stop(self) -> None:
        self.runner.cancel()
        try:
            await self.runner
        except (asyncio.CancelledError, Exception):
            pass

    async def invoke(self, method: str, arguments: list) -> None:
        done = asyncio.get_running_loop().create_future()

        async def completed(message) -> None:
            done.set_result(message)

        await self.client.send(method, arguments, on_invocation=completed)
        await done


async def invoke() -> None:
    c = await Connection().start()
    samples = []
    for i in range(args.count + args.warm_up):
        t = time.perf_counter()
        await c.invoke("Echo", [args.echo])
        if i >= args.warm_up:
            samples.append(time.perf_counter() - t)
    await c.stop()
    emit(**percentiles_us(samples))


async def pipelined() -> None:
    c = await Connection().start()

    async def run(n: int) -> None:
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while sent < n:
                sent += 1
                await c.invoke("Echo", [args.echo])

        await asyncio.gather(*(worker() for _ in range(min(IN_FLIGHT, n))))

    await run(args.warm_up)
    t = time.perf_counter()
    await run(args.count)
    elapsed = time.perf_counter() - t
    await c.stop()
    emit(calls_per_s=args.count / elapsed)


async def flood() -> None:
    c = Connection()
    received = 0
    all_received = asyncio.Event()
    expected = 0

    async def on_flood(arguments) -> None:
        nonlocal received
        received += 1
        if received == expected:
            all_received.set()

    c.client.on("Flood", on_flood)
    await c.start()

    async def run(n: int) -> tuple[float, float]:
        nonlocal received, expected
        received, expected = 0, n
        all_received.clear()
        cpu = cpu_seconds()
        t = time.perf_counter()
        await c.invoke("Flood", [n, args.payload])
        await asyncio.wait_for(all_received.wait(), 600)
        return time.perf_counter() - t, cpu_seconds() - cpu

    await run(args.warm_up)
    elapsed, cpu = await run(args.count)
    await c.stop()
    emit(msgs_per_s=args.count / elapsed, cpu_s=cpu)


async def connect() -> None:
    samples = []
    for i in range(args.count + args.warm_up):
        c = Connection()
        t = time.perf_counter()
        await c.start()
        if i >= args.warm_up:
            samples.append(time.perf_counter() - t)
        await c.stop()
    emit(**percentiles_us(samples))


async def idle() -> None:
    await Connection().start()  # warms the shared parts; not counted
    before = rss_bytes()
    opened = []
    while len(opened) < args.count:
        batch = [Connection() for _ in range(min(CONNECT_BATCH, args.count - len(opened)))]
        await asyncio.gather(*(c.start() for c in batch))
        opened.extend(batch)
    await asyncio.sleep(SETTLE_S)
    emit(bytes_per_conn=(rss_bytes() - before) / args.count)
    exit_now()


asyncio.run({"invoke": invoke, "pipelined": pipelined, "flood": flood, "connect": connect, "idle": idle}[args.scenario]())
