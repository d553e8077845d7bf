//! Handshake, invocations in both protocols, error texts, pings, timeouts, server-side close.

mod common;

use common::{within, Hub, RS};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn handshake_answer(hub: &Hub, request: &str) -> String {
    let token = hub.negotiate("hub", "?negotiateVersion=1").await["connectionToken"].as_str().unwrap().to_owned();
    let mut ws = hub.websocket(&format!("/hub?id={token}")).await;
    ws.send_text(request).await;
    let answer = within("handshake answer", ws.next_text()).await;
    // After a failed handshake the server closes the socket normally.
    assert_eq!(within("close", ws.closed()).await, Some(1000));
    answer
}

#[tokio::test]
async fn handshake_errors_use_aspnet_texts() {
    let hub = Hub::start(&[]).await;
    assert_eq!(
        handshake_answer(&hub, &format!("{{\"protocol\":\"xml\",\"version\":1}}{RS}")).await,
        format!("{{\"error\":\"The protocol 'xml' is not supported.\"}}{RS}")
    );
    assert_eq!(
        handshake_answer(&hub, &format!("{{\"protocol\":\"json\",\"version\":3}}{RS}")).await,
        format!("{{\"error\":\"The server does not support version 3 of the 'json' protocol.\"}}{RS}")
    );
    assert_eq!(
        handshake_answer(&hub, &format!("{{\"version\":1}}{RS}")).await,
        format!("{{\"error\":\"An unexpected error occurred during connection handshake.\"}}{RS}")
    );
}

#[tokio::test]
async fn messagepack_over_server_sent_events_is_refused_in_the_handshake() {
    let hub = Hub::start(&[]).await;
    let token = hub.negotiate("hub", "?negotiateVersion=1").await["connectionToken"].as_str().unwrap().to_owned();
    let path = format!("/hub?id={token}");
    let mut events = hub.open("GET", &path, &[("Accept", "text/event-stream"), ("Connection", "close")]).await;
    let handshake = format!("{{\"protocol\":\"messagepack\",\"version\":1}}{RS}");
    assert_eq!(hub.http("POST", &path, &[], handshake.as_bytes()).await.status, 200);
    let mut raw = Vec::new();
    within("event stream end", tokio::io::AsyncReadExt::read_to_end(&mut events, &mut raw)).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let expected = format!(
        "data: {{\"error\":\"Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format.\"}}{RS}\r\n\r\n"
    );
    assert!(text.contains(&expected), "{text}");
}

#[tokio::test]
async fn json_invocations() {
    let hub = Hub::start(&[]).await;
    let mut ws = hub.json_connection().await;
    let mut pending = Vec::new();
    let echo = json!({"type": 1, "invocationId": "1", "target": "echo", "arguments": [{"a": [1, "x"]}]});
    assert_eq!(ws.call(&mut pending, echo).await, json!({"type": 3, "invocationId": "1", "result": {"a": [1, "x"]}}));
    let add = json!({"type": 1, "invocationId": "2", "target": "Add", "arguments": [2, 3]});
    assert_eq!(ws.call(&mut pending, add).await["result"], 5);
}

#[tokio::test]
async fn invocation_errors_use_aspnet_texts() {
    let hub = Hub::start(&[]).await;
    let mut ws = hub.json_connection().await;
    let mut pending = Vec::new();
    let cases = [
        ("Fail", json!(["boom"]), "An unexpected error occurred invoking 'Fail' on the server. HubException: boom"),
        ("Nope", json!([]), "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist."),
        ("Add", json!([1]), "Failed to invoke 'Add' due to an error on the server."),
        ("Add", json!(["a", 1]), "Failed to invoke 'Add' due to an error on the server."),
        (
            "Counter",
            json!([1, 0]),
            "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation.",
        ),
        (
            "Sum",
            json!([]),
            "An unexpected error occurred invoking 'Sum' on the server. HubException: Client sent 0 stream(s), Hub method expects 1.",
        ),
    ];
    for (i, (target, arguments, error)) in cases.into_iter().enumerate() {
        let message = json!({"type": 1, "invocationId": i.to_string(), "target": target, "arguments": arguments});
        let answer = ws.call(&mut pending, message).await;
        assert_eq!(answer, json!({"type": 3, "invocationId": i.to_string(), "error": error}));
    }
    let stream = json!({"type": 4, "invocationId": "s", "target": "Echo", "arguments": [1]});
    assert_eq!(
        ws.call(&mut pending, stream).await["error"],
        "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation."
    );
}

#[tokio::test]
async fn streams_uploads_and_cancel() {
    let hub = Hub::start(&[]).await;
    let mut ws = hub.json_connection().await;
    let mut pending = Vec::new();
    ws.send_text(&format!("{{\"type\":4,\"invocationId\":\"s\",\"target\":\"Counter\",\"arguments\":[2,0]}}{RS}")).await;
    assert_eq!(ws.next_json(&mut pending).await, json!({"type": 2, "invocationId": "s", "item": 0}));
    assert_eq!(ws.next_json(&mut pending).await, json!({"type": 2, "invocationId": "s", "item": 1}));
    assert_eq!(ws.next_json(&mut pending).await, json!({"type": 3, "invocationId": "s"}));

    // A long stream stopped by CancelInvocation still gets its Completion.
    ws.send_text(&format!("{{\"type\":4,\"invocationId\":\"c\",\"target\":\"Counter\",\"arguments\":[1000000,1]}}{RS}")).await;
    assert_eq!(ws.next_json(&mut pending).await["item"], 0);
    ws.send_text(&format!("{{\"type\":5,\"invocationId\":\"c\"}}{RS}")).await;
    loop {
        let message = ws.next_json(&mut pending).await;
        if message["type"] == 3 {
            assert_eq!(message, json!({"type": 3, "invocationId": "c"}));
            break;
        }
    }

    let upload = |id: &str, stream: &str, tail: Value| {
        let mut messages = vec![json!({"type": 1, "invocationId": id, "target": "Sum", "arguments": [], "streamIds": [stream]})];
        messages.extend(tail.as_array().unwrap().iter().cloned());
        messages.iter().map(|m| format!("{m}{RS}")).collect::<String>()
    };
    ws.send_text(&upload("u", "7", json!([
        {"type": 2, "invocationId": "7", "item": 1},
        {"type": 2, "invocationId": "7", "item": 41},
        {"type": 3, "invocationId": "7"},
    ])))
    .await;
    assert_eq!(ws.next_json(&mut pending).await, json!({"type": 3, "invocationId": "u", "result": 42}));
    ws.send_text(&upload("e", "8", json!([{"type": 3, "invocationId": "8", "error": "broken"}]))).await;
    assert_eq!(
        ws.next_json(&mut pending).await["error"],
        "An unexpected error occurred invoking 'Sum' on the server. HubException: broken"
    );
}

#[tokio::test]
async fn client_results() {
    let hub = Hub::start(&[]).await;
    let mut ws = hub.json_connection().await;
    let mut pending = Vec::new();
    ws.send_text(&format!("{{\"type\":1,\"invocationId\":\"1\",\"target\":\"AskClient\",\"arguments\":[\"double\",21]}}{RS}")).await;
    let ask = ws.next_json(&mut pending).await;
    assert_eq!(ask["target"], "double");
    assert_eq!(ask["arguments"], json!([21]));
    let id = ask["invocationId"].as_str().unwrap().to_owned();
    ws.send_text(&format!("{{\"type\":3,\"invocationId\":\"{id}\",\"result\":42}}{RS}")).await;
    assert_eq!(ws.next_json(&mut pending).await, json!({"type": 3, "invocationId": "1", "result": 42}));

    ws.send_text(&format!("{{\"type\":1,\"invocationId\":\"2\",\"target\":\"AskClient\",\"arguments\":[\"double\",1]}}{RS}")).await;
    let id = ws.next_json(&mut pending).await["invocationId"].as_str().unwrap().to_owned();
    ws.send_text(&format!("{{\"type\":3,\"invocationId\":\"{id}\",\"error\":\"no\"}}{RS}")).await;
    assert_eq!(
        ws.next_json(&mut pending).await["error"],
        "An unexpected error occurred invoking 'AskClient' on the server. HubException: no"
    );
}

#[tokio::test]
async fn messagepack_echo_over_websockets() {
    let hub = Hub::start(&[]).await;
    let token = hub.negotiate("hub", "?negotiateVersion=1").await["connectionToken"].as_str().unwrap().to_owned();
    let mut ws = hub.websocket(&format!("/hub?id={token}")).await;
    ws.send_text(&format!("{{\"protocol\":\"messagepack\",\"version\":1}}{RS}")).await;
    // The JSON handshake answer arrives in a binary frame for MessagePack (W-3).
    assert_eq!(within("handshake", ws.next_frame()).await, Message::binary(b"{}\x1e".to_vec()));
    // [1, {}, "1", "Echo", [42]] with its length prefix.
    let mut invocation = vec![0x0c, 0x95, 0x01, 0x80, 0xa1, b'1', 0xa4];
    invocation.extend_from_slice(b"Echo");
    invocation.extend_from_slice(&[0x91, 0x2a]);
    ws.send_binary(&invocation).await;
    // [3, {}, "1", 3, 42]: a Completion with a result.
    let completion = vec![0x07, 0x95, 0x03, 0x80, 0xa1, b'1', 0x03, 0x2a];
    loop {
        match within("completion", ws.next_frame()).await {
            Message::Binary(data) if data.as_ref() == [0x02, 0x91, 0x06] => continue, // Ping
            Message::Binary(data) => {
                assert_eq!(data.as_ref(), completion.as_slice());
                break;
            }
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn pings_follow_the_keep_alive_interval() {
    let hub = Hub::start(&["--keep-alive-ms", "50"]).await;
    let mut ws = hub.json_connection().await;
    let ping = within("ping", ws.next_text()).await;
    assert_eq!(ping, format!("{{\"type\":6}}{RS}"));
}

#[tokio::test]
async fn client_timeout_starts_with_the_first_ping_and_ends_with_a_close_message() {
    let hub = Hub::start(&["--client-timeout-ms", "100", "--keep-alive-ms", "20000"]).await;
    let mut ws = hub.json_connection().await;
    ws.send_text(&format!("{{\"type\":6}}{RS}")).await;
    let close = within("Close message", ws.next_text()).await;
    assert_eq!(close, format!("{{\"type\":7,\"error\":\"Connection closed with an error.\",\"allowReconnect\":true}}{RS}"));
    assert_eq!(within("socket close", ws.closed()).await, Some(1000));
}

/// While an invocation waits behind a running one, the hub reads nothing more from the client
/// (its pings included); like ASP.NET it stops the client timeout while it processes a message.
#[tokio::test]
async fn client_timeout_waits_while_an_invocation_queues_behind_a_running_one() {
    let hub = Hub::start(&["--client-timeout-ms", "300", "--keep-alive-ms", "20000"]).await;
    let mut ws = hub.json_connection().await;
    let mut pending = Vec::new();
    ws.send_text(&format!("{{\"type\":6}}{RS}")).await;
    let delay = json!({"type": 1, "invocationId": "1", "target": "Delay", "arguments": [1200]});
    let add = json!({"type": 1, "invocationId": "2", "target": "Add", "arguments": [1, 2]});
    ws.send_text(&format!("{delay}{RS}{add}{RS}")).await;
    // Add waits for Delay (one invocation at a time) for 4x the client timeout: no timeout then.
    let first = within("first answer", ws.next_json(&mut pending)).await;
    assert_eq!(first, json!({"type": 3, "invocationId": "1", "result": 1200}));
    assert_eq!(within("second answer", ws.next_json(&mut pending)).await, json!({"type": 3, "invocationId": "2", "result": 3}));
    // Then the clock runs again: a client that stays silent is timed out.
    let close = within("Close message", ws.next_json(&mut pending)).await;
    assert_eq!(close, json!({"type": 7, "error": "Connection closed with an error.", "allowReconnect": true}));
}

#[tokio::test]
async fn handshake_timeout_cancels_the_handshake() {
    let hub = Hub::start(&["--handshake-timeout-ms", "50"]).await;
    let token = hub.negotiate("hub", "?negotiateVersion=1").await["connectionToken"].as_str().unwrap().to_owned();
    let mut ws = hub.websocket(&format!("/hub?id={token}")).await;
    assert_eq!(within("handshake error", ws.next_text()).await, format!("{{\"error\":\"Handshake was canceled.\"}}{RS}"));
}

#[tokio::test]
async fn client_close_is_answered_with_close() {
    let hub = Hub::start(&[]).await;
    let mut ws = hub.json_connection().await;
    ws.send_text(&format!("{{\"type\":7}}{RS}")).await;
    assert_eq!(within("Close", ws.next_text()).await, format!("{{\"type\":7}}{RS}"));
    assert_eq!(within("socket close", ws.closed()).await, Some(1000));
}

#[tokio::test]
async fn malformed_input_closes_with_an_error() {
    let hub = Hub::start(&[]).await;
    let mut ws = hub.json_connection().await;
    ws.send_text(&format!("{{\"type\":\"x\"}}{RS}")).await;
    let close = within("Close message", ws.next_text()).await;
    assert!(close.starts_with("{\"type\":7,\"error\":\"Connection closed with an error.\""), "{close}");
}

#[tokio::test]
async fn drop_transport_cuts_the_socket_without_a_close_frame() {
    let hub = Hub::start(&[]).await;
    let mut ws = hub.json_connection().await;
    ws.send_text(&format!("{{\"type\":1,\"invocationId\":\"1\",\"target\":\"DropTransport\",\"arguments\":[]}}{RS}")).await;
    assert_eq!(within("socket cut", ws.closed()).await, None);
}
