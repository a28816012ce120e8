// The chart: candlesticks in the top pane, quote volume in a pane below, drawn
// by lightweight-charts v5. The standalone build is loaded by a classic
// <script> in index.html and defines window.LightweightCharts; this module
// only turns candles (js/candles.js) into the library's data points.

import { formatAmount, formatPrice, formatTick, formatTime, minMoveFor } from "./format.js";

const UP = "#26a69a";
const DOWN = "#ef5350";
const UP_VOLUME = "rgba(38, 166, 154, 0.5)";
const DOWN_VOLUME = "rgba(239, 83, 80, 0.5)";

/** Price × this is the market cap: every pump.fun coin has 1,000,000,000 tokens (src/codec/json.rs). */
export const TOTAL_SUPPLY_TOKENS = 1e9;
/** Empty windows drawn as blank slots between candles, at most this many per gap (a longer gap is drawn closed up). */
export const MAX_BLANK_SLOTS = 600;

const toCandle = (c, f = 1) => ({ time: c.time, open: c.open * f, high: c.high * f, low: c.low * f, close: c.close * f });
// Volume bars take the candle's colour: the eye reads a tall red bar as
// "heavy selling" without looking up.
const toVolume = (c) => ({ time: c.time, value: c.volume, color: c.close >= c.open ? UP_VOLUME : DOWN_VOLUME });

export class KlineChart {
  /** `onHover(time | null)`: the crosshair moved to a candle or left. */
  constructor(container, onHover) {
    const LC = window.LightweightCharts;
    this.chart = LC.createChart(container, {
      autoSize: true,
      layout: {
        background: { type: LC.ColorType.Solid, color: "#0e1117" },
        textColor: "#c9d1d9",
        fontFamily: "system-ui, 'DejaVu Sans', sans-serif",
        panes: { separatorColor: "#30363d" },
      },
      grid: { vertLines: { color: "#1b2129" }, horzLines: { color: "#1b2129" } },
      crosshair: { mode: LC.CrosshairMode.Normal },
      rightPriceScale: { borderColor: "#30363d" },
      timeScale: {
        borderColor: "#30363d",
        timeVisible: true,
        secondsVisible: true,
        rightOffset: 4,
        barSpacing: 9,
        tickMarkFormatter: formatTick,
      },
      localization: { timeFormatter: formatTime },
    });
    this.candles = this.chart.addSeries(LC.CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      wickUpColor: UP,
      wickDownColor: DOWN,
      borderVisible: false,
    });
    this.volume = this.chart.addSeries(
      LC.HistogramSeries,
      {
        priceFormat: { type: "custom", formatter: formatAmount, minMove: 0.001 },
        priceLineVisible: false,
      },
      1,
    );
    // Three quarters of the height for prices, one for volume.
    this.chart.panes()[0].setStretchFactor(3);
    this.chart.panes()[1].setStretchFactor(1);
    /** Decimal exponent of the price the axis format was made for. */
    this.magnitude = null;
    /** Multiplier of prices: 1, or the supply for market caps. */
    this.factor = 1;
    /** Window length, seconds (for blank slots). */
    this.windowS = 1;
    /** Time of the last candle drawn. */
    this.lastTime = null;
    this.chart.subscribeCrosshairMove((param) => onHover(param.time ?? null));
  }

  /**
   * Replaces everything drawn (history loaded, series switched). Windows
   * without trades between two candles become blank slots, so the time
   * axis keeps its scale across quiet stretches.
   */
  setData(list, keepView = false) {
    const view = keepView ? this.chart.timeScale().getVisibleRange() : null;
    if (list.length > 0) this.#fitPriceFormat(list.at(-1).close * this.factor);
    const points = [];
    for (const c of withBlanks(list, this.windowS)) points.push(c.open === undefined ? c : toCandle(c, this.factor));
    this.candles.setData(points);
    this.volume.setData(list.map(toVolume));
    this.lastTime = list.at(-1)?.time ?? null;
    if (view !== null) this.chart.timeScale().setVisibleRange(view);
  }

  /** Redraws the last candle or appends one; `c.time` is never older. */
  update(c, list) {
    if (this.lastTime !== null && c.time > this.lastTime + this.windowS && list !== undefined) {
      this.setData(list, true); // a gap: redraw with its blank slots
      return;
    }
    this.#fitPriceFormat(c.close * this.factor);
    this.candles.update(toCandle(c, this.factor));
    this.volume.update(toVolume(c));
    this.lastTime = c.time;
  }

  /** 1 s bars need seconds on the time axis; minutes and hours do not. */
  setWindow(windowS) {
    this.windowS = windowS;
    this.chart.applyOptions({ timeScale: { secondsVisible: windowS < 60 } });
  }

  /** Prices (false) or market caps (true); redraw with setData after. */
  setMarketCap(on) {
    this.factor = on ? TOTAL_SUPPLY_TOKENS : 1;
    this.magnitude = null;
  }

  /** `onNearStart()` runs when the user scrolls to within a screen of the oldest candle. */
  onScrollBack(onNearStart) {
    this.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
      if (range !== null && range.from < 10) onNearStart();
    });
  }

  /** Scrolls the view `bars` bars back (test hook: what dragging the chart to the right does). */
  scrollBack(bars) {
    const scale = this.chart.timeScale();
    scale.scrollToPosition(scale.scrollPosition() - bars, false);
  }

  /** What the candle series holds, i.e. what is drawn (test hook); blank slots are left out. */
  drawn() {
    return this.candles.data().filter((p) => p.open !== undefined).map((p) => toCandle(p));
  }

  /**
   * The axis steps in units of the last digit shown, which depends on the
   * price's size (3e-8 for a new pump.fun token, far more after it runs), so
   * the format follows the decimal exponent of the price.
   */
  #fitPriceFormat(price) {
    if (!(price > 0)) return;
    const magnitude = Math.floor(Math.log10(price));
    if (magnitude === this.magnitude) return;
    this.magnitude = magnitude;
    this.candles.applyOptions({ priceFormat: { type: "custom", formatter: (p) => formatPrice(p), minMove: minMoveFor(price) } });
  }
}

/** The candles with blank slots ({ time } only) for empty windows between them, at most MAX_BLANK_SLOTS per gap. */
export function withBlanks(list, windowS) {
  const out = [];
  for (let i = 0; i < list.length; i++) {
    if (i > 0) {
      const slots = (list[i].time - list[i - 1].time) / windowS - 1;
      if (slots > 0 && slots <= MAX_BLANK_SLOTS) {
        for (let k = 1; k <= slots; k++) out.push({ time: list[i - 1].time + k * windowS });
      }
    }
    out.push(list[i]);
  }
  return out;
}
