#!/usr/bin/env python3
"""Observes how the local validator answers what klinecast relies on.

    probe.py --keypair K [--count 20] [--out probe.jsonl]
    probe.py listen [--rounds 10] [--seconds 3] [--out frames.jsonl]

Subscribes to `logsSubscribe {"mentions":[pump.fun]}` (confirmed) on
ws://127.0.0.1:8900, sends trades one by one (send.py's transactions), and
for each records: when sendTransaction returned, when the notification
arrived (and its slot), whether `getSignaturesForAddress(pump.fun)` at
confirmed lists the signature at the moment the notification arrives, and
how long until it does. Also prints the raw subscribe answer and one
notification, and the answers to a few edge requests (unknown `before` /
`until`). Only 127.0.0.1 is contacted. A measurement tool for
docs/validator.md, not part of the check.
"""

import argparse
import base64
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import send  # noqa: E402


class Ws:
    """The least WebSocket client that works against the validator."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(head.decode(errors="replace"))
        self.buf = b""

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            while True:
                b0, b1 = self._read(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack(">H", self._read(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self._read(8))[0]
                payload = self._read(n)
                op = b0 & 0x0F
                if op == 1:
                    return payload.decode()
                if op == 9:  # ping: answer
                    self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        except socket.timeout:
            return None


def listen(args):
    """Connects like klinecast (two logsSubscribe requests back to back),
    records every frame with its arrival time for --seconds, closes the
    socket abruptly, and does it again --rounds times."""
    out = open(args.out, "w") if args.out else sys.stdout
    for rnd in range(args.rounds):
        t0 = time.time()
        try:
            ws = Ws("127.0.0.1", args.ws_port)
        except OSError as e:
            out.write(json.dumps({"round": rnd, "t": t0, "connect_error": str(e)}) + "\n")
            time.sleep(1)
            continue
        for i, program in enumerate([send.PUMP_FUN, "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"]):
            ws.send({"jsonrpc": "2.0", "id": i + 1, "method": "logsSubscribe",
                     "params": [{"mentions": [program]}, {"commitment": "confirmed"}]})
        t_sent = time.time()
        out.write(json.dumps({"round": rnd, "t": t_sent, "subscribed_sent": True}) + "\n")
        end = time.time() + args.seconds
        while time.time() < end:
            try:
                text = ws.recv(max(0.01, end - time.time()))
            except (EOFError, OSError) as e:
                out.write(json.dumps({"round": rnd, "t": time.time(), "closed": str(e) or "EOF"}) + "\n")
                break
            if text is None:
                continue
            msg = json.loads(text)
            row = {"round": rnd, "t": time.time()}
            if "id" in msg:
                row["answer"] = msg
            else:
                r = msg["params"]["result"]
                row.update(sub=msg["params"]["subscription"], slot=r["context"]["slot"],
                           sig=r["value"]["signature"], err=r["value"]["err"])
            out.write(json.dumps(row) + "\n")
            out.flush()
        ws.sock.close()
        time.sleep(args.pause)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "listen":
        q = argparse.ArgumentParser()
        q.add_argument("cmd")
        q.add_argument("--rounds", type=int, default=10)
        q.add_argument("--seconds", type=float, default=3.0)
        q.add_argument("--pause", type=float, default=0.2)
        q.add_argument("--ws-port", type=int, default=8900)
        q.add_argument("--out")
        listen(q.parse_args())
        return
    p = argparse.ArgumentParser()
    p.add_argument("--keypair", required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--rpc-url", default="http://127.0.0.1:8899")
    p.add_argument("--ws-port", type=int, default=8900)
    p.add_argument("--out")
    args = p.parse_args()

    from solders.compute_budget import set_compute_unit_limit
    from solders.hash import Hash
    from solders.instruction import Instruction
    from solders.message import Message
    from solders.pubkey import Pubkey
    from solders.transaction import Transaction
    import random

    rpc = send.Rpc(args.rpc_url, timeout=5)
    kp = send.load_keypair(args.keypair)
    ws = Ws("127.0.0.1", args.ws_port)
    ws.send({"jsonrpc": "2.0", "id": 7, "method": "logsSubscribe",
             "params": [{"mentions": [send.PUMP_FUN]}, {"commitment": "confirmed"}]})
    print("subscribe answer:", ws.recv(5))
    events = send.load_events()
    rng = random.Random(1)
    out = open(args.out, "w") if args.out else None
    shown = False
    lags, listed_at_once = [], 0
    for i in range(args.count):
        bh = rpc.call("getLatestBlockhash", [{"commitment": "confirmed"}])["value"]["blockhash"]
        data = send.make_trade(events[i % len(events)], send.COINS[0], int(time.time()), rng)
        tx = Transaction([kp], Message([set_compute_unit_limit(200_000), Instruction(Pubkey.from_string(send.PUMP_FUN), data, [])],
                                       kp.pubkey()), Hash.from_string(bh))
        sig = str(tx.signatures[0])
        t_send = time.time()
        rpc.call("sendTransaction", [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64", "skipPreflight": True}])
        t_sent = time.time()
        note = None
        while True:
            text = ws.recv(10)
            if text is None:
                print(f"{sig}: no notification in 10 s")
                break
            msg = json.loads(text)
            if msg.get("method") == "logsNotification" and msg["params"]["result"]["value"]["signature"] == sig:
                note = msg
                break
        t_note = time.time()
        if note is None:
            continue
        if not shown:
            print("notification:", text)
            shown = True
        slot = note["params"]["result"]["context"]["slot"]
        listing = rpc.call("getSignaturesForAddress", [send.PUMP_FUN, {"limit": 10, "commitment": "confirmed"}])
        at_once = any(e["signature"] == sig for e in listing)
        tip = rpc.call("getSlot", [{"commitment": "confirmed"}])
        t_listed = time.time() if at_once else None
        tries = 0
        while t_listed is None and time.time() - t_note < 10:
            time.sleep(0.005)
            tries += 1
            listing = rpc.call("getSignaturesForAddress", [send.PUMP_FUN, {"limit": 10, "commitment": "confirmed"}])
            if any(e["signature"] == sig for e in listing):
                t_listed = time.time()
        listed_at_once += at_once
        lag = None if t_listed is None else t_listed - t_note
        lags.append(lag)
        row = {"sig": sig, "slot": slot, "confirmed_tip_at_notification": tip, "send_rpc_s": round(t_sent - t_send, 4),
               "notification_after_send_s": round(t_note - t_send, 4), "listed_at_once": at_once,
               "listed_after_notification_s": None if lag is None else round(lag, 4), "polls": tries,
               "listing_entry": next((e for e in listing if e["signature"] == sig), None)}
        print(json.dumps(row))
        if out:
            out.write(json.dumps(row) + "\n")
        time.sleep(0.3)
    known = [x for x in lags if x is not None]
    print(f"summary: {len(lags)} notified; listed at once {listed_at_once}; "
          f"delay to listing max {max(known) if known else None}")
    # Edge answers.
    unknown = "1" * 64
    for params in ([send.PUMP_FUN, {"limit": 3, "before": unknown, "commitment": "confirmed"}],
                   [send.PUMP_FUN, {"limit": 3, "until": unknown, "commitment": "confirmed"}]):
        try:
            print("getSignaturesForAddress", json.dumps(params[1]), "->", json.dumps(rpc.call("getSignaturesForAddress", params))[:300])
        except Exception as e:  # noqa: BLE001
            print("getSignaturesForAddress", json.dumps(params[1]), "-> error", e)


if __name__ == "__main__":
    main()
