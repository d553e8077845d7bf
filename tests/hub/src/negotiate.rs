//! `POST {hub}/negotiate` (versions 0 and 1, stateful reconnect flag, affinity cookie) and the
//! Azure-style redirect of `/redirect-hub/negotiate`.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::App;
use crate::auth;
use crate::connections::{text_response, HubKind};
use crate::request_info::{self, query_value};

/// The negotiate protocol version this server speaks.
const NEGOTIATE_VERSION: i64 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Negotiation<'a> {
    negotiate_version: i64,
    connection_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_token: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    use_stateful_reconnect: bool,
    available_transports: [AvailableTransport; 3],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AvailableTransport {
    transport: &'static str,
    transfer_formats: &'static [&'static str],
}

const TRANSPORTS: [AvailableTransport; 3] = [
    AvailableTransport { transport: "WebSockets", transfer_formats: &["Text", "Binary"] },
    AvailableTransport { transport: "ServerSentEvents", transfer_formats: &["Text"] },
    AvailableTransport { transport: "LongPolling", transfer_formats: &["Text", "Binary"] },
];

pub async fn negotiate(app: &Arc<App>, hub: HubKind, request: Request) -> Response {
    if request.method() != Method::POST {
        return text_response(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    let (parts, _body) = request.into_parts();
    let user = match hub {
        HubKind::Auth => match auth::require_user(&parts.headers, &parts.uri) {
            Ok(user) => Some(user),
            Err(response) => return response,
        },
        HubKind::Main => None,
    };
    if let Some(failure) = injected_failure(app) {
        return failure;
    }
    let version = match query_value(&parts.uri, "negotiateVersion") {
        None => 0,
        Some(text) => match text.parse::<i64>() {
            Err(_) => return negotiate_error("The client requested a non-integer protocol version."),
            Ok(v) if v < 0 => {
                return negotiate_error(&format!(
                    "The client requested version '{v}', but the server does not support this version."
                ))
            }
            Ok(v) => v.min(NEGOTIATE_VERSION),
        },
    };
    let stateful =
        query_value(&parts.uri, "useStatefulReconnect").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let info = request_info::capture(&parts.headers, &parts.uri);
    let conn = app.registry.negotiated(hub, user, version as u32, stateful, info);
    let body = Negotiation {
        negotiate_version: version,
        connection_id: &conn.id,
        connection_token: (version >= 1).then_some(conn.token.as_str()),
        use_stateful_reconnect: stateful,
        available_transports: TRANSPORTS,
    };
    let mut response = json_response(&body);
    // Like a load balancer's affinity cookie: clients must replay it on every later request.
    let affinity: u64 = rand::random();
    if let Ok(cookie) = HeaderValue::from_str(&format!("hub-affinity={affinity:016x}; path=/")) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `/redirect-hub/negotiate`: sends the client to `/auth-hub` with an access token, or with
/// `?loop=1` back to itself forever.
pub async fn redirect(app: &Arc<App>, request: Request) -> Response {
    if request.method() != Method::POST {
        return text_response(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    if let Some(failure) = injected_failure(app) {
        return failure;
    }
    let base = &app.base_url;
    if query_value(request.uri(), "loop").is_some_and(|v| v == "1") {
        json_response(&serde_json::json!({ "url": format!("{base}/redirect-hub?loop=1") }))
    } else {
        json_response(&serde_json::json!({ "url": format!("{base}/auth-hub"), "accessToken": "redirected-user" }))
    }
}

fn injected_failure(app: &App) -> Option<Response> {
    let status = app.faults.take_negotiate_failure()?;
    if status == StatusCode::UNAUTHORIZED {
        return Some(auth::unauthorized());
    }
    Some(text_response(status, ""))
}

fn negotiate_error(error: &str) -> Response {
    json_response(&serde_json::json!({ "error": error }))
}

fn json_response<T: Serialize>(body: &T) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}
