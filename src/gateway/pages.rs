//! Pages of the history store for the routes and the `hist` command: read
//! on a worker thread (a page that is not in the store's cache waits for
//! the disk, which must not stall a shard), filled in when asked, and
//! ended, as Binance's are, with what the store does not hold yet: the
//! closing bars the shard feed has read past the store's newest (the store
//! commits a moment after Kafka has them) and the bar still open.

use super::api::{ApiError, KlinesQuery};
use super::feed::Feed;
use super::kafka_workers::KafkaWorkers;
use crate::codec::bar::Bar;
use crate::history::fill::{Row, fill_prev};
use crate::history::{Edge, History, Store};

/// The rows `query` asks for, then the newer bars `feed` holds (see the
/// module's doc); [`ApiError::NotReady`] until the store has caught up
/// with Kafka.
pub async fn page(
    history: &History,
    workers: &KafkaWorkers,
    query: KlinesQuery,
    feed: Option<&Feed>,
) -> Result<Vec<Row>, ApiError> {
    if !history.ready() {
        return Err(ApiError::NotReady);
    }
    let store = history.store.clone();
    let mut rows =
        workers.run(move || read_page(&store, &query)).await.map_err(|e| ApiError::Internal(e.to_string()))??;
    if let Some(feed) = feed {
        let after_s = rows.last().map_or(query.from_s.saturating_sub(1), |row| row.bar.open_time_s);
        extend_with_newer(&mut rows, feed.newer_than(&query.mint, query.window_s, after_s), &query);
    }
    Ok(rows)
}

/// Adds `newer` (oldest first, each after the page's last row) within the
/// page's range and limit: a page from its start takes them only while it
/// has room; a page of the last rows takes them and drops as many from
/// its front.
fn extend_with_newer(rows: &mut Vec<Row>, newer: Vec<Bar>, q: &KlinesQuery) {
    let fresh = newer.into_iter().filter(|bar| (q.from_s..=q.to_s).contains(&bar.open_time_s)).map(Row::kept);
    match q.edge {
        Edge::Start => rows.extend(fresh.take(q.limit.saturating_sub(rows.len()))),
        Edge::End => {
            rows.extend(fresh);
            let over = rows.len().saturating_sub(q.limit);
            rows.drain(..over);
        }
    }
}

/// Blocking: the rows of one page.
pub fn read_page(store: &Store, q: &KlinesQuery) -> Result<Vec<Row>, ApiError> {
    let internal = |e: crate::history::StoreError| ApiError::Internal(e.to_string());
    let bars = store.klines(&q.mint, q.window_s, (q.from_s, q.to_s), q.limit, q.edge).map_err(internal)?;
    if !q.fill {
        return Ok(bars.into_iter().map(Row::kept).collect());
    }
    // The bar before the page fills the windows at its start, unless the
    // page is the last `limit` rows and already full without them.
    let before = match bars.first() {
        Some(first) if q.edge == Edge::Start || bars.len() < q.limit => {
            store.klines(&q.mint, q.window_s, (i64::MIN, first.open_time_s - 1), 1, Edge::End).map_err(internal)?.pop()
        }
        _ => None,
    };
    Ok(fill_prev(&bars, before.as_ref(), q.from_s, q.limit, q.edge))
}
