//! Stateful reconnect on the wire: Sequence + replay after a re-connect with the same token,
//! duplicates and pre-Sequence messages ignored, periodic Acks.

mod common;

use common::{within, Hub, Ws, RS};
use serde_json::{json, Value};

fn invocation(id: &str, target: &str, arguments: Value) -> String {
    format!("{}{RS}", json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments}))
}

/// A negotiated stateful-reconnect WebSocket after a handshake of `version`; also its path.
async fn stateful_connection(hub: &Hub, version: u32) -> (Ws, String) {
    let negotiation = hub.negotiate("hub", "?negotiateVersion=1&useStatefulReconnect=true").await;
    assert_eq!(negotiation["useStatefulReconnect"], true);
    let path = format!("/hub?id={}", negotiation["connectionToken"].as_str().unwrap());
    let mut ws = hub.websocket(&path).await;
    ws.send_text(&format!("{{\"protocol\":\"json\",\"version\":{version}}}{RS}")).await;
    assert_eq!(within("handshake", ws.next_text()).await, format!("{{}}{RS}"));
    (ws, path)
}

/// The next message that is neither a Ping nor an Ack.
async fn next_message(ws: &mut Ws, pending: &mut Vec<Value>) -> Value {
    loop {
        let message = within("message", ws.next_json(pending)).await;
        if message["type"] != 8 {
            return message;
        }
    }
}

#[tokio::test]
async fn replays_unacknowledged_messages_after_a_reconnect() {
    let hub = Hub::start(&[]).await;
    let (mut ws, path) = stateful_connection(&hub, 2).await;
    let mut pending = Vec::new();
    ws.send_text(&invocation("1", "SendToCaller", json!(["m", 1]))).await;
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 1, "target": "m", "arguments": [1]}));
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 3, "invocationId": "1", "result": null}));
    ws.send_text(&invocation("2", "DropTransport", json!([]))).await;
    assert_eq!(within("socket cut", ws.closed()).await, None);

    // Same token, no negotiate, no handshake.
    let mut ws = hub.websocket(&path).await;
    let mut pending = Vec::new();
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 9, "sequenceId": 1}));
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 1, "target": "m", "arguments": [1]}));
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 3, "invocationId": "1", "result": null}));
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 3, "invocationId": "2", "result": null}));

    // Ignored: sent before our Sequence. Then Sequence{1} and a replay of messages 1 and 2,
    // which the server already processed: both are dropped as duplicates.
    ws.send_text(&invocation("early", "Echo", json!(["early"]))).await;
    ws.send_text(&format!("{{\"type\":9,\"sequenceId\":1}}{RS}")).await;
    ws.send_text(&invocation("1", "SendToCaller", json!(["m", 1]))).await;
    ws.send_text(&invocation("2", "DropTransport", json!([]))).await;
    ws.send_text(&invocation("3", "Echo", json!(["fresh"]))).await;
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 3, "invocationId": "3", "result": "fresh"}));

    // The server acknowledges the client's three messages (ids 1, 2, 3).
    loop {
        let message = within("Ack", ws.next_json(&mut pending)).await;
        if message["type"] == 8 && message["sequenceId"] == 3 {
            break;
        }
    }
}

#[tokio::test]
async fn acks_release_the_replay_buffer() {
    let hub = Hub::start(&[]).await;
    let (mut ws, path) = stateful_connection(&hub, 2).await;
    let mut pending = Vec::new();
    ws.send_text(&invocation("1", "Echo", json!([1]))).await;
    assert_eq!(next_message(&mut ws, &mut pending).await["result"], 1);
    ws.send_text(&format!("{{\"type\":8,\"sequenceId\":1}}{RS}")).await;
    ws.send_text(&invocation("2", "DropTransport", json!([]))).await;
    assert_eq!(within("socket cut", ws.closed()).await, None);

    let mut ws = hub.websocket(&path).await;
    let mut pending = Vec::new();
    // Message 1 was acknowledged: the replay starts at 2 (DropTransport's Completion).
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 9, "sequenceId": 2}));
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 3, "invocationId": "2", "result": null}));
}

#[tokio::test]
async fn version_1_handshake_turns_stateful_reconnect_off() {
    let hub = Hub::start(&[]).await;
    let (mut ws, path) = stateful_connection(&hub, 1).await;
    ws.send_text(&invocation("1", "DropTransport", json!([]))).await;
    assert_eq!(within("socket cut", ws.closed()).await, None);
    // The connection is gone: a re-connect with the token is refused.
    match tokio_tungstenite::connect_async(format!("ws://{}{path}", hub.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn writers_wait_while_the_replay_buffer_is_over_its_limit() {
    let hub = Hub::start(&["--stateful-buffer-bytes", "10"]).await;
    let (mut ws, _) = stateful_connection(&hub, 2).await;
    let mut pending = Vec::new();
    ws.send_text(&invocation("f", "Flood", json!([3, 1]))).await;
    let flood = |i: u32| json!({"type": 1, "target": "Flood", "arguments": [i, "x"]});
    assert_eq!(within("Flood 0", ws.next_json(&mut pending)).await, flood(0));
    // Flood(0) put the buffer over 10 bytes: nothing trackable follows until the client acks.
    // The server's own periodic Ack of our invocation is not held back, so it comes first.
    assert_eq!(within("server Ack", ws.next_json(&mut pending)).await, json!({"type": 8, "sequenceId": 1}));
    for i in 1..3 {
        ws.send_text(&format!("{{\"type\":8,\"sequenceId\":{i}}}{RS}")).await;
        assert_eq!(next_message(&mut ws, &mut pending).await, flood(i));
    }
    ws.send_text(&format!("{{\"type\":8,\"sequenceId\":3}}{RS}")).await;
    assert_eq!(next_message(&mut ws, &mut pending).await, json!({"type": 3, "invocationId": "f", "result": 3}));
}
