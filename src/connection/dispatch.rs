//! The receive loop of a session: one task reads the transport, parses and dispatches every message
//! in arrival order — handlers run inline, so they never overlap and see protocol order.
//!
//! Under stateful reconnect every message first passes the [`ReceiveTracker`] (counting, duplicates
//! after a re-connect, the Ack timer); a transport that breaks ends the loop with `dropped` set,
//! so the session may continue on a new transport.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::handlers::{Handler, HandlerId, HandlerSnapshot, Handlers};
use super::invocations::{parse_id, Pending};
use super::keep_alive::IdleTimer;
use super::responder::{Responder, NO_RESULT_ERROR};
use super::session::Session;
use super::stateful::{ReceiveTracker, Verdict};
use crate::error::Error;
use crate::protocol::{Chunk, Completion, CompletionResult, HubMessage, Invocation, MessageReader, Payload};
use crate::transport::TransportReader;

/// Why a session's receive loop ended.
pub(crate) enum Ended {
    /// The client called stop.
    Stopped,
    /// The connection was lost or closed by the server. `cause` is `None` for a clean close
    /// without error; `reconnect` is false only for a server Close without `allowReconnect` (C-1).
    /// `dropped`: the transport itself broke or closed (not a Close message, timeout or protocol
    /// error), which stateful reconnect may repair (SR-7).
    Lost { cause: Option<Error>, reconnect: bool, dropped: bool },
}

impl Ended {
    fn lost(cause: Error) -> Ended {
        Ended::Lost { cause: Some(cause), reconnect: true, dropped: false }
    }

    fn dropped(cause: Option<Error>) -> Ended {
        Ended::Lost { cause, reconnect: true, dropped: true }
    }
}

pub(crate) struct ReceiveLoop<'a> {
    pub session: &'a Arc<Session>,
    pub handlers: &'a Handlers,
    pub reader: &'a mut TransportReader,
    pub messages: &'a mut MessageReader,
    pub stop: &'a CancellationToken,
    pub server_timeout: Duration,
    /// Present when stateful reconnect is active on the session.
    pub tracker: Option<&'a mut ReceiveTracker>,
}

impl ReceiveLoop<'_> {
    pub async fn run(self) -> Ended {
        let ReceiveLoop { session, handlers: registry, reader, messages, stop, server_timeout, mut tracker } = self;
        // However the loop ends, handlers learn that nothing more is coming for now.
        let _caught_up = CaughtUpOnDrop(registry);
        let mut handlers = registry.snapshot();
        let link = session.writer().link();
        let link_broken = link.cancelled();
        let mut timeout = (!reader.has_inherent_keep_alive()).then(|| IdleTimer::new(server_timeout));
        // Created once: re-creating cancellation futures per chunk would re-register their wakers.
        let stopped = stop.cancelled();
        let session_ended = session.ended();
        tokio::pin!(stopped, session_ended, link_broken);
        loop {
            // Everything already received first (the handshake's leftovers included, H-3).
            loop {
                match messages.next_message() {
                    Ok(Some(message)) => {
                        if let Some(tracker) = tracker.as_deref_mut() {
                            match tracker.accept(&message) {
                                Ok(Verdict::Process) => {}
                                Ok(Verdict::Skip) => continue,
                                Err(e) => return Ended::lost(e),
                            }
                        }
                        if let Some(ended) = dispatch(message, session, registry, &mut handlers) {
                            return ended;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Ended::lost(Error::from(e)),
                }
            }
            if let Some(ack) = tracker.as_deref_mut().and_then(ReceiveTracker::eager_ack) {
                let _ = session.send_message(&ack);
            }
            let ack_armed = tracker.as_ref().is_some_and(|t| t.ack_armed());
            tokio::select! {
                biased;
                _ = &mut stopped => return Ended::Stopped,
                _ = &mut session_ended => {
                    let cause = session.write_error()
                        .unwrap_or_else(|| Error::Transport("the connection was closed".into()));
                    return Ended::lost(cause);
                }
                // Stateful: the writer found the transport broken.
                _ = &mut link_broken => {
                    return Ended::dropped(Some(Error::Transport("the connection was lost while sending".into())));
                }
                chunk = recv_or_caught_up(reader, registry) => match chunk {
                    Some(Ok(chunk)) => {
                        if let Some(t) = timeout.as_mut() {
                            t.touch();
                        }
                        if let Some(tracker) = tracker.as_deref_mut() {
                            tracker.received(chunk.len());
                        }
                        messages.push(chunk);
                    }
                    // A clean close without a Close message still counts as a loss.
                    None => return Ended::dropped(None),
                    Some(Err(e)) => return Ended::dropped(Some(e)),
                },
                _ = async { timeout.as_mut().unwrap().expired().await }, if timeout.is_some() => {
                    return Ended::lost(Error::Timeout(format!(
                        "Server timeout elapsed without receiving a message from the server ({} ms).",
                        server_timeout.as_millis()
                    )));
                }
                // SR-5: Ack what was processed, about a second after it arrived.
                ack = async { tracker.as_deref_mut().unwrap().ack_due().await }, if ack_armed => {
                    let _ = session.send_message(&ack);
                }
            }
        }
    }
}

/// The next chunk; when none is ready yet, the handlers are told first that they have seen
/// everything received so far.
async fn recv_or_caught_up(reader: &mut TransportReader, handlers: &Handlers) -> Option<crate::error::Result<Chunk>> {
    let mut recv = std::pin::pin!(reader.recv());
    let mut told = false;
    std::future::poll_fn(|cx| {
        let poll = recv.as_mut().poll(cx);
        if poll.is_pending() && !told {
            told = true;
            handlers.caught_up();
        }
        poll
    })
    .await
}

struct CaughtUpOnDrop<'a>(&'a Handlers);

impl Drop for CaughtUpOnDrop<'_> {
    fn drop(&mut self) {
        self.0.caught_up();
    }
}

/// Handles one message; `Some` ends the session.
fn dispatch(
    message: HubMessage,
    session: &Arc<Session>,
    registry: &Handlers,
    handlers: &mut HandlerSnapshot,
) -> Option<Ended> {
    match message {
        HubMessage::Invocation(invocation) => {
            registry.refresh(handlers);
            invoke_handlers(invocation, session, handlers);
        }
        HubMessage::StreamItem(item) => {
            if let Some(id) = parse_id(&item.invocation_id) {
                session.pending.stream_item(id, item.item);
            }
        }
        HubMessage::Completion(completion) => complete(completion, session),
        HubMessage::Close(close) => {
            // C-3/SR-11: a Close ends the connection even under stateful reconnect.
            return Some(Ended::Lost {
                cause: close.error.map(Error::ServerClosed),
                reconnect: close.allow_reconnect,
                dropped: false,
            });
        }
        HubMessage::Ping => {}
        HubMessage::StreamInvocation(inv) => {
            tracing::warn!(target = %inv.target, "server stream invocations of client methods are not supported; ignored");
        }
        HubMessage::Ack { sequence_id } => session.ack(sequence_id),
        // Sequence is consumed by the ReceiveTracker (ignored without stateful reconnect).
        HubMessage::CancelInvocation { .. } | HubMessage::Sequence { .. } => {}
    }
    None
}

fn complete(completion: Completion, session: &Session) {
    let Some(id) = parse_id(&completion.invocation_id) else { return };
    // A Completion is final (SS-4): the entry leaves the table; unknown ids are ignored (I-4).
    let Some(pending) = session.pending.remove(id) else {
        tracing::debug!(id = %completion.invocation_id, "Completion for an unknown invocation id ignored");
        return;
    };
    match (pending, completion.result) {
        (Pending::Invoke(tx), CompletionResult::Void) => {
            let _ = tx.send(Ok(Payload::null(session.protocol.format())));
        }
        (Pending::Invoke(tx), CompletionResult::Value(v)) => {
            let _ = tx.send(Ok(v));
        }
        (Pending::Invoke(tx), CompletionResult::Error(e)) => {
            let _ = tx.send(Err(Error::Hub(e)));
        }
        // SS-2: a stream ends on its Completion; a result on it is ignored.
        (Pending::Stream(tx), CompletionResult::Error(e)) => {
            let _ = tx.send(Err(Error::Hub(e)));
        }
        (Pending::Stream(_), _) => {}
    }
}

/// Runs every handler registered for the target, in registration order. A panicking handler is
/// logged and does not stop the connection (ST-10).
fn invoke_handlers(invocation: Invocation, session: &Arc<Session>, handlers: &mut HandlerSnapshot) {
    let Invocation { invocation_id, target, arguments, .. } = invocation;
    let Some(method) = handlers.get(&target) else {
        if let Some(id) = invocation_id {
            // CR-2: the server waits for an answer that will never come otherwise.
            let _ = session.send_message(&HubMessage::Completion(Completion {
                headers: Vec::new(),
                invocation_id: id,
                result: CompletionResult::Error(NO_RESULT_ERROR.into()),
            }));
        } else {
            tracing::warn!(%target, "no client method with this name is registered");
        }
        return;
    };
    run_each(&method.plain, &arguments, &target);
    // A call without id is a notification: its handlers take it instead of the result handler.
    let notification = invocation_id.is_none() && !method.notify.is_empty();
    if notification {
        run_each(&method.notify, &arguments, &target);
    }
    match &method.result {
        Some((_, handler)) if !notification => {
            let responder = Responder::new(session.clone(), invocation_id);
            // On panic the responder is dropped during unwinding and answers with an error.
            if std::panic::catch_unwind(AssertUnwindSafe(|| handler(&arguments, responder))).is_err() {
                tracing::error!(%target, "a result handler panicked");
            }
        }
        _ => {
            if invocation_id.is_some() {
                // Handlers ran but none can produce a value (CR-3).
                drop(Responder::new(session.clone(), invocation_id));
            }
        }
    }
}

/// Runs `handlers` in registration order; a panicking one is logged and the next still runs.
fn run_each(handlers: &[(HandlerId, Handler)], arguments: &Payload, target: &str) {
    for (_, handler) in handlers {
        if std::panic::catch_unwind(AssertUnwindSafe(|| handler(arguments))).is_err() {
            tracing::error!(%target, "a handler panicked");
        }
    }
}
