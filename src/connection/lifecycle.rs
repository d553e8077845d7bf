//! The state machine of one run (ST-2 … ST-10, R-1 … R-8): start, drive sessions, reconnect after a
//! loss, stop, and fire the lifecycle callbacks — all from one task per run, so callbacks and
//! handlers never overlap.

use std::sync::Arc;
use std::time::Instant;

use super::connect::{establish, reopen, Established, Resume};
use super::dispatch::{Ended, ReceiveLoop};
use super::session::Session;
use super::stateful::ReceiveTracker;
use super::state::{ConnectionState, Lifecycle};
use super::Inner;
use crate::error::{Error, Result};
use crate::reconnect::RetryContext;

/// Disconnected → Connecting, and the run's lifecycle recorded, before `start`'s task is spawned:
/// were this left to the task, a `stop` issued before the task first ran would find nothing to
/// cancel, and the start would go on to connect a connection its owner had already given up.
pub(crate) fn begin(inner: &Inner) -> Result<Arc<Lifecycle>> {
    let mut data = inner.lock_state();
    if data.state != ConnectionState::Disconnected {
        return Err(Error::InvalidState(format!(
            "cannot start a connection that is not in the Disconnected state (it is {})",
            data.state
        )));
    }
    let lifecycle = Lifecycle::new();
    data.set(ConnectionState::Connecting);
    data.lifecycle = Some(lifecycle.clone());
    Ok(lifecycle)
}

/// `start`: Disconnected → Connecting → Connected, then the run continues in a background task.
///
/// [`begin`] runs first, on the caller's side: a `stop` from then on finds the run and cancels it.
pub(crate) async fn start(inner: Arc<Inner>, lifecycle: Arc<Lifecycle>) -> Result<()> {
    let established = match establish(&inner, &lifecycle.stop).await {
        Ok(established) => established,
        Err(e) => {
            // ST-2: back to Disconnected; on_close is not fired for a start that never connected.
            inner.set_disconnected();
            lifecycle.finish();
            return Err(e);
        }
    };
    let (session, rest) = match begin_session(&inner, established) {
        Ok(v) => v,
        Err(e) => {
            inner.set_disconnected();
            lifecycle.finish();
            return Err(e);
        }
    };
    {
        let mut data = inner.lock_state();
        if lifecycle.stop.is_cancelled() {
            drop(data);
            session.end(None);
            inner.set_disconnected();
            lifecycle.finish();
            return Err(Error::Canceled("The connection was stopped during start.".into()));
        }
        data.set(ConnectionState::Connected);
        data.connection_id = rest.connection_id.clone();
        data.session = Some(session.clone());
    }
    inner.config.runtime.spawn(drive_guarded(inner.clone(), lifecycle, session, rest));
    Ok(())
}

/// `drive`, but a panic in it still closes the connection: the current session's pending calls
/// fail, the state becomes Disconnected and on_close runs with the panic as the cause.
async fn drive_guarded(inner: Arc<Inner>, lifecycle: Arc<Lifecycle>, session: Arc<Session>, rx: Receiving) {
    use futures_util::FutureExt;
    let run = std::panic::AssertUnwindSafe(drive(inner.clone(), lifecycle.clone(), session.clone(), rx));
    if let Err(payload) = run.catch_unwind().await {
        let error = Error::panicked("receive loop", &*payload);
        tracing::error!("{error}");
        session.end(Some(&error));
        let current = inner.lock_state().session.clone();
        if let Some(current) = current {
            current.end(Some(&error));
        }
        finish(&inner, &lifecycle, Some(error));
    }
}

/// The transport halves the receive loop owns.
pub(crate) struct Receiving {
    reader: crate::transport::TransportReader,
    messages: crate::protocol::MessageReader,
    connection_id: Option<String>,
    /// Stateful reconnect: where to re-connect, and the receive-side bookkeeping.
    stateful: Option<(Resume, ReceiveTracker)>,
}

fn begin_session(inner: &Inner, established: Established) -> Result<(Arc<Session>, Receiving)> {
    let Established { reader, writer, messages, connection_id, resume } = established;
    let keep_alive = (!reader.has_inherent_keep_alive()).then_some(inner.config.keep_alive_interval);
    let buffer = resume.as_ref().and(inner.config.stateful_reconnect);
    let session = Session::start(inner.config.protocol, writer, keep_alive, buffer, &inner.config.runtime)?;
    let stateful = resume.map(|resume| (resume, ReceiveTracker::new()));
    Ok((session, Receiving { reader, messages, connection_id, stateful }))
}

/// SR-7 … SR-10: after the transport of a stateful session dropped, one immediate attempt to
/// continue on a new WebSocket: no state change, no callbacks, pending calls stay pending.
/// `Err` = it failed (the caller closes or reconnects as without stateful reconnect).
async fn resume_session(inner: &Inner, lifecycle: &Lifecycle, session: &Session, rx: &mut Receiving) -> Result<()> {
    let Some((resume, tracker)) = rx.stateful.as_mut() else {
        return Err(Error::Internal("not a stateful session".into()));
    };
    session.writer().suspend();
    let attempt = async {
        let (reader, writer) = reopen(inner, resume).await?;
        session.writer().resume(writer, || session.writer().replay().map_or(Ok(Vec::new()), |r| r.resend(session.protocol))).await?;
        Ok::<_, Error>(reader)
    };
    // Nothing arrives meanwhile: the server timeout bounds the attempt, as it would a silence.
    let timeout = inner.config.server_timeout;
    let attempt = async {
        tokio::time::timeout(timeout, attempt).await.unwrap_or_else(|_| {
            Err(Error::Timeout(format!("re-opening the WebSocket took longer than {} ms", timeout.as_millis())))
        })
    };
    let reader = tokio::select! {
        biased;
        _ = lifecycle.stop.cancelled() => return Err(Error::Canceled("The connection was stopped while re-connecting.".into())),
        r = attempt => r?,
    };
    rx.reader = reader;
    // A message cut off by the drop is resent whole by the server.
    rx.messages = crate::protocol::MessageReader::new(inner.config.protocol, inner.config.max_message_bytes);
    tracker.reconnected();
    Ok(())
}

/// Runs sessions until the connection is over, reconnecting in between when allowed.
///
/// This future lives as long as the connection: the rare steps (stop, stateful re-connect,
/// reconnect, each holding a whole connect's state) are boxed when they happen, so that an idle
/// connection's task holds little more than its receive loop.
async fn drive(inner: Arc<Inner>, lifecycle: Arc<Lifecycle>, mut session: Arc<Session>, mut rx: Receiving) {
    let close_cause = loop {
        let ended = ReceiveLoop {
            session: &session,
            handlers: &inner.handlers,
            reader: &mut rx.reader,
            messages: &mut rx.messages,
            stop: &lifecycle.stop,
            server_timeout: inner.config.server_timeout,
            tracker: rx.stateful.as_mut().map(|(_, tracker)| tracker),
        }
        .run()
        .await;
        let (cause, may_reconnect) = match ended {
            Ended::Stopped => {
                inner.lock_state().set(ConnectionState::Disconnecting);
                Box::pin(session.stop()).await;
                drop(rx);
                break None;
            }
            Ended::Lost { mut cause, reconnect, dropped } => {
                if dropped && rx.stateful.is_some() && !lifecycle.stop.is_cancelled() {
                    tracing::info!("transport lost ({cause:?}); stateful re-connect");
                    match Box::pin(resume_session(&inner, &lifecycle, &session, &mut rx)).await {
                        Ok(()) => continue,
                        Err(e) => {
                            tracing::info!("stateful re-connect failed: {e}");
                            if let Some(Error::Transport(lost)) = &cause {
                                cause = Some(Error::Transport(format!("{lost} (stateful re-connect failed: {e})")));
                            }
                        }
                    }
                    if lifecycle.stop.is_cancelled() {
                        session.end(None);
                        drop(rx);
                        break None;
                    }
                }
                if let Some(e) = &cause {
                    tracing::info!("connection lost: {e}");
                }
                // E-1: pending operations fail before any callback runs.
                session.end(cause.as_ref());
                (cause, reconnect)
            }
        };
        drop(rx);
        if !may_reconnect || inner.config.reconnect.is_none() {
            break cause;
        }
        match Box::pin(reconnect(&inner, &lifecycle, cause)).await {
            Reconnect::Connected(new_session, new_rx) => {
                session = new_session;
                rx = *new_rx;
            }
            Reconnect::Closed(cause) => break cause,
        }
    };
    finish(&inner, &lifecycle, close_cause);
}

/// Disconnected, then on_close (ST-3, E-3), then stop() may return.
fn finish(inner: &Inner, lifecycle: &Lifecycle, cause: Option<Error>) {
    inner.set_disconnected();
    inner.callbacks.fire_close(cause.as_ref());
    lifecycle.finish();
}

enum Reconnect {
    Connected(Arc<Session>, Box<Receiving>),
    Closed(Option<Error>),
}

/// R-2 … R-6.
async fn reconnect(inner: &Arc<Inner>, lifecycle: &Lifecycle, lost: Option<Error>) -> Reconnect {
    let Some(policy) = inner.config.reconnect.clone() else { return Reconnect::Closed(lost) };
    let began = Instant::now();
    let mut reason = lost.clone().unwrap_or_else(|| Error::Transport("the server closed the connection".into()));
    let mut attempts: u64 = 0;
    let mut delay = match next_delay(&*policy, attempts, began, &reason).await {
        Some(d) => d,
        // no Reconnecting state, close with the original error.
        None => return Reconnect::Closed(lost),
    };
    {
        let mut data = inner.lock_state();
        if lifecycle.stop.is_cancelled() {
            return Reconnect::Closed(None);
        }
        data.set(ConnectionState::Reconnecting);
        data.connection_id = None;
        data.session = None;
    }
    inner.callbacks.fire_reconnecting(&reason);
    loop {
        if lifecycle.stop.is_cancelled() {
            // ST-5/ST-6: a stop during reconnect closes without error, as the JS client.
            return Reconnect::Closed(None);
        }
        tokio::select! {
            biased;
            _ = lifecycle.stop.cancelled() => return Reconnect::Closed(None),
            _ = tokio::time::sleep(delay) => {}
        }
        tracing::info!(attempt = attempts + 1, "reconnecting");
        let attempt = match establish(inner, &lifecycle.stop).await {
            Ok(established) => begin_session(inner, established),
            Err(e) => Err(e),
        };
        match attempt {
            Ok((session, rx)) => {
                {
                    let mut data = inner.lock_state();
                    if lifecycle.stop.is_cancelled() {
                        drop(data);
                        session.end(None);
                        return Reconnect::Closed(None);
                    }
                    data.set(ConnectionState::Connected);
                    data.connection_id = rx.connection_id.clone();
                    data.session = Some(session.clone());
                }
                inner.callbacks.fire_reconnected(rx.connection_id.as_deref());
                return Reconnect::Connected(session, Box::new(rx));
            }
            Err(e) => {
                if lifecycle.stop.is_cancelled() {
                    return Reconnect::Closed(None);
                }
                tracing::info!("reconnect attempt {} failed: {e}", attempts + 1);
                attempts += 1;
                reason = e;
                match next_delay(&*policy, attempts, began, &reason).await {
                    Some(d) => delay = d,
                    None => {
                        return Reconnect::Closed(Some(Error::Canceled(format!(
                            "Reconnect retries have been exhausted after {attempts} failed attempts and {} ms. \
                             Last error: {reason}",
                            began.elapsed().as_millis()
                        ))))
                    }
                }
            }
        }
    }
}

async fn next_delay(
    policy: &dyn crate::reconnect::ReconnectPolicy,
    attempts: u64,
    began: Instant,
    reason: &Error,
) -> Option<std::time::Duration> {
    let context = RetryContext {
        previous_retry_count: attempts,
        elapsed: if attempts == 0 { std::time::Duration::ZERO } else { began.elapsed() },
        retry_reason: reason.clone(),
    };
    // A panicking policy means "stop".
    let Ok(answer) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| policy.next_retry_delay_async(&context)))
    else {
        return None;
    };
    futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(answer)).await.unwrap_or(None)
}
