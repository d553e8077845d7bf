//! Transport-level behaviour and status codes, as ASP.NET Core serves them.

mod common;

use common::{within, Hub, RS};
use tokio::io::AsyncReadExt;

/// A Long Polling connection past its first poll and the JSON handshake; returns its path.
async fn long_polling_connection(hub: &Hub) -> String {
    let path = format!("/hub?id={}", token(hub).await);
    assert_eq!(hub.http("GET", &path, &[], b"").await.status, 200);
    let handshake = format!("{{\"protocol\":\"json\",\"version\":1}}{RS}");
    assert_eq!(hub.http("POST", &path, &[], handshake.as_bytes()).await.status, 200);
    assert_eq!(within("handshake poll", hub.http("GET", &path, &[], b"")).await.text(), format!("{{}}{RS}"));
    path
}

async fn token(hub: &Hub) -> String {
    hub.negotiate("hub", "?negotiateVersion=1").await["connectionToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unknown_or_missing_ids() {
    let hub = Hub::start(&[]).await;
    let unknown = hub.http("GET", "/hub?id=nope", &[], b"").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.text(), "No Connection with that ID");
    assert_eq!(hub.http("POST", "/hub?id=nope", &[], b"x").await.status, 404);
    assert_eq!(hub.http("DELETE", "/hub?id=nope", &[], b"").await.status, 404);
    let missing = hub.http("GET", "/hub", &[], b"").await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.text(), "Connection ID required");
    let ws_unknown = tokio_tungstenite::connect_async(format!("ws://{}/hub?id=nope", hub.addr)).await;
    match ws_unknown {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn second_websocket_is_409_and_other_transport_400() {
    let hub = Hub::start(&[]).await;
    let token = token(&hub).await;
    let _first = hub.websocket(&format!("/hub?id={token}")).await;
    match tokio_tungstenite::connect_async(format!("ws://{}/hub?id={token}", hub.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 409),
        other => panic!("expected 409, got {other:?}"),
    }
    let poll = hub.http("GET", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(poll.status, 400);
    assert_eq!(poll.text(), "Cannot change transports mid-connection");
    let post = hub.http("POST", &format!("/hub?id={token}"), &[], b"{}").await;
    assert_eq!(post.status, 405);
}

#[tokio::test]
async fn long_polling_first_poll_returns_at_once_then_polls_carry_messages_and_204_after_close() {
    let hub = Hub::start(&[]).await;
    let path = format!("/hub?id={}", token(&hub).await);
    let first = within("first poll", hub.http("GET", &path, &[], b"")).await;
    assert_eq!(first.status, 200);
    assert!(first.body.is_empty());
    assert_eq!(first.header("cache-control"), Some("no-cache, no-store"));

    let handshake = format!("{{\"protocol\":\"json\",\"version\":1}}{RS}");
    assert_eq!(hub.http("POST", &path, &[], handshake.as_bytes()).await.status, 200);
    let answer = within("handshake poll", hub.http("GET", &path, &[], b"")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), format!("{{}}{RS}"));

    let close = format!("{{\"type\":1,\"invocationId\":\"1\",\"target\":\"CloseWithError\",\"arguments\":[\"bye\",false]}}{RS}");
    assert_eq!(hub.http("POST", &path, &[], close.as_bytes()).await.status, 200);
    let closing = within("Close message", hub.http("GET", &path, &[], b"")).await;
    assert_eq!(closing.status, 200);
    let message: serde_json::Value = serde_json::from_str(closing.text().trim_end_matches(RS)).unwrap();
    assert_eq!(message, serde_json::json!({"type": 7, "error": "bye"}));
    let done = within("204 poll", hub.http("GET", &path, &[], b"")).await;
    assert_eq!(done.status, 204);
    assert_eq!(hub.http("GET", &path, &[], b"").await.status, 404);
}

#[tokio::test]
async fn long_polling_delete_ends_the_connection() {
    let hub = Hub::start(&[]).await;
    let path = long_polling_connection(&hub).await;
    assert_eq!(hub.http("DELETE", &path, &[], b"").await.status, 202);
    assert_eq!(hub.http("GET", &path, &[], b"").await.status, 404);
}

#[tokio::test]
async fn of_two_concurrent_polls_one_answers_204_and_the_other_gets_the_data() {
    let hub = Hub::start(&[]).await;
    let path = long_polling_connection(&hub).await;

    // Whichever poll the server sees second replaces the other, which answers 204 (ASP.NET).
    let mut a = tokio::spawn(read_all(hub.open("GET", &path, &[("Connection", "close")]).await));
    let mut b = tokio::spawn(read_all(hub.open("GET", &path, &[("Connection", "close")]).await));
    let (first, still_pending) = within("one poll answered", async {
        tokio::select! {
            answer = &mut a => (answer.unwrap(), b),
            answer = &mut b => (answer.unwrap(), a),
        }
    })
    .await;
    assert!(first.starts_with("HTTP/1.1 204"), "{first}");

    let echo = format!("{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[5]}}{RS}");
    hub.http("POST", &path, &[], echo.as_bytes()).await;
    let second = within("data poll", still_pending).await.unwrap();
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(second.ends_with(&format!("{{\"type\":3,\"invocationId\":\"1\",\"result\":5}}{RS}")), "{second}");
}

async fn read_all(mut stream: tokio::net::TcpStream) -> String {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn server_sent_events_start_with_a_comment_and_carry_events() {
    let hub = Hub::start(&[]).await;
    let token = token(&hub).await;
    let path = format!("/hub?id={token}");
    let mut events = hub.open("GET", &path, &[("Accept", "text/event-stream")]).await;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains(":\r\n") {
        let n = within("SSE preamble", events.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "stream ended");
        received.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&received).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"));
    assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"));
    // The body's first bytes are the comment line (inside the first chunk).
    let body_start = head.find("\r\n\r\n").unwrap() + 4;
    assert!(head[body_start..].contains(":\r\n"));

    let handshake = format!("{{\"protocol\":\"json\",\"version\":1}}{RS}");
    assert_eq!(hub.http("POST", &path, &[], handshake.as_bytes()).await.status, 200);
    let expected = format!("data: {{}}{RS}\r\n\r\n");
    while !String::from_utf8_lossy(&received).contains(&expected) {
        let n = within("handshake event", events.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "stream ended");
        received.extend_from_slice(&chunk[..n]);
    }
    // A second event stream for the same connection is refused.
    let again = hub.http("GET", &path, &[("Accept", "text/event-stream")], b"").await;
    assert_eq!(again.status, 409);
}
