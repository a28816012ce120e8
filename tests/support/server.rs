//! A `klinecast` server of a test on the tests' broker, on a fresh topic and
//! port, healthy before the test goes on, stopped when dropped.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::kafka::{brokers, fresh_topic};
use super::net::{self, free_port};
use super::process::{Child, log_path};
use super::ws::{Ws, ws};

/// Longest wait for a server's `/healthz`.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// Longest wait for one raw request's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Servers of one test binary run one at a time: their tests measure
/// delivery and timing, which a machine running several servers at once
/// (each with its own mock ingest) would distort.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A `klinecast` process started by a test, stopped (SIGTERM) when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub topic: String,
    _turn: MutexGuard<'static, ()>,
}

impl Server {
    /// Starts `klinecast <args>` on a fresh topic and port, and waits until
    /// `/healthz` answers.
    pub fn start(args: &[&str]) -> Server {
        Self::start_on(args, &fresh_topic("it-gw"), free_port())
    }

    /// Starts `klinecast <args>` on a given topic and port.
    pub fn start_on(args: &[&str], topic: &str, port: u16) -> Server {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (brokers, listen) = (brokers(), format!("127.0.0.1:{port}"));
        let args: Vec<&str> =
            args.iter().copied().chain(["--brokers", &brokers, "--topic", topic, "--listen", &listen]).collect();
        let mut child = Child::spawn("klinecast", &args, log_path(topic, &port.to_string()), false);
        if let Err(error) = net::wait_healthy(port, 1, HEALTHY_WITHIN, || child.alive()) {
            panic!("server did not become healthy ({error}): {}", child.log_text());
        }
        Server { child, port, topic: topic.to_owned(), _turn: turn }
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.pid
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    /// A raw HTTP/1.1 GET; returns the whole response.
    pub fn get(&self, path: &str) -> String {
        net::http_get(self.port, path)
    }

    /// Sends raw bytes, returns everything the server answers before closing.
    pub fn raw(&self, request: &[u8]) -> String {
        let answer = net::request(self.port, request, ANSWER_TIMEOUT).unwrap_or_default();
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// A connected WebSocket client on `path` (e.g. `/ws`).
    pub fn ws(&self, path: &str) -> Ws {
        ws(self.port, path)
    }

    /// The value of a Prometheus sample from `/metrics` (NaN if absent).
    pub fn metric(&self, name: &str) -> f64 {
        net::metric(self.port, name)
    }
}

/// Waits until `child` answers `/healthz` on `port`; panics with its log if
/// it exits first or does not answer within `limit`.
pub fn await_healthy(child: &mut Child, port: u16, limit: Duration) {
    if let Err(error) = net::wait_healthy(port, 1, limit, || child.alive()) {
        panic!("{} did not become healthy ({error}): {}", child.name, child.log_text());
    }
}
