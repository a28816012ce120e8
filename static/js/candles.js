// The candles of the one series the chart shows (one mint, one window), and
// the rules for merging live updates and history into it. No DOM, no chart:
// the page asks "what changed?" and tells the chart; node tests check it.

import { venueNames } from "./bar.js";

/** Most candles kept (scrolling back adds older ones); beyond it the oldest are dropped (5.5 h of 1 s bars). */
export const MAX_CANDLES = 20_000;

/**
 * A candle from a decoded binary frame (js/bar.js). Prices are in the bar's
 * quote (`quote`: SOL, USDC, PUMP, ...); volumes become numbers of whole
 * quote units; `producedNs` stays exact as a decimal string, since a
 * JavaScript number cannot hold unix nanoseconds.
 */
export function candleFromFrame(bar) {
  const units = 10 ** bar.quoteDecimals;
  return {
    mint: bar.mint,
    quote: bar.quote,
    venue: venueNames(bar.venues),
    window: bar.window,
    time: bar.openTime,
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
    volume: Number(bar.volumeQuote) / units,
    buyVolume: Number(bar.buyVolumeQuote) / units,
    trades: bar.trades,
    seq: Number(bar.seq),
    closed: bar.closed,
    producedNs: String(bar.producedNs),
  };
}

/**
 * A candle from one row of `/api/klines` (src/codec/json.rs field names), or
 * null when the row is not a usable bar, so one bad row does not cost the
 * whole history.
 */
export function candleFromJson(row) {
  if (row === null || typeof row !== "object") return null;
  const c = {
    mint: row.mint,
    quote: row.quote_symbol,
    venue: row.venue,
    window: row.time_window_seconds,
    time: row.unix_timestamp,
    open: row.open,
    high: row.high,
    low: row.low,
    close: row.close,
    volume: row.volume_quote,
    buyVolume: row.buy_volume_quote,
    trades: row.trades,
    seq: row.seq,
    closed: row.closed === true,
    producedNs: String(row.produced_ns),
  };
  const numbers = [c.window, c.time, c.open, c.high, c.low, c.close, c.volume, c.buyVolume, c.trades, c.seq];
  if (typeof c.mint !== "string" || typeof c.quote !== "string" || !numbers.every(Number.isFinite)) return null;
  if (!(c.low <= Math.min(c.open, c.close) && Math.max(c.open, c.close) <= c.high)) return null;
  return c;
}

/** The ordered candles of one series, oldest first, one per open time. */
export class CandleBook {
  constructor(limit = MAX_CANDLES) {
    this.limit = limit;
    /** Candles, strictly increasing `time`. */
    this.list = [];
  }

  clear() {
    this.list = [];
  }

  last() {
    return this.list.at(-1) ?? null;
  }

  /**
   * Applies one live update and says what the chart must do:
   * "update" (same open time, newer seq: redraw the last candle),
   * "append" (a later bar), "reset" (appended, but the oldest candles were
   * dropped: redraw everything) or "stale" (older than what is drawn: a
   * resent or reordered update, ignored).
   */
  apply(candle) {
    const last = this.last();
    if (last !== null && candle.time < last.time) return "stale";
    if (last !== null && candle.time === last.time) {
      // seq grows by one per update of a series, so a lower or equal seq is
      // an update the book already has (e.g. resent after a reconnect).
      if (candle.seq <= last.seq) return "stale";
      this.list[this.list.length - 1] = candle;
      return "update";
    }
    this.list.push(candle);
    if (this.list.length > this.limit) {
      this.list.splice(0, this.list.length - this.limit);
      return "reset";
    }
    return "append";
  }

  /**
   * Merges history (closed bars, any order) with what arrived live. For the
   * same open time the higher seq wins, so a history answer that comes back
   * after newer live updates cannot roll a candle back.
   */
  merge(history) {
    const byTime = new Map();
    for (const c of [...history, ...this.list]) {
      const have = byTime.get(c.time);
      if (have === undefined || c.seq > have.seq) byTime.set(c.time, c);
    }
    this.list = [...byTime.values()].sort((a, b) => a.time - b.time).slice(-this.limit);
  }

  /** The candle that opened at `time`, or null (binary search). */
  at(time) {
    let lo = 0;
    let hi = this.list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const t = this.list[mid].time;
      if (t === time) return this.list[mid];
      if (t < time) lo = mid + 1;
      else hi = mid - 1;
    }
    return null;
  }
}
