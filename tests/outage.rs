//! A 30 s broker outage in the middle of a run (SPEC §4 and §7: "broker
//! outage of 30 s: no closing update lost or duplicated; clients stay
//! connected").
//!
//! The test runs its own broker, and `klinecast serve` replaying trades from
//! stdin, fed at a steady pace by a test thread for the whole run (before,
//! during and after the outage), with one per-client WebSocket subscriber on
//! `sub-1s`. It stops the broker for 30 s, starts it again on the same data,
//! feeds on, closes stdin (end of replay: every bar closes and is flushed),
//! and then checks the topic against a reference computed from the trades
//! fed, the client's stream against the topic, and that the server and the
//! client's connection survived.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod reference;
mod support;

use std::io::{BufWriter, Write};
use std::process::ChildStdin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use klinecast::codec::bar;
use klinecast::codec::trade::TradeEvent;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reference::{Update, WINDOWS, reference};
use support::Frame;
use support::{Broker, Child, Recorder};

/// Trades fed per second of wall time.
const FEED_RATE_PER_S: u64 = 800;
/// Trades per second of event time: event time runs 10× wall time, so the
/// run covers minute, 5-minute and hour boundaries.
const TRADES_PER_EVENT_S: u64 = 80;
/// Mints traded.
const MINTS: u8 = 4;
/// How long the broker stays down.
const OUTAGE: Duration = Duration::from_secs(30);
/// Feeding before the outage and after the broker is back.
const BEFORE: Duration = Duration::from_secs(12);
const AFTER: Duration = Duration::from_secs(15);

/// The n-th trade of the feed: deterministic, timestamps one second apart
/// every `TRADES_PER_EVENT_S` trades, starting 5 minutes before an hour.
fn trade(rng: &mut StdRng, n: u64) -> TradeEvent {
    let vsol = rng.random_range(30_000_000_000u64..90_000_000_000);
    let mint = [rng.random_range(1..=MINTS); 32];
    let sol_amount = rng.random_range(1_000_000..3_000_000_000);
    TradeEvent {
        mint,
        sol_amount,
        token_amount: rng.random_range(1_000_000..50_000_000_000_000),
        is_buy: rng.random_bool(0.5),
        user: [9; 32],
        timestamp: 1_770_649_200 - 300 + (n / TRADES_PER_EVENT_S) as i64,
        virtual_sol_reserves: vsol,
        virtual_token_reserves: rng.random_range(300_000_000_000_000u64..1_073_000_000_000_000),
        real_sol_reserves: vsol - 30_000_000_000,
        real_token_reserves: 0,
        quote_mint: [0; 32],
        quote_amount: sol_amount,
        virtual_quote_reserves: vsol,
    }
}

/// Writes trades to the server's stdin at `FEED_RATE_PER_S` until stopped,
/// then closes stdin (end of the replay). Stops on drop too.
struct Feeder {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Vec<TradeEvent>, String>>>,
}

impl Feeder {
    fn start(stdin: ChildStdin) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut out = BufWriter::new(stdin);
            let mut rng = StdRng::seed_from_u64(11);
            let mut fed = Vec::new();
            let started = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let due = started.elapsed().as_millis() as u64 * FEED_RATE_PER_S / 1000;
                while (fed.len() as u64) < due {
                    let t = trade(&mut rng, fed.len() as u64);
                    writeln!(out, "Program data: {}", STANDARD.encode(t.encode())).map_err(|e| e.to_string())?;
                    fed.push(t);
                }
                out.flush().map_err(|e| format!("stdin closed after {} trades: {e}", fed.len()))?;
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(fed) // dropping `out` closes stdin
        });
        Feeder { stop, handle: Some(handle) }
    }

    /// Stops feeding, closes stdin; the trades fed.
    fn finish(mut self) -> Vec<TradeEvent> {
        self.stop.store(true, Ordering::Relaxed);
        let fed = self.handle.take().expect("feeder").join().expect("feeder thread");
        fed.unwrap_or_else(|e| panic!("feeding failed: {e}"))
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Sleeps `duration`, checking every 200 ms that the server is alive.
fn stay_alive(server: &mut Child, duration: Duration, what: &str) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        assert!(server.alive(), "server exited {what}: {}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Warnings and errors of a log, for the test's output.
fn problems(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect()
}

/// `klinecast serve` replaying stdin into `topic` on `brokers`, serving on `listen`.
fn start_serve(brokers: &str, topic: &str, listen: &str) -> Child {
    let args = [
        "serve",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--source",
        "replay",
        "--replay-file",
        "-",
        "--replay-then-serve",
        "--listen",
        listen,
        // Clients silent for two intervals are dropped: the client must
        // answer pings all through the outage.
        "--ping-interval",
        "5s",
    ];
    Child::spawn("serve", &args, support::log_path(topic, "serve"), true)
}

/// The whole topic against the reference of the trades fed (whose
/// timestamps never go back, so no trade is late).
fn check_topic(messages: &[support::Msg], fed: &[TradeEvent]) {
    let (expected, _) = reference(fed);
    let updates: Vec<Update> = messages
        .iter()
        .map(|m| Update {
            partition: m.partition,
            key: m.key.clone(),
            bar: bar::access(&m.payload).unwrap_or_else(|e| panic!("undecodable bar at {}: {e}", m.offset)).to_bar(),
            at: format!("offset {}", m.offset),
        })
        .collect();
    reference::check_updates(&updates, &expected);
}

#[test]
fn a_30s_broker_outage_loses_and_duplicates_nothing_and_clients_stay_connected() {
    let test_started = Instant::now();
    let broker = Broker::start();
    let brokers = broker.address();
    eprintln!("own broker {brokers} up after {:?}", test_started.elapsed());
    let topic = support::fresh_topic("it-outage");
    support::create_topic(&brokers, &topic, WINDOWS.len() as i32).expect("create the topic");
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = start_serve(&brokers, &topic, &listen);
    support::await_healthy(&mut server, port, Duration::from_secs(30));
    let mut ws = support::ws(port, "/ws");
    assert_eq!(support::command(&mut ws, "sub-1s")["type"], "subscribed");
    let recorder = Recorder::start(ws);
    let feeder = Feeder::start(server.child.stdin.take().expect("stdin"));

    // Before: bars flow.
    stay_alive(&mut server, BEFORE, "before the outage");
    let before = recorder.bars();
    assert!(before > 0, "no bars before the outage: {}", server.log_text());

    // The outage: the broker is stopped cleanly and stays away for 30 s
    // while trades keep coming.
    let outage_start = Instant::now();
    let down_took = broker.down();
    let broker_gone = Instant::now();
    stay_alive(&mut server, OUTAGE / 2, "during the outage");
    let health_during = support::http_get(port, "/healthz");
    stay_alive(&mut server, OUTAGE.saturating_sub(outage_start.elapsed()), "during the outage");
    // Late in the outage (more than two ping intervals in): the session is
    // still there, its consumer too.
    let sessions_during = support::metric(port, "klinecast_websockets");
    let consumers_during = support::metric(port, "klinecast_kafka_consumers");
    let up_start = Instant::now();
    let up_took = broker.up();
    let broker_back = Instant::now();
    eprintln!("broker down {down_took:?} (stop took), away {:?}, restart took {up_took:?}", up_start - outage_start);
    assert!(health_during.starts_with("HTTP/1.1 503"), "healthz during the outage: {health_during}");
    assert_eq!((sessions_during, consumers_during), (1.0, 1.0), "WebSocket sessions and consumers during the outage");

    // After: keep feeding, then end the replay.
    stay_alive(&mut server, AFTER, "after the outage");
    let fed = feeder.finish();
    let fed_at_end = Instant::now();
    assert!(
        server.wait_for_log("ingest finished", Duration::from_secs(60)),
        "ingest did not finish: {}",
        server.log_text()
    );
    let flush_took = fed_at_end.elapsed();
    assert!(server.alive(), "serve --replay-then-serve exited: {}", server.log_text());
    let log = server.log_text();
    let report = support::ingest_report(&log).unwrap();
    eprintln!("{} trades fed; flush after end of replay took {flush_took:?}\n{report}", fed.len());
    let sent = support::count_before(&report, "sent").unwrap();
    assert_eq!(support::count_before(&report, "failed"), Some(0), "{report}");
    assert_eq!(support::count_before(&report, "unflushed"), Some(0), "{report}");

    // The topic: every message sent is there once; per series seq +1; one
    // correct closing update per reference bar.
    let messages = support::read_all(&brokers, &topic, Duration::from_secs(60));
    assert_eq!(messages.len() as u64, sent, "messages in the topic vs. bars the producer sent");
    check_topic(&messages, &fed);

    // The client: it receives the rest of the 1 s partition, then stays
    // connected and answers.
    let one_s: Vec<&support::Msg> = messages.iter().filter(|m| m.partition == 0).collect();
    let first = recorder.with(|r| support::bar_frames(r).first().map(|(_, b)| b.clone())).unwrap();
    let start = one_s.iter().position(|m| m.payload == first).expect("the first frame is in the topic");
    let want = one_s.len() - start;
    let deadline = Instant::now() + Duration::from_secs(60);
    while recorder.bars() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut ws, recording) = recorder.finish();
    assert!(recording.error.is_none(), "client read error: {:?}", recording.error);
    assert!(
        !recording.frames.iter().any(|(_, f)| matches!(f, Frame::Closed(_))),
        "the server closed the client: {:?}",
        recording.frames.last()
    );
    let received = support::bar_frames(&recording);
    assert_eq!(received.len(), want, "bars received vs. 1 s updates in the topic since the subscription");
    for (i, (_, bytes)) in received.iter().enumerate() {
        assert!(*bytes == one_s[start + i].payload, "frame {i} differs from the topic's message at {}", start + i);
    }
    let after_outage: Vec<&Instant> = received.iter().map(|(at, _)| at).filter(|at| **at > broker_back).collect();
    assert!(!after_outage.is_empty(), "no bars after the broker came back");
    let between = |from: Instant, to: Instant| received.iter().filter(|(at, _)| *at >= from && *at < to).count();
    eprintln!(
        "client: {} bars: {} before the outage, {} while the broker shut down, {} while it was down, {} while it \
         restarted, {} after it answered again (the first {:?} after)",
        received.len(),
        between(test_started, outage_start),
        between(outage_start, broker_gone),
        between(broker_gone, up_start),
        between(up_start, broker_back),
        after_outage.len(),
        *after_outage[0] - broker_back,
    );
    assert_eq!(support::command(&mut ws, "ping")["type"], "pong", "the connection is still open");
    assert_eq!(support::metric(port, "klinecast_protocol_closes_total"), 0.0, "no session closed for silence");
    eprintln!(
        "gateway: {} Kafka consumer errors counted; first bar {:?} after the restart began",
        support::metric(port, "klinecast_kafka_errors_total"),
        *after_outage[0] - up_start
    );
    assert!(server.alive(), "server exited: {}", server.log_text());
    let problems = problems(&log);
    eprintln!(
        "server log: {} warnings/errors, e.g.:\n{}",
        problems.len(),
        problems.iter().take(8).copied().collect::<Vec<_>>().join("\n")
    );
    assert!(!log.contains("bar not delivered") && !log.contains("bar not sent"), "{log}");
    eprintln!("test took {:?}", test_started.elapsed());
}

/// A live pipe (`solana logs | klinecast ingest --replay-file -`) must not
/// hold trades back until 4096 lines have arrived, and SIGTERM must stop it
/// while the pipe is quiet.
#[test]
fn a_quiet_stdin_replay_still_emits_bars_and_stops_on_sigterm() {
    let brokers = support::brokers();
    let topic = support::fresh_topic("it-stdin");
    support::create_topic(&brokers, &topic, WINDOWS.len() as i32).expect("create the topic");
    let args = ["ingest", "--brokers", &brokers, "--topic", &topic, "--source", "replay", "--replay-file", "-"];
    let mut ingest = Child::spawn("ingest", &args, support::log_path(&topic, "ingest"), true);
    assert!(ingest.wait_for_log("ingest starting", Duration::from_secs(30)), "{}", ingest.log_text());
    // 200 trades over 10 s of event time, then the pipe stays open and quiet.
    let mut rng = StdRng::seed_from_u64(3);
    let stdin = ingest.child.stdin.as_mut().expect("stdin");
    for n in 0..200 {
        let t = TradeEvent { timestamp: 1_770_649_200 + n / 20, ..trade(&mut rng, 0) };
        writeln!(stdin, "Program data: {}", STANDARD.encode(t.encode())).unwrap();
    }
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut produced = 0;
    while produced == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        produced = support::end_offset(&brokers, &topic, 0);
    }
    let _ = std::process::Command::new("kill").args(["-TERM", &ingest.child.id().to_string()]).status();
    let stop_deadline = Instant::now() + Duration::from_secs(10);
    while ingest.alive() && Instant::now() < stop_deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = !ingest.alive();
    assert!(
        produced > 0 && stopped,
        "1 s updates in Kafka 10 s after 200 trades: {produced}; exited within 10 s of SIGTERM: {stopped}\n{}",
        ingest.log_text()
    );
}
