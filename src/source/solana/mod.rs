//! The live source: pump.fun and PumpSwap trades straight from a Solana RPC
//! node.
//!
//! - [`stream`]: the WebSocket (`logsSubscribe` per program), a task on the
//!   ingest executor; finds dead and stale connections and reconnects.
//! - [`rpc`]: HTTP JSON-RPC on helper threads, rate-limited.
//! - [`backfill`]: listing and fetching what a gap missed.
//! - [`dedupe`]: (signature, event index) seen, over a bounded window.
//! - [`metrics`]: counters and health.
//!
//! [`SolanaSource`] ties them together on the ingest core: it hands out the
//! events of live notifications at once; after a reconnect (or from the
//! resume point after a restart) it holds the live ones back, backfills the
//! gap, hands out the gap's transactions oldest first, lists the gap a
//! second time once the node has indexed what it had just confirmed (see
//! [`backfill`]), then hands out the held ones, dropping what was already
//! handed out; while it does, it holds the bar clock at the last block time
//! it had, so bars of the gap stay open until their trades are in.
//!
//! After a restart it replays from the resume slot the bars in Kafka carry
//! and drops, by (signature, event index), every trade Kafka already holds
//! ([`Resume::applied`]), whatever order the node lists them in. Without a
//! resume point it starts from the live stream, and the first slot it
//! delivers is the earliest a later restart replays from: trades made
//! before the first start are never backfilled.

pub mod backfill;
pub mod dedupe;
pub mod metrics;
pub mod rpc;
pub mod stream;

use std::collections::VecDeque;

use rustc_hash::FxHashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backfill::{Gap, Phase};
use dedupe::Dedupe;
use metrics::LiveMetrics;
use rpc::{Done, Job, Purpose, RateLimiter, RpcClient};
use stream::{StreamConfig, StreamEvent};

use super::record::{Fact, Filled, Lookup, Record};
use super::tx::{TxEvents, pools_in};
use crate::codec::event::{Position, Program, trade_timestamp};

/// Live notifications waiting in the channel from the stream task; when
/// full, the task waits (and the node's socket buffers).
pub const STREAM_QUEUE: usize = 8192;
/// Jobs waiting for an RPC worker; beyond it the source keeps them.
pub const JOB_QUEUE: usize = 1024;
/// Most stream messages taken per `fill`, so one fill stays short.
const STREAM_PER_FILL: usize = 2048;
/// Slots the live stream may deliver out of order: a resume point is this
/// far behind the newest slot seen (about 13 s of slots).
pub const SAFE_MARGIN_SLOTS: u64 = 32;
/// A live slot this far below the resume point means the node's chain is
/// not the one the bars in Kafka came from.
pub const REGRESSION_SLOTS: u64 = 4 * SAFE_MARGIN_SLOTS;
/// How long `fill` asks the ingest loop to wait when nothing is ready.
const IDLE_WAIT: Duration = Duration::from_millis(5);

/// Commitment of the subscription and the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commitment {
    /// Voted on by a supermajority (about a second behind).
    Confirmed,
    /// Rooted (about 13 s behind).
    Finalized,
}

impl Commitment {
    /// The RPC's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Finalized => "finalized",
        }
    }
}

/// Settings of the live source.
#[derive(Debug, Clone)]
pub struct SolanaConfig {
    /// HTTP(S) JSON-RPC URL (keys may be in it: it is never logged whole).
    pub rpc_url: String,
    /// WebSocket URL.
    pub ws_url: String,
    /// Commitment.
    pub commitment: Commitment,
    /// HTTP requests per second, all methods.
    pub rps: f64,
    /// HTTP requests in flight (worker threads).
    pub concurrency: usize,
    /// Most signatures backfilled per program and gap.
    pub backfill_max: usize,
    /// How far the bar clock lags the wall clock.
    pub close_delay: Duration,
    /// Interval of WebSocket pings.
    pub ping_interval: Duration,
    /// A WebSocket silent this long is replaced.
    pub stale_after: Duration,
    /// The only root trusted for TLS to the node (else the system's).
    pub ca_file: Option<PathBuf>,
    /// Signatures remembered for deduplication.
    pub dedupe_window: usize,
    /// Live transactions held during a backfill; beyond it they are let go
    /// and a further backfill picks them up.
    pub max_buffered: usize,
}

/// Where a restarted ingest resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// Every trade before this slot is in Kafka.
    pub slot: u64,
    /// Latest bar time restored: the clock waits there until the replay of
    /// the missed slots is in.
    pub hold_s: i64,
    /// The trades of `slot` and later that Kafka holds: the replay drops
    /// them (their events' signature prefix and index).
    pub applied: Vec<Position>,
}

/// The `ws(s)://` URL for an `http(s)://` one: same host, port and path.
pub fn ws_url_for(rpc_url: &str) -> Result<String, String> {
    if let Some(rest) = rpc_url.strip_prefix("https://") {
        Ok(format!("wss://{rest}"))
    } else if let Some(rest) = rpc_url.strip_prefix("http://") {
        Ok(format!("ws://{rest}"))
    } else {
        Err(format!("--rpc-url {}: use an http:// or https:// URL", stream::redact(rpc_url)))
    }
}

/// A live transaction waiting its turn.
#[derive(Debug)]
struct Held {
    /// The subscription that delivered it.
    program: Program,
    tx: TxEvents,
    /// Its log was cut: it waits for the whole transaction (until
    /// [`RECOVER_WAIT`], then goes out as it is).
    recovering: Option<Instant>,
}

/// Longest a cut transaction holds back the ones behind it while its
/// `getTransaction` is out.
pub const RECOVER_WAIT: Duration = Duration::from_secs(10);

/// One record ready to hand out.
#[derive(Debug)]
struct Ready {
    program: Program,
    bytes: Vec<u8>,
    position: Position,
}

/// The live source.
pub struct SolanaSource {
    config: SolanaConfig,
    metrics: Arc<LiveMetrics>,
    /// The stream task's config, until the task is started on the first
    /// fill (it must run on the ingest executor).
    stream: Option<(StreamConfig, flume::Sender<StreamEvent>)>,
    events: flume::Receiver<StreamEvent>,
    jobs: flume::Sender<Job>,
    /// Jobs the queue had no room for, oldest first.
    backlog: VecDeque<Job>,
    done: flume::Receiver<Done>,
    /// Records to hand out, in order.
    ready: VecDeque<Ready>,
    facts: Vec<Fact>,
    dedupe: Dedupe,
    /// The gap being filled, if any.
    gap: Option<Gap>,
    next_gap_id: u64,
    /// The stream lost more while this gap was filled: another follows it.
    chain: bool,
    /// Live transactions not handed out yet, in arrival order: while a gap
    /// is filled, and behind a cut log waiting for its `getTransaction`.
    held: VecDeque<Held>,
    /// Last signature handed out of each subscription's stream, per
    /// program ([`Program::ALL`]): where a gap's listing starts.
    last_signature: [Option<String>; 2],
    /// Newest slot the stream delivered.
    newest_slot: u64,
    /// Block time of the newest trade handed out.
    newest_time_s: Option<i64>,
    /// Newest slot of a transaction handed out.
    handed_slot: u64,
    /// The resume slot before anything newer is known: where this run
    /// resumed, or the first slot its stream delivered.
    resume_slot: u64,
    /// The resume point this run started from (0: none).
    resumed_from: u64,
    /// Trades Kafka held at the start, by (signature prefix, event index);
    /// each is dropped once, when the replay brings it.
    in_kafka: FxHashSet<(u64, u32)>,
    /// Lookups to send.
    lookups: Vec<Lookup>,
    connected: bool,
    started: Instant,
}

impl SolanaSource {
    /// Starts the RPC workers (on this thread's affinity: call from the
    /// unpinned main thread) and prepares the stream, which starts on the
    /// first fill. `resume` is where a restart continues from.
    pub fn new(config: SolanaConfig, resume: Option<Resume>) -> Result<Self, String> {
        let metrics = Arc::new(LiveMetrics::default());
        let ca_pem = match &config.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("--rpc-ca-file {}: {e}", path.display()))?),
            None => None,
        };
        let limiter = Arc::new(RateLimiter::new(config.rps));
        let commitment = config.commitment.name();
        let client = RpcClient::new(&config.rpc_url, commitment, ca_pem.as_deref(), limiter, metrics.clone())?;
        let (jobs, job_rx) = flume::bounded(JOB_QUEUE);
        let (done_tx, done) = flume::bounded(JOB_QUEUE);
        rpc::spawn_workers(config.concurrency, Arc::new(client), job_rx, done_tx)
            .map_err(|e| format!("starting RPC workers: {e}"))?;
        let (events_tx, events) = flume::bounded(STREAM_QUEUE);
        let stream = StreamConfig {
            url: config.ws_url.clone(),
            commitment,
            ping_interval: config.ping_interval,
            stale_after: config.stale_after,
            ca_pem,
        };
        let mut source = Self {
            dedupe: Dedupe::new(config.dedupe_window),
            metrics,
            stream: Some((stream, events_tx)),
            events,
            jobs,
            backlog: VecDeque::new(),
            done,
            ready: VecDeque::new(),
            facts: Vec::new(),
            gap: None,
            next_gap_id: 1,
            chain: false,
            held: VecDeque::new(),
            last_signature: [None, None],
            newest_slot: 0,
            newest_time_s: None,
            handed_slot: 0,
            resume_slot: 0,
            resumed_from: 0,
            in_kafka: FxHashSet::default(),
            lookups: Vec::new(),
            connected: false,
            started: Instant::now(),
            config,
        };
        if let Some(resume) = resume.filter(|r| r.slot > 0) {
            tracing::info!(
                slot = resume.slot,
                trades_in_kafka = resume.applied.len(),
                "resuming: backfilling from the slot the bars in Kafka end at"
            );
            source.resume_slot = resume.slot;
            source.resumed_from = resume.slot;
            source.in_kafka = resume.applied.iter().map(|p| (p.signature, p.event)).collect();
            source.newest_time_s = Some(resume.hold_s);
            source.open_gap(resume.slot, Some(resume.hold_s), [None, None]);
        }
        Ok(source)
    }

    /// The counters, for `/metrics` and `/healthz`.
    pub fn metrics(&self) -> Arc<LiveMetrics> {
        self.metrics.clone()
    }

    /// Seconds the bar clock lags the wall clock.
    pub fn close_delay_s(&self) -> i64 {
        self.config.close_delay.as_secs() as i64
    }

    /// Every trade of a slot before this has been handed out.
    pub fn safe_slot(&self) -> u64 {
        match &self.gap {
            Some(gap) => gap.start_slot,
            None if self.newest_slot > 0 => self.newest_slot.saturating_sub(SAFE_MARGIN_SLOTS).max(self.resume_slot),
            None => self.resume_slot,
        }
    }

    /// The block time the bar clock must not pass: while a gap is filled,
    /// that of the last trade handed out before it; while transactions wait
    /// (behind a cut log, or not handed out yet), the earliest of theirs, so
    /// that waiting never makes a trade late.
    pub fn hold_clock_at(&self) -> Option<i64> {
        // Events without a time (pool creations, migrations) are few: a
        // short look finds the first trade.
        const LOOK: usize = 64;
        let gap = self.gap.as_ref().and_then(|g| g.hold_s);
        let ready = self.ready.iter().take(LOOK).find_map(|r| trade_timestamp(&r.bytes));
        // A held transaction that shows no trade (a log cut before its
        // events) may have an earlier block time than the ones behind it:
        // for it, the last time handed out.
        let held_time =
            |h: &Held| h.tx.events.iter().find_map(|(_, bytes)| trade_timestamp(bytes)).or(self.newest_time_s);
        let held = self.held.iter().take(LOOK).filter_map(held_time).min();
        [gap, ready, held].into_iter().flatten().min()
    }

    /// Queues a lookup for the RPC workers.
    pub fn look_up(&mut self, lookup: Lookup) {
        if !self.lookups.contains(&lookup) {
            self.lookups.push(lookup);
        }
    }

    /// Hands out the answers that arrived.
    pub fn take_facts(&mut self, on_fact: impl FnMut(Fact)) {
        self.facts.drain(..).for_each(on_fact);
    }

    /// A one-line summary for the end of a run.
    pub fn summary(&self) -> String {
        let m = &self.metrics;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "solana: {} notifications, {} reconnects, {} backfilled, {} duplicates dropped, {} failed skipped, \
             {} truncated, {} unrecoverable gaps",
            load(&m.notifications),
            load(&m.reconnects),
            load(&m.backfilled),
            load(&m.duplicates),
            load(&m.failed_tx),
            load(&m.truncated_logs),
            load(&m.unrecoverable_gaps),
        )
    }

    /// Takes in what the stream and the workers delivered, moves the gap
    /// on, and hands out at most `max` records.
    pub fn fill(&mut self, max: usize, mut on_record: impl FnMut(Record<'_>)) -> Filled {
        if let Some((config, events)) = self.stream.take() {
            glommio::spawn_local(stream::run(config, events, self.metrics.clone())).detach();
        }
        for _ in 0..STREAM_PER_FILL {
            match self.events.try_recv() {
                Ok(event) => self.on_stream(event),
                Err(_) => break,
            }
        }
        while let Ok(done) = self.done.try_recv() {
            self.on_done(done);
        }
        self.advance_gap();
        self.release_held();
        if !self.lookups.is_empty() {
            let lookups = std::mem::take(&mut self.lookups);
            for chunk in lookups.chunks(rpc::MAX_KEYS_PER_CALL) {
                self.backlog.push_back(Job::Lookups(chunk.to_vec()));
            }
        }
        self.send_jobs();
        let mut handed = 0;
        while handed < max {
            let Some(record) = self.ready.pop_front() else { break };
            on_record(Record { program: Some(record.program), bytes: &record.bytes, position: record.position });
            handed += 1;
        }
        if handed == 0 { Filled::Idle(IDLE_WAIT) } else { Filled::Records(handed) }
    }

    fn on_stream(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Connected => {
                self.connected = true;
                if let Some(gap) = &mut self.gap {
                    gap.begin();
                }
            }
            StreamEvent::Disconnected(_) => {
                let was_connected = std::mem::replace(&mut self.connected, false);
                match &self.gap {
                    // Lost more while filling: another gap follows this one.
                    Some(gap) if gap.phase() != Phase::Waiting => self.chain = true,
                    Some(_) => {}
                    None if was_connected || self.newest_slot > 0 => {
                        // The gap starts after the last transaction handed
                        // out: held ones (behind a cut log) are listed again
                        // with it, in their order.
                        let until = self.last_signature.clone();
                        let start = self.held.front().map_or(self.handed_slot, |h| h.tx.slot.min(self.handed_slot));
                        self.held.clear();
                        self.open_gap(start, self.newest_time_s, until);
                    }
                    None => {}
                }
            }
            StreamEvent::Tx(program, tx) => self.on_live(program, *tx),
        }
    }

    /// A live transaction: handed out now, or held while a gap is filled.
    fn on_live(&mut self, program: Program, tx: TxEvents) {
        let m = Arc::clone(&self.metrics);
        m.foreign_lines.fetch_add(u64::from(tx.foreign), Ordering::Relaxed);
        m.bad_data.fetch_add(u64::from(tx.bad_data), Ordering::Relaxed);
        self.newest_slot = self.newest_slot.max(tx.slot);
        if self.resume_slot == 0 {
            // No resume point: this run starts here, and so does the
            // earliest replay of a later restart.
            self.resume_slot = tx.slot;
        }
        if tx.slot.saturating_add(REGRESSION_SLOTS) < self.resumed_from {
            self.chain_went_back(tx.slot);
        }
        if let Some(gap) = &mut self.gap {
            gap.leave_to_stream(tx.slot);
        }
        if tx.failed {
            match &tx.signature {
                Some(signature) => self.count_failed(Position::signature_prefix(signature)),
                None => drop(m.failed_tx.fetch_add(1, Ordering::Relaxed)),
            }
            return;
        }
        if let Some(ts) = tx.events.first().and_then(|(_, b)| trade_timestamp(b)) {
            m.lag(unix_now_s_f64() - ts as f64);
        }
        let mut recovering = None;
        if tx.truncated {
            m.truncated_logs.fetch_add(1, Ordering::Relaxed);
            // The rest of its events: from getTransaction's inner
            // instructions; it waits for them in its place.
            if let Some(signature) = &tx.signature {
                let signature = bs58::encode(signature).into_string();
                self.backlog.push_back(Job::Transaction { signature, purpose: Purpose::Recover });
                recovering = Some(Instant::now());
            }
        }
        if self.held.len() >= self.config.max_buffered && self.gap.is_some() {
            // Let the held ones go: the next gap lists them again.
            self.held.clear();
            self.chain = true;
        }
        self.held.push_back(Held { program, tx, recovering });
        self.release_held();
    }

    /// Hands out held transactions from the front while no gap is being
    /// filled and the front is not waiting for its recovery.
    fn release_held(&mut self) {
        while self.gap.is_none() {
            let Some(front) = self.held.front() else { break };
            let full = self.held.len() > self.config.max_buffered;
            if !full && front.recovering.is_some_and(|since| since.elapsed() < RECOVER_WAIT) {
                break;
            }
            if let Some(held) = self.held.pop_front() {
                if held.recovering.is_some() {
                    tracing::warn!(
                        slot = held.tx.slot,
                        "a cut log's transaction could not be fetched in time; its logged events go out"
                    );
                }
                if let Some(signature) = &held.tx.signature {
                    self.last_signature[program_index(held.program)] = Some(bs58::encode(signature).into_string());
                }
                self.hand_out(held.tx);
            }
        }
        self.metrics.buffered.store(self.held.len() as u64, Ordering::Relaxed);
    }

    /// The node delivered a slot far below the resume point: its chain is not
    /// the one the bars in Kafka came from. Its trades are applied (they are
    /// this chain's), and the operator is told, loudly and on `/healthz`.
    fn chain_went_back(&self, slot: u64) {
        let seen = self.metrics.chain_regressions.fetch_add(1, Ordering::Relaxed);
        if seen == 0 || (seen + 1).is_multiple_of(1000) {
            tracing::error!(
                slot,
                resume_slot = self.resumed_from,
                transactions = seen + 1,
                "the node's slots are far below the resume point of the bars in Kafka: a reset cluster, \
                 another network or a wrong --rpc-url? Its trades are applied; the bars in Kafka before them \
                 came from another chain"
            );
        }
    }

    /// A backfilled transaction: counted as live ones are, then handed out.
    fn hand_out_backfilled(&mut self, tx: TxEvents, second_listing: bool) {
        let m = &self.metrics;
        m.backfilled.fetch_add(1, Ordering::Relaxed);
        if second_listing {
            m.found_on_second_listing.fetch_add(1, Ordering::Relaxed);
        }
        m.foreign_lines.fetch_add(u64::from(tx.foreign), Ordering::Relaxed);
        m.bad_data.fetch_add(u64::from(tx.bad_data), Ordering::Relaxed);
        self.hand_out(tx);
    }

    /// Counts a failed transaction once, however many times the stream and
    /// the listings of gaps show it (its signature is remembered in the
    /// dedupe window as if its first event had gone out: a failed
    /// transaction hands out none).
    fn count_failed(&mut self, signature: u64) {
        if self.dedupe.first_time(signature, 0) {
            self.metrics.failed_tx.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a transaction's events that were not handed out before.
    fn hand_out(&mut self, tx: TxEvents) {
        let signature = tx.signature.as_ref().map_or(0, Position::signature_prefix);
        self.handed_slot = self.handed_slot.max(tx.slot);
        for pool in pools_in(&tx) {
            self.facts.push(Fact::Pool(pool));
        }
        for (index, (event_program, bytes)) in tx.events.into_iter().enumerate() {
            if !self.in_kafka.is_empty() && self.in_kafka.remove(&(signature, index as u32)) {
                self.dedupe.first_time(signature, index);
                self.metrics.already_in_kafka.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if tx.signature.is_some() && !self.dedupe.first_time(signature, index) {
                self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some(ts) = trade_timestamp(&bytes) {
                self.newest_time_s = Some(self.newest_time_s.map_or(ts, |t| t.max(ts)));
            }
            let position = Position { slot: tx.slot, signature, event: index as u32 };
            self.ready.push_back(Ready { program: event_program, bytes, position });
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Signatures { program, page } => {
                if let Some(gap) = &mut self.gap
                    && let Some(overflow) = gap.on_page(program, page)
                {
                    self.metrics.unrecoverable_gaps.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        program = program.address(),
                        from_slot = overflow.from_slot,
                        to_slot = overflow.first_listed_slot,
                        bound = self.config.backfill_max,
                        "gap larger than the backfill bound: trades of these slots are lost; the newest are filled"
                    );
                }
            }
            Done::Transaction { purpose: Purpose::Backfill { gap: id, index }, tx, .. } => {
                if let Some(gap) = self.gap.as_mut().filter(|g| g.id == id) {
                    gap.on_tx(index, tx);
                }
            }
            Done::Transaction { purpose: Purpose::Recover, tx, signature } => {
                let key = tx_signature(&signature);
                let held = self.held.iter_mut().find(|h| h.recovering.is_some() && h.tx.signature == key);
                match (tx, held) {
                    (Ok(Some(tx)), Some(held)) if !tx.failed => {
                        self.metrics.truncated_recovered.fetch_add(1, Ordering::Relaxed);
                        // The same transaction, whole: its events keep their
                        // indices, so what went out already is dropped.
                        *held = Held { program: held.program, tx, recovering: None };
                    }
                    (other, held) => {
                        tracing::warn!(%signature, ok = other.is_ok(), "a cut log's transaction could not be fetched; its logged events go out");
                        if let Some(held) = held {
                            held.recovering = None;
                        }
                    }
                }
                self.release_held();
            }
            Done::Facts(facts) => self.facts.extend(facts),
        }
    }

    /// Starts a gap from `start_slot`.
    fn open_gap(&mut self, start_slot: u64, hold_s: Option<i64>, until: [Option<String>; 2]) {
        let gap = Gap::new(self.next_gap_id, start_slot, hold_s, until, self.config.backfill_max);
        self.start_gap(gap);
    }

    /// Makes `gap` (with id `next_gap_id`) the one being filled.
    fn start_gap(&mut self, mut gap: Gap) {
        self.next_gap_id += 1;
        if self.connected {
            gap.begin();
        }
        self.gap = Some(gap);
        self.metrics.backfilling.store(1, Ordering::Relaxed);
    }

    /// How long after a gap's first listing began its second one starts:
    /// the close delay, the time a trade may take to reach ingest anyway
    /// (a slot confirmed just after the first listing, by a node that
    /// registers a new subscription a moment after it answers it, is
    /// listed by then). The clock is held meanwhile, so what it finds is on
    /// time for its bars; live updates wait as long, once per reconnect.
    fn settle(&self) -> Duration {
        self.config.close_delay
    }

    /// Sends the gap's jobs, hands out what it has ready, and closes it when
    /// it is done.
    fn advance_gap(&mut self) {
        let window = self.config.concurrency * 2;
        let settle = self.settle();
        let Some(gap) = &mut self.gap else { return };
        let dedupe = &self.dedupe;
        // A second listing also skips what the new stream delivered and
        // holds (its first slot is listed again, in case it came in part):
        // those go out after the gap, behind the ones the stream missed,
        // which ran before them.
        let held: FxHashSet<u64> = if gap.second && gap.phase() == Phase::Fetching {
            self.held.iter().filter_map(|h| h.tx.signature.as_ref().map(Position::signature_prefix)).collect()
        } else {
            FxHashSet::default()
        };
        gap.skip_known(|sig| {
            tx_signature(&sig.signature).is_some_and(|s| {
                let prefix = Position::signature_prefix(&s);
                dedupe.contains(prefix) || held.contains(&prefix)
            })
        });
        self.backlog.extend(gap.jobs(window, Instant::now()));
        let mut released = Vec::new();
        gap.release(|program, tx| released.push((program, tx)));
        let second = gap.second;
        if gap.phase() != Phase::Done {
            for (_, tx) in released {
                self.hand_out_backfilled(tx, second);
            }
            return;
        }
        let (lost, listed, elapsed) = (gap.lost, gap.len(), self.started.elapsed());
        let failed: Vec<u64> = std::mem::take(&mut gap.failed)
            .iter()
            .filter_map(|s| super::tx::signature_of(s))
            .map(|s| Position::signature_prefix(&s))
            .collect();
        let start_slot = gap.start_slot;
        let (again, second_listing) = (gap.again(self.next_gap_id), gap.second_listing(self.next_gap_id, settle));
        for (_, tx) in released {
            self.hand_out_backfilled(tx, second);
        }
        if lost > 0 {
            self.metrics.unrecoverable_gaps.fetch_add(1, Ordering::Relaxed);
            self.metrics.lost_transactions.fetch_add(lost, Ordering::Relaxed);
            tracing::error!(
                lost,
                from_slot = start_slot,
                "backfill: the node did not return some transactions; they are lost"
            );
        }
        for signature in failed {
            self.count_failed(signature);
        }
        if second {
            tracing::info!(listed, lost, uptime_s = elapsed.as_secs(), "gap filled (second listing)");
        } else {
            tracing::info!(listed, lost, uptime_s = elapsed.as_secs(), "gap listed once");
        }
        self.gap = None;
        self.metrics.backfilling.store(0, Ordering::Relaxed);
        if std::mem::take(&mut self.chain) {
            // The stream lost more (or let held ones go) while this gap was
            // filled: the same gap is listed again from where it started,
            // the held ones included, so they are dropped here and come back
            // in order; what went out already is skipped.
            self.held.clear();
            self.start_gap(again);
            return;
        }
        if !second {
            // Listed once: once more when the node has indexed what it had
            // just confirmed (the held transactions wait: they come after).
            self.start_gap(second_listing);
            let slots = self.held.iter().map(|h| h.tx.slot).min();
            if let (Some(gap), Some(slot)) = (&mut self.gap, slots) {
                gap.leave_to_stream(slot);
            }
            return;
        }
        self.release_held();
    }

    /// Moves jobs from the backlog into the workers' queue while it has room.
    fn send_jobs(&mut self) {
        while let Some(job) = self.backlog.pop_front() {
            if let Err(flume::TrySendError::Full(job) | flume::TrySendError::Disconnected(job)) =
                self.jobs.try_send(job)
            {
                self.backlog.push_front(job);
                break;
            }
        }
    }
}

fn program_index(program: Program) -> usize {
    match program {
        Program::PumpFun => 0,
        Program::PumpSwap => 1,
    }
}

fn tx_signature(text: &str) -> Option<[u8; 64]> {
    super::tx::signature_of(text)
}

fn unix_now_s_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_follows_the_rpc_url() {
        assert_eq!(ws_url_for("https://api.mainnet-beta.solana.com").unwrap(), "wss://api.mainnet-beta.solana.com");
        assert_eq!(ws_url_for("http://127.0.0.1:8899/path?k=1").unwrap(), "ws://127.0.0.1:8899/path?k=1");
        assert!(ws_url_for("ftp://x").is_err());
    }
}
