// Decoder of the archived Bar, format 2 (docs/wire-format.md): 193
// little-endian bytes, fields in order, no padding, the format version in
// the first two. Shared by the web page and node tests.

export const BAR_FORMAT = 2;
export const BAR_LEN = 193;
const BAR_V1_LEN = 121;

/** Quote mints whose symbol and decimals are known (src/codec/quote.rs). */
export const KNOWN_QUOTES = {
  So11111111111111111111111111111111111111112: { symbol: "SOL", decimals: 9 },
  EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v: { symbol: "USDC", decimals: 6 },
  Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB: { symbol: "USDT", decimals: 6 },
  pumpCmXqMfrsAkQ5r49WcJnRayYRqmXz6ae8H7H9Dfn: { symbol: "PUMP", decimals: 6 },
};

/** The symbol of a quote mint, or its base58 shortened. */
export function quoteSymbol(mint) {
  const known = KNOWN_QUOTES[mint];
  return known ? known.symbol : `${mint.slice(0, 4)}…${mint.slice(-4)}`;
}

/** Venue bits (1 pump.fun curve, 2 PumpSwap) as names. */
export function venueNames(bits) {
  return ["none", "pump.fun", "pumpswap", "pump.fun+pumpswap"][bits & 3];
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** Base58 (Bitcoin alphabet) of a byte array, as Solana prints keys. */
export function base58(bytes) {
  const digits = [0];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] << 8;
      digits[i] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = "";
  for (const byte of bytes) {
    if (byte !== 0) break;
    out += "1";
  }
  for (let i = digits.length - 1; i >= 0; i--) {
    if (i === digits.length - 1 && digits[i] === 0 && out.length === bytes.length) continue;
    out += BASE58[digits[i]];
  }
  return out;
}

/**
 * Decodes one bar from an ArrayBuffer, a typed array or a DataView.
 * Throws an Error naming the problem for anything that is not a valid bar.
 */
export function decodeBar(input) {
  const view =
    input instanceof DataView
      ? input
      : ArrayBuffer.isView(input)
        ? new DataView(input.buffer, input.byteOffset, input.byteLength)
        : new DataView(input);
  if (view.byteLength === BAR_V1_LEN) {
    throw new Error("bar format 1 (121 bytes, written before prices carried their quote): this reader reads format 2");
  }
  if (view.byteLength >= 2 && view.getUint16(0, true) !== BAR_FORMAT) {
    throw new Error(`bar format ${view.getUint16(0, true)}, this reader reads format ${BAR_FORMAT}: upgrade the reader`);
  }
  if (view.byteLength !== BAR_LEN) {
    throw new Error(`not an archived Bar: ${view.byteLength} bytes, expected ${BAR_LEN}`);
  }
  const closedByte = view.getUint8(192);
  if (closedByte > 1) throw new Error(`not an archived Bar: closed byte ${closedByte}`);
  const u64 = (at) => view.getBigUint64(at, true);
  const f64 = (at) => view.getFloat64(at, true);
  const key = (at) => base58(new Uint8Array(view.buffer, view.byteOffset + at, 32));
  const quoteMint = key(36);
  const bar = {
    format: view.getUint16(0, true),
    venues: view.getUint8(2),
    quoteDecimals: view.getUint8(3),
    mint: key(4),
    quoteMint,
    quote: quoteSymbol(quoteMint),
    openTime: Number(view.getBigInt64(68, true)),
    window: view.getUint32(76, true),
    trades: view.getUint32(80, true),
    open: f64(84),
    high: f64(92),
    low: f64(100),
    close: f64(108),
    volumeQuote: u64(116),
    volumeTokens: u64(124),
    buyVolumeQuote: u64(132),
    buyVolumeTokens: u64(140),
    seq: u64(148),
    producedNs: u64(156),
    lastSlot: u64(164),
    lastSignature: u64(172),
    lastEvent: view.getUint32(180, true),
    resumeSlot: u64(184),
    closed: closedByte === 1,
  };
  checkBar(bar);
  return bar;
}

function checkBar(bar) {
  if (bar.venues === 0 || bar.venues > 3) throw new Error("invalid bar: venues must be pump.fun, pumpswap or both");
  if (bar.window === 0) throw new Error("invalid bar: window is zero");
  if (bar.openTime % bar.window !== 0) throw new Error("invalid bar: open_time is not aligned to the window");
  if (bar.trades === 0) throw new Error("invalid bar: a bar has at least one trade");
  const prices = [bar.open, bar.high, bar.low, bar.close];
  if (!prices.every((p) => Number.isFinite(p) && p >= 0)) {
    throw new Error("invalid bar: prices must be finite and non-negative");
  }
  if (!(bar.low <= bar.open && bar.low <= bar.close && bar.open <= bar.high && bar.close <= bar.high)) {
    throw new Error("invalid bar: low <= open, close <= high does not hold");
  }
}
