//! The pending-invocation table of one transport session: invokes waiting for a Completion and
//! streams waiting for items. Ids are numbers (`"0"`, `"1"` …) shared by invocations and upload
//! streams (I-3); the table is per session, so a lost connection fails exactly its own entries.

use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::id_map::IdMap;
use crate::protocol::Payload;

pub(crate) enum Pending {
    Invoke(oneshot::Sender<Result<Payload>>),
    Stream(mpsc::UnboundedSender<Result<Payload>>),
}

#[derive(Default)]
pub(crate) struct PendingTable {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Set once the session is over: later inserts fail with this error instead of hanging.
    closed: Option<Error>,
    entries: IdMap<Pending>,
}

/// Parses an id this client generated; anything else (non-canonical, not a number) is unknown.
pub(crate) fn parse_id(id: &str) -> Option<u64> {
    if id.is_empty() || (id.len() > 1 && id.starts_with('0')) || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

impl PendingTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, id: u64, pending: Pending) -> Result<()> {
        let mut table = self.lock();
        if let Some(e) = &table.closed {
            return Err(e.clone());
        }
        table.entries.insert(id, pending);
        Ok(())
    }

    pub fn remove(&self, id: u64) -> Option<Pending> {
        self.lock().entries.remove(&id)
    }

    /// Delivers a StreamItem. An item for a plain invoke fails that invoke (I-1); unknown ids are
    /// ignored (I-4).
    pub fn stream_item(&self, id: u64, item: Payload) {
        let mut table = self.lock();
        match table.entries.get(&id) {
            Some(Pending::Stream(tx)) => {
                // The receiver may be gone while its Drop has not yet removed the entry: ignore.
                let _ = tx.send(Ok(item));
            }
            Some(Pending::Invoke(_)) => {
                if let Some(Pending::Invoke(tx)) = table.entries.remove(&id) {
                    let _ = tx.send(Err(Error::Protocol(
                        "received a StreamItem for a non-streaming invocation".into(),
                    )));
                }
            }
            None => tracing::debug!(id, "StreamItem for an unknown invocation id ignored"),
        }
    }

    /// Fails every entry with `error` and refuses new ones (E-1).
    pub fn close(&self, error: Error) {
        let entries = {
            let mut table = self.lock();
            if table.closed.is_none() {
                table.closed = Some(error.clone());
            }
            std::mem::take(&mut table.entries)
        };
        for (_, pending) in entries {
            match pending {
                Pending::Invoke(tx) => {
                    let _ = tx.send(Err(error.clone()));
                }
                Pending::Stream(tx) => {
                    let _ = tx.send(Err(error.clone()));
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Format;

    #[test]
    fn ids_are_canonical_decimal_numbers() {
        assert_eq!(parse_id("0"), Some(0));
        assert_eq!(parse_id("42"), Some(42));
        for bad in ["", "007", "-1", "1a", "x", "99999999999999999999999"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn closing_fails_every_entry_once_and_refuses_new_ones() {
        let t = PendingTable::default();
        let (tx, mut rx) = oneshot::channel();
        t.insert(1, Pending::Invoke(tx)).unwrap();
        let (stx, mut srx) = mpsc::unbounded_channel();
        t.insert(2, Pending::Stream(stx)).unwrap();
        t.close(Error::Transport("gone".into()));
        assert_eq!(rx.try_recv().unwrap(), Err(Error::Transport("gone".into())));
        assert_eq!(srx.try_recv().unwrap(), Err(Error::Transport("gone".into())));
        assert!(srx.try_recv().is_err(), "stream sender dropped after the error");
        let (tx, _rx) = oneshot::channel();
        assert_eq!(t.insert(3, Pending::Invoke(tx)), Err(Error::Transport("gone".into())));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn stream_item_for_an_invoke_fails_the_invoke() {
        let t = PendingTable::default();
        let (tx, mut rx) = oneshot::channel();
        t.insert(1, Pending::Invoke(tx)).unwrap();
        t.stream_item(1, Payload::null(Format::Json));
        assert!(matches!(rx.try_recv().unwrap(), Err(Error::Protocol(_))));
        t.stream_item(9, Payload::null(Format::Json)); // unknown: ignored
    }
}
