//! HTTP plumbing shared by negotiate and the transports: one `reqwest::Client` per TLS
//! configuration (connection pools are shared, not per connection), the headers every request
//! carries, a per-connection cookie jar kept by hand so that cookies set by
//! negotiate can be replayed on the transport's requests, and the bearer token of the
//! transports' HTTP requests with its one retry after a 401.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use url::Url;

use crate::builder::AccessTokenProvider;
use crate::error::{with_sources, Error, Result};
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
        headers.push(("Authorization".into(), bearer(token)));
    }
    if let Some(cookie) = cookies.header_value() {
        headers.push(("Cookie".into(), cookie));
    }
    headers
}

pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The access token of one transport: the one fetched for its connect, renewed once through the
/// provider when a request is answered 401. A token handed over by a negotiate redirect
/// has no provider and is never renewed.
pub(crate) struct Bearer {
    token: Mutex<Option<String>>,
    provider: Option<AccessTokenProvider>,
}

impl Bearer {
    pub fn new(token: Option<String>, provider: Option<AccessTokenProvider>) -> Bearer {
        Bearer { token: Mutex::new(token), provider }
    }

    pub fn current(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn can_renew(&self) -> bool {
        self.provider.is_some()
    }

    async fn renew(&self) -> Result<()> {
        let Some(provider) = &self.provider else { return Ok(()) };
        let token = provider().await?;
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = (!token.is_empty()).then_some(token);
        Ok(())
    }
}

/// The HTTP requests of one Server-Sent Events or Long Polling transport: every request carries
/// the user's headers, the protocol's headers, the negotiate cookies (A-6 … A-8) and the bearer
/// token.
pub(crate) struct TransportHttp {
    client: reqwest::Client,
    headers: HeaderMap,
    pub auth: Arc<Bearer>,
    /// Timeout of sends and DELETE (N-3).
    pub timeout: Duration,
}

impl TransportHttp {
    /// `headers` must not hold `Authorization`: it comes from `auth`.
    pub fn new(
        client: reqwest::Client,
        headers: &[(String, String)],
        auth: Arc<Bearer>,
        timeout: Duration,
    ) -> Result<TransportHttp> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::InvalidArgument(format!("invalid header name '{name}': {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| Error::InvalidArgument(format!("invalid value for header {name}: {e}")))?;
            map.append(name, value);
        }
        Ok(TransportHttp { client, headers: map, auth, timeout })
    }

    /// Sends one request. A 401 renews the token through the provider and sends it once more
    /// (A-1; the official clients do the same for every request but negotiate).
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<(Bytes, &'static str)>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response> {
        let response = self.send_once(method.clone(), url, body.clone(), timeout).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED || !self.auth.can_renew() {
            return Ok(response);
        }
        self.auth.renew().await?;
        self.send_once(method, url, body, timeout).await
    }

    pub async fn send_once(
        &self,
        method: Method,
        url: &Url,
        body: Option<(Bytes, &'static str)>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response> {
        let mut request = self.request(method.clone(), url);
        if let Some((bytes, content_type)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        request.send().await.map_err(|e| request_error(&method, url, e))
    }

    /// A request with this transport's headers and the current token.
    pub fn request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, url.clone()).headers(self.headers.clone());
        if let Some(token) = self.auth.current() {
            request = request.header(reqwest::header::AUTHORIZATION, bearer(&token));
        }
        request
    }
}

pub(crate) fn request_error(method: &Method, url: &Url, e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout(format!("{method} {} timed out", without_query(url)))
    } else {
        Error::Transport(format!("{method} {} failed: {}", without_query(url), with_sources(&e)))
    }
}

/// A URL for messages: the query may hold the connection token or an access token.
pub(crate) fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// The error for an unexpected status of a transport request.
pub(crate) fn status_error(what: &str, url: &Url, status: reqwest::StatusCode) -> Error {
    let url = without_query(url);
    match status.as_u16() {
        401 => Error::Unauthorized(format!("{what} to {url} returned 401 Unauthorized")),
        404 => Error::Transport(format!(
            "{what} to {url} returned 404 Not Found: the connection id is unknown to the server"
        )),
        _ => Error::Transport(format!("{what} to {url} returned HTTP {status}")),
    }
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
