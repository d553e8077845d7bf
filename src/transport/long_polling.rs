//! Long Polling transport (L-1 … L-6): the server's messages are the bodies of successive `GET`s;
//! the client sends with `POST` (see `http_send`) and says goodbye with `DELETE`. Text and binary.
//!
//! The poll loop runs in its own task and hands bodies over through a small channel: reading
//! stays cancel-safe (an abandoned `recv` never drops a poll that already carried data) and the
//! next poll is already waiting on the server while the previous body is being dispatched.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::http_send::PostSender;
use super::ConnectRequest;
use crate::error::{Error, Result};
use crate::http::{status_error, TransportHttp};

/// How long the client waits for one poll before it simply polls again (L-2; the server answers
/// an idle poll after 90 s by default).
const POLL_TIMEOUT: Duration = Duration::from_secs(100);

/// Most DELETE time at stop: the server may be gone, and stop must not hang on it.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);

/// Poll bodies received and not yet dispatched.
const RECEIVED_BODIES: usize = 4;

pub(crate) async fn connect(request: ConnectRequest) -> Result<(Reader, Writer)> {
    let http = TransportHttp::new(request.http, &request.headers, request.auth, request.timeout)?;
    // L-1: the first poll returns at once; the server uses it to set the connection up.
    let response = http.send(Method::GET, &poll_url(&request.url), None, Some(request.timeout)).await?;
    if response.status() != StatusCode::OK {
        return Err(status_error("the first Long Polling request", &request.url, response.status()));
    }
    let closed = CancellationToken::new();
    let sender = PostSender::new(http, request.url, request.format, "LongPolling");
    let (tx, rx) = mpsc::channel(RECEIVED_BODIES);
    let task = tokio::spawn(poll_loop(sender.http.clone(), sender.url.clone(), tx, closed.clone()));
    Ok((Reader { bodies: rx, task }, Writer { sender, closed }))
}

/// L-1: `_=<ms>` defeats caches on the way.
fn poll_url(url: &Url) -> Url {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let mut url = url.clone();
    url.query_pairs_mut().append_pair("_", &ms.to_string());
    url
}

/// Polls until the server ends the connection (204), a poll fails, or the client closes.
async fn poll_loop(
    http: std::sync::Arc<TransportHttp>,
    url: Url,
    bodies: mpsc::Sender<Result<Bytes>>,
    closed: CancellationToken,
) {
    loop {
        let polling = async {
            let response = http.send(Method::GET, &poll_url(&url), None, Some(POLL_TIMEOUT)).await?;
            match response.status() {
                StatusCode::NO_CONTENT => Ok(None),
                StatusCode::OK => response.bytes().await.map(Some).map_err(|e| {
                    if e.is_timeout() {
                        Error::Timeout("a Long Polling response timed out".into())
                    } else {
                        Error::Transport(format!("reading a Long Polling response failed: {e}"))
                    }
                }),
                status => Err(status_error("a Long Polling request", &url, status)),
            }
        };
        let outcome = tokio::select! {
            biased;
            _ = closed.cancelled() => return,
            outcome = polling => outcome,
        };
        let body = match outcome {
            // L-2: the server ended the connection; the channel closing says so (a clean close).
            Ok(None) => return,
            Ok(Some(body)) => body,
            // L-2: a poll that timed out on the client is simply sent again.
            Err(Error::Timeout(_)) => continue,
            Err(e) => {
                let _ = bodies.send(Err(e)).await;
                return;
            }
        };
        // An empty body: the server's poll timeout, poll again.
        if !body.is_empty() && bodies.send(Ok(body)).await.is_err() {
            return;
        }
    }
}

pub(crate) struct Reader {
    bodies: mpsc::Receiver<Result<Bytes>>,
    task: JoinHandle<()>,
}

impl Reader {
    /// The next poll body; `None` once the server answered 204 or the client closed. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Bytes>> {
        self.bodies.recv().await
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) struct Writer {
    pub sender: PostSender,
    closed: CancellationToken,
}

impl Writer {
    /// L-5: stop polling, then `DELETE {connect URL}` (any answer, 404 included, is fine).
    pub async fn close(&mut self) {
        self.closed.cancel();
        let http = &self.sender.http;
        let timeout = DELETE_TIMEOUT.min(http.timeout);
        match http.send(Method::DELETE, &self.sender.url, None, Some(timeout)).await {
            Ok(r) => tracing::debug!("Long Polling DELETE answered {}", r.status()),
            Err(e) => tracing::debug!("Long Polling DELETE failed: {e}"),
        }
    }
}
