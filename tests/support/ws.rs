//! WebSocket clients of the tests: plain tungstenite over a blocking
//! socket, commands and their replies, frames read for a while or on a
//! thread of their own (so the client keeps reading, and answering the
//! server's pings, whatever the test does), and a client stuck on purpose.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use klinecast::codec::bar::{self, Bar};

/// A blocking WebSocket client.
pub type Ws = tungstenite::WebSocket<TcpStream>;

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
