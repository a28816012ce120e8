//! The closing report of `klinecast ingest` (its `ingest finished` log
//! line), read by number.

/// Parses `<n> <label>` out of the `ingest finished` report line, e.g.
/// `count_before(line, "sent")` for "..., 1234 sent, ...".
pub fn count_before(line: &str, label: &str) -> Option<u64> {
    let at = line.find(&format!(" {label}"))?;
    line[..at].rsplit([' ', '(', ',']).next()?.parse().ok()
}

/// Parses `<label> <n>` out of a report line, e.g. "other shard 17".
pub fn count_after(line: &str, label: &str) -> Option<u64> {
    let at = line.find(label)? + label.len();
    line[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The `ingest finished` line of a log.
pub fn ingest_report(log: &str) -> Option<String> {
    log.lines().find(|l| l.contains("ingest finished")).map(str::to_owned)
}
