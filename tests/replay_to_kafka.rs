//! The pipeline end to end against the real broker: a replay file goes
//! through `klinecast ingest --source replay` into a fresh topic, and what
//! comes back must be, for every (mint, window, open_time), exactly one
//! closing update equal to bars computed here by a plain reference.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod reference;
mod support;

use std::io::Write;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use klinecast::codec::trade::TradeEvent;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reference::{Update, reference};

/// Thousands of trades over several mints: bursts within a second, exact
/// window boundaries, gaps of hours, and a few out-of-order (late) trades.
fn trades() -> Vec<TradeEvent> {
    let mut rng = StdRng::seed_from_u64(7);
    let mints: Vec<[u8; 32]> = (0..5u8).map(|i| [i + 1; 32]).collect();
    let mut ts: i64 = 1_770_649_200 - 2; // two seconds before an hour boundary
    let mut out = Vec::new();
    for i in 0..6000 {
        ts += match i % 1000 {
            999 => 7_385,                       // a gap of about two hours
            500 => 3_600 - ts.rem_euclid(3600), // land exactly on an hour
            _ if rng.random_bool(0.3) => rng.random_range(1..4),
            _ => 0,
        };
        let late = i % 97 == 0 && i > 0;
        let timestamp = if late { ts - rng.random_range(1..90) } else { ts };
        let vsol = rng.random_range(30_000_000_000u64..90_000_000_000);
        let mint = mints[rng.random_range(0..mints.len())];
        let sol_amount = rng.random_range(1_000_000..3_000_000_000);
        out.push(TradeEvent {
            mint,
            sol_amount,
            token_amount: rng.random_range(1_000_000..50_000_000_000_000),
            is_buy: rng.random_bool(0.5),
            user: [9; 32],
            timestamp,
            virtual_sol_reserves: vsol,
            virtual_token_reserves: rng.random_range(300_000_000_000_000u64..1_073_000_000_000_000),
            real_sol_reserves: vsol - 30_000_000_000,
            real_token_reserves: 0,
            quote_mint: [0; 32],
            quote_amount: sol_amount,
            virtual_quote_reserves: vsol,
        });
    }
    out
}

fn replay_file(trades: &[TradeEvent]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "# test replay").unwrap();
    for (i, t) in trades.iter().enumerate() {
        if i % 1000 == 10 {
            // Noise a real log has, and records that must be rejected.
            writeln!(file, "Program log: Instruction: Buy").unwrap();
            writeln!(file, "Program data: !!notbase64").unwrap();
            writeln!(file, "Program data: {}", STANDARD.encode(&t.encode()[..100])).unwrap();
            let mut other = t.encode();
            other[0] = 0xe4;
            writeln!(file, "Program data: {}", STANDARD.encode(other)).unwrap();
        }
        let mut record = t.encode().to_vec();
        if i % 2 == 0 {
            // The 2025 layout (fee recipient, fees, creator and creator
            // fee appended): keys and integers, so any bytes are valid.
            record.extend_from_slice(&[0xab; 96]);
        }
        writeln!(file, "Program data: {}", STANDARD.encode(record)).unwrap();
    }
    file.flush().unwrap();
    file
}

fn klinecast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klinecast"))
        .args(args)
        .env("KLINECAST_LOG", "info")
        .output()
        .expect("run klinecast")
}

#[test]
fn replay_through_kafka_gives_one_correct_closing_update_per_bar() {
    let trades = trades();
    let (expected, late) = reference(&trades);
    assert!(late[0] > 0 && late[3] < late[0], "the replay has late trades: {late:?}");
    let file = replay_file(&trades);
    let topic = support::fresh_topic("it-replay");
    let brokers = support::brokers();
    let path = file.path().to_str().unwrap();
    let output =
        klinecast(&["ingest", "--source", "replay", "--replay-file", path, "--brokers", &brokers, "--topic", &topic]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ingest failed: {stderr}");
    assert!(stderr.contains(", 6 bad"), "bad base64 lines are counted: {stderr}");
    assert!(stderr.contains(&format!("late {late:?}")), "late trades are counted per window: {stderr}");
    assert!(stderr.contains("short 6, other event 6"), "rejected records are counted: {stderr}");

    let records = support::read_topic(&topic, expected.len(), Duration::from_secs(60));
    let updates: Vec<Update> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Update {
            partition: r.partition,
            key: r.key.clone(),
            bar: r.bar.clone().unwrap_or_else(|e| panic!("undecodable bar: {e}")),
            at: format!("record {i}"),
        })
        .collect();
    reference::check_updates(&updates, &expected);

    // `tail` reads the same bars back, filtered, as JSON lines.
    let minute_bars = expected.keys().filter(|k| k.1 == 60).count();
    let count = minute_bars.to_string();
    let tail = klinecast(&[
        "tail",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--from-beginning",
        "--json",
        "--window",
        "1m",
        "--closed",
        "--count",
        &count,
        "--idle-exit",
        "20s",
    ]);
    assert!(tail.status.success(), "{}", String::from_utf8_lossy(&tail.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&tail.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.len(), minute_bars);
    assert!(lines.iter().all(|l| l["time_window_seconds"] == 60 && l["closed"] == true));
}

#[test]
fn an_unreachable_broker_is_named_with_the_fix() {
    let output = klinecast(&["ingest", "--brokers", "127.0.0.1:1", "--topic", "never"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Kafka is not reachable at 127.0.0.1:1"), "{stderr}");
    assert!(stderr.contains("scripts/kafka-up.sh"), "{stderr}");
}
