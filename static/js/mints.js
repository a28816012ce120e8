// The mint picker: filled from GET /api/mints and from the mints of live
// frames. /api/mints may be empty (a gateway that has not seen a bar yet),
// so it is asked again every few seconds until it lists something, then
// now and then for new tokens.

import { shortMint } from "./format.js";

/** Most mints offered; further ones are not listed (the chart still works). */
export const MAX_PICKER_MINTS = 500;
/** Re-fetch period while /api/mints is empty or failing, and after. */
export const MINTS_RETRY_MS = 3000;
export const MINTS_REFRESH_MS = 30_000;

export class MintPicker {
  /** `onPick(mint | null)`: the user chose a mint, or "auto" (null). */
  constructor(select, onPick) {
    this.select = select;
    this.known = new Set();
    /** Mints whose option shows their quote already. */
    this.quoted = new Set();
    /** Mint the auto option currently stands for (the first one seen). */
    this.autoMint = null;
    /** Last failure of /api/mints, for the status line ("" when fine). */
    this.error = "";
    this.auto = document.createElement("option");
    this.auto.value = "";
    select.append(this.auto);
    this.#labelAuto();
    select.addEventListener("change", () => onPick(select.value || null));
  }

  /**
   * Offers `mint` if it is new (bounded by MAX_PICKER_MINTS), labelled with
   * the quote its prices are in (SOL, USDC, PUMP, ...) once that is known.
   */
  add(mint, quote = "") {
    if (this.known.has(mint)) {
      if (quote) this.#labelQuote(mint, quote);
      return;
    }
    if (this.known.size >= MAX_PICKER_MINTS) return;
    this.known.add(mint);
    const option = document.createElement("option");
    option.value = mint;
    option.textContent = shortMint(mint);
    option.title = mint;
    this.select.append(option);
    if (quote) this.#labelQuote(mint, quote);
    this.#labelAuto();
  }

  #labelQuote(mint, quote) {
    if (this.quoted.has(mint)) return;
    this.quoted.add(mint);
    for (const option of this.select.options) {
      if (option.value === mint) option.textContent = `${shortMint(mint)} · ${quote}`;
    }
  }

  /** Shows which mint "auto" picked, or that it has not picked yet. */
  setAuto(mint) {
    this.autoMint = mint;
    this.#labelAuto();
  }

  /** Fetches /api/mints now and keeps re-fetching (never throws). */
  async poll() {
    try {
      const response = await fetch("/api/mints", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const rows = await response.json();
      if (!Array.isArray(rows)) throw new Error("not a JSON array");
      for (const row of rows) {
        if (typeof row?.mint === "string") this.add(row.mint, typeof row.quote_symbol === "string" ? row.quote_symbol : "");
      }
      this.error = "";
    } catch (error) {
      this.error = `mints: ${error.message}`;
    }
    setTimeout(() => this.poll(), this.known.size === 0 ? MINTS_RETRY_MS : MINTS_REFRESH_MS);
  }

  #labelAuto() {
    if (this.autoMint !== null) this.auto.textContent = `auto: ${shortMint(this.autoMint)}`;
    else if (this.known.size === 0) this.auto.textContent = "waiting for mints…";
    else this.auto.textContent = "auto: first mint seen";
  }
}
