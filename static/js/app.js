// The page: it opens live on the most recently traded coin at 1 m (or on
// what its URL names: ?window=1s&mint=<base58>&unit=mcap, kept up to date so
// a shared link shows the same chart); buttons and the mint picker drive one
// subscription on /ws; the chart shows one series (one mint, one window):
// history from /api/klines,
// then live binary frames; older pages of /api/klines when the user scrolls
// back. After a drop it resumes where it was (`sub-<w> <mint> since <seq>`,
// or `from <ms>` for every mint), so no update is missing; a gap the
// gateway reports is filled from /api/klines. Test hooks are on
// window.klinecast.

import { decodeBar } from "./bar.js";
import { CandleBook, candleFromFrame, candleFromJson } from "./candles.js";
import { KlineChart, TOTAL_SUPPLY_TOKENS } from "./chart.js";
import { Feed } from "./feed.js";
import { formatAmount, formatPrice, shortMint } from "./format.js";
import { MintPicker } from "./mints.js";

/** The windows the buttons offer, as commands spell them, in seconds. */
const WINDOWS = { "1s": 1, "1m": 60, "5m": 300, "1h": 3600 };
/** The window the page opens on when its URL names none. */
const DEFAULT_WINDOW = "1m";
/**
 * How long after the first history answer of a series it is asked once
 * more: a bar that closed just before the subscription is not in the live
 * stream, and reaches the history store a moment after it closed (its
 * writer commits what it reads from Kafka every ~200 ms).
 */
const HISTORY_SETTLE_MS = 1500;

/** Closed bars asked of /api/klines when a series is shown, and per older page (deep link: ?limit=). */
const HISTORY_LIMIT = 500;
const historyLimit = Math.min(1000, Math.max(1, Number(new URLSearchParams(location.search).get("limit")) || HISTORY_LIMIT));
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
  /** Times the shown series was cleared (a window or mint change). */
  resets: 0,
  badFrames: 0,
  framesThisSecond: 0,
  updatesPerSecond: 0,
  latencyMs: null,
  lastBar: null,
  lastReply: null,
  lastError: "",
  /** Open time under the crosshair, or null: the legend shows the last bar. */
  hoverTime: null,
  /** Market caps instead of prices. */
  marketCap: false,
  /** The newest produced time (ms) of any frame: where a resume of every mint starts. */
  lastProducedMs: null,
  /** What the last resume did, for the status line. */
  resume: "",
  /** Older pages: "idle", "loading", or "all" (nothing older kept). */
  older: "idle",
  olderPages: 0,
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
  $("unit").addEventListener("click", toggleUnit);
  chart.onScrollBack(loadOlder);
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
  // Deep links (/?window=1m&mint=<base58>&unit=mcap) show that chart; without
  // one the page opens live on the most recently traded coin.
  const query = new URLSearchParams(location.search);
  if (query.get("unit") === "mcap") toggleUnit();
  const label = query.get("window") in WINDOWS ? query.get("window") : DEFAULT_WINDOW;
  if (query.get("mint")) {
    pickMint(query.get("mint"));
    subscribe(label);
  } else {
    openLive(label);
  }
}

/**
 * Opens `label` of the most recently traded coin (the first /api/mints
 * lists), or of the first coin a frame brings when none is known yet, in
 * "auto" mode; unless a button was pressed meanwhile.
 */
async function openLive(label) {
  let newest;
  try {
    const response = await fetch("/api/mints", { cache: "no-store" });
    const list = response.ok ? await response.json() : [];
    if (Array.isArray(list) && typeof list[0]?.mint === "string") newest = list[0];
  } catch {
    // No list: the first frame names the coin.
  }
  // A button or the picker was used meanwhile: that choice stands.
  if (state.sub !== null || state.picked !== null || state.chartMint !== null) return;
  if (newest !== undefined) {
    picker.add(newest.mint, newest.quote_symbol ?? "");
    state.chartMint = newest.mint;
    picker.setAuto(newest.mint);
  }
  subscribe(label);
}

/** Puts what the chart shows in the URL (window, mint, unit), so a link to it shows the same. */
function syncUrl() {
  const query = new URLSearchParams(location.search);
  const set = (key, value) => (value ? query.set(key, value) : query.delete(key));
  set("window", state.sub?.label);
  set("mint", state.picked ?? state.chartMint);
  set("unit", state.marketCap ? "mcap" : null);
  const search = query.toString();
  history.replaceState(null, "", search === "" ? location.pathname : `${location.pathname}?${search}`);
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
  syncUrl();
}

/** The price / market-cap button. */
function toggleUnit() {
  state.marketCap = !state.marketCap;
  $("unit").textContent = state.marketCap ? "mcap" : "price";
  $("unit").setAttribute("aria-pressed", String(state.marketCap));
  chart.setMarketCap(state.marketCap);
  chart.setData(book.list, true);
  renderLegend();
  syncUrl();
}

function unsubscribe() {
  state.sub = null;
  state.generation += 1; // an answer still in flight is dropped
  if (state.history === "loading…") state.history = "not loaded";
  feed.send("unsub");
  for (const button of document.querySelectorAll("button[data-window]")) button.setAttribute("aria-pressed", "false");
  renderStatus();
  syncUrl();
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
  syncUrl();
}

/**
 * Sends the subscription and loads history. Called on subscribe, on a mint
 * change and after every reconnect (a new connection has no subscriptions).
 * After a reconnect the page resumes: the gateway replays what came while
 * it was away, so history is loaded again only if it reports a gap.
 */
function startSeries(resume = false) {
  state.generation += 1;
  const { label } = state.sub;
  // The gateway keeps several subscriptions per connection; the page wants
  // exactly one, so it drops whatever it had first.
  feed.send("unsub");
  const last = book.last();
  if (resume && state.picked !== null && last !== null && last.mint === state.picked) {
    feed.send(`sub-${label} ${state.picked} since ${state.lastBar?.seq ?? last.seq}`);
    return;
  }
  if (resume && state.picked === null && state.lastProducedMs !== null && last !== null) {
    feed.send(`sub-${label} from ${state.lastProducedMs}`);
    return;
  }
  // "auto" subscribes to every mint: the first one seen becomes the chart's,
  // and the others fill the picker.
  feed.send(state.picked === null ? `sub-${label}` : `sub-${label} ${state.picked}`);
  loadHistory();
}

function resetSeries() {
  state.resets += 1;
  book.clear();
  chart.setData([]);
  state.lastBar = null;
  state.history = "not loaded";
  state.older = "idle";
  state.olderPages = 0;
}

function onOpen() {
  if (state.sub !== null) startSeries(feed.reconnects > 0);
}

/**
 * Closed bars of the shown series from /api/klines, merged under what came
 * live. Any failure (404 from a gateway without the endpoint, a network
 * error) means "no history": the chart carries on with live frames.
 */
async function loadHistory(settle = false) {
  const { generation, sub, chartMint: mint } = state;
  if (sub === null || mint === null) return; // "auto": loaded once a mint is seen
  state.history = "loading…";
  try {
    const url = `/api/klines?window=${sub.label}&mint=${encodeURIComponent(mint)}&limit=${historyLimit}`;
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const rows = await response.json();
    if (!Array.isArray(rows)) throw new Error("not a JSON array");
    if (generation !== state.generation || mint !== state.chartMint) return;
    const candles = rows.map(candleFromJson).filter((c) => c !== null && c.mint === mint && c.window === sub.windowS);
    book.merge(candles);
    chart.setData(book.list);
    renderLegend();
    state.history = `${candles.length} bar${candles.length === 1 ? "" : "s"}`;
    if (!settle) {
      // Once more, for a bar that closed just before the subscription.
      setTimeout(() => {
        if (generation === state.generation && mint === state.chartMint) loadHistory(true);
      }, HISTORY_SETTLE_MS);
    }
  } catch (error) {
    if (generation === state.generation) state.history = `none (${error.message}), live only`;
  }
  renderStatus();
}

/**
 * The page of closed bars before the oldest candle, when the user scrolls
 * back to it; stops asking once a page comes back short (nothing older kept).
 */
async function loadOlder() {
  const { generation, sub, chartMint: mint } = state;
  const first = book.list[0];
  if (sub === null || mint === null || first === undefined || state.older !== "idle") return;
  // Older than what? The first page is still on its way.
  if (state.history === "loading…") return;
  state.older = "loading";
  try {
    const end = first.time * 1000 - 1;
    const url = `/api/klines?window=${sub.label}&mint=${encodeURIComponent(mint)}&endTime=${end}&limit=${historyLimit}`;
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const rows = await response.json();
    if (generation !== state.generation || mint !== state.chartMint) return;
    const candles = rows.map(candleFromJson).filter((c) => c !== null && c.mint === mint && c.window === sub.windowS);
    book.merge(candles);
    chart.setData(book.list, true);
    state.olderPages += 1;
    state.older = rows.length < historyLimit ? "all" : "idle";
  } catch (error) {
    state.older = "idle";
    state.lastError = `older bars: ${error.message}`;
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
  const producedMs = Number(bar.producedNs / 1_000_000n);
  if (state.lastProducedMs === null || producedMs > state.lastProducedMs) state.lastProducedMs = producedMs;
  picker.add(bar.mint, bar.quote);
  // After unsub, or from a window the page no longer shows: not drawn.
  if (state.sub === null || bar.window !== state.sub.windowS) return;
  if (state.chartMint === null) {
    state.chartMint = bar.mint;
    picker.setAuto(bar.mint);
    loadHistory();
    syncUrl();
  }
  if (bar.mint !== state.chartMint) return;
  const candle = candleFromFrame(bar);
  const first = book.last() === null;
  const change = book.apply(candle);
  if (change === "stale") {
    state.stale += 1;
    return;
  }
  state.applied += 1;
  state.lastBar = candle;
  if (change === "reset") chart.setData(book.list, true);
  else chart.update(candle, book.list);
  // The legend follows at its own pace, except for the first candle: it
  // never says "waiting" over a drawn chart.
  if (first) renderLegend();
}

function onReply(reply) {
  if (reply.type === "gap") {
    // The gateway no longer has some of what came while the page was away:
    // closed bars fill it from the history store.
    const range = reply.from_seq !== undefined ? `seq ${reply.from_seq}–${reply.to_seq ?? "?"}` : `${reply.from_time}–${reply.to_time} ms`;
    state.resume = `resumed with a gap (${range}): history reloaded`;
    loadHistory();
    renderStatus();
    return;
  }
  if (reply.type === "subscribed" && reply.replayed !== undefined) {
    state.resume = `resumed: ${reply.replayed} update${reply.replayed === 1 ? "" : "s"} replayed, no gap`;
  }
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
  parts.push(["", `history: ${state.history}${state.olderPages > 0 ? ` + ${state.olderPages} older page${state.olderPages === 1 ? "" : "s"}` : ""}${state.older === "all" ? " (all kept)" : ""}`]);
  if (state.resume) parts.push(["", state.resume]);
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
  const f = state.marketCap ? TOTAL_SUPPLY_TOKENS : 1;
  const buyShare = c.volume > 0 ? (c.buyVolume / c.volume) * 100 : 0;
  const fields = [
    ["mint", shortMint(c.mint), c.mint],
    ["", state.shown ?? ""],
    ["unit", `${state.marketCap ? "market cap" : "price"} in ${c.quote}`, `${state.marketCap ? "market caps (price × 1,000,000,000 tokens)" : "prices per token"} and volumes in ${c.quote}; trades on ${c.venue}`],
    ["", `O ${formatPrice(c.open * f)}`],
    ["", `H ${formatPrice(c.high * f)}`],
    ["", `L ${formatPrice(c.low * f)}`],
    [change >= 0 ? "ok" : "bad", `C ${formatPrice(c.close * f)} (${change >= 0 ? "+" : ""}${change.toFixed(2)}%)`],
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
    /** The candles the page holds (prices), oldest first. */
    book: () => book.list.map((c) => ({ ...c })),
    /** Drops the WebSocket as a network failure would; the page reconnects and resumes. */
    dropConnection: () => feed.drop(),
    /** Scrolls the chart `bars` bars back, as dragging it would. */
    scrollBack: (bars) => chart.scrollBack(bars),
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
      resets: state.resets,
      badFrames: state.badFrames,
      updatesPerSecond: state.updatesPerSecond,
      latencyMs: state.latencyMs,
      history: state.history,
      reconnects: feed.reconnects,
      lastReply: state.lastReply,
      lastError: state.lastError,
      marketCap: state.marketCap,
      resume: state.resume,
      older: state.older,
      olderPages: state.olderPages,
    }),
  };
}

main();
