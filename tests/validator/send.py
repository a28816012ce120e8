#!/usr/bin/env python3
"""Sends recorded pump.fun TradeEvents through a local solana-test-validator.

The validator runs a tiny program at pump.fun's address that logs its
instruction data with `sol_log_data` (scripts/solana-validator.sh), so a
transaction whose instruction data is a TradeEvent's bytes produces exactly
the `Program data:` line a real pump.fun trade produces.

    send.py fund    --keypair K                      make (if absent) and fund the fee payer
    send.py send    --keypair K --out F [options]    send trades, one JSON line per transaction
    send.py confirm --out F [--out F2 ...] --status S
                                                     look every signature up; write S

Only 127.0.0.1 is ever contacted. Needs `solders` (the check script installs
it into a venv).
"""

import argparse
import base64
import hashlib
import json
import os
import random
import signal
import struct
import sys
import time
import urllib.error
import urllib.request

PUMP_FUN = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
TRADE_DISC = bytes.fromhex("bddb7fd34ee661ee")
HERE = os.path.dirname(os.path.abspath(__file__))
EVENTS = os.path.join(HERE, "..", "fixtures", "solana", "events.jsonl")

# Borsh offsets of the TradeEvent's leading fields (every layout has them).
OFF_MINT, OFF_SOL, OFF_TOKEN, OFF_IS_BUY = 8, 40, 48, 56
OFF_TIMESTAMP, OFF_VSOL, OFF_VTOKEN = 89, 97, 105
OLDEST_LEN, MIN_LEN = 113, 129
SHAREHOLDER_LEN = 32 + 2

# The three coins every run trades (fixed, so runs are comparable).
COINS = [hashlib.sha256(b"klinecast-validator-coin-%d" % i).digest() for i in range(3)]


def b58(raw: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + out


def u64(b: bytes, at: int) -> int:
    return struct.unpack_from("<Q", b, at)[0]


def quote_offsets(b: bytes):
    """Offsets of (quote_mint, quote_amount, virtual_quote_reserves) in a
    layout that has them (May 2026 on), following the IDL's field list the
    way klinecast's decoder does; None for older layouts. Fields a record
    stops before are None."""
    if len(b) in (OLDEST_LEN, MIN_LEN):
        return None
    p = MIN_LEN
    fixed = [32, 8, 8, 32, 8, 8, 1, 8, 8, 8, 8]  # fee_recipient .. last_update_timestamp
    for size in fixed:
        if p >= len(b):
            return None
        p += size
    if p >= len(b):
        return None
    p += 4 + struct.unpack_from("<I", b, p)[0]  # ix_name
    for size in [1, 8, 8, 8, 8]:  # mayhem_mode, cashback_fee_bp, cashback, buyback_fee_bp, buyback_fee
        if p >= len(b):
            return None
        p += size
    if p >= len(b):
        return None
    p += 4 + SHAREHOLDER_LEN * struct.unpack_from("<I", b, p)[0]  # shareholders
    if p >= len(b):
        return None
    qm = p
    qa = p + 32 if p + 40 <= len(b) else None
    vq = p + 40 if p + 48 <= len(b) else None
    return qm, qa, vq


def load_events():
    """SOL-quoted pump.fun TradeEvents with a price (reserves > 0, amount > 0)."""
    out = []
    with open(EVENTS) as f:
        for line in f:
            d = json.loads(line)
            if d["kind"] != "TradeEvent" or d["program"] != PUMP_FUN:
                continue
            dec = d["decoded"]
            if dec.get("quote_mint", "11111111111111111111111111111111") != "11111111111111111111111111111111":
                continue
            b = base64.b64decode(d["program_data"])
            assert b[:8] == TRADE_DISC
            if u64(b, OFF_VSOL) == 0 or u64(b, OFF_VTOKEN) == 0 or u64(b, OFF_SOL) == 0:
                continue
            q = quote_offsets(b)
            if q is not None:  # check the walk against the recorded decoding
                qm, qa, vq = q
                assert b[qm:qm + 32] == bytes(32), d["decoded"]
                if qa is not None:
                    assert u64(b, qa) == dec["quote_amount"], (u64(b, qa), dec)
                if vq is not None:
                    assert u64(b, vq) == dec["virtual_quote_reserves"], dec
            out.append(b)
    if not out:
        sys.exit("no SOL-quoted pump.fun TradeEvent in " + EVENTS)
    return out


def make_trade(template: bytes, coin: bytes, ts: int, rng: random.Random) -> bytes:
    """The template's bytes with another coin, the given timestamp and the
    amounts and reserves varied by up to ±10 % (quote fields kept equal to
    the SOL ones, as pump.fun writes them for SOL coins)."""
    b = bytearray(template)
    b[OFF_MINT:OFF_MINT + 32] = coin

    def vary(at):
        v = u64(b, at)
        v = max(1, int(v * rng.uniform(0.9, 1.1)))
        struct.pack_into("<Q", b, at, v)
        return v

    sol = vary(OFF_SOL)
    vary(OFF_TOKEN)
    vsol = vary(OFF_VSOL)
    vary(OFF_VTOKEN)
    struct.pack_into("<q", b, OFF_TIMESTAMP, ts)
    q = quote_offsets(bytes(b))
    if q is not None:
        _, qa, vq = q
        if qa is not None:
            struct.pack_into("<Q", b, qa, sol)
        if vq is not None:
            struct.pack_into("<Q", b, vq, vsol)
    return bytes(b)


class Rpc:
    def __init__(self, url: str, timeout: float = 2.0):
        self.url, self.timeout, self.next_id = url, timeout, 0

    def call(self, method, params=None, timeout=None):
        self.next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or []})
        req = urllib.request.Request(self.url, body.encode(), {"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
            reply = json.loads(resp.read())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


def load_keypair(path):
    from solders.keypair import Keypair

    with open(path) as f:
        return Keypair.from_bytes(bytes(json.load(f)))


def cmd_fund(args):
    from solders.keypair import Keypair

    if not os.path.exists(args.keypair):
        kp = Keypair()
        with open(args.keypair, "w") as f:
            json.dump(list(bytes(kp)), f)
    kp = load_keypair(args.keypair)
    rpc = Rpc(args.rpc_url)
    payer = str(kp.pubkey())
    if rpc.call("getBalance", [payer, {"commitment": "confirmed"}])["value"] >= 10 * 10**9:
        print(f"fee payer {payer} already funded")
        return
    rpc.call("requestAirdrop", [payer, 1000 * 10**9])
    deadline = time.time() + 60
    while time.time() < deadline:
        if rpc.call("getBalance", [payer, {"commitment": "confirmed"}])["value"] > 0:
            print(f"fee payer {payer} funded")
            return
        time.sleep(0.5)
    sys.exit("airdrop did not land in 60 s")


def cmd_send(args):
    from solders.compute_budget import set_compute_unit_limit
    from solders.hash import Hash
    from solders.instruction import AccountMeta, Instruction
    from solders.message import Message
    from solders.pubkey import Pubkey
    from solders.transaction import Transaction

    kp = load_keypair(args.keypair)
    program = Pubkey.from_string(PUMP_FUN)
    events = load_events()
    rng = random.Random(args.seed if args.seed is not None else time.time_ns())
    rpc = Rpc(args.rpc_url, timeout=1.0)
    out = open(args.out, "a", buffering=1)
    start = time.time()
    burst = 3 if args.several_per_slot else 1
    interval = burst / args.rate  # one burst per interval
    sent = errors = no_node = n = 0
    k = 0
    blockhash, blockhash_at = None, 0.0
    # SIGTERM ends the run between two transactions (never between sending
    # one and writing its record).
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        now = time.time()
        if args.duration is not None and now - start >= args.duration:
            break
        if args.count is not None and n >= args.count:
            break
        due = start + k * interval
        while not stop and time.time() < due:
            time.sleep(min(0.05, max(0.0, due - time.time())))
        if stop:
            break
        k += 1
        if blockhash is None or time.time() - blockhash_at > 1.0:
            try:
                blockhash = rpc.call("getLatestBlockhash", [{"commitment": "confirmed"}])["value"]["blockhash"]
                blockhash_at = time.time()
            except (OSError, RuntimeError, urllib.error.URLError) as e:
                no_node += burst
                blockhash = None
                if no_node <= burst or no_node % 20 < burst:
                    print(f"send.py: no blockhash ({e}); {no_node} trades not sent so far", file=sys.stderr)
                continue
        coin_index = rng.randrange(len(COINS))
        for _ in range(burst):
            if args.count is not None and n >= args.count:
                break
            template = events[rng.randrange(len(events))]
            fail = rng.random() < args.fail_fraction
            ts = int(time.time())
            data = make_trade(template, COINS[coin_index], ts, rng)
            accounts = [AccountMeta(kp.pubkey(), is_signer=True, is_writable=True)] if fail else []
            ixs = [set_compute_unit_limit(200_000), Instruction(program, data, accounts)]
            tx = Transaction([kp], Message(ixs, kp.pubkey()), Hash.from_string(blockhash))
            sig = str(tx.signatures[0])
            record = {
                "n": n, "sig": sig, "data": base64.b64encode(data).decode(), "fail": fail,
                "mint": b58(COINS[coin_index]), "ts": ts, "phase": args.phase,
                "burst": args.several_per_slot, "sent_at": round(time.time(), 3),
            }
            try:
                got = rpc.call("sendTransaction", [base64.b64encode(bytes(tx)).decode(),
                                                   {"encoding": "base64", "skipPreflight": True}])
                if got != sig:
                    record["send_error"] = f"node answered signature {got}"
                sent += 1
            except (OSError, RuntimeError, urllib.error.URLError) as e:
                # It may have reached the node all the same: confirm decides.
                record["send_error"] = str(e)
                errors += 1
                blockhash = None
            out.write(json.dumps(record) + "\n")
            n += 1
    out.close()
    print(f"send.py [{args.phase}]: {sent} sent, {errors} send errors, {no_node} not sent (no node) "
          f"in {time.time() - start:.1f} s", file=sys.stderr)


def cmd_confirm(args):
    rpc = Rpc(args.rpc_url, timeout=10.0)
    records = []
    for path in args.out:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    sigs = [r["sig"] for r in records]
    status = {}
    deadline = time.time() + args.wait
    while True:
        pending = [s for s in sigs if s not in status or status[s].get("confirmationStatus") == "processed"]
        for i in range(0, len(pending), 256):
            chunk = pending[i:i + 256]
            got = rpc.call("getSignatureStatuses", [chunk, {"searchTransactionHistory": True}])["value"]
            for s, v in zip(chunk, got):
                if v is not None:
                    status[s] = v
        # Wait for the ones still only processed; a signature the node does
        # not know (searching its whole history) did not land.
        pending = [s for s in sigs if s in status and status[s].get("confirmationStatus") == "processed"]
        if not pending or time.time() >= deadline:
            break
        time.sleep(1)
    # The order of the transactions in their blocks (what a client sees).
    slots = sorted({v["slot"] for v in status.values()})
    index = {}
    for slot in slots:
        block = rpc.call("getBlock", [slot, {"encoding": "json", "transactionDetails": "signatures",
                                             "rewards": False, "maxSupportedTransactionVersion": 0,
                                             "commitment": "confirmed"}])
        for i, s in enumerate(block["signatures"]):
            index[s] = i
    result = {}
    for s in sigs:
        v = status.get(s)
        if v is None:
            result[s] = {"landed": False}
        else:
            result[s] = {"landed": True, "slot": v["slot"], "err": v["err"],
                         "confirmation": v.get("confirmationStatus"), "index": index.get(s)}
    with open(args.status, "w") as f:
        json.dump(result, f, indent=0)
    landed = sum(1 for v in result.values() if v["landed"])
    ok = sum(1 for v in result.values() if v["landed"] and v["err"] is None)
    print(f"confirm: {len(sigs)} transactions, {landed} landed, {ok} without error, "
          f"{landed - ok} failed, {len(sigs) - landed} never landed")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rpc-url", default="http://127.0.0.1:8899")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fund")
    f.add_argument("--keypair", required=True)
    s = sub.add_parser("send")
    s.add_argument("--keypair", required=True)
    s.add_argument("--out", required=True, help="JSON lines, appended")
    s.add_argument("--rate", type=float, default=4.0, help="transactions a second")
    s.add_argument("--count", type=int)
    s.add_argument("--duration", type=float, help="seconds")
    s.add_argument("--fail-fraction", type=float, default=0.0)
    s.add_argument("--several-per-slot", action="store_true", help="bursts of 3 trades of one coin")
    s.add_argument("--phase", default="", help="a label kept in each record")
    s.add_argument("--seed", type=int)
    c = sub.add_parser("confirm")
    c.add_argument("--out", required=True, action="append", help="a sender output (repeatable)")
    c.add_argument("--status", required=True, help="where to write the statuses (JSON)")
    c.add_argument("--wait", type=float, default=20.0, help="how long to wait for stragglers")
    args = p.parse_args()
    if args.cmd == "send" and args.count is None and args.duration is None:
        p.error("send needs --count or --duration")
    {"fund": cmd_fund, "send": cmd_send, "confirm": cmd_confirm}[args.cmd](args)


if __name__ == "__main__":
    main()
