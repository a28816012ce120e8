// The chart: candlesticks in the top pane, quote volume in a pane below, drawn
// by lightweight-charts v5. The standalone build is loaded by a classic
// <script> in index.html and defines window.LightweightCharts; this module
// only turns candles (js/candles.js) into the library's data points.

import { formatAmount, formatPrice, formatTick, formatTime, minMoveFor } from "./format.js";

const UP = "#26a69a";
const DOWN = "#ef5350";
const UP_VOLUME = "rgba(38, 166, 154, 0.5)";
const DOWN_VOLUME = "rgba(239, 83, 80, 0.5)";

const toCandle = (c) => ({ time: c.time, open: c.open, high: c.high, low: c.low, close: c.close });
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
    this.chart.subscribeCrosshairMove((param) => onHover(param.time ?? null));
  }

  /** Replaces everything drawn (history loaded, series switched). */
  setData(list) {
    if (list.length > 0) this.#fitPriceFormat(list.at(-1).close);
    this.candles.setData(list.map(toCandle));
    this.volume.setData(list.map(toVolume));
  }

  /** Redraws the last candle or appends one; `c.time` is never older. */
  update(c) {
    this.#fitPriceFormat(c.close);
    this.candles.update(toCandle(c));
    this.volume.update(toVolume(c));
  }

  /** 1 s bars need seconds on the time axis; minutes and hours do not. */
  setWindow(windowS) {
    this.chart.applyOptions({ timeScale: { secondsVisible: windowS < 60 } });
  }

  /** What the candle series holds, i.e. what is drawn (test hook). */
  drawn() {
    return this.candles.data().map(toCandle);
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
