//! WebSockets transport (W-1 … W-7) over tokio-tungstenite, TLS through the shared rustls config.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::ConnectRequest;
use crate::error::{with_sources, Error, Result};
use crate::protocol::{Chunk, Format};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Read buffer per connection: small, so that idle connections stay cheap; frames larger than
/// this are still read (the buffer grows while a frame is assembled).
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// How long a client-side close may take before the socket is simply dropped (W-6).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn connect(request: ConnectRequest) -> Result<(Reader, Writer)> {
    let mut url = request.url;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(Error::InvalidArgument(format!("unsupported URL scheme '{other}'"))),
    };
    url.set_scheme(scheme)
        .map_err(|()| Error::InvalidArgument(format!("cannot use scheme {scheme} for {url}")))?;

    let mut upgrade = url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::InvalidArgument(format!("invalid WebSocket URL {url}: {e}")))?;
    let token = request.auth.current().map(|t| ("Authorization".to_string(), crate::http::bearer(&t)));
    for (name, value) in request.headers.iter().chain(token.iter()) {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Error::InvalidArgument(format!("invalid header name '{name}': {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| Error::InvalidArgument(format!("invalid value for header {name}: {e}")))?;
        upgrade.headers_mut().append(name, value);
    }

    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(None)
        .max_frame_size(None);
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        upgrade,
        Some(config),
        true,
        Some(Connector::Rustls(request.tls)),
    );
    let (socket, _response) = match tokio::time::timeout(request.timeout, connecting).await {
        Err(_) => {
            return Err(Error::Timeout(format!(
                "WebSocket connect to {} took longer than {} ms",
                crate::http::without_query(&url),
                request.timeout.as_millis()
            )))
        }
        Ok(Err(e)) => return Err(connect_error(&url, e)),
        Ok(Ok(ok)) => ok,
    };
    let (sink, stream) = socket.split();
    Ok((Reader { stream }, Writer { sink, format: request.format }))
}

fn connect_error(url: &url::Url, e: WsError) -> Error {
    // The query holds the connection token (and maybe more): keep it out of messages (N-7).
    let url = crate::http::without_query(url);
    match e {
        WsError::Http(response) => {
            let status = response.status();
            match status.as_u16() {
                401 => Error::Unauthorized(format!("WebSocket upgrade to {url} returned 401")),
                404 => Error::Transport(format!(
                    "WebSocket upgrade to {url} returned 404: the connection id is unknown to the server"
                )),
                409 => Error::Transport(format!(
                    "WebSocket upgrade to {url} returned 409: the connection already has a WebSocket"
                )),
                _ => Error::Transport(format!("WebSocket upgrade to {url} returned HTTP {status}")),
            }
        }
        other => Error::Transport(format!("WebSocket connect to {url} failed: {}", with_sources(&other))),
    }
}

pub(crate) struct Reader {
    stream: SplitStream<Socket>,
}

impl Reader {
    pub async fn recv(&mut self) -> Option<Result<Chunk>> {
        loop {
            let message = match self.stream.next().await {
                None => {
                    return Some(Err(Error::Transport(
                        "WebSocket closed without a close frame".into(),
                    )))
                }
                Some(Err(WsError::ConnectionClosed)) => return None,
                Some(Err(e)) => return Some(Err(Error::Transport(format!("WebSocket failed: {e}")))),
                Some(Ok(m)) => m,
            };
            match message {
                // SAFETY: tungstenite checked the text message as UTF-8 (its `Utf8Bytes`).
                Message::Text(text) => return Some(Ok(unsafe { Chunk::utf8_unchecked(Bytes::from(text)) })),
                Message::Binary(bytes) => return Some(Ok(Chunk::from(bytes))),
                Message::Close(frame) => return close_outcome(frame),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }
}

/// W-5: code 1000 (or no code) is a clean close; anything else is an error with code and reason.
fn close_outcome(frame: Option<CloseFrame>) -> Option<Result<Chunk>> {
    match frame {
        None => None,
        Some(f) if f.code == CloseCode::Normal => None,
        Some(f) => Some(Err(Error::Transport(format!(
            "WebSocket closed with status code: {} ({}).",
            u16::from(f.code),
            if f.reason.is_empty() { "no reason given" } else { f.reason.as_str() }
        )))),
    }
}

pub(crate) struct Writer {
    sink: SplitSink<Socket, Message>,
    format: Format,
}

impl Writer {
    pub async fn send_text(&mut self, bytes: Bytes) -> Result<()> {
        let text = utf8(bytes)?;
        self.sink.send(Message::Text(text)).await.map_err(send_error)
    }

    pub async fn send_batch(&mut self, frames: &mut VecDeque<Bytes>) -> Result<()> {
        while let Some(frame) = frames.front() {
            let message = match self.format {
                Format::Json => Message::Text(utf8(frame.clone())?),
                Format::MessagePack => Message::Binary(frame.clone()),
            };
            self.sink.feed(message).await.map_err(send_error)?;
            // No await point between the feed completing and this: a frame is never sent twice.
            frames.pop_front();
        }
        self.sink.flush().await.map_err(send_error)
    }

    pub async fn close(&mut self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: Utf8Bytes::from_static("") };
        let closing = async {
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            let _ = self.sink.close().await;
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
    }
}

fn utf8(bytes: Bytes) -> Result<Utf8Bytes> {
    Utf8Bytes::try_from(bytes)
        .map_err(|e| Error::Protocol(format!("outgoing text frame is not valid UTF-8: {e}")))
}

fn send_error(e: WsError) -> Error {
    Error::Transport(format!("WebSocket send failed: {e}"))
}
