//! Fault injection: failing negotiate/connect requests on demand, and the hub methods that break
//! a connection in controlled ways (SPEC.md "Fault injection").

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use signalr_native::protocol::{Close, HubMessage, HubProtocol, Payload};

use crate::connections::{CloseReason, TransportKind};
use crate::hub_methods::{Call, HubError};
use crate::outbound::Finish;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Failures armed by `FailNextNegotiations` / `FailNextConnects`, for any client of this server.
#[derive(Default)]
pub struct Faults {
    negotiations: Mutex<(u32, u16)>,
    /// Indexed like [`TransportKind`]: WebSockets, ServerSentEvents, LongPolling.
    connects: Mutex<[u32; 3]>,
}

impl Faults {
    /// The status the next negotiate must answer, if one is armed.
    pub fn take_negotiate_failure(&self) -> Option<StatusCode> {
        let mut armed = lock(&self.negotiations);
        if armed.0 == 0 {
            return None;
        }
        armed.0 -= 1;
        StatusCode::from_u16(armed.1).ok()
    }

    /// Whether this connect request of `transport` must answer 500.
    pub fn take_connect_failure(&self, transport: TransportKind) -> bool {
        let mut armed = lock(&self.connects);
        let slot = &mut armed[transport as usize];
        if *slot == 0 {
            return false;
        }
        *slot -= 1;
        true
    }
}

/// `Stall(ms)`: while active, transports neither read nor write and no pings are sent.
#[derive(Default)]
pub struct Stall {
    until: Mutex<Option<Instant>>,
}

impl Stall {
    pub fn start(&self, duration: Duration) {
        // A duration too long to represent stalls for good.
        let now = Instant::now();
        let until = now.checked_add(duration).unwrap_or(now + Duration::from_secs(100 * 365 * 24 * 3600));
        *lock(&self.until) = Some(until);
    }

    pub fn active(&self) -> bool {
        lock(&self.until).is_some_and(|until| until > Instant::now())
    }

    /// Returns once no stall is in effect.
    pub async fn wait(&self) {
        loop {
            let until = *lock(&self.until);
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until.into()).await,
                _ => return,
            }
        }
    }
}

pub async fn drop_transport(call: &mut Call) -> Result<Payload, HubError> {
    let conn = &call.conn;
    tracing::info!(connection = %conn.id, "DropTransport");
    conn.outbound.abort_transport();
    if conn.transport() == Some(TransportKind::LongPolling) {
        // Long Polling has no socket to re-connect: the connection is gone for the client.
        conn.dispose(&call.app);
    }
    Ok(call.null())
}

pub async fn close_with_error(call: &mut Call) -> Result<Payload, HubError> {
    let error: Option<String> = call.arg(0)?;
    let allow_reconnect: bool = call.arg(1)?;
    let conn = &call.conn;
    conn.send(&HubMessage::Close(Close { error, allow_reconnect })).await;
    // Nothing after the Close message, not even this invocation's Completion.
    conn.outbound.finish(Finish::Drain);
    conn.request_close(CloseReason::CloseSent);
    Ok(call.null())
}

pub async fn stall(call: &mut Call) -> Result<Payload, HubError> {
    let ms: u64 = call.arg(0)?;
    call.conn.stall.start(Duration::from_millis(ms));
    tokio::time::sleep(Duration::from_millis(ms)).await;
    call.conn.touch();
    call.value(&ms)
}

pub async fn send_malformed(call: &mut Call) -> Result<Payload, HubError> {
    let bytes: &[u8] = match call.protocol() {
        HubProtocol::Json => b"{malformed\x1e",
        // Length 1, then 0xC1: a byte MessagePack never uses.
        HubProtocol::MessagePack => &[0x01, 0xC1],
    };
    call.conn.send_encoded(bytes, false).await;
    Ok(call.null())
}

pub async fn send_unknown_type(call: &mut Call) -> Result<Payload, HubError> {
    let bytes: &[u8] = match call.protocol() {
        HubProtocol::Json => b"{\"type\":99}\x1e",
        // [99, {}] with its VarInt length prefix.
        HubProtocol::MessagePack => &[0x03, 0x92, 0x63, 0x80],
    };
    call.conn.send_encoded(bytes, false).await;
    Ok(call.null())
}

pub async fn send_raw(call: &mut Call) -> Result<Payload, HubError> {
    let frames: Vec<String> = call.arg(0)?;
    let base64: bool = call.arg(1)?;
    let mut decoded = Vec::with_capacity(frames.len());
    for (i, frame) in frames.into_iter().enumerate() {
        if base64 {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(frame.as_bytes())
                .map_err(|e| HubError::Hub(format!("frame {i} is not valid base64: {e}")))?;
            decoded.push(bytes);
        } else {
            decoded.push(frame.into_bytes());
        }
    }
    for frame in decoded {
        if call.conn.outbound.send_raw(frame).await.is_err() {
            return Err(HubError::Internal("connection closed".into()));
        }
    }
    Ok(call.null())
}

pub async fn fail_next_negotiations(call: &mut Call) -> Result<Payload, HubError> {
    let count: u32 = call.arg(0)?;
    let status: u16 = call.arg(1)?;
    if !(400..=599).contains(&status) {
        return Err(HubError::Hub(format!("status must be an HTTP error status (400-599), not {status}")));
    }
    *lock(&call.app.faults.negotiations) = (count, status);
    Ok(call.null())
}

pub async fn fail_next_connects(call: &mut Call) -> Result<Payload, HubError> {
    let transport: String = call.arg(0)?;
    let count: u32 = call.arg(1)?;
    let kind = TransportKind::from_name(&transport).ok_or_else(|| {
        HubError::Hub(format!(
            "unknown transport '{transport}' (expected WebSockets, ServerSentEvents or LongPolling)"
        ))
    })?;
    lock(&call.app.faults.connects)[kind as usize] = count;
    Ok(call.null())
}
