//! The hub session of one connection: handshake, message loop, keep-alive pings, client
//! timeout, stateful-reconnect acks, and the Close message at the end (ASP.NET's
//! `HubConnectionHandler` and `HubConnectionContext`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use signalr_native::protocol::{Close, HandshakeResponse, HubMessage, HubProtocol, MessageReader};
use tokio::sync::mpsc;

use crate::app::App;
use crate::connections::{CloseReason, Connection, Inbound, Session, TransportKind};
use crate::hub_methods;
use crate::outbound::Finish;
use crate::stateful::{ReceiveTracker, ReplayBuffer};

/// Handshake and protocol versions this server accepts (ASP.NET 8+: up to 2).
const MAX_PROTOCOL_VERSION: u32 = 2;
/// Stateful reconnect acknowledges received messages about this often (SR-5).
const ACK_INTERVAL: Duration = Duration::from_secs(1);

pub fn spawn(app: Arc<App>, conn: Arc<Connection>, input: mpsc::Receiver<Inbound>) {
    tokio::spawn(run(app, conn, input));
}

/// How the session ends toward the client.
enum Ending {
    /// No Close message (transport gone, or a hub method already sent one).
    Quiet,
    Close(Close),
}

/// What ASP.NET sends when a connection ends because of a protocol error or client timeout
/// (without `EnableDetailedErrors` the cause is not included).
fn error_close() -> Close {
    Close { error: Some("Connection closed with an error.".into()), allow_reconnect: true }
}

async fn run(app: Arc<App>, conn: Arc<Connection>, mut input: mpsc::Receiver<Inbound>) {
    let ending = match handshake(&app, &conn, &mut input).await {
        Some(reader) => {
            let heartbeat = tokio::spawn(heartbeat(app.clone(), conn.clone()));
            let ending = message_loop(&app, &conn, &mut input, reader).await;
            heartbeat.abort();
            ending
        }
        None => Ending::Quiet,
    };
    if let Ending::Close(close) = ending {
        conn.send(&HubMessage::Close(close)).await;
    }
    conn.invocations.cancel_all();
    app.groups.remove_connection(&conn.id);
    conn.outbound.finish(Finish::Drain);
    tracing::debug!(connection = %conn.id, "session ended");
}

/// Reads the handshake request (JSON + 0x1E whatever the protocol) and answers it.
/// Returns the reader for the hub messages that follow, or None when the handshake failed.
async fn handshake(app: &App, conn: &Connection, input: &mut mpsc::Receiver<Inbound>) -> Option<MessageReader> {
    let deadline = tokio::time::Instant::now() + app.opts.handshake_timeout;
    let mut pending = BytesMut::new();
    loop {
        if let Some(end) = pending.iter().position(|&b| b == 0x1E) {
            let record = pending.split_to(end + 1).freeze();
            return accept_handshake(app, conn, record, pending.freeze()).await;
        }
        if pending.len() > app.opts.max_message_bytes {
            reject_handshake(conn, "Handshake was canceled.").await;
            return None;
        }
        tokio::select! {
            event = input.recv() => match event {
                Some(Inbound::Data(chunk)) => pending.extend_from_slice(&chunk),
                Some(Inbound::Resumed) => {}
                None => return None,
            },
            _ = conn.disposed.wait() => return None,
            _ = tokio::time::sleep_until(deadline) => {
                reject_handshake(conn, "Handshake was canceled.").await;
                return None;
            }
        }
    }
}

async fn accept_handshake(app: &App, conn: &Connection, record: Bytes, rest: Bytes) -> Option<MessageReader> {
    let max = app.opts.max_message_bytes;
    let mut parser = MessageReader::new(HubProtocol::Json, max);
    parser.push(record);
    let request = match parser.next_handshake_request() {
        Ok(Some(request)) => request,
        other => {
            tracing::info!(connection = %conn.id, "bad handshake request: {other:?}");
            reject_handshake(conn, "An unexpected error occurred during connection handshake.").await;
            return None;
        }
    };
    // ASP.NET resolves protocol names case-insensitively.
    let Some(protocol) = HubProtocol::from_name(&request.protocol.to_ascii_lowercase()) else {
        reject_handshake(conn, &format!("The protocol '{}' is not supported.", request.protocol)).await;
        return None;
    };
    if request.version > MAX_PROTOCOL_VERSION {
        let text = format!("The server does not support version {} of the '{}' protocol.", request.version, request.protocol);
        reject_handshake(conn, &text).await;
        return None;
    }
    if conn.transport() == Some(TransportKind::ServerSentEvents) && protocol == HubProtocol::MessagePack {
        let text = format!(
            "Cannot use the '{}' protocol on the current transport. The transport does not support '{}' transfer format.",
            protocol.name(),
            protocol.transfer_format()
        );
        reject_handshake(conn, &text).await;
        return None;
    }
    conn.outbound.set_binary(protocol == HubProtocol::MessagePack);
    // Stateful reconnect needs both the negotiate flag and handshake version 2 (D-1).
    if conn.stateful_negotiated() && request.version >= 2 {
        conn.outbound.enable_replay(ReplayBuffer::new(protocol, app.opts.stateful_buffer_bytes));
        conn.set_stateful_active();
    }
    conn.set_session(Session { protocol, version: request.version });
    let mut response = Vec::new();
    HandshakeResponse { error: None }.write(&mut response);
    conn.send_encoded(&response, false).await;
    let mut reader = MessageReader::new(protocol, max);
    if !rest.is_empty() {
        reader.push(rest);
    }
    tracing::debug!(connection = %conn.id, "handshake: {} version {}", protocol.name(), request.version);
    Some(reader)
}

/// The error response; the connection then ends.
async fn reject_handshake(conn: &Connection, error: &str) {
    tracing::info!(connection = %conn.id, "handshake rejected: {error}");
    let mut response = Vec::new();
    HandshakeResponse { error: Some(error.to_owned()) }.write(&mut response);
    conn.send_encoded(&response, false).await;
}

async fn message_loop(
    app: &Arc<App>,
    conn: &Arc<Connection>,
    input: &mut mpsc::Receiver<Inbound>,
    mut reader: MessageReader,
) -> Ending {
    let mut tracker = ReceiveTracker::default();
    conn.touch();
    loop {
        let chunk = tokio::select! {
            biased;
            _ = conn.disposed.wait() => return Ending::Quiet,
            reason = conn.close_requested() => {
                return match reason {
                    CloseReason::CloseSent => Ending::Quiet,
                    CloseReason::ClientTimeout | CloseReason::WriteFailed => Ending::Close(error_close()),
                };
            }
            event = input.recv() => match event {
                Some(Inbound::Data(chunk)) => chunk,
                Some(Inbound::Resumed) => {
                    tracker.on_reconnect();
                    conn.touch();
                    continue;
                }
                None => return Ending::Quiet,
            },
        };
        reader.push(chunk);
        loop {
            let message = match reader.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(connection = %conn.id, "closing: invalid message from the client: {e}");
                    return Ending::Close(error_close());
                }
            };
            conn.touch();
            if conn.stateful_active() {
                match tracker.accept(&message) {
                    Ok(true) => conn.latest_received.store(tracker.latest(), Ordering::Relaxed),
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(connection = %conn.id, "closing: {e}");
                        return Ending::Close(error_close());
                    }
                }
            }
            conn.pause_client_timeout();
            let ended = dispatch(app, conn, message).await;
            conn.resume_client_timeout();
            if let Some(ending) = ended {
                return ending;
            }
        }
        conn.touch();
    }
}

/// Handles one message from the client; `Some` ends the session.
async fn dispatch(app: &Arc<App>, conn: &Arc<Connection>, message: HubMessage) -> Option<Ending> {
    match message {
        HubMessage::Invocation(invocation) => hub_methods::dispatch(app, conn, invocation, false).await,
        HubMessage::StreamInvocation(invocation) => hub_methods::dispatch(app, conn, invocation, true).await,
        HubMessage::StreamItem(item) => match conn.invocations.upload(&item.invocation_id) {
            Some(upload) => {
                let _ = upload.send(crate::invocations::UploadEvent::Item(item.item)).await;
            }
            None => tracing::debug!(connection = %conn.id, "StreamItem for unknown stream {}", item.invocation_id),
        },
        HubMessage::Completion(completion) => {
            if let Some(upload) = conn.invocations.close_upload(&completion.invocation_id) {
                let error = match completion.result {
                    signalr_native::protocol::CompletionResult::Error(error) => Some(error),
                    _ => None,
                };
                let _ = upload.send(crate::invocations::UploadEvent::End(error)).await;
            } else if !conn.invocations.complete_client_result(&completion.invocation_id, completion.result) {
                tracing::debug!(connection = %conn.id, "unexpected Completion {}", completion.invocation_id);
            }
        }
        HubMessage::CancelInvocation { invocation_id, .. } => conn.invocations.cancel_stream(&invocation_id),
        HubMessage::Ping => conn.arm_client_timeout(),
        // The client's Close is answered with an empty Close, as ASP.NET does.
        HubMessage::Close(_) => return Some(Ending::Close(Close::default())),
        HubMessage::Ack { sequence_id } => conn.outbound.ack(sequence_id),
        HubMessage::Sequence { .. } => {} // consumed by the ReceiveTracker
    }
    None
}

/// Periodic duties while the session runs: pings every keep-alive interval (not on Long
/// Polling, nor while stalled), the client timeout, and Acks for stateful reconnect.
async fn heartbeat(app: Arc<App>, conn: Arc<Connection>) {
    let opts = &app.opts;
    let tick = opts.keep_alive.min(opts.client_timeout).min(ACK_INTERVAL) / 4;
    let mut ticker = tokio::time::interval(tick.max(Duration::from_millis(5)));
    let pings = conn.transport() != Some(TransportKind::LongPolling);
    let mut next_ping = Instant::now() + opts.keep_alive;
    let mut next_ack = Instant::now() + ACK_INTERVAL;
    let mut last_acked = 0;
    loop {
        ticker.tick().await;
        if conn.stall.active() {
            continue;
        }
        let now = Instant::now();
        if pings && now >= next_ping {
            next_ping = now + opts.keep_alive;
            if conn.outbound.has_room() {
                conn.send(&HubMessage::Ping).await;
            }
        }
        if !conn.outbound.is_parked() && conn.client_timed_out(opts.client_timeout) {
            tracing::info!(connection = %conn.id, "client timeout: nothing received for {:?}", opts.client_timeout);
            conn.request_close(CloseReason::ClientTimeout);
            return;
        }
        if conn.stateful_active() && !conn.outbound.is_parked() && now >= next_ack {
            next_ack = now + ACK_INTERVAL;
            let latest = conn.latest_received.load(Ordering::Relaxed);
            if latest > last_acked
                && conn.outbound.has_room()
                && conn.send(&HubMessage::Ack { sequence_id: latest }).await
            {
                last_acked = latest;
            }
        }
    }
}
