//! A fake Solana RPC node for the tests, and the builders that feed it real
//! pump.fun / PumpSwap data.
//!
//! Nothing here connects anywhere but 127.0.0.1: the node listens on a port
//! of its own and serves, on that one port, HTTP JSON-RPC (`POST /`) and
//! WebSocket upgrades, optionally over TLS, as public Solana endpoints do.
//!
//! Module map, from the bytes up:
//! - [`layout`]: the Borsh layouts of the events and the `Pool` account, taken
//!   from pump-fun/pump-public-docs `idl/*.json`; field offsets and rewrites.
//!   No I/O.
//! - [`events`]: the real recorded events of `tests/fixtures/solana/`, and
//!   trades derived from them by rewriting fields at their real offsets.
//! - [`fixtures`]: the real recorded RPC messages (notifications, transactions,
//!   pool accounts) as ledger entries.
//! - [`tx`]: [`Tx`] builders that put real event bytes inside realistic log
//!   stacks (compute budget, routers, token programs, failures, truncation,
//!   emit_cpi inner instructions).
//! - [`ledger`]: what the node knows: transactions in slot order, accounts.
//!   Answers `getSignaturesForAddress` / `getTransaction` / account queries.
//! - [`rpc`]: the JSON-RPC envelope (parse, results, the errors real nodes
//!   give). No I/O.
//! - [`methods`]: HTTP JSON-RPC methods against the ledger. No I/O.
//! - [`http`]: the HTTP/1.1 side of a connection (request heads, bodies,
//!   upgrades); [`ws`]: one WebSocket session (subscriptions, notifications).
//! - [`tls`]: a throwaway CA and server certificate made with the `openssl` CLI.
//! - [`node`]: [`FakeNode`]: the listener, connection registry and the
//!   controls a test drives (publish, drop, stale, refuse, 429s, request log).
//! - [`client`]: small blocking clients a test uses to talk to the node
//!   (HTTP JSON-RPC and WebSocket, plain or TLS with a given CA).
//!
//! Use from an integration test with `mod fake_rpc;`. An end-to-end test
//! reads like this:
//!
//! ```text
//! use fake_rpc::{FakeNode, NodeOptions, Mode, TxBuilder, CurveWalk, PUMP_FUN, PUMP_SWAP};
//! use fake_rpc::fixtures::RealPool;
//!
//! let node = FakeNode::start(NodeOptions { tls: true, ..NodeOptions::default() });
//! // klinecast ingest --source solana --rpc-url {node.http_url()} --rpc-ws-url {node.ws_url()}
//! //                  --rpc-ca-file {node.ca_pem_path()}
//! let pool = RealPool::current();                       // a real Pool account
//! node.set_account_full(pool.pubkey.as_deref().unwrap(), pool.account());
//! assert!(node.wait_for_subscriptions(PUMP_FUN, 1, WAIT) && node.wait_for_subscriptions(PUMP_SWAP, 1, WAIT));
//! let mut walk = CurveWalk::current(fake_rpc::pubkey_from_seed(1), 1_790_000_000, 7);
//! let mut slot = 450_000_000;
//! for _ in 0..100 { slot += 1; node.publish(TxBuilder::new(slot).trade(walk.step()).build()); }
//! node.drop_connections();                              // abrupt close; trades keep coming
//! for _ in 0..50 { slot += 1; node.publish(TxBuilder::new(slot).trade(walk.step()).build()); }
//! // the client reconnects and backfills: node.requests_for("getSignaturesForAddress") ...
//! node.make_current_stale();                            // or node.set_mode(Mode::Stale)
//! node.fail_next_http(3, 429, Some(1));                 // the backfill is rate limited
//! // assert on node.requests(): spacing of the retries, no request flood
//! ```

#![allow(dead_code, missing_docs)] // a test-support module: each test uses a part of it
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

pub mod client;
pub mod events;
pub mod fixtures;
pub mod http;
pub mod layout;
pub mod ledger;
pub mod methods;
pub mod node;
pub mod rpc;
pub mod tls;
pub mod tx;
pub mod ws;

#[allow(unused_imports)] // the names a test is most likely to want, whichever it uses
pub use events::{CurveWalk, RealEvent, SwapSpec, TradeSpec};
#[allow(unused_imports)]
pub use ledger::{Account, Tx, TxVersion};
#[allow(unused_imports)]
pub use node::{FakeNode, HttpFailure, Mode, NodeOptions, RateLimit, Request, Transport};
#[allow(unused_imports)]
pub use tx::{EmitForm, TxBuilder};

/// The pump.fun bonding-curve program.
pub const PUMP_FUN: &str = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P";
/// The PumpSwap AMM program.
pub const PUMP_SWAP: &str = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA";
/// pump.fun's Anchor event authority (the account of its emit_cpi self-calls).
pub const PUMP_FUN_EVENT_AUTHORITY: &str = "Ce6TQqeHC9p8KetsN6JsjHK7UTZk7nasjjnr7XxXp9F1";
/// PumpSwap's Anchor event authority.
pub const PUMP_SWAP_EVENT_AUTHORITY: &str = "GS4CU59F31iL7aR2Q8zVS8DRrcRnXX1yjQ66TqNVQnaR";
/// A router seen CPI-ing into pump.fun in the recorded notification 2.
pub const ROUTER_DFLOW: &str = "DF1ow4tspfHX9JwWJsAb9epbkA8hmpSEAtxXy1V27QBH";
/// The router of the recorded PumpSwap sell (chainstack graduated market).
pub const ROUTER_2A47: &str = "2a47Lm8m8MHfwfBTgZPkj7qKCTqEm3sgasSWXGcydCNb";
/// The other program of notification 2 that prints `Program data:` lines.
pub const FOREIGN_MNFST: &str = "MNFSTqtC93rEfYHB6hF82sKdZpUDFWkViLByLd1k1Ms";
/// Anchor's emit_cpi tag: the first 8 bytes of an event carried as
/// inner-instruction data.
pub const EMIT_CPI_TAG: [u8; 8] = [0xe4, 0x45, 0xa5, 0x2e, 0x51, 0xcb, 0x9a, 0x1d];
/// The all-zero public key, which pump.fun uses for "SOL" in `quote_mint`.
pub const DEFAULT_PUBKEY: &str = "11111111111111111111111111111111";

/// Where the real fixtures live (`tests/fixtures/solana`).
pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/solana")
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes; returns
/// whether it held. For waiting on an event a test cannot be told about.
pub fn wait_until(timeout: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A small deterministic generator (splitmix64) for signatures, blockhashes
/// and walks: tests must be reproducible, and no crate is needed for this.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// A base58 transaction signature (64 bytes) from a seed.
pub fn signature_from_seed(seed: u64) -> String {
    bs58::encode(SplitMix(seed ^ 0x5eed_5167).bytes(64)).into_string()
}

/// A base58 public key (32 bytes) from a seed: distinct, valid-looking keys
/// for mints and pools derived in tests.
pub fn pubkey_from_seed(seed: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(&SplitMix(seed ^ 0x00c0_ffee).bytes(32));
    key
}
