#!/usr/bin/env python3
"""Plots of the load benchmarks, from their JSON results in bench/results/.

    python3 bench/plot.py [bench/results]

Writes, next to the JSON files it finds:
- latency.png        latency percentiles: Kafka's EndToEndLatency vs klinecast
                     shared and per-client mode (from latency.json);
- fanout-memory.png  user-space memory per connection vs clients;
- fanout-cpu.png     frames per server CPU-second vs clients (from fanout.json).

A missing JSON file skips its plots; nothing here measures anything.
scripts/bench.sh runs it with matplotlib from a venv under target/.
"""

import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Percentile positions on a "nines" axis: x = -log10(1 - p).
NINES = {"p50": 0.301, "p90": 1.0, "p99": 2.0, "p999": 3.0, "max": 3.7}
TICKS = ([0.301, 1.0, 2.0, 3.0, 3.7], ["p50", "p90", "p99", "p99.9", "max"])


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def curve(pcts):
    keys = ["p50", "p90", "p99", "p999", "max"]
    names = {"p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "p999": "p999_ms", "max": "max_ms"}
    return [NINES[k] for k in keys], [max(pcts[names[k]], 1e-3) for k in keys]


def plot_latency(data, out):
    fig, ax = plt.subplots(figsize=(13, 5.5))
    colors = {"shared": "tab:blue", "per-client": "tab:orange"}
    for case in data.get("cases", []):
        if case["purpose"] != "verdict":
            continue
        xs, ys = curve(case["websocket"])
        style = {10: "-", 100: "--"}.get(case["clients"], "-.")
        label = f"klinecast {case['fanout']}, {case['clients']} clients"
        ax.plot(xs, ys, style, marker="o", color=colors.get(case["fanout"], "gray"), label=label)
    for case in data.get("cases", []):
        if case.get("from_produce"):
            xs, ys = curve(case["websocket"])
            label = f"klinecast {case['fanout']}, {case['clients']} clients, from produced_ns (after ingest)"
            ax.plot(xs, ys, ":", marker=".", color=colors.get(case["fanout"], "gray"), alpha=0.7, label=label)
    for i, tool in enumerate(data.get("kafka_tool", [])):
        # Printed in whole ms, rounded down: the true value is in [x, x + 1).
        xs = [NINES["p50"], NINES["p99"], NINES["p999"]]
        lo = [tool["p50_ms_floor"], tool["p99_ms_floor"], tool["p999_ms_floor"]]
        mid = [v + 0.5 for v in lo]
        label = f"Kafka EndToEndLatency round {tool['round']} (whole ms, rounded down; bar = [x, x+1))"
        ax.errorbar(xs, mid, yerr=0.5, fmt="s:", color="black" if i == 0 else "dimgray", capsize=4, label=label)
    probe = data.get("client_probe")
    if probe:
        xs, ys = curve(probe["tap"])
        ax.plot(xs, ys, "-.", marker="^", color="tab:green", label="klinecast's Kafka clients alone (KafkaSink → consumer)")
    ax.set_yscale("log")
    ax.set_xticks(*TICKS)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency, ms (log)")
    rate = data.get("mock_rate_per_s", "?")
    ax.set_title(f"event → client latency from each update's intended time, R = {rate} events/s (load {data.get('loadavg_start', '?')})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def points(data, mode, subscribe=None):
    pts = [p for p in data.get(mode, []) if subscribe is None or p.get("subscribe") == subscribe]
    return sorted(pts, key=lambda p: p["connected"])


def plot_memory(data, out):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    shared = [p for p in points(data, "shared") if p.get("subscribe") != "ping"]
    ping = [p for p in points(data, "shared") if p.get("subscribe") == "ping"]
    if shared:
        left.plot([p["connected"] for p in shared], [p["kib_per_connection"] for p in shared], "o-", label="RSS growth / connection")
        left.plot([p["connected"] for p in shared], [p["anon_kib_per_connection"] for p in shared], "x--", label="anonymous part")
    if ping:
        left.plot([p["connected"] for p in ping], [p["kib_per_connection"] for p in ping], "D", color="tab:green", label="sessions without subscription (ping)")
    left.axhline(data.get("bars", {}).get("kib_per_connection", 4.0), color="red", ls=":", label="SPEC bar 4 KiB")
    left.set_xscale("log")
    left.set_xlabel("connections (shared mode)")
    left.set_ylabel("KiB per connection")
    left.set_ylim(bottom=0)
    left.set_title("shared mode: user-space memory per connection")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    pc = points(data, "per_client")
    if pc:
        right.plot([p["connected"] for p in pc], [p["kib_per_connection"] for p in pc], "o-", color="tab:orange", label="RSS growth / client")
        threads = [(sum(p["threads"]) - sum(p["threads_idle"])) / max(p["connected"], 1) for p in pc]
        twin = right.twinx()
        twin.plot([p["connected"] for p in pc], threads, "s--", color="gray", label="threads / client")
        twin.set_ylabel("threads per client")
        twin.set_ylim(bottom=0)
        twin.legend(fontsize=8, loc="lower right")
    right.set_xscale("log")
    right.set_xlabel("clients (per-client mode, one Kafka consumer each)")
    right.set_ylabel("KiB per client")
    right.set_ylim(bottom=0)
    right.set_title("per-client mode: memory per client")
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_cpu(data, out):
    fig, ax = plt.subplots(figsize=(9, 5))
    shared = [p for p in points(data, "shared") if p.get("subscribe") != "ping" and p.get("frames_per_cpu_s")]
    pc = [p for p in points(data, "per_client") if p.get("frames_per_cpu_s")]
    if shared:
        xs = [p["connected"] for p in shared]
        ax.plot(xs, [p["frames_per_cpu_s"] for p in shared], "o-", color="tab:blue", label="shared mode (all gateway CPU)")
        above = [p.get("frames_per_cpu_s_above_idle") or math.nan for p in shared]
        ax.plot(xs, above, "x--", color="tab:cyan", label="shared mode (CPU above the idle gateways')")
    if pc:
        ax.plot([p["connected"] for p in pc], [p["frames_per_cpu_s"] for p in pc], "o-", color="tab:orange", label="per-client mode (serve process)")
    ax.axhline(data.get("bars", {}).get("frames_per_cpu_s", 1e6), color="red", ls=":", label="SPEC bar 1 M frames / CPU-s")
    floor = data.get("send_floor")
    if floor:
        ax.axhline(floor["writes_per_cpu_s"], color="black", ls="-.", label=f"kernel floor: one {floor['frame_bytes']}-byte write per frame")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("clients")
    ax.set_ylabel("frames per server CPU-second (log)")
    ax.set_title(f"frames per server CPU-second (load {data.get('loadavg_start', '?')})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    wrote = []
    latency = load(results / "latency.json")
    if latency:
        plot_latency(latency, results / "latency.png")
        wrote.append("latency.png")
    fanout = load(results / "fanout.json")
    if fanout:
        plot_memory(fanout, results / "fanout-memory.png")
        plot_cpu(fanout, results / "fanout-cpu.png")
        wrote += ["fanout-memory.png", "fanout-cpu.png"]
    print(f"plot.py: wrote {', '.join(wrote) or 'nothing (no results)'} in {results}", file=sys.stderr)


if __name__ == "__main__":
    main()
