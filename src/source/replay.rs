//! Trades read back from what people capture of Solana: `Program data:
//! <base64>` lines, one per event, the way `solana logs` prints them (the
//! prefix is optional; other log lines, blank lines and `#` comments are
//! skipped), and JSON lines of `logsNotification` messages or
//! `getTransaction` results, whose events are attributed to their program
//! exactly as the live source does ([`super::tx`]). Lines that look like
//! data but do not decode are counted, never fatal.
//!
//! Reading happens on a thread of its own: a file or a pipe (`solana logs |
//! klinecast ingest --replay-file -`) may block, and the ingest core must not.
//! Records reach the ingest loop through a bounded queue; when it is full
//! the reader waits, so a fast file never outruns ingest.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use super::record::{Fact, Filled, Record};
use super::tx::{self, TxError};
use crate::codec::event::{Position, Program};

/// Longest line read; longer lines are counted as bad and skipped, so one
/// broken line cannot make the reader buffer without bound.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The prefix Solana puts before an event's base64.
pub const PROGRAM_DATA_PREFIX: &str = "Program data:";

/// Where the replay reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// A file, or `-` for standard input.
    pub path: PathBuf,
}

/// What one line holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Blank, a comment, or another log line.
    Skip,
    /// Base64 of one record.
    Data(&'a str),
    /// A JSON message (`logsNotification` or `getTransaction` result).
    Json(&'a str),
}

/// Why a data line was not used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BadLine {
    /// Not valid base64.
    #[error("line {line}: invalid base64")]
    Base64 {
        /// 1-based line number.
        line: u64,
    },
    /// Over [`MAX_LINE_BYTES`].
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    TooLong {
        /// 1-based line number.
        line: u64,
    },
    /// Not UTF-8.
    #[error("line {line}: not UTF-8")]
    NotUtf8 {
        /// 1-based line number.
        line: u64,
    },
    /// A JSON line that is no transaction message.
    #[error("line {line}: {error}")]
    Json {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        error: TxError,
    },
}

/// Classifies one line (without its newline).
pub fn parse_line(line: &str) -> Line<'_> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Line::Skip;
    }
    if line.starts_with('{') {
        return Line::Json(line);
    }
    if let Some(rest) = line.strip_prefix(PROGRAM_DATA_PREFIX) {
        return Line::Data(rest.trim());
    }
    // Without the prefix, only a bare base64 token is data; anything with
    // spaces or a colon is another log line ("Program log: ...", "Program
    // 6EF8... invoke [1]").
    if line.contains(|c: char| c.is_whitespace() || c == ':') { Line::Skip } else { Line::Data(line) }
}

/// Counts of a replay so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Lines read.
    pub lines: u64,
    /// Records handed out.
    pub records: u64,
    /// Lines skipped as comments or other log lines.
    pub skipped: u64,
    /// Lines that looked like data but could not be used.
    pub bad: u64,
    /// JSON transaction messages read.
    pub transactions: u64,
    /// Of those, failed transactions (their events are skipped).
    pub failed_tx: u64,
    /// Of those, transactions whose log the node had cut.
    pub truncated_tx: u64,
    /// `Program data:` lines of other programs in JSON messages.
    pub foreign_lines: u64,
    /// The first few bad lines, for the report at the end.
    pub first_bad: Vec<BadLine>,
}

/// How many bad lines are kept for the report.
const KEEP_BAD: usize = 5;

impl fmt::Display for ReplayStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replay: {} lines, {} records, {} skipped, {} bad",
            self.lines, self.records, self.skipped, self.bad
        )?;
        if self.transactions > 0 {
            write!(
                f,
                "; {} transactions ({} failed, skipped; {} truncated logs; {} foreign-program lines)",
                self.transactions, self.failed_tx, self.truncated_tx, self.foreign_lines
            )?;
        }
        for bad in &self.first_bad {
            write!(f, "; {bad}")?;
        }
        Ok(())
    }
}

/// Records read ahead of the ingest loop; when full, the reader thread waits.
pub const RECORD_QUEUE: usize = 16_384;

/// What the reader thread sends.
enum Item {
    /// One decoded record, with its program (if the line says) and position.
    Record(Vec<u8>, Option<Program>, Position),
    /// Something a transaction message shows that prices later records (a
    /// pool's mints, from its token balances).
    Fact(Fact),
    /// End of input, with the final counts.
    End(ReplayStats),
}

/// Hands out records read by the reader thread.
pub struct ReplaySource {
    items: Receiver<Item>,
    stats: ReplayStats,
    finished: bool,
    /// Facts read, to hand out before any later record.
    facts: Vec<Fact>,
}

/// How long `fill` tells the ingest loop to wait when nothing is ready.
const IDLE_WAIT: Duration = Duration::from_millis(2);

impl ReplaySource {
    /// Opens the file (or standard input for `-`) and starts reading it.
    pub fn open(config: &ReplayConfig) -> io::Result<Self> {
        let reader: Box<dyn BufRead + Send> = if config.path.as_os_str() == "-" {
            Box::new(BufReader::new(io::stdin()))
        } else {
            Box::new(BufReader::new(File::open(&config.path)?))
        };
        Self::from_reader(reader)
    }

    /// A replay over any reader (tests, fuzzing).
    pub fn from_reader(reader: Box<dyn BufRead + Send>) -> io::Result<Self> {
        let (send, items) = mpsc::sync_channel(RECORD_QUEUE);
        thread::Builder::new().name("replay-reader".into()).spawn(move || LineReader::new(reader).run(&send))?;
        Ok(Self { items, stats: ReplayStats::default(), finished: false, facts: Vec::new() })
    }

    /// Hands out the facts read so far.
    pub fn take_facts(&mut self, mut on_fact: impl FnMut(Fact)) {
        self.facts.drain(..).for_each(&mut on_fact);
    }

    /// Counts of the whole replay, once it has finished.
    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }

    /// Hands out up to `max` records that are ready, without waiting.
    pub fn fill(&mut self, max: usize, mut on_record: impl FnMut(Record<'_>)) -> Filled {
        let mut handed = 0;
        while handed < max && !self.finished {
            match self.items.try_recv() {
                Ok(Item::Record(bytes, program, position)) => {
                    on_record(Record { program, bytes: &bytes, position });
                    handed += 1;
                }
                Ok(Item::Fact(fact)) => {
                    // Records after it are priced with it: end this fill so
                    // the ingest loop takes the fact first.
                    self.facts.push(fact);
                    return Filled::Records(handed);
                }
                Ok(Item::End(stats)) => {
                    self.stats = stats;
                    self.finished = true;
                }
                Err(TryRecvError::Empty) if handed == 0 => return Filled::Idle(IDLE_WAIT),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.finished = true,
            }
        }
        if handed == 0 && self.finished { Filled::Finished } else { Filled::Records(handed) }
    }
}

/// The reader thread's side: lines in, records out.
struct LineReader {
    reader: Box<dyn BufRead + Send>,
    /// Raw bytes of the current line, reused.
    line: Vec<u8>,
    /// Decoded record of the current line, reused.
    record: Vec<u8>,
    stats: ReplayStats,
}

impl LineReader {
    fn new(reader: Box<dyn BufRead + Send>) -> Self {
        Self { reader, line: Vec::new(), record: Vec::new(), stats: ReplayStats::default() }
    }

    /// Reads to the end of input (or a read error, logged), sending each
    /// record; stops early if the ingest side went away.
    fn run(mut self, send: &SyncSender<Item>) {
        loop {
            match read_bounded_line(&mut self.reader, &mut self.line) {
                Ok(None) => break,
                Ok(Some(too_long)) => {
                    self.stats.lines += 1;
                    if too_long {
                        self.bad(BadLine::TooLong { line: self.stats.lines });
                    } else if !self.read_line(send) {
                        return;
                    }
                }
                Err(error) => {
                    tracing::error!(%error, line = self.stats.lines + 1, "replay read failed; ending the replay");
                    break;
                }
            }
        }
        let _ = send.send(Item::End(self.stats));
    }

    /// Sends the records of the current line; false if the ingest side went
    /// away.
    fn read_line(&mut self, send: &SyncSender<Item>) -> bool {
        let line_no = self.stats.lines;
        let Ok(text) = std::str::from_utf8(&self.line) else {
            self.bad(BadLine::NotUtf8 { line: line_no });
            return true;
        };
        match parse_line(text) {
            Line::Skip => {
                self.stats.skipped += 1;
                true
            }
            Line::Data(b64) => {
                self.record.clear();
                if STANDARD.decode_vec(b64, &mut self.record).is_err() {
                    self.bad(BadLine::Base64 { line: line_no });
                    return true;
                }
                self.stats.records += 1;
                send.send(Item::Record(self.record.clone(), None, Position::default())).is_ok()
            }
            Line::Json(json) => match tx::parse_line(json) {
                Ok(parsed) => self.send_transaction(parsed.tx, send),
                Err(error) => {
                    self.bad(BadLine::Json { line: line_no, error });
                    true
                }
            },
        }
    }

    /// Sends the events of one transaction message, counting what it holds.
    fn send_transaction(&mut self, tx: tx::TxEvents, send: &SyncSender<Item>) -> bool {
        self.stats.transactions += 1;
        self.stats.foreign_lines += u64::from(tx.foreign);
        self.stats.bad += u64::from(tx.bad_data);
        self.stats.truncated_tx += u64::from(tx.truncated);
        if tx.failed {
            self.stats.failed_tx += 1;
            return true;
        }
        for pool in tx::pools_in(&tx) {
            if send.send(Item::Fact(Fact::Pool(pool))).is_err() {
                return false;
            }
        }
        let signature = tx.signature.as_ref().map_or(0, Position::signature_prefix);
        for (index, (program, bytes)) in tx.events.into_iter().enumerate() {
            let position = Position { slot: tx.slot, signature, event: index as u32 };
            self.stats.records += 1;
            if send.send(Item::Record(bytes, Some(program), position)).is_err() {
                return false;
            }
        }
        true
    }

    fn bad(&mut self, bad: BadLine) {
        self.stats.bad += 1;
        if self.stats.first_bad.len() < KEEP_BAD {
            tracing::warn!(%bad, "skipping replay line");
            self.stats.first_bad.push(bad);
        }
    }
}

/// Reads one line into `buf` (without the newline), keeping at most
/// [`MAX_LINE_BYTES`]. `None` at end of input; `Some(true)` if the line was
/// longer and got cut.
fn read_bounded_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(read_any.then_some(too_long));
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at], Some(at + 1)),
            None => (available, None),
        };
        let room = MAX_LINE_BYTES.saturating_sub(buf.len());
        too_long |= chunk.len() > room;
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = done.unwrap_or(available.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(text: &'static str) -> (Vec<Vec<u8>>, ReplayStats) {
        let mut source = ReplaySource::from_reader(Box::new(io::Cursor::new(text.as_bytes()))).unwrap();
        let mut records = Vec::new();
        while source.fill(2, |r| records.push(r.bytes.to_vec())) != Filled::Finished {}
        (records, source.stats().clone())
    }

    #[test]
    fn classifies_lines() {
        assert_eq!(parse_line("Program data: AAEC"), Line::Data("AAEC"));
        assert_eq!(parse_line("  Program data:AAEC\r"), Line::Data("AAEC"));
        assert_eq!(parse_line("AAEC"), Line::Data("AAEC"));
        assert_eq!(parse_line("# comment"), Line::Skip);
        assert_eq!(parse_line("Program log: Instruction: Buy"), Line::Skip);
        assert_eq!(parse_line("Program 6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P invoke [1]"), Line::Skip);
        assert_eq!(parse_line(""), Line::Skip);
    }

    #[test]
    fn reads_records_and_counts_the_rest() {
        let (records, stats) = replay("# header\nProgram data: AAEC\n\nProgram log: x\nnot*base64\nAwQ=");
        assert_eq!(records, [vec![0, 1, 2], vec![3, 4]]);
        assert_eq!((stats.lines, stats.records, stats.skipped, stats.bad), (6, 2, 3, 1));
        assert_eq!(stats.first_bad, [BadLine::Base64 { line: 5 }]);
    }

    #[test]
    fn overlong_and_non_utf8_lines_are_bad_not_fatal() {
        let long: &'static str =
            Box::leak(format!("{}\nAAEC\n\u{0}\n", "A".repeat(MAX_LINE_BYTES + 10)).into_boxed_str());
        let (records, stats) = replay(long);
        assert_eq!(records.len(), 1, "the NUL line is a bare token that fails base64");
        assert_eq!(stats.first_bad[0], BadLine::TooLong { line: 1 });
        let mut source =
            ReplaySource::from_reader(Box::new(io::Cursor::new(vec![0xff, 0xfe, b'\n', b'A', b'A', b'E', b'C'])))
                .unwrap();
        let mut n = 0;
        while source.fill(8, |_| n += 1) != Filled::Finished {}
        assert_eq!((n, source.stats().first_bad.clone()), (1, vec![BadLine::NotUtf8 { line: 1 }]));
    }
}
