#!/usr/bin/env python3
"""Runs the side-by-side benchmark: every client program of benches/compare against a fresh test
hub per measurement, and writes results.json, results.md, chart.png and machine.md.

    run.py [--smoke] [--profile debug|release] [--out DIR] [--only CLIENT,...]

Called by scripts/bench.sh (which builds first). Every program takes
`SCENARIO HUB_URL COUNT PAYLOAD_BYTES PROTOCOL` and prints one JSON line of figures (see
benches/compare/rust/src/lib.rs). `--smoke` runs every client and measurement with tiny counts
and fails (exit 1) when any of them fails: the figures mean nothing then, only that nothing rotted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "benches" / "compare"
VENV_PYTHON = ROOT / "target" / "bench-venv" / "bin" / "python"
STARTED = time.monotonic()


# --- clients ------------------------------------------------------------------------------------


@dataclass
class Client:
    key: str
    label: str
    note: str = ""
    ours: bool = False

    def command(self, profile: str) -> tuple[list[str], dict[str, str]]:
        target = ROOT / "target" / profile
        lib_env = {"SIGNALR_NATIVE_LIBRARY": str(target / "libsignalr_native.so"), "LD_LIBRARY_PATH": str(target)}
        return {
            "floor": ([str(target / "bench-floor")], {}),
            "rust": ([str(target / "bench-signalr-native")], {}),
            "c": ([str(target / "bench-c")], lib_env),
            "c_batch": ([str(target / "bench-c")], {**lib_env, "BENCH_C_BATCH": "1"}),
            "python": ([str(VENV_PYTHON), str(HERE / "python" / "signalr_native_client.py")],
                       {**lib_env, "PYTHONPATH": str(ROOT / "bindings" / "python")}),
            "csharp": (["mono", "--server", str(ROOT / "target" / "bench-csharp" / profile / "bench-csharp.exe")], lib_env),
            "node": (["node", "--expose-gc", str(HERE / "node" / "bench.mjs")], {}),
            "pysignalr": ([str(VENV_PYTHON), str(HERE / "python" / "pysignalr_client.py")], {}),
            "signalrcore": ([str(VENV_PYTHON), str(HERE / "python" / "signalrcore_client.py")], {}),
            "signalrs": ([str(ROOT / "target" / "signalrs" / "release" / "bench-signalrs")], {}),
        }[self.key]


CLIENTS = [
    Client("floor", "floor: bare tokio-tungstenite", "WebSocket + hand-made negotiate/handshake, every record fully parsed (serde_json / rmp-serde into a JSON value): the least CPU any client can spend; its memory figure is tokio-tungstenite's default buffers, not a floor, and its invoke latency is that of a tokio task, which sleeps between calls (the _blocking calls of the C API and the blocking Python client spin up to 100 µs first, so they can answer sooner)"),
    Client("rust", "signalr-native, Rust API", "HubConnection from a tokio program; a closure handler", ours=True),
    Client("c", "signalr-native, C API", "C program over include/signalr.h; _blocking calls for sequential invokes (they spin up to 100 µs before they sleep)", ours=True),
    Client("c_batch", "signalr-native, C API, batch handler", "the same C program receiving through signalr_connection_on_batch (the calls already queued in one callback, as the Python package receives); only the receive rows (n/a elsewhere: identical to the C API row)", ours=True),
    Client("python", "signalr-native, Python", "bindings/python (ctypes over the C API): the blocking HubConnection; AsyncHubConnection (asyncio) for the pipelined calls and for starting the idle connections 100 at a time", ours=True),
    Client("csharp", "signalr-native, C# (Mono)", "bindings/csharp over the C API, run by Mono; typed InvokeAsync<string> and On<int, string>", ours=True),
    Client("node", "@microsoft/signalr (Node)", "the official JavaScript client, Node"),
    Client("pysignalr", "pysignalr (Python)", "PyPI, asyncio"),
    Client("signalrcore", "signalrcore (Python)", "PyPI, threads"),
    Client("signalrs", "signalrs-client (Rust)", "crates.io; JSON only (MessagePack rows n/a); no stop (a client is dropped); it builds a new reqwest client for every negotiate"),
]
REFERENCE = "node"


def prepare(clients: list[Client], profile: str) -> dict[str, str]:
    """Compiles the C and C# programs (seconds); returns {client: why it cannot run} for the rest."""
    problems: dict[str, str] = {}
    target = ROOT / "target" / profile
    for c in clients:
        try:
            if c.key in ("c", "c_batch"):  # one program: BENCH_C_BATCH picks the handler
                subprocess.run(
                    ["cc", "-O2", "-std=c11", "-Wall", "-Werror", f"-I{ROOT / 'include'}", str(HERE / "c" / "bench.c"),
                     "-o", str(target / "bench-c"), f"-L{target}", "-lsignalr_native", f"-Wl,-rpath,{target}", "-lpthread"],
                    check=True, capture_output=True, text=True)
            elif c.key == "csharp":
                out = ROOT / "target" / "bench-csharp" / profile
                out.mkdir(parents=True, exist_ok=True)
                sources = sorted(str(p) for p in (ROOT / "bindings" / "csharp" / "src").glob("*.cs"))
                subprocess.run(
                    ["mcs", "-langversion:7.2", "-optimize+", "-unsafe", "-nologo", "-r:System.dll", "-r:System.Core.dll",
                     "-r:System.Runtime.Serialization.dll",
                     f"-out:{out / 'bench-csharp.exe'}", str(HERE / "csharp" / "Bench.cs"), *sources],
                    check=True, capture_output=True, text=True)
            elif c.key == "node" and not (ROOT / "tests" / "conformance" / "node_modules" / "@microsoft" / "signalr").is_dir():
                problems[c.key] = "tests/conformance/node_modules lacks @microsoft/signalr: run scripts/install-deps.sh"
                continue
            program = Path(next(a for a in reversed(c.command(profile)[0]) if a.startswith("/")))
            if not program.exists():
                problems[c.key] = f"{program} is missing"
        except subprocess.CalledProcessError as e:
            problems[c.key] = f"build failed: {(e.stderr or e.stdout).strip()[:2000]}"
        except FileNotFoundError as e:
            problems[c.key] = f"tool missing: {e}"
    return problems


# --- measurements -------------------------------------------------------------------------------


@dataclass
class Measurement:
    key: str
    scenario: str
    count: int
    smoke_count: int
    payload: int
    protocol: str
    title: str
    # Rounds of the measurement: each round runs every client once, and a figure is the median of
    # its rounds. The machine's speed drifts within minutes; interleaved rounds let every client
    # see the same drift, so ratios compare like with like. One round where a run takes minutes.
    rounds: int = 3

    def rounds_for(self, smoke: bool) -> int:
        return min(self.rounds, 2) if smoke else self.rounds  # the smoke run still takes a median


MEASUREMENTS = [
    Measurement("invoke", "invoke", 10_000, 50, 16, "json", "sequential Echo invoke, 16-char string"),
    Measurement("pipelined", "pipelined", 50_000, 300, 16, "json", "pipelined Echo invokes, 100 in flight"),
    Measurement("flood_json_100", "flood", 1_000_000, 1_000, 100, "json", "Flood receive, JSON, 100 B"),
    Measurement("flood_msgpack_100", "flood", 1_000_000, 1_000, 100, "messagepack", "Flood receive, MessagePack, 100 B"),
    Measurement("flood_json_10k", "flood", 50_000, 50, 10_240, "json", "Flood receive, JSON, 10 KB"),
    Measurement("flood_msgpack_10k", "flood", 50_000, 50, 10_240, "messagepack", "Flood receive, MessagePack, 10 KB"),
    Measurement("connect", "connect", 200, 5, 0, "json", "connection set-up (negotiate, WebSocket, handshake)"),
    Measurement("idle_1k", "idle", 1_000, 20, 0, "json", "resident memory per idle connection, 1,000 connections", 1),
    Measurement("idle_10k", "idle", 10_000, 40, 0, "json", "resident memory per idle connection, 10,000 connections", 1),
]

# Figures derived from the programs' output: key → (measurement, field, unit, higher is better, label).
FIGURES = {
    "invoke_p50_us": ("invoke", "p50_us", "µs", False, "invoke p50"),
    "invoke_p99_us": ("invoke", "p99_us", "µs", False, "invoke p99"),
    "pipelined_calls_per_s": ("pipelined", "calls_per_s", "calls/s", True, "pipelined invokes"),
    "flood_json_100_msgs_per_s": ("flood_json_100", "msgs_per_s", "msg/s", True, "receive JSON 100 B"),
    "flood_msgpack_100_msgs_per_s": ("flood_msgpack_100", "msgs_per_s", "msg/s", True, "receive MessagePack 100 B"),
    "flood_json_10k_msgs_per_s": ("flood_json_10k", "msgs_per_s", "msg/s", True, "receive JSON 10 KB"),
    "flood_msgpack_10k_msgs_per_s": ("flood_msgpack_10k", "msgs_per_s", "msg/s", True, "receive MessagePack 10 KB"),
    "cpu_s_per_100k_json_100": ("flood_json_100", "cpu_per_100k", "CPU s", False, "CPU per 100k msgs, JSON 100 B"),
    "cpu_s_per_100k_msgpack_100": ("flood_msgpack_100", "cpu_per_100k", "CPU s", False, "CPU per 100k msgs, MessagePack 100 B"),
    "connect_p50_us": ("connect", "p50_us", "µs", False, "connect p50"),
    "connect_p99_us": ("connect", "p99_us", "µs", False, "connect p99"),
    "idle_1k_bytes_per_conn": ("idle_1k", "bytes_per_conn", "B", False, "memory/conn at 1,000"),
    "idle_10k_bytes_per_conn": ("idle_10k", "bytes_per_conn", "B", False, "memory/conn at 10,000"),
}


class Hub:
    """A fresh test hub for one measurement (ends when its stdin closes)."""

    def __init__(self, binary: Path):
        self.process = subprocess.Popen([str(binary), "--port", "0", "--exit-on-stdin-eof"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.process.stdout.readline().strip() + "/hub"
        if not self.url.startswith("http"):
            raise RuntimeError(f"the test hub printed no URL: {self.url!r}")

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_one(client: Client, m: Measurement, count: int, hub_binary: Path, profile: str, timeout: float) -> dict:
    """{"status": "ok", "figures": {...}} | {"status": "unsupported"|"failed", "reason": ...}"""
    argv, extra_env = client.command(profile)
    hub = Hub(hub_binary)
    try:
        cmd = argv + [m.scenario, hub.url, str(count), str(m.payload), m.protocol]
        started = time.monotonic()
        proc = subprocess.run(cmd, env={**os.environ, **extra_env}, capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - started
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"timed out after {timeout:.0f} s"}
    finally:
        hub.close()
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        return {"status": "failed", "reason": f"exit {proc.returncode}: {tail}"}
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"status": "failed", "reason": f"not a JSON line: {lines[-1][:300]}"}
    if "unsupported" in figures:
        return {"status": "unsupported", "reason": figures["unsupported"]}
    if "cpu_s" in figures:
        figures["cpu_per_100k"] = figures["cpu_s"] * 100_000 / count
    return {"status": "ok", "figures": figures, "count": count, "seconds": round(seconds, 2)}


def merge_round(previous: dict | None, run: dict) -> dict:
    """The runs of one client and measurement so far, with `run` (the latest round) added: every
    round's figures under "rounds", the median of each figure under "figures". A failed or
    unsupported round decides the whole."""
    if previous is not None and previous["status"] != "ok":
        return previous
    if run["status"] != "ok":
        return run
    rounds = (previous["rounds"] if previous else []) + [run["figures"]]
    fields = [f for f in rounds[0] if all(isinstance(r.get(f), (int, float)) for r in rounds)]
    return {"status": "ok", "figures": {f: statistics.median(r[f] for r in rounds) for f in fields}, "rounds": rounds,
            "count": run["count"], "seconds": round((previous["seconds"] if previous else 0) + run["seconds"], 2)}


# --- machine ------------------------------------------------------------------------------------


def capture(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "(unavailable)"


def top_snapshot() -> str:
    """The busiest processes over half a second (top's second sample: the first has no interval)."""
    samples = capture(["top", "-b", "-n", "2", "-d", "0.5", "-o", "%CPU", "-w", "120"]).split("\ntop - ")
    return "\n".join(("top - " + samples[-1]).splitlines()[:14]) if len(samples) > 1 else "(top unavailable)"


def pip_version(name: str) -> str:
    if not VENV_PYTHON.exists():
        return "(no venv)"
    return capture([str(VENV_PYTHON), "-c", f"import importlib.metadata as m; print(m.version('{name}'))"]) or "(missing)"


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    mem_kib = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    node_pkg = ROOT / "tests" / "conformance" / "node_modules" / "@microsoft" / "signalr" / "package.json"
    signalrs_lock = (HERE / "signalrs" / "Cargo.lock").read_text()
    signalrs_version = signalrs_lock.split('name = "signalrs-client"\nversion = "', 1)[-1].split('"', 1)[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": capture(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "versions": {
            "rustc": capture(["rustc", "--version"]),
            "cc": capture(["cc", "--version"]).splitlines()[0] if shutil.which("cc") else "(missing)",
            "node": capture(["node", "--version"]),
            "@microsoft/signalr": json.loads(node_pkg.read_text())["version"] if node_pkg.exists() else "(missing)",
            "python": capture([str(VENV_PYTHON), "--version"]) if VENV_PYTHON.exists() else "(no venv)",
            "pysignalr": pip_version("pysignalr"),
            "signalrcore": pip_version("signalrcore"),
            "signalrs-client": signalrs_version,
            "mono": (capture(["mono", "--version"]).splitlines() or ["(missing)"])[0],
            "signalr-native commit": capture(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        },
        "file_descriptor_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


# --- output -------------------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    if unit in ("msg/s", "calls/s"):
        return f"{value:,.0f}"
    if unit == "µs":
        return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"
    if unit == "B":
        return f"{value / 1024:,.1f} KB"
    if unit == "CPU s":
        return f"{value:.3f}"
    return f"{value:g}"


def table(results: dict, clients: list[Client], keys: list[str]) -> list[str]:
    head = ["client"] + [f"{FIGURES[k][4]} ({FIGURES[k][2].replace('B', 'KB')}, {'↑' if FIGURES[k][3] else '↓'})" for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in clients:
        row = [c.label]
        for k in keys:
            cell = results["clients"][c.key]["figures"].get(k)
            if cell is None:
                row.append(results["clients"][c.key]["missing"].get(k, "—"))
                continue
            ratio = results["clients"][c.key]["ratio_to_node"].get(k)
            row.append(fmt(cell, FIGURES[k][2]) + (f" ({ratio:.2f}×)" if ratio is not None and c.key != REFERENCE else ""))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def write_markdown(results: dict, clients: list[Client], out: Path) -> None:
    counts = ", ".join(f"{m.key} {m.smoke_count if results['smoke'] else m.count:,}" for m in MEASUREMENTS)
    rounds = ", ".join(f"{k} {v.get('rounds', 1)}" for k, v in results["measurements"].items())
    md = [
        "# Side-by-side client benchmarks",
        "",
        f"Measured {results['finished']} on the machine described in [machine.md](machine.md)"
        f" ({results['profile']} build, {'SMOKE RUN: tiny counts, figures meaningless' if results['smoke'] else 'full run'}).",
        f"Regenerate with `scripts/bench.sh` (this run took {results['minutes']} minutes); the chart is [chart.png](chart.png), every figure is in "
        "[results.json](results.json).",
        "",
        f"Every client talks to the same test hub (`target/{results['profile']}/test-hub`, a fresh one per measurement) over "
        "WebSockets on 127.0.0.1, hub and client sharing the machine's cores. Each cell is the figure and, in brackets, its "
        "ratio to the official Node client's (client ÷ Node): ↑ marks figures where higher is better, ↓ where lower is. "
        "`n/a` marks a combination the client lacks; `failed` one that did not complete (reason in results.json).",
        "",
        f"Counts: {counts}. Invokes and receives are preceded by a tenth as many for warm-up.",
        "",
        f"Rounds: {rounds}. A round runs every client once, one after the other; each figure is the median of its "
        "client's rounds (every round's figures are in results.json), so that all clients meet the same drift in the "
        "machine's speed.",
        "",
        "## Invoke latency and throughput (JSON)",
        "",
        *table(results, clients, ["invoke_p50_us", "invoke_p99_us", "pipelined_calls_per_s"]),
        "",
        "## Server-to-client receive rate (`Flood` into a handler)",
        "",
        *table(results, clients, ["flood_json_100_msgs_per_s", "flood_msgpack_100_msgs_per_s", "flood_json_10k_msgs_per_s",
                                  "flood_msgpack_10k_msgs_per_s"]),
        "",
        "## Client CPU per 100,000 received messages (user + system, during the 100 B floods)",
        "",
        *table(results, clients, ["cpu_s_per_100k_json_100", "cpu_s_per_100k_msgpack_100"]),
        "",
        "## Connections",
        "",
        *table(results, clients, ["connect_p50_us", "connect_p99_us", "idle_1k_bytes_per_conn", "idle_10k_bytes_per_conn"]),
        "",
        "## Clients",
        "",
        *[f"- **{c.label}**: {c.note}." for c in clients],
        "",
        "## How each figure is taken",
        "",
        "- invoke: sequential `Echo` calls with a 16-character string, each timed from the call to its result; p50/p99.",
        "- pipelined: `Echo` calls kept 100 in flight; completed calls per second.",
        "- receive: one `Flood(count, bytes)` call; messages per second from the call until the handler has seen the last "
        "message and the call completed. CPU is the client process's user + system time over the same span.",
        "- connect: sequential starts (negotiate, WebSocket upgrade, handshake), each stopped before the next; p50/p99.",
        "- memory: growth of the client process's resident set (VmRSS) from one open connection to that many more, opened "
        "100 at a time, read 0.5 s after the last start (after a GC where the runtime has one), divided by the count.",
        "",
    ]
    failures = [(c.label, k, v) for c in clients for k, v in results["clients"][c.key]["runs"].items() if v["status"] == "failed"]
    if failures:
        md += ["## Failures", ""] + [f"- {label}, {k}: {v['reason'][:400]}" for label, k, v in failures] + [""]
    (out / "results.md").write_text("\n".join(md))


CHART_FIGURES = ["invoke_p50_us", "invoke_p99_us", "pipelined_calls_per_s", "flood_json_100_msgs_per_s",
                 "flood_msgpack_100_msgs_per_s", "cpu_s_per_100k_json_100", "connect_p50_us", "idle_10k_bytes_per_conn"]


def write_chart(results: dict, clients: list[Client], out: Path) -> None:
    """A heat map of how many times better than the Node client each client is (log colour scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    shown = [c for c in clients if c.key != REFERENCE]
    grid, text = [], []
    for c in shown:
        row, labels = [], []
        for k in CHART_FIGURES:
            ratio = results["clients"][c.key]["ratio_to_node"].get(k)
            if ratio is None or ratio <= 0:
                row.append(float("nan"))
                labels.append(results["clients"][c.key]["missing"].get(k, "—"))
            else:
                better = ratio if FIGURES[k][3] else 1 / ratio
                row.append(better)
                labels.append(f"{better:.2f}×")
        grid.append(row)
        text.append(labels)
    fig, ax = plt.subplots(figsize=(13, 0.6 * len(shown) + 2.2))
    image = ax.imshow(grid, cmap="RdYlGn", norm=LogNorm(vmin=1 / 8, vmax=8), aspect="auto")
    ax.set_xticks(range(len(CHART_FIGURES)), [FIGURES[k][4] for k in CHART_FIGURES], rotation=20, ha="right")
    ax.set_yticks(range(len(shown)), [c.label for c in shown])
    for i, labels in enumerate(text):
        for j, label in enumerate(labels):
            ax.text(j, i, label, ha="center", va="center", fontsize=9)
    ax.set_title("How many times better than the official Node client (>1 = better: faster, or less CPU/memory)"
                 + (" — SMOKE RUN, meaningless" if results["smoke"] else ""))
    ticks = [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8]
    bar = fig.colorbar(image, ax=ax, label="× better than @microsoft/signalr (Node)")
    bar.set_ticks(ticks, labels=[f"{t:g}×" for t in ticks])
    fig.tight_layout()
    fig.savefig(out / "chart.png", dpi=110)
    plt.close(fig)


def write_machine(results: dict, out: Path) -> None:
    m = results["machine"]
    md = [
        "# Machine of the benchmark run",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gib']} GiB",
        f"- OS: {m['os']}, kernel {m['kernel']}; open-file limit {m['file_descriptor_limit']}",
        f"- Build: {results['profile']}; run {results['started']} – {results['finished']}"
        f"{' (smoke run)' if results['smoke'] else ''}",
        f"- Load before (`uptime`): `{results['uptime_before']}`",
        f"- Load after (`uptime`): `{results['uptime_after']}`",
        "- 1-minute load average as each measurement began: "
        + ", ".join(f"{k} {v}" for k, v in results["load_during"].items()),
        "",
        "Hub and client share the cores; a load average above the client's own use means other work ran on the machine "
        "during the measurements (see the figures in that light).",
        "",
        "## Versions",
        "",
        *[f"- {k}: {v}" for k, v in m["versions"].items()],
        "",
        "## Processes at the start (`top`)",
        "",
        "```",
        results["top_before"],
        "```",
        "",
    ]
    (out / "machine.md").write_text("\n".join(md))


def write_outputs(results: dict, clients: list[Client], out: Path, complete: bool, chart: bool = True) -> None:
    """Derives the figures and ratios from the runs so far and writes every output file."""
    results["uptime_after"] = capture(["uptime"])
    results["minutes"] = round((time.monotonic() - STARTED) / 60, 1)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + ("" if complete else " (run incomplete)")
    results.setdefault("machine", machine())
    for c in clients:
        entry = results["clients"][c.key]
        entry["figures"], entry["missing"], entry["ratio_to_node"] = {}, {}, {}
        for key, (mkey, field_name, _unit, _higher, _label) in FIGURES.items():
            run = entry["runs"].get(mkey)
            if run is None:
                continue
            if run["status"] == "ok" and field_name in run["figures"]:
                entry["figures"][key] = run["figures"][field_name]
            else:
                entry["missing"][key] = "n/a" if run["status"] == "unsupported" else "failed"
    node = results["clients"].get(REFERENCE, {}).get("figures", {})
    for c in clients:
        entry = results["clients"][c.key]
        for key, value in entry["figures"].items():
            if node.get(key):
                entry["ratio_to_node"][key] = value / node[key]
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    write_markdown(results, clients, out)
    write_machine(results, out)
    if chart:
        write_chart(results, clients, out)


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny counts; fail on any failure")
    parser.add_argument("--profile", choices=("debug", "release"), default="release")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--only", help="comma-separated client keys: " + ",".join(c.key for c in CLIENTS))
    parser.add_argument("--render", action="store_true", help="rewrite results.md, chart.png and machine.md from OUT/results.json")
    parser.add_argument("--measurements", help="comma-separated measurement keys: " + ",".join(m.key for m in MEASUREMENTS))
    args = parser.parse_args()

    clients = [c for c in CLIENTS if not args.only or c.key in args.only.split(",")]
    if args.render:
        results = json.loads((args.out / "results.json").read_text())
        shown = [c for c in clients if c.key in results["clients"]]
        write_markdown(results, shown, args.out)
        write_machine(results, args.out)
        write_chart(results, shown, args.out)
        return 0
    measurements = [m for m in MEASUREMENTS if not args.measurements or m.key in args.measurements.split(",")]
    hub_binary = ROOT / "target" / args.profile / "test-hub"
    if not hub_binary.exists():
        sys.exit(f"{hub_binary} is missing: build first (scripts/bench.sh does)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10,000 connections in one process
    timeout = 60 if args.smoke else 900

    results = {
        "smoke": args.smoke,
        "profile": args.profile,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "uptime_before": capture(["uptime"]),
        "top_before": top_snapshot(),
        "load_during": {},
        "reference": REFERENCE,
        "measurements": {m.key: {"scenario": m.scenario, "count": m.smoke_count if args.smoke else m.count,
                                 "payload_bytes": m.payload, "protocol": m.protocol, "title": m.title} for m in measurements},
        "clients": {c.key: {"label": c.label, "runs": {}, "figures": {}, "missing": {}, "ratio_to_node": {}} for c in clients},
    }
    problems = prepare(clients, args.profile)
    print(f"benchmark: {len(clients)} clients x {len(measurements)} measurements, {args.profile} build"
          f"{', smoke' if args.smoke else ''}; load: {results['uptime_before']}", flush=True)
    # Measurement-major order: the clients of one figure are measured close together in time.
    for m in measurements:
        count = m.smoke_count if args.smoke else m.count
        results["load_during"][m.key] = round(os.getloadavg()[0], 2)
        rounds = m.rounds_for(args.smoke)
        results["measurements"][m.key]["rounds"] = rounds
        for r in range(rounds):
            for c in clients:
                runs = results["clients"][c.key]["runs"]
                if c.key in problems:
                    run = {"status": "failed", "reason": problems[c.key]}
                elif m.key in runs and runs[m.key]["status"] != "ok":
                    continue  # failed or unsupported in an earlier round
                else:
                    run = run_one(c, m, count, hub_binary, args.profile, timeout)
                runs[m.key] = merge_round(runs.get(m.key), run)
                shown = json.dumps(run.get("figures")) if run["status"] == "ok" else f"{run['status']}: {run['reason'][:300]}"
                print(f"  {m.key:18} {c.key:12} {r + 1}/{rounds} {shown}", flush=True)
                if not args.smoke:  # what is measured so far survives an interrupted run
                    write_outputs(results, clients, args.out, complete=False, chart=c is clients[-1])
    write_outputs(results, clients, args.out, complete=True)
    print(f"wrote {args.out}/results.md, results.json, chart.png, machine.md; load after: {results['uptime_after']}")

    failed = [(c.key, k, r["reason"]) for c in clients for k, r in results["clients"][c.key]["runs"].items() if r["status"] == "failed"]
    ran = sum(1 for c in clients for r in results["clients"][c.key]["runs"].values() if r["status"] != "failed")
    print(f"bench: {ran} passed, {len(failed)} failed")
    return 1 if failed and args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
