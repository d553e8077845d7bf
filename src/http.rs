//! HTTP plumbing shared by negotiate and the transports: one `reqwest::Client` per TLS
//! configuration (connection pools are shared, not per connection), the headers every request
//! carries, and a per-connection cookie jar kept by hand so that cookies set by
//! negotiate can be replayed on the transport's requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::tls::{self, TlsOptions};

/// The HTTP client and TLS configuration shared by all connections with equal TLS options.
#[derive(Clone)]
pub(crate) struct HttpStack {
    pub client: reqwest::Client,
    pub tls: Arc<rustls::ClientConfig>,
}

impl HttpStack {
    pub fn shared(options: &TlsOptions) -> Result<HttpStack> {
        static STACKS: OnceLock<Mutex<HashMap<TlsOptions, HttpStack>>> = OnceLock::new();
        let stacks = STACKS.get_or_init(Default::default);
        let mut stacks = stacks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = stacks.get(options) {
            return Ok(found.clone());
        }
        let tls = tls::client_config(options)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client set-up failed: {e}")))?;
        let stack = HttpStack { client, tls };
        stacks.insert(options.clone(), stack.clone());
        Ok(stack)
    }
}

/// `User-Agent` value shaped like the official clients'.
pub(crate) fn user_agent() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let major_minor: Vec<&str> = version.split('.').take(2).collect();
    format!(
        "Microsoft SignalR/{} ({}; {}; Rust; signalr-native)",
        major_minor.join("."),
        version,
        std::env::consts::OS
    )
}

/// Cookies received from this connection's negotiate responses, replayed on later requests.
#[derive(Default, Debug)]
pub(crate) struct CookieJar {
    cookies: Mutex<Vec<(String, String)>>,
}

impl CookieJar {
    /// Records every `Set-Cookie` of a response (name=value only; attributes are not needed to
    /// replay affinity cookies to the same server).
    pub fn store_from(&self, headers: &reqwest::header::HeaderMap) {
        let mut cookies = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        for value in headers.get_all(reqwest::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else { continue };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            if name.is_empty() {
                continue;
            }
            cookies.retain(|(n, _)| *n != name);
            cookies.push((name, value));
        }
    }

    /// The `Cookie` header value, if there are cookies.
    pub fn header_value(&self) -> Option<String> {
        let cookies = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        if cookies.is_empty() {
            return None;
        }
        Some(cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; "))
    }
}

/// Headers of one request: the user's headers, then the ones the protocol requires.
pub(crate) fn request_headers(
    user_headers: &[(String, String)],
    token: Option<&str>,
    cookies: &CookieJar,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = user_headers.to_vec();
    headers.push(("X-Requested-With".into(), "XMLHttpRequest".into()));
    headers.push(("User-Agent".into(), user_agent()));
    if let Some(token) = token {
        headers.push(("Authorization".into(), format!("Bearer {token}")));
    }
    if let Some(cookie) = cookies.header_value() {
        headers.push(("Cookie".into(), cookie));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};

    #[test]
    fn cookie_jar_keeps_the_latest_value_per_name() {
        let jar = CookieJar::default();
        assert_eq!(jar.header_value(), None);
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("a=1; Path=/; HttpOnly"));
        h.append(SET_COOKIE, HeaderValue::from_static("b=2"));
        jar.store_from(&h);
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("a=3"));
        jar.store_from(&h);
        assert_eq!(jar.header_value().as_deref(), Some("b=2; a=3"));
    }

    #[test]
    fn user_agent_has_the_official_shape() {
        assert!(user_agent().starts_with("Microsoft SignalR/0.1 (0.1.0; "), "{}", user_agent());
    }
}
