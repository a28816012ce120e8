//! Every real on-chain record in `tests/fixtures/pumpfun/` (a copy of the
//! shared fixtures: newer and older program versions) decodes to exactly the
//! values recorded next to it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use klinecast::codec::trade::TradeEvent;
use klinecast::source::replay::{Line, parse_line};
use serde_json::Value;

const DATA: &str = include_str!("fixtures/pumpfun/program-data.txt");
const EXPECTED: &str = include_str!("fixtures/pumpfun/expected.json");

#[test]
fn real_records_decode_to_the_recorded_values() -> Result<(), Box<dyn std::error::Error>> {
    let expected: Vec<Value> = serde_json::from_str(EXPECTED)?;
    let records: Vec<Vec<u8>> = DATA
        .lines()
        .filter_map(|line| match parse_line(line) {
            Line::Data(b64) => Some(STANDARD.decode(b64)),
            Line::Skip | Line::Json(_) => None,
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(records.len(), expected.len());
    let mut lengths = std::collections::BTreeSet::new();
    for (record, want) in records.iter().zip(&expected) {
        let event = TradeEvent::decode(record)?;
        let line = &want["line"];
        assert_eq!(record.len() as u64, want["bytes"].as_u64().unwrap_or_default(), "line {line}");
        lengths.insert(record.len());
        assert_eq!(bs58::encode(event.mint).into_string(), want["mint"].as_str().unwrap_or_default(), "line {line}");
        assert_eq!(bs58::encode(event.user).into_string(), want["user"].as_str().unwrap_or_default(), "line {line}");
        let fields = [
            ("sol_amount", event.sol_amount),
            ("token_amount", event.token_amount),
            ("virtual_sol_reserves", event.virtual_sol_reserves),
            ("virtual_token_reserves", event.virtual_token_reserves),
            ("real_sol_reserves", event.real_sol_reserves),
            ("real_token_reserves", event.real_token_reserves),
        ];
        for (name, value) in fields {
            assert_eq!(Some(value), want[name].as_u64(), "line {line} {name}");
        }
        assert_eq!(Some(event.is_buy), want["is_buy"].as_bool(), "line {line}");
        assert_eq!(Some(event.timestamp), want["timestamp"].as_i64(), "line {line}");
        let price = event.price_sol_per_token().unwrap_or_default();
        let want_price = want["price_sol_per_token"].as_f64().unwrap_or_default();
        assert!((price - want_price).abs() <= want_price * 1e-12, "line {line}: {price} vs {want_price}");
    }
    assert!(lengths.len() > 1, "fixtures cover several program versions: {lengths:?}");
    Ok(())
}
