//! Simulated pump.fun trades: each mint is a constant-product bonding curve
//! (new curves start at 30 SOL / 1,073,000,000 tokens of virtual reserves)
//! traded by random buys and sells at a fixed rate. Deterministic for a seed,
//! except for timestamps, which are wall-clock.
//!
//! At a fixed rate the mock is an open-loop schedule: trade `k` (from 1) is
//! meant to happen at the schedule's start plus `k / rate`, whenever it is
//! actually handed out (a stalled ingest catches up). Each trade is stamped
//! with the second of that intended time and carries `k` in its position's
//! signature field (the mock has no signatures), so every update names the
//! trade that made it, and a latency measurement takes its intended time
//! from the schedule ([`MockSchedule`], on `/metrics`) instead of from when
//! the update happened to be produced.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use super::record::{Filled, Record};
use crate::codec::event::{Position, Program};
use crate::codec::trade::{Pubkey, TradeEvent};

/// Initial virtual SOL reserves of a pump.fun curve, lamports.
pub const INITIAL_VIRTUAL_SOL: u64 = 30_000_000_000;
/// Initial virtual token reserves, raw units.
pub const INITIAL_VIRTUAL_TOKENS: u64 = 1_073_000_000_000_000;
/// Initial real token reserves (tokens for sale on the curve), raw units.
pub const INITIAL_REAL_TOKENS: u64 = 793_100_000_000_000;
/// Real SOL at which the mock steers trading back towards sells, so a curve
/// wanders instead of completing (real curves complete near 85 SOL).
const STEER_REAL_SOL: u64 = 60_000_000_000;

/// Flags of the mock source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockConfig {
    /// Number of mints traded.
    pub mints: u32,
    /// Events per second over all mints; 0 = as fast as possible.
    pub rate_per_s: u64,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self { mints: 1, rate_per_s: 1000, seed: 42 }
    }
}

/// One simulated bonding curve.
#[derive(Debug, Clone)]
struct Curve {
    mint: Pubkey,
    virtual_sol: u64,
    virtual_tokens: u64,
    real_sol: u64,
    real_tokens: u64,
    /// Tokens bought from the curve and not sold back yet: sells never
    /// exceed what traders hold.
    held_tokens: u64,
}

impl Curve {
    fn new(mint: Pubkey) -> Self {
        Self {
            mint,
            virtual_sol: INITIAL_VIRTUAL_SOL,
            virtual_tokens: INITIAL_VIRTUAL_TOKENS,
            real_sol: 0,
            real_tokens: INITIAL_REAL_TOKENS,
            held_tokens: 0,
        }
    }

    /// Buys with `sol_in` lamports; returns the tokens received.
    fn buy(&mut self, sol_in: u64) -> u64 {
        let k = u128::from(self.virtual_sol) * u128::from(self.virtual_tokens);
        let new_sol = u128::from(self.virtual_sol + sol_in);
        let tokens_out = (u128::from(self.virtual_tokens) - k.div_ceil(new_sol)) as u64;
        let tokens_out = tokens_out.min(self.real_tokens);
        self.virtual_sol += sol_in;
        self.real_sol += sol_in;
        self.virtual_tokens -= tokens_out;
        self.real_tokens -= tokens_out;
        self.held_tokens += tokens_out;
        tokens_out
    }

    /// Sells `tokens_in`; returns the lamports received.
    fn sell(&mut self, tokens_in: u64) -> u64 {
        let k = u128::from(self.virtual_sol) * u128::from(self.virtual_tokens);
        let new_tokens = u128::from(self.virtual_tokens + tokens_in);
        let sol_out = (u128::from(self.virtual_sol) - k.div_ceil(new_tokens)) as u64;
        let sol_out = sol_out.min(self.real_sol);
        self.virtual_tokens += tokens_in;
        self.real_tokens += tokens_in;
        self.held_tokens -= tokens_in;
        self.virtual_sol -= sol_out;
        self.real_sol -= sol_out;
        sol_out
    }
}

/// The schedule of a mock at a fixed rate, for `/metrics`: trade `k` is
/// meant to happen at `start_ns + k * 1e9 / rate_per_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockSchedule {
    /// Wall clock of the schedule's start, unix ns.
    pub start_ns: u64,
    /// Trades per second.
    pub rate_per_s: u64,
}

impl MockSchedule {
    /// Intended time of trade `k` (from 1), unix ns.
    pub fn intended_ns(&self, k: u64) -> u64 {
        let offset = u128::from(k) * 1_000_000_000 / u128::from(self.rate_per_s.max(1));
        self.start_ns.saturating_add(offset as u64)
    }
}

impl crate::metrics::RenderMetrics for MockSchedule {
    fn render(&self, out: &mut String) {
        use crate::metrics::sample;
        let help =
            "Mock source: wall clock (unix ns) its trade schedule starts at; trade k is meant for start + k/rate";
        sample(out, "klinecast_mock_schedule_start_ns", help, "gauge", self.start_ns);
        sample(out, "klinecast_mock_rate_per_s", "Mock source: trades per second", "gauge", self.rate_per_s);
    }
}

/// Generates binary TradeEvents at a fixed rate.
pub struct MockSource {
    config: MockConfig,
    rng: StdRng,
    curves: Vec<Curve>,
    /// When generation started; the rate is kept against it, so a slow
    /// consumer catches up instead of drifting.
    started: Instant,
    /// `started` on the wall clock, unix ns.
    started_ns: u64,
    /// Events handed out so far.
    generated: u64,
}

impl MockSource {
    /// A source for `config`; mints are drawn from the seed.
    pub fn new(config: MockConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let curves = (0..config.mints.max(1)).map(|_| Curve::new(random_key(&mut rng))).collect();
        let started_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Self { config, rng, curves, started: Instant::now(), started_ns, generated: 0 }
    }

    /// The second of the next trade's intended time (at a fixed rate): bars
    /// close when the schedule passes their end, so a trade handed out late
    /// after a stall still lands in its own bar instead of being late.
    pub fn hold_clock_at(&self) -> Option<i64> {
        self.fixed_rate().map(|s| (s.intended_ns(self.generated + 1) / 1_000_000_000) as i64)
    }

    /// The schedule, at a fixed rate (none when flat out), for `/metrics`.
    pub fn schedule(&self) -> Option<Arc<MockSchedule>> {
        self.fixed_rate().map(Arc::new)
    }

    fn fixed_rate(&self) -> Option<MockSchedule> {
        (self.config.rate_per_s > 0)
            .then_some(MockSchedule { start_ns: self.started_ns, rate_per_s: self.config.rate_per_s })
    }

    /// The mints traded, in order.
    pub fn mints(&self) -> Vec<Pubkey> {
        self.curves.iter().map(|c| c.mint).collect()
    }

    /// Events handed out so far.
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// Hands out the events due by now, at most `max`.
    pub fn fill(&mut self, max: usize, mut on_record: impl FnMut(Record<'_>)) -> Filled {
        let due = self.due_now().min(max as u64);
        if due == 0 {
            return Filled::Idle(self.until_next());
        }
        let schedule = self.fixed_rate();
        let now_s = unix_now_s();
        for k in self.generated + 1..=self.generated + due {
            // The intended second, or the wall clock's when flat out.
            let timestamp = schedule.map_or(now_s, |s| (s.intended_ns(k) / 1_000_000_000) as i64);
            let event = self.next_event(timestamp);
            let position = match schedule {
                Some(_) => Position { signature: k, ..Position::default() },
                None => Position::default(),
            };
            on_record(Record { program: Some(Program::PumpFun), bytes: &event.encode(), position });
        }
        self.generated += due;
        Filled::Records(due as usize)
    }

    fn due_now(&self) -> u64 {
        if self.config.rate_per_s == 0 {
            return u64::MAX;
        }
        let elapsed_us = self.started.elapsed().as_micros();
        let total = elapsed_us * u128::from(self.config.rate_per_s) / 1_000_000;
        (total as u64).saturating_sub(self.generated)
    }

    fn until_next(&self) -> Duration {
        let rate = self.config.rate_per_s.max(1);
        let next_us = (self.generated + 1).saturating_mul(1_000_000) / rate;
        let elapsed = self.started.elapsed();
        Duration::from_micros(next_us).saturating_sub(elapsed).max(Duration::from_micros(100))
    }

    fn next_event(&mut self, timestamp: i64) -> TradeEvent {
        let at = self.rng.random_range(0..self.curves.len());
        let curve = &self.curves[at];
        let p_buy = if curve.real_sol > STEER_REAL_SOL {
            0.3
        } else if curve.held_tokens < 1_000_000_000_000 {
            0.9
        } else {
            0.55
        };
        let is_buy = self.rng.random_bool(p_buy);
        let user = random_key(&mut self.rng);
        let (sol_amount, token_amount) = if is_buy {
            let sol_in = self.rng.random_range(10_000_000..2_000_000_000);
            let curve = &mut self.curves[at];
            let tokens = curve.buy(sol_in);
            (sol_in, tokens)
        } else {
            let share = self.rng.random_range(0.02..0.3);
            let curve = &mut self.curves[at];
            let tokens_in = ((curve.held_tokens as f64) * share) as u64;
            let sol = curve.sell(tokens_in);
            (sol, tokens_in)
        };
        let curve = &self.curves[at];
        TradeEvent {
            mint: curve.mint,
            sol_amount,
            token_amount,
            is_buy,
            user,
            timestamp,
            virtual_sol_reserves: curve.virtual_sol,
            virtual_token_reserves: curve.virtual_tokens,
            real_sol_reserves: curve.real_sol,
            real_token_reserves: curve.real_tokens,
            quote_mint: [0; 32],
            quote_amount: sol_amount,
            virtual_quote_reserves: curve.virtual_sol,
        }
    }
}

fn random_key(rng: &mut impl Rng) -> Pubkey {
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    key
}

/// Wall clock, unix seconds.
pub fn unix_now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(source: &mut MockSource, n: usize) -> Vec<TradeEvent> {
        let mut events = Vec::new();
        source.fill(n, |r| events.push(TradeEvent::decode(r.bytes).unwrap()));
        events
    }

    #[test]
    fn same_seed_same_trades() {
        let config = MockConfig { mints: 3, rate_per_s: 0, seed: 7 };
        let strip = |mut e: TradeEvent| {
            e.timestamp = 0;
            e
        };
        let a: Vec<_> = take(&mut MockSource::new(config), 500).into_iter().map(strip).collect();
        let b: Vec<_> = take(&mut MockSource::new(config), 500).into_iter().map(strip).collect();
        assert_eq!(a, b);
        let mints: std::collections::HashSet<_> = a.iter().map(|e| e.mint).collect();
        assert_eq!(mints.len(), 3);
    }

    #[test]
    fn curves_start_at_pump_fun_reserves_and_stay_consistent() {
        let mut source = MockSource::new(MockConfig { mints: 1, rate_per_s: 0, seed: 1 });
        let events = take(&mut source, 4000);
        let first = events[0];
        assert!(first.is_buy, "the first trade on a new curve is a buy");
        assert_eq!(first.virtual_sol_reserves, INITIAL_VIRTUAL_SOL + first.sol_amount);
        for e in &events {
            assert!(e.virtual_sol_reserves >= INITIAL_VIRTUAL_SOL - 1);
            assert_eq!(e.virtual_sol_reserves - e.real_sol_reserves, INITIAL_VIRTUAL_SOL);
            let price = e.price_sol_per_token().unwrap();
            assert!(price > 2.0e-8 && price < 1.0e-6, "price {price}");
        }
        assert!(events.iter().any(|e| !e.is_buy));
    }

    #[test]
    fn each_trade_names_its_place_in_the_schedule_and_its_intended_second() {
        let mut source = MockSource::new(MockConfig { mints: 1, rate_per_s: 1_000_000, seed: 1 });
        let schedule = source.schedule().unwrap();
        assert_eq!(schedule.intended_ns(1_000_000), schedule.start_ns + 1_000_000_000);
        std::thread::sleep(Duration::from_millis(5));
        let mut seen = Vec::new();
        source.fill(10, |r| seen.push((r.position, TradeEvent::decode(r.bytes).unwrap().timestamp)));
        assert_eq!(seen.len(), 10);
        for (i, (position, ts)) in seen.iter().enumerate() {
            let k = i as u64 + 1;
            assert_eq!((position.slot, position.signature), (0, k));
            assert_eq!(*ts, (schedule.intended_ns(k) / 1_000_000_000) as i64);
        }
        assert!(MockSource::new(MockConfig { rate_per_s: 0, ..MockConfig::default() }).schedule().is_none());
    }

    #[test]
    fn rate_limits_what_is_due() {
        let mut source = MockSource::new(MockConfig { mints: 1, rate_per_s: 10, seed: 1 });
        assert!(matches!(source.fill(100, |_| {}), Filled::Idle(_)));
        let mut source = MockSource::new(MockConfig { mints: 1, rate_per_s: 0, seed: 1 });
        assert_eq!(source.fill(100, |_| {}), Filled::Records(100));
    }
}
