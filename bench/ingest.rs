//! SPEC §7 row 1: decode + aggregate throughput on one core, next to a
//! JSON + `HashMap` baseline measured in the same run.
//!
//! Inputs are made before any clock starts, from the real event records in
//! `tests/fixtures/solana/` (`events.jsonl` and `extra/events.jsonl`: every
//! pump.fun `TradeEvent` layout from the 129-byte 2024 one to the 383-byte
//! 2026 one, a $PUMP-quoted coin's trade, PumpSwap `BuyEvent`s and
//! `SellEvent`s of every layout recorded). Each trade record there is one
//! [`Layout`], and every event of a pass is a copy of a layout drawn with
//! equal weight, so the mix has the recordings' own proportions. A copy is
//! re-stamped: its coin (the mint of a `TradeEvent`, the pool of a swap,
//! whose coin the market learns as the live source does) is one of the
//! pass's mints, and its timestamp advances [`EVENTS_PER_EVENT_S`] trades
//! per second of event time so bars of every window open and close. A coin
//! trades in one quote, so non-SOL layouts go to coins of that quote and the
//! others to SOL coins (with one mint, the one coin is SOL-quoted and the
//! non-SOL layout is left out). The baseline gets the same records as JSON,
//! every field the IDL names, as a JSON-based service receives them.
//!
//! - klinecast: the ingest path: `Market::with_trade` (the event decoders,
//!   the pool and quote of the coin, the price in that quote) handing each
//!   trade to `Aggregator::apply` with `EmitPolicy::EveryChange`, the output
//!   buffer cleared every batch of [`BATCH`] events, as the ingest loop does.
//! - baseline: what the original service did: `serde_json` parses each
//!   event into a struct with base58 `String` keys, `HashMap<String, _>`s
//!   give a pool's coin and a quote's decimals, and a `HashMap<String, _>`
//!   of per-window candles, updated with `>`/`<`, emits a cloned candle (and
//!   its `String`) per window per trade.
//!
//! Both paths emit the same open-bar updates (checked before timing). Each
//! pass starts from an empty aggregator; a run repeats passes for at least
//! [`MIN_RUN`]; runs of the two paths alternate. Rates are per second of
//! the measuring thread's time on its CPU, so other work sharing the core
//! does not count against either path; wall-clock rates are reported next
//! to them. A breakdown then measures parts of the klinecast path alone
//! (decode only, decode and price, no updates emitted, one window, a smaller
//! batch), and floors: the path's memory traffic without its work, to show
//! where time goes and what no amount of computing less can remove.
//!
//! `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) a
//! smoke run of a few thousand events checks the paths agree and exits.

mod common;

use std::collections::HashMap;
use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use klinecast::aggregate::{Aggregator, EmitPolicy, Update, Windows};
use klinecast::codec::amm::{PoolMints, SwapEvent};
use klinecast::codec::borsh::Pubkey;
use klinecast::codec::event::{self, Event, Position, Program};
use klinecast::codec::trade::{COIN_DECIMALS, TOKEN_UNITS_PER_TOKEN, TradeFields};
use klinecast::codec::{idl, quote};
use klinecast::market::Market;
use klinecast::source::MAX_BATCH;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use common::{Summary, human_rate, verdict};

/// The service's default windows.
const WINDOWS: &str = "1s,1m,5m,1h";
/// Trades per second of event time, so 1 s bars close every thousand events.
const EVENTS_PER_EVENT_S: usize = 1000;
/// Event time of the first trade: a whole hour, so every window starts
/// aligned.
const FIRST_TS_S: i64 = 1_770_645_600;
/// Events per batch between clearings of the output buffer: the ingest
/// loop's batch.
const BATCH: usize = MAX_BATCH;
/// The smaller batch the breakdown tries, to show what the batch's size
/// does (its output then stays in the core's own cache).
const SMALL_BATCH: usize = MAX_BATCH / 8;
/// Events per pass in a measurement: 2^20 (about 340 MB of binary records,
/// over a GB of JSON), 17 minutes of event time.
const BENCH_EVENTS: usize = 1 << 20;
/// Events of the smoke run (`cargo test`).
const SMOKE_EVENTS: usize = 5_000;
/// Runs per path and mint count.
const RUNS: usize = 5;
/// Shortest on-CPU time trusted as a rate's denominator.
const CPU_TIME_MIN_S: f64 = 0.05;
/// Runs of each part of the breakdown.
const PART_RUNS: usize = 3;
/// Shortest run; a run repeats whole passes until it is this long.
const MIN_RUN: Duration = Duration::from_secs(1);
/// Mint counts measured: one hot mint, and many mints (hash lookups miss
/// the cache more, every trade opens and closes a 1 s bar).
const MINT_COUNTS: [u32; 2] = [1, 1000];
/// Seed of the draws of mints, pools and layouts.
const SEED: u64 = 42;
/// Events compared between the two paths before timing.
const CHECK_EVENTS: usize = 20_000;
/// The core the measuring thread is pinned to (the ingest core of a 2-core
/// machine), if the machine has it.
const PIN_CORE: usize = 1;
/// SPEC §7: at least this many events per second on one core ...
const BAR_EVENTS_PER_S: f64 = 20e6;
/// ... and at least this many times the baseline.
const BAR_RATIO: f64 = 10.0;

/// Name of this row in SPEC §7 (and in the summary of `REPORT.md`).
const SPEC_ROW: &str = "decode + aggregate, one core";

/// The recorded events (one JSON object a line, `program_data` in base64).
const RECORDED: [&str; 2] = [
    include_str!("../tests/fixtures/solana/events.jsonl"),
    include_str!("../tests/fixtures/solana/extra/events.jsonl"),
];

/// Where a PumpSwap swap names its pool: after the discriminator and the
/// 14 integers that lead every layout.
const SWAP_POOL_AT: usize = 8 + 14 * 8;
/// Where a swap holds its timestamp: its first field.
const SWAP_TIMESTAMP_AT: usize = 8;
/// Where a `TradeEvent` names its mint: its first field.
const TRADE_MINT_AT: usize = 8;
/// Where a `TradeEvent` holds its timestamp: after mint, two amounts,
/// `is_buy` and the user.
const TRADE_TIMESTAMP_AT: usize = 8 + 32 + 8 + 8 + 1 + 32;

/// How much to measure.
#[derive(Debug, Clone, Copy)]
struct Plan {
    events: usize,
    runs: usize,
    /// Runs of each part in the breakdown.
    part_runs: usize,
    min_run: Duration,
}

/// One recorded trade record: what every copy of it starts from.
#[derive(Debug, Clone)]
struct Layout {
    /// The record as recorded.
    bytes: Vec<u8>,
    program: Program,
    /// The event's name in the IDL.
    event: &'static str,
    /// Where the key naming the coin sits (a mint, or a pool).
    key_at: usize,
    /// Where the timestamp sits.
    timestamp_at: usize,
    /// The coin's quote mint (normalized), `None` for SOL.
    other_quote: Option<Pubkey>,
    /// Every field, as JSON (the baseline's input, before re-stamping).
    json: serde_json::Map<String, Value>,
    /// Where it was recorded.
    source: String,
}

impl Layout {
    /// Every trade record of the recordings, in file order.
    fn recorded() -> Result<Vec<Self>, Box<dyn Error>> {
        let mut layouts = Vec::new();
        for line in RECORDED.iter().flat_map(|file| file.lines()).filter(|l| !l.trim().is_empty()) {
            let recorded: Value = serde_json::from_str(line)?;
            let field = |name: &str| recorded.get(name).and_then(Value::as_str).ok_or(format!("no {name}: {line}"));
            let program = Program::from_address(field("program")?).ok_or("unknown program")?;
            let bytes = BASE64.decode(field("program_data")?)?;
            let (key_at, timestamp_at, other_quote) = match event::decode(Some(program), &bytes)? {
                Event::Trade(trade) => {
                    let quote = quote::normalize(&trade.quote_mint);
                    (TRADE_MINT_AT, TRADE_TIMESTAMP_AT, (quote != quote::WSOL_MINT).then_some(quote))
                }
                Event::Swap(_) => (SWAP_POOL_AT, SWAP_TIMESTAMP_AT, None),
                _ => continue,
            };
            let decoded = idl::decode_full(Some(program), &bytes)?;
            let source = recorded.get("source").and_then(|s| s.get("repo")).and_then(Value::as_str).unwrap_or("");
            layouts.push(Self {
                program,
                event: decoded.schema.name,
                key_at,
                timestamp_at,
                other_quote,
                json: decoded.fields,
                source: source.to_owned(),
                bytes,
            });
        }
        Ok(layouts)
    }

    /// What the report calls it.
    fn label(&self) -> String {
        let quote = self.other_quote.map_or(String::new(), |q| format!(", quoted in {}", quote::label(&q)));
        format!("{} {} B{quote}", self.event, self.bytes.len())
    }

    /// A copy naming `key` (a mint, or a pool), stamped `timestamp`.
    fn stamped(&self, key: &Pubkey, timestamp: i64, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let record = &mut out[start..];
        record[self.key_at..self.key_at + 32].copy_from_slice(key);
        record[self.timestamp_at..self.timestamp_at + 8].copy_from_slice(&timestamp.to_le_bytes());
    }

    /// The same copy as the baseline gets it: every field as JSON, and the
    /// event's name.
    fn stamped_json(&self, key: &str, timestamp: i64, out: &mut Vec<u8>) -> Result<(), Box<dyn Error>> {
        let mut fields = self.json.clone();
        let key_field = if self.program == Program::PumpSwap { "pool" } else { "mint" };
        fields.insert(key_field.into(), json!(key));
        fields.insert("timestamp".into(), json!(timestamp));
        fields.insert("event".into(), json!(self.event));
        serde_json::to_writer(out, &fields)?;
        Ok(())
    }
}

/// The events of one mint count, in both encodings.
struct Inputs {
    mints: u32,
    /// Binary event records back to back.
    binary: Vec<u8>,
    /// End offset in `binary` of each record, and the program that emitted
    /// it (a live source knows it from the log's invoke stack).
    records: Vec<(u32, Program)>,
    /// The same events as JSON objects, back to back.
    json: Vec<u8>,
    /// End offset in `json` of each object.
    json_ends: Vec<usize>,
    /// Every coin's PumpSwap pool, as the market learns them.
    pools: Vec<PoolMints>,
    /// Events drawn of each layout, in the order of `Layout::recorded`.
    drawn: Vec<usize>,
    /// The coin of each event, as an index into the pass's coins.
    coins: Vec<u32>,
}

impl Inputs {
    /// The market of a pass: it knows every coin's pool, as the ingest
    /// loop's does once pools are learned.
    fn market(&self) -> Market {
        let mut market = Market::new(self.pools.len());
        for pool in &self.pools {
            market.learn_pool(pool);
        }
        market
    }

    /// The binary records, each with its program.
    fn records(&self) -> impl Iterator<Item = (Program, &[u8])> {
        let starts = std::iter::once(0).chain(self.records.iter().map(|&(end, _)| end as usize));
        starts.zip(&self.records).map(|(start, &(end, program))| (program, &self.binary[start..end as usize]))
    }
}

/// An event as a JSON-based service receives it: every field of a
/// `TradeEvent` or a swap, keys in base58. Only what pricing and
/// aggregation read is kept; the rest is parsed over.
#[derive(Debug, Deserialize)]
struct JsonEvent {
    event: String,
    timestamp: i64,
    // `TradeEvent`
    mint: Option<String>,
    sol_amount: Option<u64>,
    token_amount: Option<u64>,
    is_buy: Option<bool>,
    virtual_sol_reserves: Option<u64>,
    virtual_token_reserves: Option<u64>,
    quote_mint: Option<String>,
    quote_amount: Option<u64>,
    virtual_quote_reserves: Option<u64>,
    // `BuyEvent` / `SellEvent`
    pool: Option<String>,
    base_amount_out: Option<u64>,
    base_amount_in: Option<u64>,
    quote_amount_in: Option<u64>,
    quote_amount_out: Option<u64>,
    pool_base_token_reserves: Option<u64>,
    pool_quote_token_reserves: Option<u64>,
    quote_amount_in_with_lp_fee: Option<u64>,
    quote_amount_out_without_lp_fee: Option<u64>,
}

/// One candle of the baseline, kept and emitted the way a straightforward
/// service does: with its mint as a `String`, volumes as floats.
#[derive(Debug, Clone)]
struct Candle {
    mint: String,
    window_s: i64,
    open_time: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume_quote: f64,
    volume_tokens: f64,
    buy_volume_quote: f64,
    trades: u32,
    closed: bool,
}

/// A priced trade of the baseline.
struct NaiveTrade {
    mint: String,
    timestamp: i64,
    price: f64,
    quote: f64,
    tokens: f64,
    is_buy: bool,
}

/// The baseline aggregator: mint string → one candle slot per window, and
/// the pools and quote decimals it prices with.
struct NaiveAggregator {
    windows: Vec<i64>,
    candles: HashMap<String, Vec<Option<Candle>>>,
    /// Pool (base58) → its coin (base58); every pool here is SOL-quoted.
    pools: HashMap<String, String>,
    /// Quote mint (base58) → decimals; the all-zero key is SOL.
    quote_decimals: HashMap<String, u8>,
}

impl NaiveAggregator {
    fn new(windows: &Windows, pools: &[PoolMints]) -> Self {
        let b58 = |key: &Pubkey| bs58::encode(key).into_string();
        let mut quote_decimals: HashMap<String, u8> =
            quote::KNOWN_QUOTES.iter().map(|q| (b58(&q.mint), q.decimals)).collect();
        quote_decimals.insert(b58(&[0; 32]), quote::SOL_DECIMALS);
        Self {
            windows: windows.seconds().iter().map(|&w| i64::from(w)).collect(),
            candles: HashMap::new(),
            pools: pools.iter().map(|p| (b58(&p.pool), b58(&p.base_mint))).collect(),
            quote_decimals,
        }
    }

    /// The trade an event is, priced as klinecast prices it (reserves after
    /// the trade), or `None`.
    fn price(&self, e: &JsonEvent) -> Option<NaiveTrade> {
        let pow10 = |d: u8| 10f64.powi(i32::from(d));
        if let Some(pool) = &e.pool {
            // SOL-quoted pools whose base is the coin.
            let mint = self.pools.get(pool)?.clone();
            let is_buy = e.event == "BuyEvent";
            let (base, quote) = (e.pool_base_token_reserves?, e.pool_quote_token_reserves?);
            let (tokens, quote_amount, base_after, quote_after) = if is_buy {
                let tokens = e.base_amount_out?;
                (
                    tokens,
                    e.quote_amount_in?,
                    base.saturating_sub(tokens),
                    quote.saturating_add(e.quote_amount_in_with_lp_fee?),
                )
            } else {
                let tokens = e.base_amount_in?;
                let delta = e.quote_amount_out_without_lp_fee?;
                (tokens, e.quote_amount_out?, base.saturating_add(tokens), quote.saturating_sub(delta))
            };
            if base_after == 0 || quote_after == 0 {
                return None;
            }
            let (q, c) = (pow10(quote::SOL_DECIMALS), pow10(COIN_DECIMALS));
            return Some(NaiveTrade {
                mint,
                timestamp: e.timestamp,
                price: (quote_after as f64 / q) / (base_after as f64 / c),
                quote: quote_amount as f64 / q,
                tokens: tokens as f64 / c,
                is_buy,
            });
        }
        let reserves = e.virtual_token_reserves?;
        if reserves == 0 {
            return None;
        }
        let quote_mint = e.quote_mint.as_deref().unwrap_or("11111111111111111111111111111111");
        let q = pow10(*self.quote_decimals.get(quote_mint)?);
        let virtual_quote = e.virtual_quote_reserves.or(e.virtual_sol_reserves)?;
        let tokens = e.token_amount?;
        Some(NaiveTrade {
            mint: e.mint.clone()?,
            timestamp: e.timestamp,
            price: (virtual_quote as f64 / q) / (reserves as f64 / TOKEN_UNITS_PER_TOKEN),
            quote: e.quote_amount.or(e.sol_amount)? as f64 / q,
            tokens: tokens as f64 / TOKEN_UNITS_PER_TOKEN,
            is_buy: e.is_buy?,
        })
    }

    /// Applies an event's trade to every window; a trade of a later bucket
    /// closes the candle of that window (emitted) and opens a new one. Every
    /// change is emitted as a clone, as `EmitPolicy::EveryChange` does.
    fn apply(&mut self, event: &JsonEvent, out: &mut Vec<Candle>) {
        let Some(trade) = self.price(event) else { return };
        let buy_quote = if trade.is_buy { trade.quote } else { 0.0 };
        let price = trade.price;
        let slots = self.candles.entry(trade.mint.clone()).or_insert_with(|| vec![None; self.windows.len()]);
        for (slot, &window_s) in slots.iter_mut().zip(&self.windows) {
            let open_time = trade.timestamp - trade.timestamp.rem_euclid(window_s);
            match slot {
                Some(c) if c.open_time == open_time => {
                    if price > c.high {
                        c.high = price;
                    }
                    if price < c.low {
                        c.low = price;
                    }
                    c.close = price;
                    c.volume_quote += trade.quote;
                    c.volume_tokens += trade.tokens;
                    c.buy_volume_quote += buy_quote;
                    c.trades += 1;
                }
                _ => {
                    if let Some(mut done) = slot.take() {
                        done.closed = true;
                        out.push(done);
                    }
                    *slot = Some(Candle {
                        mint: trade.mint.clone(),
                        window_s,
                        open_time,
                        open: price,
                        high: price,
                        low: price,
                        close: price,
                        volume_quote: trade.quote,
                        volume_tokens: trade.tokens,
                        buy_volume_quote: buy_quote,
                        trades: 1,
                        closed: false,
                    });
                }
            }
            if let Some(c) = slot {
                out.push(c.clone());
            }
        }
    }
}

fn random_key(rng: &mut StdRng) -> Pubkey {
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    key
}

/// Events of `mints` coins drawn from the recorded layouts (see the module
/// docs), stamped `EVENTS_PER_EVENT_S` per second from `FIRST_TS_S`, in both
/// encodings.
fn generate(layouts: &[Layout], mints: u32, events: usize) -> Result<Inputs, Box<dyn Error>> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let coins: Vec<Pubkey> = (0..mints).map(|_| random_key(&mut rng)).collect();
    let pool_keys: Vec<Pubkey> = (0..mints).map(|_| random_key(&mut rng)).collect();
    // Coins quoted in another quote than SOL, in the layouts' proportion;
    // none with one mint (one coin trades in one quote).
    let others: Vec<usize> = (0..layouts.len()).filter(|&i| layouts[i].other_quote.is_some()).collect();
    let other_coins = if mints <= 1 || others.is_empty() {
        0
    } else {
        ((mints as usize * others.len()) as f64 / layouts.len() as f64).round().max(1.0) as usize
    };
    let drawable: Vec<usize> =
        (0..layouts.len()).filter(|&i| other_coins > 0 || layouts[i].other_quote.is_none()).collect();
    if others.iter().filter_map(|&i| layouts[i].other_quote).any(|q| Some(q) != layouts[others[0]].other_quote) {
        return Err("the recorded non-SOL layouts name more than one quote".into());
    }
    let b58 = |k: &Pubkey| bs58::encode(k).into_string();
    let (coin_names, pool_names): (Vec<String>, Vec<String>) =
        (coins.iter().map(b58).collect(), pool_keys.iter().map(b58).collect());
    let mut inputs = Inputs {
        mints,
        binary: Vec::with_capacity(events * 400),
        records: Vec::with_capacity(events),
        json: Vec::with_capacity(events * 1400),
        json_ends: Vec::with_capacity(events),
        // SOL coins' pools, each the coin against wrapped SOL, as pump.fun's
        // migration makes them.
        pools: (other_coins..mints as usize)
            .map(|i| PoolMints {
                pool: pool_keys[i],
                base_mint: coins[i],
                quote_mint: quote::WSOL_MINT,
                decimals: Some((COIN_DECIMALS, quote::SOL_DECIMALS)),
            })
            .collect(),
        drawn: vec![0; layouts.len()],
        coins: Vec::with_capacity(events),
    };
    for i in 0..events {
        let at = drawable[rng.random_range(0..drawable.len())];
        let layout = &layouts[at];
        inputs.drawn[at] += 1;
        let coin = if layout.other_quote.is_some() {
            rng.random_range(0..other_coins)
        } else {
            rng.random_range(other_coins..mints as usize)
        };
        inputs.coins.push(u32::try_from(coin)?);
        let (key, name) = match layout.program {
            Program::PumpSwap => (&pool_keys[coin], &pool_names[coin]),
            Program::PumpFun => (&coins[coin], &coin_names[coin]),
        };
        let timestamp = FIRST_TS_S + (i / EVENTS_PER_EVENT_S) as i64;
        layout.stamped(key, timestamp, &mut inputs.binary);
        inputs.records.push((u32::try_from(inputs.binary.len())?, layout.program));
        layout.stamped_json(name, timestamp, &mut inputs.json)?;
        inputs.json_ends.push(inputs.json.len());
    }
    Ok(inputs)
}

/// One klinecast pass over all events; returns the bars emitted.
fn klinecast_pass(inputs: &Inputs, windows: &Windows, policy: EmitPolicy, out: &mut Vec<Update>) -> u64 {
    klinecast_pass_in(inputs, windows, policy, BATCH, out)
}

/// [`klinecast_pass`] with the output cleared every `batch` events.
fn klinecast_pass_in(
    inputs: &Inputs,
    windows: &Windows,
    policy: EmitPolicy,
    batch_len: usize,
    out: &mut Vec<Update>,
) -> u64 {
    let mut agg = Aggregator::new(windows, policy);
    let mut market = inputs.market();
    let mut bars = 0;
    let mut records = inputs.records();
    loop {
        out.clear();
        let mut batch = 0;
        for (program, record) in records.by_ref().take(batch_len) {
            // Inputs are checked before timing: nothing is rejected.
            let applied = market.with_trade(Some(program), black_box(record), Position::default(), |trade| {
                agg.apply(trade, out).is_ok()
            });
            black_box(applied.is_ok_and(|applied| applied));
            batch += 1;
        }
        bars += out.len() as u64;
        black_box(&*out);
        if batch < batch_len {
            return bars;
        }
    }
}

/// Decoding alone: every field pricing reads, of every record, nothing
/// priced or aggregated.
fn decode_pass(inputs: &Inputs) -> u64 {
    for (program, record) in inputs.records() {
        match program {
            Program::PumpFun => {
                black_box(TradeFields::decode(black_box(record)).ok());
            }
            Program::PumpSwap => {
                black_box(SwapEvent::decode(black_box(record)).ok());
            }
        }
    }
    0
}

/// Decoding and pricing: the market's part, nothing aggregated.
fn price_pass(inputs: &Inputs) -> u64 {
    let mut market = inputs.market();
    for (program, record) in inputs.records() {
        black_box(
            market
                .with_trade(Some(program), black_box(record), Position::default(), |trade| black_box(trade).price)
                .ok(),
        );
    }
    0
}

/// Cache lines of a coin's state in the aggregator: its index entry, its
/// `MintMeta`, and four series of 104 bytes (seven lines).
const STATE_LINES: usize = 1 + 1 + 7;

/// The bytes of one `Update`.
type UpdateBytes = [u64; 14];

/// Which memory traffic [`traffic_pass`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Traffic {
    /// Every cache line of every record read.
    records: bool,
    /// The lines of each event's coin's state read and written.
    state: bool,
    /// One update-sized record per window written per event.
    updates: bool,
}

/// The memory traffic of the klinecast path without its work: per event,
/// every cache line of its record read; the lines of its coin's state read
/// and written, at the coin's place in a table as large as the aggregator's
/// (adjacent, which is kinder than the real index, metadata and series);
/// and one update-sized record per window written to the batch's output,
/// cleared every batch. A lower bound for the real path: closing updates,
/// the pool lookups and all computing are left out.
fn traffic_pass(inputs: &Inputs, windows: usize, traffic: Traffic) -> u64 {
    let mut state = vec![[0u64; 8]; inputs.mints as usize * STATE_LINES];
    let mut out: Vec<UpdateBytes> = Vec::with_capacity(BATCH * windows);
    let mut sum = 0u64;
    let mut records = inputs.records().zip(&inputs.coins);
    loop {
        out.clear();
        let mut batch = 0;
        for ((_, record), &coin) in records.by_ref().take(BATCH) {
            if traffic.records {
                for line in record.chunks(64) {
                    sum = sum.wrapping_add(u64::from(line[0]));
                }
            }
            if traffic.state {
                for line in &mut state[coin as usize * STATE_LINES..][..STATE_LINES] {
                    line[0] = line[0].wrapping_add(sum);
                    sum ^= line[1];
                }
            }
            if traffic.updates {
                for w in 0..windows {
                    let mut update = [sum; 14];
                    update[0] = w as u64;
                    out.push(update);
                }
            }
            batch += 1;
        }
        black_box(&*out);
        if batch < BATCH {
            // No bars: nothing is emitted.
            black_box(sum);
            return 0;
        }
    }
}

/// Parts of the klinecast path, measured alone to show where its time goes
/// (not part of the SPEC bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `TradeFields::decode` or `SwapEvent::decode` only.
    Decode,
    /// `Market::with_trade`: decode, the pool and quote, the price.
    Price,
    /// Decode + apply with `EmitPolicy::Coalesce` never flushed: the state
    /// updates without the per-change `Bar` pushes (closing bars still go
    /// out).
    NoUpdatesEmitted,
    /// Decode + apply, every change emitted, the `1s` window alone.
    OneWindow,
    /// Decode + apply, every change emitted, the output cleared every
    /// [`SMALL_BATCH`] events instead of every [`BATCH`].
    SmallBatch,
    /// [`traffic_pass`]: the memory traffic alone.
    Traffic,
    /// [`traffic_pass`]: reading the records alone.
    TrafficRecords,
    /// [`traffic_pass`]: the coins' state and the updates alone.
    TrafficState,
}

impl Part {
    const ALL: [Self; 8] = [
        Self::Decode,
        Self::Price,
        Self::NoUpdatesEmitted,
        Self::OneWindow,
        Self::SmallBatch,
        Self::Traffic,
        Self::TrafficRecords,
        Self::TrafficState,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Decode => "decode only (`TradeFields::decode`, `SwapEvent::decode`)",
            Self::Price => "decode + price (`Market::with_trade`: pool, quote, price), nothing applied",
            Self::NoUpdatesEmitted => "decode + `apply`, open-bar updates not emitted (`Coalesce`, never flushed)",
            Self::OneWindow => "decode + `apply`, every change emitted, one window (1s) instead of four",
            Self::SmallBatch => {
                "decode + `apply`, every change emitted, output cleared every 512 events instead of 4096"
            }
            Self::Traffic => {
                "floor: memory traffic alone (each record's lines read, its coin's 9 state lines read and written, \
                 4 updates of 112 bytes written; no closes, no computing)"
            }
            Self::TrafficRecords => "floor: each record's lines read, nothing else",
            Self::TrafficState => {
                "floor: the coin's 9 state lines read and written, 4 updates written, no records read"
            }
        }
    }

    fn pass(self, inputs: &Inputs, windows: &Windows, out: &mut Vec<Update>) -> Result<u64, Box<dyn Error>> {
        Ok(match self {
            Self::Decode => decode_pass(inputs),
            Self::Price => price_pass(inputs),
            Self::NoUpdatesEmitted => klinecast_pass(inputs, windows, EmitPolicy::Coalesce, out),
            Self::OneWindow => klinecast_pass(inputs, &"1s".parse()?, EmitPolicy::EveryChange, out),
            Self::SmallBatch => klinecast_pass_in(inputs, windows, EmitPolicy::EveryChange, SMALL_BATCH, out),
            Self::Traffic => traffic_pass(inputs, windows.len(), Traffic { records: true, state: true, updates: true }),
            Self::TrafficRecords => {
                traffic_pass(inputs, windows.len(), Traffic { records: true, state: false, updates: false })
            }
            Self::TrafficState => {
                traffic_pass(inputs, windows.len(), Traffic { records: false, state: true, updates: true })
            }
        })
    }
}

/// One part on one mint count.
#[derive(Debug, Clone, Serialize)]
struct PartMeasured {
    part: &'static str,
    mints: u32,
    rates: PathRates,
}

fn measure_parts(inputs: &Inputs, windows: &Windows, plan: Plan) -> Result<Vec<PartMeasured>, Box<dyn Error>> {
    let mut out = Vec::with_capacity(BATCH * windows.len() * 2);
    let mut measured = Vec::new();
    for part in Part::ALL {
        let mut runs = Vec::new();
        for _ in 0..plan.part_runs {
            let mut failed = None;
            runs.push(run(plan.events, plan.min_run, || {
                part.pass(inputs, windows, &mut out).unwrap_or_else(|e| {
                    failed = Some(e.to_string());
                    0
                })
            }));
            if let Some(error) = failed {
                return Err(error.into());
            }
        }
        measured.push(PartMeasured { part: part.label(), mints: inputs.mints, rates: PathRates::of(&runs) });
    }
    Ok(measured)
}

/// File of an earlier run of this benchmark (its JSON, with a `code` key
/// naming the code it measured) whose rates the parts table shows next to
/// this run's, when it exists.
const BEFORE_FILE: &str = "ingest-before.json";

/// An earlier run's median on-CPU rate of `part` (`None`: the whole path)
/// with `mints` mints.
fn before_rate(before: &Value, part: Option<&str>, mints: u32) -> Option<f64> {
    let rate = |v: &Value| v.pointer("/cpu_events_per_s/median").and_then(Value::as_f64);
    let same_mints = |v: &&Value| v.get("mints").and_then(Value::as_u64) == Some(u64::from(mints));
    match part {
        None => before.get("results")?.as_array()?.iter().find(same_mints).and_then(|m| rate(m.get("klinecast")?)),
        Some(part) => before
            .get("breakdown")?
            .as_array()?
            .iter()
            .filter(same_mints)
            .find(|p| p.get("part").and_then(Value::as_str) == Some(part))
            .and_then(|p| rate(p.get("rates")?)),
    }
}

fn parts_table(results: &[Measured], parts: &[PartMeasured], before: Option<&Value>) -> String {
    let mut md =
        String::from("Where the klinecast path's time goes (the same inputs, parts measured alone, on-CPU medians)");
    if let Some(before) = before {
        let code = before.get("code").and_then(Value::as_str).unwrap_or("an earlier build");
        let at = before.get("measured_at_unix_s").and_then(Value::as_u64).unwrap_or(0);
        let at = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(at));
        md += &format!(
            ", next to the same benchmark run on {code} (`bench/results/{BEFORE_FILE}`, measured {at}; – where that \
             run had no such part)"
        );
    }
    md += ":\n\n| part | mints | events/s on CPU | ns per event |";
    if before.is_some() {
        md += " before: events/s | before → now, ns per event |\n| --- | ---: | ---: | ---: | ---: | ---: |\n";
    } else {
        md += "\n| --- | ---: | ---: | ---: |\n";
    }
    let row = |label: &str, part: Option<&str>, mints: u32, rate: f64| {
        let mut row = format!("| {label} | {mints} | {} | {:.1} |", human_rate(rate), 1e9 / rate);
        if let Some(before) = before {
            row += &match before_rate(before, part, mints) {
                Some(was) => format!(" {} | {:.1} → {:.1} |", human_rate(was), 1e9 / was, 1e9 / rate),
                None => " – | – |".into(),
            };
        }
        row + "\n"
    };
    for m in results {
        md += &row("whole path (table above)", None, m.mints, m.klinecast.cpu_events_per_s.median);
        for p in parts.iter().filter(|p| p.mints == m.mints) {
            md += &row(p.part, Some(p.part), p.mints, p.rates.cpu_events_per_s.median);
        }
    }
    md
}

/// What one mint count's inputs hold, for the report.
#[derive(Debug, Clone, Serialize)]
struct Mix {
    mints: u32,
    /// Events of each layout, in the order of `Layout::recorded`.
    drawn: Vec<usize>,
    events: usize,
    /// Bytes of all binary records.
    bytes: usize,
    /// PumpSwap swaps among the events.
    swaps: usize,
    /// Pools known to the market.
    pools: usize,
}

impl Inputs {
    fn mix(&self) -> Mix {
        Mix {
            mints: self.mints,
            drawn: self.drawn.clone(),
            events: self.records.len(),
            bytes: self.binary.len(),
            swaps: self.records.iter().filter(|(_, p)| *p == Program::PumpSwap).count(),
            pools: self.pools.len(),
        }
    }
}

/// The layouts and how many events of each a pass holds.
fn mix_table(layouts: &[Layout], mixes: &[Mix]) -> String {
    let plural = |m: &Mix| if m.mints == 1 { "" } else { "s" };
    let share = |part: usize, m: &Mix| 100.0 * part as f64 / m.events.max(1) as f64;
    let mut md = format!(
        "Event mix: each trade record of `tests/fixtures/solana/events.jsonl` and `extra/events.jsonl` ({} records, \
         recorded on mainnet) is one layout, drawn with equal weight for every event, so the mix has the \
         recordings' proportions. Each copy is re-stamped with one of the pass's coins (for a swap, the coin's \
         pool) and its time; a coin trades in one quote, so the $PUMP-quoted layout goes to $PUMP-quoted coins \
         (none when there is one mint). Share of the events of a pass:\n\n| layout | recorded in |",
        layouts.len()
    );
    for m in mixes {
        md += &format!(" {} mint{} |", m.mints, plural(m));
    }
    md += "\n| --- | --- |";
    md += &" ---: |".repeat(mixes.len());
    md += "\n";
    for (at, layout) in layouts.iter().enumerate() {
        md += &format!("| {} | {} |", layout.label(), layout.source);
        for m in mixes {
            md += &format!(" {:.1} % |", share(m.drawn[at], m));
        }
        md += "\n";
    }
    md += "\n";
    for m in mixes {
        md += &format!(
            "- {} mint{}: {:.0} bytes per record on average, {:.1} % PumpSwap swaps, {} pool(s) known to the market\n",
            m.mints,
            plural(m),
            m.bytes as f64 / m.events.max(1) as f64,
            share(m.swaps, m),
            m.pools
        );
    }
    md
}

/// One baseline pass over all events; returns the candles emitted.
fn baseline_pass(inputs: &Inputs, windows: &Windows, out: &mut Vec<Candle>) -> u64 {
    let mut agg = NaiveAggregator::new(windows, &inputs.pools);
    let mut bars = 0;
    let mut start = 0;
    for batch in inputs.json_ends.chunks(BATCH) {
        out.clear();
        for &end in batch {
            if let Ok(event) = serde_json::from_slice::<JsonEvent>(black_box(&inputs.json[start..end])) {
                agg.apply(&event, out);
            }
            start = end;
        }
        bars += out.len() as u64;
        black_box(&*out);
    }
    bars
}

/// Checks that both paths emit the same open-bar updates, in the same
/// order, for the first events: the baseline does the same work.
fn check_same_updates(inputs: &Inputs, windows: &Windows) -> Result<(), Box<dyn Error>> {
    let events = CHECK_EVENTS.min(inputs.json_ends.len());
    let mut agg = Aggregator::new(windows, EmitPolicy::EveryChange);
    let mut market = inputs.market();
    let mut updates = Vec::new();
    for (program, record) in inputs.records().take(events) {
        let trade = market.trade_of(Some(program), record, Position::default()).map_err(|e| format!("{e:?}"))?;
        agg.apply(&trade, &mut updates)?;
    }
    // The bars those updates stand for, as the sink builds them to encode.
    let bars = agg.bars(&updates);
    let mut naive = NaiveAggregator::new(windows, &inputs.pools);
    let mut candles = Vec::new();
    let mut start = 0;
    for &end in &inputs.json_ends[..events] {
        naive.apply(&serde_json::from_slice(&inputs.json[start..end])?, &mut candles);
        start = end;
    }
    let ours = bars.iter().filter(|b| !b.closed).map(|b| {
        (
            i64::from(b.window_s),
            b.open_time_s,
            [b.open, b.high, b.low, b.close],
            b.trades,
            bs58::encode(b.mint).into_string(),
        )
    });
    let theirs = candles
        .iter()
        .filter(|c| !c.closed)
        .map(|c| (c.window_s, c.open_time, [c.open, c.high, c.low, c.close], c.trades, c.mint.clone()));
    if !ours.eq(theirs) || bars.iter().filter(|b| !b.closed).count() != events * windows.len() {
        return Err(format!(
            "klinecast and the baseline disagree on the first {events} events ({} mints)",
            inputs.mints
        )
        .into());
    }
    Ok(())
}

/// Rates of one run.
#[derive(Debug, Clone, Copy)]
struct Rates {
    /// Events per second of the thread's time on a CPU (wall-clock time
    /// where the kernel does not report it).
    cpu_events_per_s: f64,
    /// Bars emitted per second of the thread's time on a CPU.
    cpu_bars_per_s: f64,
    /// Events per second of wall-clock time.
    wall_events_per_s: f64,
}

/// One run: whole passes until `min_run` has passed, on the wall clock and
/// on the CPU.
fn run(events: usize, min_run: Duration, mut pass: impl FnMut() -> u64) -> Rates {
    let started = Instant::now();
    let cpu_started = common::thread_cpu_ns();
    let cpu_s = || match (cpu_started, common::thread_cpu_ns()) {
        (Some(start), Some(now)) => Duration::from_nanos(now.saturating_sub(start)),
        _ => started.elapsed(),
    };
    let (mut passes, mut bars) = (0usize, 0u64);
    while passes == 0 || started.elapsed() < min_run || cpu_s() < min_run.mul_f64(0.8) {
        bars += pass();
        passes += 1;
    }
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_s().as_secs_f64());
    // The kernel's figure lags by up to a scheduler tick: too coarse for
    // the milliseconds of a smoke run, where the wall clock has to do.
    let cpu = if cpu < CPU_TIME_MIN_S { wall } else { cpu };
    let total = (passes * events) as f64;
    Rates { cpu_events_per_s: total / cpu, cpu_bars_per_s: bars as f64 / cpu, wall_events_per_s: total / wall }
}

/// Both paths on one mint count.
#[derive(Debug, Clone, Serialize)]
struct Measured {
    mints: u32,
    klinecast: PathRates,
    baseline: PathRates,
    /// Median klinecast rate over median baseline rate (on-CPU time).
    ratio: f64,
}

/// The runs of one path, summarised.
#[derive(Debug, Clone, Copy, Serialize)]
struct PathRates {
    /// Events per second of on-CPU time: what the SPEC bar is judged on.
    cpu_events_per_s: Summary,
    /// Bars (or candles) emitted per second of on-CPU time.
    cpu_bars_per_s: Summary,
    /// Events per second of wall-clock time.
    wall_events_per_s: Summary,
}

impl PathRates {
    fn of(runs: &[Rates]) -> Self {
        let summary = |f: fn(&Rates) -> f64| Summary::of(&runs.iter().map(f).collect::<Vec<_>>());
        Self {
            cpu_events_per_s: summary(|r| r.cpu_events_per_s),
            cpu_bars_per_s: summary(|r| r.cpu_bars_per_s),
            wall_events_per_s: summary(|r| r.wall_events_per_s),
        }
    }
}

fn measure(inputs: &Inputs, windows: &Windows, plan: Plan) -> Measured {
    let mut bars = Vec::with_capacity(BATCH * windows.len() * 2);
    let mut candles = Vec::with_capacity(BATCH * windows.len() * 2);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..plan.runs {
        ours.push(run(plan.events, plan.min_run, || {
            klinecast_pass(inputs, windows, EmitPolicy::EveryChange, &mut bars)
        }));
        theirs.push(run(plan.events, plan.min_run, || baseline_pass(inputs, windows, &mut candles)));
    }
    let (klinecast, baseline) = (PathRates::of(&ours), PathRates::of(&theirs));
    let ratio = klinecast.cpu_events_per_s.median / baseline.cpu_events_per_s.median;
    Measured { mints: inputs.mints, klinecast, baseline, ratio }
}

/// Pins this thread to [`PIN_CORE`] (or the last core there is); returns
/// the core, or `None` when pinning is not possible.
fn pin() -> Option<usize> {
    let ids = core_affinity::get_core_ids()?;
    let core = ids.iter().find(|c| c.id == PIN_CORE).or(ids.last()).copied()?;
    core_affinity::set_for_current(core).then_some(core.id)
}

/// Whether the two SPEC bars hold on every mint count: (rate, ratio).
fn bars_met(results: &[Measured]) -> (bool, bool) {
    let rate = results.iter().all(|m| m.klinecast.cpu_events_per_s.median >= BAR_EVENTS_PER_S);
    let ratio = results.iter().all(|m| m.ratio >= BAR_RATIO);
    (rate, ratio)
}

fn table(results: &[Measured]) -> String {
    let mut md = String::from(
        "| path | mints | events/s on CPU, median | min | max | events/s wall clock, median | bars emitted/s on CPU | \
         vs baseline |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for m in results {
        let rows = [
            ("klinecast: Borsh decode + `Aggregator`", m.klinecast, m.ratio),
            ("baseline: `serde_json` + `HashMap<String, _>`", m.baseline, 1.0),
        ];
        for (path, rates, ratio) in rows {
            let events = rates.cpu_events_per_s;
            md += &format!(
                "| {path} | {} | {} | {} | {} | {} | {} | {ratio:.1}× |\n",
                m.mints,
                human_rate(events.median),
                human_rate(events.min),
                human_rate(events.max),
                human_rate(rates.wall_events_per_s.median),
                human_rate(rates.cpu_bars_per_s.median),
            );
        }
    }
    md
}

fn section(results: &[Measured], plan: Plan, pinned: Option<usize>, load: [&str; 2], when: [&str; 2]) -> String {
    let (rate_met, ratio_met) = bars_met(results);
    let worst_rate = results.iter().map(|m| m.klinecast.cpu_events_per_s.median).fold(f64::INFINITY, f64::min);
    let worst_ratio = results.iter().map(|m| m.ratio).fold(f64::INFINITY, f64::min);
    format!(
        "## decode + aggregate, one core (`cargo bench --bench ingest`)\n\n\
         Measured from {} to {} (UTC). Windows {WINDOWS}, `EmitPolicy::EveryChange`, {} events per pass ({EVENTS_PER_EVENT_S} per second of \
         event time), output cleared every {BATCH} events, {} runs of at least {:?} per path, runs of the two paths \
         alternating, thread pinned to core {}. Load average (1/5/15 min) {} at start, {} at end. Rates are \
         per second of the measuring thread's time on its CPU (`/proc/thread-self/schedstat`), so other work \
         taking turns on the core does not count against either path; the wall-clock rate is shown next to it \
         and equals it on an idle machine. The bars are judged on the on-CPU medians.\n\n{}\n\
         - ≥ {} events/s on one core: slowest median {} events/s → {}\n\
         - ≥ {BAR_RATIO}× the baseline: smallest ratio {worst_ratio:.1}× → {}\n",
        when[0],
        when[1],
        plan.events,
        plan.runs,
        plan.min_run,
        pinned.map_or_else(|| "none (pinning failed)".into(), |c| c.to_string()),
        load[0],
        load[1],
        table(results),
        human_rate(BAR_EVENTS_PER_S),
        human_rate(worst_rate),
        verdict(rate_met),
        verdict(ratio_met),
    )
}

fn summary_row(results: &[Measured]) -> String {
    let (rate_met, ratio_met) = bars_met(results);
    let list = |f: &dyn Fn(&Measured) -> String| results.iter().map(f).collect::<Vec<_>>().join("; ");
    let ours = list(&|m| {
        format!(
            "{} events/s on CPU ({} mint{}), {:.1}×",
            human_rate(m.klinecast.cpu_events_per_s.median),
            m.mints,
            plural(m),
            m.ratio
        )
    });
    let theirs = list(&|m| {
        format!("{} events/s on CPU ({} mint{})", human_rate(m.baseline.cpu_events_per_s.median), m.mints, plural(m))
    });
    format!(
        "| {SPEC_ROW} | ≥ 20 M events/s, ≥ 10× JSON + HashMap baseline | {ours} | {theirs} | {} (rate {}, ratio {}) |\n",
        verdict(rate_met && ratio_met),
        verdict(rate_met),
        verdict(ratio_met),
    )
}

fn plural(m: &Measured) -> &'static str {
    if m.mints == 1 { "" } else { "s" }
}

fn main() -> Result<(), Box<dyn Error>> {
    let bench = common::bench_mode();
    let windows: Windows = WINDOWS.parse()?;
    let plan = if bench {
        Plan { events: BENCH_EVENTS, runs: RUNS, part_runs: PART_RUNS, min_run: MIN_RUN }
    } else {
        Plan { events: SMOKE_EVENTS, runs: 1, part_runs: 1, min_run: Duration::ZERO }
    };
    let pinned = pin();
    let load_start = common::loadavg();
    let started = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let layouts = Layout::recorded()?;
    let before = std::fs::read_to_string(common::results_dir()?.join(BEFORE_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let (mut results, mut parts, mut mixes) = (Vec::new(), Vec::new(), Vec::new());
    for mints in MINT_COUNTS {
        let inputs = generate(&layouts, mints, plan.events)?;
        check_same_updates(&inputs, &windows)?;
        mixes.push(inputs.mix());
        results.push(measure(&inputs, &windows, plan));
        parts.extend(measure_parts(&inputs, &windows, plan)?);
    }
    let load_end = common::loadavg();
    let ended = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let section = section(&results, plan, pinned, [&load_start, &load_end], [&started, &ended])
        + "\n"
        + &mix_table(&layouts, &mixes)
        + "\n"
        + &parts_table(&results, &parts, before.as_ref());
    println!("{section}");
    if !bench {
        println!("(smoke run: `cargo bench --bench ingest` measures; nothing written)");
        return Ok(());
    }
    let (rate_met, ratio_met) = bars_met(&results);
    let json = json!({
        "bench": "ingest",
        "spec_row": SPEC_ROW,
        "measured_at_unix_s": common::unix_now_s(),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "pinned_core": pinned,
        "windows": WINDOWS,
        "events_per_pass": plan.events,
        "events_per_event_second": EVENTS_PER_EVENT_S,
        "batch": BATCH,
        "runs": plan.runs,
        "min_run_s": plan.min_run.as_secs_f64(),
        "results": results,
        "breakdown": parts,
        "layouts": layouts.iter().map(|l| json!({"layout": l.label(), "recorded_in": l.source})).collect::<Vec<_>>(),
        "mix": mixes,
        "bar_events_per_s": BAR_EVENTS_PER_S,
        "bar_ratio": BAR_RATIO,
        "rate_met": rate_met,
        "ratio_met": ratio_met,
        "met": rate_met && ratio_met,
    });
    common::write_results("ingest", &json, &section, &summary_row(&results))
}
