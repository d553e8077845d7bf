//! One complete (re)start: negotiate (following redirects), open a transport in the server's order
//! of preference, and perform the hub handshake. Shared by `start` and every reconnect attempt.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::Inner;
use crate::builder::AccessTokenProvider;
use crate::error::{with_sources, Error, Result};
use crate::http::{request_headers, Bearer};
use crate::negotiate::{self, Negotiated, MAX_REDIRECTS};
use crate::protocol::{HandshakeRequest, MessageReader};
use crate::transport::{self, ConnectRequest, TransportKind, TransportReader, TransportWriter};

pub(crate) struct Established {
    pub reader: TransportReader,
    pub writer: TransportWriter,
    /// Holds whatever arrived after the handshake response (H-3).
    pub messages: MessageReader,
    pub connection_id: Option<String>,
    /// Set when stateful reconnect is active (negotiated, on WebSockets, handshake version 2):
    /// where a dropped transport re-connects.
    pub resume: Option<Resume>,
}

/// Where and how a stateful connection re-opens its WebSocket (SR-7): the same connect URL (same
/// token), a fresh access token, no negotiate, no handshake.
pub(crate) struct Resume {
    url: Url,
    tokens: Tokens,
}

/// Opens a new WebSocket for a stateful connection whose transport dropped.
pub(crate) async fn reopen(inner: &Inner, resume: &Resume) -> Result<(TransportReader, TransportWriter)> {
    open(inner, TransportKind::WebSockets, resume.url.clone(), &resume.tokens).await
}

const STOPPED_DURING_NEGOTIATION: &str = "The connection was stopped during negotiation.";
const STOPPED_DURING_CONNECT: &str = "The connection was stopped while the transport was starting.";
const STOPPED_DURING_HANDSHAKE: &str = "The connection was stopped before the hub handshake could complete.";

/// Where tokens come from during one start: the user's provider, or the fixed token a negotiate
/// redirect handed over (N-8).
enum Tokens {
    Provider(Option<AccessTokenProvider>),
    Fixed(String),
}

impl Tokens {
    async fn get(&self) -> Result<Option<String>> {
        let token = match self {
            Tokens::Provider(None) => return Ok(None),
            Tokens::Provider(Some(provider)) => provider().await?,
            Tokens::Fixed(token) => token.clone(),
        };
        Ok((!token.is_empty()).then_some(token))
    }

    /// What renews the token after a 401: the user's provider, never a redirect's fixed token.
    fn provider(&self) -> Option<AccessTokenProvider> {
        match self {
            Tokens::Provider(provider) => provider.clone(),
            Tokens::Fixed(_) => None,
        }
    }
}

async fn cancelable<T>(stop: &CancellationToken, what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        biased;
        _ = stop.cancelled() => Err(Error::Canceled(what.into())),
        r = f => r,
    }
}

pub(crate) async fn establish(inner: &Inner, stop: &CancellationToken) -> Result<Established> {
    let config = &inner.config;
    let mut tokens = Tokens::Provider(config.access_token.clone());
    if config.skip_negotiation {
        let (reader, writer) = cancelable(
            stop,
            STOPPED_DURING_CONNECT,
            open(inner, TransportKind::WebSockets, config.url.clone(), &tokens),
        )
        .await?;
        return handshake(inner, reader, writer, None, None, stop).await;
    }

    let (mut url, mut negotiated) =
        cancelable(stop, STOPPED_DURING_NEGOTIATION, negotiate_all(inner, &mut tokens)).await?;
    let format = config.protocol.format();
    let candidates =
        negotiate::candidates(&negotiated, config.transports, format, config.protocol.transfer_format());
    // What happened to each transport, in the server's order (T-2).
    let mut outcomes: Vec<String> = Vec::new();
    let mut failures: Vec<Error> = Vec::new();
    for candidate in candidates {
        let kind = match candidate {
            Ok(kind) => kind,
            Err(skipped) => {
                tracing::debug!("skipping transport {skipped}");
                outcomes.push(skipped);
                continue;
            }
        };
        if !failures.is_empty() {
            // The failed attempt used up the connection token: negotiate afresh (T-2).
            (url, negotiated) =
                cancelable(stop, STOPPED_DURING_NEGOTIATION, negotiate_all(inner, &mut tokens)).await?;
        }
        let connect_url = negotiate::connect_url(&url, negotiated.connection_token.as_deref());
        match cancelable(stop, STOPPED_DURING_CONNECT, open(inner, kind, connect_url.clone(), &tokens)).await {
            Ok((reader, writer)) => {
                // SR-1: only WebSockets can re-connect to the same connection.
                let resume = (negotiated.stateful_reconnect && kind == TransportKind::WebSockets)
                    .then_some(Resume { url: connect_url, tokens });
                return handshake(inner, reader, writer, negotiated.connection_id, resume, stop).await;
            }
            Err(e @ Error::Canceled(_)) => return Err(e),
            Err(e) => {
                tracing::debug!("{kind} failed to start: {e}");
                outcomes.push(format!("{kind} failed: {e}"));
                failures.push(e);
            }
        }
    }
    match failures.len() {
        0 if outcomes.is_empty() => Err(Error::Negotiation(
            "None of the transports supported by the client are supported by the server.".into(),
        )),
        0 => Err(Error::Negotiation(format!(
            "None of the transports supported by the client are supported by the server. {}",
            outcomes.join(" ")
        ))),
        // One attempt: its error as it is (an Unauthorized stays Unauthorized).
        1 => Err(failures.pop().unwrap_or_else(|| Error::Internal("no transport failure recorded".into()))),
        _ => {
            let text = format!(
                "Unable to connect to the server with any of the available transports. {}",
                outcomes.join(" ")
            );
            if failures.iter().all(|e| matches!(e, Error::Unauthorized(_))) {
                Err(Error::Unauthorized(text))
            } else {
                Err(Error::Transport(text))
            }
        }
    }
}

/// Negotiates, following redirects (N-8), and returns the final URL with its answer.
async fn negotiate_all(inner: &Inner, tokens: &mut Tokens) -> Result<(Url, Negotiated)> {
    let mut url = inner.config.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let token = tokens.get().await?;
        let body = post_negotiate(inner, &url, token.as_deref()).await?;
        match negotiate::parse_response(&body, inner.config.stateful_reconnect.is_some())? {
            Ok(negotiated) => return Ok((url, negotiated)),
            Err((next, access_token)) => {
                url = next;
                if let Some(token) = access_token {
                    *tokens = Tokens::Fixed(token);
                }
            }
        }
    }
    Err(Error::Negotiation(format!("Negotiate redirection limit exceeded ({MAX_REDIRECTS} redirects).")))
}

async fn post_negotiate(inner: &Inner, base: &Url, token: Option<&str>) -> Result<Bytes> {
    let mut url = negotiate::negotiate_url(base);
    if inner.config.stateful_reconnect.is_some() {
        negotiate::ask_for_stateful_reconnect(&mut url);
    }
    let mut request = inner.http.client.post(url.clone()).timeout(inner.config.http_timeout).body("");
    for (name, value) in request_headers(&inner.config.headers, token, &inner.cookies) {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            Error::Timeout(format!("negotiate request to {url} timed out"))
        } else {
            Error::Negotiation(format!("negotiate request to {url} failed: {}", with_sources(&e)))
        }
    })?;
    inner.cookies.store_from(response.headers());
    let status = response.status();
    match status.as_u16() {
        200 => {}
        401 => return Err(Error::Unauthorized(format!("negotiate at {url} returned 401 Unauthorized"))),
        404 => {
            return Err(Error::Negotiation(format!(
                "negotiate at {url} returned 404 Not Found: is this a SignalR hub endpoint, and does \
                 no proxy block it?"
            )))
        }
        _ => return Err(Error::Negotiation(format!("negotiate at {url} returned HTTP {status}"))),
    }
    response
        .bytes()
        .await
        .map_err(|e| Error::Negotiation(format!("reading the negotiate response from {url} failed: {e}")))
}

async fn open(
    inner: &Inner,
    kind: TransportKind,
    url: Url,
    tokens: &Tokens,
) -> Result<(TransportReader, TransportWriter)> {
    // the token provider is asked again for every connect; the HTTP transports keep that
    // token for their requests and ask again after a 401.
    let token = tokens.get().await?;
    let request = ConnectRequest {
        url,
        headers: request_headers(&inner.config.headers, None, &inner.cookies),
        auth: Arc::new(Bearer::new(token, tokens.provider())),
        format: inner.config.protocol.format(),
        tls: inner.http.tls.clone(),
        http: inner.http.client.clone(),
        timeout: inner.config.http_timeout,
    };
    let opened = transport::connect(kind, request).await?;
    inner.set_transport(kind);
    Ok(opened)
}

async fn handshake(
    inner: &Inner,
    mut reader: TransportReader,
    mut writer: TransportWriter,
    connection_id: Option<String>,
    resume: Option<Resume>,
    stop: &CancellationToken,
) -> Result<Established> {
    let config = &inner.config;
    let mut messages = MessageReader::new(config.protocol, config.max_message_bytes);
    // D-1: version 2 asks the server for stateful reconnect; 1 otherwise (older servers).
    let version = if resume.is_some() { 2 } else { 1 };
    let exchange = async {
        let request = HandshakeRequest { protocol: config.protocol.name().to_string(), version };
        let mut bytes = Vec::new();
        request.write(&mut bytes);
        writer.send_handshake(Bytes::from(bytes)).await?;
        loop {
            match messages.next_handshake_response() {
                Ok(Some(response)) => return Ok(response),
                Ok(None) => {}
                Err(e) => return Err(Error::Handshake(format!("invalid handshake response: {e}"))),
            }
            match reader.recv().await {
                Some(Ok(chunk)) => messages.push(chunk),
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(Error::Handshake(
                        "the server closed the connection before the handshake completed".into(),
                    ))
                }
            }
        }
    };
    let timed = async {
        match tokio::time::timeout(config.handshake_timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(format!(
                "the server did not answer the handshake within {} ms",
                config.handshake_timeout.as_millis()
            ))),
        }
    };
    let outcome = cancelable(stop, STOPPED_DURING_HANDSHAKE, timed).await;
    let outcome = outcome.and_then(|response| match response.error {
        Some(error) => Err(Error::Handshake(format!("Server returned handshake error: {error}"))),
        None => Ok(()),
    });
    if let Err(e) = outcome {
        writer.close().await;
        return Err(e);
    }
    Ok(Established { reader, writer, messages, connection_id, resume })
}
