//! The HTTP answers: `/` and `/static/*` (files read once and cached),
//! `/healthz` (is Kafka reachable?), `/metrics`, and the JSON API
//! `/api/klines` (closed-bar history, Binance-like) and `/api/mints`, both
//! from the shard feed's memory. Routing and response bytes are
//! [`http`]'s; this file decides what each route answers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use thiserror::Error;

use super::config::GatewayConfig;
use super::feed::{Feed, HISTORY_BARS};
use super::http::{self, RequestHead, Route};
use super::kafka_workers::KafkaWorkers;
use super::metrics::Metrics;
use crate::aggregate::windows::{WindowError, parse_window};
use crate::codec::json::{BarJson, parse_mint};

/// Default `limit` of `/api/klines`.
pub const DEFAULT_LIMIT: usize = 500;
/// Mints listed by `/api/mints`.
pub const MINTS_LISTED: usize = 1000;
/// Largest file served from `static/`; assets are read once and cached.
const MAX_STATIC_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Why `/api/klines` did not answer with bars.
#[derive(Debug, Error)]
pub enum ApiError {
    /// No `window` parameter (400).
    #[error("window is required, e.g. window=1m")]
    MissingWindow,
    /// A `window` that does not parse (400).
    #[error(transparent)]
    BadWindow(#[from] WindowError),
    /// A window this deployment does not serve (400).
    #[error("window {window} is not served; windows: {served}")]
    WindowNotServed {
        /// The window as asked.
        window: String,
        /// The configured windows.
        served: String,
    },
    /// No `mint` parameter (400).
    #[error("mint is required (base58)")]
    MissingMint,
    /// A `mint` that is not base58 of 32 bytes (400).
    #[error("{0}")]
    BadMint(String),
    /// `startTime` or `endTime` not an integer (400).
    #[error("{0} must be unix milliseconds")]
    BadTime(&'static str),
    /// `limit` out of range (400).
    #[error("limit must be 1 to {HISTORY_BARS}")]
    BadLimit,
    /// The shard feed did not start (503).
    #[error("history is not available: the shard feed did not start")]
    NoFeed,
    /// The shard feed is still reading history back (503).
    #[error("history is still being read back from Kafka; retry in a moment")]
    NotReady,
    /// The answer could not be encoded (500).
    #[error("encoding the answer: {0}")]
    Encode(#[from] serde_json::Error),
}

impl ApiError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NoFeed | Self::NotReady => 503,
            Self::Encode(_) => 500,
            _ => 400,
        }
    }
}

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
    /// Files served under `/` and `/static/`, read once.
    files: RefCell<HashMap<String, Rc<Vec<u8>>>>,
}

impl Routes {
    /// The routes of one shard.
    pub fn new(config: GatewayConfig, metrics: Arc<Metrics>, workers: KafkaWorkers, feed: Option<Rc<Feed>>) -> Self {
        Self { config, metrics, workers, feed, files: RefCell::new(HashMap::new()) }
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
                if let Some(ingest) = &self.config.ingest {
                    text.push_str(&ingest.render());
                }
                body(200, "text/plain; version=0.0.4", text.as_bytes())
            }
            Route::Healthz => self.health().await,
            Route::Mints => body(200, "application/json", self.mints_json().as_bytes()),
            Route::Klines => match self.klines(head) {
                Ok(json) => body(200, "application/json", json.as_bytes()),
                Err(error) => http::error_response(error.status(), &error.to_string()),
            },
            Route::NotFound => http::error_response(404, "no such resource"),
            Route::MethodNotAllowed => http::error_response(405, "only GET and HEAD"),
            Route::WebSocket => http::error_response(426, "upgrade required"),
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
        let source = self.config.ingest.as_ref().and_then(|i| i.unhealthy());
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

    /// `GET /api/klines?window=5m&mint=<base58>&startTime=<ms>&endTime=<ms>&limit=500`:
    /// closing bars of one series, oldest first.
    fn klines(&self, head: &RequestHead) -> Result<String, ApiError> {
        let window = head.query_param("window").ok_or(ApiError::MissingWindow)?;
        let window_s = parse_window(&window)?;
        if self.config.windows.position(window_s).is_none() {
            return Err(ApiError::WindowNotServed { window, served: self.config.windows.to_string() });
        }
        let mint = head.query_param("mint").ok_or(ApiError::MissingMint)?;
        let mint = parse_mint(&mint).map_err(ApiError::BadMint)?;
        let millis = |key: &'static str| -> Result<Option<i64>, ApiError> {
            head.query_param(key).map(|v| v.parse::<i64>().map_err(|_| ApiError::BadTime(key))).transpose()
        };
        let from_s = millis("startTime")?.map_or(i64::MIN, |ms| ms.div_euclid(1000));
        let to_s = millis("endTime")?.map_or(i64::MAX, |ms| ms.div_euclid(1000));
        let limit = match head.query_param("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=HISTORY_BARS).contains(&n) => n,
                _ => return Err(ApiError::BadLimit),
            },
        };
        let feed = self.feed.as_ref().ok_or(ApiError::NoFeed)?;
        if !feed.history_ready() {
            return Err(ApiError::NotReady);
        }
        let bars: Vec<BarJson> = feed.klines(&mint, window_s, from_s, to_s, limit).iter().map(BarJson::from).collect();
        Ok(serde_json::to_string(&bars)?)
    }

    /// `GET /api/mints`: mints seen, most recently traded first, with the
    /// quote their prices are in and the venue of their latest bar.
    fn mints_json(&self) -> String {
        let list = self.feed.as_ref().map(|f| f.mints(MINTS_LISTED)).unwrap_or_default();
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
