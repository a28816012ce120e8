//! `klinecast-floor`: the yardstick of fan-out. It accepts the same
//! WebSocket clients as klinecast (same handshake, same `sub-1s` command
//! and acknowledgement), reads the same topic with one Kafka consumer, and
//! for each update writes one pre-encoded frame to every subscribed socket
//! with one of the cheapest patterns this kernel offers, and does nothing
//! else: no per-client state beyond the socket, no conflation, no limits,
//! no pings. What it costs per delivered frame is what any server must pay
//! here for the same work; `bench/peer.rs` runs it beside klinecast and
//! Centrifugo on the same feed, clients and core.
//!
//! `--mode`:
//! - `send`: a plain loop of `send(2)` calls, one per socket, on the frame
//!   built once per update;
//! - `writev`: one `writev(2)` per socket with the header and the payload as
//!   two slices (no frame buffer at all);
//! - `uring`: one io_uring submission batch of `IORING_OP_SEND`s per update
//!   (in chunks of `--ring-entries`), one `io_uring_enter` per chunk;
//! - `sqpoll`: the same with `IORING_SETUP_SQPOLL`: a kernel thread of this
//!   process takes the submissions, so submitting is no system call (its
//!   CPU time counts: it is one of this process's threads).
//!
//! A send that would block (the client's socket buffer is full) or is cut
//! short is finished with blocking writes on that socket alone and counted
//! (`stalls`), so every client gets every frame. `--format json` sends the
//! bar's JSON form, encoded once per update.
//!
//! Accepting runs on a second thread that is idle once the clients are in;
//! the benchmark measures CPU only while the feed runs. Bounded: at most
//! `--max-clients` sockets; plain `GET /healthz` (or any path that is not an
//! upgrade) gets `200 ok`.

#![allow(unsafe_code)] // send(2), writev(2), poll(2) and io_uring submissions on sockets this process owns

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use io_uring::{IoUring, opcode, types};
use klinecast::codec::bar;
use klinecast::codec::json::BarJson;
use klinecast::gateway::websocket::{self, Decoder, Incoming};
use klinecast::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

/// Largest request head read during a handshake.
const MAX_HEAD: usize = 8192;
/// `MSG_NOSIGNAL | MSG_DONTWAIT`: no SIGPIPE, never block in the batch.
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Send,
    Writev,
    Uring,
    Sqpoll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Binary,
    Json,
}

/// The fan-out floor (see the module doc).
#[derive(Debug, Parser)]
#[command(
    name = "klinecast-floor",
    version,
    about = "Fan-out floor: one frame per update to every client, nothing else"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic of the bars (partition 0 is read, from its end).
    #[arg(long)]
    topic: String,
    /// How frames are written.
    #[arg(long, value_enum, default_value = "send")]
    mode: Mode,
    /// Frame format.
    #[arg(long, value_enum, default_value = "binary")]
    format: Format,
    /// Submission queue entries (io_uring modes): sends per submission.
    #[arg(long, default_value_t = 4096)]
    ring_entries: u32,
    /// Most clients accepted.
    #[arg(long, default_value_t = 100_000)]
    max_clients: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen)?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    let joined: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let inbox = joined.clone();
    let max_clients = args.max_clients;
    std::thread::Builder::new().name("accept".into()).spawn(move || accept_loop(&listener, &inbox, max_clients))?;
    let config = KafkaConfig { brokers: args.brokers.clone(), topic: args.topic.clone(), overrides: vec![] };
    let consumer: BaseConsumer = config.reader(&format!("klinecast-floor-{}", std::process::id())).create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&args.topic, 0, Offset::End)?;
    consumer.assign(&list)?;
    let mut fanout = Fanout::new(args.mode, args.ring_entries)?;
    let mut clients: Vec<TcpStream> = Vec::new();
    let (mut updates, mut frames) = (0u64, 0u64);
    let mut next_report = Instant::now() + Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut new) = joined.try_lock() {
            clients.append(&mut new);
        }
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
        let Some(frame) = frame_of(message.payload().unwrap_or_default(), args.format) else { continue };
        let fds: Vec<RawFd> = clients.iter().map(AsRawFd::as_raw_fd).collect();
        fanout.write_all(&fds, &frame)?;
        updates += 1;
        frames += fds.len() as u64;
        if Instant::now() >= next_report {
            eprintln!("floor: {} clients, {updates} updates, {frames} frames, {} stalls", clients.len(), fanout.stalls);
            next_report = Instant::now() + Duration::from_secs(10);
        }
    }
    eprintln!("floor: done: {} clients, {updates} updates, {frames} frames, {} stalls", clients.len(), fanout.stalls);
    Ok(())
}

/// One update's frame: header and payload, and where the payload starts.
struct Frame {
    bytes: Vec<u8>,
    header_len: usize,
}

fn frame_of(payload: &[u8], format: Format) -> Option<Frame> {
    let (op, body) = match format {
        Format::Binary => (websocket::opcode::BINARY, payload.to_vec()),
        Format::Json => (websocket::opcode::TEXT, BarJson::line(&bar::access(payload).ok()?.to_bar()).into_bytes()),
    };
    Some(Frame { header_len: websocket::header_len(body.len()), bytes: websocket::frame(op, &body).to_vec() })
}

/// Accepts clients: a health answer for plain requests; for upgrades the
/// handshake, the first command and its acknowledgement, then the socket
/// goes to the fan-out thread.
fn accept_loop(listener: &TcpListener, joined: &Mutex<Vec<TcpStream>>, max_clients: usize) {
    let mut accepted = 0;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        match handshake(stream) {
            Ok(Some(stream)) if accepted < max_clients => {
                accepted += 1;
                if let Ok(mut list) = joined.lock() {
                    list.push(stream);
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("floor: handshake failed: {e}"),
        }
    }
}

fn handshake(mut stream: TcpStream) -> std::io::Result<Option<TcpStream>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head_len = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let _ = request.parse(&buf[..head_len]).map_err(|e| std::io::Error::other(e.to_string()))?;
    let key = request.headers.iter().find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key")).map(|h| h.value);
    let Some(key) = key else {
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")?;
        return Ok(None);
    };
    let accept = tungstenite::handshake::derive_accept_key(key);
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    // The first command (`sub-1s`): read, not interpreted; acknowledged as
    // klinecast does.
    let mut rest = buf.split_off(head_len);
    let mut decoder = Decoder::new(4096);
    loop {
        match decoder.next(&mut rest).map_err(|e| std::io::Error::other(format!("{e:?}")))? {
            Some(Incoming::Text(_)) => break,
            Some(_) => {}
            None => {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Ok(None);
                }
                rest.extend_from_slice(&chunk[..n]);
            }
        }
    }
    stream.write_all(&websocket::frame(
        websocket::opcode::TEXT,
        br#"{"type":"subscribed","window":"1s","window_s":1}"#,
    ))?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(Some(stream))
}

/// Writes a frame to many sockets.
struct Fanout {
    mode: Mode,
    ring: Option<IoUring>,
    ring_entries: usize,
    /// Sends finished with blocking writes (socket buffer full, or short).
    stalls: u64,
}

impl Fanout {
    fn new(mode: Mode, entries: u32) -> std::io::Result<Self> {
        let ring = match mode {
            Mode::Send | Mode::Writev => None,
            Mode::Uring => Some(IoUring::new(entries)?),
            Mode::Sqpoll => Some(IoUring::builder().setup_sqpoll(2000).build(entries)?),
        };
        Ok(Self { mode, ring, ring_entries: entries as usize, stalls: 0 })
    }

    fn write_all(&mut self, fds: &[RawFd], frame: &Frame) -> std::io::Result<()> {
        match self.mode {
            Mode::Send => {
                for &fd in fds {
                    let sent = outcome(send(fd, &frame.bytes));
                    self.finish(fd, &frame.bytes, sent);
                }
            }
            Mode::Writev => {
                let (head, body) = frame.bytes.split_at(frame.header_len);
                let iov = [iovec(head), iovec(body)];
                for &fd in fds {
                    // SAFETY: two iovecs over live slices; fd is an open socket.
                    let sent = outcome(unsafe { libc::writev(fd, iov.as_ptr(), 2) });
                    self.finish(fd, &frame.bytes, sent);
                }
            }
            Mode::Uring | Mode::Sqpoll => self.submit_all(fds, &frame.bytes)?,
        }
        Ok(())
    }

    fn submit_all(&mut self, fds: &[RawFd], bytes: &[u8]) -> std::io::Result<()> {
        let Some(ring) = self.ring.as_mut() else { return Ok(()) };
        let mut short: Vec<(RawFd, Result<usize, i32>)> = Vec::new();
        for chunk in fds.chunks(self.ring_entries) {
            {
                let mut sq = ring.submission();
                for (i, &fd) in chunk.iter().enumerate() {
                    let entry = opcode::Send::new(types::Fd(fd), bytes.as_ptr(), bytes.len() as u32)
                        .flags(SEND_FLAGS)
                        .build()
                        .user_data(i as u64);
                    // SAFETY: `bytes` outlives the completions reaped below.
                    if unsafe { sq.push(&entry) }.is_err() {
                        return Err(std::io::Error::other("submission queue full"));
                    }
                }
            }
            ring.submit_and_wait(chunk.len())?;
            let mut done = 0;
            while done < chunk.len() {
                for cqe in ring.completion() {
                    done += 1;
                    let result = cqe.result();
                    if result != bytes.len() as i32 {
                        let sent = if result < 0 { Err(-result) } else { Ok(result as usize) };
                        short.push((chunk[cqe.user_data() as usize], sent));
                    }
                }
                if done < chunk.len() {
                    ring.submit_and_wait(1)?;
                }
            }
        }
        for (fd, sent) in short {
            self.finish(fd, bytes, sent);
        }
        Ok(())
    }

    /// Finishes a send that wrote `sent` bytes (or failed with an errno)
    /// with blocking writes; a closed socket is skipped.
    fn finish(&mut self, fd: RawFd, bytes: &[u8], sent: Result<usize, i32>) {
        let mut at = match sent {
            Ok(n) => n,
            Err(libc::EAGAIN) => 0,
            Err(_) => return,
        };
        if at == bytes.len() {
            return;
        }
        self.stalls += 1;
        while at < bytes.len() {
            let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
            // SAFETY: one pollfd on the stack.
            if unsafe { libc::poll(&mut pfd, 1, 5000) } <= 0 {
                return;
            }
            match outcome(send(fd, &bytes[at..])) {
                Ok(n) => at += n,
                Err(libc::EAGAIN) => {}
                Err(_) => return,
            }
        }
    }
}

fn send(fd: RawFd, bytes: &[u8]) -> isize {
    // SAFETY: a live slice; fd is an open socket.
    unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), SEND_FLAGS) }
}

/// A system call's return as bytes written or its errno.
fn outcome(n: isize) -> Result<usize, i32> {
    if n >= 0 { Ok(n as usize) } else { Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)) }
}

fn iovec(bytes: &[u8]) -> libc::iovec {
    libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() }
}
