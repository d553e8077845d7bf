//! The scripted server's Server-Sent Events and Long Polling side: a raw HTTP/1.1 server that
//! negotiates one transport, records what the client POSTs (split into single messages, so tests
//! read them like WebSocket frames) and, once the handshake request arrived, answers with the
//! script: each reply is one event (SSE) or one poll body (Long Polling).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use signalr_native::TransportKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::proxy::parse_head;
use super::Reply;

struct Script {
    transport: TransportKind,
    replies: Mutex<VecDeque<Reply>>,
    /// Becomes true once the handshake request was received.
    handshake: watch::Sender<bool>,
    /// The first poll answers at once (L-1).
    polled: Mutex<bool>,
    received: mpsc::UnboundedSender<Result<String, Vec<u8>>>,
}

pub async fn serve(
    listener: TcpListener,
    transport: TransportKind,
    replies: Vec<Reply>,
    received: mpsc::UnboundedSender<Result<String, Vec<u8>>>,
) {
    let script = Arc::new(Script {
        transport,
        replies: Mutex::new(replies.into()),
        handshake: watch::channel(false).0,
        polled: Mutex::new(false),
        received,
    });
    while let Ok((tcp, _)) = listener.accept().await {
        tokio::spawn(connection(tcp, script.clone()));
    }
}

async fn connection(tcp: TcpStream, script: Arc<Script>) {
    let (mut rd, mut wr) = tcp.into_split();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let request = parse_head(&buf[..head_end]);
        let length: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while buf.len() < head_end + length {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..head_end + length).skip(head_end).collect();
        let keep_going = match request.method.as_str() {
            "POST" if request.is_negotiate() => {
                let answer = format!(
                    r#"{{"negotiateVersion":1,"connectionId":"c","connectionToken":"t","availableTransports":[{{"transport":"{}","transferFormats":["Text","Binary"]}}]}}"#,
                    script.transport.name()
                );
                respond(&mut wr, "200 OK", "application/json", answer.as_bytes()).await
            }
            "POST" => {
                let text = request.header("content-type").is_some_and(|t| t.starts_with("text/plain"));
                for message in split(&body, text) {
                    let _ = script.received.send(message);
                }
                script.handshake.send_replace(true);
                respond(&mut wr, "200 OK", "text/plain", b"").await
            }
            "DELETE" => respond(&mut wr, "202 Accepted", "text/plain", b"").await,
            "GET" if request.is_event_stream() => return event_stream(rd, wr, script).await,
            "GET" => poll(&mut rd, &mut wr, &script).await,
            _ => respond(&mut wr, "405 Method Not Allowed", "text/plain", b"").await,
        };
        if !keep_going {
            return;
        }
    }
}

async fn respond(wr: &mut OwnedWriteHalf, status: &str, content_type: &str, body: &[u8]) -> bool {
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len());
    wr.write_all(head.as_bytes()).await.is_ok() && wr.write_all(body).await.is_ok()
}

async fn handshake_received(script: &Script) {
    let mut rx = script.handshake.subscribe();
    let _ = rx.wait_for(|seen| *seen).await;
}

/// Each text reply as one event; a Close reply ends the stream; then the stream stays open until
/// the client goes away.
async fn event_stream(mut rd: OwnedReadHalf, mut wr: OwnedWriteHalf, script: Arc<Script>) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n:\r\n";
    if wr.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    handshake_received(&script).await;
    loop {
        let reply = script.replies.lock().unwrap().pop_front();
        match reply {
            Some(Reply::Text(text)) => {
                let mut event = Vec::new();
                for line in text.split('\n') {
                    event.extend_from_slice(b"data: ");
                    event.extend_from_slice(line.as_bytes());
                    event.extend_from_slice(b"\r\n");
                }
                event.extend_from_slice(b"\r\n");
                if wr.write_all(&event).await.is_err() {
                    return;
                }
            }
            Some(Reply::Binary(_)) => panic!("Server-Sent Events carry text only"),
            Some(Reply::Close(..)) => return,
            None => break,
        }
    }
    let mut sink = [0u8; 1024];
    while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// The first poll answers at once; then one reply per poll; a Close reply answers 204; with the
/// script done a poll waits until the client gives up on it.
async fn poll(rd: &mut OwnedReadHalf, wr: &mut OwnedWriteHalf, script: &Script) -> bool {
    let first = !std::mem::replace(&mut *script.polled.lock().unwrap(), true);
    if first {
        return respond(wr, "200 OK", "application/octet-stream", b"").await;
    }
    handshake_received(script).await;
    let reply = script.replies.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Text(text)) => respond(wr, "200 OK", "application/octet-stream", text.as_bytes()).await,
        Some(Reply::Binary(bytes)) => respond(wr, "200 OK", "application/octet-stream", &bytes).await,
        Some(Reply::Close(..)) => respond(wr, "204 No Content", "text/plain", b"").await,
        None => {
            let mut sink = [0u8; 1024];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
            false
        }
    }
}

/// A POST body as single messages: text split after each record separator, binary by its
/// varint length prefixes.
fn split(body: &[u8], text: bool) -> Vec<Result<String, Vec<u8>>> {
    let mut out = Vec::new();
    if text {
        let text = String::from_utf8_lossy(body);
        for part in text.split_inclusive('\u{1e}') {
            out.push(Ok(part.to_string()));
        }
        return out;
    }
    let mut rest = body;
    while !rest.is_empty() {
        let (mut length, mut shift, mut used) = (0usize, 0, 0);
        for &b in rest {
            used += 1;
            length |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = (used + length).min(rest.len());
        out.push(Err(rest[..end].to_vec()));
        rest = &rest[end..];
    }
    out
}
