#!/usr/bin/env python3
"""A small chat client (asyncio).

    python3 examples/python/chat.py [--demo] [--messagepack] [--name NAME] [URL]

Connects to the hub at URL (default http://127.0.0.1:5000/hub), prints every `Message` the hub
broadcasts, and broadcasts each line typed on stdin. With --demo it sends a few messages, waits
for them to come back and exits.

Run from a checkout it uses target/{release,debug}/libsignalr_native.so (or
SIGNALR_NATIVE_LIBRARY); installed with pip it uses the packaged library.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

try:
    import signalr_native
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
    import signalr_native

from signalr_native import HubConnectionBuilder, SignalRError

DEMO_LINES = ["hello from signalr-native (Python)", "two hub protocols, one client", "bye"]


async def chat(url: str, name: str, protocol: str, demo: bool) -> None:
    connection = (
        HubConnectionBuilder()
        .with_url(url)
        .with_hub_protocol(protocol)
        .with_automatic_reconnect()
        .build_async()
    )
    mine = asyncio.Queue()

    @connection.on("Message")
    def message(user: str, text: str) -> None:
        print(f"{user}: {text}", flush=True)
        if user == name:
            mine.put_nowait(text)

    connection.on_reconnecting(lambda e: print(f"connection lost ({e}); reconnecting…", file=sys.stderr))
    connection.on_reconnected(lambda _: print("reconnected", file=sys.stderr))
    connection.on_close(lambda e: print(f"connection closed{': ' + str(e) if e else ''}", file=sys.stderr))

    async with connection:
        await connection.start()
        print(
            f"connected to {url} as {name} ({protocol}, {connection.transport.name}); "
            f"connection id {connection.connection_id}",
            file=sys.stderr,
        )
        if demo:
            for line in DEMO_LINES:
                await connection.invoke("Broadcast", "Message", name, line)
            for _ in DEMO_LINES:  # every broadcast comes back to us too
                await asyncio.wait_for(mine.get(), 10)
            return
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if line.strip():
                await connection.send("Broadcast", "Message", name, line.rstrip("\n"))


def main() -> int:
    parser = argparse.ArgumentParser(description="signalr-native chat example")
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:5000/hub")
    parser.add_argument("--demo", action="store_true", help="send a few messages, check they come back, exit")
    parser.add_argument("--messagepack", action="store_true", help="use the MessagePack hub protocol")
    parser.add_argument("--name", default=f"user{os.getpid()}")
    args = parser.parse_args()
    try:
        asyncio.run(chat(args.url, args.name, "messagepack" if args.messagepack else "json", args.demo))
    except (SignalRError, asyncio.TimeoutError) as e:
        print(f"chat: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
