//! `/auth-hub`: every request needs a bearer token, as with ASP.NET's JWT bearer handler
//! configured to also read `access_token` from the query.

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::request_info::query_value;

/// The bearer token of a request: `Authorization: Bearer T`, else `access_token=T`.
pub fn bearer_token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    from_header.or_else(|| query_value(uri, "access_token")).filter(|t| !t.is_empty())
}

/// The user of an `/auth-hub` request, or the 401 answer.
pub fn require_user(headers: &HeaderMap, uri: &Uri) -> Result<String, Response> {
    bearer_token(headers, uri).ok_or_else(unauthorized)
}

pub fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")]).into_response()
}
