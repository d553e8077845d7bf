//! `HubConnection`: the public face of a connection to a hub.
//!
//! Layout: `lifecycle` (start/stop/reconnect state machine), `connect` (negotiate + transport +
//! handshake), `session` + `writer` (one transport session and its writer task), `dispatch` (the
//! receive loop), `invocations` (pending table), `handlers`, `responder` (client results),
//! `streams` (handles of operations in flight), `keep_alive` (idle timers), `state`, `stateful`
//! (stateful reconnect's replay buffer and receive tracker).

mod connect;
mod dispatch;
mod handlers;
mod invocations;
mod keep_alive;
mod lifecycle;
mod responder;
mod session;
mod state;
mod stateful;
mod streams;
mod writer;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use handlers::{Handler, HandlerId, ResultHandler};
pub use responder::{Responder, NO_RESULT_ERROR};
pub use state::ConnectionState;
pub use streams::{HubStream, PendingInvocation, UploadStream, UPLOAD_CANCELED_ERROR};

use crate::builder::Config;
use crate::error::{Error, Result};
use crate::http::{CookieJar, HttpStack};
use crate::protocol::{HubMessage, HubProtocol, Invocation, Payload};
use crate::transport::TransportKind;
use handlers::Handlers;
use invocations::Pending;
use session::Session;
use state::StateData;

/// Called when the connection closes, with the cause (none after a user stop).
pub type CloseCallback = Arc<dyn Fn(Option<&Error>) + Send + Sync>;
/// Called once when automatic reconnect begins, with the error that dropped the connection.
pub type ReconnectingCallback = Arc<dyn Fn(&Error) + Send + Sync>;
/// Called after a successful reconnect, with the new connection id.
pub type ReconnectedCallback = Arc<dyn Fn(Option<&str>) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Callbacks {
    close: Mutex<Vec<CloseCallback>>,
    reconnecting: Mutex<Vec<ReconnectingCallback>>,
    reconnected: Mutex<Vec<ReconnectedCallback>>,
}

/// Runs a callback, logging (not propagating) a panic (ST-10).
fn guarded(what: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        tracing::error!("{what} callback panicked");
    }
}

fn snapshot<T: Clone>(list: &Mutex<Vec<T>>) -> Vec<T> {
    list.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Callbacks {
    fn fire_close(&self, cause: Option<&Error>) {
        for cb in snapshot(&self.close) {
            guarded("on_close", || cb(cause));
        }
    }
    fn fire_reconnecting(&self, cause: &Error) {
        for cb in snapshot(&self.reconnecting) {
            guarded("on_reconnecting", || cb(cause));
        }
    }
    fn fire_reconnected(&self, connection_id: Option<&str>) {
        for cb in snapshot(&self.reconnected) {
            guarded("on_reconnected", || cb(connection_id));
        }
    }
}

pub(crate) struct Inner {
    config: Config,
    http: HttpStack,
    cookies: CookieJar,
    handlers: Handlers,
    callbacks: Callbacks,
    /// Invocation and stream ids, one counter for both, not reset on reconnect (I-3, ID-21).
    next_id: AtomicU64,
    /// The transport of the latest established session (`TransportKind` bits, 0 = none); only
    /// meaningful while a session exists.
    transport: AtomicU8,
    state: Mutex<StateData>,
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, StateData> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_disconnected(&self) {
        let mut data = self.lock_state();
        data.set(ConnectionState::Disconnected);
        data.connection_id = None;
        data.session = None;
        data.lifecycle = None;
    }

    /// The session to send on; only while Connected (I-5: nothing is queued for later).
    fn session(&self) -> Result<Arc<Session>> {
        let data = self.lock_state();
        match (&data.session, data.state) {
            (Some(session), ConnectionState::Connected) => Ok(session.clone()),
            _ => Err(Error::InvalidState(format!(
                "cannot send while the connection is {}; it must be Connected",
                data.state
            ))),
        }
    }

    fn set_transport(&self, kind: TransportKind) {
        self.transport.store(kind as u8, Ordering::Release);
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn request_stop(&self) {
        let data = self.lock_state();
        if let Some(lifecycle) = &data.lifecycle {
            lifecycle.stop.cancel();
        }
    }
}

/// A connection to a SignalR hub. Cheap to clone (all clones are the same connection); dropping
/// the last clone stops the connection in the background.
#[derive(Clone)]
pub struct HubConnection {
    owner: Arc<Owner>,
}

/// Stops the connection when the last user handle goes away; background tasks hold `Inner` only.
struct Owner {
    inner: Arc<Inner>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.inner.request_stop();
    }
}

/// Kind of call, as the wire sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Invoke,
    Send,
    Stream,
}

impl HubConnection {
    pub(crate) fn new(config: Config) -> Result<HubConnection> {
        let http = HttpStack::shared(&config.tls)?;
        let inner = Inner {
            config,
            http,
            cookies: CookieJar::default(),
            handlers: Handlers::default(),
            callbacks: Callbacks::default(),
            next_id: AtomicU64::new(0),
            transport: AtomicU8::new(0),
            state: Mutex::new(StateData::default()),
        };
        Ok(HubConnection { owner: Arc::new(Owner { inner: Arc::new(inner) }) })
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.owner.inner
    }

    /// Connects: negotiate, transport, handshake. Only from Disconnected (ST-2). Runs on the
    /// connection's runtime, so it may be awaited from any executor. Dropping the future before
    /// it finished (a timeout around it, say) cancels the start, as [`HubConnection::stop`] would.
    pub async fn start(&self) -> Result<()> {
        let inner = self.inner().clone();
        let lifecycle = lifecycle::begin(&inner)?;
        let cancel_if_dropped = lifecycle.stop.clone().drop_guard();
        let task = self.inner().config.runtime.spawn(lifecycle::start(inner, lifecycle));
        let result = task.await.unwrap_or_else(|e| {
            // The start task panicked (or the runtime is shutting down): the state is known again.
            self.inner().set_disconnected();
            Err(match e.try_into_panic() {
                Ok(payload) => Error::panicked("start", &*payload),
                Err(e) => Error::Internal(format!("start task failed: {e}")),
            })
        });
        cancel_if_dropped.disarm();
        result
    }

    /// Stops the connection and waits until it is Disconnected and `on_close` has run (ST-3).
    /// Cancels a start or a reconnect in progress (ST-4 … ST-6). A no-op when Disconnected.
    pub async fn stop(&self) {
        let lifecycle = {
            let mut data = self.inner().lock_state();
            let Some(lifecycle) = data.lifecycle.clone() else { return };
            if data.state == ConnectionState::Connected {
                data.set(ConnectionState::Disconnecting);
            }
            lifecycle
        };
        lifecycle.stop.cancel();
        lifecycle.finished().await;
    }

    pub fn state(&self) -> ConnectionState {
        self.inner().lock_state().state
    }

    /// The server's id for this connection (ST-7); `None` when not connected or when negotiation
    /// was skipped. Changes on every reconnect.
    pub fn connection_id(&self) -> Option<String> {
        self.inner().lock_state().connection_id.clone()
    }

    /// The transport in use; `None` when there is no session (not connected, or reconnecting).
    pub fn transport(&self) -> Option<TransportKind> {
        self.inner().lock_state().session.as_ref()?;
        TransportKind::from_bits(self.inner().transport.load(Ordering::Acquire))
    }

    pub fn protocol(&self) -> HubProtocol {
        self.inner().config.protocol
    }

    /// Encodes `args` (a tuple, array or `Vec`) as an arguments array in this connection's format,
    /// so nothing needs transcoding on the way out.
    pub fn args<T: Serialize + ?Sized>(&self, args: &T) -> Result<Payload> {
        Ok(Payload::from_value(args, self.protocol().format())?)
    }

    /// Invokes a hub method and waits for its result (`null` for void methods) or its error
    /// ([`Error::Hub`] with the server's text).
    pub async fn invoke(&self, method: &str, args: Payload) -> Result<Payload> {
        self.invoke_with_uploads(method, args, 0).await?.0.await
    }

    /// Invokes a hub method that takes `uploads` stream parameters (appended after `args`).
    pub async fn invoke_with_uploads(
        &self,
        method: &str,
        args: Payload,
        uploads: usize,
    ) -> Result<(PendingInvocation, Vec<UploadStream>)> {
        let call = self.call(CallKind::Invoke, method, args, uploads).await?;
        let Some(CallReceiver::Invoke(rx)) = call.receiver else { unreachable!("invoke registers an invoke entry") };
        Ok((PendingInvocation { rx, session: call.session, id: call.id }, call.uploads))
    }

    /// Calls a hub method without waiting for it to run (no result, M-2). Done when the message
    /// has been written to the transport (under stateful reconnect: and while the server's
    /// unacknowledged messages are at the buffer limit, once its Acks made room, SR-6).
    pub async fn send(&self, method: &str, args: Payload) -> Result<()> {
        self.send_with_uploads(method, args, 0).await.map(|_| ())
    }

    /// `send` for a hub method with `uploads` stream parameters.
    pub async fn send_with_uploads(&self, method: &str, args: Payload, uploads: usize) -> Result<Vec<UploadStream>> {
        Ok(self.call(CallKind::Send, method, args, uploads).await?.uploads)
    }

    /// Starts a server-to-client stream.
    pub async fn stream(&self, method: &str, args: Payload) -> Result<HubStream> {
        Ok(self.stream_with_uploads(method, args, 0).await?.0)
    }

    /// Starts a server-to-client stream of a hub method with `uploads` stream parameters.
    pub async fn stream_with_uploads(
        &self,
        method: &str,
        args: Payload,
        uploads: usize,
    ) -> Result<(HubStream, Vec<UploadStream>)> {
        let call = self.call(CallKind::Stream, method, args, uploads).await?;
        let Some(CallReceiver::Stream(rx)) = call.receiver else { unreachable!("stream registers a stream entry") };
        Ok((HubStream { rx, session: call.session, id: call.id }, call.uploads))
    }

    async fn call(
        &self,
        kind: CallKind,
        method: &str,
        args: Payload,
        uploads: usize,
    ) -> Result<Call> {
        if method.is_empty() {
            return Err(Error::InvalidArgument("method name must not be empty".into()));
        }
        check_arguments(&args)?;
        let inner = self.inner();
        let session = inner.session()?;
        let (id, receiver) = match kind {
            CallKind::Send => (None, None),
            CallKind::Invoke => {
                let id = inner.next_id();
                let (tx, rx) = oneshot::channel();
                session.pending.insert(id, Pending::Invoke(tx))?;
                (Some(id), Some(CallReceiver::Invoke(rx)))
            }
            CallKind::Stream => {
                let id = inner.next_id();
                let (tx, rx) = mpsc::unbounded_channel();
                session.pending.insert(id, Pending::Stream(tx))?;
                (Some(id), Some(CallReceiver::Stream(rx)))
            }
        };
        let stream_ids: Vec<String> = (0..uploads).map(|_| inner.next_id().to_string()).collect();
        let invocation = Invocation {
            headers: Vec::new(),
            invocation_id: id.map(|i| i.to_string()),
            target: method.to_string(),
            arguments: args,
            stream_ids: stream_ids.clone(),
        };
        let message = if kind == CallKind::Stream {
            HubMessage::StreamInvocation(invocation)
        } else {
            HubMessage::Invocation(invocation)
        };
        let outcome = match session.encode(&message) {
            Ok(bytes) if kind == CallKind::Send => session.send_and_wait(bytes).await,
            Ok(bytes) => session.send_inline(bytes).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            if let Some(id) = id {
                session.pending.remove(id); // I-6
            }
            return Err(e);
        }
        let uploads = stream_ids
            .into_iter()
            .map(|stream_id| UploadStream { session: session.clone(), stream_id, finished: false })
            .collect();
        Ok(Call { session, id: id.unwrap_or(0), receiver, uploads })
    }

    /// Registers a handler for the client method `method` (case-insensitive). Several handlers may
    /// share a method; they run in registration order, on the connection's receive task, one
    /// message at a time — a handler must not block.
    pub fn on(&self, method: &str, handler: impl Fn(&Payload) + Send + Sync + 'static) -> Result<HandlerId> {
        self.on_handler(method, Arc::new(handler))
    }

    /// [`HubConnection::on`] with a shared handler (registering the same `Arc` twice is a no-op).
    pub fn on_handler(&self, method: &str, handler: Handler) -> Result<HandlerId> {
        self.inner().handlers.add(method, handler)
    }

    /// Registers a handler for the calls of `method` that expect no result (sent without an
    /// invocation id: the server's `SendAsync`). Such a call then goes to these handlers instead
    /// of the method's result handler, which only answers the calls that expect a result;
    /// handlers registered with [`HubConnection::on`] still see every call, and run before
    /// these. Same rules as `on` otherwise.
    pub fn on_notification(&self, method: &str, handler: impl Fn(&Payload) + Send + Sync + 'static) -> Result<HandlerId> {
        self.inner().handlers.add_notify(method, Arc::new(handler))
    }

    /// See [`handlers::Handlers::set_caught_up`] (for the C API's callback thread).
    pub(crate) fn on_caught_up(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.inner().handlers.set_caught_up(Box::new(hook));
    }

    /// Registers the handler that answers server invocations of `method` that expect a result.
    /// One per method. The handler receives a [`Responder`] that may be completed later from any
    /// thread; dropped unanswered it sends an error.
    pub fn on_invoke(
        &self,
        method: &str,
        handler: impl Fn(&Payload, Responder) + Send + Sync + 'static,
    ) -> Result<HandlerId> {
        self.on_invoke_handler(method, Arc::new(handler))
    }

    /// [`HubConnection::on_invoke`] with a shared handler.
    pub fn on_invoke_handler(&self, method: &str, handler: ResultHandler) -> Result<HandlerId> {
        self.inner().handlers.add_result(method, handler)
    }

    /// Removes every handler of `method`.
    pub fn off(&self, method: &str) {
        self.inner().handlers.remove_method(method)
    }

    /// Removes one handler.
    pub fn remove_handler(&self, id: HandlerId) {
        self.inner().handlers.remove(id)
    }

    pub fn on_close(&self, callback: impl Fn(Option<&Error>) + Send + Sync + 'static) {
        self.inner().callbacks.close.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::new(callback));
    }

    pub fn on_reconnecting(&self, callback: impl Fn(&Error) + Send + Sync + 'static) {
        self.inner().callbacks.reconnecting.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::new(callback));
    }

    pub fn on_reconnected(&self, callback: impl Fn(Option<&str>) + Send + Sync + 'static) {
        self.inner().callbacks.reconnected.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::new(callback));
    }

    /// Called on every state change with `(old, new)`, in order. It runs while the connection's
    /// state lock is held: it must be quick and must not call this connection (queue the event).
    pub fn on_state_changed(&self, callback: impl Fn(ConnectionState, ConnectionState) + Send + Sync + 'static) {
        self.inner().lock_state().observers.push(Arc::new(callback));
    }
}

/// A call whose message was queued.
struct Call {
    session: Arc<Session>,
    /// The invocation id (meaningless for `send`).
    id: u64,
    receiver: Option<CallReceiver>,
    uploads: Vec<UploadStream>,
}

enum CallReceiver {
    Invoke(oneshot::Receiver<Result<Payload>>),
    Stream(mpsc::UnboundedReceiver<Result<Payload>>),
}

/// The arguments must be one encoded array.
fn check_arguments(args: &Payload) -> Result<()> {
    if args.is_array() {
        Ok(())
    } else {
        Err(Error::InvalidArgument("arguments must be an array".into()))
    }
}

impl std::fmt::Debug for HubConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConnection")
            .field("url", &self.inner().config.url.as_str())
            .field("state", &self.state())
            .finish()
    }
}
