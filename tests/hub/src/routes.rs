//! HTTP routing: which hub a request is for, authentication, and which transport a GET asks
//! for (SSE by `Accept: text/event-stream`, WebSockets by upgrade, else Long Polling).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use crate::app::App;
use crate::auth;
use crate::connections::{not_found, text_response, Connection, HubKind, TransportKind};
use crate::negotiate;
use crate::request_info::{self, query_value};
use crate::transports::{long_polling, sse, websockets};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/hub/negotiate", any(main_negotiate))
        .route("/auth-hub/negotiate", any(auth_negotiate))
        .route("/redirect-hub/negotiate", any(redirect_negotiate))
        .route("/hub", any(main_hub))
        .route("/hub/", any(main_hub))
        .route("/auth-hub", any(auth_hub))
        .route("/auth-hub/", any(auth_hub))
        .with_state(app)
}

async fn main_negotiate(State(app): State<Arc<App>>, request: Request) -> Response {
    negotiate::negotiate(&app, HubKind::Main, request).await
}

async fn auth_negotiate(State(app): State<Arc<App>>, request: Request) -> Response {
    negotiate::negotiate(&app, HubKind::Auth, request).await
}

async fn redirect_negotiate(State(app): State<Arc<App>>, request: Request) -> Response {
    negotiate::redirect(&app, request).await
}

async fn main_hub(State(app): State<Arc<App>>, request: Request) -> Response {
    hub_endpoint(app, HubKind::Main, request).await
}

async fn auth_hub(State(app): State<Arc<App>>, request: Request) -> Response {
    hub_endpoint(app, HubKind::Auth, request).await
}

async fn hub_endpoint(app: Arc<App>, hub: HubKind, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let user = match hub {
        HubKind::Auth => match auth::require_user(&parts.headers, &parts.uri) {
            Ok(user) => Some(user),
            Err(response) => return response,
        },
        HubKind::Main => None,
    };
    match parts.method {
        Method::GET => connect(app, hub, user, &mut parts).await,
        Method::POST => match existing(&app, hub, &parts) {
            Ok(conn) => {
                conn.record_send(request_info::capture(&parts.headers, &parts.uri));
                long_polling::send(&conn, body).await
            }
            Err(response) => response,
        },
        Method::DELETE => match existing(&app, hub, &parts) {
            Ok(conn) => long_polling::delete(&app, &conn),
            Err(response) => response,
        },
        _ => text_response(StatusCode::METHOD_NOT_ALLOWED, ""),
    }
}

/// The connection named by `id=`: 400 without one, 404 for an unknown one.
fn existing(app: &App, hub: HubKind, parts: &Parts) -> Result<Arc<Connection>, Response> {
    let Some(token) = query_value(&parts.uri, "id").filter(|t| !t.is_empty()) else {
        return Err(text_response(StatusCode::BAD_REQUEST, "Connection ID required"));
    };
    app.registry.get(&token).filter(|c| c.hub == hub).ok_or_else(not_found)
}

async fn connect(app: Arc<App>, hub: HubKind, user: Option<String>, parts: &mut Parts) -> Response {
    let info = request_info::capture(&parts.headers, &parts.uri);
    let wants_events = parts
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream")));
    let is_upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));

    if wants_events {
        if app.faults.take_connect_failure(TransportKind::ServerSentEvents) {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        let conn = match existing(&app, hub, parts) {
            Ok(conn) => conn,
            Err(response) => return response,
        };
        let claim = match conn.claim(TransportKind::ServerSentEvents) {
            Ok(claim) => claim,
            Err(response) => return response,
        };
        conn.record_connect(info);
        return sse::connect(app, conn, claim);
    }

    if is_upgrade {
        let ws = match axum::extract::ws::WebSocketUpgrade::from_request_parts(parts, &()).await {
            Ok(ws) => ws,
            Err(rejection) => return rejection.into_response(),
        };
        if app.faults.take_connect_failure(TransportKind::WebSockets) {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        // Without `id` the client skipped negotiate: the socket makes a new connection.
        let conn = match query_value(&parts.uri, "id").filter(|t| !t.is_empty()) {
            None => app.registry.unnegotiated(hub, user),
            Some(_) => match existing(&app, hub, parts) {
                Ok(conn) => conn,
                Err(response) => return response,
            },
        };
        let claim = match conn.claim(TransportKind::WebSockets) {
            Ok(claim) => claim,
            Err(response) => return response,
        };
        conn.record_connect(info);
        return websockets::upgrade(app, conn, claim, ws);
    }

    let conn = match existing(&app, hub, parts) {
        Ok(conn) => conn,
        Err(response) => return response,
    };
    if conn.transport().is_none() && app.faults.take_connect_failure(TransportKind::LongPolling) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let claim = match conn.claim(TransportKind::LongPolling) {
        Ok(claim) => claim,
        Err(response) => return response,
    };
    conn.record_connect(info);
    long_polling::poll(app, conn, claim).await
}
