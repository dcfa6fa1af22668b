//! The HTTP side: `GET /healthz` and `GET /metrics` on `METRICS_ADDR`.
//!
//! hyper 1's HTTP/1 server parses the requests (hyper 1 was already in the lock through the
//! test fakes' axum); the routing is two paths, so no framework.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::Sample;
use crate::app::App;

/// How long a health check waits for the database before it reports it as not answering.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("METRICS_ADDR: cannot listen on {addr}: {source}")]
pub struct MetricsError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// Listens on `addr` (port 0 picks a free one; the log says which).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError { addr, source })
}

/// Serves `/healthz` and `/metrics` for `app` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    match listener.local_addr() {
        Ok(addr) => info!(%addr, "serving /healthz and /metrics"),
        Err(e) => warn!(error = %e, "serving /healthz and /metrics on an unknown address"),
    }
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                warn!(error = %e, "the metrics endpoint could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(respond(&app, &request).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                debug!(error = %e, "a metrics connection ended with an error");
            }
        });
    }
}

async fn respond(app: &App, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/healthz" => match health(app).await {
            Health::Ok => json(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
            Health::Unavailable(reason) => json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "status": "unavailable", "reason": reason }),
            ),
        },
        "/metrics" => match sample(app).await {
            Ok(sample) => match app.metrics.encode(sample) {
                Ok(body) => {
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT));
                    response
                }
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot encode the metrics: {e}\n"),
                ),
            },
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("cannot read the metrics: {reason}\n"),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "try /healthz or /metrics\n"),
    }
}

/// Whether the bot can do its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Every gateway shard is connected and the database answers.
    Ok,
    /// Why not, in words for whoever reads the monitoring.
    Unavailable(String),
}

/// Checks the gateway (every shard connected) and the database (answers a query within
/// [`DATABASE_CHECK_TIMEOUT`]).
pub async fn health(app: &App) -> Health {
    let query = app.db.call(|conn| {
        conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?;
        Ok(())
    });
    match tokio::time::timeout(DATABASE_CHECK_TIMEOUT, query).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Health::Unavailable(format!("the database does not answer: {e}")),
        Err(_) => {
            return Health::Unavailable(format!(
                "the database did not answer within {} s",
                DATABASE_CHECK_TIMEOUT.as_secs()
            ))
        }
    }
    match app.metrics.gateway().await {
        None => Health::Unavailable("not connected to the Discord gateway yet".to_owned()),
        Some(shards) if shards.is_empty() => {
            Health::Unavailable("no Discord gateway shard is running".to_owned())
        }
        Some(shards) => match shards.iter().find(|s| !s.connected) {
            Some(shard) => Health::Unavailable(format!(
                "Discord gateway shard {} is {}",
                shard.id, shard.stage
            )),
            None => Health::Ok,
        },
    }
}

/// Reads what the metrics show from its sources: the bus, the durable subscribers and their
/// log, the gateway and the profile cache.
pub async fn sample(app: &App) -> Result<Sample, String> {
    let dispatcher = &app.subscribers;
    let last = dispatcher
        .log()
        .last_sequence()
        .await
        .map_err(|e| e.to_string())?;
    let subscriber_lag = dispatcher
        .statuses()
        .into_iter()
        .map(|s| (s.name, (last - s.checkpoint).max(0)))
        .collect();
    let dead_letters = dispatcher
        .dead_letters(None)
        .await
        .map_err(|e| e.to_string())?
        .len();
    Ok(Sample {
        bus: app.bus.stats(),
        dead_letters,
        subscriber_lag,
        shards: app.metrics.gateway().await.unwrap_or_default(),
        cached_personalities: app.cache.len(),
    })
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
