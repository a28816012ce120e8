// Number and time formatting for the chart's axes, legend and status line.
// Pure functions, so node's test runner checks them without a browser.

const SUBSCRIPT_DIGITS = "₀₁₂₃₄₅₆₇₈₉";

/** Significant digits shown for a price (the axis and the legend). */
export const PRICE_DIGITS = 5;

/**
 * A price in the coin's quote per token (SOL, USDC, PUMP, ...). pump.fun prices are around 3e-8 SOL, where
 * fixed decimals show nothing but zeros and exponents are hard to compare at
 * a glance, so below 0.001 the leading zeros are counted in a subscript, the
 * notation DEX screeners use: 0.0₇28000 is 0.000000028000.
 */
export function formatPrice(price, digits = PRICE_DIGITS) {
  if (!Number.isFinite(price)) return "–";
  if (price === 0) return "0";
  const sign = price < 0 ? "-" : "";
  const abs = Math.abs(price);
  if (abs >= 1e-3) {
    const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
    return sign + abs.toFixed(Math.min(decimals, 20));
  }
  let zeros = -Math.floor(Math.log10(abs)) - 1;
  let significant = Math.round(abs * 10 ** (zeros + digits));
  if (significant >= 10 ** digits) {
    // Rounding carried into the next power of ten (0.0₇99999… → 0.0₆10000).
    zeros -= 1;
    significant = Math.round(significant / 10);
  }
  const subscript = [...String(zeros)].map((d) => SUBSCRIPT_DIGITS[d]).join("");
  return `${sign}0.0${subscript}${String(significant).padStart(digits, "0")}`;
}

/**
 * The price step the chart's axis works with: one unit of the last digit
 * formatPrice shows for prices of this size, so neighbouring ticks never get
 * the same label and no digit is invented.
 */
export function minMoveFor(price, digits = PRICE_DIGITS) {
  // Parsed from text, because 10 ** -5 is 9.999999999999999e-6.
  if (!Number.isFinite(price) || price <= 0) return 1e-12;
  return Number(`1e${Math.floor(Math.log10(price)) - (digits - 1)}`);
}

/** Amounts in whole quote units (volume): three decimals when small, then fewer, k, M. */
export function formatAmount(amount) {
  if (!Number.isFinite(amount)) return "–";
  if (amount === 0) return "0";
  const abs = Math.abs(amount);
  if (abs >= 1e6) return `${(amount / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${(amount / 1e3).toFixed(1)}k`;
  if (abs >= 100) return amount.toFixed(0);
  if (abs >= 10) return amount.toFixed(1);
  return amount.toFixed(3);
}

/** A mint as the picker and legend show it: first and last four characters. */
export function shortMint(mint) {
  return mint.length > 10 ? `${mint.slice(0, 4)}…${mint.slice(-4)}` : mint;
}

/** Window seconds as the commands spell them: 1 → "1s", 300 → "5m". */
export function windowLabel(seconds) {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

const pad = (n) => String(n).padStart(2, "0");

/** Crosshair time label, local time: 2025-01-31 14:05:09. */
export function formatTime(unixS) {
  const d = new Date(unixS * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * Time axis labels in local time (lightweight-charts draws UTC by default).
 * `type` is the library's TickMarkType: 0 year, 1 month, 2 day, 3 time,
 * 4 time with seconds.
 */
export function formatTick(unixS, type) {
  const d = new Date(unixS * 1000);
  switch (type) {
    case 0:
      return String(d.getFullYear());
    case 1:
      return d.toLocaleString("en", { month: "short" });
    case 2:
      return String(d.getDate());
    case 3:
      return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    default:
      return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
}
