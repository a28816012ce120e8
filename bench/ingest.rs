//! SPEC §7 row 1: decode + aggregate throughput on one core, next to a
//! JSON + `HashMap` baseline measured in the same run.
//!
//! Inputs are made before any clock starts: the mock source's binary
//! `TradeEvent`s, re-stamped to advance [`EVENTS_PER_EVENT_S`] trades per
//! second of event time so bars of every window open and close, and the same
//! trades as JSON objects for the baseline.
//!
//! - klinecast: the ingest path: `Market::with_trade` (the `TradeEvent`
//!   decoder and the price in the coin's quote) handing each trade to
//!   `Aggregator::apply` with
//!   `EmitPolicy::EveryChange`, the output buffer cleared every batch of
//!   [`BATCH`] events, as the ingest loop does.
//! - baseline: what the original service did: `serde_json` parses each trade
//!   into a struct with base58 `String` keys, and a `HashMap<String, _>` of
//!   per-window candles, updated with `>`/`<`, emits a cloned candle (and its
//!   `String`) per window per trade.
//!
//! Both paths emit the same open-bar updates (checked before timing). Each
//! pass starts from an empty aggregator; a run repeats passes for at least
//! [`MIN_RUN`]; runs of the two paths alternate. Rates are per second of
//! the measuring thread's time on its CPU, so other work sharing the core
//! does not count against either path; wall-clock rates are reported next
//! to them. A breakdown then measures parts of the klinecast path alone
//! (decode only, no updates emitted, one window) to show where time goes.
//!
//! `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) a
//! smoke run of a few thousand events checks the paths agree and exits.

mod common;

use std::collections::HashMap;
use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use klinecast::aggregate::{Aggregator, EmitPolicy, Update, Windows};
use klinecast::codec::event::{Position, Program};
use klinecast::codec::trade::{LAMPORTS_PER_SOL, TOKEN_UNITS_PER_TOKEN, TRADE_EVENT_MIN_LEN, TradeEvent, TradeFields};
use klinecast::market::Market;
use klinecast::source::{MAX_BATCH, MockConfig, MockSource};
use serde::{Deserialize, Serialize};
use serde_json::json;

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
/// Events per pass in a measurement: 2^20 (135 MB of binary records, a few
/// hundred MB of JSON), 17 minutes of event time.
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
/// Seed of the mock source.
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

/// How much to measure.
#[derive(Debug, Clone, Copy)]
struct Plan {
    events: usize,
    runs: usize,
    /// Runs of each part in the breakdown.
    part_runs: usize,
    min_run: Duration,
}

/// The trades of one mint count, in both encodings.
struct Inputs {
    mints: u32,
    /// Binary TradeEvent records back to back, each `TRADE_EVENT_MIN_LEN`
    /// bytes.
    binary: Vec<u8>,
    /// The same trades as JSON objects, back to back.
    json: Vec<u8>,
    /// End offset in `json` of each object.
    json_ends: Vec<usize>,
}

/// A trade as the original service received it: a JSON object with base58
/// keys.
#[derive(Debug, Serialize, Deserialize)]
struct JsonTrade {
    mint: String,
    sol_amount: u64,
    token_amount: u64,
    is_buy: bool,
    user: String,
    timestamp: i64,
    virtual_sol_reserves: u64,
    virtual_token_reserves: u64,
    real_sol_reserves: u64,
    real_token_reserves: u64,
}

impl From<&TradeEvent> for JsonTrade {
    fn from(t: &TradeEvent) -> Self {
        Self {
            mint: bs58::encode(t.mint).into_string(),
            sol_amount: t.sol_amount,
            token_amount: t.token_amount,
            is_buy: t.is_buy,
            user: bs58::encode(t.user).into_string(),
            timestamp: t.timestamp,
            virtual_sol_reserves: t.virtual_sol_reserves,
            virtual_token_reserves: t.virtual_token_reserves,
            real_sol_reserves: t.real_sol_reserves,
            real_token_reserves: t.real_token_reserves,
        }
    }
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
    volume_sol: f64,
    volume_tokens: f64,
    buy_volume_sol: f64,
    trades: u32,
    closed: bool,
}

/// The baseline aggregator: mint string → one candle slot per window.
struct NaiveAggregator {
    windows: Vec<i64>,
    candles: HashMap<String, Vec<Option<Candle>>>,
}

impl NaiveAggregator {
    fn new(windows: &Windows) -> Self {
        Self { windows: windows.seconds().iter().map(|&w| i64::from(w)).collect(), candles: HashMap::new() }
    }

    /// Applies a trade to every window; a trade of a later bucket closes the
    /// candle of that window (emitted) and opens a new one. Every change is
    /// emitted as a clone, as `EmitPolicy::EveryChange` does.
    fn apply(&mut self, trade: &JsonTrade, out: &mut Vec<Candle>) {
        if trade.virtual_token_reserves == 0 {
            return;
        }
        let price = (trade.virtual_sol_reserves as f64 / LAMPORTS_PER_SOL)
            / (trade.virtual_token_reserves as f64 / TOKEN_UNITS_PER_TOKEN);
        let sol = trade.sol_amount as f64 / LAMPORTS_PER_SOL;
        let tokens = trade.token_amount as f64 / TOKEN_UNITS_PER_TOKEN;
        let buy_sol = if trade.is_buy { sol } else { 0.0 };
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
                    c.volume_sol += sol;
                    c.volume_tokens += tokens;
                    c.buy_volume_sol += buy_sol;
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
                        volume_sol: sol,
                        volume_tokens: tokens,
                        buy_volume_sol: buy_sol,
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

/// Mock trades for `mints` mints, stamped `EVENTS_PER_EVENT_S` per second
/// from `FIRST_TS_S`, in both encodings.
fn generate(mints: u32, events: usize) -> Result<Inputs, Box<dyn Error>> {
    let mut source = MockSource::new(MockConfig { mints, rate_per_s: 0, seed: SEED });
    let mut trades = Vec::with_capacity(events);
    let mut rejected = 0usize;
    source.fill(events, |record| match TradeEvent::decode(record.bytes) {
        Ok(trade) => trades.push(trade),
        Err(_) => rejected += 1,
    });
    if rejected > 0 || trades.len() != events {
        return Err(
            format!("mock source gave {} trades and {rejected} bad records, wanted {events}", trades.len()).into()
        );
    }
    let mut inputs = Inputs {
        mints,
        binary: Vec::with_capacity(events * TRADE_EVENT_MIN_LEN),
        json: Vec::with_capacity(events * 400),
        json_ends: Vec::with_capacity(events),
    };
    for (i, trade) in trades.iter_mut().enumerate() {
        trade.timestamp = FIRST_TS_S + (i / EVENTS_PER_EVENT_S) as i64;
        inputs.binary.extend_from_slice(&trade.encode());
        serde_json::to_writer(&mut inputs.json, &JsonTrade::from(&*trade))?;
        inputs.json_ends.push(inputs.json.len());
    }
    Ok(inputs)
}

/// One klinecast pass over all events; returns the bars emitted.
fn klinecast_pass(inputs: &Inputs, windows: &Windows, policy: EmitPolicy, out: &mut Vec<Update>) -> u64 {
    let mut agg = Aggregator::new(windows, policy);
    let mut market = Market::new(0);
    let mut bars = 0;
    for batch in inputs.binary.chunks(BATCH * TRADE_EVENT_MIN_LEN) {
        out.clear();
        for record in batch.chunks_exact(TRADE_EVENT_MIN_LEN) {
            // Inputs are checked before timing: nothing is rejected.
            let applied = market.with_trade(Some(Program::PumpFun), black_box(record), Position::default(), |trade| {
                agg.apply(trade, out).is_ok()
            });
            black_box(applied.is_ok_and(|applied| applied));
        }
        bars += out.len() as u64;
        black_box(&*out);
    }
    bars
}

/// Decoding alone: every field of every record, nothing aggregated.
fn decode_pass(inputs: &Inputs) -> u64 {
    for record in inputs.binary.chunks_exact(TRADE_EVENT_MIN_LEN) {
        black_box(TradeFields::decode(black_box(record)).ok());
    }
    0
}

/// Parts of the klinecast path, measured alone to show where its time goes
/// (not part of the SPEC bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `TradeFields::decode` only.
    Decode,
    /// Decode + apply with `EmitPolicy::Coalesce` never flushed: the state
    /// updates without the per-change `Bar` pushes (closing bars still go
    /// out).
    NoUpdatesEmitted,
    /// Decode + apply, every change emitted, the `1s` window alone.
    OneWindow,
}

impl Part {
    const ALL: [Self; 3] = [Self::Decode, Self::NoUpdatesEmitted, Self::OneWindow];

    fn label(self) -> &'static str {
        match self {
            Self::Decode => "`TradeFields::decode` only",
            Self::NoUpdatesEmitted => "decode + `apply`, open-bar updates not emitted (`Coalesce`, never flushed)",
            Self::OneWindow => "decode + `apply`, every change emitted, one window (1s) instead of four",
        }
    }

    fn pass(self, inputs: &Inputs, windows: &Windows, out: &mut Vec<Update>) -> Result<u64, Box<dyn Error>> {
        Ok(match self {
            Self::Decode => decode_pass(inputs),
            Self::NoUpdatesEmitted => klinecast_pass(inputs, windows, EmitPolicy::Coalesce, out),
            Self::OneWindow => klinecast_pass(inputs, &"1s".parse()?, EmitPolicy::EveryChange, out),
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

fn parts_table(results: &[Measured], parts: &[PartMeasured]) -> String {
    let mut md = String::from(
        "Where the klinecast path's time goes (the same inputs, parts measured alone, on-CPU medians):\n\n\
         | part | mints | events/s on CPU | ns per event |\n| --- | ---: | ---: | ---: |\n",
    );
    for m in results {
        let rate = m.klinecast.cpu_events_per_s.median;
        md += &format!("| whole path (table above) | {} | {} | {:.1} |\n", m.mints, human_rate(rate), 1e9 / rate);
        for p in parts.iter().filter(|p| p.mints == m.mints) {
            let rate = p.rates.cpu_events_per_s.median;
            md += &format!("| {} | {} | {} | {:.1} |\n", p.part, p.mints, human_rate(rate), 1e9 / rate);
        }
    }
    md
}

/// One baseline pass over all events; returns the candles emitted.
fn baseline_pass(inputs: &Inputs, windows: &Windows, out: &mut Vec<Candle>) -> u64 {
    let mut agg = NaiveAggregator::new(windows);
    let mut bars = 0;
    let mut start = 0;
    for batch in inputs.json_ends.chunks(BATCH) {
        out.clear();
        for &end in batch {
            if let Ok(trade) = serde_json::from_slice::<JsonTrade>(black_box(&inputs.json[start..end])) {
                agg.apply(&trade, out);
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
    let mut market = Market::new(0);
    let mut updates = Vec::new();
    for record in inputs.binary.chunks_exact(TRADE_EVENT_MIN_LEN).take(events) {
        let trade =
            market.trade_of(Some(Program::PumpFun), record, Position::default()).map_err(|e| format!("{e:?}"))?;
        agg.apply(&trade, &mut updates)?;
    }
    // The bars those updates stand for, as the sink builds them to encode.
    let bars = agg.bars(&updates);
    let mut naive = NaiveAggregator::new(windows);
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

fn section(results: &[Measured], plan: Plan, pinned: Option<usize>, load: [&str; 2]) -> String {
    let (rate_met, ratio_met) = bars_met(results);
    let worst_rate = results.iter().map(|m| m.klinecast.cpu_events_per_s.median).fold(f64::INFINITY, f64::min);
    let worst_ratio = results.iter().map(|m| m.ratio).fold(f64::INFINITY, f64::min);
    format!(
        "## decode + aggregate, one core (`cargo bench --bench ingest`)\n\n\
         Windows {WINDOWS}, `EmitPolicy::EveryChange`, {} events per pass ({EVENTS_PER_EVENT_S} per second of \
         event time), output cleared every {BATCH} events, {} runs of at least {:?} per path, runs of the two paths \
         alternating, thread pinned to core {}. Load average (1/5/15 min) {} at start, {} at end. Rates are \
         per second of the measuring thread's time on its CPU (`/proc/thread-self/schedstat`), so other work \
         taking turns on the core does not count against either path; the wall-clock rate is shown next to it \
         and equals it on an idle machine. The bars are judged on the on-CPU medians.\n\n{}\n\
         - ≥ {} events/s on one core: slowest median {} events/s → {}\n\
         - ≥ {BAR_RATIO}× the baseline: smallest ratio {worst_ratio:.1}× → {}\n",
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
    let (mut results, mut parts) = (Vec::new(), Vec::new());
    for mints in MINT_COUNTS {
        let inputs = generate(mints, plan.events)?;
        check_same_updates(&inputs, &windows)?;
        results.push(measure(&inputs, &windows, plan));
        parts.extend(measure_parts(&inputs, &windows, plan)?);
    }
    let load_end = common::loadavg();
    let section = section(&results, plan, pinned, [&load_start, &load_end]) + "\n" + &parts_table(&results, &parts);
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
        "bar_events_per_s": BAR_EVENTS_PER_S,
        "bar_ratio": BAR_RATIO,
        "rate_met": rate_met,
        "ratio_met": ratio_met,
        "met": rate_met && ratio_met,
    });
    common::write_results("ingest", &json, &section, &summary_row(&results))
}
