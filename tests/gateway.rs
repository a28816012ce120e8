//! The gateway against the real broker, with real sockets and a real
//! WebSocket client: per-client consumers, the command language, history,
//! bad input from clients and from the topic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod support;

use std::time::Duration;

use klinecast::codec::bar::Bar;
use support::{Frame, Server, assert_no_gaps, bars, collect, command};

/// `serve` with a mock source of three mints at a modest rate.
fn serve() -> Server {
    Server::start(&["serve", "--mock-mints", "3", "--mock-rate", "300", "--ping-interval", "2s"])
}

#[test]
fn sub_1s_forwards_exactly_the_kafka_bytes_in_seq_order() {
    let server = serve();
    let mut ws = server.ws("/ws");
    let ack = command(&mut ws, "sub-1s");
    assert_eq!(ack["type"], "subscribed", "{ack}");
    let frames = collect(&mut ws, Duration::from_secs(4));
    let received: Vec<Vec<u8>> =
        frames.iter().filter_map(|f| if let Frame::Bar(b) = f { Some(b.clone()) } else { None }).collect();
    assert!(received.len() > 100, "only {} bars in 4 s", received.len());
    let decoded = bars(&frames);
    assert!(decoded.iter().all(|b| b.window_s == 1));
    assert_no_gaps(&decoded);
    // The same bytes as a plain Kafka consumer reads from the 1 s partition.
    let in_kafka: Vec<Vec<u8>> = support::read_topic(&server.topic, 1, Duration::from_secs(30))
        .into_iter()
        .filter(|r| r.key == "key_1")
        .map(|r| r.bar.unwrap().to_bytes())
        .collect();
    let start = in_kafka.iter().position(|b| *b == received[0]).expect("first frame is in Kafka");
    let window: Vec<Vec<u8>> = in_kafka[start..start + received.len()].to_vec();
    let strip = |b: &Vec<u8>| b.clone();
    assert_eq!(received.iter().map(strip).collect::<Vec<_>>(), window, "frames are the Kafka values, in order");
}

#[test]
fn windows_unsub_quoted_and_underscore_forms_and_json_mode() {
    let server = serve();
    let mut ws = server.ws("/ws");
    assert_eq!(command(&mut ws, "\"sub-5m\"")["type"], "subscribed");
    let five = bars(&collect(&mut ws, Duration::from_secs(2)));
    assert!(!five.is_empty() && five.iter().all(|b| b.window_s == 300), "only 5 m bars");
    assert_eq!(command(&mut ws, "unsub")["type"], "unsubscribed");
    let after = bars(&collect(&mut ws, Duration::from_millis(1500)));
    assert!(after.is_empty(), "{} bars after unsub", after.len());
    assert_eq!(command(&mut ws, "sub_1m")["type"], "subscribed");
    let minute = bars(&collect(&mut ws, Duration::from_secs(2)));
    assert!(!minute.is_empty() && minute.iter().all(|b| b.window_s == 60));

    let mut json = server.ws("/ws?format=json");
    assert_eq!(command(&mut json, "sub-1s")["type"], "subscribed");
    let texts: Vec<serde_json::Value> = collect(&mut json, Duration::from_secs(2))
        .into_iter()
        .filter_map(|f| if let Frame::Text(t) = f { serde_json::from_str(&t).ok() } else { None })
        .collect();
    assert!(!texts.is_empty());
    for key in ["open", "high", "low", "close", "unix_timestamp", "time_window_seconds", "mint", "seq", "closed"] {
        assert!(texts[0].get(key).is_some(), "JSON bar lacks {key}: {}", texts[0]);
    }
    assert_eq!(texts[0]["time_window_seconds"], 1);
}

#[test]
fn two_clients_on_one_window_each_receive_every_message() {
    let server = serve();
    let mut a = server.ws("/ws");
    let mut b = server.ws("/ws");
    command(&mut a, "sub-1s");
    command(&mut b, "sub-1s");
    std::thread::sleep(Duration::from_secs(3));
    let from_a = bars(&collect(&mut a, Duration::from_millis(500)));
    let from_b = bars(&collect(&mut b, Duration::from_millis(500)));
    assert!(from_a.len() > 100 && from_b.len() > 100, "{} / {}", from_a.len(), from_b.len());
    assert_no_gaps(&from_a);
    assert_no_gaps(&from_b);
    // Over the stretch both saw, they saw the same updates.
    let key = |bar: &Bar| (bar.mint, bar.seq);
    let first_common = from_b.iter().map(key).find(|k| from_a.iter().any(|x| key(x) == *k)).unwrap();
    let a_tail: Vec<_> = from_a.iter().map(key).skip_while(|k| *k != first_common).collect();
    let b_tail: Vec<_> = from_b.iter().map(key).skip_while(|k| *k != first_common).collect();
    let n = a_tail.len().min(b_tail.len());
    assert!(n > 50);
    assert_eq!(a_tail[..n], b_tail[..n]);
}

#[test]
fn hist_returns_closing_updates_in_time_order_then_live() {
    let server = serve();
    // Three mints close three 1 s bars a second: wait for more than 30.
    std::thread::sleep(Duration::from_secs(13));
    let mut ws = server.ws("/ws");
    let ack = command(&mut ws, "hist-1s 30");
    assert_eq!(ack["type"], "history", "{ack}");
    let got = bars(&collect(&mut ws, Duration::from_secs(3)));
    assert!(got.len() > 40, "{} bars", got.len());
    let history = &got[..30];
    assert!(history.iter().all(|b| b.closed && b.window_s == 1), "the first 30 are closing updates");
    assert!(history.windows(2).all(|w| w[0].open_time_s <= w[1].open_time_s), "in time order");
    let newest = history.iter().map(|b| b.open_time_s).max().unwrap();
    let oldest = history.iter().map(|b| b.open_time_s).min().unwrap();
    assert!(newest - oldest >= 8, "30 closing bars of 3 mints span about 10 s");
    // Live updates follow, continuing each mint's series without a gap.
    assert_no_gaps(&got[30..]);
    assert!(got[30..].iter().any(|b| !b.closed), "live (open) updates follow the history");
}

#[test]
fn bad_commands_and_frames_get_errors_or_closes_and_others_carry_on() {
    let server = serve();
    let mut watcher = server.ws("/ws");
    command(&mut watcher, "sub-1s");

    let mut ws = server.ws("/ws");
    for bad in ["subscribe please", "sub-7m", "sub-1s notamint", "hist-1s 0", "hist-1s 99999", ""] {
        let reply = command(&mut ws, bad);
        assert_eq!(reply["type"], "error", "{bad:?} -> {reply}");
        assert!(!reply["error"].as_str().unwrap_or_default().is_empty());
    }
    let reply = support::send(&mut ws, tungstenite::Message::Binary(vec![1, 2, 3].into()));
    assert_eq!(reply["error"], "commands are text frames");
    assert_eq!(command(&mut ws, "ping")["type"], "pong", "the connection survives bad commands");
    assert!(server.metric("klinecast_command_errors_total") >= 6.0);

    // An oversize message is a protocol close (1009), not a crash.
    let mut big = server.ws("/ws");
    big.send(tungstenite::Message::Text("x".repeat(100_000).into())).unwrap();
    let closed = collect(&mut big, Duration::from_secs(3));
    assert!(matches!(closed.last(), Some(Frame::Closed(Some(1009)))), "{closed:?}");

    // Invalid UTF-8 in a text frame: 1007.
    let closed = raw_text_frame(&server, &[0xff, 0xfe, 0xfd]);
    assert!(closed.windows(2).any(|w| w == [0x03, 0xef]), "close code 1007 expected: {closed:?}");

    // Garbage HTTP: 400, and the server still serves.
    assert!(server.raw(b"\x16\x03\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(server.get("/nope").starts_with("HTTP/1.1 404"));
    let still = bars(&collect(&mut watcher, Duration::from_secs(2)));
    assert!(still.len() > 50, "the other client kept receiving: {}", still.len());
}

/// Opens a WebSocket by hand and sends one masked text frame with `payload`;
/// returns what the server sent back after the handshake.
fn raw_text_frame(server: &Server, payload: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let hello = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.port
    );
    s.write_all(hello.as_bytes()).unwrap();
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| p + 4);
    out[at..].to_vec()
}

#[test]
fn garbage_on_the_topic_is_skipped_and_counted() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let server = serve();
    let mut ws = server.ws("/ws");
    command(&mut ws, "sub-1s");
    let producer: BaseProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", support::brokers()).create().unwrap();
    // Garbage, a format-1 record (121 bytes), and a record of a newer
    // format (3) in every other respect a valid bar: an old reader meeting
    // a new record refuses it by name and goes on.
    let mut newer = klinecast::codec::bar::Bar::one_trade([7; 32], 1, 60, 1e-8).to_bytes();
    newer[0] = 3;
    for garbage in [&b"not a bar"[..], &[0u8; 121][..], &[0xffu8; 200][..], &newer[..]] {
        producer.send(BaseRecord::to(&server.topic).partition(0).key("key_1").payload(garbage)).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let frames = bars(&collect(&mut ws, Duration::from_secs(3)));
    assert!(frames.len() > 100, "the client is unaffected: {} bars", frames.len());
    assert_no_gaps(&frames);
    assert!(server.metric("klinecast_kafka_malformed_messages_total") >= 4.0);
    assert!(frames.iter().all(|b| b.mint != [7; 32]), "the newer-format record was not forwarded");
    // `tail` names the format and keeps reading: the server stopped, it
    // reads the whole topic (garbage included) and exits when idle.
    let mut server = server;
    server.child.stop();
    let tail = std::process::Command::new(env!("CARGO_BIN_EXE_klinecast"))
        .args(["tail", "--brokers", &support::brokers(), "--topic", &server.topic, "--from-beginning"])
        .args(["--window", "1s", "--json", "--idle-exit", "5s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&tail.stderr);
    assert!(tail.status.success(), "{stderr}");
    assert!(stderr.contains("bar format 3, this reader reads format 2"), "{stderr}");
    assert!(stderr.contains("bar format 1"), "{stderr}");
    assert!(String::from_utf8_lossy(&tail.stdout).lines().count() > 100, "tail goes on after them");
}

#[test]
fn http_endpoints_answer_and_refuse_traversal() {
    let server = serve();
    assert!(server.get("/healthz").contains("\"kafka\":\"reachable\""));
    assert!(server.get("/metrics").contains("# TYPE klinecast_connections gauge"));
    assert!(server.get("/static/../Cargo.toml").starts_with("HTTP/1.1 404"));
    assert!(server.get("/static/%2e%2e/Cargo.toml").starts_with("HTTP/1.1 404"));
    assert!(server.get("/static/js/bar.js").contains("export function decodeBar"));
    let post = server.raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let cross_site = server.raw(
        format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: https://evil.example\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.port
        )
        .as_bytes(),
    );
    assert!(cross_site.starts_with("HTTP/1.1 403"), "{cross_site}");
}
