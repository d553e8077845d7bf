//! Negotiation, auth, redirects, headers, cookies, skip-negotiation and TLS against the test hub.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use signalr_native::{Error, HubConnectionBuilder, HubProtocol, TransportKind, TransportSet};
use support::*;

async fn request_info(c: &signalr_native::HubConnection) -> Value {
    serde_json::from_str(&call(c, "GetRequestInfo", "[]").await.unwrap()).unwrap()
}

#[tokio::test]
async fn headers_cookies_user_agent_and_query_reach_negotiate_and_connect() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let c = HubConnectionBuilder::new(hub.url("/hub?tenant=blue"))
            .protocol(protocol)
            .header("X-Custom", "hello")
            .build()
            .unwrap();
        c.start().await.unwrap();
        let info = request_info(&c).await;
        assert_eq!(info["transport"], "WebSockets");
        assert_eq!(info["protocol"], protocol.name());
        assert_eq!(info["handshakeVersion"], 1);
        let (neg, conn) = (&info["negotiate"], &info["connect"]);
        for r in [neg, conn] {
            assert_eq!(r["headers"]["x-custom"], "hello", "{r}");
            assert_eq!(r["query"]["tenant"], "blue", "{r}");
            assert!(r["headers"]["user-agent"].as_str().unwrap().starts_with("Microsoft SignalR/"), "{r}");
            assert_eq!(r["headers"]["x-requested-with"], "XMLHttpRequest", "{r}");
        }
        assert_eq!(neg["query"]["negotiateVersion"], "1");
        assert!(conn["query"]["id"].as_str().is_some_and(|id| !id.is_empty()), "{conn}");
        // The affinity cookie set by negotiate is replayed on the WebSocket upgrade (A-8).
        assert!(conn["cookies"]["hub-affinity"].as_str().is_some_and(|v| !v.is_empty()), "{conn}");
        // The connection token is not the connection id (negotiate version 1, N-7).
        assert_ne!(conn["query"]["id"].as_str(), c.connection_id().as_deref());
        c.stop().await;
    }
}

#[tokio::test]
async fn negotiate_version_0_uses_the_connection_id_as_token() {
    let hub = Hub::start();
    let c = HubConnectionBuilder::new(hub.url("/hub?negotiateVersion=0")).build().unwrap();
    c.start().await.unwrap();
    let info = request_info(&c).await;
    assert_eq!(info["negotiate"]["query"]["negotiateVersion"], "0");
    let id = c.connection_id().unwrap();
    assert_eq!(info["connect"]["query"]["id"].as_str(), Some(id.as_str()));
    c.stop().await;
}

#[tokio::test]
async fn auth_hub_needs_a_token_and_the_provider_is_asked_for_every_request() {
    let hub = Hub::start();
    let e = HubConnectionBuilder::new(hub.url("/auth-hub")).build().unwrap().start().await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");

    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let c = HubConnectionBuilder::new(hub.url("/auth-hub"))
        .access_token_provider(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok(format!("user{n}")) }
        })
        .reconnect_delays(vec![Duration::ZERO])
        .build()
        .unwrap();
    let mut events = Events::attach(&c);
    c.start().await.unwrap();
    // Negotiate got token 0, the WebSocket connect token 1 (N-12, A-3).
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The hub names the user after one of this start's tokens.
    let user = call(&c, "GetUser", "[]").await.unwrap();
    assert!(user == r#""user0""# || user == r#""user1""#, "{user}");
    let info = request_info(&c).await;
    assert_eq!(info["negotiate"]["headers"]["authorization"], "Bearer user0");
    assert_eq!(info["connect"]["headers"]["authorization"], "Bearer user1");
    // A reconnect asks again for both.
    let _ = call(&c, "DropTransport", "[]").await;
    assert!(matches!(events.next().await, Event::Reconnecting(_)));
    assert!(matches!(events.next().await, Event::Reconnected(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let user = call(&c, "GetUser", "[]").await.unwrap();
    assert!(user == r#""user2""# || user == r#""user3""#, "{user}");
    let info = request_info(&c).await;
    assert_eq!(info["connect"]["headers"]["authorization"], "Bearer user3");
    c.stop().await;

    // A provider error fails start with that error.
    let c = HubConnectionBuilder::new(hub.url("/auth-hub"))
        .access_token_provider(|| async { Err(Error::Unauthorized("no credentials".into())) })
        .build()
        .unwrap();
    assert_eq!(c.start().await.unwrap_err(), Error::Unauthorized("no credentials".into()));
}

#[tokio::test]
async fn redirect_moves_to_the_new_url_with_the_new_token() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let c = HubConnectionBuilder::new(hub.url("/redirect-hub"))
            .protocol(protocol)
            .access_token_provider(|| async { Ok("original".to_string()) })
            .build()
            .unwrap();
        c.start().await.unwrap();
        assert_eq!(call(&c, "GetUser", "[]").await.unwrap(), r#""redirected-user""#);
        let info = request_info(&c).await;
        assert_eq!(info["negotiate"]["headers"]["authorization"], "Bearer redirected-user");
        assert_eq!(info["connect"]["headers"]["authorization"], "Bearer redirected-user");
        c.stop().await;
    }
}

#[tokio::test]
async fn redirect_loop_gives_up_after_100_redirects() {
    let hub = Hub::start();
    let c = HubConnectionBuilder::new(hub.url("/redirect-hub?loop=1")).build().unwrap();
    let e = c.start().await.unwrap_err();
    assert!(matches!(&e, Error::Negotiation(m) if m.contains("redirection limit")), "{e:?}");
}

#[tokio::test]
async fn negotiate_http_errors_fail_start() {
    let hub = Hub::start();
    let e = HubConnectionBuilder::new(hub.url("/no-such-hub")).build().unwrap().start().await.unwrap_err();
    assert!(matches!(&e, Error::Negotiation(m) if m.contains("404")), "{e:?}");
    let admin = connect(&hub, HubProtocol::Json).await;
    call(&admin, "FailNextNegotiations", "[1,401]").await.unwrap();
    let e = builder(&hub, HubProtocol::Json).build().unwrap().start().await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    admin.stop().await;
}

#[tokio::test]
async fn skip_negotiation_connects_straight_to_the_websocket() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let url = hub.url("/hub").replacen("http", "ws", 1);
        let c = HubConnectionBuilder::new(url)
            .protocol(protocol)
            .skip_negotiation(true)
            .transports(TransportSet::only(TransportKind::WebSockets))
            .build()
            .unwrap();
        c.start().await.unwrap();
        assert_eq!(c.connection_id(), None);
        assert_eq!(call(&c, "Add", "[20,22]").await.unwrap(), "42");
        c.stop().await;
    }
}

#[tokio::test]
async fn tls_with_an_extra_trusted_ca() {
    let hub = Hub::with_tls(&[]);
    assert!(hub.base.starts_with("https://"), "{}", hub.base);
    let cert = hub.cert.clone().unwrap();
    for protocol in PROTOCOLS {
        let c = HubConnectionBuilder::new(hub.url("/hub")).protocol(protocol).trust_ca_pem_file(&cert).build().unwrap();
        c.start().await.unwrap();
        assert_eq!(call(&c, "Echo", r#"["secure"]"#).await.unwrap(), r#""secure""#);
        c.stop().await;
    }
    // Also as PEM bytes, and with skip-negotiation over wss://.
    let pem = std::fs::read(&cert).unwrap();
    let c = HubConnectionBuilder::new(hub.url("/hub").replacen("https", "wss", 1))
        .skip_negotiation(true)
        .transports(TransportSet::only(TransportKind::WebSockets))
        .trust_ca_pem(pem)
        .build()
        .unwrap();
    c.start().await.unwrap();
    assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
    c.stop().await;
    // Without the CA the certificate is not trusted.
    let e = HubConnectionBuilder::new(hub.url("/hub")).build().unwrap().start().await.unwrap_err();
    assert!(matches!(&e, Error::Negotiation(m) if m.contains("failed")), "{e:?}");
}

/// An HTTP server that answers every request with `body` (200, JSON) and reports each request line.
async fn negotiate_server(body: &'static str) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hub", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else { return };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request).lines().next().unwrap_or("").to_string();
                let _ = tx.send(line);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn negotiate_error_field_fails_start_with_that_message() {
    let (url, mut requests) = negotiate_server(r#"{"error":"Hub is closed for maintenance."}"#).await;
    let c = HubConnectionBuilder::new(url).build().unwrap();
    let e = c.start().await.unwrap_err();
    assert_eq!(e, Error::Negotiation("Hub is closed for maintenance.".into()));
    assert!(recv(&mut requests, "request").await.starts_with("POST /hub/negotiate?negotiateVersion=1 "));
    assert!(requests.try_recv().is_err(), "no transport was attempted");
}

#[tokio::test]
async fn only_transports_the_server_advertises_and_the_client_allows_are_tried() {
    // The server offers Server-Sent Events only, the client allows WebSockets only: nothing is
    // attempted, and the error says why each transport was skipped.
    let (url, mut requests) = negotiate_server(
        r#"{"negotiateVersion":1,"connectionId":"c","connectionToken":"t",
            "availableTransports":[{"transport":"ServerSentEvents","transferFormats":["Text"]}]}"#,
    )
    .await;
    let e = HubConnectionBuilder::new(&url)
        .transports(TransportSet::only(TransportKind::WebSockets))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Error::Negotiation(
            "None of the transports supported by the client are supported by the server. \
             ServerSentEvents: disabled by the client."
                .into()
        )
    );
    assert!(recv(&mut requests, "request").await.starts_with("POST "));
    assert!(requests.try_recv().is_err(), "no transport was attempted");

    // MessagePack cannot use a Text-only WebSockets entry, and nothing else is offered.
    let (url, mut requests) = negotiate_server(
        r#"{"negotiateVersion":1,"connectionId":"c","connectionToken":"t",
            "availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}"#,
    )
    .await;
    let e = HubConnectionBuilder::new(&url).protocol(HubProtocol::MessagePack).build().unwrap().start().await.unwrap_err();
    assert!(matches!(&e, Error::Negotiation(m) if m.contains("None of the transports")), "{e:?}");
    assert!(recv(&mut requests, "request").await.starts_with("POST "));
    assert!(requests.try_recv().is_err(), "no transport was attempted");
}
