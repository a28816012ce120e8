//! Server-Sent Events (`/sse`) against the real broker, read by `curl -N`
//! as a dashboard or a shell user would: one JSON bar per event with the
//! series' `seq` as its id, a resume with `Last-Event-ID` that misses
//! nothing and repeats nothing, in both fan-out modes; an all-mints stream;
//! bad requests refused with 400 while other clients carry on; the
//! sessions gauge per transport.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, body};

/// One event of the stream.
#[derive(Debug, Clone)]
struct Event {
    /// `event:` (`message` when absent).
    name: String,
    /// `id:`, if given.
    id: Option<String>,
    /// `data:`, parsed.
    data: Value,
}

/// `curl -N` on a path of the server, its events on a channel.
struct Curl {
    child: Child,
    events: Receiver<Event>,
}

impl Curl {
    fn start(server: &Server, path: &str, last_event_id: Option<&str>) -> Curl {
        let url = format!("http://127.0.0.1:{}{path}", server.port);
        let mut args = vec!["-sN".to_owned(), url];
        if let Some(id) = last_event_id {
            args.extend(["-H".to_owned(), format!("Last-Event-ID: {id}")]);
        }
        let mut child =
            Command::new("curl").args(&args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("curl");
        let stdout = child.stdout.take().unwrap();
        let (send, events) = channel();
        std::thread::spawn(move || {
            let (mut name, mut id, mut data) = (None::<String>, None::<String>, String::new());
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.is_empty() {
                    if !data.is_empty() {
                        let event = Event {
                            name: name.take().unwrap_or_else(|| "message".into()),
                            id: id.take(),
                            data: serde_json::from_str(&data).unwrap_or(Value::Null),
                        };
                        if send.send(event).is_err() {
                            break;
                        }
                    }
                    (name, id, data) = (None, None, String::new());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data += v;
                }
            }
        });
        Curl { child, events }
    }

    /// Events until `until` holds for the list so far, or `limit` passes.
    fn read_until(&self, limit: Duration, until: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while !until(&got) {
            match self.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(event) => got.push(event),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        got
    }
}

impl Drop for Curl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first mint `/api/mints` lists, once it lists one.
fn some_mint(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mints: Value = serde_json::from_str(body(&server.get("/api/mints"))).unwrap_or(Value::Null);
        if let Some(mint) = mints[0]["mint"].as_str() {
            return mint.to_owned();
        }
        assert!(Instant::now() < deadline, "no mint listed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn bars(events: &[Event]) -> Vec<&Event> {
    events.iter().filter(|e| e.name == "message").collect()
}

fn seq(event: &Event) -> u64 {
    event.data["seq"].as_u64().unwrap()
}

/// Waits until the server's gauge `name` reads `want`.
fn gauge_reaches(server: &Server, name: &str, want: f64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if server.metric(name) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

const SSE_SESSIONS: &str = "klinecast_sessions{transport=\"sse\"}";

fn resume_with_last_event_id(fanout: &str) {
    let server = Server::start(&[
        "serve",
        "--mock-mints",
        "3",
        "--mock-rate",
        "300",
        "--fanout",
        fanout,
        "--push-interval",
        "0",
    ]);
    let mint = some_mint(&server);
    let path = format!("/sse?window=1s&mint={mint}");
    let first = Curl::start(&server, &path, None);
    let before = first.read_until(Duration::from_secs(20), |got| bars(got).len() >= 60);
    assert_eq!(before[0].name, "reply", "the first event is the acknowledgement: {before:?}");
    assert_eq!(before[0].data["type"], "subscribed");
    let seen = bars(&before);
    assert!(seen.len() >= 60, "{} bars in 20 s", seen.len());
    for event in &seen {
        assert_eq!(event.data["mint"], mint.as_str());
        assert_eq!(event.id.as_deref(), Some(seq(event).to_string().as_str()), "id is the seq");
    }
    assert!(seen.windows(2).all(|w| seq(w[1]) == seq(w[0]) + 1), "one series, seq +1 each");
    assert!(gauge_reaches(&server, SSE_SESSIONS, 1.0), "one SSE session open");
    let last = seen.last().unwrap().id.clone().unwrap();
    drop(first);
    assert!(gauge_reaches(&server, SSE_SESSIONS, 0.0), "the SSE session ended with curl");
    // Updates go on while nobody listens; then the stream is resumed.
    std::thread::sleep(Duration::from_millis(1500));
    let again = Curl::start(&server, &path, Some(&last));
    let after = again.read_until(Duration::from_secs(20), |got| bars(got).len() >= 40);
    let ack = &after[0].data;
    assert_eq!((ack["type"].as_str(), ack["since"].as_u64()), (Some("subscribed"), last.parse().ok()), "{ack}");
    assert!(ack["replayed"].as_u64().unwrap() > 0, "updates made while away are replayed: {ack}");
    assert!(after.iter().all(|e| e.data["type"] != "gap"), "the recent log holds 1.5 s: no gap");
    let resumed = bars(&after);
    assert_eq!(seq(resumed[0]), last.parse::<u64>().unwrap() + 1, "resumes right after the last id");
    assert!(resumed.windows(2).all(|w| seq(w[1]) == seq(w[0]) + 1), "nothing missed or repeated");
}

#[test]
fn per_client_stream_resumes_with_last_event_id() {
    resume_with_last_event_id("per-client");
}

#[test]
fn shared_stream_resumes_with_last_event_id() {
    resume_with_last_event_id("shared");
}

#[test]
fn all_mints_stream_and_bad_requests() {
    let server = Server::start(&["serve", "--mock-mints", "3", "--mock-rate", "300"]);
    let all = Curl::start(&server, "/sse?window=1s&format=binance", None);
    let got = all.read_until(Duration::from_secs(20), |got| {
        let mints: std::collections::HashSet<&str> = bars(got).iter().filter_map(|e| e.data["s"].as_str()).collect();
        mints.len() >= 2
    });
    assert_eq!(got[0].data["type"], "subscribed", "{:?}", got[0]);
    assert!(got[0].data["mint"].is_null(), "every mint");
    assert!(bars(&got).iter().all(|e| e.data["e"] == "kline"), "Binance's kline events");
    for (path, status) in [
        ("/sse", "400"),
        ("/sse?window=7m", "400"),
        ("/sse?window=1s&mint=notamint", "400"),
        ("/sse?window=1s&format=binary", "400"),
        ("/sse?window=1s&unit=usd", "400"),
    ] {
        let answer = server.get(path);
        assert_eq!(answer.split_whitespace().nth(1), Some(status), "{path}: {answer}");
    }
    let head = server.raw(b"HEAD /sse?window=1s HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    // The stream opened before the bad requests is still served.
    let more = all.read_until(Duration::from_secs(10), |got| bars(got).len() >= 5);
    assert!(bars(&more).len() >= 5, "the open stream carries on: {} events", more.len());
}
