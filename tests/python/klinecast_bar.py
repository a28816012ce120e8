"""Decoder of the archived Bar, format 2 (docs/wire-format.md), for Python clients.

193 little-endian bytes, fields in declaration order, no padding; the format
version in the first two bytes.
"""

import math
import struct
from dataclasses import dataclass

BAR_FORMAT = 2
BAR_LEN = 193
BAR_V1_LEN = 121
_LAYOUT = struct.Struct("<HBB32s32sqIIddddQQQQQQQQIQ?")
assert _LAYOUT.size == BAR_LEN

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

#: Quote mints with a known symbol and decimals (src/codec/quote.rs).
KNOWN_QUOTES = {
    "So11111111111111111111111111111111111111112": ("SOL", 9),
    "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v": ("USDC", 6),
    "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB": ("USDT", 6),
    "pumpCmXqMfrsAkQ5r49WcJnRayYRqmXz6ae8H7H9Dfn": ("PUMP", 6),
}


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
    format: int
    venues: int
    quote_decimals: int
    mint: str
    quote_mint: str
    open_time_s: int
    window_s: int
    trades: int
    open: float
    high: float
    low: float
    close: float
    volume_quote: int
    volume_tokens: int
    buy_volume_quote: int
    buy_volume_tokens: int
    seq: int
    produced_ns: int
    last_slot: int
    last_signature: int
    last_event: int
    resume_slot: int
    closed: bool

    @property
    def quote_symbol(self) -> str:
        known = KNOWN_QUOTES.get(self.quote_mint)
        return known[0] if known else f"{self.quote_mint[:4]}…{self.quote_mint[-4:]}"


def decode_bar(data: bytes) -> Bar:
    """Decodes one bar; raises ValueError naming the problem."""
    if len(data) == BAR_V1_LEN:
        raise ValueError("bar format 1 (121 bytes, written before prices carried their quote): this reader reads format 2")
    if len(data) >= 2:
        found = int.from_bytes(data[:2], "little")
        if found != BAR_FORMAT:
            raise ValueError(f"bar format {found}, this reader reads format {BAR_FORMAT}: upgrade the reader")
    if len(data) != BAR_LEN:
        raise ValueError(f"not an archived Bar: {len(data)} bytes, expected {BAR_LEN}")
    if data[BAR_LEN - 1] > 1:
        raise ValueError(f"not an archived Bar: closed byte {data[BAR_LEN - 1]}")
    fields = list(_LAYOUT.unpack(data))
    fields[3] = base58(fields[3])
    fields[4] = base58(fields[4])
    bar = Bar(*fields)
    if bar.venues == 0 or bar.venues > 3:
        raise ValueError("invalid bar: venues must be pump.fun, pumpswap or both")
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
