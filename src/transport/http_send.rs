//! Sending over HTTP (Server-Sent Events and Long Polling, S-5 / L-4): `POST {connect URL}` with
//! the framed messages as the body. One POST at a time; everything the session queued meanwhile
//! goes into the next POST's body (the session's writer hands over whole batches).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::Method;
use url::Url;

use crate::error::Result;
use crate::http::{status_error, TransportHttp};
use crate::protocol::Format;

/// the body's content type follows the transfer format.
const TEXT: &str = "text/plain;charset=UTF-8";
const BINARY: &str = "application/octet-stream";

type Post = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

pub(crate) struct PostSender {
    pub http: Arc<TransportHttp>,
    pub url: Url,
    content_type: &'static str,
    name: &'static str,
    /// The POST being sent. Kept here, not in the caller's future, so that a caller that gives up
    /// waiting (a cancelled inline write) does not lose it: the next call finishes it first.
    in_flight: Option<Post>,
}

impl PostSender {
    pub fn new(http: TransportHttp, url: Url, format: Format, name: &'static str) -> PostSender {
        let content_type = match format {
            Format::Json => TEXT,
            Format::MessagePack => BINARY,
        };
        PostSender { http: Arc::new(http), url, content_type, name, in_flight: None }
    }

    /// The handshake request is text even for MessagePack (W-2 holds for every transport).
    pub async fn send_handshake(&mut self, bytes: Bytes) -> Result<()> {
        self.finish_in_flight().await?;
        self.start(bytes, TEXT);
        self.finish_in_flight().await
    }

    /// Sends every frame in one POST. Cancel-safe: the frames leave `frames` when the POST is
    /// built, and an interrupted POST is completed by the next call.
    pub async fn send_batch(&mut self, frames: &mut VecDeque<Bytes>) -> Result<()> {
        self.finish_in_flight().await?;
        if frames.is_empty() {
            return Ok(());
        }
        let body = if frames.len() == 1 {
            frames.pop_front().unwrap_or_default()
        } else {
            let mut body = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
            for frame in frames.drain(..) {
                body.extend_from_slice(&frame);
            }
            body.freeze()
        };
        self.start(body, self.content_type);
        self.finish_in_flight().await
    }

    fn start(&mut self, body: Bytes, content_type: &'static str) {
        let http = self.http.clone();
        let url = self.url.clone();
        let name = self.name;
        self.in_flight = Some(Box::pin(async move {
            let response = http.send(Method::POST, &url, Some((body, content_type)), Some(http.timeout)).await?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(status_error(&format!("a {name} send (POST)"), &url, response.status()))
            }
        }));
    }

    async fn finish_in_flight(&mut self) -> Result<()> {
        let Some(post) = self.in_flight.as_mut() else { return Ok(()) };
        let outcome = post.await;
        self.in_flight = None;
        outcome
    }
}
