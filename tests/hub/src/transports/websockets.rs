//! WebSockets: text frames for JSON, binary for MessagePack; both accepted from the client.
//! With stateful reconnect, a socket that drops without a close handshake leaves the connection
//! waiting for a new socket with the same token.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use crate::app::App;
use crate::connections::{Claim, Connection, Inbound};
use crate::outbound::Pull;

/// How long the server waits for the client's close frame after sending its own (ASP.NET's
/// `CloseTimeout`).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn upgrade(app: Arc<App>, conn: Arc<Connection>, claim: Claim, ws: WebSocketUpgrade) -> Response {
    let limit = app.opts.max_message_bytes.saturating_add(64 * 1024);
    ws.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| run(app, conn, claim, socket))
}

enum WriteEnd {
    /// The connection is over: close handshake.
    End,
    /// `DropTransport`: cut the socket.
    Abort,
    /// A newer socket took over this stateful connection.
    Replaced,
    /// Writing failed: the socket is gone.
    Failed,
}

async fn run(app: Arc<App>, conn: Arc<Connection>, claim: Claim, socket: WebSocket) {
    let resumed = claim == Claim::Again;
    let generation = if resumed { conn.outbound.attach_resumed() } else { conn.outbound.attach() };
    conn.set_active();
    if resumed {
        conn.deliver(Inbound::Resumed).await;
    } else {
        conn.start_session(&app);
    }
    let (mut sink, stream) = socket.split();
    let mut reader = tokio::spawn(read_loop(conn.clone(), stream));
    let graceful = tokio::select! {
        end = write_loop(&conn, &mut sink, generation) => {
            match end {
                WriteEnd::End => {
                    let close = CloseFrame { code: 1000, reason: "".into() };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut reader).await;
                    reader.abort();
                    true
                }
                WriteEnd::Abort | WriteEnd::Replaced | WriteEnd::Failed => {
                    // Both halves must be dropped for the socket to close.
                    reader.abort();
                    let _ = (&mut reader).await;
                    false
                }
            }
        }
        read = &mut reader => {
            let graceful = read.unwrap_or(false);
            if graceful {
                // Send the answer to the client's close frame.
                let _ = sink.close().await;
            }
            graceful
        }
    };
    // Before the socket closes, so a client that reacts to the close at once finds the
    // connection already disposed (404) or parked for its re-connect.
    conn.transport_ended(&app, generation, graceful);
    drop(sink);
}

/// Hands every data frame to the session; true when the client closed with a close frame.
/// Once the session takes no more data (it ended, e.g. after a hub method sent a Close), frames
/// are read and dropped: ending here would cut the socket before the writer has sent what the
/// session queued last (its Close message) and the close frame.
async fn read_loop(conn: Arc<Connection>, mut stream: SplitStream<WebSocket>) -> bool {
    let mut session_open = true;
    loop {
        conn.stall.wait().await;
        let data = match stream.next().await {
            Some(Ok(Message::Text(text))) => Bytes::from(text),
            Some(Ok(Message::Binary(data))) => data,
            Some(Ok(Message::Close(_))) => return true,
            Some(Ok(_)) => continue, // ping/pong are answered by the WebSocket layer
            Some(Err(e)) => {
                tracing::debug!(connection = %conn.id, "WebSocket read failed: {e}");
                return false;
            }
            None => return false,
        };
        if session_open && !conn.deliver(Inbound::Data(data)).await {
            session_open = false;
        }
    }
}

async fn write_loop(conn: &Connection, sink: &mut SplitSink<WebSocket, Message>, generation: u64) -> WriteEnd {
    loop {
        let frames = match conn.outbound.pull(generation, false).await {
            Pull::Frames(frames) => frames,
            Pull::End => return WriteEnd::End,
            Pull::Abort => return WriteEnd::Abort,
            Pull::Replaced => return WriteEnd::Replaced,
        };
        conn.stall.wait().await;
        for frame in frames {
            let message = if frame.binary {
                Message::Binary(frame.data.into())
            } else {
                match String::from_utf8(frame.data) {
                    Ok(text) => Message::Text(text.into()),
                    // SendRaw bytes that are not UTF-8 cannot go in a text frame.
                    Err(e) => Message::Binary(e.into_bytes().into()),
                }
            };
            if let Err(e) = sink.send(message).await {
                tracing::debug!(connection = %conn.id, "WebSocket write failed: {e}");
                return WriteEnd::Failed;
            }
        }
    }
}
