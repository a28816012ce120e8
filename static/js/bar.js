// Decoder of the archived Bar (docs/wire-format.md): 121 little-endian
// bytes, fields in order, no padding. Shared by the web page and node tests.

export const BAR_LEN = 121;

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
  if (view.byteLength !== BAR_LEN) {
    throw new Error(`not an archived Bar: ${view.byteLength} bytes, expected ${BAR_LEN}`);
  }
  const closedByte = view.getUint8(120);
  if (closedByte > 1) throw new Error(`not an archived Bar: closed byte ${closedByte}`);
  const u64 = (at) => view.getBigUint64(at, true);
  const f64 = (at) => view.getFloat64(at, true);
  const bar = {
    mint: base58(new Uint8Array(view.buffer, view.byteOffset, 32)),
    openTime: Number(view.getBigInt64(32, true)),
    window: view.getUint32(40, true),
    trades: view.getUint32(44, true),
    open: f64(48),
    high: f64(56),
    low: f64(64),
    close: f64(72),
    volumeLamports: u64(80),
    volumeTokens: u64(88),
    buyVolumeLamports: u64(96),
    seq: u64(104),
    producedNs: u64(112),
    closed: closedByte === 1,
  };
  checkBar(bar);
  return bar;
}

function checkBar(bar) {
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
