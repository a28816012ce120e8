//! Which program wrote a transaction's `Program data:` lines.
//!
//! Solana prints a transaction's log as the programs run: `Program <id>
//! invoke [depth]` when one starts (at the top level or through CPI),
//! `Program <id> success` or `Program <id> failed: ...` when it returns, and
//! in between its own lines, among them `Program data: <base64>` for each
//! Anchor event it emits. A data line belongs to the program on top of that
//! stack. Other programs emit events with the same discriminators (forks,
//! routers that re-emit), so only lines of the two programs klinecast reads
//! are events; the rest are counted as foreign.
//!
//! Nodes cut long logs and end them with `Log truncated`: the events after
//! the cut are lost from the log (a `getTransaction` still has them as inner
//! instructions); [`LogEvents::truncated`] says so.
//!
//! Sans-io: lines in, attributed events out.

use crate::codec::event::Program;

/// The line nodes put where they cut a transaction's log.
pub const LOG_TRUNCATED: &str = "Log truncated";

/// Deepest invoke stack tracked (Solana allows 5 levels of CPI; a log
/// claiming more is malformed and its deeper frames are not tracked).
const MAX_DEPTH: usize = 64;

/// The events of one transaction's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEvents<'a> {
    /// The base64 payloads of the two programs' `Program data:` lines, in
    /// order, with the program that wrote each.
    pub events: Vec<(Program, &'a str)>,
    /// `Program data:` lines of other programs.
    pub foreign: u32,
    /// `Program data:` lines outside any invoke (a malformed log).
    pub orphan: u32,
    /// The node cut the log: events after the cut are missing.
    pub truncated: bool,
}

/// Attributes every `Program data:` line of a log to its program.
pub fn attribute<'a>(lines: impl IntoIterator<Item = &'a str>) -> LogEvents<'a> {
    let mut found = LogEvents::default();
    // The stack holds the programs' ids as printed; `None` marks a frame
    // of neither program (its id is not needed).
    let mut stack: Vec<Option<Program>> = Vec::new();
    let mut overflow = 0usize;
    for line in lines {
        if line == LOG_TRUNCATED || line.starts_with(LOG_TRUNCATED) {
            found.truncated = true;
            break;
        }
        if let Some(data) = line.strip_prefix("Program data: ") {
            match stack.last() {
                _ if overflow > 0 => found.foreign += 1,
                Some(Some(program)) => found.events.push((*program, data.trim())),
                Some(None) => found.foreign += 1,
                None => found.orphan += 1,
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("Program ") else { continue };
        let Some((id, verb)) = rest.split_once(' ') else { continue };
        if verb.starts_with("invoke [") {
            if stack.len() < MAX_DEPTH {
                stack.push(Program::from_address(id));
            } else {
                overflow += 1;
            }
        } else if verb == "success" || verb.starts_with("failed") {
            if overflow > 0 {
                overflow -= 1;
            } else {
                stack.pop();
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_belong_to_the_program_on_top_of_the_stack() {
        let log = [
            "Program ComputeBudget111111111111111111111111111111 invoke [1]",
            "Program ComputeBudget111111111111111111111111111111 success",
            "Program Router1111111111111111111111111111111111111 invoke [1]",
            "Program data: Zm9yZWlnbg==",
            "Program 6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P invoke [2]",
            "Program log: Instruction: Buy",
            "Program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA invoke [3]",
            "Program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA success",
            "Program data: cHVtcA==",
            "Program 6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P consumed 100 of 200 compute units",
            "Program 6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P success",
            "Program data: YWZ0ZXI=",
            "Program pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA invoke [2]",
            "Program data: c3dhcA==",
            "Program pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA failed: custom program error: 0x1771",
            "Program Router1111111111111111111111111111111111111 failed: custom program error: 0x1771",
        ];
        let found = attribute(log);
        assert_eq!(found.events, [(Program::PumpFun, "cHVtcA=="), (Program::PumpSwap, "c3dhcA==")]);
        assert_eq!((found.foreign, found.orphan, found.truncated), (2, 0, false));
    }

    #[test]
    fn a_truncated_log_stops_at_the_cut() {
        let log = [
            "Program 6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P invoke [1]",
            "Program data: b25l",
            "Log truncated",
            "Program data: dHdv",
        ];
        let found = attribute(log);
        assert_eq!((found.events.len(), found.truncated), (1, true));
        assert_eq!(attribute(["Program data: eA=="]).orphan, 1);
    }
}
