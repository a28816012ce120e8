//! The HTTP answers: `/` and `/static/*` (files read once and cached),
//! `/healthz` (is Kafka reachable?), `/metrics`, and the JSON API:
//! `/api/klines` and `/api/v3/klines` (closed-bar history from the history
//! store, klinecast's and Binance's shapes, [`api`]) and `/api/mints` (the
//! shard feed's memory and the store). Routing and response bytes are
//! [`http`]'s; this file decides what each route answers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::api::{self, Shape};
use super::config::{GatewayConfig, Handles};
use super::feed::Feed;
use super::http::{self, RequestHead, Route};
use super::kafka_workers::KafkaWorkers;
use super::metrics::Metrics;
use super::pages;
use crate::codec::bar::Bar;
use crate::history::History;
use crate::ingest::metrics::IngestMetrics;

/// Mints listed by `/api/mints`.
pub const MINTS_LISTED: usize = 1000;
/// Largest file served from `static/`; assets are read once and cached.
const MAX_STATIC_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// What the routes need from the shard.
pub struct Routes {
    /// Validated settings (static directory, windows, Kafka).
    pub config: GatewayConfig,
    /// Process-wide counters, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Threads for the blocking `/healthz` probe.
    pub workers: KafkaWorkers,
    /// The shard's reader (history, mints), if it started.
    pub feed: Option<Rc<Feed>>,
    /// The history store (`/api/klines`, `/api/v3/klines`, `/api/mints`).
    pub history: Option<History>,
    /// The counters of an ingest in the same process (`serve`).
    pub ingest: Option<Arc<IngestMetrics>>,
    /// Files served under `/` and `/static/`, read once.
    files: RefCell<HashMap<String, Rc<Vec<u8>>>>,
}

impl Routes {
    /// The routes of one shard.
    pub fn new(
        config: GatewayConfig,
        handles: Handles,
        metrics: Arc<Metrics>,
        workers: KafkaWorkers,
        feed: Option<Rc<Feed>>,
    ) -> Self {
        let Handles { ingest, history } = handles;
        Self { config, metrics, workers, feed, history, ingest, files: RefCell::new(HashMap::new()) }
    }

    /// The complete response to a request that is not a WebSocket upgrade.
    pub async fn answer(&self, route: &Route, head: &RequestHead) -> Vec<u8> {
        let with_body = head.method != "HEAD";
        let body = |status: u16, kind: &str, bytes: &[u8]| {
            http::response(status, kind, if with_body { bytes } else { &[] }, &[])
        };
        match route {
            Route::Index => self.static_file("index.html", with_body),
            Route::Static(rel) => self.static_file(rel, with_body),
            Route::Metrics => {
                let mut text = self.metrics.render();
                if let Some(ingest) = &self.ingest {
                    text.push_str(&ingest.render());
                }
                if let Some(history) = &self.history {
                    text.push_str(&history.render_metrics());
                }
                body(200, "text/plain; version=0.0.4", text.as_bytes())
            }
            Route::Healthz => self.health().await,
            Route::Mints => body(200, "application/json", self.mints_json().await.as_bytes()),
            Route::Klines | Route::BinanceKlines => {
                let shape = if *route == Route::Klines { Shape::Native } else { Shape::Binance };
                match self.klines(head, shape).await {
                    Ok(json) => body(200, "application/json", json.as_bytes()),
                    Err(error) => body(error.status(), "application/json", error.body().as_bytes()),
                }
            }
            Route::BinancePing => body(200, "application/json", b"{}"),
            Route::BinanceTime => {
                let now_ms =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
                body(200, "application/json", format!("{{\"serverTime\":{now_ms}}}").as_bytes())
            }
            Route::NotFound => http::error_response(404, "no such resource"),
            Route::MethodNotAllowed => http::error_response(405, "only GET and HEAD"),
        }
    }

    fn static_file(&self, rel: &str, with_body: bool) -> Vec<u8> {
        let cached = self.files.borrow().get(rel).cloned();
        let bytes = match cached {
            Some(bytes) => bytes,
            None => match read_static(&self.config.static_dir, rel) {
                Some(bytes) => {
                    let bytes = Rc::new(bytes);
                    self.files.borrow_mut().insert(rel.to_owned(), bytes.clone());
                    bytes
                }
                None => return http::error_response(404, "no such file"),
            },
        };
        let body: &[u8] = if with_body { &bytes } else { &[] };
        http::response(200, http::content_type_for(rel), body, &[])
    }

    async fn health(&self) -> Vec<u8> {
        let kafka = self.config.kafka.clone();
        let reachable = match self.workers.run(move || crate::kafka::topic::probe(&kafka)).await {
            Ok(Ok(partitions)) => Ok(partitions),
            Ok(Err(error)) => Err(error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let source = self.ingest.as_ref().and_then(|i| i.unhealthy());
        match (reachable, source) {
            (Ok(partitions), None) => {
                let body = format!("{{\"status\":\"ok\",\"kafka\":\"reachable\",\"partitions\":{partitions}}}");
                http::response(200, "application/json", body.as_bytes(), &[])
            }
            (Ok(partitions), Some(reason)) => {
                let body = serde_json::json!({"status": "degraded", "kafka": "reachable", "partitions": partitions, "source": reason});
                http::response(503, "application/json", body.to_string().as_bytes(), &[])
            }
            (Err(error), source) => {
                let body =
                    serde_json::json!({"status": "degraded", "kafka": "unreachable", "error": error, "source": source})
                        .to_string();
                http::response(503, "application/json", body.as_bytes(), &[])
            }
        }
    }

    /// `GET /api/klines?mint=<base58>&window=5m&startTime=<ms>&endTime=<ms>&limit=500`
    /// and `GET /api/v3/klines?symbol=..&interval=..`: a page of one series'
    /// closed bars, oldest first ([`api`] has the parameters).
    async fn klines(&self, head: &RequestHead, shape: Shape) -> Result<String, api::ApiError> {
        let query = api::parse_klines(shape, &head.query_pairs(), self.config.windows.seconds())?;
        let history = self.history.as_ref().ok_or(api::ApiError::NotReady)?;
        let rows = pages::page(history, &self.workers, query, self.feed.as_deref()).await?;
        Ok(api::body(shape, &rows, query.unit))
    }

    /// `GET /api/mints`: mints seen, most recently traded first, with the
    /// quote their prices are in and the venue of their latest bar.
    async fn mints_json(&self) -> String {
        let mut list = self.feed.as_ref().map(|f| f.mints(MINTS_LISTED)).unwrap_or_default();
        if let Some(history) = &self.history {
            // Mints the feed has not seen since start (quiet ones) come from
            // the store.
            let store = history.store.clone();
            let kept = self.workers.run(move || store.mints(MINTS_LISTED)).await;
            let kept: Vec<Bar> = kept.ok().and_then(Result::ok).unwrap_or_default();
            let live: std::collections::HashSet<[u8; 32]> = list.iter().map(|b| b.mint).collect();
            list.extend(kept.into_iter().filter(|b| !live.contains(&b.mint)));
            list.sort_by_key(|b| std::cmp::Reverse(b.open_time_s));
            list.truncate(MINTS_LISTED);
        }
        let items: Vec<serde_json::Value> = list
            .into_iter()
            .map(|bar| {
                serde_json::json!({
                    "mint": bs58::encode(bar.mint).into_string(),
                    "last_bar_time": bar.open_time_s,
                    "last_close": bar.close,
                    "quote": bs58::encode(bar.quote_mint).into_string(),
                    "quote_symbol": crate::codec::quote::label(&bar.quote_mint),
                    "quote_decimals": bar.quote_decimals,
                    "venue": crate::codec::bar::Venue::names(bar.venues),
                })
            })
            .collect();
        serde_json::Value::Array(items).to_string()
    }
}

fn read_static(dir: &Path, rel: &str) -> Option<Vec<u8>> {
    let path = dir.join(rel);
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_STATIC_FILE_BYTES {
        return None;
    }
    std::fs::read(path).ok()
}
