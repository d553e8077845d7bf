//! Server-Sent Events: a `:` comment first (so the client's open event fires), then every
//! frame as one event of `data:` lines. Text only; the client sends with POST.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::app::App;
use crate::connections::{Claim, Connection};
use crate::outbound::Pull;

pub fn connect(app: Arc<App>, conn: Arc<Connection>, claim: Claim) -> Response {
    if claim == Claim::Again {
        return StatusCode::CONFLICT.into_response();
    }
    let generation = conn.outbound.attach();
    conn.set_active();
    conn.start_session(&app);
    let state = EventStream { guard: EndGuard { app, conn, generation, graceful: false }, preamble: true };
    let body = Body::from_stream(futures_util::stream::unfold(state, next_chunk));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache,no-store"),
            (header::PRAGMA, "no-cache"),
            (header::CONTENT_ENCODING, "identity"),
        ],
        body,
    )
        .into_response()
}

struct EventStream {
    guard: EndGuard,
    preamble: bool,
}

async fn next_chunk(mut state: EventStream) -> Option<(Result<Bytes, std::io::Error>, EventStream)> {
    if state.preamble {
        state.preamble = false;
        return Some((Ok(Bytes::from_static(b":\r\n")), state));
    }
    let conn = state.guard.conn.clone();
    match conn.outbound.pull(state.guard.generation, true).await {
        Pull::Frames(frames) => {
            conn.stall.wait().await;
            let mut out = Vec::new();
            for frame in &frames {
                write_event(&frame.data, &mut out);
            }
            Some((Ok(Bytes::from(out)), state))
        }
        Pull::End => {
            state.guard.graceful = true;
            None
        }
        Pull::Replaced => None,
        // An error makes the server cut the response without ending the chunked body.
        Pull::Abort => Some((Err(std::io::Error::other("DropTransport")), state)),
    }
}

/// One event: each line of `payload` as a `data: ` line (a trailing CR of a line is dropped),
/// then an empty line. Like ASP.NET's `ServerSentEventsMessageFormatter`.
fn write_event(payload: &[u8], out: &mut Vec<u8>) {
    if !payload.contains(&b'\n') {
        if !payload.is_empty() {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(payload);
            out.extend_from_slice(b"\r\n");
        }
    } else {
        for line in payload.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Reports the end of the event stream however it happens (including the client going away,
/// when the server drops the body).
struct EndGuard {
    app: Arc<App>,
    conn: Arc<Connection>,
    generation: u64,
    graceful: bool,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.conn.transport_ended(&self.app, self.generation, self.graceful);
    }
}

#[cfg(test)]
mod tests {
    use super::write_event;

    fn event(payload: &str) -> String {
        let mut out = Vec::new();
        write_event(payload.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_events_like_aspnet() {
        assert_eq!(event("{}\u{1e}"), "data: {}\u{1e}\r\n\r\n");
        assert_eq!(event("a\r\nb"), "data: a\r\ndata: b\r\n\r\n");
        assert_eq!(event("a\n"), "data: a\r\ndata: \r\n\r\n");
        assert_eq!(event(""), "\r\n");
    }
}
