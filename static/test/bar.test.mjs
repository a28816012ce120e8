// The JavaScript decoder against the shared wire-format vectors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeBar, base58 } from "../js/bar.js";

const text = readFileSync(new URL("../../tests/vectors/bar.json", import.meta.url), "utf8");
const vectors = JSON.parse(text);
const bytes = (hex) => Uint8Array.from(hex.match(/../g).map((h) => parseInt(h, 16)));

test("valid vectors decode to their fields", () => {
  for (const { name, hex, fields } of vectors.valid) {
    const bar = decodeBar(bytes(hex));
    assert.equal(bar.mint, fields.mint, name);
    assert.equal(bar.openTime, fields.open_time_s, name);
    assert.equal(bar.window, fields.window_s, name);
    assert.equal(bar.trades, fields.trades, name);
    for (const k of ["open", "high", "low", "close"]) assert.equal(bar[k], fields[k], `${name} ${k}`);
    assert.equal(bar.closed, fields.closed, name);
    // JSON.parse rounds u64 values, so they are compared with the file's
    // text, which is exact.
    for (const [k, js] of [["volume_lamports", "volumeLamports"], ["seq", "seq"], ["produced_ns", "producedNs"]]) {
      assert.ok(text.includes(`"${k}": ${bar[js]}`), `${name} ${k} = ${bar[js]}`);
    }
  }
});

test("decoding works at any byte offset", () => {
  const { hex, fields } = vectors.valid[0];
  const padded = new Uint8Array(128 + 3);
  padded.set(bytes(hex), 3);
  assert.equal(decodeBar(new DataView(padded.buffer, 3, 121)).close, fields.close);
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
