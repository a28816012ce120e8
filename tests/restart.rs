//! Shutdown and restart: SIGTERM closes WebSockets with 1001 and flushes the
//! producer; an ingest restarted mid-window continues its open bars from
//! their last state in Kafka.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use klinecast::codec::bar::Bar;
use support::{Frame, Server, collect, command};

/// Runs `klinecast ingest` on `topic` for `seconds`, then SIGTERM; returns
/// its stderr.
fn ingest_for(topic: &str, seconds: u64) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_klinecast"))
        .args(["ingest", "--windows", "1s,1d", "--mock-mints", "1", "--mock-rate", "200"])
        .args(["--brokers", &support::brokers(), "--topic", topic])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(seconds));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "ingest failed after SIGTERM: {log}");
    log
}

fn series(topic: &str, window_s: u32) -> Vec<Bar> {
    support::read_topic(topic, 1, Duration::from_secs(30))
        .into_iter()
        .filter_map(|r| r.bar.ok())
        .filter(|b| b.window_s == window_s)
        .collect()
}

#[test]
fn a_restarted_ingest_continues_open_bars_and_seq() {
    let topic = support::fresh_topic("it-restart");
    let first_log = ingest_for(&topic, 3);
    assert!(first_log.contains("0 unflushed"), "SIGTERM flushes the producer: {first_log}");
    let before = series(&topic, 86_400);
    let last = *before.last().expect("day bars before the restart");
    assert!(!last.closed);
    let last_second = *series(&topic, 1).last().unwrap();

    let second_log = ingest_for(&topic, 2);
    assert!(second_log.contains("continuing series"), "{second_log}");
    let after: Vec<Bar> = series(&topic, 86_400).into_iter().filter(|b| b.seq > last.seq).collect();
    let next = after.first().expect("day bars after the restart");
    assert_eq!(next.seq, last.seq + 1, "seq continues");
    if next.open_time_s == last.open_time_s {
        assert_eq!(next.open, last.open, "open is not reset");
        assert!(next.high >= last.high && next.low <= last.low, "high and low are not reset");
        assert_eq!(next.trades, last.trades + 1, "the trade count continues");
        assert!(next.volume_quote > last.volume_quote);
    }
    // The 1 s bar left open at shutdown is closed after the restart, once.
    let seconds: Vec<Bar> = series(&topic, 1).into_iter().filter(|b| b.seq > last_second.seq).collect();
    assert_eq!(seconds[0].seq, last_second.seq + 1, "1 s seq continues");
    if !last_second.closed {
        assert!(seconds[0].closed && seconds[0].open_time_s == last_second.open_time_s, "{:?}", seconds[0]);
        assert_eq!(seconds[0].trades, last_second.trades, "closed as it was");
    }
}

#[test]
fn sigterm_closes_websockets_with_1001() {
    let server = Server::start(&["serve", "--mock-mints", "1", "--mock-rate", "50"]);
    let mut ws = server.ws("/ws");
    assert_eq!(command(&mut ws, "sub-1s")["type"], "subscribed");
    Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    let frames = collect(&mut ws, Duration::from_secs(10));
    assert!(matches!(frames.last(), Some(Frame::Closed(Some(1001)))), "{:?}", frames.last());
    // Stopped accepting: a new connection is refused soon after.
    std::thread::sleep(Duration::from_secs(2));
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}
