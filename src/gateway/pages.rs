//! Pages of the history store for the routes and the `hist` command: read
//! on a worker thread (a page that is not in the store's cache waits for
//! the disk, which must not stall a shard), filled in when asked.

use super::api::{ApiError, KlinesQuery};
use super::kafka_workers::KafkaWorkers;
use crate::history::fill::{Row, fill_prev};
use crate::history::{Edge, History, Store};

/// The rows `query` asks for; [`ApiError::NotReady`] until the store has
/// caught up with Kafka.
pub async fn page(history: &History, workers: &KafkaWorkers, query: KlinesQuery) -> Result<Vec<Row>, ApiError> {
    if !history.ready() {
        return Err(ApiError::NotReady);
    }
    let store = history.store.clone();
    workers.run(move || read_page(&store, &query)).await.map_err(|e| ApiError::Internal(e.to_string()))?
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
