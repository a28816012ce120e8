//! The WebSocket text protocol: commands a client sends (`sub-5m`, `unsub`,
//! `hist-5m 30`, `ping`) and the JSON replies the gateway sends back.
//!
//! This module owns the grammar of commands and the shape of ack and error
//! replies. It must not touch sockets, subscriptions or bar storage: it turns
//! one text frame into a [`Command`] (or a [`CommandError`]) and a
//! [`Reply`] into one JSON string, nothing more.
//!
//! Grammar (after trimming whitespace, and after unwrapping one JSON string
//! literal if the frame is one, because the original service's clients send
//! `"sub-5m"` with the quotes):
//!
//! ```text
//! sub<sep><window> [mint]
//! unsub | unsub<sep><window>
//! hist<sep><window> <count> [mint]
//! ping
//! ```
//!
//! `<sep>` is `-` or `_`; verbs are lowercase and case-sensitive; `<window>`
//! is anything [`parse_window`] accepts that is also configured; `<mint>` is
//! base58 of 32 bytes; `<count>` is a decimal in `1..=MAX_HISTORY`.

use serde_json::json;
use thiserror::Error;

use crate::aggregate::windows::{label, parse_window};
use crate::codec::json::parse_mint;
use crate::codec::trade::Pubkey;

/// Longest text frame parsed as a command, in bytes. Overflow policy: a
/// longer frame is refused with [`CommandError::TooLong`] before any parsing,
/// so a client cannot make the gateway scan or copy big frames.
pub const MAX_COMMAND_BYTES: usize = 256;

/// Most bars one `hist-<window> <count>` may ask for. Overflow policy: a
/// larger count is refused with [`CommandError::BadCount`], never clamped, so
/// the client learns the limit.
pub const MAX_HISTORY: u32 = 1000;

/// Most bytes of client input echoed back in an error message. Overflow
/// policy: longer input is cut at the last UTF-8 boundary at or below this and
/// marked with `…`, so errors stay short and cannot reflect a whole frame.
pub const MAX_ECHO_BYTES: usize = 64;

/// The usage line quoted by errors that do not know which verb was meant.
const USAGE: &str = "sub-<window> [mint], unsub[-<window>], hist-<window> <count> [mint] or ping";

/// One parsed client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `sub-<window> [mint]`: stream bars of one window, of one mint or all.
    Subscribe {
        /// The window in seconds (one of the configured windows).
        window_s: u32,
        /// Only this mint, or every mint when `None`.
        mint: Option<Pubkey>,
    },
    /// `unsub` (every window) or `unsub-<window>`.
    Unsubscribe {
        /// The window to drop, or `None` for all subscriptions.
        window_s: Option<u32>,
    },
    /// `hist-<window> <count> [mint]`: the last `count` bars.
    History {
        /// The window in seconds (one of the configured windows).
        window_s: u32,
        /// How many bars, `1..=MAX_HISTORY`.
        count: u32,
        /// Only this mint, or every mint when `None`.
        mint: Option<Pubkey>,
    },
    /// `ping`: answered with `{"type":"pong"}`.
    Ping,
}

/// Why a text frame is not a command. Every message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// Nothing but whitespace (or an empty JSON string).
    #[error("empty command: send {USAGE}")]
    Empty,
    /// Longer than [`MAX_COMMAND_BYTES`].
    #[error("command is {len} bytes, at most {MAX_COMMAND_BYTES} are accepted")]
    TooLong {
        /// Length of the refused frame in bytes.
        len: usize,
    },
    /// Starts with `"` but is not one valid JSON string literal.
    #[error("command starts with a double quote but is not a valid JSON string: send {USAGE}")]
    BadQuotes,
    /// A verb that is not `sub`, `unsub`, `hist` or `ping` (echo truncated).
    #[error("unknown command {0:?}: send {USAGE}")]
    Unknown(String),
    /// `sub` or `hist` without `-<window>`.
    #[error("{verb} needs a window, e.g. {verb}-5m")]
    MissingWindow {
        /// The verb that was sent.
        verb: &'static str,
    },
    /// A window that does not parse or is not configured (echo truncated).
    #[error("unknown window {window:?}: allowed windows are {allowed}")]
    UnknownWindow {
        /// The window text as sent, truncated.
        window: String,
        /// The configured windows as labels, e.g. `1s, 1m, 5m, 1h`.
        allowed: String,
    },
    /// Not base58 of exactly 32 bytes (echo truncated).
    #[error("bad mint {0:?}: expected a base58 address of 32 bytes")]
    BadMint(String),
    /// `hist-<window>` without a count.
    #[error("hist needs a count: hist-<window> <count>, count from 1 to {MAX_HISTORY}")]
    MissingCount,
    /// A count that is not a decimal in `1..=MAX_HISTORY` (echo truncated).
    #[error("bad count {0:?}: expected a whole number from 1 to {MAX_HISTORY}")]
    BadCount(String),
    /// More arguments than the verb takes.
    #[error("too many arguments: usage is {usage}")]
    ExtraArguments {
        /// The usage line of the verb that was sent.
        usage: &'static str,
    },
}

/// Parses one WebSocket text frame. `windows` are the configured windows in
/// seconds; a window not among them is refused, naming the allowed ones.
pub fn parse_command(text: &str, windows: &[u32]) -> Result<Command, CommandError> {
    if text.len() > MAX_COMMAND_BYTES {
        return Err(CommandError::TooLong { len: text.len() });
    }
    let unquoted = unquote(text.trim())?;
    let mut args = unquoted.split_whitespace();
    let head = args.next().ok_or(CommandError::Empty)?;
    let (verb, window) = match head.find(['-', '_']) {
        Some(at) => (&head[..at], Some(&head[at + 1..])),
        None => (head, None),
    };
    let command = match (verb, window) {
        ("ping", None) => Command::Ping,
        ("unsub", None) => Command::Unsubscribe { window_s: None },
        ("unsub", Some(w)) => Command::Unsubscribe { window_s: Some(window_of("unsub", w, windows)?) },
        ("sub", None) => return Err(CommandError::MissingWindow { verb: "sub" }),
        ("sub", Some(w)) => {
            Command::Subscribe { window_s: window_of("sub", w, windows)?, mint: optional_mint(args.next())? }
        }
        ("hist", None) => return Err(CommandError::MissingWindow { verb: "hist" }),
        ("hist", Some(w)) => {
            let window_s = window_of("hist", w, windows)?;
            let count = parse_count(args.next())?;
            Command::History { window_s, count, mint: optional_mint(args.next())? }
        }
        _ => return Err(CommandError::Unknown(echo(head))),
    };
    match args.next() {
        Some(_) => Err(CommandError::ExtraArguments { usage: usage_of(&command) }),
        None => Ok(command),
    }
}

/// The JSON acknowledgement of an accepted command.
pub fn ack_json(command: &Command) -> String {
    let value = match command {
        Command::Subscribe { window_s, mint } => json!({
            "type": "subscribed",
            "window": label(*window_s),
            "window_s": window_s,
            "mint": mint.map(|m| bs58::encode(m).into_string()),
        }),
        Command::Unsubscribe { window_s } => json!({
            "type": "unsubscribed",
            "window": window_s.map(label),
            "window_s": window_s,
        }),
        Command::History { window_s, count, mint } => json!({
            "type": "history",
            "window": label(*window_s),
            "window_s": window_s,
            "count": count,
            "mint": mint.map(|m| bs58::encode(m).into_string()),
        }),
        Command::Ping => json!({ "type": "pong" }),
    };
    value.to_string()
}

/// The JSON error reply to a command that does not parse.
pub fn error_json(error: &CommandError) -> String {
    Reply::Error(&error.to_string()).to_json()
}

/// A reply to one command, as the client gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The command was accepted: its acknowledgement ([`ack_json`]).
    Ack(&'a Command),
    /// The command was refused, for this reason:
    /// `{"type":"error","error":"<reason>"}`.
    Error(&'a str),
}

impl Reply<'_> {
    /// The reply's JSON text.
    pub fn to_json(&self) -> String {
        match self {
            Reply::Ack(command) => ack_json(command),
            Reply::Error(reason) => json!({ "type": "error", "error": reason }).to_string(),
        }
    }
}

/// Unwraps one JSON string literal, because the original clients quote the
/// whole command; anything not starting with `"` is returned as is.
fn unquote(text: &str) -> Result<std::borrow::Cow<'_, str>, CommandError> {
    if !text.starts_with('"') {
        return Ok(text.into());
    }
    // The frame is at most MAX_COMMAND_BYTES, so this allocation is bounded.
    let inner: String = serde_json::from_str(text).map_err(|_| CommandError::BadQuotes)?;
    Ok(inner.into())
}

/// Resolves a window label against the configured windows.
fn window_of(verb: &'static str, text: &str, windows: &[u32]) -> Result<u32, CommandError> {
    if text.is_empty() {
        return Err(CommandError::MissingWindow { verb });
    }
    match parse_window(text) {
        Ok(w) if windows.contains(&w) => Ok(w),
        _ => Err(CommandError::UnknownWindow { window: echo(text), allowed: allowed_labels(windows) }),
    }
}

/// `1s, 1m, 5m, 1h`, or `none` when nothing is configured.
fn allowed_labels(windows: &[u32]) -> String {
    if windows.is_empty() {
        return "none".to_owned();
    }
    windows.iter().map(|&w| label(w)).collect::<Vec<_>>().join(", ")
}

fn optional_mint(token: Option<&str>) -> Result<Option<Pubkey>, CommandError> {
    // parse_mint's own message quotes the whole token; ours truncates it.
    token.map(|t| parse_mint(t).map_err(|_| CommandError::BadMint(echo(t)))).transpose()
}

fn parse_count(token: Option<&str>) -> Result<u32, CommandError> {
    let token = token.ok_or(CommandError::MissingCount)?;
    // Digits only: u32::from_str would also take a leading '+'.
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::BadCount(echo(token)));
    }
    match token.parse::<u32>() {
        Ok(n) if (1..=MAX_HISTORY).contains(&n) => Ok(n),
        _ => Err(CommandError::BadCount(echo(token))),
    }
}

fn usage_of(command: &Command) -> &'static str {
    match command {
        Command::Subscribe { .. } => "sub-<window> [mint]",
        Command::Unsubscribe { .. } => "unsub or unsub-<window>",
        Command::History { .. } => "hist-<window> <count> [mint]",
        Command::Ping => "ping",
    }
}

/// Client input as quoted back in errors: at most [`MAX_ECHO_BYTES`].
fn echo(text: &str) -> String {
    if text.len() <= MAX_ECHO_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_ECHO_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOWS: &[u32] = &[1, 60, 300, 3600];

    fn mint() -> (Pubkey, String) {
        let mint = [7u8; 32];
        (mint, bs58::encode(mint).into_string())
    }

    fn parse(text: &str) -> Result<Command, CommandError> {
        parse_command(text, WINDOWS)
    }

    #[test]
    fn accepts_subscribe_forms() {
        let want = Ok(Command::Subscribe { window_s: 300, mint: None });
        for text in ["sub-5m", "sub_5m", "\"sub-5m\"", "  \"sub_5m\" \n", " sub-5m\t", "\"  sub-5m  \"", "sub-300s"] {
            assert_eq!(parse(text), want, "{text:?}");
        }
        let (m, b58) = mint();
        let want = Ok(Command::Subscribe { window_s: 1, mint: Some(m) });
        assert_eq!(parse(&format!("sub-1s {b58}")), want);
        assert_eq!(parse(&format!("\"sub_1s   {b58}\"")), want);
    }

    #[test]
    fn accepts_unsubscribe_forms() {
        assert_eq!(parse("unsub"), Ok(Command::Unsubscribe { window_s: None }));
        assert_eq!(parse("\"unsub\""), Ok(Command::Unsubscribe { window_s: None }));
        assert_eq!(parse("unsub-1h"), Ok(Command::Unsubscribe { window_s: Some(3600) }));
        assert_eq!(parse("unsub_1m"), Ok(Command::Unsubscribe { window_s: Some(60) }));
    }

    #[test]
    fn accepts_history_forms() {
        assert_eq!(parse("hist-5m 30"), Ok(Command::History { window_s: 300, count: 30, mint: None }));
        assert_eq!(parse("hist_1s 1000"), Ok(Command::History { window_s: 1, count: 1000, mint: None }));
        assert_eq!(parse("\"hist-5m 1\""), Ok(Command::History { window_s: 300, count: 1, mint: None }));
        let (m, b58) = mint();
        assert_eq!(
            parse(&format!("hist-5m 30 {b58}")),
            Ok(Command::History { window_s: 300, count: 30, mint: Some(m) })
        );
    }

    #[test]
    fn accepts_ping() {
        assert_eq!(parse("ping"), Ok(Command::Ping));
        assert_eq!(parse(" \"ping\" "), Ok(Command::Ping));
    }

    #[test]
    fn refuses_empty_and_long() {
        for text in ["", "   ", "\"\"", "\" \"", "\n\t"] {
            assert_eq!(parse(text), Err(CommandError::Empty), "{text:?}");
        }
        let long = format!("sub-5m{}", " ".repeat(MAX_COMMAND_BYTES));
        assert_eq!(parse(&long), Err(CommandError::TooLong { len: long.len() }));
        let exact = format!("sub-5m{}", " ".repeat(MAX_COMMAND_BYTES - 6));
        assert_eq!(parse(&exact), Ok(Command::Subscribe { window_s: 300, mint: None }));
    }

    #[test]
    fn refuses_bad_quotes_and_unknown_verbs() {
        assert_eq!(parse("\"sub-5m"), Err(CommandError::BadQuotes));
        assert_eq!(parse("\"sub-5m\" x"), Err(CommandError::BadQuotes));
        assert_eq!(parse("SUB-5m"), Err(CommandError::Unknown("SUB-5m".into())));
        assert_eq!(parse("Ping"), Err(CommandError::Unknown("Ping".into())));
        assert_eq!(parse("ping-5m"), Err(CommandError::Unknown("ping-5m".into())));
        assert_eq!(parse("subscribe 5m"), Err(CommandError::Unknown("subscribe".into())));
        assert_eq!(parse("{\"op\":\"sub\"}"), Err(CommandError::Unknown("{\"op\":\"sub\"}".into())));
    }

    #[test]
    fn refuses_bad_windows() {
        assert_eq!(parse("sub"), Err(CommandError::MissingWindow { verb: "sub" }));
        assert_eq!(parse("sub-"), Err(CommandError::MissingWindow { verb: "sub" }));
        assert_eq!(parse("hist 30"), Err(CommandError::MissingWindow { verb: "hist" }));
        assert_eq!(parse("unsub_"), Err(CommandError::MissingWindow { verb: "unsub" }));
        let allowed = "1s, 1m, 5m, 1h".to_owned();
        assert_eq!(
            parse("sub-15m"),
            Err(CommandError::UnknownWindow { window: "15m".into(), allowed: allowed.clone() })
        );
        assert_eq!(parse("sub-5x"), Err(CommandError::UnknownWindow { window: "5x".into(), allowed: allowed.clone() }));
        assert_eq!(parse("unsub-0s"), Err(CommandError::UnknownWindow { window: "0s".into(), allowed }));
        let error = parse("sub-4h").err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("unknown window \"4h\": allowed windows are 1s, 1m, 5m, 1h"));
        assert_eq!(
            parse_command("sub-5m", &[]),
            Err(CommandError::UnknownWindow { window: "5m".into(), allowed: "none".into() })
        );
        assert_eq!(
            parse_command("sub-15m", &[900, 14_400, 86_400]),
            Ok(Command::Subscribe { window_s: 900, mint: None })
        );
    }

    #[test]
    fn refuses_bad_mints() {
        assert_eq!(parse("sub-5m abc"), Err(CommandError::BadMint("abc".into())));
        assert_eq!(parse("sub-5m 0OIl"), Err(CommandError::BadMint("0OIl".into())));
        let long = "z".repeat(100);
        let echoed = format!("{}…", "z".repeat(MAX_ECHO_BYTES));
        assert_eq!(parse(&format!("hist-5m 3 {long}")), Err(CommandError::BadMint(echoed)));
    }

    #[test]
    fn refuses_bad_counts() {
        assert_eq!(parse("hist-5m"), Err(CommandError::MissingCount));
        for count in ["0", "1001", "-1", "+5", "1.5", "abc", "99999999999999999999", "３"] {
            assert_eq!(parse(&format!("hist-5m {count}")), Err(CommandError::BadCount(count.into())), "{count}");
        }
    }

    #[test]
    fn refuses_extra_arguments() {
        let (_, b58) = mint();
        let cases = [
            ("ping x", "ping"),
            ("unsub x", "unsub or unsub-<window>"),
            ("unsub-5m x", "unsub or unsub-<window>"),
            (&*format!("sub-5m {b58} x"), "sub-<window> [mint]"),
            (&*format!("hist-5m 3 {b58} x"), "hist-<window> <count> [mint]"),
        ];
        for (text, usage) in cases {
            assert_eq!(parse(text), Err(CommandError::ExtraArguments { usage }), "{text}");
        }
    }

    #[test]
    fn echo_is_bounded_and_utf8() {
        let text = "é".repeat(100);
        let echoed = echo(&text);
        assert!(echoed.len() <= MAX_ECHO_BYTES + '…'.len_utf8());
        assert!(echoed.starts_with("éé"));
        assert_eq!(echo("short"), "short");
    }

    fn json_of(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn acks_are_the_documented_json() {
        let (m, b58) = mint();
        let sub = json_of(&ack_json(&Command::Subscribe { window_s: 300, mint: None }));
        assert_eq!(sub, json!({"type": "subscribed", "window": "5m", "window_s": 300, "mint": null}));
        let value = json_of(&ack_json(&Command::Subscribe { window_s: 1, mint: Some(m) }));
        assert_eq!(value["mint"], b58.as_str());
        assert_eq!(value["window"], "1s");
        let unsub = json_of(&ack_json(&Command::Unsubscribe { window_s: None }));
        assert_eq!(unsub, json!({"type": "unsubscribed", "window": null, "window_s": null}));
        let value = json_of(&ack_json(&Command::Unsubscribe { window_s: Some(3600) }));
        assert_eq!(value["window"], "1h");
        let hist = ack_json(&Command::History { window_s: 300, count: 30, mint: Some(m) });
        let value = json_of(&hist);
        assert_eq!(value["type"], "history");
        assert_eq!(value["window"], "5m");
        assert_eq!(value["count"], 30);
        assert_eq!(value["mint"], b58.as_str());
        assert_eq!(ack_json(&Command::Ping), r#"{"type":"pong"}"#);
    }

    #[test]
    fn errors_are_json() {
        let text = error_json(&CommandError::Unknown("a\"b\\c\n".into()));
        let value = json_of(&text);
        assert_eq!(value["type"], "error");
        assert!(value["error"].as_str().unwrap_or_default().starts_with("unknown command"));
    }

    /// Deterministic 64-bit LCG (Knuth's MMIX constants).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    #[test]
    fn random_input_never_panics_and_replies_are_json() {
        const PIECES: &[&str] =
            &["sub", "unsub", "hist", "ping", "-", "_", "5m", "1s", "1h", " ", "\"", "30", "é", "\\", "\0"];
        let mut rng = Lcg(42);
        for round in 0..20_000 {
            let len = (rng.next() % 300) as usize;
            let text = if round % 2 == 0 {
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len % 12).map(|_| PIECES[rng.next() as usize % PIECES.len()]).collect()
            };
            let reply = match parse_command(&text, WINDOWS) {
                Ok(command) => ack_json(&command),
                Err(error) => error_json(&error),
            };
            assert!(serde_json::from_str::<serde_json::Value>(&reply).is_ok(), "{text:?} -> {reply}");
            assert!(reply.len() < 600, "{reply}");
        }
    }
}
