//! The WebSocket text protocol: commands a client sends (`sub-5m`, `unsub`,
//! `hist-5m 30`, `ping`) and the JSON replies the gateway sends back.
//!
//! This module owns the grammar of commands and the shape of ack and error
//! replies. It must not touch sockets, subscriptions or bar storage: it turns
//! one text frame into a [`Command`] (or a [`CommandError`]) and a
//! [`Reply`] into one JSON string, nothing more. Every transport
//! (WebSocket, Server-Sent Events) carries the same replies.
//!
//! Grammar (after trimming whitespace, and after unwrapping one JSON string
//! literal if the frame is one, because the original service's clients send
//! `"sub-5m"` with the quotes):
//!
//! ```text
//! sub<sep><window> [mint]
//! sub<sep><window> <mint> since <seq>          resume one series after a seq
//! sub<sep><window> [mint] from <unix ms>       resume by time (all mints or one)
//! unsub | unsub<sep><window>
//! hist<sep><window> <count> [mint]
//! hist<sep><window> <count> <mint> [start=<ms>] [end=<ms>] [fill=prev]
//! ping
//! ```
//!
//! `hist` with any `key=value` option is a page of the history store
//! (Binance semantics: with `start` the first `count` bars from it, else the
//! last `count` up to `end`), sent without a live subscription.
//!
//! `<sep>` is `-` or `_`; verbs are lowercase and case-sensitive; `<window>`
//! is anything [`parse_window`] accepts that is also configured; `<mint>` is
//! base58 of 32 bytes; `<count>` is a decimal in `1..=MAX_HISTORY`.

use serde_json::json;
use thiserror::Error;

use crate::aggregate::windows::{label, parse_window};
use crate::codec::json::parse_mint;
use crate::codec::trade::Pubkey;
pub use crate::gateway::recent::{Gap, Since};

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
    /// `sub-<window> <mint> since <seq>` or `sub-<window> [mint] from <ms>`:
    /// what the client missed, then live.
    Resume {
        /// The window in seconds.
        window_s: u32,
        /// Only this mint, or every mint when `None` (`from` only).
        mint: Option<Pubkey>,
        /// After which `seq`, or from which time.
        since: Since,
    },
    /// `hist-<window> <count> <mint> start=.. end=.. fill=prev`: one page
    /// of the history store, no live updates.
    Page {
        /// The window in seconds.
        window_s: u32,
        /// Most bars, `1..=MAX_HISTORY`.
        count: u32,
        /// The series' mint.
        mint: Pubkey,
        /// Open times from, unix ms.
        start_ms: Option<i64>,
        /// Open times to, unix ms.
        end_ms: Option<i64>,
        /// Fill empty windows with the previous close.
        fill: bool,
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
    /// `since` without a mint, or without a number.
    #[error("since needs a mint and a seq: sub-<window> <mint> since <seq> (every mint: from <unix ms>)")]
    SinceNeedsMint,
    /// A `seq` or a time that is not a whole number (echo truncated).
    #[error("bad {what} {text:?}: expected a whole number")]
    BadNumber {
        /// `seq` or `time`.
        what: &'static str,
        /// As sent, truncated.
        text: String,
    },
    /// A `hist` option that is not `start=`, `end=` or `fill=prev` (echo
    /// truncated).
    #[error("bad hist option {0:?}: use start=<unix ms>, end=<unix ms>, fill=prev")]
    BadOption(String),
    /// A `hist` page without a mint.
    #[error("a hist page needs a mint: hist-<window> <count> <mint> [start=<ms>] [end=<ms>] [fill=prev]")]
    PageNeedsMint,
    /// `start` after `end`.
    #[error("start is after end")]
    StartAfterEnd,
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
        ("sub", Some(w)) => parse_sub(window_of("sub", w, windows)?, &mut args)?,
        ("hist", None) => return Err(CommandError::MissingWindow { verb: "hist" }),
        ("hist", Some(w)) => {
            let window_s = window_of("hist", w, windows)?;
            let count = parse_count(args.next())?;
            parse_hist(window_s, count, &mut args)?
        }
        _ => return Err(CommandError::Unknown(echo(head))),
    };
    match args.next() {
        Some(_) => Err(CommandError::ExtraArguments { usage: usage_of(&command) }),
        None => Ok(command),
    }
}

/// `sub-<w>`'s arguments: `[mint] [since <seq> | from <ms>]`.
fn parse_sub<'a>(window_s: u32, args: &mut impl Iterator<Item = &'a str>) -> Result<Command, CommandError> {
    let mut args = args.peekable();
    let mint = match args.peek() {
        Some(&("since" | "from")) | None => None,
        Some(_) => optional_mint(args.next())?,
    };
    let since = match args.next() {
        None => return Ok(Command::Subscribe { window_s, mint }),
        Some("since") if mint.is_some() => Since::Seq(number("seq", args.next())?),
        Some("since") => return Err(CommandError::SinceNeedsMint),
        Some("from") => Since::TimeMs(number("time", args.next())? as i64),
        Some(_) => {
            return Err(CommandError::ExtraArguments { usage: usage_of(&Command::Subscribe { window_s, mint }) });
        }
    };
    let command = Command::Resume { window_s, mint, since };
    match args.next() {
        Some(_) => Err(CommandError::ExtraArguments { usage: usage_of(&command) }),
        None => Ok(command),
    }
}

/// `hist-<w> <count>`'s arguments: `[mint] [start=<ms>] [end=<ms>] [fill=prev]`.
fn parse_hist<'a>(
    window_s: u32,
    count: u32,
    args: &mut impl Iterator<Item = &'a str>,
) -> Result<Command, CommandError> {
    let mut args = args.peekable();
    let mint = match args.peek() {
        Some(token) if !token.contains('=') => optional_mint(args.next())?,
        _ => None,
    };
    let (mut start_ms, mut end_ms, mut fill, mut paged) = (None, None, false, false);
    for option in args {
        paged = true;
        match option.split_once('=') {
            Some(("start", v)) => start_ms = Some(number("time", Some(v))? as i64),
            Some(("end", v)) => end_ms = Some(number("time", Some(v))? as i64),
            Some(("fill", "prev")) => fill = true,
            Some(("fill", "none")) => fill = false,
            Some(_) => return Err(CommandError::BadOption(echo(option))),
            None => {
                return Err(CommandError::ExtraArguments {
                    usage: usage_of(&Command::History { window_s, count, mint }),
                });
            }
        }
    }
    if !paged {
        return Ok(Command::History { window_s, count, mint });
    }
    let mint = mint.ok_or(CommandError::PageNeedsMint)?;
    if let (Some(start), Some(end)) = (start_ms, end_ms)
        && start > end
    {
        return Err(CommandError::StartAfterEnd);
    }
    Ok(Command::Page { window_s, count, mint, start_ms, end_ms, fill })
}

/// A whole number (digits only), within i64.
fn number(what: &'static str, token: Option<&str>) -> Result<u64, CommandError> {
    let text = token.unwrap_or_default();
    let bad = || CommandError::BadNumber { what, text: echo(text) };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse::<u64>().ok().filter(|&n| n <= i64::MAX as u64).ok_or_else(bad)
}

/// Every reply a client gets besides bars, each one JSON object with a
/// `"type"`, serialised once ([`Reply::to_json`]) and framed by the
/// connection's transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The command was accepted: `subscribed`, `unsubscribed`, `history`,
    /// `page` or `pong`, echoing what it asked for.
    Ack(&'a Command),
    /// A resume was accepted: `subscribed` with `since` or `from`, and how
    /// many updates are replayed before live ones.
    Resumed {
        /// The [`Command::Resume`].
        command: &'a Command,
        /// Updates replayed.
        replayed: usize,
    },
    /// A page was accepted: `page`, and how many bars follow.
    Paged {
        /// The [`Command::Page`].
        command: &'a Command,
        /// Bars that follow.
        bars: usize,
    },
    /// What a resume could not replay: `gap`.
    Gap {
        /// Window, seconds.
        window_s: u32,
        /// The mint, or every mint.
        mint: Option<Pubkey>,
        /// The missing stretch.
        gap: Gap,
    },
    /// The command was refused, for this reason:
    /// `{"type":"error","error":"<reason>"}`.
    Error(&'a str),
}

impl Reply<'_> {
    /// The reply's JSON text.
    pub fn to_json(&self) -> String {
        self.value().to_string()
    }

    fn value(&self) -> serde_json::Value {
        match self {
            Reply::Ack(command) => ack(command),
            Reply::Resumed { command, replayed } => {
                let mut value = ack(command);
                value["replayed"] = json!(replayed);
                value
            }
            Reply::Paged { command, bars } => {
                let mut value = ack(command);
                value["bars"] = json!(bars);
                value
            }
            Reply::Gap { window_s, mint, gap } => {
                let mut value = json!({
                    "type": "gap",
                    "window": label(*window_s),
                    "window_s": window_s,
                    "mint": mint.map(|m| bs58::encode(m).into_string()),
                });
                match *gap {
                    Gap::Seq { from_seq, to_seq } => {
                        value["from_seq"] = from_seq.into();
                        // `u64::MAX`: unknown (nothing of the series since
                        // the gateway started).
                        value["to_seq"] = if to_seq == u64::MAX { serde_json::Value::Null } else { to_seq.into() };
                    }
                    Gap::Time { from_ms, to_ms } => {
                        value["from_time"] = from_ms.into();
                        value["to_time"] = to_ms.into();
                    }
                }
                value
            }
            Reply::Error(reason) => json!({ "type": "error", "error": reason }),
        }
    }
}

/// The acknowledgement of an accepted command.
fn ack(command: &Command) -> serde_json::Value {
    let mint_of = |mint: &Option<Pubkey>| mint.map(|m| bs58::encode(m).into_string());
    match command {
        Command::Subscribe { window_s, mint } => json!({
            "type": "subscribed",
            "window": label(*window_s),
            "window_s": window_s,
            "mint": mint_of(mint),
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
            "mint": mint_of(mint),
        }),
        Command::Resume { window_s, mint, since } => {
            let mut ack = json!({
                "type": "subscribed",
                "window": label(*window_s),
                "window_s": window_s,
                "mint": mint_of(mint),
            });
            match since {
                Since::Seq(seq) => ack["since"] = json!(seq),
                Since::TimeMs(ms) => ack["from"] = json!(ms),
            }
            ack
        }
        Command::Page { window_s, count, mint, start_ms, end_ms, fill } => json!({
            "type": "page",
            "window": label(*window_s),
            "window_s": window_s,
            "count": count,
            "mint": bs58::encode(mint).into_string(),
            "start": start_ms,
            "end": end_ms,
            "fill": if *fill { "prev" } else { "none" },
        }),
        Command::Ping => json!({ "type": "pong" }),
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
        Command::Resume { .. } => "sub-<window> <mint> since <seq> or sub-<window> [mint] from <unix ms>",
        Command::Page { .. } => "hist-<window> <count> <mint> [start=<ms>] [end=<ms>] [fill=prev]",
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
    fn accepts_resume_and_page_forms() {
        let (m, b58) = mint();
        assert_eq!(
            parse(&format!("sub-1m {b58} since 41")),
            Ok(Command::Resume { window_s: 60, mint: Some(m), since: Since::Seq(41) })
        );
        assert_eq!(
            parse("sub-1s from 1700000000000"),
            Ok(Command::Resume { window_s: 1, mint: None, since: Since::TimeMs(1_700_000_000_000) })
        );
        assert_eq!(
            parse(&format!("\"sub_1s {b58} from 5\"")),
            Ok(Command::Resume { window_s: 1, mint: Some(m), since: Since::TimeMs(5) })
        );
        assert_eq!(
            parse(&format!("hist-5m 100 {b58} end=9000 fill=prev")),
            Ok(Command::Page { window_s: 300, count: 100, mint: m, start_ms: None, end_ms: Some(9000), fill: true })
        );
        assert_eq!(
            parse(&format!("hist-5m 2 {b58} start=1 end=2")),
            Ok(Command::Page { window_s: 300, count: 2, mint: m, start_ms: Some(1), end_ms: Some(2), fill: false })
        );
    }

    #[test]
    fn refuses_bad_resume_and_page_arguments() {
        let (_, b58) = mint();
        assert_eq!(parse("sub-1m since 5"), Err(CommandError::SinceNeedsMint));
        for bad in ["x", "-1", "", "1.5", "99999999999999999999"] {
            assert!(
                matches!(parse(&format!("sub-1m {b58} since {bad}")), Err(CommandError::BadNumber { .. })),
                "{bad}"
            );
            assert!(matches!(parse(&format!("sub-1m from {bad}")), Err(CommandError::BadNumber { .. })), "{bad}");
            assert!(
                matches!(parse(&format!("hist-1m 5 {b58} end={bad}")), Err(CommandError::BadNumber { .. })),
                "{bad}"
            );
        }
        assert!(matches!(parse(&format!("sub-1m {b58} since 5 6")), Err(CommandError::ExtraArguments { .. })));
        assert!(matches!(parse(&format!("sub-1m {b58} until 5")), Err(CommandError::ExtraArguments { .. })));
        assert_eq!(parse(&format!("hist-1m 5 {b58} fill=next")), Err(CommandError::BadOption("fill=next".into())));
        assert_eq!(parse("hist-1m 5 end=10"), Err(CommandError::PageNeedsMint));
        assert_eq!(parse(&format!("hist-1m 5 {b58} start=10 end=5")), Err(CommandError::StartAfterEnd));
        assert!(matches!(parse(&format!("hist-1m 0 {b58} end=5")), Err(CommandError::BadCount(_))));
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
        let sub = json_of(&Reply::Ack(&Command::Subscribe { window_s: 300, mint: None }).to_json());
        assert_eq!(sub, json!({"type": "subscribed", "window": "5m", "window_s": 300, "mint": null}));
        let value = json_of(&Reply::Ack(&Command::Subscribe { window_s: 1, mint: Some(m) }).to_json());
        assert_eq!(value["mint"], b58.as_str());
        assert_eq!(value["window"], "1s");
        let unsub = json_of(&Reply::Ack(&Command::Unsubscribe { window_s: None }).to_json());
        assert_eq!(unsub, json!({"type": "unsubscribed", "window": null, "window_s": null}));
        let value = json_of(&Reply::Ack(&Command::Unsubscribe { window_s: Some(3600) }).to_json());
        assert_eq!(value["window"], "1h");
        let hist = Reply::Ack(&Command::History { window_s: 300, count: 30, mint: Some(m) }).to_json();
        let value = json_of(&hist);
        assert_eq!(value["type"], "history");
        assert_eq!(value["window"], "5m");
        assert_eq!(value["count"], 30);
        assert_eq!(value["mint"], b58.as_str());
        assert_eq!(Reply::Ack(&Command::Ping).to_json(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn errors_are_json() {
        let text = Reply::Error(&CommandError::Unknown("a\"b\\c\n".into()).to_string()).to_json();
        let value = json_of(&text);
        assert_eq!(value["type"], "error");
        assert!(value["error"].as_str().unwrap_or_default().starts_with("unknown command"));
    }

    #[test]
    fn random_input_never_panics_and_replies_are_json() {
        const PIECES: &[&str] =
            &["sub", "unsub", "hist", "ping", "-", "_", "5m", "1s", "1h", " ", "\"", "30", "é", "\\", "\0"];
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for round in 0..20_000 {
            let len = (rng.next_u64() % 300) as usize;
            let text = if round % 2 == 0 {
                let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len % 12).map(|_| PIECES[rng.next_u64() as usize % PIECES.len()]).collect()
            };
            let reply = match parse_command(&text, WINDOWS) {
                Ok(command) => Reply::Ack(&command).to_json(),
                Err(error) => Reply::Error(&error.to_string()).to_json(),
            };
            assert!(serde_json::from_str::<serde_json::Value>(&reply).is_ok(), "{text:?} -> {reply}");
            assert!(reply.len() < 600, "{reply}");
        }
    }
}
