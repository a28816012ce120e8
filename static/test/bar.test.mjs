// The JavaScript decoder against the shared wire-format vectors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeBar, base58, quoteSymbol, venueNames } from "../js/bar.js";

const text = readFileSync(new URL("../../tests/vectors/bar.json", import.meta.url), "utf8");
const vectors = JSON.parse(text);
const bytes = (hex) => Uint8Array.from(hex.match(/../g).map((h) => parseInt(h, 16)));

test("valid vectors decode to their fields", () => {
  for (const { name, hex, fields } of vectors.valid) {
    const bar = decodeBar(bytes(hex));
    assert.equal(bar.mint, fields.mint, name);
    assert.equal(bar.quoteMint, fields.quote_mint, name);
    assert.equal(bar.quoteDecimals, fields.quote_decimals, name);
    assert.equal(bar.venues, fields.venues, name);
    assert.equal(bar.format, fields.format, name);
    assert.equal(bar.lastEvent, fields.last_event, name);
    assert.equal(bar.openTime, fields.open_time_s, name);
    assert.equal(bar.window, fields.window_s, name);
    assert.equal(bar.trades, fields.trades, name);
    for (const k of ["open", "high", "low", "close"]) assert.equal(bar[k], fields[k], `${name} ${k}`);
    assert.equal(bar.closed, fields.closed, name);
    // JSON.parse rounds u64 values, so they are compared with the file's
    // text, which is exact.
    const u64s = [
      ["volume_quote", "volumeQuote"],
      ["volume_tokens", "volumeTokens"],
      ["buy_volume_quote", "buyVolumeQuote"],
      ["buy_volume_tokens", "buyVolumeTokens"],
      ["seq", "seq"],
      ["produced_ns", "producedNs"],
      ["last_slot", "lastSlot"],
      ["last_signature", "lastSignature"],
      ["resume_slot", "resumeSlot"],
    ];
    for (const [k, js] of u64s) {
      assert.ok(text.includes(`"${k}": ${bar[js]}`), `${name} ${k} = ${bar[js]}`);
    }
  }
});

test("decoding works at any byte offset", () => {
  const { hex, fields } = vectors.valid[0];
  const padded = new Uint8Array(200 + 3);
  padded.set(bytes(hex), 3);
  assert.equal(decodeBar(new DataView(padded.buffer, 3, 193)).close, fields.close);
});

test("invalid vectors are refused with the reason", () => {
  for (const { name, hex, error_contains } of vectors.invalid) {
    const expected = error_contains === "not an archived Bar" ? /not an archived Bar/ : new RegExp(error_contains.replace(/[<=]/g, "."));
    assert.throws(() => decodeBar(bytes(hex)), expected, name);
  }
});

test("base58 matches Solana's addresses", () => {
  assert.equal(base58(new Uint8Array(32)), "11111111111111111111111111111111");
});

test("quotes are named by symbol", () => {
  const { hex } = vectors.valid[1];
  assert.equal(decodeBar(bytes(hex)).quote, "PUMP");
  assert.equal(quoteSymbol("So11111111111111111111111111111111111111112"), "SOL");
  assert.equal(venueNames(3), "pump.fun+pumpswap");
});
