#!/usr/bin/env python3
"""Expected closing bars from what send.py sent, compared with Kafka.

    reference.py --sent a.jsonl [--sent b.jsonl ...] --status status.json \
                 --closed closed.jsonl --all all.jsonl [--windows 1s,1m] [--metrics m.txt ...]

The trades are the transactions that landed without error (status.json from
`send.py confirm`), in block order: by slot, then by their index in the block
(`getBlock`), which is the order a client of the node sees; a trade's bar is
its event timestamp's. Each bar: open/close = first/last trade's price,
high/low, volume_quote = sum of sol_amount / 1e9, volume_tokens = sum of
token_amount / 1e6, buy_volume_quote = sum of sol_amount of buys / 1e9,
trades = count; price = (virtual_sol_reserves / 1e9) / (virtual_token_reserves / 1e6).

A trade that the block order puts after a later-second trade of the same
coin is late in that window (klinecast's documented rule; on mainnet a slot's
trades share one timestamp, here each carries its send second): it is left
out of the window's bar, and the late counters of the --metrics snapshots
must add up to these.

Checks: every expected bar is in `closed` exactly once with equal fields
(1e-12 relative), no other closing bar, and in `all` (every update) each
(mint, window) series' seq goes up by exactly 1 from one update to the next.
Exit 0 when all holds, 1 otherwise.
"""

import argparse
import base64
import json
import re
import struct
import sys
from collections import defaultdict

from send import b58  # the sender's base58, for the same mints

FIELDS = ["open", "high", "low", "close", "volume_quote", "volume_tokens", "buy_volume_quote", "trades"]
REL = 1e-12


def parse_window(w: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", w.strip())
    if not m:
        sys.exit(f"bad window {w!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def decode(data: bytes) -> dict:
    u64 = lambda at: struct.unpack_from("<Q", data, at)[0]  # noqa: E731
    vsol, vtok = u64(97), u64(105)
    return {
        "mint": b58(data[8:40]),
        "sol": u64(40),
        "tokens": u64(48),
        "is_buy": data[56] == 1,
        "ts": struct.unpack_from("<q", data, 89)[0],
        "price": (vsol / 1e9) / (vtok / 1e6),
    }


def read_jsonl(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


def close_enough(a, b) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return a == b or abs(a - b) <= REL * max(abs(a), abs(b))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sent", action="append", required=True)
    p.add_argument("--status", required=True)
    p.add_argument("--closed", required=True, help="tail --json --closed --from-beginning")
    p.add_argument("--all", required=True, help="tail --json --from-beginning (every update)")
    p.add_argument("--windows", default="1s,1m")
    p.add_argument("--metrics", action="append", default=[], help="/metrics snapshots (for the late counters)")
    p.add_argument("--trades-out", help="write the reference trades (JSON lines) here")
    args = p.parse_args()
    windows = [parse_window(w) for w in args.windows.split(",")]

    with open(args.status) as f:
        status = json.load(f)
    problems = []
    trades = []
    order = 0
    unlanded = failed = 0
    for path in args.sent:
        for r in read_jsonl(path):
            order += 1
            st = status.get(r["sig"], {"landed": False})
            if not st["landed"]:
                unlanded += 1
                continue
            if st["err"] is not None:
                failed += 1
                if not r["fail"]:
                    problems.append(f"transaction {r['sig']} was meant to succeed but failed: {st['err']}")
                continue
            if r["fail"]:
                problems.append(f"transaction {r['sig']} was meant to fail but succeeded (slot {st['slot']})")
            t = decode(base64.b64decode(r["data"]))
            t.update(sig=r["sig"], slot=st["slot"], index=st.get("index"), send_order=order,
                     phase=r.get("phase", ""), sent_at=r.get("sent_at"))
            trades.append(t)
    # Block order; the send order only where a block index is missing.
    trades.sort(key=lambda t: (t["slot"], t["index"] if t["index"] is not None else 1 << 30, t["send_order"]))
    inversions = sum(1 for a, b in zip(trades, trades[1:]) if a["send_order"] > b["send_order"])
    if args.trades_out:
        with open(args.trades_out, "w") as f:
            for t in trades:
                f.write(json.dumps(t) + "\n")

    # klinecast's documented rule: a trade of a later bar of a coin closes
    # that coin's open bar at once, so a trade that comes after it in block
    # order with an earlier timestamp is late in that window. On mainnet a
    # slot's trades share the block's clock; here each carries its send
    # second and the node may order a slot's transactions differently from
    # their sending, so this happens. Such trades are expected late (and
    # klinecast's late counters must add up to them); any other lateness
    # is a difference.
    expected = {}
    members = defaultdict(list)
    current = {}
    expected_late = defaultdict(list)
    for t in trades:
        for w in windows:
            key = (t["mint"], w, t["ts"] - t["ts"] % w)
            if key[2] < current.get((t["mint"], w), key[2]):
                expected_late[w].append(t)
                continue
            current[(t["mint"], w)] = key[2]
            members[key].append(t)
            bar = expected.get(key)
            if bar is None:
                expected[key] = bar = {"open": t["price"], "high": t["price"], "low": t["price"],
                                       "close": t["price"], "sol": 0, "tokens": 0, "buy_sol": 0, "trades": 0}
            bar["high"] = max(bar["high"], t["price"])
            bar["low"] = min(bar["low"], t["price"])
            bar["close"] = t["price"]
            bar["sol"] += t["sol"]
            bar["tokens"] += t["tokens"]
            bar["buy_sol"] += t["sol"] if t["is_buy"] else 0
            bar["trades"] += 1
    for bar in expected.values():
        bar["volume_quote"] = bar.pop("sol") / 1e9
        bar["volume_tokens"] = bar.pop("tokens") / 1e6
        bar["buy_volume_quote"] = bar.pop("buy_sol") / 1e9

    mints = {t["mint"] for t in trades}
    closed = [b for b in read_jsonl(args.closed) if b.get("closed") and b["mint"] in mints
              and b["time_window_seconds"] in windows]
    others = [b for b in read_jsonl(args.closed) if b["mint"] not in mints]
    got = defaultdict(list)
    for b in closed:
        got[(b["mint"], b["time_window_seconds"], b["unix_timestamp"])].append(b)

    rows = []  # (key, what, expected, actual)
    for key in sorted(expected):
        exp = expected[key]
        have = got.get(key, [])
        if not have:
            rows.append((key, "missing", exp, None))
            continue
        if len(have) > 1:
            rows.append((key, f"closed {len(have)} times", exp, have))
        b = have[-1]
        for field in FIELDS:
            if not close_enough(exp[field], b[field]):
                rows.append((key, field, exp[field], b[field]))
    for key in sorted(got):
        if key not in expected:
            rows.append((key, "extra closing bar", None, got[key]))
    for b in others:
        rows.append(((b["mint"], b["time_window_seconds"], b["unix_timestamp"]), "bar of a coin never sent", None, b))

    # seq: +1 from one update of a series to the next, over every update.
    seq_rows = []
    last = {}
    updates = 0
    for b in read_jsonl(args.all):
        if b["mint"] not in mints:
            continue
        updates += 1
        series = (b["mint"], b["time_window_seconds"])
        prev = last.get(series)
        if prev is not None and b["seq"] != prev["seq"] + 1:
            seq_rows.append((series, prev, b))
        last[series] = b

    # Report.
    print(f"reference: {len(trades)} trades landed without error ({failed} failed on purpose or not, "
          f"{unlanded} never landed), {len(mints)} coins, {len(expected)} expected closing bars "
          f"({', '.join(f'{w}s: {sum(1 for k in expected if k[1] == w)}' for w in windows)}); "
          f"Kafka: {len(closed)} closing bars, {updates} updates")
    if inversions:
        print(f"note: {inversions} places where the block order differs from the send order "
              "(the reference follows the block order)")
    late_seen = defaultdict(int)
    for path in args.metrics:
        with open(path) as f:
            late = [line.strip() for line in f if line.startswith("klinecast_ingest_late_trades_total")]
        print(f"late trades ({path}): {'; '.join(late) or 'none reported'}")
        for line in late:
            m = re.match(r'klinecast_ingest_late_trades_total\{window="(\d+[smhd])"\} (\d+)', line)
            if m:
                late_seen[parse_window(m.group(1))] += int(m.group(2))
    for w in windows:
        for t in expected_late[w]:
            print(f"expected late in {w}s (block order put a later second of {t['mint'][:12]} first): "
                  f"slot {t['slot']} idx {t['index']} sent#{t['send_order']} ts {t['ts']} sig {t['sig']}")
        if args.metrics and late_seen[w] != len(expected_late[w]):
            problems.append(f"klinecast counted {late_seen[w]} late trades in the {w}s window, "
                            f"the block order makes {len(expected_late[w])} late")
    for p_ in problems:
        print("problem:", p_)
    if rows:
        print(f"\n{len(rows)} differences in closing bars:")
        print(f"{'mint':<12} {'win':>4} {'open time':>10}  {'what':<22} {'expected':>24} {'klinecast':>24}")
        shown = set()
        for key, what, exp, act in rows:
            mint, w, t0 = key
            fmt = lambda v: "-" if v is None else (f"{v:.15g}" if isinstance(v, float) else  # noqa: E731
                                                  str(v) if not isinstance(v, (dict, list)) else "(see below)")
            print(f"{mint[:12]:<12} {w:>4} {t0:>10}  {what:<22} {fmt(exp):>24} {fmt(act):>24}")
            if key not in shown:
                shown.add(key)
                if isinstance(act, (dict, list)):
                    for b in act if isinstance(act, list) else [act]:
                        print("    klinecast bar:", json.dumps(b))
                for t in members.get(key, []):
                    print(f"    trade slot {t['slot']} idx {t['index']} sent#{t['send_order']} [{t['phase']}] "
                          f"ts {t['ts']} price {t['price']:.15g} sol {t['sol']} tokens {t['tokens']} "
                          f"buy {t['is_buy']} sig {t['sig']}")
    if seq_rows:
        print(f"\n{len(seq_rows)} seq breaks:")
        for (mint, w), prev, b in seq_rows[:50]:
            print(f"{mint[:12]} {w:>4}s: seq {prev['seq']} (bar {prev['unix_timestamp']}, closed {prev['closed']}) "
                  f"then {b['seq']} (bar {b['unix_timestamp']}, closed {b['closed']})")
    if rows or seq_rows or problems:
        print("\nFAIL")
        return 1
    print("PASS: every expected bar closed once with equal fields, no extra closing bar, seq +1 throughout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
