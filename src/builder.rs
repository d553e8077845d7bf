//! `HubConnectionBuilder`: every option of a connection, validated once in [`HubConnectionBuilder::build`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use url::Url;

use crate::connection::HubConnection;
use crate::error::{Error, Result};
use crate::protocol::HubProtocol;
use crate::reconnect::{DelayListPolicy, ReconnectPolicy, SharedReconnectPolicy};
use crate::tls::TlsOptions;
use crate::transport::{TransportKind, TransportSet};

/// Returns the access token for the next request; an empty string means "no token".
pub type AccessTokenProvider =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String>> + Send>> + Send + Sync>;

/// Defaults of the official clients.
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(100);
/// Largest single message accepted from the server (as ASP.NET's default maximum, 32 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// Unacknowledged bytes a stateful connection keeps for replay before sends wait (SR-6).
pub const DEFAULT_STATEFUL_RECONNECT_BUFFER_SIZE: usize = 100_000;

/// The validated settings of one connection.
#[derive(Clone)]
pub(crate) struct Config {
    pub url: Url,
    pub transports: TransportSet,
    pub skip_negotiation: bool,
    pub headers: Vec<(String, String)>,
    pub access_token: Option<AccessTokenProvider>,
    pub http_timeout: Duration,
    pub protocol: HubProtocol,
    pub reconnect: Option<SharedReconnectPolicy>,
    pub server_timeout: Duration,
    pub keep_alive_interval: Duration,
    pub handshake_timeout: Duration,
    pub tls: TlsOptions,
    pub max_message_bytes: usize,
    /// Stateful reconnect was asked for, with this replay-buffer limit in bytes (SR-6).
    pub stateful_reconnect: Option<usize>,
    pub runtime: Handle,
}

/// Builds a [`HubConnection`]. Options not set keep the official clients' defaults.
#[derive(Clone)]
pub struct HubConnectionBuilder {
    url: String,
    transports: TransportSet,
    skip_negotiation: bool,
    headers: Vec<(String, String)>,
    access_token: Option<AccessTokenProvider>,
    http_timeout: Duration,
    protocol: HubProtocol,
    reconnect: Option<SharedReconnectPolicy>,
    server_timeout: Duration,
    keep_alive_interval: Duration,
    handshake_timeout: Duration,
    ca_pems: Vec<Vec<u8>>,
    ca_files: Vec<PathBuf>,
    stateful_reconnect: bool,
    stateful_reconnect_buffer_size: usize,
    max_message_bytes: usize,
    runtime: Option<Handle>,
}

impl HubConnectionBuilder {
    /// A builder for the hub at `url` (`http`, `https`, `ws` or `wss`).
    pub fn new(url: impl Into<String>) -> Self {
        HubConnectionBuilder {
            url: url.into(),
            transports: TransportSet::ALL,
            skip_negotiation: false,
            headers: Vec::new(),
            access_token: None,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            protocol: HubProtocol::Json,
            reconnect: None,
            server_timeout: DEFAULT_SERVER_TIMEOUT,
            keep_alive_interval: DEFAULT_KEEP_ALIVE_INTERVAL,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            ca_pems: Vec::new(),
            ca_files: Vec::new(),
            stateful_reconnect: false,
            stateful_reconnect_buffer_size: DEFAULT_STATEFUL_RECONNECT_BUFFER_SIZE,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            runtime: None,
        }
    }

    /// Transports the client may use; tried in the server's order (WebSockets, Server-Sent Events,
    /// Long Polling). Default: all.
    pub fn transports(mut self, transports: TransportSet) -> Self {
        self.transports = transports;
        self
    }

    /// Connect straight to the URL without negotiating (WebSockets only, N-11).
    pub fn skip_negotiation(mut self, skip: bool) -> Self {
        self.skip_negotiation = skip;
        self
    }

    /// An HTTP header sent on negotiate and on the transport's requests.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Called before every negotiate and every connect, reconnects included (N-12, A-3), and
    /// once more when a Server-Sent Events or Long Polling request is answered 401.
    /// The token goes in the `Authorization` header of every request (and, as the official
    /// clients do, also in the `access_token` query of the Server-Sent Events stream).
    pub fn access_token_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String>> + Send + 'static,
    {
        self.access_token = Some(Arc::new(move || Box::pin(provider())));
        self
    }

    /// Timeout of each HTTP request (negotiate, sends, the start of the Server-Sent Events stream,
    /// the first poll) and of the WebSocket connect. Default 100 s. Polls wait up to 100 s.
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// The hub protocol: JSON (default) or MessagePack.
    pub fn protocol(mut self, protocol: HubProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Automatic reconnect with the default delays 0, 2, 10, 30 s (off unless called).
    pub fn with_automatic_reconnect(self) -> Self {
        self.reconnect_policy(DelayListPolicy::default_delays())
    }

    /// Automatic reconnect with these delays, then stop.
    pub fn reconnect_delays(self, delays: Vec<Duration>) -> Self {
        self.reconnect_policy(DelayListPolicy::new(delays))
    }

    /// Automatic reconnect driven by a policy (a closure `Fn(&RetryContext) -> Option<Duration>` works).
    pub fn reconnect_policy(mut self, policy: impl ReconnectPolicy + 'static) -> Self {
        self.reconnect = Some(Arc::new(policy));
        self
    }

    /// Closes the connection when nothing arrived for this long (default 30 s, K-1).
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.server_timeout = timeout;
        self
    }

    /// Sends a Ping when nothing was sent for this long (default 15 s, K-2).
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = interval;
        self
    }

    /// Fails start when the handshake response takes longer (default 15 s, H-7).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Trusts the CA certificate(s) of this PEM document in addition to the platform's roots.
    pub fn trust_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pems.push(pem.into());
        self
    }

    /// Trusts the CA certificate(s) of this PEM file in addition to the platform's roots.
    pub fn trust_ca_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Stateful reconnect (off by default): when the server agrees and the transport is
    /// WebSockets, a dropped WebSocket is re-opened for the same connection and the messages each
    /// side missed are replayed, with no reconnect events and nothing lost. A
    /// `useStatefulReconnect=true` query parameter in the URL turns it on too (N-2).
    pub fn stateful_reconnect(mut self, enabled: bool) -> Self {
        self.stateful_reconnect = enabled;
        self
    }

    /// Bytes of sent, not yet acknowledged messages kept for replay under stateful reconnect
    /// (default 100,000); when reached, sends wait for the server's Ack (SR-6).
    pub fn stateful_reconnect_buffer_size(mut self, bytes: usize) -> Self {
        self.stateful_reconnect_buffer_size = bytes;
        self
    }

    /// Largest message accepted from the server (default 32 MiB); larger ones close the connection.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// Runs the connection's tasks on this runtime. Default: the runtime `build` is called in,
    /// else a library-owned one.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Validates the options (no I/O) and creates the connection, Disconnected.
    pub fn build(self) -> Result<HubConnection> {
        let mut url = Url::parse(&self.url)
            .map_err(|e| Error::InvalidArgument(format!("invalid hub URL '{}': {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
            return Err(Error::InvalidArgument(format!(
                "hub URL must use http, https, ws or wss, not '{}'",
                url.scheme()
            )));
        }
        // Negotiate speaks HTTP; the WebSockets transport maps the scheme back (W-1).
        let http_scheme = match url.scheme() {
            "ws" => Some("http"),
            "wss" => Some("https"),
            _ => None,
        };
        if let Some(scheme) = http_scheme {
            let _ = url.set_scheme(scheme);
        }
        if self.transports.is_empty() {
            return Err(Error::InvalidArgument("no transport is allowed".into()));
        }
        if self.skip_negotiation && self.transports != TransportSet::only(TransportKind::WebSockets) {
            return Err(Error::InvalidArgument(
                "negotiation can be skipped only when WebSockets is the only allowed transport".into(),
            ));
        }
        let stateful_reconnect = self.stateful_reconnect
            || url.query_pairs().any(|(k, v)| k == "useStatefulReconnect" && v.eq_ignore_ascii_case("true"));
        for (what, d) in [
            ("server timeout", self.server_timeout),
            ("keep-alive interval", self.keep_alive_interval),
            ("handshake timeout", self.handshake_timeout),
            ("HTTP timeout", self.http_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidArgument(format!("{what} must be greater than zero")));
            }
        }
        if self.stateful_reconnect_buffer_size == 0 {
            return Err(Error::InvalidArgument(
                "stateful reconnect buffer size must be greater than zero".into(),
            ));
        }
        if self.max_message_bytes == 0 {
            return Err(Error::InvalidArgument("maximum message size must be greater than zero".into()));
        }
        for (name, value) in &self.headers {
            if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == b':' || b >= 0x7f) {
                return Err(Error::InvalidArgument(format!("invalid HTTP header name '{name}'")));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(Error::InvalidArgument(format!("invalid value for HTTP header '{name}'")));
            }
        }
        let mut tls = TlsOptions::default();
        for pem in &self.ca_pems {
            tls.add_pem(pem)?;
        }
        for file in &self.ca_files {
            tls.add_pem_file(file)?;
        }
        if self.server_timeout <= self.keep_alive_interval {
            tracing::warn!(
                "server timeout ({:?}) should be at least twice the keep-alive interval ({:?})",
                self.server_timeout,
                self.keep_alive_interval
            );
        }
        let config = Config {
            url,
            transports: self.transports,
            skip_negotiation: self.skip_negotiation,
            headers: self.headers,
            access_token: self.access_token,
            http_timeout: self.http_timeout,
            protocol: self.protocol,
            reconnect: self.reconnect,
            server_timeout: self.server_timeout,
            keep_alive_interval: self.keep_alive_interval,
            handshake_timeout: self.handshake_timeout,
            tls,
            max_message_bytes: self.max_message_bytes,
            stateful_reconnect: stateful_reconnect.then_some(self.stateful_reconnect_buffer_size),
            runtime: crate::runtime::pick(self.runtime),
        };
        HubConnection::new(config)
    }
}
