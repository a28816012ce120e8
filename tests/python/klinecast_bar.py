"""Decoder of the archived Bar (docs/wire-format.md) for Python clients.

121 little-endian bytes, fields in declaration order, no padding.
"""

import math
import struct
from dataclasses import dataclass

BAR_LEN = 121
_LAYOUT = struct.Struct("<32sqIIddddQQQQQ?")
assert _LAYOUT.size == BAR_LEN

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as Solana prints keys."""
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


@dataclass(frozen=True)
class Bar:
    mint: str
    open_time_s: int
    window_s: int
    trades: int
    open: float
    high: float
    low: float
    close: float
    volume_lamports: int
    volume_tokens: int
    buy_volume_lamports: int
    seq: int
    produced_ns: int
    closed: bool


def decode_bar(data: bytes) -> Bar:
    """Decodes one bar; raises ValueError naming the problem."""
    if len(data) != BAR_LEN:
        raise ValueError(f"not an archived Bar: {len(data)} bytes, expected {BAR_LEN}")
    if data[120] > 1:
        raise ValueError(f"not an archived Bar: closed byte {data[120]}")
    fields = _LAYOUT.unpack(data)
    bar = Bar(base58(fields[0]), *fields[1:])
    if bar.window_s == 0:
        raise ValueError("invalid bar: window is zero")
    if bar.open_time_s % bar.window_s:
        raise ValueError("invalid bar: open_time is not aligned to the window")
    if bar.trades == 0:
        raise ValueError("invalid bar: a bar has at least one trade")
    prices = (bar.open, bar.high, bar.low, bar.close)
    if not all(math.isfinite(p) and p >= 0 for p in prices):
        raise ValueError("invalid bar: prices must be finite and non-negative")
    if not (bar.low <= bar.open <= bar.high and bar.low <= bar.close <= bar.high):
        raise ValueError("invalid bar: low <= open, close <= high does not hold")
    return bar
