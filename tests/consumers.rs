//! Downstream consumers without klinecast's code read the same bars
//! `klinecast tail --json` prints: ClickHouse (in-process, chdb) over the
//! topic's values as RowBinary with the schema of docs/consumers.md, and
//! the few-line Python (confluent-kafka + struct) and Java (kafka-clients +
//! ByteBuffer) readers of that document, each against a topic the real
//! recorded events were replayed into.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// The compared fields of one bar, keyed by (mint, window, seq).
type Rows = BTreeMap<(String, u64, u64), Vec<Value>>;

const FIELDS: [&str; 11] = [
    "quote",
    "unix_timestamp",
    "trades",
    "open",
    "high",
    "low",
    "close",
    "closed",
    "produced_ns",
    "volume_quote",
    "volume_tokens",
];

/// JSON lines → rows; numbers compared as f64 (each writer prints the
/// shortest text that reads back to the same double, in its own spelling).
fn rows(text: &str) -> Rows {
    let mut out = Rows::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let key = (
            v["mint"].as_str().unwrap().to_owned(),
            v["time_window_seconds"].as_u64().unwrap(),
            v["seq"].as_u64().unwrap(),
        );
        let fields = FIELDS
            .iter()
            .map(|f| match &v[*f] {
                Value::Number(n) => Value::from(n.as_f64().unwrap()),
                other => other.clone(),
            })
            .collect();
        assert!(out.insert(key, fields).is_none(), "a bar twice: {line}");
    }
    out
}

/// A topic holding the bars of the real recorded events.
fn replayed_topic() -> String {
    let topic = support::fresh_topic("it-consumers");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/solana/program-data.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_klinecast"))
        .args(["ingest", "--source", "replay", "--replay-file", file, "--brokers", &support::brokers(), "--topic"])
        .arg(&topic)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    topic
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn clickhouse_python_and_java_read_what_tail_prints() {
    let topic = replayed_topic();
    let brokers = support::brokers();
    let tail = run(Command::new(env!("CARGO_BIN_EXE_klinecast")).args([
        "tail",
        "--json",
        "--from-beginning",
        "--idle-exit",
        "3s",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
    ]));
    let want = rows(&tail);
    assert!(want.len() >= 20, "{} bars from the recorded events", want.len());
    let root = env!("CARGO_MANIFEST_DIR");

    // ClickHouse: the values as the topic holds them, RowBinary.
    let mut dump = tempfile::NamedTempFile::new().unwrap();
    for message in support::read_all(&brokers, &topic, Duration::from_secs(60)) {
        dump.write_all(&message.payload).unwrap();
    }
    dump.flush().unwrap();
    let script = format!("{root}/tests/consumers/clickhouse_rows.py");
    let clickhouse = run(Command::new("python3").arg(script).arg(dump.path()));
    assert_eq!(rows(&clickhouse), want, "ClickHouse's RowBinary rows");

    let script = format!("{root}/tests/consumers/kafka_reader.py");
    let python = run(Command::new("python3").args([&script, &brokers, &topic]));
    assert_eq!(rows(&python), want, "the Python reader's rows");

    let classpath = format!("{root}/kafka/lib/*");
    let java = run(Command::new("java").args([
        "-cp",
        &classpath,
        &format!("{root}/tests/consumers/Reader.java"),
        &brokers,
        &topic,
    ]));
    assert_eq!(rows(&java), want, "the Java reader's rows");
}
