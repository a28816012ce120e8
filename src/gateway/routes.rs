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
use super::udf;
use crate::codec::bar::Bar;
use crate::history::{Edge, History};
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
            Route::Udf(what) => {
                let (status, kind, text) = self.udf(what, head).await;
                body(status, kind, text.as_bytes())
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

    /// `/udf/<what>`: the status, content type and body of TradingView's
    /// UDF answers ([`udf`]); errors are answers too (`"s":"error"`), as
    /// the library expects, except 503 while the history store catches up
    /// after a start (as on `/api/klines`).
    async fn udf(&self, what: &str, head: &RequestHead) -> (u16, &'static str, String) {
        let windows = self.config.windows.seconds();
        let params = head.query_pairs();
        let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let answer = match what {
            "config" => udf::config(windows),
            "time" => {
                let now_s =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                return (200, "text/plain", now_s.to_string());
            }
            "symbols" => {
                let mint = get("symbol").and_then(|s| crate::codec::json::parse_mint(s).ok());
                let known = self.known_mints().await;
                match known.iter().find(|bar| Some(bar.mint) == mint) {
                    Some(bar) => udf::symbol_info(bar, windows),
                    None => udf::error("unknown_symbol"),
                }
            }
            "search" => {
                let query = get("query").unwrap_or_default().to_ascii_lowercase();
                let limit = get("limit").and_then(|l| l.parse().ok()).unwrap_or(30usize).min(100);
                let known = self.known_mints().await;
                let found = known
                    .iter()
                    .filter(|bar| bs58::encode(bar.mint).into_string().to_ascii_lowercase().contains(&query));
                serde_json::Value::Array(found.take(limit).map(udf::search_item).collect())
            }
            _ => match udf::parse_history(&params, windows) {
                Err(message) => udf::error(&message),
                Ok(request) => match self.udf_history(request).await {
                    Ok(answer) => answer,
                    Err(api::ApiError::NotReady) => {
                        let error = udf::error(&api::ApiError::NotReady.to_string());
                        return (503, "application/json", error.to_string());
                    }
                    Err(error) => udf::error(&error.to_string()),
                },
            },
        };
        (200, "application/json", answer.to_string())
    }

    /// `/udf/history`.
    async fn udf_history(&self, request: udf::HistoryRequest) -> Result<serde_json::Value, api::ApiError> {
        let history = self.history.as_ref().ok_or(api::ApiError::NotReady)?;
        let rows = pages::page(history, &self.workers, request.query, self.feed.as_deref()).await?;
        let before = match rows.is_empty() && request.from_s > i64::MIN {
            true => {
                let (store, q) = (history.store.clone(), request.query);
                let found = self
                    .workers
                    .run(move || store.klines(&q.mint, q.window_s, (i64::MIN, request.from_s - 1), 1, Edge::End));
                let internal = |e: String| api::ApiError::Internal(e);
                found
                    .await
                    .map_err(|e| internal(e.to_string()))?
                    .map_err(|e| internal(e.to_string()))?
                    .pop()
                    .map(|b| b.open_time_s)
            }
            false => None,
        };
        Ok(udf::history(&rows, before))
    }

    /// Mints seen, most recently traded first: the shard feed's, then the
    /// store's quiet ones; each with its newest bar.
    async fn known_mints(&self) -> Vec<Bar> {
        let mut list = self.feed.as_ref().map(|f| f.mints(MINTS_LISTED)).unwrap_or_default();
        if let Some(history) = &self.history {
            let store = history.store.clone();
            let kept = self.workers.run(move || store.mints(MINTS_LISTED)).await;
            let kept: Vec<Bar> = kept.ok().and_then(Result::ok).unwrap_or_default();
            let live: std::collections::HashSet<[u8; 32]> = list.iter().map(|b| b.mint).collect();
            list.extend(kept.into_iter().filter(|b| !live.contains(&b.mint)));
            list.sort_by_key(|b| std::cmp::Reverse(b.open_time_s));
            list.truncate(MINTS_LISTED);
        }
        list
    }

    /// `GET /api/mints`: mints seen, most recently traded first, with the
    /// quote their prices are in and the venue of their latest bar.
    async fn mints_json(&self) -> String {
        let list = self.known_mints().await;
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
