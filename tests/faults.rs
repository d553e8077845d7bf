//! Every fault the test hub injects, plus automatic reconnect and stop in the middle of things.

#[macro_use]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use signalr_native::{ConnectionState, Error, HubProtocol, RetryContext};
use support::*;

fn is_transport(e: &Error) -> bool {
    matches!(e, Error::Transport(_))
}

pair_tests! {
    async fn drop_transport_without_reconnect_closes_with_the_cause_and_fails_pending_calls(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut events = Events::attach(&c);
        // Pending at the loss: a stream (the hub runs those concurrently) and the invoke itself.
        let mut stream = c.stream("Counter", json("[10,60000]")).await.unwrap();
        let e = call(&c, "DropTransport", "[]").await.unwrap_err();
        let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
        assert!(is_transport(&cause), "{cause:?}");
        assert_eq!(e, Error::Closed(Some(Arc::new(cause.clone()))));
        assert_eq!(stream.next().await, Some(Err(Error::Closed(Some(Arc::new(cause))))));
        assert_eq!(c.state(), ConnectionState::Disconnected);
    }
}

pair_tests! {
    async fn drop_transport_with_reconnect_gets_a_new_connection_and_keeps_handlers(pair) {
        let hub = Hub::start();
        let c = builder(&hub, pair).reconnect_delays(vec![Duration::ZERO; 3]).build().unwrap();
        let mut events = Events::attach(&c);
        let mut calls = Calls::attach(&c, "Note");
        c.start().await.unwrap();
        let first_id = c.connection_id().unwrap();
        let mut stream = c.stream("Counter", json("[10,60000]")).await.unwrap();
        let _ = call(&c, "DropTransport", "[]").await.unwrap_err();
        let Event::Reconnecting(reason) = events.next().await else { panic!("expected reconnecting") };
        assert!(is_transport(&reason), "{reason:?}");
        // E-1 / R-7: pending calls failed before reconnecting began, never replayed.
        assert_eq!(stream.next().await, Some(Err(Error::Closed(Some(Arc::new(reason))))));
        let Event::Reconnected(Some(new_id)) = events.next().await else { panic!("expected reconnected") };
        assert_ne!(new_id, first_id);
        assert_eq!(c.connection_id(), Some(new_id.clone()));
        assert_eq!(c.state(), ConnectionState::Connected);
        assert_eq!(call(&c, "GetConnectionId", "[]").await.unwrap(), format!("\"{new_id}\""));
        call(&c, "SendToCaller", r#"["note","after"]"#).await.unwrap();
        assert_eq!(text(&calls.next().await), r#"["after"]"#);
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));
    }
}

pair_tests! {
    async fn close_with_error_and_allow_reconnect_follows_the_server(pair) {
        let hub = Hub::start();
        // allowReconnect=true with a policy: reconnect.
        let c = builder(&hub, pair).reconnect_delays(vec![Duration::ZERO]).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        let _ = call(&c, "CloseWithError", r#"["going away",true]"#).await;
        assert_eq!(events.next().await, Event::Reconnecting(Error::ServerClosed("going away".into())));
        assert!(matches!(events.next().await, Event::Reconnected(Some(_))));

        // allowReconnect=false: closed with the server's error even though a policy is set.
        let _ = call(&c, "CloseWithError", r#"["bye",false]"#).await;
        assert_eq!(events.next().await, Event::Closed(Some(Error::ServerClosed("bye".into()))));
        assert_eq!(c.state(), ConnectionState::Disconnected);

        // No policy: allowReconnect=true closes with the error.
        let c = connect(&hub, pair).await;
        let mut events = Events::attach(&c);
        let _ = call(&c, "CloseWithError", r#"["x",true]"#).await;
        assert_eq!(events.next().await, Event::Closed(Some(Error::ServerClosed("x".into()))));

        // Close without an error: a clean close.
        let c = connect(&hub, pair).await;
        let mut events = Events::attach(&c);
        let _ = call(&c, "CloseWithError", "[null,false]").await;
        assert_eq!(events.next().await, Event::Closed(None));
        let e = Error::ServerClosed("x".into()).to_string();
        assert_eq!(e, "Server returned an error on close: x");
    }
}

pair_tests! {
    async fn server_timeout_closes_a_stalled_connection_but_not_a_pinging_one(pair) {
        let hub = Hub::with_args(&["--keep-alive-ms", "50"]);
        let c = builder(&hub, pair).server_timeout(Duration::from_millis(1000)).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        // Pings every 50 ms keep a 1 s server timeout satisfied through a 1.5 s wait.
        assert_eq!(call(&c, "Delay", "[1500]").await.unwrap(), "1500");
        if pair.is_long_polling() {
            // L-6: Long Polling keeps itself alive; no server timeout runs, so a silent server
            // (no pings on Long Polling, and a stall) does not close the connection.
            assert_eq!(call(&c, "Stall", "[2500]").await.unwrap(), "2500");
            assert_eq!(c.state(), ConnectionState::Connected);
            c.stop().await;
            assert_eq!(events.next().await, Event::Closed(None));
            return;
        }
        // A stall silences the server (no pings) for longer than the timeout.
        let e = call(&c, "Stall", "[5000]").await.unwrap_err();
        let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
        assert!(matches!(&cause, Error::Timeout(m) if m.contains("Server timeout elapsed")), "{cause:?}");
        assert_eq!(e, Error::Closed(Some(Arc::new(cause))));
    }
}

pair_tests! {
    async fn server_timeout_with_reconnect_reconnects(pair) {
        let hub = Hub::with_args(&["--keep-alive-ms", "50"]);
        let c = builder(&hub, pair)
            .server_timeout(Duration::from_millis(1000))
            .reconnect_delays(vec![Duration::ZERO])
            .build()
            .unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        if pair.is_long_polling() {
            // L-6: no server timeout on Long Polling: the stall ends and nothing reconnects.
            assert_eq!(call(&c, "Stall", "[2500]").await.unwrap(), "2500");
            c.stop().await;
            assert_eq!(events.next().await, Event::Closed(None));
            return;
        }
        let _ = call(&c, "Stall", "[3000]").await;
        assert!(matches!(events.next().await, Event::Reconnecting(Error::Timeout(_))));
        assert!(matches!(events.next().await, Event::Reconnected(Some(_))));
        c.stop().await;
    }
}

pair_tests! {
    async fn keep_alive_pings_keep_the_hub_from_dropping_an_idle_client(pair) {
        let hub = Hub::with_args(&["--client-timeout-ms", "1000"]);
        // Client idle (waiting on Delay) for 2.5x the hub's client timeout: only pings keep it alive.
        let c = builder(&hub, pair).keep_alive_interval(Duration::from_millis(100)).build().unwrap();
        c.start().await.unwrap();
        assert_eq!(call(&c, "Delay", "[2500]").await.unwrap(), "2500");
        c.stop().await;

        // Control: with a keep-alive slower than the hub's timeout the hub drops the idle client.
        let c = builder(&hub, pair).keep_alive_interval(Duration::from_secs(30)).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        if pair.is_long_polling() {
            // ...except on Long Polling, which needs no pings (K-5): the hub keeps the idle client.
            assert_eq!(call(&c, "Delay", "[2500]").await.unwrap(), "2500");
            c.stop().await;
            assert_eq!(events.next().await, Event::Closed(None));
            return;
        }
        assert!(matches!(call(&c, "Delay", "[5000]").await, Err(Error::Closed(_))));
        assert!(matches!(events.next().await, Event::Closed(_)));
    }
}

pair_tests! {
    async fn malformed_message_closes_with_an_error_naming_the_problem(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut events = Events::attach(&c);
        let e = call(&c, "SendMalformed", "[]").await.unwrap_err();
        let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
        assert!(matches!(&cause, Error::Protocol(m) if !m.is_empty()), "{cause:?}");
        assert_eq!(e, Error::Closed(Some(Arc::new(cause))));
    }
}

pair_tests! {
    async fn unknown_message_types_are_ignored(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        call(&c, "SendUnknownType", "[]").await.unwrap();
        assert_eq!(call(&c, "Add", "[2,2]").await.unwrap(), "4");
        c.stop().await;
    }
}

/// `SendRaw` with JSON text frames (each string is one WebSocket frame).
async fn send_raw(c: &signalr_native::HubConnection, frames: &[&str]) -> Result<String, Error> {
    let frames = serde_json::to_string(frames).unwrap();
    call(c, "SendRaw", &format!("[{frames},false]")).await
}

const RS: &str = "\u{1e}";

json_pair_tests! {
    async fn raw_frames_several_messages_in_one_frame_and_one_message_across_frames(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut calls = Calls::attach(&c, "Raw");
        // 21.1: Invocation + Ping + Invocation in one frame, processed in order.
        let one = format!(
            r#"{{"type":1,"target":"Raw","arguments":[1]}}{RS}{{"type":6}}{RS}{{"type":1,"target":"Raw","arguments":[2]}}{RS}"#
        );
        send_raw(&c, &[&one]).await.unwrap();
        assert_eq!(text(&calls.next().await), "[1]");
        assert_eq!(text(&calls.next().await), "[2]");
        // 21.7: one message split across two frames.
        send_raw(&c, &[r#"{"type":1,"target":"Raw","#, &format!(r#""arguments":[3]}}{RS}"#)]).await.unwrap();
        assert_eq!(text(&calls.next().await), "[3]");
        // 21.9: unknown type skipped, the next message still processed.
        send_raw(&c, &[&format!(r#"{{"type":99,"x":1}}{RS}{{"type":1,"target":"Raw","arguments":[4]}}{RS}"#)])
            .await
            .unwrap();
        assert_eq!(text(&calls.next().await), "[4]");
        // 21.12: Completion and StreamItem for unknown ids are ignored.
        send_raw(
            &c,
            &[&format!(r#"{{"type":3,"invocationId":"999","result":1}}{RS}{{"type":2,"invocationId":"998","item":1}}{RS}"#)],
        )
        .await
        .unwrap();
        assert_eq!(call(&c, "Add", "[1,1]").await.unwrap(), "2");
        assert!(calls.try_next().is_none());
        c.stop().await;
    }
}

json_pair_tests! {
    async fn raw_completions_with_extra_fields_and_null_or_absent_results_resolve_invokes(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        // Ids start at "0" on a fresh connection. Each SendRaw below carries the Completion of its own
        // id, which arrives before the hub's own Completion (then ignored as a repeat, 21.12); the hub
        // runs invocations one at a time, so nothing else may be pending meanwhile.
        let completions = [
            format!(r#"{{"type":3,"invocationId":"0","result":7,"unknownExtra":{{"a":1}}}}{RS}"#),
            format!(r#"{{"type":3,"invocationId":"1","result":null}}{RS}"#),
            format!(r#"{{"type":3,"invocationId":"2"}}{RS}"#),
        ];
        let mut pending = Vec::new();
        for completion in &completions {
            let frames = serde_json::to_string(&[completion]).unwrap();
            pending.push(begin(&c, "SendRaw", &format!("[{frames},false]")).await);
        }
        let mut results = Vec::new();
        for p in pending {
            results.push(text(&p.await.unwrap()));
        }
        assert_eq!(results, ["7", "null", "null"]);
        c.stop().await;
    }
}

json_pair_tests! {
    async fn raw_stream_item_null_is_delivered_and_a_missing_item_is_a_protocol_error(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut events = Events::attach(&c);
        let mut s = c.stream("Counter", json("[10,60000]")).await.unwrap(); // id "0"
        send_raw(&c, &[&format!(r#"{{"type":2,"invocationId":"0","item":null}}{RS}"#)]).await.unwrap();
        assert_eq!(text(&s.next().await.unwrap().unwrap()), "null");
        let _ = send_raw(&c, &[&format!(r#"{{"type":2,"invocationId":"0"}}{RS}"#)]).await;
        let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
        assert!(matches!(&cause, Error::Protocol(m) if m.contains("item")), "{cause:?}");
        assert_eq!(s.next().await, Some(Err(Error::Closed(Some(Arc::new(cause))))));
    }
}

json_pair_tests! {
    async fn raw_completion_with_result_and_error_is_a_protocol_error(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut events = Events::attach(&c);
        // The SendRaw invocation ("0") receives the bad Completion for itself.
        let frame = format!(r#"{{"type":3,"invocationId":"0","result":1,"error":"e"}}{RS}"#);
        let pending = begin(&c, "SendRaw", &format!("[{},false]", serde_json::to_string(&[frame]).unwrap())).await;
        let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
        assert!(matches!(&cause, Error::Protocol(m) if m.contains("result") && m.contains("error")), "{cause:?}");
        assert!(matches!(pending.await, Err(Error::Closed(Some(_)))));
    }
}

messagepack_pair_tests! {
    async fn raw_messagepack_frame_with_several_messages(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut calls = Calls::attach(&c, "Raw");
        // Two framed msgpack Invocations [1,{},nil,"Raw",[n]] in one binary frame, plus a Ping.
        let msg = |n: u8| -> Vec<u8> {
            let body = [0x95, 0x01, 0x80, 0xc0, 0xa3, b'R', b'a', b'w', 0x91, n];
            let mut v = vec![body.len() as u8];
            v.extend_from_slice(&body);
            v
        };
        let mut frame = msg(1);
        frame.extend_from_slice(&[0x02, 0x91, 0x06]);
        frame.extend(msg(2));
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&frame);
        call(&c, "SendRaw", &format!(r#"[["{b64}"],true]"#)).await.unwrap();
        assert_eq!(text(&calls.next().await), "[1]");
        assert_eq!(text(&calls.next().await), "[2]");
        // One message split across two binary frames, inside its length prefix's body.
        let whole = msg(3);
        let (a, b) = whole.split_at(4);
        let (a, b) = (base64::engine::general_purpose::STANDARD.encode(a), base64::engine::general_purpose::STANDARD.encode(b));
        call(&c, "SendRaw", &format!(r#"[["{a}","{b}"],true]"#)).await.unwrap();
        assert_eq!(text(&calls.next().await), "[3]");
        c.stop().await;
    }
}

pair_tests! {
    async fn failed_negotiations_fail_start_and_reconnect_attempts_follow_the_policy(pair) {
        let hub = Hub::start();
        let admin = connect(&hub, pair).await;

        // Start fails with the HTTP status; onclose is not fired for a start that never connected.
        call(&admin, "FailNextNegotiations", "[1,500]").await.unwrap();
        let c = builder(&hub, pair).build().unwrap();
        let mut events = Events::attach(&c);
        let e = c.start().await.unwrap_err();
        assert!(matches!(&e, Error::Negotiation(m) if m.contains("500")), "{e:?}");
        assert_eq!(c.state(), ConnectionState::Disconnected);
        assert!(events.none_pending());
        c.start().await.unwrap();
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));

        // Reconnect: two failed attempts, then success; the policy sees counts 0, 1, 2 and reasons.
        let contexts: Arc<Mutex<Vec<RetryContext>>> = Arc::default();
        let seen = contexts.clone();
        let c = builder(&hub, pair)
            .reconnect_policy(move |ctx: &RetryContext| {
                seen.lock().unwrap().push(ctx.clone());
                Some(Duration::ZERO)
            })
            .build()
            .unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        call(&admin, "FailNextNegotiations", "[2,500]").await.unwrap();
        let _ = call(&c, "DropTransport", "[]").await;
        assert!(matches!(events.next().await, Event::Reconnecting(_)));
        assert!(matches!(events.next().await, Event::Reconnected(Some(_))));
        {
            let contexts = contexts.lock().unwrap();
            let counts: Vec<u64> = contexts.iter().map(|c| c.previous_retry_count).collect();
            assert_eq!(counts, vec![0, 1, 2]);
            assert!(is_transport(&contexts[0].retry_reason), "{:?}", contexts[0].retry_reason);
            assert_eq!(contexts[0].elapsed, Duration::ZERO);
            assert!(matches!(&contexts[1].retry_reason, Error::Negotiation(m) if m.contains("500")));
            assert!(contexts[2].elapsed >= contexts[1].elapsed);
        }
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));

        // Exhausted: Reconnecting once, then closed with the "retries exhausted" error.
        let c = builder(&hub, pair).reconnect_delays(vec![Duration::ZERO, Duration::ZERO]).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        call(&admin, "FailNextNegotiations", "[2,401]").await.unwrap();
        let _ = call(&c, "DropTransport", "[]").await;
        assert!(matches!(events.next().await, Event::Reconnecting(_)));
        let Event::Closed(Some(e)) = events.next().await else { panic!("expected closed with error") };
        assert!(matches!(&e, Error::Canceled(m) if m.contains("exhausted after 2 failed attempts")), "{e:?}");
        assert!(e.to_string().contains("401"), "{e}");
        assert_eq!(c.state(), ConnectionState::Disconnected);
        admin.stop().await;
    }
}

pair_tests! {
    async fn policy_that_stops_at_once_closes_with_the_original_error(pair) {
        let hub = Hub::start();
        let c = builder(&hub, pair).reconnect_policy(|_: &RetryContext| None).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        let _ = call(&c, "DropTransport", "[]").await;
        let Event::Closed(Some(e)) = events.next().await else { panic!("expected closed with error") };
        assert!(is_transport(&e), "{e:?}");
    }
}

pair_tests! {
    async fn stop_during_a_reconnect_delay_ends_disconnected_without_more_attempts(pair) {
        let hub = Hub::start();
        let c = builder(&hub, pair).reconnect_delays(vec![Duration::from_secs(3600)]).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        let _ = call(&c, "DropTransport", "[]").await;
        assert!(matches!(events.next().await, Event::Reconnecting(_)));
        assert_eq!(c.state(), ConnectionState::Reconnecting);
        assert_eq!(c.connection_id(), None);
        assert!(matches!(call(&c, "Add", "[1,1]").await, Err(Error::InvalidState(_))));
        assert!(matches!(c.start().await, Err(Error::InvalidState(_))), "start while Reconnecting");
        c.stop().await;
        assert_eq!(c.state(), ConnectionState::Disconnected);
        assert_eq!(events.next().await, Event::Closed(None));
    }
}

/// A TCP listener that accepts and never answers: holds negotiate (or a WebSocket upgrade) open.
async fn silent_server() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hub", listener.local_addr().unwrap());
    (listener, url)
}

#[tokio::test]
async fn stop_during_negotiation_cancels_start() {
    let (listener, url) = silent_server().await;
    let c = signalr_native::HubConnectionBuilder::new(url).build().unwrap();
    let starting = {
        let c = c.clone();
        tokio::spawn(async move { c.start().await })
    };
    let (_socket, _) = listener.accept().await.unwrap(); // negotiate is in flight
    assert_eq!(c.state(), ConnectionState::Connecting);
    c.stop().await;
    let e = starting.await.unwrap().unwrap_err();
    assert!(matches!(&e, Error::Canceled(m) if m.contains("negotiation")), "{e:?}");
    assert_eq!(c.state(), ConnectionState::Disconnected);
}

/// Polls `future` exactly once; panics if it finished.
async fn poll_once<F: std::future::Future + Unpin>(future: &mut F) {
    tokio::select! {
        biased;
        _ = future => panic!("finished on its first poll"),
        _ = std::future::ready(()) => {}
    }
}

// The test runtime has one thread: a task the start spawns cannot run before the test awaits.
#[tokio::test]
async fn a_stop_before_the_start_task_first_ran_still_cancels_the_start() {
    let (_listener, url) = silent_server().await;
    let c = signalr_native::HubConnectionBuilder::new(url).build().unwrap();
    let mut starting = Box::pin(c.start());
    poll_once(&mut starting).await;
    assert_eq!(c.state(), ConnectionState::Connecting, "a started connection is Connecting at once");
    c.stop().await;
    let e = starting.await.unwrap_err();
    assert!(matches!(&e, Error::Canceled(_)), "{e:?}");
    assert_eq!(c.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn dropping_an_unfinished_start_cancels_it() {
    let (_listener, url) = silent_server().await;
    // Negotiate would wait an hour for the silent server: only a cancel ends the run in time.
    let c = signalr_native::HubConnectionBuilder::new(url).http_timeout(Duration::from_secs(3600)).build().unwrap();
    let (tx, mut states) = tokio::sync::mpsc::unbounded_channel();
    c.on_state_changed(move |old, new| {
        let _ = tx.send((old, new));
    });
    let mut starting = Box::pin(c.start());
    poll_once(&mut starting).await;
    drop(starting);
    assert_eq!(states.recv().await, Some((ConnectionState::Disconnected, ConnectionState::Connecting)));
    // Nothing else stops it: the dropped start itself ends the run (the guard is far above the
    // moment that takes, far below the hour negotiate would wait).
    let ended = tokio::time::timeout(Duration::from_secs(60), states.recv()).await;
    assert_eq!(ended.ok().flatten(), Some((ConnectionState::Connecting, ConnectionState::Disconnected)));
    assert_eq!(c.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn stop_during_the_handshake_cancels_start() {
    // A server that reads the handshake request and never answers.
    let mut server = ScriptedServer::start(vec![]).await;
    let c = server.builder(HubProtocol::Json).build().unwrap();
    let starting = {
        let c = c.clone();
        tokio::spawn(async move { c.start().await })
    };
    let _handshake_request = server.next_frame().await;
    c.stop().await;
    let e = starting.await.unwrap().unwrap_err();
    assert!(matches!(&e, Error::Canceled(m) if m.contains("handshake")), "{e:?}");
    assert_eq!(c.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn silent_server_fails_start_with_the_handshake_timeout() {
    let server = ScriptedServer::start(vec![]).await;
    let c = server.builder(HubProtocol::Json).handshake_timeout(Duration::from_millis(200)).build().unwrap();
    let mut events = Events::attach(&c);
    let e = c.start().await.unwrap_err();
    assert!(matches!(&e, Error::Timeout(m) if m.contains("handshake")), "{e:?}");
    assert_eq!(c.state(), ConnectionState::Disconnected);
    assert!(events.none_pending(), "no onclose for a start that never connected");
}

pair_tests! {
    async fn a_message_over_the_size_limit_closes_with_a_protocol_error(pair) {
        let hub = Hub::start();
        let c = builder(&hub, pair).max_message_bytes(1000).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        assert_eq!(call(&c, "Echo", r#"["small"]"#).await.unwrap(), r#""small""#);
        let big = "x".repeat(5000);
        let e = call(&c, "Echo", &format!(r#"["{big}"]"#)).await.unwrap_err();
        let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
        assert!(matches!(&cause, Error::Protocol(_)), "{cause:?}");
        assert_eq!(e, Error::Closed(Some(Arc::new(cause))));
    }
}
