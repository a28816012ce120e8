//! Helpers shared by the end-to-end tests: the real broker's address, fresh
//! topic names, and reading a topic back with a plain consumer.

#![allow(dead_code, missing_docs)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use klinecast::codec::bar::{self, Bar};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The broker the tests use: `KLINECAST_TEST_BROKERS`, else the one
/// `scripts/kafka-up.sh` starts.
pub fn brokers() -> String {
    std::env::var("KLINECAST_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A topic name no other test run uses.
pub fn fresh_topic(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A consumer of `topic` on `brokers` assigned every partition from the
/// beginning (end-of-partition events on request), and the partition count.
pub fn reader_from_beginning(brokers: &str, topic: &str, partition_eof: bool) -> (BaseConsumer, i32) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", fresh_topic("it-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", partition_eof.to_string())
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning).expect("offset");
    }
    consumer.assign(&list).expect("assign");
    (consumer, partitions)
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: String,
    pub bar: Result<Bar, String>,
}

/// Reads every message of `topic` from the beginning until each partition
/// reports its end (after at least `min` messages), or `timeout`.
pub fn read_topic(topic: &str, min: usize, timeout: Duration) -> Vec<Record> {
    let (consumer, partitions) = reader_from_beginning(&brokers(), topic, true);
    let mut records = Vec::new();
    let mut at_end = vec![false; partitions as usize];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && !(records.len() >= min && at_end.iter().all(|&e| e)) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                at_end[m.partition() as usize] = false;
                records.push(Record {
                    partition: m.partition(),
                    key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    bar: bar::access(m.payload().unwrap_or_default()).map(|b| b.to_bar()).map_err(|e| e.to_string()),
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    records
}

/// Servers of one test binary run one at a time: their tests measure
/// delivery and timing, which a machine running several servers at once
/// (each with its own mock ingest) would distort.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A `klinecast` process started by a test, stopped (SIGTERM) when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub port: u16,
    pub topic: String,
    pub log: std::path::PathBuf,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
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
        let topic = topic.to_owned();
        let log = std::env::temp_dir().join(format!("{topic}-{port}.log"));
        let listen = format!("127.0.0.1:{port}");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_klinecast"))
            .args(args)
            .args(["--brokers", &brokers(), "--topic", &topic, "--listen", &listen])
            .env("KLINECAST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start klinecast");
        let server = Server { child, port, topic, log, _turn: turn };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if server.get("/healthz").starts_with("HTTP/1.1 200") {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not become healthy: {}", server.log_text());
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A raw HTTP/1.1 GET; returns the whole response.
    pub fn get(&self, path: &str) -> String {
        self.raw(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port).as_bytes())
    }

    /// Sends raw bytes, returns everything the server answers before closing.
    pub fn raw(&self, request: &[u8]) -> String {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return String::new() };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = stream.write_all(request);
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A connected WebSocket client on `path` (e.g. `/ws`).
    pub fn ws(&self, path: &str) -> Ws {
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let url = format!("ws://127.0.0.1:{}{path}", self.port);
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("websocket handshake");
        ws
    }

    /// The value of a Prometheus counter from `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Ws = tungstenite::WebSocket<std::net::TcpStream>;

/// The body of a raw HTTP response.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A client that completes the WebSocket handshake, subscribes, and never
/// reads again (a tiny receive buffer makes the server's side fill fast).
pub fn stuck_client(port: u16, command: &str) -> socket2::Socket {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    socket.connect(&addr.into()).expect("connect");
    let mut stream: std::net::TcpStream = socket.try_clone().expect("clone").into();
    let hello = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(hello.as_bytes()).expect("handshake");
    let mut head = [0u8; 1024];
    let n = stream.read(&mut head).expect("101");
    assert!(head[..n].starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head[..n]));
    let mask = [7u8, 7, 7, 7];
    let mut frame = vec![0x81, 0x80 | command.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(command.bytes().map(|b| b ^ 7));
    stream.write_all(&frame).expect("subscribe");
    socket
}

/// What a client received.
#[derive(Debug, Clone)]
pub enum Frame {
    Bar(Vec<u8>),
    Text(String),
    Closed(Option<u16>),
}

/// Reads frames for `duration` (or until the server closes).
pub fn collect(ws: &mut Ws, duration: Duration) -> Vec<Frame> {
    let mut frames = Vec::new();
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(tungstenite::Message::Binary(b)) => frames.push(Frame::Bar(b.to_vec())),
            Ok(tungstenite::Message::Text(t)) => frames.push(Frame::Text(t.to_string())),
            Ok(tungstenite::Message::Close(c)) => {
                frames.push(Frame::Closed(c.map(|c| u16::from(c.code))));
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                frames.push(Frame::Closed(None));
                break;
            }
            Err(e) => panic!("websocket read: {e}"),
        }
    }
    frames
}

/// Sends a text command and returns the first text reply (skipping bars).
pub fn command(ws: &mut Ws, text: &str) -> serde_json::Value {
    send(ws, tungstenite::Message::Text(text.into()))
}

/// Sends a message and returns the first text reply; bars that arrive
/// before it are skipped, frames after it stay unread.
pub fn send(ws: &mut Ws, message: tungstenite::Message) -> serde_json::Value {
    ws.send(message).expect("send");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => return serde_json::from_str(&t).expect("reply is JSON"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("websocket read: {e}"),
        }
    }
    panic!("no reply");
}

/// Per (mint, window): `seq` numbers strictly consecutive (nothing lost,
/// nothing repeated).
pub fn assert_no_gaps(bars: &[Bar]) {
    let mut last: std::collections::BTreeMap<([u8; 32], u32), u64> = std::collections::BTreeMap::new();
    for bar in bars {
        if let Some(prev) = last.insert((bar.mint, bar.window_s), bar.seq) {
            assert_eq!(bar.seq, prev + 1, "gap in the {} s series of a mint", bar.window_s);
        }
    }
}

/// The bars among frames, decoded.
pub fn bars(frames: &[Frame]) -> Vec<Bar> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Bar(b) => Some(bar::access(b).expect("valid bar frame").to_bar()),
            _ => None,
        })
        .collect()
}
