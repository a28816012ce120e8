// The page: buttons and the mint picker drive one subscription on /ws; the
// chart shows one series (one mint, one window): history from /api/klines,
// then live binary frames. Test hooks are on window.klinecast.

import { decodeBar } from "./bar.js";
import { CandleBook, candleFromFrame, candleFromJson } from "./candles.js";
import { KlineChart } from "./chart.js";
import { Feed } from "./feed.js";
import { formatAmount, formatPrice, shortMint } from "./format.js";
import { MintPicker } from "./mints.js";

/** The windows the buttons offer, as commands spell them, in seconds. */
const WINDOWS = { "1s": 1, "1m": 60, "5m": 300, "1h": 3600 };
/** Closed bars asked of /api/klines when a series is shown. */
const HISTORY_LIMIT = 500;
/** Status line and legend refresh period; frames arrive far faster. */
const RENDER_MS = 250;

const $ = (id) => document.getElementById(id);

const state = {
  /** The subscription the page wants: { label, windowS }, null after unsub. */
  sub: null,
  /** Window label of the candles in the book; kept across unsub, so
   *  subscribing to the same window again continues the drawn series. */
  shown: null,
  /** The mint chosen in the picker; null means "auto": the first mint seen. */
  picked: null,
  /** The mint the chart shows (the picked one or the first one seen). */
  chartMint: null,
  /** Bumped on every (re)subscription, so late history answers are dropped. */
  generation: 0,
  history: "not loaded",
  frames: 0,
  applied: 0,
  stale: 0,
  badFrames: 0,
  framesThisSecond: 0,
  updatesPerSecond: 0,
  latencyMs: null,
  lastBar: null,
  lastReply: null,
  lastError: "",
  /** Open time under the crosshair, or null: the legend shows the last bar. */
  hoverTime: null,
};

const book = new CandleBook();
let chart = null;
let picker = null;
let feed = null;

function main() {
  if (window.LightweightCharts === undefined) {
    $("status").textContent =
      "chart library missing: /static/node_modules/lightweight-charts was not found (run `npm ci` in static/)";
    return;
  }
  chart = new KlineChart($("chart"), (time) => {
    state.hoverTime = time;
    renderLegend();
  });
  picker = new MintPicker($("mint"), pickMint);
  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  feed = new Feed(wsUrl, { onFrame, onReply, onOpen, onChange: renderStatus });
  for (const button of document.querySelectorAll("button[data-window]")) {
    button.addEventListener("click", () => subscribe(button.dataset.window));
  }
  $("unsub").addEventListener("click", unsubscribe);
  installTestHooks();
  feed.start();
  picker.poll();
  setInterval(() => {
    state.updatesPerSecond = state.framesThisSecond;
    state.framesThisSecond = 0;
  }, 1000);
  setInterval(() => {
    renderStatus();
    renderLegend();
  }, RENDER_MS);
  // Deep links: /?window=1m&mint=<base58> subscribes at once.
  const query = new URLSearchParams(location.search);
  if (query.get("mint")) pickMint(query.get("mint"));
  if (query.get("window") in WINDOWS) subscribe(query.get("window"));
}

/** A window button: show that window of the current mint, live. */
function subscribe(label) {
  if (state.shown !== label) resetSeries();
  state.shown = label;
  state.sub = { label, windowS: WINDOWS[label] };
  chart.setWindow(state.sub.windowS);
  for (const button of document.querySelectorAll("button[data-window]")) {
    button.setAttribute("aria-pressed", String(button.dataset.window === label));
  }
  startSeries();
}

function unsubscribe() {
  state.sub = null;
  state.generation += 1; // an answer still in flight is dropped
  if (state.history === "loading…") state.history = "not loaded";
  feed.send("unsub");
  for (const button of document.querySelectorAll("button[data-window]")) button.setAttribute("aria-pressed", "false");
  renderStatus();
}

/** The picker changed: a mint, or null for "auto". */
function pickMint(mint) {
  if ($("mint").value !== (mint ?? "")) {
    picker.add(mint);
    $("mint").value = mint;
  }
  state.picked = mint;
  state.chartMint = mint;
  picker.setAuto(null);
  resetSeries();
  if (state.sub !== null) startSeries();
}

/**
 * Sends the subscription and loads history. Called on subscribe, on a mint
 * change and after every reconnect (a new connection has no subscriptions,
 * and history fills what was missed while disconnected).
 */
function startSeries() {
  state.generation += 1;
  const { label } = state.sub;
  // The gateway keeps several subscriptions per connection; the page wants
  // exactly one, so it drops whatever it had first.
  feed.send("unsub");
  // "auto" subscribes to every mint: the first one seen becomes the chart's,
  // and the others fill the picker.
  feed.send(state.picked === null ? `sub-${label}` : `sub-${label} ${state.picked}`);
  loadHistory();
}

function resetSeries() {
  book.clear();
  chart.setData([]);
  state.lastBar = null;
  state.history = "not loaded";
}

function onOpen() {
  if (state.sub !== null) startSeries();
}

/**
 * Closed bars of the shown series from /api/klines, merged under what came
 * live. Any failure (404 from a gateway without the endpoint, a network
 * error) means "no history": the chart carries on with live frames.
 */
async function loadHistory() {
  const { generation, sub, chartMint: mint } = state;
  if (sub === null || mint === null) return; // "auto": loaded once a mint is seen
  state.history = "loading…";
  try {
    const url = `/api/klines?window=${sub.label}&mint=${encodeURIComponent(mint)}&limit=${HISTORY_LIMIT}`;
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const rows = await response.json();
    if (!Array.isArray(rows)) throw new Error("not a JSON array");
    if (generation !== state.generation || mint !== state.chartMint) return;
    const candles = rows.map(candleFromJson).filter((c) => c !== null && c.mint === mint && c.window === sub.windowS);
    book.merge(candles);
    chart.setData(book.list);
    state.history = `${candles.length} bar${candles.length === 1 ? "" : "s"}`;
  } catch (error) {
    if (generation === state.generation) state.history = `none (${error.message}), live only`;
  }
  renderStatus();
}

function onFrame(buffer) {
  let bar;
  try {
    bar = decodeBar(buffer);
  } catch (error) {
    state.badFrames += 1;
    state.lastError = error.message;
    return;
  }
  state.frames += 1;
  state.framesThisSecond += 1;
  state.latencyMs = Date.now() - Number(bar.producedNs / 1000n) / 1000;
  picker.add(bar.mint, bar.quote);
  // After unsub, or from a window the page no longer shows: not drawn.
  if (state.sub === null || bar.window !== state.sub.windowS) return;
  if (state.chartMint === null) {
    state.chartMint = bar.mint;
    picker.setAuto(bar.mint);
    loadHistory();
  }
  if (bar.mint !== state.chartMint) return;
  const candle = candleFromFrame(bar);
  const change = book.apply(candle);
  if (change === "stale") {
    state.stale += 1;
    return;
  }
  state.applied += 1;
  state.lastBar = candle;
  if (change === "reset") chart.setData(book.list);
  else chart.update(candle);
}

function onReply(reply) {
  state.lastReply = reply;
  // An error stays on the status line until the next command succeeds.
  state.lastError = reply.type === "error" ? String(reply.error) : "";
  renderStatus();
}

function renderStatus() {
  const parts = [];
  if (feed.state === "open") parts.push(["ok", "● connected"]);
  else if (feed.state === "connecting") parts.push(["warn", "● connecting…"]);
  else {
    const wait = Math.max(0, (feed.retryAt - Date.now()) / 1000).toFixed(1);
    parts.push(["bad", `● disconnected (${feed.lastClose}), retry in ${wait} s`]);
  }
  const sub = state.sub;
  if (sub === null) parts.push(["", "not subscribed"]);
  else parts.push(["", `sub-${sub.label} · ${state.picked === null ? "all mints" : shortMint(state.picked)}`]);
  parts.push(["", `${state.updatesPerSecond} upd/s`]);
  parts.push(["", state.latencyMs === null ? "latency –" : `latency ${state.latencyMs.toFixed(0)} ms`]);
  parts.push(["", `history: ${state.history}`]);
  if (feed.reconnects > 0) parts.push(["", `reconnects: ${feed.reconnects}`]);
  const problem = state.lastError || picker.error;
  if (problem) parts.push(["bad", problem]);
  $("status").replaceChildren(...spans(parts));
}

function renderLegend() {
  const c = (state.hoverTime !== null && book.at(state.hoverTime)) || book.last();
  if (c === null) {
    const what = state.sub === null ? "click a window (sub-1s …) to stream candles" : "waiting for the first bar…";
    $("legend").replaceChildren(what);
    return;
  }
  const change = c.open > 0 ? ((c.close - c.open) / c.open) * 100 : 0;
  const buyShare = c.volume > 0 ? (c.buyVolume / c.volume) * 100 : 0;
  const fields = [
    ["mint", shortMint(c.mint), c.mint],
    ["", state.shown ?? ""],
    ["unit", `price in ${c.quote}`, `prices and volumes in ${c.quote}; trades on ${c.venue}`],
    ["", `O ${formatPrice(c.open)}`],
    ["", `H ${formatPrice(c.high)}`],
    ["", `L ${formatPrice(c.low)}`],
    [change >= 0 ? "ok" : "bad", `C ${formatPrice(c.close)} (${change >= 0 ? "+" : ""}${change.toFixed(2)}%)`],
    ["", `vol ${formatAmount(c.volume)} ${c.quote}`],
    ["", `buys ${buyShare.toFixed(0)}%`],
    ["", `${c.trades} trades`],
    ["", c.venue],
    ["", c.closed ? "closed" : "open"],
  ];
  $("legend").replaceChildren(...spans(fields));
}

/**
 * [class, text, title?] triples as spans, separated by spaces so the text
 * reads well when copied or read aloud (the flex gap does the visual part).
 */
function spans(parts) {
  return parts.flatMap(([kind, text, title], i) => {
    const span = document.createElement("span");
    span.className = kind;
    span.textContent = text;
    if (title) span.title = title;
    return i === 0 ? [span] : [" ", span];
  });
}

/** Read-only views of what the page holds, for the browser test. */
function installTestHooks() {
  window.klinecast = {
    /** The candle series' data, i.e. what is drawn: { time, open, high, low, close }. */
    candles: () => chart.drawn(),
    /** The last live update drawn, as a candle (js/candles.js), or null. */
    lastBar: () => (state.lastBar === null ? null : { ...state.lastBar }),
    state: () => ({
      connection: feed.state,
      sub: state.sub === null ? null : { ...state.sub },
      picked: state.picked,
      chartMint: state.chartMint,
      mints: [...picker.known],
      frames: state.frames,
      applied: state.applied,
      stale: state.stale,
      badFrames: state.badFrames,
      updatesPerSecond: state.updatesPerSecond,
      latencyMs: state.latencyMs,
      history: state.history,
      reconnects: feed.reconnects,
      lastReply: state.lastReply,
      lastError: state.lastError,
    }),
  };
}

main();
