//! The live Solana source end to end: `klinecast ingest --source solana`
//! against the fake RPC node of `tests/fake_rpc/` (loopback only), which
//! streams transactions built from the REAL recorded events of
//! `tests/fixtures/solana/` inside realistic log stacks, and the real Kafka
//! broker. What lands in Kafka is compared with a reference computed from
//! the full list of trades the node produced.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod fake_rpc;
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_rpc::fixtures::RealPool;
use fake_rpc::tx::{Failure, Truncation};
use fake_rpc::{CurveWalk, FakeNode, Mode, NodeOptions, PUMP_FUN, PUMP_SWAP, RealEvent, SwapSpec, TxBuilder};
use klinecast::codec::bar::Bar;
use klinecast::codec::quote::WSOL_MINT;

/// Windows of these tests: short, so every bar closes within seconds.
const WINDOWS: [u32; 2] = [1, 5];
/// Allowed lateness given to ingest.
const CLOSE_DELAY_S: u64 = 2;
/// HTTP requests in flight that ingest is given.
const CONCURRENCY: usize = 4;
/// How long a step may take before the test gives up.
const WAIT: Duration = Duration::from_secs(60);

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A `klinecast ingest --source solana` process, killed when dropped.
struct Ingest {
    child: Child,
    metrics_port: u16,
    log: tempfile::NamedTempFile,
}

impl Ingest {
    fn start(node: &FakeNode, topic: &str, extra: &[&str]) -> Self {
        Self::start_trusting(node, topic, extra, node.ca_pem_path())
    }

    /// As [`Ingest::start`], trusting `ca` for TLS to the node.
    fn start_trusting(node: &FakeNode, topic: &str, extra: &[&str], ca: Option<std::path::PathBuf>) -> Self {
        let metrics_port = support::free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut args: Vec<String> = ["ingest", "--source", "solana", "--windows", "1s,5s"].map(String::from).to_vec();
        args.extend([
            "--rpc-url".into(),
            node.http_url(),
            "--brokers".into(),
            support::brokers(),
            "--topic".into(),
            topic.into(),
        ]);
        args.extend([
            "--close-delay".into(),
            format!("{CLOSE_DELAY_S}s"),
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ]);
        if !extra.contains(&"--rpc-rps") {
            args.extend(["--rpc-rps".into(), "200".into()]);
        }
        args.extend(["--rpc-concurrency".into(), CONCURRENCY.to_string()]);
        if let Some(ca) = ca {
            args.extend(["--rpc-ca-file".into(), ca.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_klinecast"))
            .args(&args)
            .env("KLINECAST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let ingest = Self { child, metrics_port, log };
        assert!(
            fake_rpc::wait_until(WAIT, || ingest.get("/metrics").starts_with("HTTP/1.1 200")),
            "metrics: {}",
            ingest.log()
        );
        ingest
    }

    fn get(&self, path: &str) -> String {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.metrics_port)) else { return String::new() };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    }

    /// A metric's value (summed over labels).
    fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics");
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // A failed test shows what ingest counted and said.
        if std::thread::panicking() {
            let metrics = self.get("/metrics");
            let counters: Vec<&str> =
                metrics.lines().filter(|l| !l.starts_with('#') && !l.contains("_bucket")).collect();
            eprintln!("ingest metrics:\n{}\ningest log:\n{}", counters.join("\n"), self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the reference keeps of one trade.
#[derive(Debug, Clone, Copy)]
struct Trade {
    mint: [u8; 32],
    ts: i64,
    price: f64,
    quote: u64,
    tokens: u64,
    is_buy: bool,
}

/// The trades of one event, priced from its own fields (a PumpSwap event
/// at the pool's reserves after the trade, its coin from `pools`).
fn trade_of(event: &RealEvent, pools: &BTreeMap<[u8; 32], [u8; 32]>) -> Trade {
    let u = |k: &str| event.u64(k).unwrap();
    match event.kind.as_str() {
        "TradeEvent" => Trade {
            mint: event.pubkey("mint").unwrap(),
            ts: event.i64("timestamp").unwrap(),
            price: (u("virtual_sol_reserves") as f64 / 1e9) / (u("virtual_token_reserves") as f64 / 1e6),
            quote: u("sol_amount"),
            tokens: u("token_amount"),
            is_buy: event.bool("is_buy").unwrap(),
        },
        kind => {
            let buy = kind == "BuyEvent";
            let (base, quote) = (u("pool_base_token_reserves"), u("pool_quote_token_reserves"));
            let (base_after, quote_after) = if buy {
                (base - u("base_amount_out"), quote + u("quote_amount_in_with_lp_fee"))
            } else {
                (base + u("base_amount_in"), quote - u("quote_amount_out_without_lp_fee"))
            };
            Trade {
                mint: pools[&event.pubkey("pool").unwrap()],
                ts: event.i64("timestamp").unwrap(),
                price: (quote_after as f64 / 1e9) / (base_after as f64 / 1e6),
                quote: u(if buy { "quote_amount_in" } else { "quote_amount_out" }),
                tokens: u(if buy { "base_amount_out" } else { "base_amount_in" }),
                is_buy: buy,
            }
        }
    }
}

/// A closing bar as the reference computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RefBar {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume_quote: u64,
    volume_tokens: u64,
    buy_volume_quote: u64,
    trades: u32,
}

type Key = ([u8; 32], u32, i64);

fn reference(trades: &[Trade]) -> BTreeMap<Key, RefBar> {
    let mut bars = BTreeMap::new();
    for t in trades {
        for w in WINDOWS {
            let open_time = t.ts.div_euclid(i64::from(w)) * i64::from(w);
            let bar = bars.entry((t.mint, w, open_time)).or_insert(RefBar {
                open: t.price,
                high: t.price,
                low: t.price,
                close: t.price,
                volume_quote: 0,
                volume_tokens: 0,
                buy_volume_quote: 0,
                trades: 0,
            });
            bar.high = bar.high.max(t.price);
            bar.low = bar.low.min(t.price);
            bar.close = t.price;
            bar.volume_quote += t.quote;
            bar.volume_tokens += t.tokens;
            bar.buy_volume_quote += if t.is_buy { t.quote } else { 0 };
            bar.trades += 1;
        }
    }
    bars
}

/// Reads the topic until it holds `want` closing bars (or the wait ends).
fn closing_bars(topic: &str, want: usize) -> Vec<Bar> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bars: Vec<Bar> = support::read_topic(topic, 1, Duration::from_secs(10))
            .into_iter()
            .map(|r| r.bar.unwrap_or_else(|e| panic!("undecodable bar: {e}")))
            .collect();
        let closed = bars.iter().filter(|b| b.closed).count();
        if closed >= want || Instant::now() > deadline {
            return bars;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every closing bar exactly once, equal to the reference; `seq` +1 per
/// series with no gap or duplicate.
fn check_bars(bars: &[Bar], want: &BTreeMap<Key, RefBar>) {
    let mut closing: BTreeMap<Key, Bar> = BTreeMap::new();
    let mut last_seq: BTreeMap<([u8; 32], u32), u64> = BTreeMap::new();
    for bar in bars {
        if let Some(&seq) = last_seq.get(&(bar.mint, bar.window_s)) {
            assert_eq!(bar.seq, seq + 1, "seq of ({:?}, {}): a gap or a duplicate", &bar.mint[..4], bar.window_s);
        }
        last_seq.insert((bar.mint, bar.window_s), bar.seq);
        if bar.closed {
            let previous = closing.insert((bar.mint, bar.window_s, bar.open_time_s), *bar);
            assert!(previous.is_none(), "two closing updates for {:?}", (bar.window_s, bar.open_time_s));
        }
    }
    let missing: Vec<(u32, i64, &[u8])> =
        want.keys().filter(|k| !closing.contains_key(k)).map(|k| (k.1, k.2, &k.0[..4])).collect();
    let extra: Vec<(u32, i64)> = closing.keys().filter(|k| !want.contains_key(k)).map(|k| (k.1, k.2)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "closing bars missing {missing:?}, not expected {extra:?}");
    for (key, r) in want {
        let b = closing.get(key).unwrap_or_else(|| panic!("no closing bar {:?}", (key.1, key.2)));
        let close = |a: f64, b: f64| (a - b).abs() <= b.abs() * 1e-12;
        assert!(
            close(b.open, r.open) && close(b.high, r.high) && close(b.low, r.low) && close(b.close, r.close),
            "{b:?} vs {r:?}"
        );
        assert_eq!(
            (b.volume_quote, b.volume_tokens, b.buy_volume_quote, b.trades),
            (r.volume_quote, r.volume_tokens, r.buy_volume_quote, r.trades)
        );
        assert_eq!((b.quote_mint, b.quote_decimals), (WSOL_MINT, 9));
    }
}

/// The trades a node streams: coins on their curves, one coin on a
/// PumpSwap pool, with every kind of transaction a real stream has.
struct Feed {
    walks: Vec<CurveWalk>,
    pool: [u8; 32],
    pool_coin: [u8; 32],
    pool_reserves: (u64, u64),
    slot: u64,
    step: u64,
    trades: Vec<Trade>,
    pools: BTreeMap<[u8; 32], [u8; 32]>,
}

impl Feed {
    fn new(node: &FakeNode, coins: u64) -> Self {
        let ts = now_s();
        let walks = (0..coins).map(|i| CurveWalk::current(fake_rpc::pubkey_from_seed(100 + i), ts, 7 + i)).collect();
        let pool_coin = fake_rpc::pubkey_from_seed(999);
        let real = RealPool::current();
        let pool_key = real.pubkey.clone().unwrap();
        let pool = klinecast::codec::json::parse_mint(&pool_key).unwrap();
        let account = real.with_mints(&pool_coin, &WSOL_MINT).unwrap().account();
        node.set_account_full(&pool_key, account);
        Self {
            walks,
            pool,
            pool_coin,
            pool_reserves: (200_000_000_000_000, 80_000_000_000),
            slot: 450_000_000,
            step: 0,
            trades: Vec::new(),
            pools: BTreeMap::from([(pool, pool_coin)]),
        }
    }

    /// Publishes `n` transactions stamped with the wall clock.
    fn publish(&mut self, node: &FakeNode, n: usize) {
        for _ in 0..n {
            self.slot += 1;
            self.step += 1;
            let ts = now_s();
            let coin = (self.step as usize) % self.walks.len();
            let walk = &mut self.walks[coin];
            // Block times only move forward along the chain: the walk's own
            // jitter is replaced by the wall clock's second.
            let event = walk.step().with_i64("timestamp", ts).unwrap();
            let mut builder = TxBuilder::new(self.slot).block_time(ts).seed(self.step);
            let mut applied = vec![event.clone()];
            builder = match self.step % 10 {
                // A foreign program printing pump.fun's own event bytes: not read.
                1 => builder.trade(event).foreign_lookalike(&walk_event(&self.walks[0], ts)),
                // A failed transaction: its events did not happen.
                2 => {
                    applied.clear();
                    builder.trade(event).failed(Failure::AfterEvents(0x1771))
                }
                // A log the node cut before the event: recovered from
                // getTransaction's inner instructions.
                3 => builder.trade(event).truncated(Truncation::BeforeEvent(0)),
                // A transaction mentioning both programs: notified twice.
                4 => builder.trade(event).mention(PUMP_SWAP),
                // A PumpSwap trade of the graduated coin (pool looked up).
                5 => {
                    let swap = self.swap(ts);
                    applied = vec![event.clone(), swap.clone()];
                    builder.trade(event).trade(swap)
                }
                // Through a router, as most volume arrives.
                6 => builder.trade_via(fake_rpc::ROUTER_DFLOW, event),
                _ => builder.trade(event),
            };
            node.publish(builder.build());
            let pools = &self.pools;
            self.trades.extend(applied.iter().map(|e| trade_of(e, pools)));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Publishes one plain trade of coin `coin` at `ts`, in a new slot or in
    /// the last one, shown by the node as `how` says. Returns its slot.
    fn publish_trade(&mut self, node: &FakeNode, coin: usize, ts: i64, same_slot: bool, how: How) -> u64 {
        if !same_slot {
            self.slot += 1;
        }
        self.step += 1;
        let event = self.walks[coin].step().with_i64("timestamp", ts).unwrap();
        let tx = TxBuilder::new(self.slot).block_time(ts).seed(self.step).trade(event.clone()).build();
        match how {
            How::Streamed => node.publish(tx),
            How::NotListedAtFirst => {
                node.hide_from_listings(&tx.signature, 1);
                node.publish(tx);
            }
            How::Unnotified => node.publish_unnotified(tx),
            How::UnnotifiedNotListedAtFirst => {
                node.hide_from_listings(&tx.signature, 1);
                node.publish_unnotified(tx);
            }
        }
        self.trades.push(trade_of(&event, &self.pools));
        self.slot
    }

    fn swap(&mut self, ts: i64) -> RealEvent {
        let buy = self.step % 20 == 5;
        let template = if buy {
            fake_rpc::events::real_event("BuyEvent", 480)
        } else {
            fake_rpc::events::real_event("SellEvent", 441)
        };
        let (base, quote) = self.pool_reserves;
        let base_amount = 1_000_000_000 + self.step * 7_000_000;
        let quote_amount = (u128::from(base_amount) * u128::from(quote) / u128::from(base)) as u64;
        let swap = template
            .derive_swap(&SwapSpec {
                pool: Some(self.pool),
                timestamp: ts,
                base_amount,
                quote_amount,
                pool_base_reserves: base,
                pool_quote_reserves: quote,
            })
            .unwrap();
        self.pool_reserves =
            if buy { (base - base_amount, quote + quote_amount) } else { (base + base_amount, quote - quote_amount) };
        swap
    }

    /// Waits until every bar of the trades so far has closed on the wall
    /// clock (the longest window plus the close delay, and a margin).
    fn wait_closed(&self) {
        let last = self.trades.iter().map(|t| t.ts).max().unwrap_or_default();
        let end = last.div_euclid(5) * 5 + 5 + CLOSE_DELAY_S as i64 + 1;
        while now_s() < end {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// How the node shows a published transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// Notified to live subscriptions and listed.
    Streamed,
    /// Notified, but left out of the first listing that reaches it (a real
    /// node indexes a transaction a moment after it notifies its slot).
    NotListedAtFirst,
    /// Never notified (the stream missed it), only listed.
    Unnotified,
    /// Never notified, and left out of the first listing that reaches it.
    UnnotifiedNotListedAtFirst,
}

/// A trade of `walk`'s coin without moving the walk (for look-alikes).
fn walk_event(walk: &CurveWalk, ts: i64) -> RealEvent {
    walk.clone().step().with_i64("timestamp", ts).unwrap()
}

fn subscribed(node: &FakeNode, n: usize) -> bool {
    node.wait_for_subscriptions(PUMP_FUN, n, WAIT) && node.wait_for_subscriptions(PUMP_SWAP, n, WAIT)
}

#[test]
fn a_dropped_stream_is_backfilled_and_every_bar_equals_the_reference() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-drop");
    let mut feed = Feed::new(&node, 3);
    let ingest = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 40);
    // The node drops the socket and refuses to take it back for a while,
    // "producing" trades meanwhile.
    node.set_mode(Mode::RefuseWebSocket);
    node.drop_connections();
    let gap_start = feed.trades.len();
    feed.publish(&node, 40);
    let in_gap = feed.trades.len() - gap_start;
    node.set_mode(Mode::Normal);
    assert!(fake_rpc::wait_until(WAIT, || node.ws_connections_accepted() >= 2), "{}", ingest.log());
    // Subscribed again: what follows is live, not backfilled.
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 40);
    feed.wait_closed();
    let want = reference(&feed.trades);
    let bars = closing_bars(&topic, want.len());
    check_bars(&bars, &want);
    let m = |name: &str| ingest.metric(name);
    assert!(m("klinecast_solana_reconnects_total") >= 1.0);
    assert!(m("klinecast_solana_backfilled_transactions_total") >= in_gap as f64 * 0.9, "the gap came from backfill");
    assert!(m("klinecast_solana_duplicates_dropped_total") >= 8.0, "both-program transactions arrive twice");
    assert_eq!(m("klinecast_solana_failed_tx_skipped_total"), 12.0, "each failed transaction once, streamed or listed");
    assert!(m("klinecast_solana_truncated_logs_total") >= 8.0);
    assert_eq!(m("klinecast_solana_truncated_recovered_total"), m("klinecast_solana_truncated_logs_total"));
    assert!(m("klinecast_solana_foreign_program_lines_total") >= 8.0);
    assert_eq!(m("klinecast_solana_unrecoverable_gaps_total"), 0.0);
    assert_eq!(m("klinecast_ingest_trades_dropped_total"), 0.0, "{}", ingest.get("/metrics"));
    assert_eq!(m("klinecast_ingest_late_trades_total"), 0.0);
    assert!(m("klinecast_solana_notification_lag_seconds_count") > 0.0);
    assert!(ingest.get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(feed.trades.iter().any(|t| t.mint == feed.pool_coin), "the pool's coin traded");
}

#[test]
fn a_stale_stream_is_found_and_replaced() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-stale");
    let mut feed = Feed::new(&node, 1);
    let ingest = Ingest::start(&node, &topic, &["--rpc-stale-after", "2s", "--rpc-ping-interval", "500ms"]);
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 10);
    // Socket open, nothing sent, pings unanswered.
    node.make_current_stale();
    feed.publish(&node, 10);
    assert!(fake_rpc::wait_until(WAIT, || node.ws_connections_accepted() >= 2), "not replaced: {}", ingest.log());
    assert!(ingest.log().contains("stale"), "{}", ingest.log());
    feed.publish(&node, 10);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    assert!(ingest.metric("klinecast_solana_reconnects_total") >= 1.0);
}

#[test]
fn an_rpc_that_answers_429_is_backed_off_not_hammered() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-429");
    let mut feed = Feed::new(&node, 2);
    let ingest = Ingest::start(&node, &topic, &["--rpc-rps", "5"]);
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 10);
    node.set_mode(Mode::RefuseWebSocket);
    node.drop_connections();
    feed.publish(&node, 20);
    node.clear_requests();
    // The next 6 HTTP answers are 429 with Retry-After: 1.
    node.fail_next_http(6, 429, Some(1));
    node.set_mode(Mode::Normal);
    feed.wait_closed();
    feed.publish(&node, 10);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    let requests = node.requests();
    let throttled: Vec<&fake_rpc::Request> = requests.iter().filter(|r| r.status == 429).collect();
    assert_eq!(throttled.len(), 6, "{requests:?}");
    // In the second after a 429 at most the requests already in flight (one
    // per worker) arrive: the rest wait its Retry-After.
    for t in &throttled {
        let soon =
            requests.iter().filter(|r| r.at > t.at && r.at.duration_since(t.at) < Duration::from_millis(900)).count();
        assert!(soon <= CONCURRENCY, "{soon} requests within 0.9 s of a 429");
    }
    let span = throttled[5].at.duration_since(throttled[0].at);
    assert!(span >= Duration::from_millis(900), "the 429s were spread by the pauses: {span:?}");
    // And never more than the cap, --rpc-rps 5 (bursts of 5).
    for r in &requests {
        let within =
            requests.iter().filter(|q| q.at >= r.at && q.at.duration_since(r.at) < Duration::from_secs(1)).count();
        assert!(within <= 10, "{within} requests in one second at a cap of 5/s");
    }
    assert!(ingest.metric("klinecast_solana_rpc_429_total") >= 6.0);
}

/// A cut log waits in its place for `getTransaction`; while it waits (the
/// node answers 429 for about four seconds, longer than the close delay
/// and a bar), the bar clock waits with it: neither its trades nor those
/// behind it are late.
#[test]
fn a_cut_log_waiting_for_its_recovery_holds_the_bar_clock() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-cut");
    let mut feed = Feed::new(&node, 1);
    let ingest = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 2);
    node.fail_next_http(4, 429, Some(1));
    // The third transaction is the cut one; seven follow it.
    feed.publish(&node, 8);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    assert_eq!(ingest.metric("klinecast_ingest_late_trades_total"), 0.0);
    assert!(ingest.metric("klinecast_solana_rpc_429_total") >= 4.0);
    assert_eq!(ingest.metric("klinecast_solana_truncated_recovered_total"), 1.0);
}

#[test]
fn ingest_killed_mid_stream_and_restarted_ends_with_the_same_bars() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-crash");
    let mut feed = Feed::new(&node, 3);
    let first = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", first.log());
    feed.publish(&node, 60);
    // Wait until some bars are in Kafka, then SIGKILL mid-stream: nothing
    // is flushed, some bars may be lost in flight.
    assert!(fake_rpc::wait_until(WAIT, || first.metric("klinecast_ingest_bars_produced_total") > 50.0));
    feed.publish(&node, 10);
    first.kill();
    // Trades go on while ingest is down.
    feed.publish(&node, 30);
    let second = Ingest::start(&node, &topic, &[]);
    assert!(fake_rpc::wait_until(WAIT, || node.subscriptions_made() >= 4), "{}", second.log());
    feed.publish(&node, 30);
    feed.wait_closed();
    let want = reference(&feed.trades);
    let bars = closing_bars(&topic, want.len());
    check_bars(&bars, &want);
    assert!(second.log().contains("resuming"), "{}", second.log());
    assert!(second.metric("klinecast_solana_already_in_kafka_total") > 0.0, "{}", second.log());
}

/// A transaction confirmed while the stream was down, just before the new
/// subscription started, that the node had not indexed yet when the gap was
/// first listed (seen on a real Agave node): neither the stream nor the
/// first listing has it; the gap's second listing does.
#[test]
fn a_transaction_the_first_gap_listing_missed_is_found_by_the_second() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-unindexed");
    let mut feed = Feed::new(&node, 2);
    let ingest = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 10);
    node.set_mode(Mode::RefuseWebSocket);
    node.drop_connections();
    feed.publish(&node, 5);
    feed.publish_trade(&node, 0, now_s(), false, How::NotListedAtFirst);
    node.set_mode(Mode::Normal);
    assert!(fake_rpc::wait_until(WAIT, || node.subscriptions_made() >= 4), "{}", ingest.log());
    feed.publish(&node, 20);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    assert_eq!(ingest.metric("klinecast_solana_found_on_second_listing_total"), 1.0);
    assert_eq!(ingest.metric("klinecast_ingest_late_trades_total"), 0.0);
}

/// A node notifies a new subscription only of what it runs after
/// registering it, so the first slot the new stream delivers may come in
/// part (seen on a real Agave node): a trade that ran earlier in that slot
/// is in neither the stream nor the first listing; the second listing
/// hands it out, ahead of the rest of its slot.
#[test]
fn the_first_slot_a_new_stream_delivers_in_part_is_completed_by_the_second_listing() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-partslot");
    let mut feed = Feed::new(&node, 2);
    let ingest = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 6);
    node.set_mode(Mode::RefuseWebSocket);
    node.drop_connections();
    feed.publish(&node, 4);
    // Ran before the new subscription was registered, and its slot was not
    // confirmed yet when the gap was first listed.
    let ts = now_s();
    let slot = feed.publish_trade(&node, 0, ts, false, How::UnnotifiedNotListedAtFirst);
    let missed = feed.trades.len() - 1;
    node.set_mode(Mode::Normal);
    assert!(fake_rpc::wait_until(WAIT, || node.subscriptions_made() >= 4), "{}", ingest.log());
    // The rest of that slot reaches the new stream.
    assert_eq!(feed.publish_trade(&node, 0, ts, true, How::Streamed), slot);
    feed.publish(&node, 10);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    assert!(feed.trades.len() > missed);
    assert_eq!(ingest.metric("klinecast_ingest_late_trades_total"), 0.0);
}

/// Bots trade one coin many times per slot. Three trades of one slot are
/// applied, ingest is SIGKILLed, a fourth trade lands in the same slot, and
/// the node lists the slot in another order than it streamed it: the
/// restart applies the fourth and none of the first three again.
#[test]
fn same_slot_trades_across_a_sigkill_are_applied_once_in_any_listing_order() {
    let node = FakeNode::plain();
    node.reverse_listing_within_slots(true);
    let topic = support::fresh_topic("it-solana-sameslot");
    let mut feed = Feed::new(&node, 2);
    let first = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", first.log());
    feed.publish(&node, 4);
    let ts = now_s();
    let slot = feed.publish_trade(&node, 0, ts, false, How::Streamed);
    for _ in 0..2 {
        feed.publish_trade(&node, 0, ts, true, How::Streamed);
    }
    let applied = feed.trades.len() as f64;
    let done = || {
        first.metric("klinecast_ingest_trades_applied_total") >= applied
            && first.metric("klinecast_ingest_producer_queue") == 0.0
    };
    assert!(fake_rpc::wait_until(WAIT, done), "{}", first.log());
    first.kill();
    assert_eq!(feed.publish_trade(&node, 0, ts, true, How::Streamed), slot, "the same slot");
    feed.publish(&node, 3);
    let second = Ingest::start(&node, &topic, &[]);
    assert!(fake_rpc::wait_until(WAIT, || node.subscriptions_made() >= 4), "{}", second.log());
    feed.publish(&node, 6);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    assert!(second.metric("klinecast_solana_already_in_kafka_total") >= 3.0, "{}", second.log());
}

/// A trade the stream missed reaches ingest only after its bars closed and
/// ingest restarted (the restart's replay lists it): it is late, never a
/// second, partial closing bar of a window whose bar Kafka holds as closed.
#[test]
fn a_trade_of_a_bar_closed_before_a_restart_is_late_not_a_second_bar() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-latebar");
    let mut feed = Feed::new(&node, 2);
    let first = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", first.log());
    let ts = now_s();
    feed.publish_trade(&node, 0, ts, false, How::Streamed);
    feed.publish_trade(&node, 0, ts, false, How::Streamed);
    let missed = feed.trades.len();
    feed.publish_trade(&node, 0, ts, false, How::Unnotified);
    feed.trades.remove(missed);
    for _ in 0..3 {
        feed.publish_trade(&node, 1, now_s(), false, How::Streamed);
    }
    feed.wait_closed();
    let closed = feed.trades.len() as f64;
    assert!(
        fake_rpc::wait_until(WAIT, || first.metric("klinecast_ingest_closing_bars_total") >= 4.0
            && first.metric("klinecast_ingest_trades_applied_total") >= closed
            && first.metric("klinecast_ingest_producer_queue") == 0.0),
        "{}",
        first.log()
    );
    first.kill();
    let second = Ingest::start(&node, &topic, &[]);
    assert!(fake_rpc::wait_until(WAIT, || node.subscriptions_made() >= 4), "{}", second.log());
    assert!(
        fake_rpc::wait_until(WAIT, || second.metric("klinecast_ingest_late_trades_total") >= 2.0),
        "the missed trade is late in both windows: {}",
        second.log()
    );
    feed.publish_trade(&node, 1, now_s(), false, How::Streamed);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
}

/// What a restart may replay: nothing from before ingest first started. A
/// coin that traded only before the first start gains no bars when a
/// restart backfills (the first run's resume slot is the first slot its
/// stream delivered, not the newest slot less a margin).
#[test]
fn a_restart_never_backfills_trades_from_before_the_first_start() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-before");
    let mut feed = Feed::new(&node, 2);
    // Coin 1 trades before any ingest runs; those trades are not the
    // service's to count.
    for _ in 0..3 {
        feed.publish_trade(&node, 1, now_s(), false, How::Streamed);
    }
    feed.trades.clear();
    let first = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", first.log());
    for _ in 0..4 {
        feed.publish_trade(&node, 0, now_s(), false, How::Streamed);
    }
    let applied = feed.trades.len() as f64;
    let done = || {
        first.metric("klinecast_ingest_trades_applied_total") >= applied
            && first.metric("klinecast_ingest_producer_queue") == 0.0
    };
    assert!(fake_rpc::wait_until(WAIT, done), "{}", first.log());
    first.kill();
    let second = Ingest::start(&node, &topic, &[]);
    assert!(fake_rpc::wait_until(WAIT, || node.subscriptions_made() >= 4), "{}", second.log());
    feed.publish_trade(&node, 0, now_s(), false, How::Streamed);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    assert!(second.log().contains("resuming"), "{}", second.log());
}

#[test]
fn bad_input_from_the_node_is_counted_and_skipped() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-bad");
    let mut feed = Feed::new(&node, 1);
    let ingest = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 5);
    node.inject_raw("{not json");
    node.inject_raw(r#"{"jsonrpc":"2.0","method":"slotNotification","params":{"result":{},"subscription":1}}"#);
    node.inject_raw(r#"{"jsonrpc":"2.0","method":"logsNotification","params":{"result":{"context":{"slot":1},"value":{"signature":"x","err":null,"logs":[]}},"subscription":987654}}"#);
    // Base64 garbage on a Program data line of pump.fun.
    let garbage = fake_rpc::Tx::from_logs(
        &fake_rpc::signature_from_seed(4242),
        feed.slot + 1,
        vec![
            format!("Program {PUMP_FUN} invoke [1]"),
            "Program data: !!not-base64!!".into(),
            format!("Program {PUMP_FUN} success"),
        ],
        vec![PUMP_FUN.into()],
    );
    feed.slot += 1;
    node.publish(garbage);
    feed.publish(&node, 5);
    // A message over the limit ends the connection; the source reconnects
    // and backfills what it missed.
    node.inject_raw(&format!(r#"{{"jsonrpc":"2.0","method":"logsNotification","pad":"{}"}}"#, "x".repeat(5 << 20)));
    feed.publish(&node, 5);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    assert!(ingest.metric("klinecast_solana_malformed_messages_total") >= 2.0, "{}", ingest.get("/metrics"));
    assert!(ingest.metric("klinecast_solana_unknown_subscription_total") >= 1.0);
    assert!(ingest.metric("klinecast_solana_bad_event_data_total") >= 1.0);
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", ingest.child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .unwrap_or_default();
    assert!(rss_kib < 512 * 1024, "memory stays bounded: {rss_kib} KiB");
}

#[test]
fn wss_and_https_work_and_a_wrong_ca_is_reported() {
    let node = FakeNode::start(NodeOptions { tls: true, ..NodeOptions::default() });
    let topic = support::fresh_topic("it-solana-tls");
    let mut feed = Feed::new(&node, 1);
    let ingest = Ingest::start(&node, &topic, &[]);
    assert!(subscribed(&node, 1), "{}", ingest.log());
    feed.publish(&node, 5);
    node.set_mode(Mode::RefuseWebSocket);
    node.drop_connections();
    feed.publish(&node, 5);
    node.set_mode(Mode::Normal);
    feed.wait_closed();
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    assert!(node.requests_for("getTransaction").len() >= 5, "the backfill went over https");
    drop(ingest);
    // Trusting another CA: no connection, and /healthz says why.
    let other = node.other_ca_pem_path().unwrap();
    let bad = Ingest::start_trusting(&node, &support::fresh_topic("it-solana-badca"), &[], Some(other));
    assert!(fake_rpc::wait_until(WAIT, || bad.get("/healthz").contains("TLS")), "{}", bad.get("/healthz"));
    assert!(bad.get("/healthz").starts_with("HTTP/1.1 503"));
}

#[test]
fn two_ingest_processes_split_the_coins_with_mint_shard() {
    let node = FakeNode::plain();
    let topic = support::fresh_topic("it-solana-shards");
    let mut feed = Feed::new(&node, 4);
    let a = Ingest::start(&node, &topic, &["--mint-shard", "0/2"]);
    let b = Ingest::start(&node, &topic, &["--mint-shard", "1/2"]);
    assert!(subscribed(&node, 2), "{}\n{}", a.log(), b.log());
    feed.publish(&node, 40);
    feed.wait_closed();
    // Each process keeps its share; together they give every bar once.
    let want = reference(&feed.trades);
    check_bars(&closing_bars(&topic, want.len()), &want);
    let other = |i: &Ingest| i.metric("klinecast_ingest_trades_dropped_total");
    assert!(other(&a) > 0.0 && other(&b) > 0.0, "each dropped the other's coins");
}
