//! `klinecast-loadgen`: drives many WebSocket clients against a server on
//! this machine and checks what they receive. It speaks klinecast's
//! protocol (`sub-1s`, bars as binary frames or JSON text) and Centrifugo's
//! client protocol (connect, subscribe, publications in JSON or Protobuf),
//! so both servers are measured by the same clients.
//!
//! Clients are spread over glommio executors (one per `--cores` entry) and
//! over several loopback source addresses (127.0.0.1, 127.0.0.2, ...) so
//! one address's ephemeral ports are not the limit. Each client subscribes,
//! then reads bars: it checks that `seq` never skips within a (mint, window)
//! series and records latency in an HdrHistogram: from each update's
//! intended time when the feed is a scheduled mock (`--schedule`: an open
//! loop, so no coordinated-omission correction), else from its
//! `produced_ns`. The
//! WebSocket client is a small one of its own (the framing of
//! `klinecast::gateway::websocket`, client side), so a client costs one
//! read and a few hundred nanoseconds of parsing per frame, whichever server
//! and format it reads. A progress line is printed every second and a JSON
//! summary at the end. Bounded by design: at most `MAX_CLIENTS` clients,
//! loopback only, and the run stops by itself after ramp-up plus
//! `--duration`.

#![allow(unsafe_code)] // one call: handing a connected socket to glommio

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::{sleep, timeout};
use glommio::{LocalExecutorBuilder, Placement, spawn_local};
use hdrhistogram::Histogram;
use klinecast::codec::bar;
use klinecast::gateway::websocket::{self, Decoder, Incoming, opcode};

/// Hard bound on clients per run.
const MAX_CLIENTS: usize = 100_000;
/// Hard bound on one run's length.
const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Bytes read per call: a few frames; the buffer grows for a larger one.
const READ_CHUNK: usize = 4096;
/// Largest message a client accepts (Centrifugo batches pushes in a frame).
const MAX_MESSAGE: usize = 1 << 20;
/// How often a blocked read looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(500);
/// The Centrifugo channel of each klinecast window label (`bars_1s`).
const CHANNEL_PREFIX: &str = "bars_";

/// The server's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// klinecast: `GET /ws`, a `sub-<window>` text command, bars as frames.
    Klinecast,
    /// Centrifugo: `GET /connection/websocket`, connect and subscribe
    /// commands, bars as the data of publications.
    Centrifugo,
}

/// The frames' format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// klinecast binary frames (the rkyv bar); Centrifugo's Protobuf protocol.
    Binary,
    /// JSON text frames (klinecast `?format=json`; Centrifugo's JSON protocol).
    Json,
}

/// Drive WebSocket clients against a klinecast gateway (or Centrifugo) on loopback.
#[derive(Debug, Parser, Clone)]
#[command(name = "klinecast-loadgen")]
struct Args {
    /// Server address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// The server's protocol.
    #[arg(long, value_enum, default_value = "klinecast")]
    protocol: Protocol,
    /// Binary or JSON frames.
    #[arg(long, value_enum, default_value = "binary")]
    format: Format,
    /// Number of clients.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Loopback source addresses to spread clients over (127.0.0.1 ..= 127.0.0.N).
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Time over which clients connect.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    ramp: Duration,
    /// How long to measure once every client is connected.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Commands sent after connecting, one subscription mix entry per client
    /// in turn (e.g. "sub-1s,sub-1m"; Centrifugo: the window label becomes
    /// the channel `bars_<label>`).
    #[arg(long, default_value = "sub-1s", value_delimiter = ',')]
    subscribe: Vec<String>,
    /// Clients that subscribe and then never read (slow-client tests).
    #[arg(long, default_value_t = 0)]
    never_read: usize,
    /// Cores to run client executors on.
    #[arg(long, default_value = "0", value_delimiter = ',')]
    cores: Vec<usize>,
    /// The mock's schedule, `START_NS:RATE` (`klinecast_mock_schedule_start_ns`
    /// and `klinecast_mock_rate_per_s` of the server's /metrics): latency is
    /// then measured from each update's intended time — the intended time of
    /// the trade that made it (named by the bar's `last_signature`), or its
    /// bar's end for a closing update — instead of from `produced_ns`, so
    /// stalls of the source and of ingest count too. Binary frames only
    /// (JSON frames do not carry the trade's number).
    #[arg(long, value_parser = parse_schedule)]
    schedule: Option<klinecast::source::mock::MockSchedule>,
    /// Executors spin this long before they sleep (0: sleep at once).
    #[arg(long, default_value = "0", value_parser = klinecast::cli::parse_duration)]
    spin: Duration,
    /// Write the JSON summary here as well as to stdout.
    #[arg(long)]
    summary: Option<std::path::PathBuf>,
}

/// Counters shared by every executor.
#[derive(Default)]
struct Totals {
    connected: AtomicU64,
    subscribed: AtomicU64,
    failed: AtomicU64,
    closed_by_server: AtomicU64,
    frames: AtomicU64,
    bars: AtomicU64,
    gaps: AtomicU64,
    missing: AtomicU64,
    invalid: AtomicU64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.clients > MAX_CLIENTS || args.duration + args.ramp > MAX_DURATION {
        return Err(format!("at most {MAX_CLIENTS} clients and {MAX_DURATION:?}").into());
    }
    if !args.target.ip().is_loopback() {
        return Err("loadgen targets loopback addresses only".into());
    }
    klinecast::runtime::raise_nofile(klinecast::runtime::WANT_NOFILE);
    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut handles = Vec::new();
    for (i, &core) in args.cores.iter().enumerate() {
        let (args, totals, stop) = (args.clone(), totals.clone(), stop.clone());
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(core)).name(&format!("loadgen-{i}"));
        if !args.spin.is_zero() {
            builder = builder.spin_before_park(args.spin);
        }
        let handle = builder.io_memory(512 * 1024).spawn(move || run_executor(i, args, totals, stop))?;
        handles.push(handle);
    }
    let end = started + args.ramp + args.duration;
    let mut last = (Instant::now(), 0u64);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_secs(1));
        let bars = totals.bars.load(Ordering::Relaxed);
        let rate = (bars - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), bars);
        eprintln!(
            "[{:>4.0}s] connected {} subscribed {} failed {} closed {} | bars {} ({:.0}/s) gaps {} missing {} invalid {}",
            started.elapsed().as_secs_f64(),
            totals.connected.load(Ordering::Relaxed),
            totals.subscribed.load(Ordering::Relaxed),
            totals.failed.load(Ordering::Relaxed),
            totals.closed_by_server.load(Ordering::Relaxed),
            bars,
            rate,
            totals.gaps.load(Ordering::Relaxed),
            totals.missing.load(Ordering::Relaxed),
            totals.invalid.load(Ordering::Relaxed),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new(3)?;
    for handle in handles {
        let part = handle.join().map_err(|e| e.to_string())?;
        latency.add(part)?;
    }
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let summary = serde_json::json!({
        "protocol": format!("{:?}", args.protocol).to_lowercase(),
        "format": format!("{:?}", args.format).to_lowercase(),
        "clients": args.clients,
        "connected": totals.connected.load(Ordering::Relaxed),
        "subscribed": totals.subscribed.load(Ordering::Relaxed),
        "failed": totals.failed.load(Ordering::Relaxed),
        "closed_by_server": totals.closed_by_server.load(Ordering::Relaxed),
        "bars": totals.bars.load(Ordering::Relaxed),
        "frames": totals.frames.load(Ordering::Relaxed),
        "seq_gaps": totals.gaps.load(Ordering::Relaxed),
        "missing_updates": totals.missing.load(Ordering::Relaxed),
        "invalid_frames": totals.invalid.load(Ordering::Relaxed),
        "seconds": args.duration.as_secs_f64(),
        "latency_us": {"p50": us(0.5), "p90": us(0.9), "p99": us(0.99), "p999": us(0.999),
                       "max": latency.max() as f64 / 1000.0, "count": latency.len()},
    });
    println!("{summary}");
    if let Some(path) = args.summary {
        std::fs::write(path, summary.to_string())?;
    }
    Ok(())
}

async fn run_executor(index: usize, args: Args, totals: Arc<Totals>, stop: Arc<AtomicBool>) -> Histogram<u64> {
    let latency = Rc::new(RefCell::new(Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_histogram())));
    let executors = args.cores.len();
    let mine: Vec<usize> = (index..args.clients).step_by(executors).collect();
    let gap = args.ramp.checked_div(args.clients.max(1) as u32).unwrap_or_default();
    let mut tasks = Vec::new();
    for (k, client) in mine.into_iter().enumerate() {
        let delay = gap * (client as u32);
        let (args, totals, stop, latency) = (args.clone(), totals.clone(), stop.clone(), latency.clone());
        tasks.push(spawn_local(async move {
            sleep(delay).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (client % args.sources.max(1) as usize) as u8));
            let subscription = args.subscribe[client % args.subscribe.len()].clone();
            let reader = client >= args.never_read;
            let mut client = Client { args: &args, totals: &totals, latency: &latency, last_seq: HashMap::new() };
            client.run(source, &subscription, reader, &stop).await;
        }));
        if k % 256 == 255 {
            glommio::yield_if_needed().await;
        }
    }
    for task in tasks {
        task.await;
    }
    Rc::try_unwrap(latency).map(RefCell::into_inner).unwrap_or_else(|_| unreachable_histogram())
}

fn unreachable_histogram() -> Histogram<u64> {
    // Histogram::new(3) only fails for sigfig > 5.
    Histogram::<u64>::new_with_max(u64::MAX / 2, 3).unwrap_or_else(|_| std::process::abort())
}

async fn connect(target: SocketAddr, source: IpAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.set_tcp_nodelay(true)?;
    // Loopback connects complete at once; blocking here is microseconds.
    socket.connect(&target.into())?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is a connected TCP socket we own and hand over exactly once.
    Ok(unsafe { TcpStream::from_raw_fd(fd) })
}

/// Client frames are masked; the mask guards proxies, not this loopback
/// benchmark, so one fixed mask does.
const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x88];

/// One client's state and what it adds to the totals.
struct Client<'a> {
    args: &'a Args,
    totals: &'a Totals,
    latency: &'a RefCell<Histogram<u64>>,
    /// Latest `seq` per (mint, window), for gaps.
    last_seq: HashMap<([u8; 32], u32), u64>,
}

/// What one message told the client.
enum Seen {
    /// Nothing to count (a reply, a pong, ...).
    Nothing,
    /// The subscription was acknowledged.
    Subscribed,
    /// The server refused something.
    Refused,
    /// Send this back (a pong to an application-level ping).
    Answer(Vec<u8>),
}

impl Client<'_> {
    async fn run(&mut self, source: IpAddr, subscription: &str, reader: bool, stop: &AtomicBool) {
        let Ok(mut stream) = connect(self.args.target, source).await else {
            self.totals.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Ok(mut buf) = self.handshake(&mut stream).await else {
            self.totals.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.totals.connected.fetch_add(1, Ordering::Relaxed);
        if stream.write_all(&self.subscribe_frame(subscription)).await.is_err() {
            self.totals.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !reader {
            while !stop.load(Ordering::Relaxed) {
                sleep(Duration::from_millis(200)).await;
            }
            return;
        }
        let mut decoder = Decoder::of_server(MAX_MESSAGE);
        while !stop.load(Ordering::Relaxed) {
            match decoder.next(&mut buf) {
                Ok(Some(message)) => {
                    if self.on_message(message, &mut stream).await.is_err() {
                        break;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(_) => {
                    self.totals.invalid.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            let filled = buf.len();
            buf.resize(filled + READ_CHUNK, 0);
            let read = timeout(STOP_CHECK, async { Ok(stream.read(&mut buf[filled..]).await) }).await;
            buf.truncate(filled + read.as_ref().ok().and_then(|r| r.as_ref().ok()).copied().unwrap_or(0));
            match read {
                Err(_) => continue, // no bytes for a while: look at the stop flag
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.totals.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The opening handshake; returns the bytes that came after the `101`.
    async fn handshake(&self, stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        let path = match (self.args.protocol, self.args.format) {
            (Protocol::Klinecast, Format::Binary) => "/ws",
            (Protocol::Klinecast, Format::Json) => "/ws?format=json",
            (Protocol::Centrifugo, Format::Binary) => "/connection/websocket?cf_protocol=protobuf",
            (Protocol::Centrifugo, Format::Json) => "/connection/websocket",
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.args.target
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = vec![0u8; READ_CHUNK];
        let mut filled = 0;
        loop {
            let n = stream.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            if let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                if !buf.starts_with(b"HTTP/1.1 101") {
                    return Err(std::io::ErrorKind::ConnectionRefused.into());
                }
                buf.truncate(filled);
                buf.drain(..end + 4);
                return Ok(buf);
            }
            if filled == buf.len() {
                return Err(std::io::ErrorKind::InvalidData.into());
            }
        }
    }

    /// The frame that subscribes: klinecast's command, or Centrifugo's
    /// connect and subscribe commands together.
    fn subscribe_frame(&self, subscription: &str) -> Vec<u8> {
        let window = subscription.split_once(['-', '_']).map_or("1s", |(_, w)| w);
        let channel = format!("{CHANNEL_PREFIX}{window}");
        match (self.args.protocol, self.args.format) {
            (Protocol::Klinecast, _) => websocket::client_frame(opcode::TEXT, subscription.as_bytes(), MASK),
            (Protocol::Centrifugo, Format::Json) => {
                let commands =
                    format!("{{\"id\":1,\"connect\":{{}}}}\n{{\"id\":2,\"subscribe\":{{\"channel\":\"{channel}\"}}}}");
                websocket::client_frame(opcode::TEXT, commands.as_bytes(), MASK)
            }
            (Protocol::Centrifugo, Format::Binary) => {
                // Command{id: 1, connect: {}}, Command{id: 2, subscribe: {channel}},
                // each preceded by its length (varint).
                let connect = [0x08, 0x01, 0x22, 0x00];
                let mut subscribe = vec![0x08, 0x02, 0x2a, (channel.len() + 2) as u8, 0x0a, channel.len() as u8];
                subscribe.extend_from_slice(channel.as_bytes());
                let mut payload = vec![connect.len() as u8];
                payload.extend_from_slice(&connect);
                payload.push(subscribe.len() as u8);
                payload.extend_from_slice(&subscribe);
                websocket::client_frame(opcode::BINARY, &payload, MASK)
            }
        }
    }

    async fn on_message(&mut self, message: Incoming, stream: &mut TcpStream) -> std::io::Result<()> {
        self.totals.frames.fetch_add(1, Ordering::Relaxed);
        let mut seen = Vec::new();
        match message {
            Incoming::Ping(payload) => {
                return stream.write_all(&websocket::client_frame(opcode::PONG, &payload, MASK)).await;
            }
            Incoming::Pong => {}
            Incoming::Close(_) => return Err(std::io::ErrorKind::ConnectionAborted.into()),
            Incoming::Binary(payload) => match self.args.protocol {
                Protocol::Klinecast => self.on_binary_bar(&payload),
                Protocol::Centrifugo => self.on_protobuf(&payload, &mut seen),
            },
            Incoming::Text(text) => match self.args.protocol {
                // A reply (bars have no `type`): an acknowledgement or an error.
                Protocol::Klinecast if text.contains("\"type\":") => seen.push(match () {
                    _ if text.contains("\"type\":\"error\"") => Seen::Refused,
                    _ if text.contains("\"type\":\"subscribed\"") => Seen::Subscribed,
                    _ => Seen::Nothing,
                }),
                Protocol::Klinecast => self.on_json_bar(&text),
                Protocol::Centrifugo => {
                    for line in text.lines() {
                        seen.push(self.on_centrifugo_json(line));
                    }
                }
            },
        }
        for s in seen {
            match s {
                Seen::Nothing => {}
                Seen::Subscribed => {
                    self.totals.subscribed.fetch_add(1, Ordering::Relaxed);
                }
                Seen::Refused => {
                    self.totals.failed.fetch_add(1, Ordering::Relaxed);
                }
                Seen::Answer(bytes) => stream.write_all(&bytes).await?,
            }
        }
        Ok(())
    }

    fn on_binary_bar(&mut self, payload: &[u8]) {
        let Ok(archived) = bar::access(payload) else {
            self.totals.invalid.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let window_s = archived.window_s.to_native();
        let series = (archived.mint, window_s);
        let since = match self.args.schedule {
            Some(_) if archived.closed => {
                let end_s = archived.open_time_s.to_native().saturating_add(i64::from(window_s));
                (end_s.max(0) as u64).saturating_mul(1_000_000_000)
            }
            Some(schedule) if archived.last_signature.to_native() > 0 => {
                schedule.intended_ns(archived.last_signature.to_native())
            }
            _ => archived.produced_ns.to_native(),
        };
        self.count(series, archived.seq.to_native(), since);
    }

    fn on_json_bar(&mut self, text: &str) {
        let fields = (
            string_field(text, "mint"),
            number_field(text, "time_window_seconds"),
            number_field(text, "seq"),
            number_field(text, "produced_ns"),
        );
        let (Some(mint), Some(window), Some(seq), Some(produced)) = fields else {
            self.totals.invalid.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // The series key only has to tell series apart: the base58 text
        // itself, folded into the key's bytes.
        let mut key = [0u8; 32];
        for (i, b) in mint.bytes().enumerate() {
            key[i % 32] ^= b.rotate_left((i / 32) as u32);
        }
        self.count((key, window as u32), seq, produced);
    }

    /// One line of Centrifugo's JSON protocol.
    fn on_centrifugo_json(&mut self, line: &str) -> Seen {
        if line == "{}" {
            // An application-level ping: answer with an empty command.
            return Seen::Answer(websocket::client_frame(opcode::TEXT, b"{}", MASK));
        }
        if line.starts_with("{\"push\"") {
            match line.find("\"data\":") {
                Some(at) => self.on_json_bar(&line[at..]),
                None => {
                    self.totals.invalid.fetch_add(1, Ordering::Relaxed);
                }
            }
            return Seen::Nothing;
        }
        if line.contains("\"error\"") {
            return Seen::Refused;
        }
        if line.starts_with("{\"id\":2") { Seen::Subscribed } else { Seen::Nothing }
    }

    /// One frame of Centrifugo's Protobuf protocol: replies, each preceded
    /// by its length.
    fn on_protobuf(&mut self, mut frame: &[u8], seen: &mut Vec<Seen>) {
        while !frame.is_empty() {
            let Some((len, at)) = varint(frame) else { break };
            let Some(reply) = frame.get(at..at + len as usize) else { break };
            frame = &frame[at + len as usize..];
            if reply.is_empty() {
                // A ping: answer with an empty command.
                seen.push(Seen::Answer(websocket::client_frame(opcode::BINARY, &[0], MASK)));
                continue;
            }
            let (mut id, mut error, mut push, mut subscribed) = (0, false, None, false);
            for (field, value) in fields(reply) {
                match (field, value) {
                    (1, Field::Varint(v)) => id = v,
                    (2, _) => error = true,
                    (4, Field::Bytes(b)) => push = Some(b),
                    (6, _) => subscribed = true,
                    _ => {}
                }
            }
            if error {
                seen.push(Seen::Refused);
            } else if id == 2 && subscribed {
                seen.push(Seen::Subscribed);
            }
            let Some(push) = push else { continue };
            let publication = fields(push).find_map(|f| match f {
                (4, Field::Bytes(b)) => Some(b),
                _ => None,
            });
            let data = publication.and_then(|p| {
                fields(p).find_map(|f| match f {
                    (4, Field::Bytes(b)) => Some(b),
                    _ => None,
                })
            });
            match data {
                Some(data) => self.on_binary_bar(data),
                None => {
                    self.totals.invalid.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts one bar update: latency since `since_ns` (its intended or its
    /// produce time), and a gap if `seq` skipped. Every update carries its
    /// own time, so a stall already shows as the late updates it delayed:
    /// nothing is added for it.
    fn count(&mut self, series: ([u8; 32], u32), seq: u64, since_ns: u64) {
        self.totals.bars.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let lag = now.saturating_sub(since_ns);
        let _ = self.latency.borrow_mut().record(lag);
        if let Some(prev) = self.last_seq.insert(series, seq)
            && seq != prev + 1
        {
            self.totals.gaps.fetch_add(1, Ordering::Relaxed);
            self.totals.missing.fetch_add(seq.saturating_sub(prev + 1), Ordering::Relaxed);
        }
    }
}

/// `START_NS:RATE`.
fn parse_schedule(text: &str) -> Result<klinecast::source::mock::MockSchedule, String> {
    let (start, rate) = text.split_once(':').ok_or("expected START_NS:RATE")?;
    let start_ns = start.parse().map_err(|e| format!("start: {e}"))?;
    let rate_per_s: u64 = rate.parse().map_err(|e| format!("rate: {e}"))?;
    if rate_per_s == 0 {
        return Err("rate: a schedule has a rate above 0".into());
    }
    Ok(klinecast::source::mock::MockSchedule { start_ns, rate_per_s })
}

/// The number after `"name":` in a flat JSON object.
fn number_field(text: &str, name: &str) -> Option<u64> {
    let at = text.find(&format!("\"{name}\":"))? + name.len() + 3;
    let digits: &str = &text[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The string after `"name":"` in a flat JSON object.
fn string_field<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let at = text.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let rest = &text[at..];
    Some(&rest[..rest.find('"')?])
}

/// A Protobuf varint at the start of `bytes`: (value, bytes used).
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// One Protobuf field's value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The (field number, value) pairs of a Protobuf message; stops at the
/// first malformed one.
fn fields(mut message: &[u8]) -> impl Iterator<Item = (u64, Field<'_>)> {
    std::iter::from_fn(move || {
        let (key, at) = varint(message)?;
        message = &message[at..];
        let value = match key & 7 {
            0 => {
                let (v, at) = varint(message)?;
                message = &message[at..];
                Field::Varint(v)
            }
            2 => {
                let (len, at) = varint(message)?;
                let bytes = message.get(at..at + len as usize)?;
                message = &message[at + len as usize..];
                Field::Bytes(bytes)
            }
            1 => {
                message = message.get(8..)?;
                Field::Fixed
            }
            5 => {
                message = message.get(4..)?;
                Field::Fixed
            }
            _ => return None,
        };
        Some((key >> 3, value))
    })
}
