//! Helpers of the end-to-end tests and the benchmarks, written once: every
//! test binary includes this module (`mod support;`), every benchmark too
//! (`#[path = "../tests/support/mod.rs"] mod support;`), and each uses the
//! part it needs.
//!
//! - [`net`]: free ports, plain HTTP requests, `/metrics`, waiting for
//!   `/healthz`.
//! - [`kafka`]: the tests' broker, fresh topic names, creating, reading back
//!   and deleting topics.
//! - [`process`]: child processes that are stopped on every path (SIGTERM,
//!   then SIGKILL), with their log, optionally under a hard time limit.
//! - [`server`]: a `klinecast` server of a test on the shared broker, one at
//!   a time per test binary.
//! - [`broker`]: a Kafka broker of a test's own.
//! - [`ws`]: WebSocket clients: commands and replies, frames read for a
//!   while, recorded on a thread of their own, or stuck on purpose.
//! - [`report`]: the numbers of `klinecast ingest`'s closing report line.

// Each test binary and benchmark uses a different subset of these; helper
// code of tests: a failed step panics, which fails the test.
#![allow(dead_code, missing_docs, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub mod broker;
pub mod kafka;
pub mod net;
pub mod process;
pub mod report;
pub mod server;
pub mod ws;

pub use broker::{Broker, BrokerSetup};
pub use kafka::{Msg, Record, brokers, create_topic, delete_topics, end_offset, fresh_topic, read_all, read_topic};
pub use net::{body, free_port, http_get, metric, wait_healthy};
pub use process::{Child, log_path};
pub use report::{count_after, count_before, ingest_report};
pub use server::{Server, await_healthy};
pub use ws::{
    Frame, Recorder, Recording, Ws, assert_no_gaps, bar_frames, bars, collect, command, send, stuck_client, ws,
};
