// End-to-end test of the web client in a real browser, against the real
// server and the real Kafka broker:
//
//   node static/test/e2e.mjs --fanout per-client   (from the repository root)
//
// It starts `target/debug/klinecast serve` on a free port with a fresh topic
// (two mock mints, 50 trades/s), opens `/` in Debian's Chromium (driven by
// playwright-core, which never downloads a browser) and checks, in order:
// the page opens live at 1 m with no click, its URL naming the chart;
// sub-1s draws candles; the status line and the mint picker fill; the last
// candle equals what a second WebSocket client, opened by this test,
// received for the same mint and open time; the legend names the quote
// unit and the price / market-cap button switches what is drawn; after its
// connection drops the page resumes without a hole (every 1 s candle there,
// "resumed" in the status line); a page scrolled back loads older pages of
// /api/klines, contiguous with what it had; a browser EventSource on /sse
// streams the same mint's bars (id = seq); a link naming window, mint and
// unit shows that chart in a new page; after a server restart the page
// reconnects by itself and streams again, and the EventSource resumes with
// Last-Event-ID with no hole a gap reply does not name; picking the other
// mint shows it;
// after unsub nothing changes for 3 s; and a page whose /api/klines answers
// 404 and whose /api/mints is empty still streams live. The first failed
// check ends the run. Prints one line per check and `N passed, M failed`
// last; exits 0 only if every check passed. A screenshot is taken before the
// restart (or on failure).
//
// Node's test runner runs every .mjs under a test/ directory, whatever its
// name, so `node --test test/` would start this file too: under the runner
// (NODE_TEST_CONTEXT is set) it only reports itself skipped. The unit tests
// need neither a server nor a browser; this one is run on its own.
//
// Options: --fanout <mode> (passed to the server; default per-client),
// --hold <s> (keep streaming this long before the screenshot; for docs).
// Environment: KLINECAST_BIN (default target/debug/klinecast),
// KLINECAST_TEST_BROKERS (default 127.0.0.1:9092), CHROMIUM (default
// /usr/bin/chromium).
// Artifacts: target/e2e/screenshot-<fanout>.png, target/e2e/server-<fanout>.log.

import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { decodeBar } from "../js/bar.js";

// Loaded by entry(), so the unit test run does not need the dev dependencies.
let chromium;
let WebSocket;

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const ARTIFACTS = path.join(REPO, "target", "e2e");
/** The whole run, start to cleanup; a hang anywhere fails instead of blocking CI. */
const RUN_TIMEOUT_MS = 150_000;
const HEALTH_TIMEOUT_MS = 30_000;
/** How long the page may take to draw its first three 1 s candles. */
const CANDLES_TIMEOUT_MS = 10_000;
const MIN_CANDLES = 3;
/** Tries, and the pause between them, to catch page and reference client at the same update. */
const COMPARE_TRIES = 20;
const COMPARE_PAUSE_MS = 100;
const QUIET_MS = 3000;
const STOP_TIMEOUT_MS = 15_000;
/** Longest the page may take to be back after the server restarts: the backoff has reached 4-8 s by then. */
const RECONNECT_TIMEOUT_MS = 20_000;
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

const { values: options } = parseArgs({
  options: { fanout: { type: "string", default: "per-client" }, hold: { type: "string", default: "0" } },
});
const holdMs = Number(options.hold) * 1000;
const fanout = options.fanout;
/** Shared mode pushes once a second, one update per series: seq may skip. */
const conflated = fanout === "shared";
/**
 * Updates of the chart's mint the page applies after a drop before the
 * candles there are compared: a few seconds' worth (about 25 a second
 * per-client, 2 a second when pushes conflate).
 */
const APPLIED_AFTER_DROP = conflated ? 12 : 50;
/** EventSource events awaited in a check: a few seconds' worth. */
const SSE_EVENTS = conflated ? 8 : 20;

/** What the test started, so cleanup can stop it on every path. */
const run = {
  server: null,
  serverExit: null,
  serverLog: [],
  browser: null,
  profile: null,
  reference: null,
  page: null,
  ssePage: null,
  screenshotTaken: false,
};
const results = { passed: 0, failed: 0 };
const pageErrors = [];

function report(ok, name, detail = "") {
  results[ok ? "passed" : "failed"] += 1;
  console.log(`${ok ? "ok" : "not ok"} - ${name}${detail ? `: ${detail}` : ""}`);
}

/** Runs one check; a failed check ends the run (later checks build on it). */
async function check(name, body) {
  try {
    const detail = await body();
    report(true, name, detail ?? "");
  } catch (error) {
    report(false, name, error.message);
    throw new Stop();
  }
}

class Stop extends Error {}

/** Polls `probe` until it returns a truthy value or `ms` pass. */
async function until(ms, probe, pauseMs = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) return null;
    await sleep(pauseMs);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** The last lines the server printed, to explain why it failed. */
function serverTail() {
  return run.serverLog.join("").trim().split("\n").slice(-8).join("\n    ");
}

/** Starts the server and waits for /healthz; `again` restarts it on the same port and topic. */
async function startServer(port, topic, again = false) {
  const bin = process.env.KLINECAST_BIN ?? path.join(REPO, "target", "debug", "klinecast");
  if (!existsSync(bin)) throw new Error(`${bin} not found: build it with \`cargo build\``);
  const args = [
    "serve",
    "--brokers",
    process.env.KLINECAST_TEST_BROKERS ?? "127.0.0.1:9092",
    "--topic",
    topic,
    "--listen",
    `127.0.0.1:${port}`,
    "--mock-mints",
    "2",
    "--mock-rate",
    "50",
    "--static-dir",
    path.join(REPO, "static"),
    "--fanout",
    fanout,
    "--history-dir",
    path.join(ARTIFACTS, `history-${fanout}-${topic}`),
  ];
  const log = createWriteStream(path.join(ARTIFACTS, `server-${fanout}.log`), { flags: again ? "a" : "w" });
  const server = spawn(bin, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  run.server = server;
  run.serverExit = new Promise((resolve) => server.once("exit", (code, signal) => resolve({ code, signal })));
  for (const stream of [server.stdout, server.stderr]) {
    stream.on("data", (chunk) => {
      log.write(chunk);
      run.serverLog.push(chunk.toString());
      if (run.serverLog.length > 200) run.serverLog.shift();
    });
  }
  let exited = null;
  run.serverExit.then((how) => (exited = how));
  const healthy = await until(HEALTH_TIMEOUT_MS, async () => {
    if (exited !== null) return "exited";
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok && "healthy";
    } catch {
      return null;
    }
  }, 200);
  if (healthy === "exited") {
    throw new Error(`server exited (${exited.code ?? exited.signal}) at start:\n    ${serverTail()}`);
  }
  if (healthy === null) throw new Error(`/healthz not OK within ${HEALTH_TIMEOUT_MS / 1000} s:\n    ${serverTail()}`);
  return `topic ${topic}, port ${port}`;
}

/** SIGTERM, then SIGKILL if the server has not exited after STOP_TIMEOUT_MS. */
async function stopServer() {
  const server = run.server;
  if (server === null || server.exitCode !== null || server.signalCode !== null) return;
  server.kill("SIGTERM");
  const stopped = await Promise.race([run.serverExit, sleep(STOP_TIMEOUT_MS, null)]);
  if (stopped === null) {
    console.log(`# server ignored SIGTERM for ${STOP_TIMEOUT_MS / 1000} s: killed`);
    server.kill("SIGKILL");
    await run.serverExit;
  }
}

/**
 * A second client on /ws subscribed to every 1 s bar: the reference the page
 * is compared with. Keeps the latest update (highest seq) per mint and open time.
 */
function openReference(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const reference = { ws, latest: new Map(), frames: 0 };
    run.reference = reference;
    ws.on("error", reject);
    ws.on("open", () => ws.send("sub-1s"));
    ws.on("message", (data, isBinary) => {
      if (!isBinary) {
        const reply = JSON.parse(data.toString());
        if (reply.type === "subscribed") resolve(reference);
        else reject(new Error(`reference client got ${data}`));
        return;
      }
      const bar = decodeBar(new Uint8Array(data));
      reference.frames += 1;
      const key = `${bar.mint}/${bar.openTime}`;
      const have = reference.latest.get(key);
      if (have === undefined || bar.seq > have.seq) reference.latest.set(key, bar);
    });
  });
}

async function launchPage(port) {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) throw new Error(`${executablePath} not found: apt-get install chromium`);
  run.profile = mkdtempSync(path.join(tmpdir(), "klinecast-e2e-"));
  run.browser = await chromium.launchPersistentContext(run.profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 720 },
  });
  const page = run.browser.pages()[0] ?? (await run.browser.newPage());
  run.page = page;
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`http://127.0.0.1:${port}/`);
  for (const label of ["sub-1s", "sub-1m", "sub-5m", "sub-1h", "unsub"]) {
    const text = await page.getByTestId(label).textContent({ timeout: 5000 });
    if (text.trim() !== label) throw new Error(`button ${label} reads ${JSON.stringify(text)}`);
  }
  await page.waitForFunction(() => window.klinecast !== undefined, null, { timeout: 5000 }).catch(() => {
    throw new Error(`page did not start (window.klinecast missing); status: ${pageErrors.join("; ")}`);
  });
  if ((await page.locator("#chart canvas").count()) === 0) throw new Error("no chart canvas");
  return "controls, chart and test hooks present";
}

const snapshot = (page) =>
  page.evaluate(() => ({
    candles: window.klinecast.candles(),
    lastBar: window.klinecast.lastBar(),
    state: window.klinecast.state(),
  }));

/**
 * With no link, the page opens live without a click: 1 m candles of a coin
 * (the most recently traded one /api/mints lists), and the URL names what
 * it shows.
 */
async function opensLive(page) {
  const s = await until(CANDLES_TIMEOUT_MS, async () => {
    const s = await snapshot(page);
    return s.state.sub?.label === "1m" && s.state.chartMint !== null && s.candles.length > 0 && s.state.applied > 0 && s;
  }, 250);
  if (s === null) throw new Error(`not live at 1 m: ${JSON.stringify((await snapshot(page)).state)}`);
  const url = new URL(page.url());
  const [window_, mint] = [url.searchParams.get("window"), url.searchParams.get("mint")];
  if (window_ !== "1m" || mint !== s.state.chartMint) throw new Error(`URL ${url.search} for 1m of ${s.state.chartMint}`);
  return `1m of ${mint}, ${s.candles.length} candle(s), URL ${url.search}`;
}

/** A link with window, mint and unit shows that chart, in a page of its own. */
async function linkShowsTheSameChart(port) {
  const { state } = await snapshot(run.page);
  const page = await run.browser.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  try {
    await page.goto(`http://127.0.0.1:${port}/?window=1s&mint=${state.chartMint}&unit=mcap`);
    const s = await until(CANDLES_TIMEOUT_MS, async () => {
      const s = await snapshot(page);
      const shown = s.state.sub?.label === "1s" && s.state.chartMint === state.chartMint && s.state.marketCap;
      return shown && s.candles.length > 0 && s.state.applied > 0 && s;
    }, 250);
    if (s === null) throw new Error(`link not followed: ${JSON.stringify((await snapshot(page)).state)}`);
    const unit = (await page.locator("#unit").textContent()).trim();
    if (unit !== "mcap") throw new Error(`unit button reads ${unit}`);
    return `1s of ${state.chartMint} in market caps, ${s.candles.length} candle(s)`;
  } finally {
    await page.close();
  }
}

async function drawsCandles(page) {
  await page.getByTestId("sub-1s").click();
  const seen = await until(CANDLES_TIMEOUT_MS, async () => {
    const s = await snapshot(page);
    // History alone could make three candles: a live update must be drawn too.
    return s.candles.length >= MIN_CANDLES && s.state.applied > 0 && s;
  }, 250);
  if (seen === null) {
    const s = await snapshot(page);
    throw new Error(`${s.candles.length} candles after ${CANDLES_TIMEOUT_MS / 1000} s; state ${JSON.stringify(s.state)}`);
  }
  return `${seen.candles.length} candles of ${seen.state.chartMint} (history: ${seen.state.history})`;
}

async function statusAndPicker(page) {
  // The rate is counted per whole second, so give it one to show.
  const s = (await until(3000, async () => {
    const s = await snapshot(page);
    return s.state.updatesPerSecond > 0 && s;
  })) ?? (await snapshot(page));
  if (s.state.connection !== "open") throw new Error(`connection ${s.state.connection}`);
  if (!(s.state.updatesPerSecond > 0)) throw new Error(`updates per second ${s.state.updatesPerSecond}`);
  if (!Number.isFinite(s.state.latencyMs)) throw new Error(`latency ${s.state.latencyMs}`);
  const status = await page.getByTestId("status").textContent();
  for (const part of ["connected", "upd/s", "latency", "history"]) {
    if (!status.includes(part)) throw new Error(`status line lacks "${part}": ${status}`);
  }
  const option = page.locator(`#mint option[value="${s.state.chartMint}"]`);
  if ((await option.count()) !== 1) throw new Error(`mint picker lacks ${s.state.chartMint}`);
  return status.replace(/\s+/g, " ").trim();
}

async function matchesReference(page) {
  let last = "";
  for (let i = 0; i < COMPARE_TRIES; i++) {
    const s = await snapshot(page);
    const candle = s.candles.at(-1);
    const bar = run.reference.latest.get(`${s.state.chartMint}/${candle.time}`);
    const same = bar !== undefined && ["open", "high", "low", "close"].every((k) => bar[k] === candle[k]);
    if (same) return `open time ${candle.time}, seq ${bar.seq}, close ${candle.close} (try ${i + 1})`;
    last = `page ${JSON.stringify(candle)} (seq ${s.lastBar?.seq}) vs reference ${
      bar ? JSON.stringify({ open: bar.open, high: bar.high, low: bar.low, close: bar.close, seq: String(bar.seq) }) : "none"
    }`;
    await sleep(COMPARE_PAUSE_MS);
  }
  throw new Error(`last candle never matched the reference client: ${last}`);
}

async function unitAndToggle(page) {
  const legend = await page.getByTestId("legend").textContent();
  if (!/price in SOL/.test(legend)) {
    const book = await page.evaluate(() => window.klinecast.book().length);
    const s = await snapshot(page);
    throw new Error(`legend lacks the quote unit: ${legend}; book ${book}, drawn ${s.candles.length}, state ${JSON.stringify(s.state)}`);
  }
  await page.getByTestId("unit").click();
  const s = await until(3000, async () => {
    const s = await snapshot(page);
    const book = await page.evaluate(() => window.klinecast.book());
    const drawn = s.candles.at(-1);
    const held = book.find((c) => c.time === drawn.time);
    const ok = s.state.marketCap && held !== undefined && Math.abs(drawn.close / (held.close * 1e9) - 1) < 1e-9;
    return ok && { drawn, held };
  });
  if (s === null) throw new Error("market caps not drawn after the toggle");
  const mcapLegend = await page.getByTestId("legend").textContent();
  if (!/market cap in SOL/.test(mcapLegend)) throw new Error(`legend after the toggle: ${mcapLegend}`);
  await page.getByTestId("unit").click();
  const back = await until(3000, async () => !(await snapshot(page)).state.marketCap);
  if (back === null) throw new Error("did not switch back to prices");
  return `close ${s.held.close} drawn as market cap ${s.drawn.close} SOL, and back`;
}

/**
 * Drops the page's connection (the server keeps running): it reconnects,
 * resumes from what it last saw, and its 1 s candles have no missing second.
 */
async function resumesWithoutAHole(page, port) {
  const before = await snapshot(page);
  await page.evaluate(() => window.klinecast.dropConnection());
  const back = await until(RECONNECT_TIMEOUT_MS, async () => {
    const s = await snapshot(page);
    const resumed = s.state.connection === "open" && s.state.resume.startsWith("resumed");
    return resumed && s.state.applied > before.state.applied + APPLIED_AFTER_DROP && s;
  }, 250);
  if (back === null) throw new Error(`did not resume: ${JSON.stringify((await snapshot(page)).state)}`);
  if (!back.state.resume.includes("no gap")) throw new Error(`resume reported a gap: ${back.state.resume}`);
  const book = await page.evaluate(() => window.klinecast.book());
  const from = before.candles.at(-1).time - 5;
  const times = book.map((c) => c.time).filter((t) => t >= from);
  // A hole is a bar the server has and the page does not (a second in
  // which the coin did not trade has no bar anywhere).
  const url = `http://127.0.0.1:${port}/api/klines?window=1s&mint=${back.state.chartMint}&startTime=${from * 1000}&limit=1000`;
  const kept = await (await fetch(url)).json();
  const served = kept.map((row) => row.unix_timestamp).filter((t) => t <= times.at(-1));
  const missing = served.filter((t) => !times.includes(t));
  if (served.length < 3 || missing.length > 0) {
    throw new Error(`candles around the drop: ${times.join(",")}; the server's: ${served.join(",")}`);
  }
  const status = (await page.getByTestId("status").textContent()).replace(/\s+/g, " ").trim();
  if (!status.includes("resumed")) throw new Error(`status line: ${status}`);
  return `${back.state.resume}; candles ${times[0]}…${times.at(-1)}, each of the server's ${served.length} bars there`;
}

/** A page showing 3 bars at first loads older pages as it is scrolled back. */
async function scrollsBack(port) {
  const { state } = await snapshot(run.page);
  // Enough kept bars for the first load and two older pages.
  const kept = await until(20_000, async () => {
    const response = await fetch(`http://127.0.0.1:${port}/api/klines?window=1s&mint=${state.chartMint}&limit=1000`);
    const rows = response.ok ? await response.json() : [];
    return rows.length >= 10 && rows;
  }, 500);
  if (kept === null) throw new Error("fewer than 10 bars kept after 20 s");
  const page = await run.browser.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  try {
    await page.goto(`http://127.0.0.1:${port}/?window=1s&mint=${state.chartMint}&limit=3`);
    const first = await until(CANDLES_TIMEOUT_MS, async () => {
      const book = await page.evaluate(() => window.klinecast?.book() ?? []);
      const s = await snapshot(page);
      return book.length >= 3 && /^\d+ bars?$/.test(s.state.history) && book;
    }, 250);
    if (first === null) throw new Error(`no candles and first page: ${JSON.stringify((await snapshot(page)).state)}`);
    const paged = await until(CANDLES_TIMEOUT_MS, async () => {
      await page.evaluate(() => window.klinecast.scrollBack(200));
      const s = await snapshot(page);
      return s.state.olderPages >= 2 && s;
    }, 300);
    if (paged === null) throw new Error(`no older pages: ${JSON.stringify((await snapshot(page)).state)}`);
    const book = await page.evaluate(() => window.klinecast.book());
    // The first load holds the 3 newest rows (2 closed bars, then the one
    // still forming); two older pages 3 closed bars each: anything more
    // than 3 windows before the newest closed one came from older pages.
    const closed = book.filter((c) => c.closed).map((c) => c.time);
    const holes = closed.slice(1).filter((t, i) => t !== closed[i] + 1);
    if (closed.length < 8 || !(closed[0] < closed.at(-1) - 3)) throw new Error(`too few older candles: ${closed.join(",")}`);
    if (holes.length > 0) throw new Error(`candles not contiguous across pages: ${closed.join(",")}`);
    return `${paged.state.olderPages} older page(s): ${closed.length} closed candles ${closed[0]}…${closed.at(-1)}, none missing`;
  } finally {
    await page.close();
  }
}

/**
 * Restarts the server under the page: it must see the drop, reconnect on its
 * own, subscribe again and draw new bars. (The mock is deterministic, so the
 * restarted server trades the same mints.)
 */
async function reconnects(page, port, topic) {
  const before = await snapshot(page);
  await stopServer();
  run.reference.ws.terminate();
  const dropped = await until(5000, async () => (await snapshot(page)).state.connection !== "open");
  if (dropped === null) throw new Error("the page did not notice that the server stopped");
  await startServer(port, topic, true);
  const back = await until(RECONNECT_TIMEOUT_MS, async () => {
    const s = await snapshot(page);
    const newer = s.candles.length > 0 && s.candles.at(-1).time > before.candles.at(-1).time;
    return s.state.connection === "open" && s.state.applied > before.state.applied && newer && s;
  }, 250);
  if (back === null) throw new Error(`not back within ${RECONNECT_TIMEOUT_MS / 1000} s: ${JSON.stringify((await snapshot(page)).state)}`);
  await openReference(port);
  const status = (await page.getByTestId("status").textContent()).replace(/\s+/g, " ").trim();
  return `${back.state.reconnects} reconnect attempt(s); ${status}`;
}

/**
 * A real EventSource on /sse for the chart's mint, in a page of its own
 * (same origin): bars arrive as events whose id is the bar's seq, one
 * series, seq +1 each (shared mode conflates to one update per push: seq
 * only grows).
 */
async function eventSourceStreams(port) {
  const mint = (await snapshot(run.page)).state.chartMint;
  const page = await run.browser.newPage();
  run.ssePage = page;
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`http://127.0.0.1:${port}/healthz`);
  await page.evaluate((mint) => {
    const s = { bars: [], replies: [], errors: 0 };
    window.sse = s;
    const source = new EventSource(`/sse?window=1s&mint=${mint}`);
    source.onerror = () => (s.errors += 1);
    source.onmessage = (e) => {
      const bar = JSON.parse(e.data);
      s.bars.push({ id: e.lastEventId, seq: bar.seq, mint: bar.mint });
    };
    source.addEventListener("reply", (e) => {
      const reply = JSON.parse(e.data);
      // Where in the stream a resume came, and the last seq before it.
      if (reply.since !== undefined) Object.assign(reply, { at: s.bars.length, lastSeen: s.bars.at(-1)?.seq });
      s.replies.push(reply);
    });
  }, mint);
  const s = await until(CANDLES_TIMEOUT_MS, async () => {
    const s = await page.evaluate(() => window.sse);
    return s.bars.length >= SSE_EVENTS && s;
  }, 250);
  if (s === null) throw new Error(`EventSource: ${JSON.stringify(await page.evaluate(() => window.sse))}`);
  if (s.replies[0]?.type !== "subscribed") throw new Error(`first reply ${JSON.stringify(s.replies[0])}`);
  for (const [i, bar] of s.bars.entries()) {
    if (bar.mint !== mint || bar.id !== String(bar.seq)) throw new Error(`event ${JSON.stringify(bar)}`);
    const step = i === 0 ? 1 : bar.seq - s.bars[i - 1].seq;
    if (conflated ? step < 1 : step !== 1) throw new Error(`seq ${s.bars[i - 1].seq} then ${bar.seq}`);
  }
  return `${s.bars.length} events of ${mint}, ids = seq ${s.bars[0].seq}…${s.bars.at(-1).seq}`;
}

/**
 * After the server restart the EventSource reconnects by itself, sending
 * Last-Event-ID: the gateway acknowledges a resume since the last seq it
 * got, and every seq after it arrives once, except what a gap reply names
 * (and, in shared mode, what a push conflated).
 */
async function eventSourceResumes(page) {
  const before = await page.evaluate(() => window.sse.bars.length);
  const s = await until(RECONNECT_TIMEOUT_MS, async () => {
    const s = await page.evaluate(() => window.sse);
    const resumed = s.replies.some((r) => r.type === "subscribed" && r.since !== undefined);
    return resumed && s.bars.length >= before + SSE_EVENTS && s;
  }, 250);
  if (s === null) throw new Error(`no resume: ${JSON.stringify(await page.evaluate(() => window.sse.replies))}`);
  const resume = s.replies.findLast((r) => r.type === "subscribed" && r.since !== undefined);
  const seqs = s.bars.map((b) => b.seq);
  if (resume.since !== resume.lastSeen) throw new Error(`resumed since ${resume.since}, last seen ${resume.lastSeen}`);
  const gaps = s.replies.filter((r) => r.type === "gap");
  for (let i = 1; i < seqs.length; i += 1) {
    if (seqs[i] <= seqs[i - 1]) throw new Error(`seq ${seqs[i - 1]} then ${seqs[i]}: sent twice`);
    const named = gaps.some((g) => g.from_seq === seqs[i - 1] + 1 && (g.to_seq === null || g.to_seq >= seqs[i] - 1));
    if (seqs[i] !== seqs[i - 1] + 1 && !named && !conflated) {
      throw new Error(`seq ${seqs[i - 1]} then ${seqs[i]}, no gap reply`);
    }
  }
  return `resumed since ${resume.since} (${resume.replayed} replayed, ${gaps.length} gap repl${gaps.length === 1 ? "y" : "ies"}), ${s.bars.length - before} events since`;
}

/** Picking the other mint in the picker subscribes to that mint alone and redraws. */
async function picksMint(page) {
  const { state } = await snapshot(page);
  const other = state.mints.find((m) => m !== state.chartMint);
  if (other === undefined) throw new Error(`only ${state.mints.length} mint(s) known: ${state.mints}`);
  await page.locator("#mint").selectOption(other);
  const s = await until(CANDLES_TIMEOUT_MS, async () => {
    const s = await snapshot(page);
    const acked = s.state.lastReply?.type === "subscribed" && s.state.lastReply.mint === other;
    return acked && s.state.chartMint === other && s.lastBar?.mint === other && s.candles.length > 0 && s;
  }, 250);
  if (s === null) throw new Error(`not showing ${other}: ${JSON.stringify((await snapshot(page)).state)}`);
  return `sub-1s ${other} acknowledged, ${s.candles.length} candle(s)`;
}

async function unsubStops(page) {
  await page.getByTestId("unsub").click();
  const before = JSON.stringify((await snapshot(page)).candles);
  const framesBefore = run.reference.frames;
  await sleep(QUIET_MS);
  const after = await snapshot(page);
  if (JSON.stringify(after.candles) !== before) throw new Error("candles changed after unsub");
  if (after.state.sub !== null) throw new Error(`still subscribed: ${JSON.stringify(after.state.sub)}`);
  if (after.state.lastReply?.type !== "unsubscribed") throw new Error(`last reply ${JSON.stringify(after.state.lastReply)}`);
  // Bars kept flowing to the other client, so "nothing changed" means something.
  const flowing = run.reference.frames - framesBefore;
  if (flowing === 0) throw new Error("the reference client got no frames either: the check proves nothing");
  return `unchanged for ${QUIET_MS / 1000} s while the reference client got ${flowing} frames`;
}

/**
 * A second page on a gateway without /api/klines (404) and with nothing in
 * /api/mints yet: its picker waits for mints (or has learned one from a
 * frame already: the page opens live), and it streams live candles and
 * learns the mints from the frames.
 */
async function liveOnly(port) {
  const page = await run.browser.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  try {
    await page.route("**/api/klines**", (route) => route.fulfill({ status: 404, body: "404 Not Found: no such resource\n" }));
    await page.route("**/api/mints", (route) => route.fulfill({ status: 200, contentType: "application/json", body: "[]" }));
    await page.goto(`http://127.0.0.1:${port}/`);
    // Empty until the page, open live at once, learns a mint from a frame.
    const empty = await page.locator("#mint option").first().textContent({ timeout: 5000 });
    if (!/^(waiting for mints…|auto: )/.test(empty)) throw new Error(`empty picker reads ${JSON.stringify(empty)}`);
    await page.getByTestId("sub-1s").click();
    const s = await until(CANDLES_TIMEOUT_MS, async () => {
      const s = await snapshot(page);
      return s.candles.length >= 2 && s.state.history.includes("404") && s;
    }, 250);
    if (s === null) throw new Error(`no live candles without history: ${JSON.stringify((await snapshot(page)).state)}`);
    const learned = await page.locator(`#mint option[value="${s.state.chartMint}"]`).count();
    if (learned !== 1) throw new Error(`mint ${s.state.chartMint} not added to the picker from frames`);
    return `${s.candles.length} candles, history: ${s.state.history}, picker learned ${s.state.mints.length} mint(s)`;
  } finally {
    await page.close();
  }
}

async function screenshot() {
  if (run.page === null || run.screenshotTaken) return;
  run.screenshotTaken = true;
  const file = path.join(ARTIFACTS, `screenshot-${fanout}.png`);
  await run.page.screenshot({ path: file, timeout: 5000 });
  console.log(`# screenshot: ${path.relative(process.cwd(), file)}`);
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const port = await freePort();
  const topic = `e2e-${process.pid}-${Date.now()}`;
  await check(`server starts (--fanout ${fanout})`, () => startServer(port, topic));
  await check("reference WebSocket client subscribes to sub-1s", async () => {
    await openReference(port);
  });
  await check("page loads", () => launchPage(port));
  await check("the page opens live at 1 m, no click, the URL naming what it shows", () => opensLive(run.page));
  await check(`sub-1s draws ${MIN_CANDLES}+ candles within ${CANDLES_TIMEOUT_MS / 1000} s`, () => drawsCandles(run.page));
  await check("status line and mint picker", () => statusAndPicker(run.page));
  await check("last candle equals the reference client's latest bar", () => matchesReference(run.page));
  await check("the legend names the quote unit; price / market cap toggles what is drawn", () => unitAndToggle(run.page));
  await check("after a dropped connection the page resumes without a hole", () => resumesWithoutAHole(run.page, port));
  await check("scrolling back loads older pages of history", () => scrollsBack(port));
  await check("a browser EventSource on /sse streams bars with id = seq", () => eventSourceStreams(port));
  await check("a link with window, mint and unit shows the same chart", () => linkShowsTheSameChart(port));
  if (holdMs > 0) await sleep(holdMs);
  await screenshot();
  await check("reconnects after a server restart and subscribes again", () => reconnects(run.page, port, topic));
  await check("the EventSource resumes with Last-Event-ID, no hole", () => eventSourceResumes(run.ssePage));
  await check("picking a mint shows that mint", () => picksMint(run.page));
  await check("unsub stops updates", () => unsubStops(run.page));
  await check("without /api/klines and /api/mints the page streams live only", () => liveOnly(port));
  await check("no uncaught errors in the page", async () => {
    if (pageErrors.length > 0) throw new Error(pageErrors.join("; "));
  });
}

/** Stops everything the test started, whatever state it got to. */
async function cleanup() {
  await screenshot().catch((error) => console.log(`# screenshot failed: ${error.message}`));
  run.reference?.ws.terminate();
  await run.browser?.close().catch(() => {});
  if (run.profile !== null) rmSync(run.profile, { recursive: true, force: true });
  await stopServer();
}

async function entry() {
  ({ chromium } = await import("playwright-core"));
  ({ default: WebSocket } = await import("ws"));
  let timer;
  const timedOut = new Promise((resolve) => {
    timer = setTimeout(() => resolve("timeout"), RUN_TIMEOUT_MS + holdMs);
  });
  try {
    const outcome = await Promise.race([main().then(() => "done"), timedOut]);
    if (outcome === "timeout") report(false, `run finished within ${(RUN_TIMEOUT_MS + holdMs) / 1000} s`);
  } catch (error) {
    if (!(error instanceof Stop)) report(false, "test harness", error.stack ?? String(error));
  } finally {
    clearTimeout(timer);
    await cleanup();
  }
  console.log(`${results.passed} passed, ${results.failed} failed`);
  process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
}

if (process.env.NODE_TEST_CONTEXT === undefined) {
  await entry();
} else {
  const { test } = await import("node:test");
  test("browser end-to-end test", { skip: "needs a server and Chromium: node static/test/e2e.mjs" }, () => {});
}
