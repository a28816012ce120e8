//! The real recorded pump.fun / PumpSwap events (`tests/fixtures/solana/
//! events.jsonl` and `extra/events.jsonl`), and trades derived from them.
//!
//! A derived event is a real event with some fields rewritten at their real
//! offsets (timestamp, amounts, reserves, mint, pool): its layout, its length
//! and every other byte stay those of the recorded one. That keeps every
//! layout version the chain has produced in play, trailing bytes included.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use thiserror::Error;

use super::layout::{self, Layout, LayoutError};
use super::{DEFAULT_PUBKEY, SplitMix};

const EVENTS_JSONL: &str = include_str!("../fixtures/solana/events.jsonl");
const EXTRA_EVENTS_JSONL: &str = include_str!("../fixtures/solana/extra/events.jsonl");

/// What can go wrong loading or deriving an event.
#[derive(Debug, Error)]
pub enum EventError {
    #[error("fixture line {line}: {reason}")]
    Fixture { line: usize, reason: String },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{0} is not a {1}")]
    WrongKind(String, &'static str),
    #[error("the template says ix_name {template:?}; a {wanted} needs a template recorded in that direction")]
    Direction { template: String, wanted: &'static str },
}

/// One real event (or one derived from it).
#[derive(Debug, Clone)]
pub struct RealEvent {
    /// Line number in its fixture file (0-based).
    pub index: usize,
    /// `TradeEvent`, `BuyEvent`, `SellEvent`, `CreateEvent`, ...
    pub kind: String,
    /// The program that emits it.
    pub program: String,
    /// Which IDL field prefix it matches, as the fixture says.
    pub version: String,
    /// The event bytes: 8-byte discriminator + Borsh fields (+ unknown tail).
    pub bytes: Vec<u8>,
    /// Every field, decoded; kept in step with `bytes` by the `with_*` edits.
    pub decoded: Value,
    /// `repo path commit` of the recording.
    pub source: String,
    /// Whether fields were rewritten after recording.
    pub derived: bool,
}

/// The 31 events of `events.jsonl`, in file order.
pub fn real_events() -> Vec<RealEvent> {
    parse_jsonl(EVENTS_JSONL).expect("tests/fixtures/solana/events.jsonl parses")
}

/// The events of `extra/events.jsonl` (migration, create-pool, more layouts).
pub fn extra_events() -> Vec<RealEvent> {
    parse_jsonl(EXTRA_EVENTS_JSONL).expect("tests/fixtures/solana/extra/events.jsonl parses")
}

/// The first real event of `kind` with exactly `length` bytes.
pub fn real_event(kind: &str, length: usize) -> RealEvent {
    real_events()
        .into_iter()
        .chain(extra_events())
        .find(|event| event.kind == kind && event.bytes.len() == length)
        .unwrap_or_else(|| panic!("no recorded {kind} of {length} bytes"))
}

fn parse_jsonl(text: &str) -> Result<Vec<RealEvent>, EventError> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| parse_line(index, line))
        .collect()
}

fn parse_line(index: usize, line: &str) -> Result<RealEvent, EventError> {
    let bad = |reason: &str| EventError::Fixture { line: index, reason: reason.to_owned() };
    let value: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| bad(key));
    let bytes = STANDARD.decode(text("program_data")?).map_err(|e| bad(&e.to_string()))?;
    let source = value.get("source").ok_or_else(|| bad("source"))?;
    let part = |key: &str| source.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(RealEvent {
        index,
        kind: text("kind")?,
        program: text("program")?,
        version: text("version")?,
        bytes,
        decoded: value.get("decoded").cloned().unwrap_or(Value::Null),
        source: format!("{} {} {}", part("repo"), part("path"), part("commit")),
        derived: false,
    })
}

impl RealEvent {
    /// The layout its discriminator names.
    pub fn layout(&self) -> &'static Layout {
        layout::layout_of(&self.bytes).expect("a recorded event has a known discriminator")
    }

    /// The event as a log line: `Program data: <base64>`.
    pub fn program_data_line(&self) -> String {
        format!("Program data: {}", self.base64())
    }

    pub fn base64(&self) -> String {
        STANDARD.encode(&self.bytes)
    }

    pub fn u64(&self, name: &str) -> Result<u64, LayoutError> {
        layout::get_u64(self.layout(), &self.bytes, name)
    }

    pub fn i64(&self, name: &str) -> Result<i64, LayoutError> {
        layout::get_i64(self.layout(), &self.bytes, name)
    }

    pub fn bool(&self, name: &str) -> Result<bool, LayoutError> {
        layout::get_bool(self.layout(), &self.bytes, name)
    }

    pub fn pubkey(&self, name: &str) -> Result<[u8; 32], LayoutError> {
        layout::get_pubkey(self.layout(), &self.bytes, name)
    }

    pub fn pubkey_b58(&self, name: &str) -> Result<String, LayoutError> {
        Ok(bs58::encode(self.pubkey(name)?).into_string())
    }

    pub fn str(&self, name: &str) -> Result<String, LayoutError> {
        layout::get_str(self.layout(), &self.bytes, name)
    }

    /// Whether the record carries `name` (older layouts end earlier).
    pub fn has(&self, name: &str) -> bool {
        self.layout().field(&self.bytes, name).is_ok()
    }

    /// Every public key in the record (the accounts a transaction carrying it
    /// would mention), in field order, without the all-zero key.
    pub fn pubkeys(&self) -> Vec<String> {
        let fields = self.layout().fields_in(&self.bytes).unwrap_or_default();
        fields
            .iter()
            .filter(|field| field.ty == layout::FieldType::Pubkey)
            .map(|field| bs58::encode(&self.bytes[field.offset..field.offset + 32]).into_string())
            .filter(|key| key != DEFAULT_PUBKEY)
            .collect()
    }

    /// A copy with the u64 field `name` set to `value`.
    pub fn with_u64(&self, name: &str, value: u64) -> Result<RealEvent, LayoutError> {
        let mut out = self.clone();
        layout::set_u64(self.layout(), &mut out.bytes, name, value)?;
        out.note(name, value.into());
        Ok(out)
    }

    /// A copy with the i64 field `name` set to `value`.
    pub fn with_i64(&self, name: &str, value: i64) -> Result<RealEvent, LayoutError> {
        let mut out = self.clone();
        layout::set_i64(self.layout(), &mut out.bytes, name, value)?;
        out.note(name, value.into());
        Ok(out)
    }

    /// A copy with the bool field `name` set to `value`.
    pub fn with_bool(&self, name: &str, value: bool) -> Result<RealEvent, LayoutError> {
        let mut out = self.clone();
        layout::set_bool(self.layout(), &mut out.bytes, name, value)?;
        out.note(name, value.into());
        Ok(out)
    }

    /// A copy with the pubkey field `name` set to `value`.
    pub fn with_pubkey(&self, name: &str, value: &[u8; 32]) -> Result<RealEvent, LayoutError> {
        let mut out = self.clone();
        layout::set_pubkey(self.layout(), &mut out.bytes, name, value)?;
        out.note(name, bs58::encode(value).into_string().into());
        Ok(out)
    }

    fn note(&mut self, name: &str, value: Value) {
        self.derived = true;
        if let Value::Object(map) = &mut self.decoded {
            map.insert(name.to_owned(), value);
        }
    }

    /// Whether this trade's quote is SOL (older layouts have no quote_mint).
    pub fn is_sol_quoted(&self) -> bool {
        self.pubkey_b58("quote_mint").map_or(true, |quote| quote == DEFAULT_PUBKEY)
    }

    /// A pump.fun trade derived from this `TradeEvent`: the spec's fields are
    /// written at their offsets, fees are recomputed from the recorded fee
    /// rates (rounded up, as the program does), and for a SOL coin the
    /// `quote_*` fields repeat the SOL ones as on chain; for a coin quoted in
    /// another mint the spec's `sol_*` values go to the `quote_*` fields and the
    /// SOL fields stay 0, as on chain.
    pub fn derive_trade(&self, spec: &TradeSpec) -> Result<RealEvent, EventError> {
        if self.kind != "TradeEvent" {
            return Err(EventError::WrongKind(self.kind.clone(), "TradeEvent"));
        }
        let mut out = self.clone();
        if let Some(mint) = &spec.mint {
            out = out.with_pubkey("mint", mint)?;
        }
        if let Some(user) = &spec.user {
            out = out.with_pubkey("user", user)?;
        }
        if let Some(is_buy) = spec.is_buy {
            out = out.direction(is_buy)?;
        }
        out = out.with_i64("timestamp", spec.timestamp)?;
        out = out.with_u64("token_amount", spec.token_amount)?;
        out = out.with_u64("virtual_token_reserves", spec.virtual_token_reserves)?;
        out = out.with_u64("real_token_reserves", spec.real_token_reserves)?;
        let sol_fields = ["sol_amount", "virtual_sol_reserves", "real_sol_reserves"];
        let quote_fields = ["quote_amount", "virtual_quote_reserves", "real_quote_reserves"];
        let values = [spec.sol_amount, spec.virtual_sol_reserves, spec.real_sol_reserves];
        if self.is_sol_quoted() {
            for (name, value) in sol_fields.iter().zip(values) {
                out = out.with_u64(name, value)?;
            }
            for (name, value) in quote_fields.iter().zip(values) {
                if out.has(name) {
                    out = out.with_u64(name, value)?;
                }
            }
        } else {
            for (name, value) in quote_fields.iter().zip(values) {
                out = out.with_u64(name, value)?;
            }
        }
        for (fee, bps) in [("fee", "fee_basis_points"), ("creator_fee", "creator_fee_basis_points")] {
            if out.has(fee) {
                let rate = out.u64(bps)?;
                out = out.with_u64(fee, fee_of(spec.sol_amount, rate))?;
            }
        }
        Ok(out)
    }

    fn direction(self, is_buy: bool) -> Result<RealEvent, EventError> {
        if self.has("ix_name") {
            let recorded = self.str("ix_name")?;
            if recorded.starts_with("buy") != is_buy {
                return Err(EventError::Direction { template: recorded, wanted: if is_buy { "buy" } else { "sell" } });
            }
        }
        Ok(self.with_bool("is_buy", is_buy)?)
    }

    /// A PumpSwap swap derived from this `BuyEvent` / `SellEvent`: amounts and
    /// pre-trade pool reserves set, the fee fields recomputed from the recorded
    /// rates (lp, protocol and coin-creator fees rounded up; the buyer pays
    /// `quote + fees`, the seller gets `quote − fees`), the rest as recorded.
    pub fn derive_swap(&self, spec: &SwapSpec) -> Result<RealEvent, EventError> {
        let (base, quote, with_lp, user, buy) = match self.kind.as_str() {
            "BuyEvent" => {
                ("base_amount_out", "quote_amount_in", "quote_amount_in_with_lp_fee", "user_quote_amount_in", true)
            }
            "SellEvent" => (
                "base_amount_in",
                "quote_amount_out",
                "quote_amount_out_without_lp_fee",
                "user_quote_amount_out",
                false,
            ),
            other => return Err(EventError::WrongKind(other.to_owned(), "BuyEvent or SellEvent")),
        };
        let mut out = self.clone();
        if let Some(pool) = &spec.pool {
            out = out.with_pubkey("pool", pool)?;
        }
        out = out.with_i64("timestamp", spec.timestamp)?;
        out = out.with_u64(base, spec.base_amount)?;
        out = out.with_u64(quote, spec.quote_amount)?;
        out = out.with_u64("pool_base_token_reserves", spec.pool_base_reserves)?;
        out = out.with_u64("pool_quote_token_reserves", spec.pool_quote_reserves)?;
        let lp = fee_of(spec.quote_amount, out.u64("lp_fee_basis_points")?);
        let protocol = fee_of(spec.quote_amount, out.u64("protocol_fee_basis_points")?);
        let creator = if out.has("coin_creator_fee") {
            fee_of(spec.quote_amount, out.u64("coin_creator_fee_basis_points")?)
        } else {
            0
        };
        out = out.with_u64("lp_fee", lp)?.with_u64("protocol_fee", protocol)?;
        if out.has("coin_creator_fee") {
            out = out.with_u64("coin_creator_fee", creator)?;
        }
        let (with_lp_value, user_value) = if buy {
            (spec.quote_amount + lp, spec.quote_amount + lp + protocol + creator)
        } else {
            (spec.quote_amount.saturating_sub(lp), spec.quote_amount.saturating_sub(lp + protocol + creator))
        };
        out = out.with_u64(with_lp, with_lp_value)?.with_u64(user, user_value)?;
        Ok(out)
    }
}

/// `ceil(amount × bps / 10 000)`, the programs' fee rounding.
pub fn fee_of(amount: u64, bps: u64) -> u64 {
    ((u128::from(amount) * u128::from(bps)).div_ceil(10_000)) as u64
}

/// The fields a derived pump.fun trade gets; the rest stay as recorded.
#[derive(Debug, Clone, Default)]
pub struct TradeSpec {
    pub mint: Option<[u8; 32]>,
    pub user: Option<[u8; 32]>,
    /// `None`: the template's direction.
    pub is_buy: Option<bool>,
    pub timestamp: i64,
    pub sol_amount: u64,
    pub token_amount: u64,
    pub virtual_sol_reserves: u64,
    pub virtual_token_reserves: u64,
    pub real_sol_reserves: u64,
    pub real_token_reserves: u64,
}

/// The fields a derived PumpSwap swap gets (reserves are the pool's before the
/// trade, as the events report them).
#[derive(Debug, Clone, Default)]
pub struct SwapSpec {
    pub pool: Option<[u8; 32]>,
    pub timestamp: i64,
    pub base_amount: u64,
    pub quote_amount: u64,
    pub pool_base_reserves: u64,
    pub pool_quote_reserves: u64,
}

/// A walk along one coin's pump.fun bonding curve: each step is a real
/// `TradeEvent` (the buy or the sell template, same layout version) rewritten
/// with the coin's mint, a block time and amounts that follow the curve's
/// constant product on virtual reserves, as the program computes them.
#[derive(Debug, Clone)]
pub struct CurveWalk {
    buy: RealEvent,
    sell: RealEvent,
    mint: [u8; 32],
    rng: SplitMix,
    pub timestamp: i64,
    pub virtual_sol_reserves: u64,
    pub virtual_token_reserves: u64,
    pub real_sol_reserves: u64,
    pub real_token_reserves: u64,
    /// Tokens bought so far (sells never exceed it).
    held: u64,
}

/// A fresh curve's reserves (pump.fun's launch parameters).
pub const INITIAL_VIRTUAL_SOL: u64 = 30_000_000_000;
pub const INITIAL_VIRTUAL_TOKENS: u64 = 1_073_000_000_000_000;
pub const INITIAL_REAL_TOKENS: u64 = 793_100_000_000_000;

impl CurveWalk {
    /// A walk with the current (358/359-byte) layout: the recorded buy and
    /// sell templates of `events.jsonl`.
    pub fn current(mint: [u8; 32], start_timestamp: i64, seed: u64) -> CurveWalk {
        CurveWalk::new(real_event("TradeEvent", 358), real_event("TradeEvent", 359), mint, start_timestamp, seed)
    }

    /// A walk from any buy/sell pair of templates.
    pub fn new(buy: RealEvent, sell: RealEvent, mint: [u8; 32], start_timestamp: i64, seed: u64) -> CurveWalk {
        CurveWalk {
            buy,
            sell,
            mint,
            rng: SplitMix(seed),
            timestamp: start_timestamp,
            virtual_sol_reserves: INITIAL_VIRTUAL_SOL,
            virtual_token_reserves: INITIAL_VIRTUAL_TOKENS,
            real_sol_reserves: 0,
            real_token_reserves: INITIAL_REAL_TOKENS,
            held: 0,
        }
    }

    /// The next trade: the clock moves 0..=2 s, a buy of 0.01..1 SOL or a sell
    /// of part of what was bought.
    pub fn step(&mut self) -> RealEvent {
        self.timestamp += self.rng.range(0, 2) as i64;
        let sell = self.held > 0 && self.rng.range(0, 2) == 0;
        if sell {
            let tokens = self.rng.range(1, self.held);
            self.sell_tokens(tokens)
        } else {
            let lamports = self.rng.range(10_000_000, 1_000_000_000);
            self.buy_lamports(lamports)
        }
    }

    /// A buy spending `lamports` (before fees).
    pub fn buy_lamports(&mut self, lamports: u64) -> RealEvent {
        let k = u128::from(self.virtual_sol_reserves) * u128::from(self.virtual_token_reserves);
        let new_sol = u128::from(self.virtual_sol_reserves) + u128::from(lamports);
        let new_tokens = k.div_ceil(new_sol);
        let tokens =
            (u128::from(self.virtual_token_reserves) - new_tokens).min(u128::from(self.real_token_reserves)) as u64;
        self.virtual_sol_reserves += lamports;
        self.virtual_token_reserves -= tokens;
        self.real_sol_reserves += lamports;
        self.real_token_reserves -= tokens;
        self.held += tokens;
        self.event(true, lamports, tokens)
    }

    /// A sell of `tokens` (at most what the walk bought).
    pub fn sell_tokens(&mut self, tokens: u64) -> RealEvent {
        let tokens = tokens.min(self.held);
        let k = u128::from(self.virtual_sol_reserves) * u128::from(self.virtual_token_reserves);
        let new_tokens = u128::from(self.virtual_token_reserves) + u128::from(tokens);
        let new_sol = k.div_ceil(new_tokens);
        let lamports = (u128::from(self.virtual_sol_reserves) - new_sol).min(u128::from(self.real_sol_reserves)) as u64;
        self.virtual_sol_reserves -= lamports;
        self.virtual_token_reserves += tokens;
        self.real_sol_reserves -= lamports;
        self.real_token_reserves += tokens;
        self.held -= tokens;
        self.event(false, lamports, tokens)
    }

    fn event(&self, is_buy: bool, lamports: u64, tokens: u64) -> RealEvent {
        let template = if is_buy { &self.buy } else { &self.sell };
        let spec = TradeSpec {
            mint: Some(self.mint),
            user: None,
            is_buy: Some(is_buy),
            timestamp: self.timestamp,
            sol_amount: lamports,
            token_amount: tokens,
            virtual_sol_reserves: self.virtual_sol_reserves,
            virtual_token_reserves: self.virtual_token_reserves,
            real_sol_reserves: self.real_sol_reserves,
            real_token_reserves: self.real_token_reserves,
        };
        template.derive_trade(&spec).expect("a recorded TradeEvent template takes a trade spec")
    }
}
