// Unit tests of the web client's pure modules: price formatting, the candle
// book's merge rules and the reconnect backoff. The browser end to end test
// is test/e2e.mjs (not picked up by `node --test test/`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeBar } from "../js/bar.js";
import { CandleBook, candleFromFrame, candleFromJson } from "../js/candles.js";
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, backoffMs } from "../js/feed.js";
import { withBlanks } from "../js/chart.js";
import { formatPrice, formatAmount, minMoveFor, shortMint, windowLabel } from "../js/format.js";

const candle = (time, seq, close = 1) => ({ time, seq, open: 1, high: 2, low: 0.5, close });

test("pump.fun prices show their leading zeros as a subscript", () => {
  assert.equal(formatPrice(2.8e-8), "0.0₇28000");
  assert.equal(formatPrice(3.4414088e-8), "0.0₇34414");
  assert.equal(formatPrice(1.23456e-4), "0.0₃12346");
  assert.equal(formatPrice(9.999999e-9), "0.0₇10000"); // rounding carries into the next power
  assert.equal(formatPrice(1.2e-15), "0.0₁₄12000");
  assert.equal(formatPrice(0.0123456), "0.012346");
  assert.equal(formatPrice(123.456), "123.46");
  assert.equal(formatPrice(0), "0");
  assert.equal(formatPrice(Number.NaN), "–");
});

test("the axis steps in units of the last digit shown", () => {
  assert.equal(minMoveFor(2.8e-8), 1e-12);
  assert.equal(minMoveFor(0.5), 1e-5);
  assert.equal(minMoveFor(0), 1e-12);
});

test("small helpers", () => {
  assert.equal(formatAmount(0.0123), "0.012");
  assert.equal(formatAmount(45.87), "45.9");
  assert.equal(formatAmount(12_345), "12.3k");
  assert.equal(shortMint("Gns5rog6gyi2t8xMDMSuWfcj7HKVTMnFeJPm49tzqmAp"), "Gns5…qmAp");
  assert.deepEqual([1, 60, 300, 3600, 90].map(windowLabel), ["1s", "1m", "5m", "1h", "90s"]);
});

test("live updates replace the last candle, append later ones and ignore older ones", () => {
  const book = new CandleBook();
  assert.equal(book.apply(candle(10, 1)), "append");
  assert.equal(book.apply(candle(10, 2, 1.5)), "update");
  assert.equal(book.apply(candle(10, 2, 9)), "stale", "same seq again (resent)");
  assert.equal(book.apply(candle(11, 3)), "append");
  assert.equal(book.apply(candle(10, 4)), "stale", "older open time");
  assert.deepEqual(book.list.map((c) => [c.time, c.seq]), [[10, 2], [11, 3]]);
  assert.equal(book.last().time, 11);
  assert.equal(book.at(10).close, 1.5);
  assert.equal(book.at(12), null);
});

test("the book is bounded: past its limit the oldest candles go", () => {
  const book = new CandleBook(3);
  for (const t of [1, 2, 3]) book.apply(candle(t, t));
  assert.equal(book.apply(candle(4, 4)), "reset");
  assert.deepEqual(book.list.map((c) => c.time), [2, 3, 4]);
});

test("history merges under live candles: the higher seq wins per open time", () => {
  const book = new CandleBook();
  book.apply(candle(20, 9, 7)); // live, newer than history's bar 20
  book.merge([candle(18, 1), candle(20, 8, 3), candle(19, 5)]);
  assert.deepEqual(book.list.map((c) => [c.time, c.seq, c.close]), [[18, 1, 1], [19, 5, 1], [20, 9, 7]]);
  book.merge([candle(20, 10, 4)]); // a closing update newer than the live one
  assert.equal(book.last().close, 4);
});

test("candles from binary frames and from /api/klines rows agree", () => {
  const vectors = JSON.parse(readFileSync(new URL("../../tests/vectors/bar.json", import.meta.url), "utf8"));
  const { hex } = vectors.valid[0];
  const bar = decodeBar(Uint8Array.from(hex.match(/../g).map((h) => parseInt(h, 16))));
  const fromFrame = candleFromFrame(bar);
  assert.equal(fromFrame.time, bar.openTime);
  assert.equal(fromFrame.volume, Number(bar.volumeQuote) / 1e9);
  assert.equal(fromFrame.venue, "pump.fun");
  assert.equal(fromFrame.quote, "SOL");
  assert.equal(fromFrame.producedNs, String(bar.producedNs));
  const row = {
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
    unix_timestamp: bar.openTime,
    time_window_seconds: bar.window,
    mint: bar.mint,
    quote: bar.quoteMint,
    quote_symbol: "SOL",
    venue: "pump.fun",
    volume_quote: Number(bar.volumeQuote) / 1e9,
    volume_tokens: Number(bar.volumeTokens) / 1e6,
    buy_volume_quote: Number(bar.buyVolumeQuote) / 1e9,
    trades: bar.trades,
    seq: Number(bar.seq),
    closed: bar.closed,
    produced_ns: Number(bar.producedNs),
  };
  const fromJson = candleFromJson(row);
  for (const key of ["mint", "quote", "venue", "window", "time", "open", "high", "low", "close", "volume", "buyVolume", "trades", "seq", "closed"]) {
    assert.equal(fromJson[key], fromFrame[key], key);
  }
  assert.equal(candleFromJson({ ...row, high: row.low / 2 }), null, "low <= high must hold");
  assert.equal(candleFromJson({ ...row, open: "1" }), null);
  assert.equal(candleFromJson(null), null);
});

test("reconnect backoff doubles from 0.5 s, is capped at 10 s and jittered", () => {
  const mid = () => 0.5; // no jitter
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, mid)), [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  assert.equal(backoffMs(1000, mid), BACKOFF_MAX_MS);
  assert.equal(backoffMs(0, () => 0), BACKOFF_MIN_MS * 0.8);
  assert.equal(backoffMs(10, () => 1), BACKOFF_MAX_MS);
});

test("empty windows between candles become blank slots, long gaps are closed up", () => {
  const c = (time) => ({ time, open: 1, high: 1, low: 1, close: 1 });
  assert.deepEqual(withBlanks([c(60), c(240), c(300)], 60).map((p) => [p.time, p.open !== undefined]), [
    [60, true],
    [120, false],
    [180, false],
    [240, true],
    [300, true],
  ]);
  assert.equal(withBlanks([c(0), c(1_000_000)], 1).length, 2);
});
