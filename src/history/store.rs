//! The store of closed bars: one redb file per topic. Bars of one window are
//! cut into time buckets, one table each (`bars/<window>/<bucket s>/<start>`),
//! keyed by (mint, open time) and holding the bar's 193-byte archive, so one
//! series' page is one range scan per bucket and dropping old bars is
//! dropping whole tables. The Kafka offsets the bars were read up to are
//! written in the same transaction as the bars (`meta`), so a restarted
//! writer continues exactly where the store stands: nothing read twice into
//! it, nothing skipped. Readers (the gateway's routes and sessions) see a
//! consistent snapshot and never wait for the writer.
//!
//! The file records the bar format it holds (`meta` `format`). Opened by a
//! build of another format, the store drops its bars and offsets (it cannot
//! read them) so the writer reads the topic again from as far back as the
//! retention and Kafka allow; how many bars were dropped is kept
//! ([`Store::format_change`]) for the logs and `/metrics`. A value that
//! does not read as a bar is counted ([`Store::unreadable`]), never
//! silently skipped.
//!
//! This module owns the file and its layout; it never talks to Kafka.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use thiserror::Error;

use crate::codec::bar::{self, BAR_FORMAT, Bar};
use crate::codec::trade::Pubkey;

/// A bar's key within its bucket: the series' mint, then the open time, so
/// one series' bars of a bucket are one contiguous range.
type BarKey = ([u8; 32], i64);

/// Offsets read (`offset/<partition>`: the next one to read), the newest
/// open time stored per window (`newest/<window>`), which the retention is
/// measured back from, and the bar format of the values (`format`).
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// Each mint's latest closed bar of any window (for `/api/mints` after a
/// restart).
const MINTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("mints");

/// Why the store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another process has the file open (each gateway process needs its own
    /// `--history-dir`).
    #[error("history store {0} is in use by another process: give each gateway process its own --history-dir")]
    InUse(PathBuf),
    /// The directory or file could not be created or opened.
    #[error("history store {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A read or write failed.
    #[error("history store: {0}")]
    Db(String),
}

/// redb's many error types all become [`StoreError::Db`] with their text.
fn db_error<E: std::fmt::Display>(error: E) -> StoreError {
    StoreError::Db(error.to_string())
}

/// One bucket (table) of one window's bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    /// Start of the bucket, unix seconds (a multiple of `bucket_s`).
    pub start: i64,
    /// Window of its bars, seconds.
    pub window_s: u32,
    /// Bucket length, seconds.
    pub bucket_s: i64,
}

impl Bucket {
    /// The bucket of `window_s` bars holding open time `open_time_s`.
    pub fn of(window_s: u32, bucket_s: i64, open_time_s: i64) -> Self {
        Self { start: open_time_s.div_euclid(bucket_s) * bucket_s, window_s, bucket_s }
    }

    /// First second after the bucket.
    pub fn end(&self) -> i64 {
        self.start + self.bucket_s
    }

    fn name(&self) -> String {
        format!("bars/{}/{}/{}", self.window_s, self.bucket_s, self.start)
    }

    fn parse(name: &str) -> Option<Self> {
        let mut parts = name.strip_prefix("bars/")?.split('/');
        let window_s = parts.next()?.parse().ok()?;
        let bucket_s = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        Some(Self { start, window_s, bucket_s })
    }
}

/// What one commit writes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Closed bars with the bucket length of their window.
    pub bars: Vec<(Bar, i64)>,
    /// (partition, next offset to read) after these bars.
    pub offsets: Vec<(i32, i64)>,
}

/// Which end of a time range a page is taken from (Binance: with a start
/// time the first `limit` bars from it, otherwise the last `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The oldest bars in the range.
    Start,
    /// The newest bars in the range.
    End,
}

/// Space the file uses, from redb's own accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Pages in use, in bytes (what the disk cap compares with).
    pub allocated_bytes: u64,
    /// Bytes of keys and values stored.
    pub stored_bytes: u64,
    /// The file's length.
    pub file_bytes: u64,
}

/// Key of the bar format in [`META`].
const FORMAT_KEY: &str = "format";

/// What opening a store of another bar format did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatChange {
    /// The format the file held.
    pub from: u16,
    /// Its bars, dropped: what the topic still has in this build's format
    /// is read again; the rest is gone from history.
    pub dropped_bars: u64,
}

/// The open store.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Set when the file held bars of another format at open.
    format_change: Option<FormatChange>,
    /// Stored values that did not read as bars.
    unreadable: AtomicU64,
}

impl Store {
    /// Opens (or creates) `<dir>/<topic>.redb` with a page cache of
    /// `cache_bytes`, the bound on the memory it uses for reads and writes.
    pub fn open(dir: &Path, topic: &str, cache_bytes: usize) -> Result<Self, StoreError> {
        let safe: String =
            topic.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        let path = dir.join(format!("{safe}.redb"));
        let failed = |reason: String| StoreError::Open { path: path.clone(), reason };
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
        let db = match Database::builder().set_cache_size(cache_bytes).create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::InUse(path)),
            Err(error) => return Err(failed(error.to_string())),
        };
        let mut store = Self { db, path, format_change: None, unreadable: AtomicU64::new(0) };
        // Make the fixed tables exist, so readers of a fresh store find them.
        let txn = store.db.begin_write().map_err(db_error)?;
        txn.open_table(META).map_err(db_error)?;
        txn.open_table(MINTS).map_err(db_error)?;
        txn.commit().map_err(db_error)?;
        let held = store.held_format()?;
        if held != BAR_FORMAT {
            let dropped_bars = store.drop_all()?;
            store.format_change = Some(FormatChange { from: held, dropped_bars });
        }
        let txn = store.db.begin_write().map_err(db_error)?;
        txn.open_table(META).map_err(db_error)?.insert(FORMAT_KEY, i64::from(BAR_FORMAT)).map_err(db_error)?;
        txn.commit().map_err(db_error)?;
        Ok(store)
    }

    /// The bar format of the stored values: as recorded, or, in a file
    /// that does not record it, that of a stored bar (this build's for an
    /// empty file).
    fn held_format(&self) -> Result<u16, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let meta = txn.open_table(META).map_err(db_error)?;
        if let Some(format) = meta.get(FORMAT_KEY).map_err(db_error)? {
            return Ok(u16::try_from(format.value()).unwrap_or(u16::MAX));
        }
        let mints = txn.open_table(MINTS).map_err(db_error)?;
        let first = mints.iter().map_err(db_error)?.next().transpose().map_err(db_error)?;
        Ok(first.map_or(BAR_FORMAT, |(_, value)| bar::format_of(value.value())))
    }

    /// Drops every bar, the mints and the offsets and newest times that
    /// went with them, in one transaction; returns how many bars there were.
    fn drop_all(&self) -> Result<u64, StoreError> {
        let buckets = self.buckets()?;
        let txn = self.db.begin_write().map_err(db_error)?;
        let mut dropped = 0;
        for bucket in buckets {
            let name = bucket.name();
            let definition = TableDefinition::<BarKey, &[u8]>::new(&name);
            dropped += txn.open_table(definition).map_err(db_error)?.len().map_err(db_error)?;
            txn.delete_table(definition).map_err(db_error)?;
        }
        txn.delete_table(MINTS).map_err(db_error)?;
        txn.open_table(MINTS).map_err(db_error)?;
        txn.delete_table(META).map_err(db_error)?;
        txn.open_table(META).map_err(db_error)?;
        txn.commit().map_err(db_error)?;
        Ok(dropped)
    }

    /// What opening the store found, if it held bars of another format.
    pub fn format_change(&self) -> Option<FormatChange> {
        self.format_change
    }

    /// Stored values that did not read as bars, since the store opened.
    pub fn unreadable(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed)
    }

    /// Reads a stored value as a bar, counting one that does not read.
    fn read(&self, value: &[u8]) -> Option<Bar> {
        match bar::access(value) {
            Ok(bar) => Some(bar.to_bar()),
            Err(_) => {
                self.unreadable.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (partition, next offset to read) as last committed.
    pub fn checkpoints(&self) -> Result<Vec<(i32, i64)>, StoreError> {
        self.meta_with_prefix("offset/")
            .map(|list| list.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect())
    }

    /// (window seconds, newest open time stored).
    pub fn newest(&self) -> Result<Vec<(u32, i64)>, StoreError> {
        self.meta_with_prefix("newest/")
            .map(|list| list.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect())
    }

    fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let meta = txn.open_table(META).map_err(db_error)?;
        let mut out = Vec::new();
        for entry in meta.range(prefix..).map_err(db_error)? {
            let (key, value) = entry.map_err(db_error)?;
            let Some(rest) = key.value().strip_prefix(prefix) else { break };
            out.push((rest.to_owned(), value.value()));
        }
        Ok(out)
    }

    /// Writes a batch in one transaction, durable when this returns. A bar
    /// already stored (same series and open time) is replaced.
    pub fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut by_bucket: HashMap<Bucket, Vec<&Bar>> = HashMap::new();
            let mut newest: HashMap<u32, i64> = HashMap::new();
            let mut latest: HashMap<Pubkey, &Bar> = HashMap::new();
            for (bar, bucket_s) in &batch.bars {
                by_bucket.entry(Bucket::of(bar.window_s, *bucket_s, bar.open_time_s)).or_default().push(bar);
                let top = newest.entry(bar.window_s).or_insert(bar.open_time_s);
                *top = (*top).max(bar.open_time_s);
                let last = latest.entry(bar.mint).or_insert(bar);
                if bar.open_time_s + i64::from(bar.window_s) > last.open_time_s + i64::from(last.window_s) {
                    *last = bar;
                }
            }
            for (bucket, bars) in by_bucket {
                let name = bucket.name();
                let mut table = txn.open_table(TableDefinition::<BarKey, &[u8]>::new(&name)).map_err(db_error)?;
                for bar in bars {
                    table.insert((bar.mint, bar.open_time_s), bar.to_bytes().as_slice()).map_err(db_error)?;
                }
            }
            let mut meta = txn.open_table(META).map_err(db_error)?;
            for (window_s, open_time_s) in newest {
                let key = format!("newest/{window_s}");
                let old = meta.get(key.as_str()).map_err(db_error)?.map_or(i64::MIN, |v| v.value());
                meta.insert(key.as_str(), old.max(open_time_s)).map_err(db_error)?;
            }
            for (partition, next) in &batch.offsets {
                meta.insert(format!("offset/{partition}").as_str(), *next).map_err(db_error)?;
            }
            let mut mints = txn.open_table(MINTS).map_err(db_error)?;
            for (mint, bar) in latest {
                mints.insert(mint, bar.to_bytes().as_slice()).map_err(db_error)?;
            }
        }
        txn.commit().map_err(db_error)
    }

    /// Every bucket in the store, oldest first.
    pub fn buckets(&self) -> Result<Vec<Bucket>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let mut list: Vec<Bucket> =
            txn.list_tables().map_err(db_error)?.filter_map(|t| Bucket::parse(t.name())).collect();
        list.sort();
        Ok(list)
    }

    /// Closed bars of one series with open time in `[from_s, to_s]`, at most
    /// `limit`, oldest first: the first ones of the range or the last.
    pub fn klines(
        &self,
        mint: &Pubkey,
        window_s: u32,
        (from_s, to_s): (i64, i64),
        limit: usize,
        from: Edge,
    ) -> Result<Vec<Bar>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let mut buckets: Vec<Bucket> = txn
            .list_tables()
            .map_err(db_error)?
            .filter_map(|t| Bucket::parse(t.name()))
            .filter(|b| b.window_s == window_s && b.end() > from_s && b.start <= to_s)
            .collect();
        buckets.sort();
        if from == Edge::End {
            buckets.reverse();
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        for bucket in buckets {
            if out.len() >= limit {
                break;
            }
            let name = bucket.name();
            let table = txn.open_table(TableDefinition::<BarKey, &[u8]>::new(&name)).map_err(db_error)?;
            let range = table.range((*mint, from_s)..=(*mint, to_s)).map_err(db_error)?;
            let mut take = |entry: Result<(redb::AccessGuard<'_, BarKey>, redb::AccessGuard<'_, &[u8]>), _>| {
                let (_, value) = entry.map_err(db_error)?;
                // Written by this module from valid bars of the format the
                // file records: one that does not read is counted.
                if let Some(bar) = self.read(value.value()) {
                    out.push(bar);
                }
                Ok::<_, StoreError>(out.len() >= limit)
            };
            match from {
                Edge::Start => {
                    for entry in range {
                        if take(entry)? {
                            break;
                        }
                    }
                }
                Edge::End => {
                    for entry in range.rev() {
                        if take(entry)? {
                            break;
                        }
                    }
                }
            }
        }
        if from == Edge::End {
            out.reverse();
        }
        Ok(out)
    }

    /// The latest stored bar of `limit` mints, most recent first.
    pub fn mints(&self, limit: usize) -> Result<Vec<Bar>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(MINTS).map_err(db_error)?;
        let mut list = Vec::new();
        for entry in table.iter().map_err(db_error)? {
            let (_, value) = entry.map_err(db_error)?;
            if let Some(bar) = self.read(value.value()) {
                list.push(bar);
            }
        }
        list.sort_by_key(|b| std::cmp::Reverse(b.open_time_s));
        list.truncate(limit);
        Ok(list)
    }

    /// Drops `buckets` (whole tables); returns how many bars went with them.
    pub fn drop_buckets(&self, buckets: &[Bucket]) -> Result<u64, StoreError> {
        if buckets.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write().map_err(db_error)?;
        let mut bars = 0;
        for bucket in buckets {
            let name = bucket.name();
            let definition = TableDefinition::<BarKey, &[u8]>::new(&name);
            bars += txn.open_table(definition).map_err(db_error)?.len().map_err(db_error)?;
            txn.delete_table(definition).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        Ok(bars)
    }

    /// Bars stored, over every bucket.
    pub fn bar_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let mut total = 0;
        for bucket in txn.list_tables().map_err(db_error)?.filter_map(|t| Bucket::parse(t.name())) {
            let name = bucket.name();
            total += txn
                .open_table(TableDefinition::<BarKey, &[u8]>::new(&name))
                .map_err(db_error)?
                .len()
                .map_err(db_error)?;
        }
        Ok(total)
    }

    /// Space in use (a write transaction is opened and dropped: redb keeps
    /// these numbers there).
    pub fn usage(&self) -> Result<Usage, StoreError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        let stats = txn.stats().map_err(db_error)?;
        let usage = Usage {
            allocated_bytes: stats.allocated_pages() * stats.page_size() as u64,
            stored_bytes: stats.stored_bytes(),
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
        };
        txn.abort().map_err(db_error)?;
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(mint: u8, window_s: u32, open_time_s: i64, close: f64) -> Bar {
        Bar {
            closed: true,
            close,
            high: close.max(1.0),
            low: close.min(1.0),
            ..Bar::one_trade([mint; 32], window_s, open_time_s, 1.0)
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "t/x", 1 << 20).unwrap();
        (dir, store)
    }

    #[test]
    fn pages_one_series_across_buckets_from_either_end() {
        let (_dir, store) = store();
        // 1 s bars over three one-hour buckets, two mints interleaved.
        let bars: Vec<(Bar, i64)> =
            (0..3 * 3600).step_by(7).flat_map(|t| [(bar(1, 1, t, 1.0), 3600), (bar(2, 1, t, 2.0), 3600)]).collect();
        store.write(&Batch { bars, offsets: vec![(0, 42)] }).unwrap();
        assert_eq!(store.buckets().unwrap().len(), 3);
        let all = store.klines(&[1; 32], 1, (i64::MIN, i64::MAX), 100_000, Edge::Start).unwrap();
        assert_eq!(all.len(), (0..3 * 3600).step_by(7).count());
        assert!(all.windows(2).all(|w| w[0].open_time_s < w[1].open_time_s) && all.iter().all(|b| b.mint == [1; 32]));
        let first = store.klines(&[1; 32], 1, (3500, 3800), 10, Edge::Start).unwrap();
        assert_eq!(first.iter().map(|b| b.open_time_s).collect::<Vec<_>>()[..3], [3500, 3507, 3514]);
        assert_eq!(first.len(), 10);
        let last = store.klines(&[1; 32], 1, (0, 3605), 3, Edge::End).unwrap();
        assert_eq!(last.iter().map(|b| b.open_time_s).collect::<Vec<_>>(), [3591, 3598, 3605]);
        assert!(store.klines(&[3; 32], 1, (i64::MIN, i64::MAX), 10, Edge::End).unwrap().is_empty());
        assert_eq!(store.checkpoints().unwrap(), [(0, 42)]);
        assert_eq!(store.newest().unwrap(), [(1, 3 * 3600 - 1 - (3 * 3600 - 1) % 7)]);
    }

    #[test]
    fn dropping_a_bucket_drops_its_bars_only_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), "t", 1 << 20).unwrap();
            let bars = (0..100).map(|i| (bar(1, 60, i * 3600, 1.0), 86_400)).collect();
            store.write(&Batch { bars, offsets: vec![(1, 7)] }).unwrap();
            let oldest = store.buckets().unwrap()[0];
            assert_eq!(store.drop_buckets(&[oldest]).unwrap(), 24);
            assert!(matches!(Store::open(dir.path(), "t", 1 << 20), Err(StoreError::InUse(_))));
        }
        let store = Store::open(dir.path(), "t", 1 << 20).unwrap();
        assert_eq!(store.bar_count().unwrap(), 76);
        assert_eq!(store.checkpoints().unwrap(), [(1, 7)]);
        assert_eq!(store.mints(10).unwrap()[0].open_time_s, 99 * 3600);
        assert!(store.usage().unwrap().allocated_bytes > 0);
    }

    /// Writes `value` under (mint, open time) in `bucket` and `mints`, and
    /// `format` as the file's format (`None`: the key left out, as in files
    /// written before it), bypassing the store's own checks.
    fn put_raw(store: &Store, bucket: Bucket, mint: u8, open_time_s: i64, value: &[u8], format: Option<i64>) {
        let txn = store.db.begin_write().unwrap();
        {
            let name = bucket.name();
            let mut table = txn.open_table(TableDefinition::<BarKey, &[u8]>::new(&name)).unwrap();
            table.insert(([mint; 32], open_time_s), value).unwrap();
            txn.open_table(MINTS).unwrap().insert([mint; 32], value).unwrap();
            let mut meta = txn.open_table(META).unwrap();
            match format {
                Some(format) => meta.insert(FORMAT_KEY, format).map(drop).unwrap(),
                None => meta.remove(FORMAT_KEY).map(drop).unwrap(),
            }
        }
        txn.commit().unwrap();
    }

    #[test]
    fn a_store_of_an_older_format_is_emptied_for_a_fresh_read_and_says_how_much() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A file an older build wrote: format-1 values (121 bytes, no
            // format field), offsets of what it had read, no format key.
            let store = Store::open(dir.path(), "t", 1 << 20).unwrap();
            store.write(&Batch { bars: Vec::new(), offsets: vec![(0, 500), (1, 300)] }).unwrap();
            for (i, t) in [0, 60, 120].into_iter().enumerate() {
                let old = [i as u8 + 1; bar::BAR_V1_LEN];
                put_raw(&store, Bucket::of(60, 86_400, t), 9, t, &old, None);
            }
        }
        let store = Store::open(dir.path(), "t", 1 << 20).unwrap();
        assert_eq!(store.format_change(), Some(FormatChange { from: 1, dropped_bars: 3 }));
        assert_eq!(store.bar_count().unwrap(), 0);
        assert!(store.checkpoints().unwrap().is_empty(), "read the topic again from the start");
        assert!(store.mints(10).unwrap().is_empty() && store.newest().unwrap().is_empty());
        // What the writer reads again is stored as usual, and the file now
        // says which format it holds: the next open changes nothing.
        store.write(&Batch { bars: vec![(bar(9, 60, 60, 2.0), 86_400)], offsets: vec![(0, 501)] }).unwrap();
        drop(store);
        let store = Store::open(dir.path(), "t", 1 << 20).unwrap();
        assert_eq!(store.format_change(), None);
        assert_eq!(store.klines(&[9; 32], 60, (0, 1000), 10, Edge::Start).unwrap().len(), 1);
        assert_eq!(store.unreadable(), 0);
    }

    #[test]
    fn a_store_without_the_format_key_holding_this_format_keeps_its_bars() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), "t", 1 << 20).unwrap();
            let current = bar(4, 60, 120, 1.5);
            put_raw(&store, Bucket::of(60, 86_400, 120), 4, 120, &current.to_bytes(), None);
        }
        let store = Store::open(dir.path(), "t", 1 << 20).unwrap();
        assert_eq!(store.format_change(), None);
        assert_eq!(store.klines(&[4; 32], 60, (0, 1000), 10, Edge::Start).unwrap().len(), 1);
    }

    #[test]
    fn a_stored_value_that_does_not_read_is_counted_not_hidden() {
        let (_dir, store) = store();
        store.write(&Batch { bars: vec![(bar(5, 60, 0, 1.0), 86_400)], offsets: Vec::new() }).unwrap();
        put_raw(&store, Bucket::of(60, 86_400, 60), 5, 60, b"not a bar", Some(i64::from(BAR_FORMAT)));
        let got = store.klines(&[5; 32], 60, (0, 1000), 10, Edge::Start).unwrap();
        assert_eq!((got.len(), store.unreadable()), (1, 1));
    }
}
