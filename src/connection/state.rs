//! Connection states (ST-1) and what changes with them.

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    Disconnected,
    Connecting,
    Connected,
    Disconnecting,
    Reconnecting,
}

impl ConnectionState {
    /// The official clients' names.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionState::Disconnected => "Disconnected",
            ConnectionState::Connecting => "Connecting",
            ConnectionState::Connected => "Connected",
            ConnectionState::Disconnecting => "Disconnecting",
            ConnectionState::Reconnecting => "Reconnecting",
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One run of the connection, from `start` until it is Disconnected again.
pub(crate) struct Lifecycle {
    /// Cancelled by `stop` (or by dropping the last handle).
    pub stop: CancellationToken,
    /// Becomes true once the run is over and `on_close` has run (ST-3: stop resolves after it).
    done: watch::Sender<bool>,
}

impl Lifecycle {
    pub fn new() -> Arc<Lifecycle> {
        Arc::new(Lifecycle { stop: CancellationToken::new(), done: watch::channel(false).0 })
    }

    pub fn finish(&self) {
        self.done.send_replace(true);
    }

    pub async fn finished(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }
}

/// Told every state change as `(old, new)`. Runs while the state lock is held, in the order of
/// the changes: it must be quick and must not call the connection.
pub(crate) type StateObserver = Arc<dyn Fn(ConnectionState, ConnectionState) + Send + Sync>;

/// Everything guarded by the connection's state lock.
pub(crate) struct StateData {
    /// Changed only through [`StateData::set`], which tells the observers.
    pub state: ConnectionState,
    pub connection_id: Option<String>,
    pub session: Option<Arc<Session>>,
    pub lifecycle: Option<Arc<Lifecycle>>,
    pub observers: Vec<StateObserver>,
}

impl StateData {
    pub fn set(&mut self, new: ConnectionState) {
        let old = std::mem::replace(&mut self.state, new);
        if old != new {
            for observer in &self.observers {
                super::guarded("on_state_changed", || observer(old, new));
            }
        }
    }
}

impl Default for StateData {
    fn default() -> Self {
        StateData {
            state: ConnectionState::Disconnected,
            connection_id: None,
            session: None,
            lifecycle: None,
            observers: Vec::new(),
        }
    }
}
