//! Handshake edge cases and the wire format, against a scripted server over each transport (the
//! test hub always answers handshakes correctly), and WebSocket close codes.

#[macro_use]
mod support;

use signalr_native::{ConnectionState, Error, HubProtocol};
use support::*;

const RS: &str = "\u{1e}";

json_pair_tests! {
    async fn handshake_response_and_an_invocation_in_one_frame(pair) {
        let mut server = ScriptedServer::start_on(
            pair.transport,
            vec![Reply::Text(format!(r#"{{}}{RS}{{"type":1,"target":"Hello","arguments":[1]}}{RS}"#))],
        )
        .await;
        let c = server.builder(pair.protocol).build().unwrap();
        let mut calls = Calls::attach(&c, "hello");
        c.start().await.unwrap();
        assert_eq!(text(&calls.next().await), "[1]");
        // W-2/H-1: the handshake request, then (H-8) a Ping right after the handshake (none on
        // Long Polling, L-6).
        assert_eq!(server.next_frame().await, Ok(format!(r#"{{"protocol":"json","version":1}}{RS}"#)));
        if !pair.is_long_polling() {
            assert_eq!(server.next_frame().await, Ok(format!(r#"{{"type":6}}{RS}"#)));
        }
        c.stop().await;
        // C-4: stop sends a Close message.
        assert_eq!(server.next_frame().await, Ok(format!(r#"{{"type":7}}{RS}"#)));
    }
}

messagepack_pair_tests! {
    async fn messagepack_handshake_in_a_binary_frame_followed_by_two_messages(pair) {
        let mut frame = format!("{{}}{RS}").into_bytes();
        for n in [1u8, 2] {
            let body = [0x95, 0x01, 0x80, 0xc0, 0xa5, b'H', b'e', b'l', b'l', b'o', 0x91, n];
            frame.push(body.len() as u8);
            frame.extend_from_slice(&body);
        }
        let mut server = ScriptedServer::start_on(pair.transport, vec![Reply::Binary(frame)]).await;
        let c = server.builder(pair.protocol).build().unwrap();
        let mut calls = Calls::attach(&c, "Hello");
        c.start().await.unwrap();
        assert_eq!(text(&calls.next().await), "[1]");
        assert_eq!(text(&calls.next().await), "[2]");
        // The handshake request is text even for MessagePack (W-2); the ping is binary.
        assert_eq!(server.next_frame().await, Ok(format!(r#"{{"protocol":"messagepack","version":1}}{RS}"#)));
        if !pair.is_long_polling() {
            assert_eq!(server.next_frame().await, Err(vec![0x02, 0x91, 0x06]));
        }
        c.stop().await;
        // C-4: the Close message, binary: [7] framed.
        assert_eq!(server.next_frame().await, Err(vec![0x04, 0x93, 0x07, 0xc0, 0xc2]));
    }
}

json_pair_tests! {
    async fn handshake_error_fails_start_with_the_server_text_and_no_onclose(pair) {
        let reply = Reply::Text(format!(r#"{{"error":"Requested protocol 'json' is not available."}}{RS}"#));
        let server = ScriptedServer::start_on(pair.transport, vec![reply]).await;
        let c = server.builder(pair.protocol).build().unwrap();
        let mut events = Events::attach(&c);
        let e = c.start().await.unwrap_err();
        assert!(matches!(&e, Error::Handshake(m) if m.contains("Requested protocol 'json' is not available.")), "{e:?}");
        assert_eq!(c.state(), ConnectionState::Disconnected);
        assert_eq!(c.transport(), None);
        assert!(events.none_pending());
    }
}

json_pair_tests! {
    async fn a_close_message_instead_of_a_handshake_response_fails_start(pair) {
        let server = ScriptedServer::start_on(pair.transport, vec![Reply::Text(format!(r#"{{"type":7}}{RS}"#))]).await;
        let c = server.builder(pair.protocol).build().unwrap();
        let e = c.start().await.unwrap_err();
        assert!(matches!(e, Error::Handshake(_)), "{e:?}");
        assert_eq!(c.state(), ConnectionState::Disconnected);
    }
}

#[tokio::test]
async fn websocket_close_codes_other_than_1000_are_errors_with_code_and_reason() {
    let server = ScriptedServer::start(vec![Reply::Text(format!("{{}}{RS}")), Reply::Close(1011, "server exploded".into())]).await;
    let c = server.builder(HubProtocol::Json).build().unwrap();
    let mut events = Events::attach(&c);
    c.start().await.unwrap();
    let Event::Closed(Some(e)) = events.next().await else { panic!("expected a close with error") };
    assert!(matches!(&e, Error::Transport(m) if m.contains("1011") && m.contains("server exploded")), "{e:?}");

    let server = ScriptedServer::start(vec![Reply::Text(format!("{{}}{RS}")), Reply::Close(1000, String::new())]).await;
    let c = server.builder(HubProtocol::Json).build().unwrap();
    let mut events = Events::attach(&c);
    c.start().await.unwrap();
    assert_eq!(events.next().await, Event::Closed(None));
}

#[tokio::test]
async fn stop_during_a_reconnect_attempt_aborts_it_and_ends_disconnected() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    // First connection: handshake, then the socket is cut. Second (the reconnect attempt): the
    // TCP connection is accepted and never answered, so the attempt hangs in the upgrade.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/hub", listener.local_addr().unwrap());
    let (attempt_tx, attempt_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let _ = ws.next().await;
        ws.send(Message::text(format!("{{}}{RS}"))).await.unwrap();
        drop(ws);
        let (held, _) = listener.accept().await.unwrap();
        let _ = attempt_tx.send(());
        std::future::pending::<()>().await;
        drop(held);
    });
    let c = support::ScriptedServer::builder_for(&url, HubProtocol::Json)
        .reconnect_delays(vec![std::time::Duration::ZERO])
        .build()
        .unwrap();
    let mut events = Events::attach(&c);
    c.start().await.unwrap();
    assert!(matches!(events.next().await, Event::Reconnecting(_)));
    attempt_rx.await.unwrap();
    assert_eq!(c.state(), ConnectionState::Reconnecting);
    c.stop().await;
    assert_eq!(c.state(), ConnectionState::Disconnected);
    assert_eq!(events.next().await, Event::Closed(None));
    server.abort();
}

/// The next text frame that is not a Ping, parsed.
async fn next_message(server: &mut ScriptedServer) -> serde_json::Value {
    loop {
        let frame = server.next_frame().await.expect("a text frame");
        let body = frame.strip_suffix(RS).expect("frame ends with the record separator");
        assert!(!body.contains(RS), "one message per frame here: {frame:?}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        if v["type"] != 6 {
            return v;
        }
    }
}

json_pair_tests! {
    async fn wire_format_of_streams_uploads_and_cancel(pair) {
        let mut server = ScriptedServer::start_on(pair.transport, vec![Reply::Text(format!("{{}}{RS}"))]).await;
        let c = server.builder(pair.protocol).build().unwrap();
        c.start().await.unwrap();
        let _handshake = server.next_frame().await;

        // 21.19: cancelling a stream writes CancelInvocation with its id, after the StreamInvocation.
        let stream = c.stream("Counter", json("[5,10]")).await.unwrap();
        let m = next_message(&mut server).await;
        assert_eq!(m, serde_json::json!({"type":4,"invocationId":"0","target":"Counter","arguments":[5,10]}));
        drop(stream);
        assert_eq!(next_message(&mut server).await, serde_json::json!({"type":5,"invocationId":"0"}));

        // 21.20: the invocation lists streamIds, items use the stream id, completion has no result.
        let (_pending, mut uploads) = c.invoke_with_uploads("Sum", json("[\"x\"]"), 2).await.unwrap();
        let m = next_message(&mut server).await;
        assert_eq!(
            m,
            serde_json::json!({"type":1,"invocationId":"1","target":"Sum","arguments":["x"],"streamIds":["2","3"]})
        );
        let second = uploads.pop().unwrap();
        let first = uploads.pop().unwrap();
        first.send(json("7")).unwrap();
        assert_eq!(next_message(&mut server).await, serde_json::json!({"type":2,"invocationId":"2","item":7}));
        first.complete().unwrap();
        assert_eq!(next_message(&mut server).await, serde_json::json!({"type":3,"invocationId":"2"}));
        second.fail("broken").unwrap();
        assert_eq!(next_message(&mut server).await, serde_json::json!({"type":3,"invocationId":"3","error":"broken"}));

        // 21.21 / M-2: ids keep counting across kinds; send carries no id.
        c.send("Echo", json("[1]")).await.unwrap();
        assert_eq!(next_message(&mut server).await, serde_json::json!({"type":1,"target":"Echo","arguments":[1]}));
        let _pending = c.invoke_with_uploads("Echo", json("[2]"), 0).await.unwrap();
        assert_eq!(next_message(&mut server).await["invocationId"], "4");
        c.stop().await;
    }
}

#[tokio::test]
async fn calls_blocked_by_a_peer_that_stopped_reading_fail_when_the_connection_times_out() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    // After the handshake the server neither reads nor writes: TCP buffers fill and writes block.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/hub", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let _ = ws.next().await;
        ws.send(Message::text(format!("{{}}{RS}"))).await.unwrap();
        std::future::pending::<()>().await;
        drop(ws);
    });
    let c = support::ScriptedServer::builder_for(&url, HubProtocol::Json)
        .server_timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let mut events = Events::attach(&c);
    c.start().await.unwrap();
    let big = json(&format!("[\"{}\"]", "x".repeat(1 << 20)));
    let mut calls = Vec::new();
    for _ in 0..64 {
        let c = c.clone();
        let args = big.clone();
        calls.push(tokio::spawn(async move { c.invoke("Echo", args).await }));
    }
    let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
    assert!(matches!(cause, Error::Timeout(_)), "{cause:?}");
    for call in calls {
        // Hang guard: without the fix these calls stay blocked in the write forever.
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), call)
            .await
            .expect("a call stayed blocked after the connection closed")
            .unwrap();
        assert!(matches!(outcome, Err(Error::Closed(_)) | Err(Error::InvalidState(_))), "{outcome:?}");
    }
    server.abort();
}
