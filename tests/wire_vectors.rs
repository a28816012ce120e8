//! The wire-format test vectors in `tests/vectors/bar.json`, shared with the
//! JavaScript and Python decoders' tests: encoding each vector's fields must
//! give exactly its bytes, decoding its bytes must give its fields, and each
//! invalid vector must be refused. `KLINECAST_WRITE_VECTORS=1` rewrites the
//! valid vectors' bytes from their fields (after a deliberate format change).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use klinecast::codec::bar::{self, BAR_LEN, Bar};
use serde_json::{Value, json};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/bar.json");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

fn bar_of(fields: &Value) -> Bar {
    let key = |k: &str| {
        let mut out = [0u8; 32];
        bs58::decode(fields[k].as_str().expect(k)).onto(&mut out[..]).expect("base58 key");
        out
    };
    let u = |k: &str| fields[k].as_u64().unwrap_or_else(|| panic!("{k}"));
    let f = |k: &str| fields[k].as_f64().unwrap_or_else(|| panic!("{k}"));
    Bar {
        format: u("format") as u16,
        venues: u("venues") as u8,
        quote_decimals: u("quote_decimals") as u8,
        mint: key("mint"),
        quote_mint: key("quote_mint"),
        open_time_s: fields["open_time_s"].as_i64().expect("open_time_s"),
        window_s: u("window_s") as u32,
        trades: u("trades") as u32,
        open: f("open"),
        high: f("high"),
        low: f("low"),
        close: f("close"),
        volume_quote: u("volume_quote"),
        volume_tokens: u("volume_tokens"),
        buy_volume_quote: u("buy_volume_quote"),
        buy_volume_tokens: u("buy_volume_tokens"),
        seq: u("seq"),
        produced_ns: u("produced_ns"),
        last_slot: u("last_slot"),
        last_signature: u("last_signature"),
        last_event: u("last_event") as u32,
        resume_slot: u("resume_slot"),
        closed: fields["closed"].as_bool().expect("closed"),
    }
}

#[test]
fn vectors_encode_and_decode_exactly() {
    let text = std::fs::read_to_string(PATH).expect("read vectors");
    let mut doc: Value = serde_json::from_str(&text).expect("vectors json");
    let write = std::env::var_os("KLINECAST_WRITE_VECTORS").is_some();
    for vector in doc["valid"].as_array_mut().expect("valid") {
        let bar = bar_of(&vector["fields"]);
        let bytes = bar.to_bytes();
        assert_eq!(bytes.len(), BAR_LEN);
        if write {
            vector["hex"] = json!(hex(&bytes));
        }
        let name = vector["name"].clone();
        assert_eq!(hex(&bytes), vector["hex"].as_str().unwrap_or_default(), "{name}: encoding changed");
        let decoded = bar::access(&unhex(vector["hex"].as_str().unwrap_or_default())).map(|b| b.to_bar());
        assert_eq!(decoded.ok(), Some(bar), "{name}");
    }
    for vector in doc["invalid"].as_array().expect("invalid") {
        let bytes = unhex(vector["hex"].as_str().expect("hex"));
        let error = bar::access(&bytes).err().map(|e| e.to_string()).unwrap_or_default();
        let needle = vector["error_contains"].as_str().expect("error_contains");
        assert!(error.contains(needle), "{}: {error}", vector["name"]);
    }
    if write {
        std::fs::write(PATH, serde_json::to_string_pretty(&doc).expect("json") + "\n").expect("write vectors");
    }
}
