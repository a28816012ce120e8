//! The real recorded pump.fun and PumpSwap events of
//! `tests/fixtures/solana/` (sources in its README): every layout version
//! decodes to exactly its recorded fields, with the IDL decoder and with the
//! fast decoders ingest uses; and a replay of every recorded event and RPC
//! message through `klinecast ingest` and the real broker gives bars priced
//! in each coin's own quote, equal to a reference computed from the recorded
//! fields.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use klinecast::codec::bar::Bar;
use klinecast::codec::event::{self, Event, Position, Program};
use klinecast::codec::idl;
use klinecast::codec::quote::{PUMP_MINT, WSOL_MINT};
use klinecast::market::Market;
use serde_json::Value;

const EVENTS: &str = include_str!("fixtures/solana/events.jsonl");
/// More recorded events (sources in `extra/events.txt`).
const MORE_EVENTS: &str = include_str!("fixtures/solana/extra/events.jsonl");
const POOLS: &str = include_str!("fixtures/solana/extra/pumpswap_pools.json");
const RPC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/solana/rpc");

/// One line of `events.jsonl`.
struct Fixture {
    kind: String,
    version: String,
    program: Program,
    bytes: Vec<u8>,
    decoded: serde_json::Map<String, Value>,
    trailing: usize,
}

fn fixtures() -> Vec<Fixture> {
    EVENTS
        .lines()
        .chain(MORE_EVENTS.lines())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let note = v["note"].as_str().unwrap_or_default();
            let trailing = note.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let bytes = STANDARD.decode(v["program_data"].as_str().unwrap()).unwrap();
            assert_eq!(bytes.len() as u64, v["length"].as_u64().unwrap());
            Fixture {
                kind: v["kind"].as_str().unwrap().to_owned(),
                version: v["version"].as_str().unwrap().to_owned(),
                program: Program::from_address(v["program"].as_str().unwrap()).unwrap(),
                bytes,
                decoded: v["decoded"].as_object().unwrap().clone(),
                trailing,
            }
        })
        .collect()
}

/// Every fixture of `kind` and `version` decodes to exactly its recorded
/// fields; returns how many there were.
fn decodes_exactly(kind: &str, version: &str) -> usize {
    let all = fixtures();
    let of_version: Vec<&Fixture> = all.iter().filter(|f| f.kind == kind && f.version == version).collect();
    assert!(!of_version.is_empty(), "no fixture {kind} {version}");
    for f in &of_version {
        let full = idl::decode_full(Some(f.program), &f.bytes).unwrap_or_else(|e| panic!("{kind} {version}: {e}"));
        assert_eq!(full.schema.name, kind);
        assert_eq!(full.fields, f.decoded, "{kind} {version}: every recorded field");
        assert_eq!(full.trailing, f.trailing, "{kind} {version}: bytes after the IDL's fields");
        fast_decoder_agrees(f);
    }
    of_version.len()
}

/// The fast decoder ingest uses reads the recorded values.
fn fast_decoder_agrees(f: &Fixture) {
    let d = &f.decoded;
    let u = |k: &str| d[k].as_u64().unwrap();
    let key = |k: &str| klinecast::codec::json::parse_mint(d[k].as_str().unwrap()).unwrap();
    let decoded = event::decode(Some(f.program), &f.bytes).unwrap();
    if matches!(decoded, Event::Trade(_)) {
        // The ingest loop's path (a fixed-layout one for the 113- and
        // 129-byte layouts) prices the trade as the general one does.
        let position = Position { slot: 9, signature: 3, event: 1 };
        let mut market = Market::new(0);
        let fast = market.trade_of(Some(f.program), &f.bytes, position);
        assert_eq!(fast.ok(), market.price(&decoded, position).ok(), "{} {}", f.kind, f.version);
        assert!(fast.is_ok_and(|t| t.price > 0.0), "{} {}: priced", f.kind, f.version);
    }
    match decoded {
        Event::Trade(t) => {
            assert_eq!((t.mint, t.user), (key("mint"), key("user")));
            assert_eq!(
                (t.sol_amount, t.token_amount, t.is_buy),
                (u("sol_amount"), u("token_amount"), d["is_buy"] == true)
            );
            assert_eq!(t.timestamp, d["timestamp"].as_i64().unwrap());
            assert_eq!(
                (t.virtual_sol_reserves, t.virtual_token_reserves),
                (u("virtual_sol_reserves"), u("virtual_token_reserves"))
            );
            if d.contains_key("real_token_reserves") {
                assert_eq!(
                    (t.real_sol_reserves, t.real_token_reserves),
                    (u("real_sol_reserves"), u("real_token_reserves"))
                );
            }
            if d.contains_key("quote_mint") {
                assert_eq!((t.quote_mint, t.quote_amount), (key("quote_mint"), u("quote_amount")));
                assert_eq!(t.virtual_quote_reserves, u("virtual_quote_reserves"));
            } else {
                assert_eq!(
                    (t.quote_mint, t.quote_amount, t.virtual_quote_reserves),
                    ([0; 32], t.sol_amount, t.virtual_sol_reserves)
                );
            }
        }
        Event::Swap(s) => {
            let buy = f.kind == "BuyEvent";
            assert_eq!(s.is_buy, buy);
            assert_eq!((s.pool, s.user), (key("pool"), key("user")));
            assert_eq!(s.timestamp, d["timestamp"].as_i64().unwrap());
            let (base, quote, delta) = if buy {
                ("base_amount_out", "quote_amount_in", "quote_amount_in_with_lp_fee")
            } else {
                ("base_amount_in", "quote_amount_out", "quote_amount_out_without_lp_fee")
            };
            assert_eq!((s.base_amount, s.quote_amount, s.pool_quote_delta), (u(base), u(quote), u(delta)));
            assert_eq!(
                (s.pool_base_reserves, s.pool_quote_reserves),
                (u("pool_base_token_reserves"), u("pool_quote_token_reserves"))
            );
        }
        Event::Created(c) | Event::Completed(c) => {
            assert_eq!(c.mint, key("mint"));
            let quote = if d.contains_key("quote_mint") { key("quote_mint") } else { [0; 32] };
            assert_eq!(c.quote_mint, quote);
        }
        Event::Migrated(m) => assert_eq!((m.mint, m.pool, m.quote_mint), (key("mint"), key("pool"), key("quote_mint"))),
        Event::PoolCreated(p) => {
            assert_eq!((p.pool, p.base_mint, p.quote_mint), (key("pool"), key("base_mint"), key("quote_mint")));
            assert_eq!(p.decimals, Some((u("base_mint_decimals") as u8, u("quote_mint_decimals") as u8)));
        }
    }
}

macro_rules! version_tests {
    ($($name:ident: $kind:literal $version:literal,)*) => {
        $(
            #[test]
            fn $name() {
                decodes_exactly($kind, $version);
            }
        )*

        #[test]
        fn every_fixture_is_covered_by_a_version_test() {
            let covered = [$(($kind, $version)),*];
            for f in fixtures() {
                assert!(covered.contains(&(f.kind.as_str(), f.version.as_str())), "{} {}", f.kind, f.version);
            }
        }
    };
}

version_tests! {
    trade_event_v1_original_129_bytes: "TradeEvent" "v1-original(10 fields)",
    trade_event_v2_creator_fee_225_bytes: "TradeEvent" "v2-creator_fee(16)",
    trade_event_v3_volume_tracking_258_bytes: "TradeEvent" "v3-volume(21)",
    trade_event_v5_ix_name_and_mayhem_266_267_bytes: "TradeEvent" "v5-mayhem_mode(23)",
    trade_event_v7_quote_mint_358_to_383_bytes: "TradeEvent" "v7-quote_mint/USDC(32)",
    create_event_v1: "CreateEvent" "v1(6 fields)",
    create_event_with_quote_mint: "CreateEvent" "quote_mint(17)",
    complete_event_with_quote_mint: "CompleteEvent" "v2-quote_mint(5)",
    sell_event_v1_312_bytes: "SellEvent" "v1-original(20 fields)",
    sell_event_v2_coin_creator_360_bytes: "SellEvent" "v2-coin_creator(23)",
    sell_event_v3_cashback_376_bytes: "SellEvent" "v3-cashback(25)",
    sell_event_v4_buyback_417_bytes: "SellEvent" "v4-buyback(27)",
    buy_event_v2_coin_creator_360_bytes: "BuyEvent" "v2-coin_creator(23)",
    buy_event_v5_cashback_424_bytes: "BuyEvent" "v5-cashback(32)",
    buy_event_v6_buyback_480_bytes: "BuyEvent" "v6-buyback(34)",
    trade_event_whole_idl_371_bytes_buy_exact_sol_in: "TradeEvent" "IDL(32 fields)",
    create_event_whole_idl_349_bytes: "CreateEvent" "IDL(17 fields)",
    sell_event_whole_idl_441_bytes: "SellEvent" "IDL(27 fields)",
    migration_event_whole_idl: "CompletePumpAmmMigrationEvent" "IDL(9 fields)",
    create_pool_event_whole_idl_344_bytes: "CreatePoolEvent" "IDL(21 fields)",
}

#[test]
fn recorded_pool_accounts_name_their_mints() {
    let pools: Vec<Value> = serde_json::from_str(POOLS).unwrap();
    assert_eq!(pools.len(), 4);
    for pool in pools {
        let data = STANDARD.decode(pool["data"].as_str().unwrap()).unwrap();
        let key = |k: &str| klinecast::codec::json::parse_mint(pool["decoded"][k].as_str().unwrap()).unwrap();
        let mints = klinecast::codec::amm::decode_pool_account([0; 32], &data).unwrap();
        assert_eq!((mints.base_mint, mints.quote_mint), (key("base_mint"), key("quote_mint")));
        // The market orients each pool so the coin is priced, whichever
        // side of the pool it is on.
        let (coin_is_base, quote) = klinecast::market::oriented(&mints);
        assert_eq!(quote, WSOL_MINT, "every recorded pool pairs a coin with SOL");
        assert_eq!(coin_is_base, mints.base_mint != WSOL_MINT);
    }
}

#[test]
fn the_other_programs_lines_are_not_read_as_events() {
    // Each record is refused when said to come from the other program.
    for f in fixtures() {
        let other = if f.program == Program::PumpFun { Program::PumpSwap } else { Program::PumpFun };
        assert!(event::decode(Some(other), &f.bytes).is_err(), "{} read as {other:?}", f.kind);
    }
}

/// What the reference expects of one trade.
#[derive(Debug, Clone, Copy)]
struct Expected {
    mint: [u8; 32],
    quote: [u8; 32],
    decimals: u8,
    price: f64,
    quote_amount: u64,
    tokens: u64,
    ts: i64,
    venue: u8,
}

/// The trades of the fixtures, priced from their recorded fields alone.
/// PumpSwap trades need their pool's mints: `pools` maps the pools whose
/// mints a recorded message shows.
/// Pool → (base mint, quote mint, base decimals, quote decimals).
type Pools = BTreeMap<[u8; 32], ([u8; 32], [u8; 32], u8, u8)>;

/// A reference bar: first and last trade, high, low, quote and token
/// volume, trades.
type RefBar = (Expected, Expected, f64, f64, u64, u64, u32);

fn expected_trades(pools: &Pools) -> (Vec<Expected>, usize) {
    let mut trades = Vec::new();
    let mut unknown_pool = 0;
    for f in fixtures() {
        let d = &f.decoded;
        let u = |k: &str| d[k].as_u64().unwrap() as f64;
        let key = |k: &str| klinecast::codec::json::parse_mint(d[k].as_str().unwrap()).unwrap();
        match f.kind.as_str() {
            "TradeEvent" => {
                let quote = if d.contains_key("quote_mint") && key("quote_mint") != [0; 32] {
                    key("quote_mint")
                } else {
                    WSOL_MINT
                };
                let (decimals, reserves, amount) = if quote == WSOL_MINT {
                    (9, u("virtual_sol_reserves"), d["sol_amount"].as_u64().unwrap())
                } else {
                    assert_eq!(quote, PUMP_MINT, "the fixtures' only non-SOL quote is $PUMP");
                    (6, u("virtual_quote_reserves"), d["quote_amount"].as_u64().unwrap())
                };
                trades.push(Expected {
                    mint: key("mint"),
                    quote,
                    decimals,
                    price: (reserves / 10f64.powi(decimals.into())) / (u("virtual_token_reserves") / 1e6),
                    quote_amount: amount,
                    tokens: d["token_amount"].as_u64().unwrap(),
                    ts: d["timestamp"].as_i64().unwrap(),
                    venue: 1,
                });
            }
            "BuyEvent" | "SellEvent" => {
                let Some(&(base_mint, quote_mint, base_dec, quote_dec)) = pools.get(&key("pool")) else {
                    unknown_pool += 1;
                    continue;
                };
                let buy = f.kind == "BuyEvent";
                let (base, quote) = (u("pool_base_token_reserves"), u("pool_quote_token_reserves"));
                let (base_after, quote_after) = if buy {
                    (base - u("base_amount_out"), quote + u("quote_amount_in_with_lp_fee"))
                } else {
                    (base + u("base_amount_in"), quote - u("quote_amount_out_without_lp_fee"))
                };
                let amount = d[if buy { "quote_amount_in" } else { "quote_amount_out" }].as_u64().unwrap();
                trades.push(Expected {
                    mint: base_mint,
                    quote: quote_mint,
                    decimals: quote_dec,
                    price: (quote_after / 10f64.powi(quote_dec.into())) / (base_after / 10f64.powi(base_dec.into())),
                    quote_amount: amount,
                    tokens: d[if buy { "base_amount_out" } else { "base_amount_in" }].as_u64().unwrap(),
                    ts: d["timestamp"].as_i64().unwrap(),
                    venue: 2,
                });
            }
            _ => {}
        }
    }
    (trades, unknown_pool)
}

fn run_ingest(file: &std::path::Path, topic: &str, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_klinecast"))
        .args(["ingest", "--source", "replay", "--replay-file", file.to_str().unwrap()])
        .args(["--brokers", &support::brokers(), "--topic", topic, "--windows", "1h"])
        .args(extra)
        .env("KLINECAST_LOG", "info")
        .output()
        .expect("run klinecast");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "ingest failed: {stderr}");
    stderr
}

/// Closing bars in the topic, by mint.
fn closing_bars(topic: &str, min: usize) -> BTreeMap<[u8; 32], Vec<Bar>> {
    let mut by_mint: BTreeMap<[u8; 32], Vec<Bar>> = BTreeMap::new();
    for record in support::read_topic(topic, min, Duration::from_secs(60)) {
        let bar = record.bar.unwrap();
        if bar.closed {
            by_mint.entry(bar.mint).or_default().push(bar);
        }
    }
    by_mint
}

#[test]
fn a_replay_of_every_recorded_event_gives_bars_in_each_coins_quote() {
    // The replay file as a capture would be: the events in time order, as
    // Program data lines (origin unknown), plus the recorded RPC messages
    // as JSON lines. The recorded PumpSwap getTransaction shows its pool's
    // token accounts, so that pool's mints are learned from it.
    let mut lines: Vec<(i64, String)> = fixtures()
        .iter()
        .map(|f| {
            let ts = f.decoded.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
            (ts, format!("Program data: {}", STANDARD.encode(&f.bytes)))
        })
        .collect();
    let pumpswap_tx = std::fs::read_to_string(format!("{RPC}/solana-streamer_pumpswap_cpi_tx.json")).unwrap();
    let pumpswap_tx: Value = serde_json::from_str(&pumpswap_tx).unwrap();
    // Its block time: before the Program data line of the same BuyEvent.
    lines.push((pumpswap_tx["blockTime"].as_i64().unwrap() - 1, pumpswap_tx.to_string()));
    lines.sort_by_key(|(ts, _)| *ts);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for (_, line) in &lines {
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();

    let pool = klinecast::codec::json::parse_mint("4w2cysotX6czaUGmmWg13hDpY4QEMG2CzeKYEQyK9Ama").unwrap();
    let coin = klinecast::codec::json::parse_mint("5UUH9RTDiSpq6HKS6bp4NdU9PNJpXRXuiw6ShBTBhgH2").unwrap();
    let pools = BTreeMap::from([(pool, (coin, WSOL_MINT, 6u8, 9u8))]);
    let (mut expected, unknown_pool) = expected_trades(&pools);
    // The getTransaction line's own trade (the same BuyEvent as one of the
    // Program data lines, at the same time) comes first.
    let tx_trade = *expected.iter().find(|t| t.mint == coin).unwrap();
    expected.insert(0, tx_trade);
    expected.sort_by_key(|t| t.ts);
    assert!(unknown_pool > 0, "some PumpSwap events' pools no recorded message shows");

    let topic = support::fresh_topic("it-fixtures");
    let stderr = run_ingest(file.path(), &topic, &[]);
    assert!(stderr.contains(&format!("unknown pool {unknown_pool}")), "{stderr}");
    assert!(stderr.contains("rejected 0 "), "every recorded event decodes: {stderr}");

    // Reference bars of the 1 h window: trades grouped by (mint, hour) in
    // file order (nothing is late: the file is in time order).
    let mut want: BTreeMap<([u8; 32], i64), RefBar> = BTreeMap::new();
    for t in &expected {
        let hour = t.ts.div_euclid(3600) * 3600;
        let e = want.entry((t.mint, hour)).or_insert((*t, *t, t.price, t.price, 0, 0, 0));
        e.1 = *t;
        e.2 = e.2.max(t.price);
        e.3 = e.3.min(t.price);
        e.4 += t.quote_amount;
        e.5 += t.tokens;
        e.6 += 1;
    }
    let bars = closing_bars(&topic, want.len());
    let got: usize = bars.values().map(Vec::len).sum();
    assert_eq!(got, want.len(), "one closing bar per (coin, hour)");
    for ((mint, hour), (first, last, high, low, volume, tokens, trades)) in &want {
        let bar = bars[mint].iter().find(|b| b.open_time_s == *hour).unwrap();
        assert_eq!((bar.quote_mint, bar.quote_decimals, bar.venues), (first.quote, first.decimals, first.venue));
        let close = |a: f64, b: f64| (a - b).abs() <= b.abs() * 1e-12;
        assert!(close(bar.open, first.price) && close(bar.close, last.price), "{bar:?} vs {first:?}");
        assert!(close(bar.high, *high) && close(bar.low, *low));
        assert_eq!((bar.volume_quote, bar.volume_tokens, bar.trades), (*volume, *tokens, *trades));
    }
    // The $PUMP-quoted coin's bar is in PUMP, at its recorded price.
    let pump_coin = klinecast::codec::json::parse_mint("BzhEC3LdcMPbzkWfJs4YJ1TTjM2MZKR7DMJfR3Hbpump").unwrap();
    let pump_bar = bars[&pump_coin][0];
    assert_eq!((pump_bar.quote_mint, pump_bar.quote_decimals), (PUMP_MINT, 6));
    assert!((pump_bar.close - 1_611_090.002712 / 493_941_897.033852).abs() < 1e-12);
    assert!(pump_bar.open > 0.0, "never charted at price 0");
}

#[test]
fn the_recorded_rpc_messages_replay_with_program_attribution() {
    // The two recorded logsNotifications and the getTransaction results, as
    // JSON lines: each pump.fun TradeEvent is read once; the second
    // notification's lines of another program are counted, not read.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    // In time order, as a capture would be (a replay closes bars by event
    // time).
    let names = [
        "chainstack_raw_create_tx_from_getTransaction.json",
        "solana-streamer_pumpfun_cpi_tx.json",
        "solana-streamer_pumpfun_direct_tx.json",
        "solana-streamer_pumpswap_cpi_tx.json",
        "logsNotification_pump_buy_1.json",
        "logsNotification_pump_buy_2.json",
    ];
    let mut want_trades = 0;
    let mut last_ts = 0;
    for name in names {
        let text = std::fs::read_to_string(format!("{RPC}/{name}")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let tx = klinecast::source::tx::parse_value(&value).unwrap().tx;
        assert!(!tx.failed && !tx.truncated, "{name}");
        for (program, bytes) in &tx.events {
            let decoded = event::decode(Some(*program), bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let ts = match decoded {
                Event::Trade(t) => t.timestamp,
                Event::Swap(s) => s.timestamp,
                _ => continue,
            };
            assert!(ts >= last_ts, "{name} is in time order");
            last_ts = ts;
            want_trades += 1;
        }
        writeln!(file, "{value}").unwrap();
    }
    file.flush().unwrap();
    assert_eq!(want_trades, 6, "one trade in each recorded transaction");
    let topic = support::fresh_topic("it-rpc-replay");
    let stderr = run_ingest(file.path(), &topic, &[]);
    assert!(stderr.contains("6 transactions (0 failed, skipped; 0 truncated logs; "), "{stderr}");
    assert!(stderr.contains("rejected 0 "), "{stderr}");
    assert!(stderr.contains("unknown pool 0"), "the PumpSwap pool is learned from its own transaction: {stderr}");
    let bars = closing_bars(&topic, 6);
    let trades: u32 = bars.values().flatten().map(|b| b.trades).sum();
    assert_eq!(trades, 6);
    let pumpswap: Vec<&Bar> = bars.values().flatten().filter(|b| b.venues == 2).collect();
    assert_eq!(pumpswap.len(), 1);
    // The pool's reserves after the buy, as its token balances show them.
    let want = (5_339_266_866_496.0 / 1e9) / (30_813_766_071_198.0 / 1e6);
    assert!((pumpswap[0].close - want).abs() < want * 1e-12, "{} vs {want}", pumpswap[0].close);
    // Foreign lines of the second notification are counted.
    let foreign: u64 = stderr
        .split("foreign-program lines")
        .next()
        .and_then(|s| s.rsplit("; ").next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_default();
    assert!(foreign >= 2, "{stderr}");
}

/// The fixture of `kind` whose field `field` is `value` (base58 or number).
fn fixture_where(kind: &str, field: &str, value: &str) -> Fixture {
    let want = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()) == value;
    fixtures().into_iter().find(|f| f.kind == kind && f.decoded.get(field).is_some_and(want)).unwrap()
}

/// `bytes` with `len` bytes at `at` replaced by `with`.
fn rewrite(bytes: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + with.len()].copy_from_slice(with);
    out
}

#[test]
fn a_coin_that_graduates_goes_on_in_one_series_on_pumpswap() {
    // The recorded migration of ELJFma9J...pump to pool GnpU6c7H..., with
    // trades around it made from recorded events: curve trades are a real
    // TradeEvent with the coin's mint and new times written at their
    // offsets, pool trades real Sell/BuyEvents with the pool and times
    // rewritten; every other byte is as recorded.
    let migration =
        fixture_where("CompletePumpAmmMigrationEvent", "pool", "GnpU6c7H9CbPrbb9cUkQMxgz6DZV41h8XbU4pLh4C27e");
    let coin = klinecast::codec::json::parse_mint(migration.decoded["mint"].as_str().unwrap()).unwrap();
    let pool = klinecast::codec::json::parse_mint("GnpU6c7H9CbPrbb9cUkQMxgz6DZV41h8XbU4pLh4C27e").unwrap();
    let curve = fixture_where("TradeEvent", "mint", "C2CbmGjbHfjqrcBskTVBajmnp6Rdq2vrL9Mm5sgSpump");
    let complete = fixture_where("CompleteEvent", "mint", "4yGJ5ynrB4QX7AiRps1DTAzdXwEf15NvrRF5gouEpump");
    let sell = fixture_where("SellEvent", "pool", "B9WYSKaLDWnegupPNG1h99XiiokMUYj6k64Dbqv18qr8");
    let buy = fixture_where("BuyEvent", "pool", "4w2cysotX6czaUGmmWg13hDpY4QEMG2CzeKYEQyK9Ama");
    let start = 1_784_955_600i64; // a whole minute
    const TRADE_TS: usize = 8 + 32 + 8 + 8 + 1 + 32;
    const SWAP_POOL: usize = 8 + 14 * 8;
    let mut records = Vec::new();
    for i in 0..4 {
        let bytes = rewrite(&rewrite(&curve.bytes, 8, &coin), TRADE_TS, &(start + i).to_le_bytes());
        records.push(bytes);
    }
    records.push(rewrite(&complete.bytes, 8 + 32, &coin));
    records.push(migration.bytes.clone());
    for (i, swap) in [&sell, &buy, &sell, &buy].into_iter().enumerate() {
        let bytes = rewrite(&rewrite(&swap.bytes, SWAP_POOL, &pool), 8, &(start + 5 + i as i64).to_le_bytes());
        records.push(bytes);
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for r in &records {
        writeln!(file, "Program data: {}", STANDARD.encode(r)).unwrap();
    }
    file.flush().unwrap();
    let topic = support::fresh_topic("it-graduation");
    let output = Command::new(env!("CARGO_BIN_EXE_klinecast"))
        .args(["ingest", "--source", "replay", "--replay-file", file.path().to_str().unwrap()])
        .args(["--brokers", &support::brokers(), "--topic", &topic, "--windows", "1s,1m"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("not trades 2"), "the completion and the migration teach, not trade: {stderr}");
    assert!(stderr.contains("unknown pool 0"), "{stderr}");

    let records = support::read_topic(&topic, 8 * 2, Duration::from_secs(60));
    let bars: Vec<Bar> = records.into_iter().map(|r| r.bar.unwrap()).filter(|b| b.mint == coin).collect();
    for window in [1, 60] {
        let series: Vec<&Bar> = bars.iter().filter(|b| b.window_s == window).collect();
        let seqs: Vec<u64> = series.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "window {window}: one series, seq +1");
        assert!(series.iter().all(|b| b.quote_mint == WSOL_MINT && b.quote_decimals == 9));
    }
    let seconds: Vec<(i64, u8)> =
        bars.iter().filter(|b| b.window_s == 1 && b.closed).map(|b| (b.open_time_s - start, b.venues)).collect();
    assert_eq!(
        seconds,
        [(0, 1), (1, 1), (2, 1), (3, 1), (5, 2), (6, 2), (7, 2), (8, 2)],
        "venue switches at graduation"
    );
    let minute = bars.iter().rfind(|b| b.window_s == 60).unwrap();
    assert_eq!((minute.closed, minute.trades, minute.venues), (true, 8, 3), "the minute holds both venues");
}
