//! Client method handlers (`on`/`off`) and client-result handlers.
//!
//! Method names match case-insensitively, as the official JavaScript client does (D-5, CR-8):
//! names are stored lower-cased. The receive loop reads a snapshot (an `Arc` of the map) that is
//! refreshed only when the version counter moved, so dispatch takes no lock per message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use crate::connection::responder::Responder;
use crate::error::{Error, Result};
use crate::protocol::Payload;

/// Handles a server invocation of a client method; receives the `arguments` array.
pub type Handler = Arc<dyn Fn(&Payload) + Send + Sync>;

/// Handles a server invocation that expects a result (client results, CR-1); answers through the
/// [`Responder`], at once or later from any thread.
pub type ResultHandler = Arc<dyn Fn(&Payload, Responder) + Send + Sync>;

/// Identifies one registration, for [`crate::HubConnection::remove_handler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

#[derive(Default, Clone)]
pub(crate) struct MethodHandlers {
    pub plain: Vec<(HandlerId, Handler)>,
    /// Run only for invocations without id; they take those away from `result` (see
    /// [`crate::HubConnection::on_notification`]).
    pub notify: Vec<(HandlerId, Handler)>,
    pub result: Option<(HandlerId, ResultHandler)>,
}

pub(crate) type HandlerMap = HashMap<String, Arc<MethodHandlers>>;

#[derive(Default)]
pub(crate) struct Handlers {
    map: RwLock<Arc<HandlerMap>>,
    version: AtomicU64,
    next_id: AtomicU64,
    /// See [`Handlers::set_caught_up`].
    caught_up: OnceLock<CaughtUp>,
}

/// Told when the receive loop has dispatched everything received and is about to wait.
pub(crate) type CaughtUp = Box<dyn Fn() + Send + Sync>;

/// Lower-cases a method name the way lookups do.
pub(crate) fn method_key(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        std::borrow::Cow::Owned(name.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

impl Handlers {
    fn update(&self, change: impl FnOnce(&mut HandlerMap) -> Result<()>) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**map).clone();
        change(&mut next)?;
        *map = Arc::new(next);
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn new_id(&self) -> HandlerId {
        HandlerId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub fn add(&self, method: &str, handler: Handler) -> Result<HandlerId> {
        self.add_to(method, handler, |entry| &mut entry.plain)
    }

    pub fn add_notify(&self, method: &str, handler: Handler) -> Result<HandlerId> {
        self.add_to(method, handler, |entry| &mut entry.notify)
    }

    fn add_to(
        &self,
        method: &str,
        handler: Handler,
        list: impl FnOnce(&mut MethodHandlers) -> &mut Vec<(HandlerId, Handler)>,
    ) -> Result<HandlerId> {
        check_method(method)?;
        let id = self.new_id();
        let mut existing = None;
        self.update(|map| {
            let list = list(Arc::make_mut(map.entry(method_key(method).into_owned()).or_default()));
            // Registering the same handler twice is a no-op (CR-8).
            if let Some((id, _)) = list.iter().find(|(_, h)| Arc::ptr_eq(h, &handler)) {
                existing = Some(*id);
            } else {
                list.push((id, handler));
            }
            Ok(())
        })?;
        Ok(existing.unwrap_or(id))
    }

    /// One result handler per method: a second would make the answer ambiguous (CR-4, as .NET).
    pub fn add_result(&self, method: &str, handler: ResultHandler) -> Result<HandlerId> {
        check_method(method)?;
        let id = self.new_id();
        self.update(|map| {
            let entry = Arc::make_mut(map.entry(method_key(method).into_owned()).or_default());
            if entry.result.is_some() {
                return Err(Error::InvalidState(format!(
                    "a result handler is already registered for '{method}'"
                )));
            }
            entry.result = Some((id, handler));
            Ok(())
        })?;
        Ok(id)
    }

    pub fn remove_method(&self, method: &str) {
        let _ = self.update(|map| {
            map.remove(method_key(method).as_ref());
            Ok(())
        });
    }

    pub fn remove(&self, id: HandlerId) {
        let _ = self.update(|map| {
            map.retain(|_, entry| {
                let entry = Arc::make_mut(entry);
                entry.plain.retain(|(h, _)| *h != id);
                entry.notify.retain(|(h, _)| *h != id);
                if entry.result.as_ref().is_some_and(|(h, _)| *h == id) {
                    entry.result = None;
                }
                !entry.plain.is_empty() || !entry.notify.is_empty() || entry.result.is_some()
            });
            Ok(())
        });
    }

    /// For handlers that hand their calls to another thread: `hook` runs on the receive task
    /// each time it has handled every message received so far and waits for more, so that the
    /// other thread can be woken once per burst of messages instead of once per call. One hook
    /// per connection; a second is ignored.
    pub fn set_caught_up(&self, hook: CaughtUp) {
        let _ = self.caught_up.set(hook);
    }

    pub fn caught_up(&self) {
        if let Some(hook) = self.caught_up.get() {
            hook();
        }
    }

    /// A snapshot for the receive loop.
    pub fn snapshot(&self) -> HandlerSnapshot {
        let version = self.version.load(Ordering::Acquire);
        let map = self.map.read().unwrap_or_else(|p| p.into_inner()).clone();
        HandlerSnapshot { version, map, last_target: String::new(), last: None }
    }

    /// Refreshes `snapshot` if handlers changed since it was taken (one atomic load otherwise).
    pub fn refresh(&self, snapshot: &mut HandlerSnapshot) {
        if self.version.load(Ordering::Acquire) != snapshot.version {
            *snapshot = self.snapshot();
        }
    }
}

pub(crate) struct HandlerSnapshot {
    version: u64,
    map: Arc<HandlerMap>,
    /// The last target looked up, exactly as received, and what it resolved to: servers tend to
    /// call one method many times in a row, and this skips hashing for them.
    last_target: String,
    last: Option<Arc<MethodHandlers>>,
}

impl HandlerSnapshot {
    pub fn get(&mut self, target: &str) -> Option<&MethodHandlers> {
        if target != self.last_target {
            self.last = self.lookup(target).cloned();
            self.last_target.clear();
            self.last_target.push_str(target);
        }
        self.last.as_deref()
    }

    fn lookup(&self, target: &str) -> Option<&Arc<MethodHandlers>> {
        // Short ASCII names are lower-cased on the stack: no allocation per lookup.
        let mut buf = [0u8; 64];
        if target.len() <= buf.len() && target.is_ascii() {
            let lower = &mut buf[..target.len()];
            lower.copy_from_slice(target.as_bytes());
            lower.make_ascii_lowercase();
            return self.map.get(std::str::from_utf8(lower).ok()?);
        }
        self.map.get(method_key(target).as_ref())
    }
}

fn check_method(method: &str) -> Result<()> {
    if method.is_empty() {
        return Err(Error::InvalidArgument("method name must not be empty".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_off_removes() {
        let h = Handlers::default();
        let f: Handler = Arc::new(|_| {});
        let id = h.add("ReceiveMessage", f.clone()).unwrap();
        assert_eq!(h.add("receivemessage", f.clone()).unwrap(), id, "same handler twice is a no-op");
        h.add("receiveMessage", Arc::new(|_| {})).unwrap();
        let mut snap = h.snapshot();
        assert_eq!(snap.get("RECEIVEMESSAGE").unwrap().plain.len(), 2);
        h.remove(id);
        h.refresh(&mut snap);
        assert_eq!(snap.get("receivemessage").unwrap().plain.len(), 1);
        // The same target again after a change: the per-snapshot cache must not answer stale.
        h.remove_method("RECEIVEmessage");
        h.refresh(&mut snap);
        assert!(snap.get("receivemessage").is_none());
        assert!(snap.get("receivemessage").is_none());
        h.add("ReceiveMessage", Arc::new(|_| {})).unwrap();
        h.refresh(&mut snap);
        assert_eq!(snap.get("receivemessage").unwrap().plain.len(), 1);
        assert!(h.add("", f).is_err());
    }

    #[test]
    fn notification_handlers_are_kept_and_removed_like_plain_ones() {
        let h = Handlers::default();
        let f: Handler = Arc::new(|_| {});
        let id = h.add_notify("Tick", f.clone()).unwrap();
        assert_eq!(h.add_notify("tick", f.clone()).unwrap(), id, "same handler twice is a no-op");
        let plain = h.add("Tick", f).unwrap();
        let mut snap = h.snapshot();
        let entry = snap.get("TICK").unwrap();
        assert_eq!((entry.plain.len(), entry.notify.len()), (1, 1));
        h.remove(plain);
        h.refresh(&mut snap);
        assert_eq!(snap.get("tick").unwrap().notify.len(), 1, "a method with only notification handlers stays");
        h.remove(id);
        h.refresh(&mut snap);
        assert!(snap.get("tick").is_none());
    }

    #[test]
    fn only_one_result_handler_per_method() {
        let h = Handlers::default();
        let r: ResultHandler = Arc::new(|_, _| {});
        let id = h.add_result("Ask", r.clone()).unwrap();
        assert!(matches!(h.add_result("ask", r.clone()), Err(Error::InvalidState(_))));
        h.remove(id);
        h.add_result("ask", r).unwrap();
    }
}
