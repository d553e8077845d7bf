//! Connections and their registry: ids and tokens, which transport a connection uses, whether one
//! is active, and how a connection ends (disposal, grace period for stateful re-connects).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use signalr_native::protocol::{HubMessage, HubProtocol};
use tokio::sync::mpsc;

use crate::app::App;
use crate::faults::Stall;
use crate::invocations::Invocations;
use crate::outbound::{Finish, Outbound, SendError};
use crate::signal::Signal;

/// The hubs the server maps; they share every method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HubKind {
    Main,
    Auth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    WebSockets,
    ServerSentEvents,
    LongPolling,
}

impl TransportKind {
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::WebSockets => "WebSockets",
            TransportKind::ServerSentEvents => "ServerSentEvents",
            TransportKind::LongPolling => "LongPolling",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::WebSockets, Self::ServerSentEvents, Self::LongPolling].into_iter().find(|t| t.name() == name)
    }
}

/// What the transports hand to the session task.
pub enum Inbound {
    /// One WebSocket message, one POST body.
    Data(Bytes),
    /// A stateful re-connect happened: ignore input until the client's `Sequence`.
    Resumed,
}

/// Why the hub side asked the session to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// A hub method already wrote the Close message (`CloseWithError`).
    CloseSent,
    /// Nothing received from the client within the client timeout.
    ClientTimeout,
    /// A message could not be encoded.
    WriteFailed,
}

/// Protocol facts fixed by the handshake.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub protocol: HubProtocol,
    pub version: u32,
}

pub struct Connection {
    pub id: String,
    /// The `id=` value of transport requests (equal to `id` for negotiate version 0).
    pub token: String,
    pub hub: HubKind,
    /// The bearer token on `/auth-hub`.
    pub user: Option<String>,
    /// The negotiate request, as `GetRequestInfo` reports it (None when negotiate was skipped).
    pub negotiate_info: Option<Value>,
    stateful_negotiated: bool,
    stateful_active: AtomicBool,
    pub outbound: Outbound,
    pub invocations: Invocations,
    pub stall: Stall,
    /// Fired when the connection is removed; every task of the connection ends.
    pub disposed: Signal,
    close_requested: Signal,
    close_reason: Mutex<Option<CloseReason>>,
    session: OnceLock<Session>,
    inbound: mpsc::Sender<Inbound>,
    session_input: Mutex<Option<mpsc::Receiver<Inbound>>>,
    link: Mutex<Link>,
    /// Highest trackable message id received (stateful reconnect), for the periodic Ack.
    pub latest_received: AtomicU64,
    /// Milliseconds since `created` when the client last sent something (client timeout).
    last_received_ms: AtomicU64,
    /// The client timeout applies only once the client has sent a Ping (like ASP.NET).
    client_timeout_armed: AtomicBool,
    /// A received message is being processed: the client timeout waits (ASP.NET's
    /// `StopClientTimeout`/`BeginClientTimeout` around dispatch), so a message queued behind a
    /// running invocation does not time the client out while its pings wait to be read.
    client_timeout_paused: AtomicBool,
    created: Instant,
}

/// Transport-level state, changed by HTTP requests.
#[derive(Default)]
struct Link {
    transport: Option<TransportKind>,
    /// Since when no transport request is active (drives the disconnect timeout).
    inactive_since: Option<Instant>,
    connect_info: Option<Value>,
    send_info: Option<Value>,
    session_started: bool,
    disposed: bool,
}

/// How a transport request may use the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The first request of the connection's transport.
    First,
    /// A later one: the next poll, or a stateful WebSocket re-connect.
    Again,
}

impl Connection {
    fn new(hub: HubKind, user: Option<String>, negotiate: Option<(u32, bool, Value)>) -> Arc<Self> {
        let id = random_id();
        let (token, stateful_negotiated, negotiate_info) = match negotiate {
            Some((version, stateful, info)) => {
                let token = if version >= 1 { random_id() } else { id.clone() };
                (token, stateful, Some(info))
            }
            None => (id.clone(), false, None),
        };
        let (inbound, session_input) = mpsc::channel(16);
        Arc::new(Connection {
            id,
            token,
            hub,
            user,
            negotiate_info,
            stateful_negotiated,
            stateful_active: AtomicBool::new(false),
            outbound: Outbound::default(),
            invocations: Invocations::default(),
            stall: Stall::default(),
            disposed: Signal::default(),
            close_requested: Signal::default(),
            close_reason: Mutex::new(None),
            session: OnceLock::new(),
            inbound,
            session_input: Mutex::new(Some(session_input)),
            link: Mutex::new(Link { inactive_since: Some(Instant::now()), ..Link::default() }),
            latest_received: AtomicU64::new(0),
            last_received_ms: AtomicU64::new(0),
            client_timeout_armed: AtomicBool::new(false),
            client_timeout_paused: AtomicBool::new(false),
            created: Instant::now(),
        })
    }

    fn link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn session(&self) -> Option<Session> {
        self.session.get().copied()
    }

    pub fn set_session(&self, session: Session) {
        let _ = self.session.set(session);
    }

    pub fn stateful_negotiated(&self) -> bool {
        self.stateful_negotiated
    }

    pub fn stateful_active(&self) -> bool {
        self.stateful_active.load(Ordering::Acquire)
    }

    pub fn set_stateful_active(&self) {
        self.stateful_active.store(true, Ordering::Release);
    }

    pub fn transport(&self) -> Option<TransportKind> {
        self.link().transport
    }

    pub fn connect_info(&self) -> Option<Value> {
        self.link().connect_info.clone()
    }

    pub fn send_info(&self) -> Option<Value> {
        self.link().send_info.clone()
    }

    /// Checks a transport request against the connection's state, as ASP.NET does: the first
    /// request fixes the transport; another transport is 400; a second WebSocket/SSE request is
    /// 409 unless stateful reconnect was negotiated; Long Polling may poll again.
    pub fn claim(&self, kind: TransportKind) -> Result<Claim, Response> {
        let mut link = self.link();
        if link.disposed {
            return Err(not_found());
        }
        match link.transport {
            None => {
                link.transport = Some(kind);
                Ok(Claim::First)
            }
            Some(current) if current != kind => {
                Err(text_response(StatusCode::BAD_REQUEST, "Cannot change transports mid-connection"))
            }
            Some(TransportKind::LongPolling) => Ok(Claim::Again),
            Some(_) if self.stateful_negotiated && self.session().is_none_or(|s| s.version >= 2) => {
                Ok(Claim::Again)
            }
            Some(_) => Err(StatusCode::CONFLICT.into_response()),
        }
    }

    pub fn record_connect(&self, info: Value) {
        self.link().connect_info = Some(info);
    }

    pub fn record_send(&self, info: Value) {
        self.link().send_info = Some(info);
    }

    pub fn set_active(&self) {
        self.link().inactive_since = None;
    }

    pub fn set_inactive(&self) {
        self.link().inactive_since = Some(Instant::now());
    }

    fn inactive_for(&self) -> Option<Duration> {
        self.link().inactive_since.map(|since| since.elapsed())
    }

    /// Starts the hub session (handshake, message loop) once, on the first transport request.
    pub fn start_session(self: &Arc<Self>, app: &Arc<App>) {
        let input = {
            let mut link = self.link();
            if link.session_started {
                return;
            }
            link.session_started = true;
            self.session_input.lock().unwrap_or_else(|p| p.into_inner()).take()
        };
        if let Some(input) = input {
            crate::session::spawn(app.clone(), self.clone(), input);
        }
    }

    /// Hands received bytes to the session; false when the connection is gone.
    pub async fn deliver(&self, event: Inbound) -> bool {
        if self.disposed.is_fired() {
            return false;
        }
        tokio::select! {
            sent = self.inbound.send(event) => sent.is_ok(),
            _ = self.disposed.wait() => false,
        }
    }

    /// Removes the connection: later requests get 404, the session and every transport end.
    pub fn dispose(&self, app: &App) {
        {
            let mut link = self.link();
            if link.disposed {
                return;
            }
            link.disposed = true;
        }
        app.registry.remove(&self.token);
        app.groups.remove_connection(&self.id);
        self.disposed.fire();
        self.outbound.finish(Finish::Now);
        tracing::debug!(connection = %self.id, "disposed");
    }

    /// A WebSocket or SSE request ended. A stateful connection whose socket dropped (no close
    /// handshake) waits for a re-connect; everything else is over.
    pub fn transport_ended(&self, app: &App, generation: u64, graceful: bool) {
        if !self.outbound.is_current(generation) {
            return; // a newer request took over
        }
        if self.stateful_active() && !graceful && !self.outbound.is_finishing() {
            self.outbound.park(generation);
            self.set_inactive();
            tracing::debug!(connection = %self.id, "transport dropped; waiting for a stateful re-connect");
            return;
        }
        self.dispose(app);
    }

    /// Asks the session to end (first reason wins).
    pub fn request_close(&self, reason: CloseReason) {
        let mut current = self.close_reason.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_none() {
            *current = Some(reason);
        }
        drop(current);
        self.close_requested.fire();
    }

    pub async fn close_requested(&self) -> CloseReason {
        self.close_requested.wait().await;
        self.close_reason.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(CloseReason::CloseSent)
    }

    /// Encodes `message` in the connection's protocol and queues it. False when it cannot go
    /// out (no handshake yet, connection closing).
    pub async fn send(&self, message: &HubMessage) -> bool {
        let Some(session) = self.session() else { return false };
        match self.outbound.send(message.is_trackable(), |out| session.protocol.write(message, out)).await {
            Ok(()) => true,
            Err(SendError::Closed) => false,
            Err(SendError::Encode(e)) => {
                tracing::error!(connection = %self.id, "cannot encode {message:?}: {e}");
                self.request_close(CloseReason::WriteFailed);
                false
            }
        }
    }

    /// Queues bytes already encoded for this connection's protocol.
    pub async fn send_encoded(&self, bytes: &[u8], trackable: bool) -> bool {
        let copy = |out: &mut Vec<u8>| {
            out.extend_from_slice(bytes);
            Ok::<(), std::convert::Infallible>(())
        };
        self.outbound.send(trackable, copy).await.is_ok()
    }

    /// Something arrived from the client (client timeout bookkeeping).
    pub fn touch(&self) {
        self.last_received_ms.store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// The client pinged: from now on it must keep sending within the client timeout.
    pub fn arm_client_timeout(&self) {
        if !self.client_timeout_armed.swap(true, Ordering::Relaxed) {
            self.touch();
        }
    }

    /// Stops the client timeout while a received message is processed.
    pub fn pause_client_timeout(&self) {
        self.client_timeout_paused.store(true, Ordering::Relaxed);
    }

    /// The message is processed: the client timeout starts over from now.
    pub fn resume_client_timeout(&self) {
        self.touch();
        self.client_timeout_paused.store(false, Ordering::Relaxed);
    }

    pub fn client_timed_out(&self, timeout: Duration) -> bool {
        if !self.client_timeout_armed.load(Ordering::Relaxed)
            || self.client_timeout_paused.load(Ordering::Relaxed)
            || self.stall.active()
        {
            return false;
        }
        let now = self.created.elapsed().as_millis() as u64;
        let last = self.last_received_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= timeout.as_millis() as u64
    }
}

/// Every live connection, by token. The lock is taken per HTTP request, never per message.
#[derive(Default)]
pub struct Registry {
    connections: Mutex<HashMap<String, Arc<Connection>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Connection>>> {
        self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection made by negotiate: `(negotiate version, stateful reconnect asked, request info)`.
    pub fn negotiated(&self, hub: HubKind, user: Option<String>, version: u32, stateful: bool, info: Value) -> Arc<Connection> {
        let conn = Connection::new(hub, user, Some((version, stateful, info)));
        self.lock().insert(conn.token.clone(), conn.clone());
        conn
    }

    /// A WebSocket request without `id` (the client skipped negotiate).
    pub fn unnegotiated(&self, hub: HubKind, user: Option<String>) -> Arc<Connection> {
        let conn = Connection::new(hub, user, None);
        self.lock().insert(conn.token.clone(), conn.clone());
        conn
    }

    pub fn get(&self, token: &str) -> Option<Arc<Connection>> {
        self.lock().get(token).cloned()
    }

    fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Connections of `hub` that completed the handshake.
    pub fn of_hub(&self, hub: HubKind) -> Vec<Arc<Connection>> {
        self.lock().values().filter(|c| c.hub == hub && c.session().is_some()).cloned().collect()
    }

    fn all(&self) -> Vec<Arc<Connection>> {
        self.lock().values().cloned().collect()
    }
}

/// Removes connections that had no active transport for the disconnect timeout
/// (never connected, Long Polling client gone, stateful WebSocket not re-connected).
pub async fn reap_inactive(app: Arc<App>) {
    let period = (app.opts.disconnect_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        for conn in app.registry.all() {
            if conn.inactive_for().is_some_and(|idle| idle >= app.opts.disconnect_timeout) {
                tracing::debug!(connection = %conn.id, "no transport within the disconnect timeout");
                conn.dispose(&app);
            }
        }
    }
}

/// 16 random bytes, base64url without padding (the shape of ASP.NET's ids and tokens).
fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn text_response(status: StatusCode, text: &'static str) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "text/plain")], text).into_response()
}

pub fn not_found() -> Response {
    text_response(StatusCode::NOT_FOUND, "No Connection with that ID")
}
