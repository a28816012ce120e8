//! Shared fan-out mode against the real broker: conflated pushes, slow
//! clients, and the history API (also after a gateway restart).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use klinecast::codec::bar::Bar;
use support::{Server, assert_no_gaps, bars, collect, command};

#[test]
fn push_1s_conflates_to_one_update_per_second_plus_every_close() {
    let server = Server::start(&["serve", "--fanout", "shared", "--mock-mints", "2", "--mock-rate", "400"]);
    let mut ws = server.ws("/ws");
    assert_eq!(command(&mut ws, "sub-1m")["type"], "subscribed");
    let mut received: Vec<(Instant, Bar)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        for bar in bars(&collect(&mut ws, Duration::from_millis(100))) {
            received.push((Instant::now(), bar));
        }
    }
    // Per series, open updates are at least ~1 s apart (one push each).
    let mut by_series: BTreeMap<[u8; 32], Vec<&(Instant, Bar)>> = BTreeMap::new();
    for r in received.iter().filter(|(_, b)| !b.closed) {
        by_series.entry(r.1.mint).or_default().push(r);
    }
    assert_eq!(by_series.len(), 2, "both mints pushed");
    for updates in by_series.values() {
        assert!((2..=8).contains(&updates.len()), "{} open updates in 7 s", updates.len());
        for pair in updates.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(gap >= Duration::from_millis(700), "two pushes {gap:?} apart");
            assert!(pair[1].1.seq > pair[0].1.seq + 50, "conflated: many updates in between");
        }
    }

    // Every closing update is delivered: compare with Kafka.
    let mut ws1s = server.ws("/ws");
    command(&mut ws1s, "sub-1s");
    let got = bars(&collect(&mut ws1s, Duration::from_secs(5)));
    let closes: Vec<(i64, [u8; 32])> = got.iter().filter(|b| b.closed).map(|b| (b.open_time_s, b.mint)).collect();
    assert!(closes.len() >= 6, "{} closes", closes.len());
    let first = closes[0].0;
    let last = closes.last().unwrap().0;
    let in_kafka: Vec<(i64, [u8; 32])> = support::read_topic(&server.topic, 1, Duration::from_secs(30))
        .into_iter()
        .filter_map(|r| r.bar.ok())
        .filter(|b| b.window_s == 1 && b.closed && b.open_time_s > first && b.open_time_s < last)
        .map(|b| (b.open_time_s, b.mint))
        .collect();
    let inner: Vec<(i64, [u8; 32])> = closes.into_iter().filter(|c| c.0 > first && c.0 < last).collect();
    let mut sorted_kafka = in_kafka.clone();
    sorted_kafka.sort();
    let mut sorted_inner = inner.clone();
    sorted_inner.sort();
    assert_eq!(sorted_inner, sorted_kafka, "every closing update, none twice");
}

#[test]
fn push_0_forwards_every_update() {
    let server = Server::start(&[
        "serve",
        "--fanout",
        "shared",
        "--push-interval",
        "0",
        "--mock-mints",
        "2",
        "--mock-rate",
        "300",
    ]);
    let mut ws = server.ws("/ws");
    command(&mut ws, "sub-1s");
    let got = bars(&collect(&mut ws, Duration::from_secs(3)));
    assert!(got.len() > 500, "{} updates in 3 s at 300 trades/s", got.len());
    assert_no_gaps(&got);
}

#[test]
fn a_client_that_never_reads_is_capped_and_closed_while_others_stay_on_time() {
    let cap = 16_384;
    let server = Server::start(&[
        "serve",
        "--fanout",
        "shared",
        "--push-interval",
        "0",
        "--mock-mints",
        "50",
        "--mock-rate",
        "1000",
        "--max-outbound-bytes",
        &cap.to_string(),
    ]);
    let stuck = support::stuck_client(server.port, "sub-1s");
    let mut good = server.ws("/ws");
    command(&mut good, "sub-1m");
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut received: Vec<Bar> = Vec::new();
    while Instant::now() < deadline && server.metric("klinecast_slow_client_closes_total") < 1.0 {
        received.extend(bars(&collect(&mut good, Duration::from_millis(500))));
    }
    assert!(server.metric("klinecast_slow_client_closes_total") >= 1.0, "the stuck client was not closed");
    // Keep watching the good client for a while after the close.
    let before_close = received.len();
    received.extend(bars(&collect(&mut good, Duration::from_secs(3))));
    let peak = server.metric("klinecast_outbound_peak_bytes");
    assert!(peak <= (4 * cap + 1024) as f64, "outbound queue grew to {peak} bytes, cap {cap}");
    assert!(server.metric("klinecast_conflated_updates_total") > 0.0);
    // The good client (push 0) got every update, before and after the
    // close: no seq gap in any series. (Latency is measured in bench/.)
    assert!(before_close > 100, "the good client kept receiving ({before_close} bars)");
    assert!(received.len() > before_close, "updates continue after the close");
    assert_no_gaps(&received);
    drop(stuck);
}

#[test]
fn api_klines_equals_the_closing_updates_in_kafka_also_after_a_restart() {
    let server = Server::start(&["serve", "--fanout", "shared", "--mock-mints", "2", "--mock-rate", "200"]);
    std::thread::sleep(Duration::from_secs(6));
    let mints: serde_json::Value = serde_json::from_str(support::body(&server.get("/api/mints"))).unwrap();
    assert_eq!(mints.as_array().map(Vec::len), Some(2), "{mints}");
    // Each coin with the quote its prices are in and where it trades.
    assert_eq!(mints[0]["quote_symbol"], "SOL", "{mints}");
    assert_eq!(mints[0]["quote"], "So11111111111111111111111111111111111111112");
    assert_eq!((mints[0]["quote_decimals"].as_u64(), mints[0]["venue"].as_str()), (Some(9), Some("pump.fun")));
    let mint = mints[0]["mint"].as_str().unwrap().to_owned();
    let api = |server: &Server| -> Vec<(i64, f64, f64, f64, f64, u64)> {
        // 503 while a fresh gateway is still reading history back.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut text = server.get(&format!("/api/klines?window=1s&mint={mint}&limit=1000"));
        while text.starts_with("HTTP/1.1 503") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            text = server.get(&format!("/api/klines?window=1s&mint={mint}&limit=1000"));
        }
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let bars: Vec<serde_json::Value> = serde_json::from_str(support::body(&text)).unwrap();
        // The bar still forming, if any, is the last row (Binance's open
        // kline); the closed ones are compared.
        let open = bars.iter().position(|b| b["closed"] == false).unwrap_or(bars.len());
        assert!(open + 1 >= bars.len(), "only the last row may be open");
        bars[..open]
            .iter()
            .map(|b| {
                let f = |k: &str| b[k].as_f64().unwrap();
                (
                    b["unix_timestamp"].as_i64().unwrap(),
                    f("open"),
                    f("high"),
                    f("low"),
                    f("close"),
                    b["seq"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let topic = server.topic.clone();
    let kafka = |until: i64| -> Vec<(i64, f64, f64, f64, f64, u64)> {
        support::read_topic(&topic, 1, Duration::from_secs(30))
            .into_iter()
            .filter_map(|r| r.bar.ok())
            .filter(|b| b.window_s == 1 && b.closed && bs58::encode(b.mint).into_string() == mint)
            .filter(|b| b.open_time_s <= until)
            .map(|b| (b.open_time_s, b.open, b.high, b.low, b.close, b.seq))
            .collect()
    };
    let live = api(&server);
    assert!(live.len() >= 4, "{} bars", live.len());
    assert_eq!(live, kafka(live.last().unwrap().0));

    // A gateway started later, alone, reads the same history back from Kafka.
    let port = server.port;
    drop(server);
    let restarted = Server::start_on(&["gateway", "--fanout", "shared"], &topic, port);
    let again = api(&restarted);
    assert_eq!(again, kafka(i64::MAX), "history after a restart");
    assert!(again.len() >= live.len());
    assert!(restarted.get("/api/klines?window=7m&mint=x").starts_with("HTTP/1.1 400"));
    assert!(restarted.get(&format!("/api/klines?window=1s&mint={mint}&limit=5000")).starts_with("HTTP/1.1 400"));
}
