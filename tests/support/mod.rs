//! Helpers of the multi-process tests (`outage`, `scale_out`): child
//! processes and a private Kafka broker that are stopped on every path
//! (Drop guards), reading a whole topic back from any broker, and WebSocket
//! clients recorded on their own thread so they keep answering pings while
//! the test does something else.

#![allow(dead_code, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;

use crate::common::{Frame, Ws};

/// How long a child gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// A `klinecast` process started by a test; SIGTERM (then SIGKILL) on drop.
pub struct Child {
    pub name: String,
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl Child {
    /// Starts `klinecast <args>` with its log (stderr) in `log`; stdin is a
    /// pipe the test owns when `piped_stdin`, else /dev/null.
    pub fn spawn(name: &str, args: &[&str], log: PathBuf, piped_stdin: bool) -> Child {
        let child = Command::new(env!("CARGO_BIN_EXE_klinecast"))
            .args(args)
            .env("KLINECAST_LOG", "info")
            .stdin(if piped_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start klinecast {name}: {e}"));
        Child { name: name.to_owned(), child, log }
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until the log contains `needle`; false on timeout or exit.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return true;
            }
            if !self.alive() {
                return self.log_text().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// SIGTERM, then SIGKILL after `grace`; the exit status if it exited by itself.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // a replay from stdin ends at EOF
        self.terminate(TERM_GRACE);
    }
}

/// A log file for a process of a test, under the target's temp directory.
pub fn log_path(topic: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{topic}-{name}.log"))
}

/// A Kafka broker of one test (own ports, own state directory), started
/// with `scripts/kafka-up.sh` and stopped with `scripts/kafka-down.sh`,
/// also when the test fails.
pub struct Broker {
    pub port: u16,
    /// Free ports reserved for listeners of the test's own
    /// ([`Broker::start_with`]).
    pub extra_ports: Vec<u16>,
    dir: tempfile::TempDir,
    /// Properties appended to the template's (`KAFKA_EXTRA_CONFIG`).
    extra_config: Option<PathBuf>,
    /// Arguments of the storage format (`KAFKA_FORMAT_ARGS`).
    format_args: String,
}

/// Makes broker properties from the broker's ports and state directory.
pub type BrokerProperties = Box<dyn FnOnce(&Broker) -> String>;

/// What a test adds to the template broker (`kafka/server.properties`).
#[derive(Default)]
pub struct BrokerSetup {
    /// Free ports to reserve besides the client and controller ports, for
    /// listeners of the test's own ([`Broker::extra_ports`]).
    pub extra_ports: usize,
    /// Broker properties, given the broker (its ports and state directory);
    /// appended to the template's, so they win (e.g. more `listeners`).
    pub properties: Option<BrokerProperties>,
    /// Arguments of the one-time storage format, split on blanks (e.g.
    /// `--add-scram SCRAM-SHA-512=[name=alice,password=secret]`).
    pub format_args: String,
}

impl Broker {
    /// Formats and starts a broker on a free port pair (client port in
    /// 20000..22767, controller port +10000: both below the ephemeral range,
    /// so outgoing connections cannot take them between the probe and the bind).
    pub fn start() -> Broker {
        Self::start_with(BrokerSetup::default())
    }

    /// [`Broker::start`] with listeners, settings and storage-format
    /// arguments of the test's own.
    pub fn start_with(setup: BrokerSetup) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("kafka-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("broker state dir");
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as usize);
        let seed = std::process::id() as usize ^ nanos;
        let mut candidates = (0..2767).map(|i| 20_000 + ((seed + i * 7) % 2767) as u16);
        let port = candidates.find(|&p| port_free(p) && port_free(p + 10_000)).expect("a free port pair");
        let extra_ports: Vec<u16> = candidates.filter(|&p| port_free(p)).take(setup.extra_ports).collect();
        assert_eq!(extra_ports.len(), setup.extra_ports, "free ports for the extra listeners");
        let mut broker = Broker { port, extra_ports, dir, extra_config: None, format_args: setup.format_args };
        if let Some(properties) = setup.properties {
            let path = broker.dir.path().join("extra.properties");
            std::fs::write(&path, properties(&broker)).expect("write the extra broker properties");
            broker.extra_config = Some(path);
        }
        broker.up();
        broker
    }

    /// The KRaft controller port (the client port + 10000, as `kafka-up.sh` derives it).
    pub fn controller_port(&self) -> u16 {
        self.port + 10_000
    }

    /// The broker's state directory (config, data, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own log.
    pub fn server_log(&self) -> PathBuf {
        self.dir.path().join("logs/server.log")
    }

    fn script(&self, name: &str) -> std::process::Output {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name))
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_DIR", self.dir.path())
            .env_remove("KAFKA_CONTROLLER_PORT")
            .env("KAFKA_EXTRA_CONFIG", self.extra_config.as_deref().unwrap_or(Path::new("")))
            .env("KAFKA_FORMAT_ARGS", &self.format_args)
            // Bounds each start (the default is 90 s).
            .env("KAFKA_START_TIMEOUT", "60")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {name}: {e}"))
    }

    /// Starts the broker (again, keeping its data) and waits until it
    /// answers; returns how long that took.
    pub fn up(&self) -> Duration {
        let started = Instant::now();
        let out = self.script("kafka-up.sh");
        assert!(out.status.success(), "kafka-up.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), self.address());
        started.elapsed()
    }

    /// Stops the broker (SIGTERM, clean shutdown); returns how long it took.
    pub fn down(&self) -> Duration {
        let started = Instant::now();
        let out = self.script("kafka-down.sh");
        assert!(out.status.success(), "kafka-down.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        started.elapsed()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.script("kafka-down.sh");
    }
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// One message of a topic, as stored.
#[derive(Debug, Clone)]
pub struct Msg {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
}

/// Reads every message of `topic` on `brokers`, from the beginning up to
/// the end offsets found at the start, in offset order per partition.
pub fn read_all(brokers: &str, topic: &str, timeout: Duration) -> Vec<Msg> {
    let (consumer, partitions) = crate::common::reader_from_beginning(brokers, topic, false);
    let end: Vec<i64> = (0..partitions)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1)
        .collect();
    let mut next: Vec<i64> = vec![0; partitions as usize];
    let mut messages = Vec::with_capacity(end.iter().sum::<i64>() as usize);
    let deadline = Instant::now() + timeout;
    while next.iter().zip(&end).any(|(n, e)| n < e) {
        assert!(Instant::now() < deadline, "reading {topic} timed out at {next:?} of {end:?}");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if m.offset() < end[m.partition() as usize] => {
                next[m.partition() as usize] = m.offset() + 1;
                messages.push(Msg {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                });
            }
            Some(Ok(_)) | None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => panic!("consumer error: {e}"),
        }
    }
    messages
}

/// A raw HTTP/1.1 GET on 127.0.0.1:`port`; the whole response, or "" if
/// nothing answers.
pub fn http_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes());
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits until `/healthz` on `port` answers 200.
pub fn wait_healthy(child: &mut Child, port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if http_get(port, "/healthz").starts_with("HTTP/1.1 200") {
            return;
        }
        assert!(child.alive(), "{} exited: {}", child.name, child.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} did not become healthy: {}", child.name, child.log_text());
}

/// A WebSocket client on 127.0.0.1:`port` (reads time out after 200 ms).
pub fn ws(port: u16, path: &str) -> Ws {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let url = format!("ws://127.0.0.1:{port}{path}");
    let (ws, _) = tungstenite::client(url.as_str(), stream).expect("websocket handshake");
    ws
}

/// What a recorded client saw: every frame with the time it arrived, and
/// the read error that ended the recording, if any.
#[derive(Debug, Default)]
pub struct Recording {
    pub frames: Vec<(Instant, Frame)>,
    pub error: Option<String>,
}

/// Reads a WebSocket on its own thread until stopped, so that the client
/// keeps reading (and answering the server's pings) whatever the test does.
pub struct Recorder {
    stop: Arc<AtomicBool>,
    bars: Arc<AtomicUsize>,
    recording: Arc<Mutex<Recording>>,
    handle: Option<JoinHandle<Ws>>,
}

impl Recorder {
    pub fn start(mut ws: Ws) -> Recorder {
        let stop = Arc::new(AtomicBool::new(false));
        let bars = Arc::new(AtomicUsize::new(0));
        let recording = Arc::new(Mutex::new(Recording::default()));
        let (stop2, bars2, rec2) = (stop.clone(), bars.clone(), recording.clone());
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let frame = match ws.read() {
                    Ok(tungstenite::Message::Binary(b)) => Frame::Bar(b.to_vec()),
                    Ok(tungstenite::Message::Text(t)) => Frame::Text(t.to_string()),
                    Ok(tungstenite::Message::Close(c)) => Frame::Closed(c.map(|c| u16::from(c.code))),
                    Ok(_) => continue,
                    Err(tungstenite::Error::Io(e))
                        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                    {
                        continue;
                    }
                    Err(e) => {
                        let mut rec = rec2.lock().unwrap();
                        rec.error = Some(e.to_string());
                        rec.frames.push((Instant::now(), Frame::Closed(None)));
                        break;
                    }
                };
                let closed = matches!(frame, Frame::Closed(_));
                if matches!(frame, Frame::Bar(_)) {
                    bars2.fetch_add(1, Ordering::Relaxed);
                }
                rec2.lock().unwrap().frames.push((Instant::now(), frame));
                if closed {
                    break;
                }
            }
            ws
        });
        Recorder { stop, bars, recording, handle: Some(handle) }
    }

    /// Bars received so far.
    pub fn bars(&self) -> usize {
        self.bars.load(Ordering::Relaxed)
    }

    /// Looks at what was recorded so far.
    pub fn with<T>(&self, f: impl FnOnce(&Recording) -> T) -> T {
        f(&self.recording.lock().unwrap())
    }

    /// Stops reading; the client (for further commands) and the recording.
    pub fn finish(mut self) -> (Ws, Recording) {
        self.stop.store(true, Ordering::Relaxed);
        let ws = self.handle.take().expect("recording").join().expect("recorder thread");
        let recording = std::mem::take(&mut *self.recording.lock().unwrap());
        (ws, recording)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The bytes of the bar frames of a recording, in arrival order.
pub fn bar_frames(recording: &Recording) -> Vec<(Instant, Vec<u8>)> {
    recording
        .frames
        .iter()
        .filter_map(|(at, f)| if let Frame::Bar(b) = f { Some((*at, b.clone())) } else { None })
        .collect()
}

/// Parses `<n> <label>` out of the `ingest finished` report line, e.g.
/// `count_before(line, "sent")` for "..., 1234 sent, ...".
pub fn count_before(line: &str, label: &str) -> Option<u64> {
    let at = line.find(&format!(" {label}"))?;
    line[..at].rsplit([' ', '(', ',']).next()?.parse().ok()
}

/// Parses `<label> <n>` out of a report line, e.g. "other shard 17".
pub fn count_after(line: &str, label: &str) -> Option<u64> {
    let at = line.find(label)? + label.len();
    line[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The `ingest finished` line of a log.
pub fn ingest_report(log: &str) -> Option<String> {
    log.lines().find(|l| l.contains("ingest finished")).map(str::to_owned)
}

/// The end offset of one partition of `topic` on `brokers`.
pub fn end_offset(brokers: &str, topic: &str, partition: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("it-watermarks-{}", std::process::id()))
        .create()
        .expect("consumer");
    consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).expect("watermarks").1
}

/// The value of a Prometheus sample from `/metrics` on `port` (NaN if absent).
pub fn metric(port: u16, name: &str) -> f64 {
    let text = http_get(port, "/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Creates `topic` with one partition per window (as klinecast would) and
/// waits until every partition has a leader. Tests create their topic up
/// front so that no klinecast process races the broker's partition set-up
/// (see `ensure_topic`: a metadata error right after creation is fatal there).
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = futures_lite::future::block_on(admin.create_topics([&new_topic], &options)).expect("create topic");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("creating {name}: {code}"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = admin.inner().fetch_metadata(Some(topic), Duration::from_secs(5)).is_ok_and(|m| {
            m.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0)
            })
        });
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "topic {topic} has no leaders after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}
