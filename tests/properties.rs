//! Property tests: the form of fuzzing that runs in CI. Every decoder and
//! parser that takes bytes from outside (Solana records, replay lines,
//! WebSocket commands, HTTP request heads, Kafka values) is fed arbitrary
//! input (it must never panic) and generated valid input (it must give back
//! exactly what was encoded). Case counts are modest so the whole file runs
//! in seconds in a debug build; raise them with `PROPTEST_CASES=...` for a
//! longer local run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Component, Path};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use klinecast::aggregate::{Aggregator, EmitPolicy, Windows};
use klinecast::codec::bar::{self, BAR_FORMAT, BAR_LEN, Bar, BarError};
use klinecast::codec::borsh::RejectKind;
use klinecast::codec::event::{self, Event, Position, Program};
use klinecast::codec::idl::{self, SCHEMAS, Ty};
use klinecast::codec::trade::{
    DecodeError, TRADE_EVENT_DISCRIMINATOR, TRADE_EVENT_MIN_LEN, TRADE_EVENT_OLDEST_LEN, TradeEvent,
};
use klinecast::gateway::http::{self, HttpError, MAX_HEAD_BYTES, Route};
use klinecast::gateway::protocol::{self, Command, CommandError};
use klinecast::market::{Market, Skip};
use klinecast::source::Filled;
use klinecast::source::replay::{self, Line, ReplaySource};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Offset of the `is_buy` byte in a TradeEvent record.
const IS_BUY_OFFSET: usize = 8 + 32 + 8 + 8;
/// Offset of the `closed` flag in an archived Bar (its last byte).
const CLOSED_OFFSET: usize = BAR_LEN - 1;
/// The windows the gateway serves by default, in seconds.
const WINDOWS: &[u32] = &[1, 60, 300, 3600];

/// `cases` per property, unless `PROPTEST_CASES` asks for another number
/// (e.g. `PROPTEST_CASES=100000` for a long local run). No failure files:
/// a failure prints its minimal input, which belongs in a named test.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------
// TradeEvent::decode

fn any_event() -> impl Strategy<Value = TradeEvent> {
    (any::<[u8; 32]>(), any::<u64>(), any::<u64>(), any::<bool>(), any::<[u8; 32]>(), any::<i64>(), any::<[u64; 4]>())
        .prop_map(|(mint, sol_amount, token_amount, is_buy, user, timestamp, reserves)| TradeEvent {
            mint,
            sol_amount,
            token_amount,
            is_buy,
            user,
            timestamp,
            virtual_sol_reserves: reserves[0],
            virtual_token_reserves: reserves[1],
            real_sol_reserves: reserves[2],
            real_token_reserves: reserves[3],
            quote_mint: [0; 32],
            quote_amount: sol_amount,
            virtual_quote_reserves: reserves[0],
        })
}

/// Arbitrary bytes, half of them behind the right discriminator so the
/// decoder gets past its first check.
fn record_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..400),
        vec(any::<u8>(), 0..400).prop_map(|tail| {
            let mut bytes = TRADE_EVENT_DISCRIMINATOR.to_vec();
            bytes.extend(tail);
            bytes
        }),
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    /// Arbitrary bytes never panic; whatever decodes has the oldest layout's
    /// fields, and the 2024 layout's prefix decodes to exactly what it
    /// encodes.
    #[test]
    fn trade_decode_never_panics_and_accepts_only_valid_records(bytes in record_bytes()) {
        match TradeEvent::decode(&bytes) {
            Ok(event) => {
                prop_assert!(bytes.len() >= TRADE_EVENT_OLDEST_LEN);
                if bytes.len() >= TRADE_EVENT_MIN_LEN {
                    prop_assert_eq!(&event.encode()[..], &bytes[..TRADE_EVENT_MIN_LEN]);
                }
            }
            Err(DecodeError::TooShort { len, need }) => {
                prop_assert_eq!(len, bytes.len());
                prop_assert!(len < need);
            }
            Err(DecodeError::Truncated { len, .. }) => prop_assert!(len > TRADE_EVENT_OLDEST_LEN),
            Err(DecodeError::WrongDiscriminator { found }) => {
                prop_assert_eq!(&found[..], &bytes[..8]);
                prop_assert_ne!(found, TRADE_EVENT_DISCRIMINATOR);
            }
            Err(DecodeError::BadBool { field, byte }) => {
                prop_assert_eq!(&bytes[..8], &TRADE_EVENT_DISCRIMINATOR[..]);
                prop_assert!(byte >= 2);
                if field == "is_buy" {
                    prop_assert_eq!(byte, bytes[IS_BUY_OFFSET]);
                }
            }
            Err(DecodeError::BadString { field }) => prop_assert_eq!(field, "ix_name"),
        }
    }

    /// The ingest loop's path (`Market::trade_of`, with its shortcut for the
    /// 113- and 129-byte layouts) gives the trade decoding then pricing
    /// gives, and refuses what they refuse.
    #[test]
    fn the_ingest_path_agrees_with_decode_then_price(
        bytes in prop_oneof![
            record_bytes(),
            any_event().prop_map(|e| e.encode().to_vec()),
            any_event().prop_map(|e| e.encode()[..TRADE_EVENT_OLDEST_LEN].to_vec()),
        ],
    ) {
        let position = Position { slot: 5, signature: 6, event: 7 };
        let mut market = Market::new(0);
        let fast = market.trade_of(Some(Program::PumpFun), &bytes, position);
        let slow = event::decode(Some(Program::PumpFun), &bytes).map(|e| market.price(&e, position));
        match fast {
            Ok(trade) => {
                prop_assert_eq!(slow, Ok(Ok(trade)));
                let event = TradeEvent::decode(&bytes).unwrap();
                if event.quote_mint == [0; 32] {
                    // SOL: lamports per whole token, from the virtual reserves.
                    let price = (event.virtual_sol_reserves as f64 / 1e9) / (event.virtual_token_reserves as f64 / 1e6);
                    prop_assert_eq!((trade.price, trade.quote_decimals, trade.quote_amount), (price, 9, event.sol_amount));
                }
            }
            Err(Skip::Decode(error)) => prop_assert_eq!(slow.err(), Some(error)),
            Err(Skip::Unpriced(unpriced)) => prop_assert_eq!(slow, Ok(Err(unpriced))),
        }
    }

    /// Any event round-trips through the 2024 layout.
    #[test]
    fn trade_encode_decode_round_trips(event in any_event()) {
        let encoded = event.encode();
        prop_assert_eq!(encoded.len(), TRADE_EVENT_MIN_LEN);
        prop_assert_eq!(TradeEvent::decode(&encoded), Ok(event));
    }

    /// Every record shorter than the oldest layout is `TooShort` with its
    /// length, even a prefix of a valid one.
    #[test]
    fn trade_short_records_are_too_short(event in any_event(), len in 8..TRADE_EVENT_OLDEST_LEN) {
        let encoded = event.encode();
        prop_assert_eq!(TradeEvent::decode(&encoded[..len]), Err(DecodeError::TooShort { len, need: TRADE_EVENT_OLDEST_LEN }));
    }

    /// Any other 8 bytes in front are another event, reported as found.
    #[test]
    fn trade_other_discriminators_are_refused(event in any_event(), found in any::<[u8; 8]>()) {
        prop_assume!(found != TRADE_EVENT_DISCRIMINATOR);
        let mut bytes = event.encode();
        bytes[..8].copy_from_slice(&found);
        prop_assert_eq!(TradeEvent::decode(&bytes), Err(DecodeError::WrongDiscriminator { found }));
    }

    /// A Borsh bool is 0 or 1; 2..=255 is refused with the byte.
    #[test]
    fn trade_bool_bytes_from_two_are_refused(event in any_event(), byte in 2..=u8::MAX) {
        let mut bytes = event.encode().to_vec();
        bytes[IS_BUY_OFFSET] = byte;
        prop_assert_eq!(TradeEvent::decode(&bytes), Err(DecodeError::BadBool { field: "is_buy", byte }));
    }
}

// ---------------------------------------------------------------------------
// Every event decoder against the IDL decoder

/// A value of `ty`, as bytes, from `seed`: strings of 0..40 UTF-8 bytes,
/// 0..4 shareholders.
fn field_bytes(ty: Ty, seed: u64) -> Vec<u8> {
    let n = |bytes: usize| (0..bytes).map(|i| (seed.rotate_left(i as u32 * 7) as u8) ^ i as u8).collect::<Vec<u8>>();
    match ty {
        Ty::Pk => n(32),
        Ty::U64 | Ty::I64 => n(8),
        Ty::U16 => n(2),
        Ty::U8 => n(1),
        Ty::Bool => vec![(seed & 1) as u8],
        Ty::Str => {
            let text: String = (0..seed % 40).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let mut out = (text.len() as u32).to_le_bytes().to_vec();
            out.extend_from_slice(text.as_bytes());
            out
        }
        Ty::Shareholders => {
            let count = (seed % 4) as usize;
            let mut out = (count as u32).to_le_bytes().to_vec();
            out.extend((0..count * 34).map(|i| i as u8));
            out
        }
    }
}

/// A valid record of schema `which`: its fields from `seeds`, cut after
/// `keep` fields (at least the oldest layout's), then `trailing` bytes if
/// it has every field.
fn valid_record(which: usize, seeds: &[u64], keep: usize, trailing: &[u8]) -> (Vec<u8>, usize) {
    let schema = &SCHEMAS[which % SCHEMAS.len()];
    let keep = schema.oldest_fields + keep % (schema.fields.len() - schema.oldest_fields + 1);
    let mut bytes = schema.discriminator.to_vec();
    for (i, (_, ty)) in schema.fields.iter().take(keep).enumerate() {
        bytes.extend(field_bytes(*ty, seeds[i % seeds.len()]));
    }
    if keep == schema.fields.len() {
        bytes.extend_from_slice(trailing);
    }
    (bytes, keep)
}

proptest! {
    #![proptest_config(config(2000))]

    /// Every valid record of every event, of every layout length and with
    /// trailing bytes, decodes with the fast decoder and the IDL decoder,
    /// and they read the same values.
    #[test]
    fn fast_decoders_read_what_the_idl_says(
        which in 0..SCHEMAS.len(),
        seeds in vec(any::<u64>(), 1..40),
        keep in any::<usize>(),
        trailing in vec(any::<u8>(), 0..30),
    ) {
        let (bytes, kept) = valid_record(which, &seeds, keep, &trailing);
        let full = idl::decode_full(None, &bytes);
        prop_assert!(full.is_ok(), "IDL decoder: {:?}", full.err());
        let full = full.unwrap();
        prop_assert_eq!(full.fields.len(), kept);
        let fast = event::decode(None, &bytes);
        prop_assert!(fast.is_ok(), "fast decoder: {:?}", fast.err());
        let field = |name: &str| full.fields.get(name).cloned();
        let b58 = |key: &[u8; 32]| serde_json::json!(bs58::encode(key).into_string());
        match fast.unwrap() {
            Event::Trade(t) => {
                prop_assert_eq!(field("mint"), Some(b58(&t.mint)));
                prop_assert_eq!(field("timestamp"), Some(serde_json::json!(t.timestamp)));
                prop_assert_eq!(field("virtual_token_reserves"), Some(serde_json::json!(t.virtual_token_reserves)));
                if let Some(quote) = field("virtual_quote_reserves") {
                    prop_assert_eq!(quote, serde_json::json!(t.virtual_quote_reserves));
                }
            }
            Event::Swap(s) => {
                prop_assert_eq!(field("pool"), Some(b58(&s.pool)));
                prop_assert_eq!(field("pool_base_token_reserves"), Some(serde_json::json!(s.pool_base_reserves)));
            }
            Event::Created(c) | Event::Completed(c) => prop_assert_eq!(field("mint"), Some(b58(&c.mint))),
            Event::Migrated(m) => prop_assert_eq!(field("pool"), Some(b58(&m.pool))),
            Event::PoolCreated(p) => prop_assert_eq!(field("pool"), Some(b58(&p.pool))),
        }
    }

    /// Arbitrary bytes behind any known discriminator: both decoders accept
    /// the same records, and refuse the rest as this event (too short or a
    /// bad value: the fast decoders check the length first) rather than as
    /// another; neither panics.
    #[test]
    fn fast_and_idl_decoders_agree_on_arbitrary_bytes(
        which in 0..SCHEMAS.len(),
        seeds in vec(any::<u64>(), 1..40),
        keep in any::<usize>(),
        cut in any::<usize>(),
        flip in any::<(usize, u8)>(),
    ) {
        let (mut bytes, _) = valid_record(which, &seeds, keep, &[]);
        let len = 8 + cut % (bytes.len() - 7);
        bytes.truncate(len);
        if bytes.len() > 8 {
            let at = 8 + flip.0 % (bytes.len() - 8);
            bytes[at] ^= flip.1;
        }
        let other = |e: DecodeError| e.kind() == RejectKind::OtherEvent;
        let fast = event::decode(None, &bytes).map(|_| ()).map_err(other);
        let full = idl::decode_full(None, &bytes).map(|_| ()).map_err(other);
        prop_assert_eq!(fast, full, "{} bytes of {}", bytes.len(), SCHEMAS[which].name);
    }
}

// ---------------------------------------------------------------------------
// replay::parse_line and the replay reader

/// Optional ASCII whitespace as log tools leave it around lines.
fn blanks() -> impl Strategy<Value = String> {
    vec(select(vec![' ', '\t', '\r']), 0..3).prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(config(2000))]

    /// Any line classifies without panicking; data is a trimmed slice of
    /// the line, and without the prefix it is one bare token.
    #[test]
    fn parse_line_never_panics(line in any::<String>()) {
        match replay::parse_line(&line) {
            Line::Skip => {}
            Line::Json(json) => prop_assert!(json.starts_with(char::from(0x7b))),
            Line::Data(data) => {
                prop_assert_eq!(data.trim(), data);
                prop_assert!(line.contains(data));
                if !line.trim().starts_with(replay::PROGRAM_DATA_PREFIX) {
                    prop_assert!(!data.is_empty());
                    prop_assert!(!data.contains(|c: char| c.is_whitespace() || c == ':'));
                }
            }
        }
    }

    /// `Program data: <base64>` yields exactly that base64 (which decodes
    /// back to the bytes), as does the bare base64 token.
    #[test]
    fn parse_line_yields_the_base64_of_program_data(
        bytes in vec(any::<u8>(), 0..300),
        before in blanks(),
        gap in blanks(),
        after in blanks(),
    ) {
        let b64 = STANDARD.encode(&bytes);
        let line = format!("{before}Program data:{gap}{b64}{after}");
        prop_assert_eq!(replay::parse_line(&line), Line::Data(&b64));
        prop_assert_eq!(STANDARD.decode(b64.as_bytes()).unwrap(), bytes.clone());
        let bare = format!("{before}{b64}{after}");
        let want = if bytes.is_empty() { Line::Skip } else { Line::Data(&b64) };
        prop_assert_eq!(replay::parse_line(&bare), want);
        let comment = format!("{before}# Program data: {b64}");
        prop_assert_eq!(replay::parse_line(&comment), Line::Skip);
    }

}

proptest! {
    // Each case starts the replay's reader thread.
    #![proptest_config(config(500))]

    /// The whole reader over arbitrary bytes: never panics, ends, and every
    /// line is exactly one of record, skipped or bad.
    #[test]
    fn replay_reader_accounts_for_every_line(input in vec(any::<u8>(), 0..2000)) {
        let mut source = ReplaySource::from_reader(Box::new(Cursor::new(input.clone()))).unwrap();
        let mut handed = 0u64;
        // Lines are read on a thread of the source's own; `fill` never waits.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match source.fill(7, |_| handed += 1) {
                Filled::Finished => break,
                Filled::Idle(wait) => std::thread::sleep(wait.min(Duration::from_micros(200))),
                Filled::Records(_) => {}
            }
            prop_assert!(Instant::now() < deadline, "the replay does not end");
        }
        let stats = source.stats();
        let lines = input.split(|&b| b == b'\n').count() as u64 - u64::from(input.last().is_none_or(|&b| b == b'\n'));
        prop_assert_eq!(stats.lines, lines);
        prop_assert_eq!(stats.records, handed);
        prop_assert_eq!(stats.records + stats.skipped + stats.bad, stats.lines);
    }
}

// ---------------------------------------------------------------------------
// protocol::parse_command, Reply

/// The JSON reply the gateway would send for `text`.
fn reply_to(text: &str) -> (Result<Command, CommandError>, String) {
    let parsed = protocol::parse_command(text, WINDOWS);
    let reply = match &parsed {
        Ok(command) => protocol::Reply::Ack(command).to_json(),
        Err(error) => protocol::Reply::Error(&error.to_string()).to_json(),
    };
    (parsed, reply)
}

/// Text made of pieces of the command language, so generated input gets
/// past the first checks more often than random characters do.
fn command_like() -> impl Strategy<Value = String> {
    let pieces = vec![
        "sub",
        "unsub",
        "hist",
        "ping",
        "-",
        "_",
        "5m",
        "1s",
        "1h",
        "60",
        "3600s",
        "0",
        "1001",
        " ",
        "\t",
        "\"",
        "\\",
        "é",
        "\u{0}",
        "\u{3000}",
        "1",
        "999",
        "11111111111111111111111111111111",
    ];
    vec(select(pieces), 0..14).prop_map(|p| p.concat())
}

/// One way of writing window `w`: `5m`, `300s`, `300`, `5M`, `05m`.
fn window_text(w: u32) -> impl Strategy<Value = String> {
    let units: Vec<(char, u32)> =
        [('s', 1), ('m', 60), ('h', 3600), ('d', 86_400)].into_iter().filter(|(_, s)| w.is_multiple_of(*s)).collect();
    (select(units), any::<bool>(), any::<bool>(), 0..3usize).prop_map(move |((unit, scale), upper, bare, zeros)| {
        let digits = format!("{}{}", "0".repeat(zeros), w / scale);
        match (unit, bare) {
            ('s', true) => digits,
            _ => format!("{digits}{}", if upper { unit.to_ascii_uppercase() } else { unit }),
        }
    })
}

/// Whitespace between arguments (at least one character).
fn spaces() -> impl Strategy<Value = String> {
    vec(select(vec![' ', '\t', '\n']), 1..4).prop_map(|cs| cs.into_iter().collect())
}

/// A valid command in its plain spelling, and what it means.
fn plain_command() -> impl Strategy<Value = (String, Command)> {
    let window = select(WINDOWS.to_vec()).prop_flat_map(|w| (Just(w), window_text(w)));
    let sep = select(vec!['-', '_']);
    let mint = proptest::option::of(any::<[u8; 32]>());
    prop_oneof![
        (window.clone(), sep.clone(), mint.clone(), spaces()).prop_map(|((w, text), sep, mint, sp)| {
            let tail = mint.map(|m| format!("{sp}{}", bs58::encode(m).into_string())).unwrap_or_default();
            (format!("sub{sep}{text}{tail}"), Command::Subscribe { window_s: w, mint })
        }),
        (window.clone(), sep.clone(), 1..=protocol::MAX_HISTORY, 0..2usize, mint, spaces(), spaces()).prop_map(
            |((w, text), sep, count, zeros, mint, sp1, sp2)| {
                let tail = mint.map(|m| format!("{sp2}{}", bs58::encode(m).into_string())).unwrap_or_default();
                let count_text = format!("{}{count}", "0".repeat(zeros));
                (format!("hist{sep}{text}{sp1}{count_text}{tail}"), Command::History { window_s: w, count, mint })
            }
        ),
        (proptest::option::of(window), sep).prop_map(|(window, sep)| match window {
            Some((w, text)) => (format!("unsub{sep}{text}"), Command::Unsubscribe { window_s: Some(w) }),
            None => ("unsub".to_owned(), Command::Unsubscribe { window_s: None }),
        }),
        Just(("ping".to_owned(), Command::Ping)),
    ]
}

/// `text` as a client may send it: maybe wrapped in a JSON string literal
/// (the original clients quote the whole command), maybe padded.
fn dressed(text: String) -> impl Strategy<Value = String> {
    (any::<bool>(), blanks(), blanks()).prop_map(move |(quoted, before, after)| {
        let text = if quoted { serde_json::to_string(&text).unwrap() } else { text.clone() };
        format!("{before}{text}{after}")
    })
}

/// A valid command in one of its accepted spellings, and what it means.
fn valid_command() -> impl Strategy<Value = (String, Command)> {
    plain_command().prop_flat_map(|(text, command)| (dressed(text), Just(command)))
}

/// The reply's `type`, checked to be valid JSON of the documented shape.
fn reply_type(reply: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(reply).unwrap_or_else(|e| panic!("{reply:?}: {e}"));
    value["type"].as_str().unwrap_or_else(|| panic!("no type in {reply}")).to_owned()
}

proptest! {
    #![proptest_config(config(2000))]

    /// Arbitrary text never panics; every reply is one small JSON object
    /// whose type matches the outcome.
    #[test]
    fn parse_command_never_panics_and_replies_are_json(
        text in prop_oneof![any::<String>(), command_like(), "\\PC{0,300}"],
    ) {
        let (parsed, reply) = reply_to(&text);
        let kind = reply_type(&reply);
        match parsed {
            Ok(Command::Subscribe { window_s, .. }) => {
                prop_assert_eq!(kind, "subscribed");
                prop_assert!(WINDOWS.contains(&window_s));
            }
            Ok(Command::Unsubscribe { .. }) => prop_assert_eq!(kind, "unsubscribed"),
            Ok(Command::History { window_s, count, .. }) => {
                prop_assert_eq!(kind, "history");
                prop_assert!(WINDOWS.contains(&window_s));
                prop_assert!((1..=protocol::MAX_HISTORY).contains(&count));
            }
            Ok(Command::Ping) => prop_assert_eq!(kind, "pong"),
            Ok(Command::Resume { window_s, .. }) => {
                prop_assert_eq!(kind, "subscribed");
                prop_assert!(WINDOWS.contains(&window_s));
            }
            Ok(Command::Page { window_s, count, .. }) => {
                prop_assert_eq!(kind, "page");
                prop_assert!(WINDOWS.contains(&window_s));
                prop_assert!((1..=protocol::MAX_HISTORY).contains(&count));
            }
            Err(error) => {
                prop_assert_eq!(kind, "error");
                let value: serde_json::Value = serde_json::from_str(&reply).unwrap();
                let message = error.to_string();
                prop_assert_eq!(value["error"].as_str(), Some(message.as_str()));
            }
        }
        // Errors echo at most MAX_ECHO_BYTES of input: replies stay short.
        prop_assert!(reply.len() < 600, "{} bytes: {}", reply.len(), reply);
        if text.len() > protocol::MAX_COMMAND_BYTES {
            prop_assert_eq!(protocol::parse_command(&text, WINDOWS), Err(CommandError::TooLong { len: text.len() }));
        }
    }

    /// Every accepted spelling of every command parses to what it means,
    /// and its acknowledgement names the same window and mint.
    #[test]
    fn valid_commands_parse_to_the_expected_command((text, want) in valid_command()) {
        let (parsed, reply) = reply_to(&text);
        prop_assert_eq!(parsed, Ok(want.clone()), "{:?}", text);
        let value: serde_json::Value = serde_json::from_str(&reply).unwrap();
        match want {
            Command::Subscribe { window_s, mint } | Command::History { window_s, mint, .. } => {
                prop_assert_eq!(value["window_s"].as_u64(), Some(u64::from(window_s)));
                let mint = mint.map(|m| bs58::encode(m).into_string());
                prop_assert_eq!(value["mint"].as_str(), mint.as_deref());
            }
            Command::Unsubscribe { window_s } => {
                prop_assert_eq!(value["window_s"].as_u64(), window_s.map(u64::from));
            }
            Command::Ping => prop_assert_eq!(reply, r#"{"type":"pong"}"#),
            Command::Resume { .. } | Command::Page { .. } => {}
        }
    }

    /// A valid command with one more argument is refused, never half-applied.
    #[test]
    fn extra_arguments_are_refused(
        text in (plain_command(), "[a-z0-9]{1,8}").prop_flat_map(|((text, _), extra)| dressed(format!("{text} {extra}"))),
    ) {
        let parsed = protocol::parse_command(&text, WINDOWS);
        // A `sub-<w>`/`hist-<w> n` without a mint takes `extra` as the mint;
        // `since` and `from` want a number after them.
        prop_assert!(
            matches!(
                parsed,
                Err(CommandError::ExtraArguments { .. }
                    | CommandError::BadMint(_)
                    | CommandError::BadNumber { .. }
                    | CommandError::SinceNeedsMint)
            ),
            "{:?} -> {:?}", text, parsed
        );
    }
}

// ---------------------------------------------------------------------------
// http::parse_head and http::route

/// A header name: an HTTP token.
fn header_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,20}"
}

/// A header value: visible ASCII with inner spaces, padded with blanks the
/// parser must trim.
fn header_value() -> impl Strategy<Value = (String, String)> {
    ("[!-~]([ -~]{0,40}[!-~])?", "[ \t]{0,2}", "[ \t]{0,2}")
        .prop_map(|(value, lead, trail)| (format!("{lead}{value}{trail}"), value))
}

/// A path segment, raw and decoded: unreserved characters and
/// percent-encoded bytes of ASCII letters, digits and a few others.
fn path_segment() -> impl Strategy<Value = (String, String)> {
    let piece = prop_oneof![
        "[A-Za-z0-9._~-]".prop_map(|c| (c.clone(), c)),
        select(vec![b'a', b'Z', b'0', b'.', b' ', b'/', b'%', b'?', b'#', b'+'])
            .prop_map(|b| { (format!("%{b:02X}"), char::from(b).to_string()) }),
    ];
    vec(piece, 0..8).prop_map(|pieces| pieces.into_iter().unzip::<String, String, String, String>())
}

/// A request target: raw text, decoded path, raw query.
fn target() -> impl Strategy<Value = (String, String, String)> {
    (vec(path_segment(), 0..5), proptest::option::of("[A-Za-z0-9=&+%._~-]{0,30}")).prop_map(|(segments, query)| {
        let raw: String = segments.iter().map(|(r, _)| format!("/{r}")).collect();
        let decoded: String = segments.iter().map(|(_, d)| format!("/{d}")).collect();
        let (raw, decoded) = if raw.is_empty() { ("/".to_owned(), "/".to_owned()) } else { (raw, decoded) };
        match query {
            Some(q) => (format!("{raw}?{q}"), decoded, q),
            None => (raw, decoded, String::new()),
        }
    })
}

/// A complete, valid request head and what it parses to.
fn request() -> impl Strategy<Value = (Vec<u8>, String, String, String, Vec<(String, String)>)> {
    (
        select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]),
        target(),
        select(vec!["HTTP/1.1", "HTTP/1.0"]),
        vec((header_name(), header_value()), 0..12),
    )
        .prop_map(|(method, (raw, path, query), version, headers)| {
            let mut text = format!("{method} {raw} {version}\r\n");
            for (name, (sent, _)) in &headers {
                text.push_str(&format!("{name}:{sent}\r\n"));
            }
            text.push_str("\r\n");
            let want = headers.into_iter().map(|(n, (_, v))| (n.to_ascii_lowercase(), v)).collect();
            (text.into_bytes(), method.to_owned(), path, query, want)
        })
}

/// Text shaped like request targets, rich in dots, slashes and escapes.
fn tricky_path() -> impl Strategy<Value = String> {
    let pieces = vec![
        "/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", "static", "a", "js", ".git", "%00", "%20", "~",
        "%252e", "?", "#", "C:",
    ];
    vec(select(pieces), 0..12).prop_map(|p| format!("/static/{}", p.concat()))
}

/// Whether a relative path stays below the directory it is joined to.
fn stays_inside(rel: &str) -> bool {
    Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)))
}

proptest! {
    #![proptest_config(config(1000))]

    /// Arbitrary bytes never panic; a complete head is self-delimiting and
    /// within the size bound, and routing it never panics.
    #[test]
    fn parse_head_never_panics(bytes in prop_oneof![
        vec(any::<u8>(), 0..600),
        (request(), vec(any::<u8>(), 0..64)).prop_map(|((mut r, ..), noise)| {
            // A valid head with random bytes overwritten.
            for (i, b) in noise.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0] as usize, c[1])) {
                let at = i % r.len();
                r[at] = b;
            }
            r
        }),
    ]) {
        match http::parse_head(&bytes) {
            Ok(Some((head, len))) => {
                prop_assert!(len <= bytes.len() && len <= MAX_HEAD_BYTES);
                prop_assert!(head.path.starts_with('/'));
                prop_assert!(head.headers.iter().all(|(n, _)| !n.bytes().any(|b| b.is_ascii_uppercase())));
                prop_assert_eq!(http::parse_head(&bytes[..len]), Ok(Some((head.clone(), len))));
                let _ = (http::route(&head), head.is_websocket_upgrade(), head.query_param("mint"));
            }
            Ok(None) => prop_assert!(bytes.len() < MAX_HEAD_BYTES),
            Err(error) => prop_assert!(matches!(error.status(), 400 | 431)),
        }
    }

}

proptest! {
    // Each case parses every prefix of a request (hundreds of parses).
    #![proptest_config(config(400))]

    /// A generated request parses to its parts; every strict prefix is
    /// incomplete; bytes after the head are left alone.
    #[test]
    fn valid_requests_parse_and_every_prefix_is_incomplete(
        (bytes, method, path, query, headers) in request(),
        body in vec(any::<u8>(), 0..32),
    ) {
        let (head, len) = http::parse_head(&bytes).unwrap().unwrap();
        prop_assert_eq!(len, bytes.len());
        prop_assert_eq!(&head.method, &method);
        prop_assert_eq!(&head.path, &path);
        prop_assert_eq!(&head.query, &query);
        prop_assert_eq!(&head.headers, &headers);
        for end in 0..bytes.len() {
            prop_assert_eq!(http::parse_head(&bytes[..end]), Ok(None), "prefix of {} bytes", end);
        }
        let mut pipelined = bytes.clone();
        pipelined.extend_from_slice(&body);
        prop_assert_eq!(http::parse_head(&pipelined).unwrap().map(|(_, n)| n), Some(len));
        let route = http::route(&head);
        if method != "GET" && method != "HEAD" {
            prop_assert_eq!(route, Route::MethodNotAllowed);
        }
    }

}

proptest! {
    #![proptest_config(config(1000))]

    /// Nothing routed to a static file can leave `static/`: no `.` or `..`
    /// segment (whether sent plain or percent-encoded), no hidden file, no
    /// absolute path, no backslash.
    #[test]
    fn static_routes_never_escape_the_directory(raw in tricky_path(), method in select(vec!["GET", "HEAD"])) {
        let request = format!("{method} {raw} HTTP/1.1\r\nHost: x\r\n\r\n");
        let Ok(Some((head, _))) = http::parse_head(request.as_bytes()) else { return Ok(()) };
        let has_dot_segment = head.path.split('/').any(|s| s == ".." || s == ".");
        match http::route(&head) {
            Route::Static(rel) => {
                prop_assert!(!has_dot_segment, "{:?} routed to {:?}", raw, rel);
                prop_assert!(stays_inside(&rel), "{:?} routed to {:?}", raw, rel);
                prop_assert!(!rel.split('/').any(|s| s.starts_with('.')), "hidden file {:?}", rel);
                prop_assert!(!rel.contains(['\\', '%', '\0', ':']), "{:?}", rel);
                prop_assert_eq!(format!("/static/{rel}"), head.path);
            }
            Route::NotFound => {}
            other => prop_assert!(false, "{:?} routed to {:?}", raw, other),
        }
    }

    /// Heads over the size bound are refused, however they are cut.
    #[test]
    fn oversize_heads_are_refused(pad in MAX_HEAD_BYTES..MAX_HEAD_BYTES + 2000, end in any::<bool>()) {
        let mut bytes = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        bytes.resize(pad, b'a');
        if end {
            bytes.extend_from_slice(b"\r\n\r\n");
        }
        prop_assert_eq!(http::parse_head(&bytes), Err(HttpError::TooLarge));
    }
}

// ---------------------------------------------------------------------------
// bar::access

/// A bar that satisfies every invariant `Bar::check` asserts.
fn valid_bar() -> impl Strategy<Value = Bar> {
    let price = prop_oneof![0.0..1e3f64, 1e-12..1e-6f64, Just(0.0)];
    (
        any::<[u8; 32]>(),
        1..=604_800u32,
        -1_000_000_000i64..1_000_000_000,
        1..=u32::MAX,
        [price.clone(), price.clone(), price.clone(), price],
        any::<[u64; 10]>(),
        (any::<bool>(), 1..=3u8, any::<u8>(), any::<[u8; 32]>(), any::<u32>()),
    )
        .prop_map(
            |(mint, window_s, slot, trades, mut prices, counters, (closed, venues, decimals, quote_mint, event))| {
                prices.sort_by(f64::total_cmp);
                let [low, a, b, high] = prices;
                Bar {
                    format: BAR_FORMAT,
                    venues,
                    quote_decimals: decimals,
                    mint,
                    quote_mint,
                    open_time_s: slot * i64::from(window_s),
                    window_s,
                    trades,
                    open: a,
                    high,
                    low,
                    close: b,
                    volume_quote: counters[0],
                    volume_tokens: counters[1],
                    buy_volume_quote: counters[2],
                    buy_volume_tokens: counters[5],
                    seq: counters[3],
                    produced_ns: counters[4],
                    last_slot: counters[6],
                    last_signature: counters[7],
                    last_event: event,
                    resume_slot: counters[8],
                    closed,
                }
            },
        )
}

proptest! {
    #![proptest_config(config(2000))]

    /// Arbitrary bytes of any length never panic; whatever is accepted is
    /// the canonical encoding of a bar that satisfies the invariants.
    #[test]
    fn bar_access_never_panics(bytes in prop_oneof![
        vec(any::<u8>(), 0..300),
        vec(any::<u8>(), BAR_LEN..=BAR_LEN),
        (valid_bar(), any::<usize>(), any::<u8>()).prop_map(|(bar, at, byte)| {
            let mut bytes = bar.to_bytes();
            bytes[at % BAR_LEN] = byte;
            bytes
        }),
    ]) {
        match bar::access(&bytes) {
            Ok(archived) => {
                prop_assert_eq!(bytes.len(), BAR_LEN);
                let bar = archived.to_bar();
                prop_assert!(bar.check().is_ok());
                prop_assert_eq!(bar.to_bytes(), bytes);
            }
            Err(BarError::WrongLength { len }) => {
                prop_assert_eq!(len, bytes.len());
                prop_assert_ne!(len, BAR_LEN);
            }
            Err(BarError::FormatOne) => prop_assert_eq!(bytes.len(), bar::BAR_V1_LEN),
            Err(BarError::UnsupportedFormat { found }) => {
                prop_assert_ne!(found, BAR_FORMAT);
                prop_assert_eq!(&found.to_le_bytes()[..], &bytes[..2]);
            }
            Err(BarError::Malformed(_) | BarError::Invariant(_)) => prop_assert_eq!(bytes.len(), BAR_LEN),
        }
    }

    /// A valid bar round-trips through its archive, read in place at every
    /// alignment (librdkafka's payload buffers are not aligned).
    #[test]
    fn valid_bars_round_trip_at_any_alignment(bar in valid_bar(), shift in 0..16usize) {
        prop_assert!(bar.check().is_ok());
        let bytes = bar.to_bytes();
        prop_assert_eq!(bytes.len(), BAR_LEN);
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(&bytes);
        prop_assert_eq!(bar::access(&shifted[shift..]).map(|b| b.to_bar()).ok(), Some(bar));
    }

    /// The closed flag is a bool: any byte from 2 is refused.
    #[test]
    fn closed_flag_bytes_from_two_are_refused(bar in valid_bar(), byte in 2..=u8::MAX) {
        let mut bytes = bar.to_bytes();
        bytes[CLOSED_OFFSET] = byte;
        prop_assert!(matches!(bar::access(&bytes), Err(BarError::Malformed(_))));
    }
}

// ---------------------------------------------------------------------------
// The aggregator

/// One step of an ingest loop.
#[derive(Debug, Clone)]
enum Step {
    /// A trade of mint `mint` (an index into a small pool), `dt` seconds
    /// after the previous step's time (negative: an out-of-order trade).
    Trade { mint: u8, dt: i64, sol: u64, reserves: (u64, u64), is_buy: bool },
    /// The wall clock ticks `dt` seconds on.
    Tick { dt: i64 },
    /// The emit interval elapsed (coalescing policy).
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    let dt = prop_oneof![6 => 0..3i64, 2 => -5..0i64, 1 => 0..4000i64];
    prop_oneof![
        8 => (0..4u8, dt, 0..10_000_000_000u64, (1..u64::MAX, 1..u64::MAX), any::<bool>())
            .prop_map(|(mint, dt, sol, reserves, is_buy)| Step::Trade { mint, dt, sol, reserves, is_buy }),
        1 => (0..90i64).prop_map(|dt| Step::Tick { dt }),
        1 => Just(Step::Flush),
    ]
}

fn window_list() -> impl Strategy<Value = Windows> {
    select(vec!["1s,1m,5m,1h", "1s", "7s,1m", "1m,5m,15m,1h,4h,1d", "2s,3s,5s"]).prop_map(|w| w.parse().unwrap())
}

/// What an aggregator emitted, checked: every bar valid, `seq` of each
/// series 1, 2, 3, ... without a gap, nothing after a close but a later bar,
/// and (after `close_all`) every applied trade in exactly one closing bar.
fn check_emitted(windows: &Windows, bars: &[Bar], agg: &Aggregator, accepted: u64) -> Result<(), TestCaseError> {
    let mut last_seq: HashMap<([u8; 32], u32), u64> = HashMap::new();
    let mut last_closed: HashMap<([u8; 32], u32), i64> = HashMap::new();
    let mut closed_trades: HashMap<u32, u64> = HashMap::new();
    for bar in bars {
        prop_assert!(bar.check().is_ok(), "{:?}: {:?}", bar, bar.check());
        prop_assert!(windows.seconds().contains(&bar.window_s));
        let series = (bar.mint, bar.window_s);
        let seq = last_seq.entry(series).or_insert(0);
        prop_assert_eq!(bar.seq, *seq + 1, "seq of {:?}", series);
        *seq = bar.seq;
        if let Some(&closed_at) = last_closed.get(&series) {
            prop_assert!(bar.open_time_s > closed_at, "update of a closed bar: {:?}", bar);
        }
        if bar.closed {
            last_closed.insert(series, bar.open_time_s);
            *closed_trades.entry(bar.window_s).or_default() += u64::from(bar.trades);
        }
    }
    let stats = agg.stats();
    for (i, &w) in windows.seconds().iter().enumerate() {
        let applied = accepted - stats.late_by_window[i];
        prop_assert_eq!(closed_trades.get(&w).copied().unwrap_or_default(), applied, "trades of window {}", w);
    }
    Ok(())
}

/// Runs `steps` from `start_s`; returns what was emitted and the number of
/// trades accepted (not refused for price or mint limit).
fn run_steps(agg: &mut Aggregator, start_s: i64, steps: &[Step]) -> (Vec<Bar>, u64) {
    let mut updates = Vec::new();
    let mut now = start_s;
    let mut accepted = 0;
    for step in steps {
        match *step {
            Step::Trade { mint, dt, sol, reserves, is_buy } => {
                now = now.saturating_add(dt);
                let event = TradeEvent {
                    mint: [mint.wrapping_mul(37).wrapping_add(1); 32],
                    sol_amount: sol,
                    token_amount: sol / 3,
                    is_buy,
                    user: [9; 32],
                    timestamp: now,
                    virtual_sol_reserves: reserves.0,
                    virtual_token_reserves: reserves.1,
                    real_sol_reserves: 0,
                    real_token_reserves: 0,
                    quote_mint: [0; 32],
                    quote_amount: sol,
                    virtual_quote_reserves: reserves.0,
                };
                let priced = Market::new(0).price(&Event::Trade(event), Position::default());
                if priced.is_ok_and(|trade| agg.apply(&trade, &mut updates).is_ok()) {
                    accepted += 1;
                }
            }
            Step::Tick { dt } => {
                now = now.saturating_add(dt);
                agg.advance_clock(now, &mut updates);
            }
            Step::Flush => agg.flush_changes(&mut updates),
        }
    }
    agg.flush_changes(&mut updates);
    agg.close_all(&mut updates);
    (agg.bars(&updates), accepted)
}

proptest! {
    #![proptest_config(config(300))]

    /// Random trade sequences (out of order, gaps, ticks, both emit
    /// policies) with realistic timestamps: every bar valid, per series
    /// `seq` up by exactly one, every applied trade in one closing bar.
    #[test]
    fn aggregator_emits_valid_gapless_series(
        windows in window_list(),
        coalesce in any::<bool>(),
        start_s in 0..4_000_000_000i64,
        steps in vec(step(), 1..300),
    ) {
        let policy = if coalesce { EmitPolicy::Coalesce } else { EmitPolicy::EveryChange };
        let mut agg = Aggregator::new(&windows, policy);
        let (bars, accepted) = run_steps(&mut agg, start_s, &steps);
        check_emitted(&windows, &bars, &agg, accepted)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// The same with timestamps anywhere in i64: a replay file is untrusted
    /// input, and its records carry any timestamp the decoder accepts.
    /// Regression: timestamps near `i64::MIN`/`i64::MAX` overflowed
    /// `floor(ts / w) * w` and `open_time + w` (a panic in debug builds,
    /// misaligned bars in release).
    #[test]
    fn aggregator_survives_any_timestamp(
        windows in window_list(),
        start_s in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(i64::MAX - 30)],
        steps in vec(step(), 1..40),
    ) {
        let mut agg = Aggregator::new(&windows, EmitPolicy::EveryChange);
        let (bars, accepted) = run_steps(&mut agg, start_s, &steps);
        check_emitted(&windows, &bars, &agg, accepted)?;
    }
}

// ---------------------------------------------------------------------------
// Solana logs and RPC messages

/// Log lines as a node prints them, mixed with arbitrary ones.
fn log_line() -> impl Strategy<Value = String> {
    let program = select(vec![
        "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P",
        "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA",
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "MNFSTqtC93rEfYHB6hF82sKdZpUDFWkViLByLd1k1Ms",
    ]);
    prop_oneof![
        (program.clone(), 1..6u8).prop_map(|(p, d)| format!("Program {p} invoke [{d}]")),
        program.clone().prop_map(|p| format!("Program {p} success")),
        program.prop_map(|p| format!("Program {p} failed: custom program error: 0x1771")),
        vec(any::<u8>(), 0..200).prop_map(|b| format!("Program data: {}", STANDARD.encode(b))),
        Just("Log truncated".to_owned()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(1000))]

    /// Any log attributes without panicking; every event found is a line
    /// of one of the two programs, in order.
    #[test]
    fn log_attribution_never_panics(lines in vec(log_line(), 0..60)) {
        let found = klinecast::source::logs::attribute(lines.iter().map(String::as_str));
        let data_lines = lines.iter().filter(|l| l.starts_with("Program data: ")).count();
        prop_assert!(found.events.len() + found.foreign as usize + found.orphan as usize <= data_lines);
    }

    /// Any text, and any JSON shaped like a notification or a transaction
    /// with arbitrary logs, parses or is refused with a reason: no panic.
    #[test]
    fn rpc_messages_never_panic(text in any::<String>(), lines in vec(log_line(), 0..30), slot in any::<u64>()) {
        let _ = klinecast::source::tx::parse_line(&text);
        let notification = serde_json::json!({
            "jsonrpc": "2.0", "method": "logsNotification",
            "params": {"result": {"context": {"slot": slot}, "value": {"signature": text, "err": null, "logs": lines}}, "subscription": 1}
        });
        prop_assert!(klinecast::source::tx::parse_value(&notification).is_ok());
        let transaction = serde_json::json!({
            "slot": slot, "meta": {"err": null, "logMessages": lines, "innerInstructions": [{"index": 0, "instructions": [{"programIdIndex": 0, "data": text}]}]},
            "transaction": [STANDARD.encode(text.as_bytes()), "base64"]
        });
        prop_assert!(klinecast::source::tx::parse_value(&transaction).is_ok());
    }
}
