//! What `GetRequestInfo` reports about an HTTP request: headers, query and cookies.

use axum::http::{HeaderMap, Uri};
use serde_json::{Map, Value};

/// Query parameters of `uri`, percent-decoded, in order.
pub fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect()
}

/// The first value of query parameter `name`, compared case-insensitively like ASP.NET does.
pub fn query_value(uri: &Uri, name: &str) -> Option<String> {
    query_pairs(uri).into_iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// `{"headers": {lower-case name: value}, "query": {name: value}, "cookies": {name: value}}`.
/// Repeated headers are joined with ", "; repeated query keys keep the last value.
pub fn capture(headers: &HeaderMap, uri: &Uri) -> Value {
    let mut header_map = Map::new();
    for name in headers.keys() {
        let values: Vec<&str> =
            headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("<non-ascii>")).collect();
        header_map.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    let query: Map<String, Value> =
        query_pairs(uri).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let mut cookies = Map::new();
    for header in headers.get_all(axum::http::header::COOKIE) {
        for pair in header.to_str().unwrap_or("").split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                cookies.insert(name.trim().to_owned(), Value::String(value.trim().to_owned()));
            }
        }
    }
    serde_json::json!({ "headers": header_map, "query": query, "cookies": cookies })
}
