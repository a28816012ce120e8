//! `klinecast-loadgen`: drives many WebSocket clients against a gateway on
//! this machine and checks what they receive.
//!
//! Clients are spread over glommio executors (one per `--cores` entry) and
//! over several loopback source addresses (127.0.0.1, 127.0.0.2, ...) so
//! one address's ephemeral ports are not the limit. Each client subscribes,
//! then reads bars: it checks that `seq` never skips within a (mint, window)
//! series and records produce → receive latency in an HdrHistogram. A
//! progress line is printed every second and a JSON summary at the end.
//! Bounded by design: at most `MAX_CLIENTS` clients, loopback only, and the
//! run stops by itself after ramp-up plus `--duration`.

#![allow(unsafe_code)] // one call: handing a connected socket to glommio

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_tungstenite::WebSocketStream;
use clap::Parser;
use futures_util::StreamExt;
use glommio::net::TcpStream;
use glommio::timer::{sleep, timeout};
use glommio::{LocalExecutorBuilder, Placement, spawn_local};
use hdrhistogram::Histogram;
use klinecast::codec::bar;
use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;

/// Hard bound on clients per run.
const MAX_CLIENTS: usize = 100_000;
/// Hard bound on one run's length.
const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Drive WebSocket clients against a klinecast gateway on loopback.
#[derive(Debug, Parser, Clone)]
#[command(name = "klinecast-loadgen")]
struct Args {
    /// Gateway address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
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
    /// in turn (e.g. "sub-1s,sub-1m").
    #[arg(long, default_value = "sub-1s", value_delimiter = ',')]
    subscribe: Vec<String>,
    /// Clients that subscribe and then never read (slow-client tests).
    #[arg(long, default_value_t = 0)]
    never_read: usize,
    /// Cores to run client executors on.
    #[arg(long, default_value = "0", value_delimiter = ',')]
    cores: Vec<usize>,
    /// Expected interval between updates of one series, for coordinated
    /// omission correction of the latency histogram (0 = none).
    #[arg(long, default_value = "0", value_parser = klinecast::cli::parse_duration)]
    expected_interval: Duration,
    /// Write the JSON summary here as well as to stdout.
    #[arg(long)]
    summary: Option<std::path::PathBuf>,
}

/// Counters shared by every executor.
#[derive(Default)]
struct Totals {
    connected: AtomicU64,
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
        let handle = LocalExecutorBuilder::new(Placement::Fixed(core))
            .name(&format!("loadgen-{i}"))
            .io_memory(512 * 1024)
            .spawn(move || run_executor(i, args, totals, stop))?;
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
            "[{:>4.0}s] connected {} failed {} closed {} | bars {} ({:.0}/s) gaps {} missing {} invalid {}",
            started.elapsed().as_secs_f64(),
            totals.connected.load(Ordering::Relaxed),
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
        "clients": args.clients,
        "connected": totals.connected.load(Ordering::Relaxed),
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
            let command = args.subscribe[client % args.subscribe.len()].clone();
            let reader = client >= args.never_read;
            run_client(&args, source, &command, reader, &totals, &stop, &latency).await;
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

async fn run_client(
    args: &Args,
    source: IpAddr,
    command: &str,
    reader: bool,
    totals: &Totals,
    stop: &AtomicBool,
    latency: &RefCell<Histogram<u64>>,
) {
    let Ok(stream) = connect(args.target, source).await else {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    let url = format!("ws://{}/ws", args.target);
    let Ok((mut ws, _)) = async_tungstenite::client_async_with_config(url, stream, Some(config)).await else {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    totals.connected.fetch_add(1, Ordering::Relaxed);
    if ws.send(Message::Text(command.into())).await.is_err() {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if !reader {
        while !stop.load(Ordering::Relaxed) {
            sleep(Duration::from_millis(200)).await;
        }
        return;
    }
    read_bars(args, &mut ws, totals, stop, latency).await;
}

async fn read_bars(
    args: &Args,
    ws: &mut WebSocketStream<TcpStream>,
    totals: &Totals,
    stop: &AtomicBool,
    latency: &RefCell<Histogram<u64>>,
) {
    let mut last_seq: HashMap<([u8; 32], u32), u64> = HashMap::new();
    let expected_ns = args.expected_interval.as_nanos() as u64;
    while !stop.load(Ordering::Relaxed) {
        let next = timeout(Duration::from_millis(200), async { Ok(ws.next().await) }).await;
        let message = match next {
            Err(_) => continue,
            Ok(None) | Ok(Some(Err(_))) => {
                totals.closed_by_server.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Some(Ok(message))) => message,
        };
        totals.frames.fetch_add(1, Ordering::Relaxed);
        let Message::Binary(payload) = message else { continue };
        let Ok(archived) = bar::access(&payload) else {
            totals.invalid.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        totals.bars.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let lag = now.saturating_sub(archived.produced_ns.to_native());
        let mut h = latency.borrow_mut();
        let _ = if expected_ns > 0 { h.record_correct(lag, expected_ns) } else { h.record(lag) };
        let seq = archived.seq.to_native();
        let key = (archived.mint, archived.window_s.to_native());
        if let Some(prev) = last_seq.insert(key, seq)
            && seq != prev + 1
        {
            totals.gaps.fetch_add(1, Ordering::Relaxed);
            totals.missing.fetch_add(seq.saturating_sub(prev + 1), Ordering::Relaxed);
        }
    }
}
