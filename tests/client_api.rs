//! The client API against the real broker, with real sockets: resume after
//! a reconnect (by seq and by time, the gap reply), history pages as deep
//! as the store keeps (also across a gateway restart while the feed goes
//! on, reading only what it missed), Binance's shapes read by a Binance client
//! library's parser, fill=prev and market caps on fixed data, and bad input
//! on every new parameter.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use klinecast::codec::bar::Bar;
use klinecast::codec::trade::TradeEvent;
use serde_json::Value;
use support::{Frame, Server, assert_no_gaps, bars, body, collect, command};

/// The JSON body of a GET, with its status; retries while the history store
/// is still catching up (503).
fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = server.get(path);
        let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        if status != 503 || Instant::now() > deadline {
            let value = serde_json::from_str(body(&text)).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
            return (status, value);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The first mint `/api/mints` lists, once it lists one.
fn some_mint(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, mints) = get_json(server, "/api/mints");
        if let Some(mint) = mints[0]["mint"].as_str() {
            return mint.to_owned();
        }
        assert!(Instant::now() < deadline, "no mint listed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every update of one series in Kafka, in topic order.
fn series_in_kafka(topic: &str, mint: &str, window_s: u32) -> Vec<Bar> {
    support::read_topic(topic, 1, Duration::from_secs(30))
        .into_iter()
        .filter_map(|r| r.bar.ok())
        .filter(|b| b.window_s == window_s && bs58::encode(b.mint).into_string() == mint)
        .collect()
}

/// The text replies among frames, parsed.
fn replies(frames: &[Frame]) -> Vec<Value> {
    frames.iter().filter_map(|f| if let Frame::Text(t) = f { serde_json::from_str(t).ok() } else { None }).collect()
}

/// A client reads a series, drops, the feed goes on, it reconnects with
/// `since`: what it got on both connections is the whole series from its
/// first update to its last, each update once, the same bytes as in Kafka.
fn resume_round_trip(args: &[&str]) {
    let server = Server::start(args);
    let mint = some_mint(&server);
    let mut first = server.ws("/ws");
    assert_eq!(command(&mut first, &format!("sub-1s {mint}"))["type"], "subscribed");
    let before = bars(&collect(&mut first, Duration::from_secs(2)));
    drop(first);
    let last_seen = before.last().expect("bars before the drop").seq;
    std::thread::sleep(Duration::from_millis(1500));
    let mut again = server.ws("/ws");
    let ack = command(&mut again, &format!("sub-1s {mint} since {last_seen}"));
    assert_eq!((ack["type"].as_str(), ack["since"].as_u64()), (Some("subscribed"), Some(last_seen)), "{ack}");
    assert!(ack["replayed"].as_u64().unwrap() > 0, "updates came while away: {ack}");
    let frames = collect(&mut again, Duration::from_secs(2));
    assert!(replies(&frames).iter().all(|r| r["type"] != "gap"), "{:?}", replies(&frames));
    let after = bars(&frames);
    assert_eq!(after[0].seq, last_seen + 1, "the replay starts right after the last seen");
    let union: Vec<Bar> = before.iter().chain(&after).copied().collect();
    assert_no_gaps(&union);
    let (from, to) = (union[0].seq, union.last().unwrap().seq);
    let kafka: Vec<Bar> =
        series_in_kafka(&server.topic, &mint, 1).into_iter().filter(|b| b.seq >= from && b.seq <= to).collect();
    assert_eq!(union, kafka, "exactly the series in Kafka, each update once");
}

#[test]
fn per_client_resume_after_a_drop_gets_every_update_once() {
    resume_round_trip(&["serve", "--mock-mints", "2", "--mock-rate", "200"]);
}

#[test]
fn shared_resume_after_a_drop_gets_every_update_once() {
    resume_round_trip(&[
        "serve",
        "--fanout",
        "shared",
        "--push-interval",
        "0",
        "--mock-mints",
        "2",
        "--mock-rate",
        "200",
    ]);
}

/// With `since` older than the gateway keeps, the reply names the missing
/// range, then what is kept follows without a hole.
#[test]
fn resume_from_further_back_than_kept_gets_a_gap_reply() {
    for fanout in ["per-client", "shared"] {
        let server = Server::start(&[
            "serve",
            "--fanout",
            fanout,
            "--push-interval",
            "0",
            "--mock-mints",
            "1",
            "--mock-rate",
            "200",
            "--resume-updates",
            "40",
        ]);
        let mint = some_mint(&server);
        std::thread::sleep(Duration::from_secs(2));
        let mut ws = server.ws("/ws");
        let ack = command(&mut ws, &format!("sub-1s {mint} since 1"));
        assert_eq!(ack["type"], "subscribed", "{ack}");
        let frames = collect(&mut ws, Duration::from_secs(2));
        let gap =
            replies(&frames).into_iter().find(|r| r["type"] == "gap").unwrap_or_else(|| panic!("{fanout}: no gap"));
        assert_eq!((gap["from_seq"].as_u64(), gap["mint"].as_str()), (Some(2), Some(mint.as_str())), "{gap}");
        let to = gap["to_seq"].as_u64().unwrap();
        let got = bars(&frames);
        assert_eq!(got[0].seq, to + 1, "{fanout}: the kept part follows the gap");
        assert_no_gaps(&got);
        // An up-to-date client gets nothing replayed and no gap.
        let latest = got.last().unwrap().seq;
        drop(ws);
        let mut ws = server.ws("/ws");
        let ack = command(&mut ws, &format!("sub-1s {mint} since {}", latest + 1_000_000));
        assert_eq!(ack["replayed"], 0, "{ack}");
    }
}

/// `sub-1s from <ms>` (every mint): every update produced since, then
/// live; deduplicated by seq, the union has no hole in any series.
#[test]
fn resume_by_time_over_all_mints() {
    let server = Server::start(&[
        "serve",
        "--fanout",
        "shared",
        "--push-interval",
        "0",
        "--mock-mints",
        "3",
        "--mock-rate",
        "150",
    ]);
    some_mint(&server);
    let mut first = server.ws("/ws");
    command(&mut first, "sub-1s");
    let before = bars(&collect(&mut first, Duration::from_secs(2)));
    drop(first);
    let last_ms = before.iter().map(|b| b.produced_ns / 1_000_000).max().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let mut again = server.ws("/ws");
    let ack = command(&mut again, &format!("sub-1s from {last_ms}"));
    assert_eq!((ack["type"].as_str(), ack["from"].as_u64()), (Some("subscribed"), Some(last_ms)), "{ack}");
    let after = bars(&collect(&mut again, Duration::from_secs(2)));
    assert!(
        after.iter().take(ack["replayed"].as_u64().unwrap() as usize).all(|b| b.produced_ns / 1_000_000 >= last_ms)
    );
    let mut seen: BTreeMap<([u8; 32], u64), Bar> = BTreeMap::new();
    for bar in before.iter().chain(&after) {
        seen.insert((bar.mint, bar.seq), *bar);
    }
    let union: Vec<Bar> = seen.into_values().collect();
    let mints: std::collections::BTreeSet<[u8; 32]> = union.iter().map(|b| b.mint).collect();
    assert_eq!(mints.len(), 3);
    assert_no_gaps(&union);
}

/// Pages of the JSON API, walked back with endTime, oldest first.
fn walk_back(server: &Server, path: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut rows: Vec<Value> = Vec::new();
    let mut end = i64::MAX / 2;
    let mut pages = 0;
    loop {
        let (status, page) = get_json(server, &format!("{path}&limit={limit}&endTime={end}"));
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        pages += 1;
        if page.is_empty() {
            break;
        }
        let times: Vec<i64> = page.iter().map(|r| r["unix_timestamp"].as_i64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "a page is oldest first");
        end = times[0] * 1000 - 1;
        let done = page.len() < limit;
        rows.splice(0..0, page);
        if done {
            break;
        }
    }
    (rows, pages)
}

/// Every closed 1 s bar of `mint` in Kafka up to `newest`, as (time, seq).
fn closed_in_kafka(topic: &str, mint: &str, newest: i64) -> Vec<(i64, u64)> {
    let bars = series_in_kafka(topic, mint, 1).into_iter();
    bars.filter(|b| b.closed && b.open_time_s <= newest).map(|b| (b.open_time_s, b.seq)).collect()
}

/// (time, seq) of the closed rows; the rows end with at most one open one
/// (the bar still forming), after every closed row.
fn time_and_seq(rows: &[Value]) -> Vec<(i64, u64)> {
    let open = rows.iter().position(|r| r["closed"] == false).unwrap_or(rows.len());
    assert!(open + 1 >= rows.len(), "only the last row may be open");
    rows[..open].iter().map(|r| (r["unix_timestamp"].as_i64().unwrap(), r["seq"].as_u64().unwrap())).collect()
}

/// Ingest runs on its own; the gateway pages, stops, misses a few seconds
/// of bars and starts again on its store: it reads only what it missed,
/// and pages across the restart are complete and in order. Once the feed
/// has stopped, a gateway started on the same store reads nothing at all.
#[test]
fn history_pages_are_complete_and_ordered_across_a_gateway_restart_on_its_store() {
    let topic = support::fresh_topic("it-api");
    let dir = support::process::fresh_history_dir("pages");
    let dir_arg = dir.to_string_lossy().into_owned();
    let port = support::free_port();
    let brokers = support::brokers();
    let feed_args = ["ingest", "--brokers", &brokers, "--topic", &topic, "--mock-mints", "1", "--mock-rate", "100"];
    let mut feed = support::Child::spawn("ingest", &feed_args, support::log_path(&topic, "ingest"), false);
    assert!(feed.wait_for_log("ingest starting", Duration::from_secs(30)), "{}", feed.log_text());
    let gateway = ["gateway", "--history-dir", &dir_arg];
    let server = Server::start_on(&gateway, &topic, port);
    let mint = some_mint(&server);
    std::thread::sleep(Duration::from_secs(12));
    let path = format!("/api/klines?mint={mint}&window=1s");
    let (rows, pages) = walk_back(&server, &path, 3);
    assert!(pages >= 4, "{pages} pages");
    assert_eq!(rows.last().unwrap()["closed"], false, "the newest row is the bar still open, as on Binance");
    let first = time_and_seq(&rows);
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "in order across pages, none twice");
    let newest = first.last().unwrap().0;
    assert_eq!(first, closed_in_kafka(&topic, &mint, newest), "every closed bar, across pages");
    drop(server);

    // Down for a few seconds while the feed goes on.
    std::thread::sleep(Duration::from_secs(3));
    let restarted = Server::start_on(&gateway, &topic, port);
    let (again, _) = walk_back(&restarted, &path, 3);
    let again = time_and_seq(&again);
    let newest_again = again.last().unwrap().0;
    assert!(newest_again >= newest + 3, "bars of the time it was down: {newest} → {newest_again}");
    assert_eq!(again, closed_in_kafka(&topic, &mint, newest_again), "the whole series across the restart");
    // It read what it missed, not what its store had: at most the bars
    // closed since the first pages (1 s bars of the one mint, and a 1 m,
    // 5 m or 1 h bar if a boundary passed), never the first pages again.
    let written = restarted.metric("klinecast_history_bars_written_total");
    let missed = again.len() - first.len();
    assert!(written >= 1.0 && written <= (missed + 3) as f64, "{written} bars written, {missed} missed");
    // Forward paging with startTime, Binance's way, gives the same (and
    // whatever closed since).
    let first_ms = again[0].0 * 1000;
    let (_, forward) =
        get_json(&restarted, &format!("/api/v3/klines?symbol={mint}&interval=1s&startTime={first_ms}&limit=1000"));
    let forward: Vec<i64> = forward.as_array().unwrap().iter().map(|r| r[0].as_i64().unwrap() / 1000).collect();
    assert!(forward.len() >= again.len(), "{} rows forward, {} back", forward.len(), again.len());
    assert_eq!(forward[..again.len()], again.iter().map(|r| r.0).collect::<Vec<_>>());

    // The feed stops. A gateway started after that catches up with the
    // whole topic (its history answers once it has); one started on the
    // same store after it reads nothing at all.
    feed.stop();
    drop(restarted);
    let caught_up = Server::start_on(&gateway, &topic, port);
    let (all, _) = walk_back(&caught_up, &path, 1000);
    assert_eq!(time_and_seq(&all), closed_in_kafka(&topic, &mint, i64::MAX), "the whole series");
    drop(caught_up);
    let last = Server::start_on(&gateway, &topic, port);
    let (all_again, _) = walk_back(&last, &path, 1000);
    assert_eq!(all_again, all);
    assert_eq!(last.metric("klinecast_history_bars_written_total"), 0.0, "nothing read again");
    drop(last);
    let _ = std::fs::remove_dir_all(dir);
}

/// One mint's trades at chosen times and reserves: 1 m bars at minutes 0,
/// 3 and 5 of an hour (two and one empty minutes between), priced from the
/// curve's reserves.
fn fixed_trades() -> Vec<TradeEvent> {
    let hour: i64 = 1_770_649_200;
    let trade = |ts: i64, vsol: u64, vtok: u64| TradeEvent {
        mint: [4; 32],
        sol_amount: 1_000_000_000,
        token_amount: 35_000_000_000_000,
        is_buy: true,
        user: [9; 32],
        timestamp: ts,
        virtual_sol_reserves: vsol,
        virtual_token_reserves: vtok,
        real_sol_reserves: vsol - 30_000_000_000,
        real_token_reserves: 0,
        quote_mint: [0; 32],
        quote_amount: 1_000_000_000,
        virtual_quote_reserves: vsol,
    };
    vec![
        trade(hour + 5, 30_000_000_000, 1_073_000_000_000_000),
        trade(hour + 40, 31_000_000_000, 1_038_000_000_000_000),
        trade(hour + 185, 32_000_000_000, 1_005_000_000_000_000),
        trade(hour + 301, 40_000_000_000, 804_000_000_000_000),
    ]
}

/// A replay of `trades` into a fresh topic, then a gateway on it.
fn gateway_over(trades: &[TradeEvent]) -> Server {
    let topic = support::fresh_topic("it-api");
    support::create_topic(&support::brokers(), &topic, 4).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for t in trades {
        writeln!(file, "Program data: {}", STANDARD.encode(t.encode())).unwrap();
    }
    file.flush().unwrap();
    let path = file.path().to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_klinecast"))
        .args([
            "ingest",
            "--source",
            "replay",
            "--replay-file",
            path,
            "--brokers",
            &support::brokers(),
            "--topic",
            &topic,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Server::start_on(&["gateway"], &topic, support::free_port())
}

#[test]
fn fill_prev_and_market_caps_on_fixed_data_are_exact() {
    let server = gateway_over(&fixed_trades());
    let mint = bs58::encode([4u8; 32]).into_string();
    let kafka: Vec<Bar> = series_in_kafka(&server.topic, &mint, 60).into_iter().filter(|b| b.closed).collect();
    assert_eq!(kafka.iter().map(|b| b.open_time_s % 3600).collect::<Vec<_>>(), [0, 180, 300]);
    let (_, rows) = get_json(&server, &format!("/api/klines?mint={mint}&window=1m&fill=prev"));
    let rows = rows.as_array().unwrap();
    let shape: Vec<(i64, bool)> =
        rows.iter().map(|r| (r["unix_timestamp"].as_i64().unwrap() % 3600, r["filled"] == true)).collect();
    assert_eq!(shape, [(0, false), (60, true), (120, true), (180, false), (240, true), (300, false)]);
    for (row, prev) in [(&rows[1], &kafka[0]), (&rows[2], &kafka[0]), (&rows[4], &kafka[1])] {
        for key in ["open", "high", "low", "close"] {
            assert_eq!(row[key].as_f64(), Some(prev.close), "{key} of a filled bar is the previous close");
        }
        assert_eq!((row["trades"].as_u64(), row["volume_quote"].as_f64()), (Some(0), Some(0.0)));
    }
    assert!(rows[0].get("filled").is_none(), "kept bars are not marked");
    // Without fill: the three kept bars.
    let (_, plain) = get_json(&server, &format!("/api/klines?mint={mint}&window=1m"));
    assert_eq!(plain.as_array().unwrap().len(), 3);

    // Market cap: price × 1,000,000,000 tokens, in the quote (SOL).
    let (_, mcap) = get_json(&server, &format!("/api/klines?mint={mint}&window=1m&unit=mcap"));
    let first = &mcap[0];
    assert_eq!(first["unit"], "mcap");
    assert_eq!(first["close"].as_f64(), Some(kafka[0].close * 1e9));
    // 30 SOL / 1,073,000,000 tokens of virtual reserves: 27.958… SOL.
    assert!((first["open"].as_f64().unwrap() - 30.0 / 1.073).abs() < 1e-9, "{first}");
    assert_eq!(first["quote_symbol"], "SOL");
    let (_, binance) = get_json(&server, &format!("/api/v3/klines?symbol={mint}&interval=1m&unit=mcap&fill=prev"));
    assert_eq!(binance.as_array().unwrap().len(), 6);
    assert_eq!(binance[0][4].as_str().unwrap().parse::<f64>().unwrap(), kafka[0].close * 1e9);
    assert_eq!(
        (binance[1][8].as_u64(), binance[1][5].as_str()),
        (Some(0), Some("0.000000")),
        "a filled row: no trades"
    );
    // Over the WebSocket, JSON form: a page with fill, in market caps.
    let mut ws = server.ws("/ws?format=json&unit=mcap");
    let ack = command(&mut ws, &format!("hist-1m 100 {mint} start=0 fill=prev"));
    assert_eq!((ack["type"].as_str(), ack["bars"].as_u64()), (Some("page"), Some(6)), "{ack}");
    let page = replies(&collect(&mut ws, Duration::from_secs(1)));
    assert_eq!(page.len(), 6);
    assert_eq!(page[2]["filled"], true);
    assert_eq!(page[3]["close"].as_f64(), Some(kafka[1].close * 1e9));
    // A binary connection cannot carry filled bars.
    let mut binary = server.ws("/ws");
    assert_eq!(command(&mut binary, &format!("hist-1m 10 {mint} fill=prev"))["type"], "error");
    let ack = command(&mut binary, &format!("hist-1m 2 {mint} end=99999999999999"));
    assert_eq!(ack["bars"], 2);
    let got = bars(&collect(&mut binary, Duration::from_secs(1)));
    assert_eq!(got, kafka[1..], "the last two, as binary bars");
}

/// Binance's row parsed by ccxt's own binance kline parser (npm `ccxt`,
/// installed by `npm ci` in static/), unchanged.
#[test]
fn a_binance_client_librarys_parser_reads_api_v3_klines() {
    let server = gateway_over(&fixed_trades());
    let mint = bs58::encode([4u8; 32]).into_string();
    let url = format!("http://127.0.0.1:{}/api/v3/klines?symbol={mint}&interval=1m", server.port);
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("node").arg(format!("{root}/static/tools/ccxt-klines.mjs")).arg(&url).output().unwrap();
    assert!(out.status.success(), "ccxt: {}", String::from_utf8_lossy(&out.stderr));
    let parsed: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();
    let kafka: Vec<Bar> = series_in_kafka(&server.topic, &mint, 60).into_iter().filter(|b| b.closed).collect();
    let want: Vec<Vec<f64>> = kafka
        .iter()
        .map(|b| vec![(b.open_time_s * 1000) as f64, b.open, b.high, b.low, b.close, b.volume_tokens as f64 / 1e6])
        .collect();
    assert_eq!(parsed, want, "ccxt's [time, open, high, low, close, base volume]");
    // And python-binance's meanings over the WebSocket form.
    let mut ws = server.ws("/ws?format=binance");
    assert_eq!(command(&mut ws, &format!("hist-1m 3 {mint} start=0"))["bars"], 3);
    let events = replies(&collect(&mut ws, Duration::from_secs(1)));
    for (event, bar) in events.iter().zip(&kafka) {
        let k = &event["k"];
        assert_eq!(
            (event["e"].as_str(), k["s"].as_str(), k["i"].as_str()),
            (Some("kline"), Some(mint.as_str()), Some("1m"))
        );
        assert_eq!(k["t"].as_i64(), Some(bar.open_time_s * 1000));
        assert_eq!(k["T"].as_i64(), Some(bar.open_time_s * 1000 + 59_999));
        assert_eq!(k["c"].as_str().unwrap().parse::<f64>().unwrap(), bar.close);
        assert_eq!(k["q"].as_str().unwrap().parse::<f64>().unwrap(), bar.volume_quote as f64 / 1e9);
        assert_eq!((k["n"].as_u64(), k["x"].as_bool()), (Some(u64::from(bar.trades)), Some(true)));
    }
}

/// Closing bars of `mint`'s 1 s series a client has after `/api/klines`
/// then `sub-1s <mint> since <seq of its newest row>` (the row still
/// forming included): the closed rows, then the live closing updates.
fn rest_then_live(server: &Server, mint: &str) -> (Vec<i64>, Vec<i64>) {
    let (_, page) = get_json(server, &format!("/api/klines?mint={mint}&window=1s&limit=5"));
    let page = page.as_array().unwrap();
    let rows: Vec<i64> =
        page.iter().filter(|r| r["closed"] == true).map(|r| r["unix_timestamp"].as_i64().unwrap()).collect();
    let mut ws = server.ws("/ws");
    let sub = match page.last().and_then(|r| r["seq"].as_u64()) {
        Some(seq) => format!("sub-1s {mint} since {seq}"),
        None => format!("sub-1s {mint}"),
    };
    assert_eq!(command(&mut ws, &sub)["type"], "subscribed");
    // Until the first live close (a 1 s bar closes every second; a shared
    // gateway pushes it within its 1 s interval), at most 10 s.
    let mut live = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !live.iter().any(|b: &Bar| b.closed) && Instant::now() < deadline {
        live.extend(bars(&collect(&mut ws, Duration::from_millis(250))));
    }
    (rows, live.iter().filter(|b| b.closed).map(|b| b.open_time_s).collect())
}

/// History then live with no hole, whatever the moment: 20 times, 0–50 ms
/// after a 1 s bar of the coin closed (when the history store has not
/// committed it yet), a client pages `/api/klines` and subscribes from the
/// newest row's `seq`; every closed bar in Kafka from its first row to its
/// first live close is in one or the other. Both fan-out modes.
#[test]
fn history_then_live_has_no_hole_right_after_a_bar_closes() {
    for fanout in ["per-client", "shared"] {
        let server = Server::start(&["serve", "--fanout", fanout, "--mock-mints", "1", "--mock-rate", "50"]);
        let mint = some_mint(&server);
        let mut watcher = server.ws("/ws");
        assert_eq!(command(&mut watcher, &format!("sub-1s {mint}"))["type"], "subscribed");
        let mut trials = Vec::new();
        for trial in 0..20u64 {
            // Wait for a close, then 0–50 ms.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !bars(&collect(&mut watcher, Duration::from_millis(1))).iter().any(|b| b.closed) {
                assert!(Instant::now() < deadline, "no 1 s bar closed in 10 s");
            }
            std::thread::sleep(Duration::from_millis(trial * 50 / 19));
            trials.push(rest_then_live(&server, &mint));
        }
        let closed: Vec<i64> =
            series_in_kafka(&server.topic, &mint, 1).into_iter().filter(|b| b.closed).map(|b| b.open_time_s).collect();
        for (i, (rows, live)) in trials.iter().enumerate() {
            // The first bar the client has (history may be empty in the
            // coin's first seconds) to the last.
            let (Some(&from), Some(&to)) = (rows.first().or(live.first()), live.last()) else {
                panic!("{fanout} trial {i}: rows {rows:?}, live closes {live:?}");
            };
            let holes: Vec<i64> = closed
                .iter()
                .copied()
                .filter(|t| (from..=to).contains(t) && !rows.contains(t) && !live.contains(t))
                .collect();
            assert!(holes.is_empty(), "{fanout} trial {i}: bars {holes:?} in neither (rows {rows:?}, live {live:?})");
        }
    }
}

/// TradingView's UDF datafeed on fixed data: the documented shapes of
/// `config`, `time`, `symbols`, `search` and `history` (from/to,
/// countback, `no_data` with `nextTime`), and errors as answers.
#[test]
fn tradingview_udf_answers_the_documented_shapes() {
    let server = gateway_over(&fixed_trades());
    let mint = bs58::encode([4u8; 32]).into_string();
    let hour: i64 = 1_770_649_200;
    let kafka: Vec<Bar> = series_in_kafka(&server.topic, &mint, 60).into_iter().filter(|b| b.closed).collect();
    assert_eq!(kafka.iter().map(|b| b.open_time_s - hour).collect::<Vec<_>>(), [0, 180, 300]);

    let (_, config) = get_json(&server, "/udf/config");
    assert_eq!(config["supported_resolutions"], serde_json::json!(["1S", "1", "5", "60"]));
    assert_eq!((config["supports_search"].as_bool(), config["supports_time"].as_bool()), (Some(true), Some(true)));
    let now: i64 = body(&server.get("/udf/time")).trim().parse().unwrap();
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - wall).abs() <= 5, "{now} vs {wall}");

    let (_, info) = get_json(&server, &format!("/udf/symbols?symbol={mint}"));
    assert_eq!((info["name"].as_str(), info["type"].as_str()), (Some(mint.as_str()), Some("crypto")));
    let scale = info["pricescale"].as_u64().unwrap();
    assert!(scale.to_string().trim_start_matches('1').bytes().all(|b| b == b'0'), "a power of ten: {scale}");
    let close = kafka.last().unwrap().close;
    assert!(close * scale as f64 >= 10_000.0, "{close} at pricescale {scale} shows 5 digits");
    assert_eq!(info["has_seconds"], true);
    let (_, unknown) = get_json(&server, "/udf/symbols?symbol=So11111111111111111111111111111111111111112");
    assert_eq!(unknown["s"], "error");
    let (_, found) = get_json(&server, &format!("/udf/search?query={}&limit=5", &mint[..6].to_lowercase()));
    assert_eq!(found[0]["symbol"], mint.as_str(), "{found}");

    let history = |query: &str| get_json(&server, &format!("/udf/history?symbol={mint}&{query}")).1;
    let ok = history(&format!("resolution=1&from={hour}&to={}", hour + 3600));
    assert_eq!(ok["s"], "ok", "{ok}");
    let column = |k: &str| ok[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    assert_eq!(column("t"), kafka.iter().map(|b| b.open_time_s as f64).collect::<Vec<_>>());
    assert_eq!(column("o"), kafka.iter().map(|b| b.open).collect::<Vec<_>>());
    assert_eq!(column("h"), kafka.iter().map(|b| b.high).collect::<Vec<_>>());
    assert_eq!(column("l"), kafka.iter().map(|b| b.low).collect::<Vec<_>>());
    assert_eq!(column("c"), kafka.iter().map(|b| b.close).collect::<Vec<_>>());
    assert_eq!(column("v"), kafka.iter().map(|b| b.volume_tokens as f64 / 1e6).collect::<Vec<_>>());
    let last_two = history(&format!("resolution=1&to={}&countback=2", hour + 3600));
    assert_eq!(last_two["t"], serde_json::json!([hour + 180, hour + 300]));
    let none = history(&format!("resolution=1&from={}&to={}", hour + 600, hour + 1200));
    assert_eq!(none, serde_json::json!({"s": "no_data", "nextTime": hour + 300}));
    let before_all = history(&format!("resolution=1&from={}&to={hour}", hour - 7200));
    assert_eq!(before_all, serde_json::json!({"s": "no_data"}));
    for bad in ["resolution=7&to=1", "resolution=1", "resolution=1&to=x", "resolution=1&to=9&countback=0"] {
        assert_eq!(history(bad)["s"], "error", "{bad}");
    }
}

/// Binance's klines end with the kline still forming: within a coin's first
/// hour, `/api/v3/klines?interval=1h` has that bar, and ccxt's own parser
/// (what `fetch_ohlcv` runs) reads it; `/api/klines` marks it
/// `"closed":false`.
#[test]
fn the_open_kline_ends_the_history_within_a_coins_first_window() {
    let server = Server::start(&["serve", "--mock-mints", "1", "--mock-rate", "100"]);
    let mint = some_mint(&server);
    let (_, native) = get_json(&server, &format!("/api/klines?mint={mint}&window=1h"));
    let native = native.as_array().unwrap();
    let open = native.last().unwrap_or_else(|| panic!("no row at all within the coin's first hour"));
    assert_eq!(open["closed"], false, "{open}");
    assert!(native[..native.len() - 1].iter().all(|r| r["closed"] == true), "only the last row is open");
    let url = format!("http://127.0.0.1:{}/api/v3/klines?symbol={mint}&interval=1h", server.port);
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("node").arg(format!("{root}/static/tools/ccxt-klines.mjs")).arg(&url).output().unwrap();
    assert!(out.status.success(), "ccxt: {}", String::from_utf8_lossy(&out.stderr));
    let parsed: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();
    let last = parsed.last().unwrap_or_else(|| panic!("ccxt parsed no row"));
    let open_ms = open["unix_timestamp"].as_i64().unwrap() * 1000;
    assert_eq!(last[0], open_ms as f64, "ccxt's last row is the open hour");
    assert!(last[4] > 0.0 && last[2] >= last[3], "{last:?}");
}

#[test]
fn live_binance_websocket_events_carry_the_bars_fields() {
    let server = Server::start(&["serve", "--mock-mints", "1", "--mock-rate", "100"]);
    let mut ws = server.ws("/ws?format=binance");
    assert_eq!(command(&mut ws, "sub-1s")["type"], "subscribed");
    let events = replies(&collect(&mut ws, Duration::from_secs(2)));
    assert!(events.len() > 20, "{} events", events.len());
    let mut json = server.ws("/ws?format=json&unit=mcap");
    command(&mut json, "sub-1s");
    let mcaps = replies(&collect(&mut json, Duration::from_secs(1)));
    assert!(mcaps.iter().all(|b| b["unit"] == "mcap" && b["close"].as_f64().unwrap() > 1.0), "{:?}", mcaps.first());
    for event in &events {
        let k = &event["k"];
        assert_eq!(event["e"], "kline");
        let (o, h, l, c) = (k["o"].as_str(), k["h"].as_str(), k["l"].as_str(), k["c"].as_str());
        let [o, h, l, c] = [o, h, l, c].map(|v| v.unwrap().parse::<f64>().unwrap());
        assert!(l <= o.min(c) && o.max(c) <= h && l > 0.0, "{event}");
        assert_eq!(k["T"].as_i64().unwrap() - k["t"].as_i64().unwrap(), 999);
    }
    assert!(events.iter().any(|e| e["k"]["x"] == true), "closing updates too");
}

/// Bad input on every new parameter: Binance's error, with its code, and
/// everything else goes on.
#[test]
fn bad_parameters_get_binance_errors_and_nothing_else_is_affected() {
    let server = gateway_over(&fixed_trades());
    let mint = bs58::encode([4u8; 32]).into_string();
    let mut watcher = server.ws("/ws");
    assert_eq!(command(&mut watcher, "ping")["type"], "pong");
    let cases = [
        ("symbol=nope&interval=1m".to_owned(), -1121),
        (format!("symbol={mint}&interval=7m"), -1120),
        (format!("symbol={mint}&interval=1M"), -1120),
        (format!("symbol={mint}"), -1102),
        ("interval=1m".to_owned(), -1102),
        (format!("symbol={mint}&interval=1m&startTime=2000&endTime=1000"), -1023),
        (format!("symbol={mint}&interval=1m&limit=0"), -1130),
        (format!("symbol={mint}&interval=1m&limit=5000"), -1130),
        (format!("symbol={mint}&interval=1m&startTime=yesterday"), -1100),
        (format!("symbol={mint}&interval=1m&endTime=-5"), -1100),
        (format!("symbol={mint}&interval=1m&fill=zero"), -1130),
        (format!("symbol={mint}&interval=1m&unit=usd"), -1130),
        (format!("symbol={mint}&interval=1m&cursor=3"), -1104),
    ];
    for path in ["/api/v3/klines", "/api/klines"] {
        for (query, code) in &cases {
            let query = if path == "/api/klines" { query.replace("interval=", "window=") } else { query.clone() };
            let (status, error) = get_json(&server, &format!("{path}?{query}"));
            let code = if path == "/api/klines" && query.contains("cursor") { -1104 } else { *code };
            assert_eq!((status, error["code"].as_i64()), (400, Some(code)), "{path}?{query}: {error}");
            assert!(error["msg"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    for bad in [
        "sub-1m since 5",
        &format!("sub-1m {mint} since x"),
        "sub-1m from soon",
        &format!("hist-1m 5 {mint} start=9 end=1"),
        &format!("hist-1m 5000 {mint} end=1"),
        "hist-1m 5 end=10",
    ] {
        assert_eq!(command(&mut watcher, bad)["type"], "error", "{bad}");
    }
    assert!(server.get("/ws?format=xml").starts_with("HTTP/1.1 4"));
    // Everything still answers.
    assert_eq!(command(&mut watcher, "ping")["type"], "pong");
    let (status, rows) = get_json(&server, &format!("/api/v3/klines?symbol={mint}&interval=1m"));
    assert_eq!((status, rows.as_array().map(Vec::len)), (200, Some(3)));
    let unknown = bs58::encode([5u8; 32]).into_string();
    let (status, rows) = get_json(&server, &format!("/api/v3/klines?symbol={unknown}&interval=1m"));
    assert_eq!((status, rows), (200, Value::Array(Vec::new())), "a well-formed mint without bars: no rows");
}
