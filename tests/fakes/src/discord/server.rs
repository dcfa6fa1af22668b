//! Binding 127.0.0.1 and serving connections. Connections live in a
//! `JoinSet` owned by the accept loop, so aborting the loop (when the
//! [`FakeDiscord`](super::FakeDiscord) is dropped) ends them all; websocket
//! tasks end on the shutdown signal.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::state::Shared;
use super::{cdn, gateway, rest};

/// Binds 127.0.0.1 on `port` (0: any free port). Never another interface.
pub(crate) async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await
}

/// Accepts and serves connections until aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/ws", get(upgrade))
        .route(
            "/attachments/:channel/:id/:filename",
            get(super::attachments::serve),
        )
        .route("/ephemeral-attachments/*file", get(cdn::serve))
        .fallback(rest::handle)
        .with_state(shared);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    // A connection ending with an error (client gone) is normal.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    if shared.read(|s| s.gateway_refused) {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    ws.on_upgrade(move |socket| gateway::serve_connection(shared, socket))
}
