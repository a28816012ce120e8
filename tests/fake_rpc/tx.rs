//! Builders of [`Tx`]s that carry real event bytes inside realistic log
//! stacks, modelled on the recorded notifications and transactions:
//! compute-budget instructions first; pump.fun or PumpSwap invoked at depth 1
//! or by a router at depth 2; the fee program with its `Program return:`,
//! token-program invokes with `consumed` / `success` lines, system transfers;
//! the `Program data:` line followed by the program's self-invocation that
//! carries the same event as emit_cpi data (which also appears in
//! `meta.innerInstructions`).
//!
//! Options cover what a reader must cope with: a foreign program printing a
//! `Program data:` line with pump.fun's own discriminator, a failed
//! transaction (events logged, then an error), a failure inside the program,
//! a log cut by the node's "Log truncated" line, several events in one
//! transaction, logs-only or emit_cpi-only events.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::events::RealEvent;
use super::ledger::{Tx, TxVersion};
use super::{
    EMIT_CPI_TAG, FOREIGN_MNFST, PUMP_FUN, PUMP_FUN_EVENT_AUTHORITY, PUMP_SWAP, PUMP_SWAP_EVENT_AUTHORITY, SplitMix,
    signature_from_seed,
};

pub const COMPUTE_BUDGET: &str = "ComputeBudget111111111111111111111111111111";
pub const SYSTEM: &str = "11111111111111111111111111111111";
pub const TOKEN: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
pub const TOKEN_2022: &str = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
pub const PUMP_FEES: &str = "pfeeUxB6jkeY1Hxd7CsFCAjcbHA9rWtchMGdZ6VojVZ";
/// The program a failing guard instruction is attributed to (a tip/guard
/// program seen after pump.fun buys in the recorded notification 1).
pub const GUARD: &str = "troyXT7Ty3s2rjJe4bqWaroUrS4Fjd8rbHHNHxcACF4";
/// The line a node's log collector appends when a transaction's logs pass
/// its byte limit; nothing after it is kept.
pub const LOG_TRUNCATED: &str = "Log truncated";

/// Compute budget a built transaction starts with (the "of N" of the first
/// `consumed` line).
const COMPUTE_BUDGET_UNITS: u64 = 400_000;

/// How an event reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitForm {
    /// A `Program data:` line and the emit_cpi self-invocation (what pump.fun
    /// and PumpSwap do today).
    LogAndCpi,
    /// Only the `Program data:` line.
    LogOnly,
    /// Only the emit_cpi inner instruction (no `Program data:` line).
    CpiOnly,
}

/// How the transaction fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Every step runs and logs its events; then the router of the last step
    /// (or, with no router, a trailing guard instruction) fails with
    /// `custom program error: 0x{code}`. The events are in the logs but the
    /// transaction is reverted: a reader must skip it on `err`.
    AfterEvents(u32),
    /// The last step's program fails before emitting (AnchorError, then
    /// `failed: custom program error`); its router, if any, fails with it.
    InProgram(u32),
}

/// Where the logs are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Just before the `Program data:` line of the i-th event (0-based) of
    /// pump.fun / PumpSwap: that event and the later ones are lost from the
    /// logs (they stay in the emit_cpi inner instructions).
    BeforeEvent(usize),
    /// After the first n lines.
    AtLine(usize),
}

#[derive(Debug, Clone)]
enum Step {
    /// pump.fun or PumpSwap instruction `instruction` emitting `events`,
    /// invoked directly or by `router`.
    Program { program: String, instruction: String, events: Vec<RealEvent>, router: Option<String> },
    /// Another program printing `Program data:` lines (same bytes as real
    /// events, or recorded foreign lines).
    Foreign { program: String, payloads: Vec<String> },
}

static NEXT_SEED: AtomicU64 = AtomicU64::new(1);

/// Builds one [`Tx`].
#[derive(Debug, Clone)]
pub struct TxBuilder {
    slot: u64,
    block_time: Option<i64>,
    signature: Option<String>,
    seed: u64,
    compute_budget: bool,
    steps: Vec<Step>,
    failure: Option<Failure>,
    truncation: Option<Truncation>,
    version: TxVersion,
    emit: EmitForm,
    mentions: Vec<String>,
    payer: Option<String>,
}

impl TxBuilder {
    /// A transaction at `slot` with a fresh signature; block time defaults to
    /// the first event's timestamp (programs stamp events with the block's
    /// clock).
    pub fn new(slot: u64) -> TxBuilder {
        let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed) ^ (slot << 20);
        TxBuilder {
            slot,
            block_time: None,
            signature: None,
            seed,
            compute_budget: true,
            steps: Vec::new(),
            failure: None,
            truncation: None,
            version: TxVersion::V0,
            emit: EmitForm::LogAndCpi,
            mentions: Vec::new(),
            payer: None,
        }
    }

    pub fn block_time(mut self, seconds: i64) -> TxBuilder {
        self.block_time = Some(seconds);
        self
    }

    pub fn signature(mut self, signature: &str) -> TxBuilder {
        self.signature = Some(signature.to_owned());
        self
    }

    /// Seeds the signature and blockhash (for reproducible transactions).
    pub fn seed(mut self, seed: u64) -> TxBuilder {
        self.seed = seed;
        self
    }

    pub fn version(mut self, version: TxVersion) -> TxBuilder {
        self.version = version;
        self
    }

    pub fn emit(mut self, emit: EmitForm) -> TxBuilder {
        self.emit = emit;
        self
    }

    /// Leaves out the two compute-budget instructions.
    pub fn without_compute_budget(mut self) -> TxBuilder {
        self.compute_budget = false;
        self
    }

    /// Adds an account the transaction mentions without invoking it.
    pub fn mention(mut self, address: &str) -> TxBuilder {
        self.mentions.push(address.to_owned());
        self
    }

    pub fn payer(mut self, payer: &str) -> TxBuilder {
        self.payer = Some(payer.to_owned());
        self
    }

    /// A top-level instruction of the event's program (pump.fun or PumpSwap)
    /// emitting it; the instruction name follows the event (Buy / Sell /
    /// CreateV2 / ...).
    pub fn trade(self, event: RealEvent) -> TxBuilder {
        let instruction = instruction_for(&event);
        let program = event.program.clone();
        self.invoke(&program, &instruction, vec![event], None)
    }

    /// The same, with the program invoked by `router` (depth 2).
    pub fn trade_via(self, router: &str, event: RealEvent) -> TxBuilder {
        let instruction = instruction_for(&event);
        let program = event.program.clone();
        self.invoke(&program, &instruction, vec![event], Some(router))
    }

    /// One instruction of `program` named `instruction` emitting several
    /// events (a buy that completes the curve: TradeEvent + CompleteEvent).
    pub fn invoke(
        mut self,
        program: &str,
        instruction: &str,
        events: Vec<RealEvent>,
        router: Option<&str>,
    ) -> TxBuilder {
        self.steps.push(Step::Program {
            program: program.to_owned(),
            instruction: instruction.to_owned(),
            events,
            router: router.map(str::to_owned),
        });
        self
    }

    /// A foreign program (MNFSTqtC..., as in notification 2) printing a
    /// `Program data:` line with these exact bytes: pump.fun's discriminator
    /// and a valid TradeEvent, from the wrong program.
    pub fn foreign_lookalike(self, event: &RealEvent) -> TxBuilder {
        self.foreign(FOREIGN_MNFST, vec![event.base64()])
    }

    /// A foreign program printing these base64 payloads as `Program data:`.
    pub fn foreign(mut self, program: &str, payloads: Vec<String>) -> TxBuilder {
        self.steps.push(Step::Foreign { program: program.to_owned(), payloads });
        self
    }

    pub fn failed(mut self, failure: Failure) -> TxBuilder {
        self.failure = Some(failure);
        self
    }

    pub fn truncated(mut self, truncation: Truncation) -> TxBuilder {
        self.truncation = Some(truncation);
        self
    }

    /// The transaction.
    pub fn build(self) -> Tx {
        let mut rng = SplitMix(self.seed);
        let mut w = Writer::new();
        if self.compute_budget {
            for _ in 0..2 {
                w.top_level(COMPUTE_BUDGET, "Fj2Eoy", Vec::new());
                w.enter(COMPUTE_BUDGET, 1, None);
                w.leave_ok(150, false, None);
            }
        }
        let last = self.steps.len().saturating_sub(1);
        let mut err = None;
        for (index, step) in self.steps.iter().enumerate() {
            let failure = if index == last { self.failure } else { None };
            if let Some(code) = self.step(&mut w, step, failure) {
                err = Some(json!({"InstructionError": [w.top_index(), {"Custom": code}]}));
            }
        }
        if let (Some(Failure::AfterEvents(code)), false) = (self.failure, err.is_some()) {
            w.top_level(GUARD, "3Bxs4ffTu9T19DNF", Vec::new());
            w.enter(GUARD, 1, None);
            w.log("Instruction: FeeTransferWithTip");
            w.leave_failed(5873, code);
            err = Some(json!({"InstructionError": [w.top_index(), {"Custom": code}]}));
        }
        let mut logs = w.lines.clone();
        if let Some(cut) = self.truncation {
            let at = match cut {
                Truncation::BeforeEvent(i) => w.event_lines.get(i).copied().unwrap_or(logs.len()),
                Truncation::AtLine(n) => n.min(logs.len()),
            };
            logs.truncate(at);
            logs.push(LOG_TRUNCATED.to_owned());
        }
        let events: Vec<&RealEvent> = self
            .steps
            .iter()
            .flat_map(|step| match step {
                Step::Program { events, .. } => events.iter().collect::<Vec<_>>(),
                Step::Foreign { .. } => Vec::new(),
            })
            .collect();
        let payer = self
            .payer
            .clone()
            .or_else(|| events.iter().find_map(|event| event.pubkey_b58("user").ok()))
            .unwrap_or_else(|| bs58::encode(rng.bytes(32)).into_string());
        let mut writable = vec![payer];
        writable.extend(events.iter().flat_map(|event| event.pubkeys()));
        writable.extend(self.mentions.iter().cloned());
        let mut readonly = w.programs.clone();
        readonly.extend(w.authorities.iter().cloned());
        let keys = dedup(writable.iter().chain(readonly.iter()).cloned().collect());
        let readonly_count = keys.iter().filter(|key| readonly.contains(key) && !writable.contains(key)).count();
        let index_of = |key: &str| keys.iter().position(|k| k == key).unwrap_or(0);
        let instructions: Vec<Value> = w
            .top
            .iter()
            .map(|ix| {
                let accounts: Vec<usize> = ix.accounts.iter().map(|a| index_of(a)).collect();
                json!({"programIdIndex": index_of(&ix.program), "accounts": accounts, "data": ix.data, "stackHeight": 1})
            })
            .collect();
        let mut inner: Vec<Value> = Vec::new();
        for (top, group) in group_inner(&w.inner) {
            let items: Vec<Value> = group
                .iter()
                .map(|ix| {
                    let accounts: Vec<usize> = ix.accounts.iter().map(|a| index_of(a)).collect();
                    json!({"programIdIndex": index_of(&ix.program), "accounts": accounts, "data": ix.data, "stackHeight": ix.depth})
                })
                .collect();
            inner.push(json!({"index": top, "instructions": items}));
        }
        let block_time = self.block_time.or_else(|| events.iter().find_map(|event| event.i64("timestamp").ok()));
        Tx {
            signature: self.signature.clone().unwrap_or_else(|| signature_from_seed(self.seed)),
            slot: self.slot,
            block_time,
            err,
            logs,
            account_keys: keys,
            version: self.version,
            header: (1, 0, u8::try_from(readonly_count).unwrap_or(u8::MAX)),
            recent_blockhash: bs58::encode(rng.bytes(32)).into_string(),
            instructions: Value::Array(instructions),
            inner_instructions: Value::Array(inner),
            fee: 5000,
            compute_units_consumed: COMPUTE_BUDGET_UNITS - w.left,
            memo: None,
            recorded: None,
        }
    }

    /// Writes one step; returns the error code when the step failed.
    fn step(&self, w: &mut Writer, step: &Step, failure: Option<Failure>) -> Option<u32> {
        match step {
            Step::Foreign { program, payloads } => {
                w.top_level(program, "5jRcjdixRUDgSXo6LxDJuoTBxat3gYb7M", Vec::new());
                w.enter(program, 1, None);
                for payload in payloads {
                    w.lines.push(format!("Program data: {payload}"));
                }
                w.enter(TOKEN, 2, Some("hW7T8B5N9b1qz"));
                w.leave_ok(145, true, None);
                w.leave_ok(17_065, true, None);
                None
            }
            Step::Program { program, instruction, events, router } => {
                let depth = if router.is_some() { 2 } else { 1 };
                let top = router.as_deref().unwrap_or(program);
                w.top_level(top, "AJTQ2h9DXrC6F573BMjy5F8mZydGSH3Z9", Vec::new());
                if let Some(router) = router {
                    w.enter(router, 1, None);
                    w.log("Instruction: Swap");
                }
                let in_program = match failure {
                    Some(Failure::InProgram(code)) => Some(code),
                    _ => None,
                };
                self.program_block(w, program, instruction, events, depth, in_program);
                match (router, failure) {
                    (Some(_), Some(Failure::InProgram(code))) | (Some(_), Some(Failure::AfterEvents(code))) => {
                        w.leave_failed(4_960, code);
                        Some(code)
                    }
                    (Some(_), None) => {
                        w.leave_ok(4_960, true, None);
                        None
                    }
                    (None, Some(Failure::InProgram(code))) => Some(code),
                    (None, _) => None,
                }
            }
        }
    }

    /// pump.fun / PumpSwap at `depth`, with the inner calls of a buy or sell.
    fn program_block(
        &self,
        w: &mut Writer,
        program: &str,
        instruction: &str,
        events: &[RealEvent],
        depth: usize,
        fail: Option<u32>,
    ) {
        let swap = program == PUMP_SWAP;
        w.enter(program, depth, Some("5jRcjdixRUDgSXo6LxDJuoTBxat3gYb7M"));
        w.log(&format!("Instruction: {instruction}"));
        let trading = matches!(instruction, "Buy" | "Sell" | "BuyExactSolIn" | "BuyExactQuoteIn");
        if trading {
            w.enter(
                PUMP_FEES,
                depth + 1,
                Some("KX69VKtJ7u4EDGCgugJ8SfmqCGhKNcxLtNUnVNgfj3LY7dAv9Q9GdkSeYSQYsPYsAwRcrkb6BwCZyz"),
            );
            if swap {
                w.log("Instruction: GetFeesWithQuoteMint");
                w.leave_ok(6_107, true, Some("FAAAAAAAAAAFAAAAAAAAAF8AAAAAAAAA"));
            } else {
                w.log("Instruction: GetFees");
                w.leave_ok(3_302, true, Some("AAAAAAAAAABfAAAAAAAAAB4AAAAAAAAA"));
            }
        }
        if let Some(code) = fail {
            w.log(&anchor_error(program, code));
            w.leave_failed(50_559, code);
            return;
        }
        if trading {
            w.enter(TOKEN_2022, depth + 1, Some("ipcdzJvoExkzh"));
            w.log("Instruction: TransferChecked");
            w.leave_ok(if swap { 2_442 } else { 2_562 }, true, None);
            let (transfers, program_id, cost) = if swap { (4, TOKEN, 112) } else { (4, SYSTEM, 150) };
            for _ in 0..transfers {
                w.enter(program_id, depth + 1, Some("3Bxs4ffTu9T19DNF"));
                w.leave_ok(cost, program_id != SYSTEM, None);
            }
        } else {
            w.enter(SYSTEM, depth + 1, Some("11119os1e9qSs2u7TsThXqkBSRVFxhmYaFKFZ1waB2X7armDmvK3p5GmLdUxYdg3h7QSrL"));
            w.leave_ok(150, false, None);
        }
        let authority = if swap { PUMP_SWAP_EVENT_AUTHORITY } else { PUMP_FUN_EVENT_AUTHORITY };
        for event in events {
            if self.emit != EmitForm::CpiOnly {
                w.event_lines.push(w.lines.len());
                w.lines.push(event.program_data_line());
            }
            if self.emit != EmitForm::LogOnly {
                let mut data = EMIT_CPI_TAG.to_vec();
                data.extend_from_slice(&event.bytes);
                w.authorities.push(authority.to_owned());
                w.enter_with(program, depth + 1, bs58::encode(data).into_string(), vec![authority.to_owned()]);
                w.leave_ok(if swap { 2_113 } else { 2_125 }, true, None);
            }
        }
        w.leave_ok(if swap { 60_000 } else { 40_000 }, true, None);
    }
}

/// The instruction an event's program logs for it.
pub fn instruction_for(event: &RealEvent) -> String {
    match event.kind.as_str() {
        "TradeEvent" => match event.str("ix_name").ok().as_deref() {
            Some("buy_exact_sol_in") => "BuyExactSolIn".into(),
            _ if event.bool("is_buy").unwrap_or(true) => "Buy".into(),
            _ => "Sell".into(),
        },
        "BuyEvent" => "Buy".into(),
        "SellEvent" => "Sell".into(),
        "CreateEvent" => "CreateV2".into(),
        "CreatePoolEvent" => "CreatePool".into(),
        "CompletePumpAmmMigrationEvent" => "MigrateV2".into(),
        _ => "Buy".into(),
    }
}

/// The program log an Anchor program prints when it returns error `code`
/// (pump.fun's 6002 as recorded; others in Anchor's generic form).
fn anchor_error(program: &str, code: u32) -> String {
    if program == PUMP_FUN && code == 6002 {
        return "AnchorError thrown in programs/pump/src/lib.rs:444. Error Code: TooMuchSolRequired. Error Number: 6002. \
                Error Message: slippage: Too much SOL required to buy the given amount of tokens.."
            .to_owned();
    }
    if program == PUMP_SWAP && code == 6004 {
        return "AnchorError occurred. Error Code: ExceededSlippage. Error Number: 6004. Error Message: ExceededSlippage.".to_owned();
    }
    format!("AnchorError occurred. Error Code: Custom{code}. Error Number: {code}. Error Message: Custom{code}.")
}

fn dedup(keys: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for key in keys {
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Ix {
    top: usize,
    program: String,
    data: String,
    accounts: Vec<String>,
    depth: usize,
}

fn group_inner(inner: &[Ix]) -> Vec<(usize, Vec<Ix>)> {
    let mut groups: Vec<(usize, Vec<Ix>)> = Vec::new();
    for ix in inner {
        match groups.last_mut() {
            Some((top, items)) if *top == ix.top => items.push(ix.clone()),
            _ => groups.push((ix.top, vec![ix.clone()])),
        }
    }
    groups
}

/// An open invocation: its program and the compute budget left when it began.
#[derive(Debug)]
struct Frame {
    program: String,
    started_with: u64,
}

/// Writes a log stack and the instructions that go with it, keeping the
/// `consumed X of Y` arithmetic consistent (Y is what was left when the
/// program was invoked; X includes its callees).
#[derive(Debug)]
struct Writer {
    lines: Vec<String>,
    stack: Vec<Frame>,
    left: u64,
    top: Vec<Ix>,
    inner: Vec<Ix>,
    programs: Vec<String>,
    authorities: Vec<String>,
    /// Line index of each pump.fun / PumpSwap `Program data:` line.
    event_lines: Vec<usize>,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            lines: Vec::new(),
            stack: Vec::new(),
            left: COMPUTE_BUDGET_UNITS,
            top: Vec::new(),
            inner: Vec::new(),
            programs: Vec::new(),
            authorities: Vec::new(),
            event_lines: Vec::new(),
        }
    }

    fn top_index(&self) -> usize {
        self.top.len().saturating_sub(1)
    }

    fn top_level(&mut self, program: &str, data: &str, accounts: Vec<String>) {
        self.top.push(Ix {
            top: self.top.len(),
            program: program.to_owned(),
            data: data.to_owned(),
            accounts,
            depth: 1,
        });
    }

    fn enter(&mut self, program: &str, depth: usize, data: Option<&str>) {
        self.enter_with(program, depth, data.unwrap_or("1").to_owned(), Vec::new());
    }

    fn enter_with(&mut self, program: &str, depth: usize, data: String, accounts: Vec<String>) {
        if !self.programs.iter().any(|p| p == program) {
            self.programs.push(program.to_owned());
        }
        if depth >= 2 {
            self.inner.push(Ix { top: self.top_index(), program: program.to_owned(), data, accounts, depth });
        }
        self.lines.push(format!("Program {program} invoke [{depth}]"));
        self.stack.push(Frame { program: program.to_owned(), started_with: self.left });
    }

    fn log(&mut self, message: &str) {
        self.lines.push(format!("Program log: {message}"));
    }

    /// Ends the innermost invocation with success; builtins (system, compute
    /// budget) print no `consumed` line.
    fn leave_ok(&mut self, own_units: u64, consumed_line: bool, return_data: Option<&str>) {
        let Some(frame) = self.stack.pop() else { return };
        self.left = self.left.saturating_sub(own_units);
        if consumed_line {
            let used = frame.started_with - self.left;
            self.lines
                .push(format!("Program {} consumed {used} of {} compute units", frame.program, frame.started_with));
        }
        if let Some(data) = return_data {
            self.lines.push(format!("Program return: {} {data}", frame.program));
        }
        self.lines.push(format!("Program {} success", frame.program));
    }

    /// Ends the innermost invocation with a custom program error, as the
    /// runtime prints it.
    fn leave_failed(&mut self, own_units: u64, code: u32) {
        let Some(frame) = self.stack.pop() else { return };
        self.left = self.left.saturating_sub(own_units);
        let used = frame.started_with - self.left;
        self.lines.push(format!("Program {} consumed {used} of {} compute units", frame.program, frame.started_with));
        self.lines.push(format!("Program {} failed: custom program error: {code:#x}", frame.program));
    }
}
