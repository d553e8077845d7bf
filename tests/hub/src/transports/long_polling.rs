//! Long Polling and the HTTP POST/DELETE requests shared with SSE.
//! The first poll answers at once (the connection is set up); later polls wait for data up to
//! the poll timeout (200 with no body), answer 204 once the server ended the connection, and a
//! newer poll makes the previous one answer 204 (ASP.NET behaviour).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::app::App;
use crate::connections::{text_response, Claim, Connection, Inbound, TransportKind};
use crate::outbound::Pull;

pub async fn poll(app: Arc<App>, conn: Arc<Connection>, claim: Claim) -> Response {
    let mut response = if claim == Claim::First {
        conn.set_inactive();
        conn.start_session(&app);
        ok_octets(Body::empty())
    } else {
        next_poll(&app, &conn).await
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
    response
}

async fn next_poll(app: &App, conn: &Connection) -> Response {
    let generation = conn.outbound.attach();
    conn.set_active();
    let pulled = tokio::select! {
        pulled = async {
            conn.stall.wait().await;
            conn.outbound.pull(generation, true).await
        } => Some(pulled),
        _ = tokio::time::sleep(app.opts.poll_timeout) => None,
    };
    if conn.outbound.is_current(generation) {
        conn.set_inactive();
    }
    match pulled {
        None => text_response(StatusCode::OK, ""),
        Some(Pull::Frames(frames)) => {
            conn.stall.wait().await;
            let mut body = Vec::with_capacity(frames.iter().map(|f| f.data.len()).sum());
            for frame in frames {
                body.extend_from_slice(&frame.data);
            }
            ok_octets(Body::from(body))
        }
        Some(Pull::End) => {
            conn.dispose(app);
            no_content()
        }
        Some(Pull::Replaced) => no_content(),
        Some(Pull::Abort) => {
            // Headers go out, then the body fails: the client sees the poll cut.
            let failing = futures_util::stream::once(async {
                Err::<bytes::Bytes, _>(std::io::Error::other("DropTransport"))
            });
            ok_octets(Body::from_stream(failing))
        }
    }
}

fn ok_octets(body: Body) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

fn no_content() -> Response {
    (StatusCode::NO_CONTENT, [(header::CONTENT_TYPE, "text/plain")]).into_response()
}

/// POST: the body goes to the session as it arrives (SSE and Long Polling); like ASP.NET there
/// is no size limit here, the hub protocol's message size limit applies.
pub async fn send(conn: &Connection, body: Body) -> Response {
    if conn.transport() == Some(TransportKind::WebSockets) {
        return text_response(StatusCode::METHOD_NOT_ALLOWED, "POST requests are not allowed for WebSocket connections.");
    }
    conn.stall.wait().await;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            return text_response(StatusCode::BAD_REQUEST, "");
        };
        if !conn.deliver(Inbound::Data(chunk)).await {
            return text_response(StatusCode::NOT_FOUND, "");
        }
    }
    text_response(StatusCode::OK, "")
}

/// DELETE: the Long Polling client stops; a pending poll answers 204.
pub fn delete(app: &App, conn: &Connection) -> Response {
    if conn.transport() != Some(TransportKind::LongPolling) {
        return text_response(StatusCode::BAD_REQUEST, "Cannot terminate this connection using the DELETE endpoint.");
    }
    conn.dispose(app);
    text_response(StatusCode::ACCEPTED, "")
}
