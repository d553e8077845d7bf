"""signalrcore (PyPI; threads, pure Python) on the common command line (see common.py)."""

from __future__ import annotations

import logging
import socket
import threading
import time

from common import CONNECT_BATCH, IN_FLIGHT, SETTLE_S, cpu_seconds, emit, exit_now, parse_args, percentiles_us, rss_bytes
from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.types import HttpTransportType, HubProtocolEncoding

args = parse_args()
TIMEOUT_S = 600


def connection():
    builder = HubConnectionBuilder().with_url(args.url, options={"transport": HttpTransportType.web_sockets})
    builder.configure_logging(logging.CRITICAL)
    if args.protocol == "messagepack":
        builder.with_hub_protocol(HubProtocolEncoding.binary)
    hub = builder.build()
    hub.opened = threading.Event()
    hub.on_open(hub.opened.set)
    return hub


def start(hub):
    hub.start()
    if not hub.opened.wait(30):
        raise RuntimeError("signalrcore did not connect")
    return hub


def stop(hub):
    """hub.stop() closes the socket while its receive thread is blocked in recv(), which on Linux
    does not wake it: stop() then waits for the next frame (the hub's ping, up to 15 s later). A
    shutdown() first wakes the receive thread (a work-around of signalrcore's bug)."""
    try:
        hub.transport._client.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    hub.stop()


def invoke_blocking(hub, method, arguments):
    done = threading.Event()
    hub.send(method, arguments, on_invocation=lambda message: done.set())
    if not done.wait(TIMEOUT_S):
        raise RuntimeError("signalrcore: no completion")


def invoke():
    hub = start(connection())
    samples = []
    for i in range(args.count + args.warm_up):
        t = time.perf_counter()
        invoke_blocking(hub, "Echo", [args.echo])
        if i >= args.warm_up:
            samples.append(time.perf_counter() - t)
    stop(hub)
    emit(**percentiles_us(samples))


def pipelined():
    hub = start(connection())

    def run(n):
        # Each completion (on the receive thread) sends the next call while calls remain.
        lock = threading.Lock()
        state = {"sent": 0, "done": 0}
        finished = threading.Event()

        def send_next():
            with lock:
                if state["sent"] == n:
                    return
                state["sent"] += 1
            hub.send("Echo", [args.echo], on_invocation=completed)

        def completed(message):
            with lock:
                state["done"] += 1
                last = state["done"] == n
            if last:
                finished.set()
            else:
                send_next()

        for _ in range(min(IN_FLIGHT, n)):
            send_next()
        if not finished.wait(TIMEOUT_S):
            raise RuntimeError("signalrcore: pipelined calls did not finish")

    run(args.warm_up)
    t = time.perf_counter()
    run(args.count)
    elapsed = time.perf_counter() - t
    stop(hub)
    emit(calls_per_s=args.count / elapsed)


def flood():
    hub = connection()
    state = {"received": 0, "expected": 0}
    all_received = threading.Event()

    def on_flood(arguments):
        state["received"] += 1
        if state["received"] == state["expected"]:
            all_received.set()

    hub.on("Flood", on_flood)
    start(hub)

    def run(n):
        state["received"], state["expected"] = 0, n
        all_received.clear()
        cpu = cpu_seconds()
        t = time.perf_counter()
        invoke_blocking(hub, "Flood", [n, args.payload])
        if not all_received.wait(TIMEOUT_S):
            raise RuntimeError(f"signalrcore: received {state['received']} of {n}")
        return time.perf_counter() - t, cpu_seconds() - cpu

    run(args.warm_up)
    elapsed, cpu = run(args.count)
    stop(hub)
    emit(msgs_per_s=args.count / elapsed, cpu_s=cpu)


def connect():
    samples = []
    for i in range(args.count + args.warm_up):
        hub = connection()
        t = time.perf_counter()
        start(hub)
        if i >= args.warm_up:
            samples.append(time.perf_counter() - t)
        stop(hub)
    emit(**percentiles_us(samples))


def idle():
    start(connection())  # warms the shared parts; not counted
    before = rss_bytes()
    opened = []
    while len(opened) < args.count:
        # start() blocks until the WebSocket is open; the handshakes of a batch overlap.
        batch = [connection() for _ in range(min(CONNECT_BATCH, args.count - len(opened)))]
        for hub in batch:
            hub.start()
        for hub in batch:
            if not hub.opened.wait(60):
                raise RuntimeError("signalrcore did not connect")
        opened.extend(batch)
    time.sleep(SETTLE_S)
    emit(bytes_per_conn=(rss_bytes() - before) / args.count)
    exit_now()


{"invoke": invoke, "pipelined": pipelined, "flood": flood, "connect": connect, "idle": idle}[args.scenario]()
