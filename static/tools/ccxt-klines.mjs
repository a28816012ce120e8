// Reads a klinecast /api/v3/klines URL with ccxt's own Binance kline parser
// (binance.parseOHLCVs, what fetchOHLCV runs on Binance's answer) and prints
// the parsed rows as JSON: [[time ms, open, high, low, close, base volume]].
// Used by tests/client_api.rs to show a Binance client library reads the
// endpoint unchanged. Usage: node static/tools/ccxt-klines.mjs <url>

import ccxt from "ccxt";

const url = process.argv[2];
if (!url) {
  console.error("usage: node static/tools/ccxt-klines.mjs <url of /api/v3/klines>");
  process.exit(2);
}
const response = await fetch(url);
if (!response.ok) {
  console.error(`${url}: HTTP ${response.status}: ${await response.text()}`);
  process.exit(1);
}
const exchange = new ccxt.binance();
const interval = new URL(url).searchParams.get("interval") ?? "1m";
console.log(JSON.stringify(exchange.parseOHLCVs(await response.json(), undefined, interval)));
