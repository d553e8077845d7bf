//! HubConnection basics against the real test hub: lifecycle, invoke, send, handlers, client
//! results, ordering — each with both hub protocols.

#[macro_use]
mod support;

use std::sync::{Arc, Mutex};

use signalr_native::{ConnectionState, Error, HubConnectionBuilder, Payload, NO_RESULT_ERROR};
use support::*;

pair_tests! {
    async fn start_invoke_stop_walk_through_the_states(pair) {
        let hub = Hub::start();
        let c = builder(&hub, pair).build().unwrap();
        let mut events = Events::attach(&c);
        assert_eq!(c.state(), ConnectionState::Disconnected);
        assert_eq!(c.connection_id(), None);
        assert_eq!(c.transport(), None);
        c.start().await.unwrap();
        assert_eq!(c.state(), ConnectionState::Connected);
        assert_eq!(c.transport(), Some(pair.transport));
        let id = c.connection_id().expect("connection id after start");
        assert_eq!(call(&c, "GetConnectionId", "[]").await.unwrap(), format!("\"{id}\""));

        let value = r#"{"a":[1,2.5,"x\u001ey",null,true],"b":{"c":"é"}}"#;
        assert_eq!(call(&c, "Echo", &format!("[{value}]")).await.unwrap(), text(&json(value)));
        assert_eq!(call(&c, "Add", "[2,3]").await.unwrap(), "5");
        // Typed arguments encoded in the connection's own format.
        let sum = c.invoke("Add", c.args(&(40, 2)).unwrap()).await.unwrap();
        assert_eq!(sum.to_value::<i64>().unwrap(), 42);
        // Void hub method: null result.
        assert_eq!(call(&c, "JoinGroup", r#"["g"]"#).await.unwrap(), "null");

        assert!(matches!(c.start().await, Err(Error::InvalidState(_))), "start while Connected");
        c.stop().await;
        assert_eq!(c.state(), ConnectionState::Disconnected);
        assert_eq!(c.connection_id(), None);
        assert_eq!(c.transport(), None);
        assert_eq!(events.next().await, Event::Closed(None));
        assert!(matches!(call(&c, "Echo", "[1]").await, Err(Error::InvalidState(_))));
        c.stop().await; // no-op when Disconnected

        // A stopped connection can start again, with a new connection id.
        c.start().await.unwrap();
        assert_ne!(c.connection_id().unwrap(), id);
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));
    }
}

pair_tests! {
    async fn hub_errors_reject_the_invoke_with_the_server_text(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let e = call(&c, "Fail", r#"["boom"]"#).await.unwrap_err();
        assert_eq!(
            e,
            Error::Hub("An unexpected error occurred invoking 'Fail' on the server. HubException: boom".into())
        );
        let e = call(&c, "Nope", "[]").await.unwrap_err();
        assert_eq!(
            e,
            Error::Hub("Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.".into())
        );
        // The connection is still fine.
        assert_eq!(call(&c, "Add", "[1,1]").await.unwrap(), "2");
        c.stop().await;
    }
}

pair_tests! {
    async fn invalid_calls_are_rejected_before_anything_is_sent(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        assert!(matches!(c.invoke("Echo", json("{\"a\":1}")).await, Err(Error::InvalidArgument(_))));
        assert!(matches!(c.invoke("", json("[]")).await, Err(Error::InvalidArgument(_))));
        assert!(matches!(c.send("Echo", json("5")).await, Err(Error::InvalidArgument(_))));
        assert!(matches!(c.on("", |_| {}), Err(Error::InvalidArgument(_))));
        assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
        c.stop().await;
    }
}

pair_tests! {
    async fn send_is_done_once_written_and_handlers_registered_before_start_see_the_first_message(pair) {
        let hub = Hub::start();
        let c = builder(&hub, pair).build().unwrap();
        let mut calls = Calls::attach(&c, "Notify");
        c.start().await.unwrap();
        c.send("SendToCaller", json(r#"["Notify","first",1]"#)).await.unwrap();
        assert_eq!(text(&calls.next().await), r#"["first",1]"#);
        c.stop().await;
    }
}

pair_tests! {
    async fn several_handlers_run_in_order_and_names_match_case_insensitively(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let first = c.on("ReceiveMessage", move |a| s.lock().unwrap().push(format!("first {}", text(a)))).unwrap();
        let s = seen.clone();
        c.on("receivemessage", move |a| s.lock().unwrap().push(format!("second {}", text(a)))).unwrap();

        // The Invocation is dispatched before the Completion of the call that caused it.
        call(&c, "SendToCaller", r#"["RECEIVEMESSAGE","a"]"#).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![r#"first ["a"]"#, r#"second ["a"]"#]);

        c.remove_handler(first);
        call(&c, "SendToCaller", r#"["receiveMessage","b"]"#).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(seen.lock().unwrap()[2], r#"second ["b"]"#);

        c.off("RECEIVEMESSAGE");
        call(&c, "SendToCaller", r#"["ReceiveMessage","c"]"#).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
        c.stop().await;
    }
}

pair_tests! {
    async fn messages_are_dispatched_in_arrival_order(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        c.on("Flood", move |args| {
            let (i, payload): (u64, String) = args.to_value().unwrap();
            assert_eq!(payload.len(), 16);
            g.lock().unwrap().push(i);
        })
        .unwrap();
        assert_eq!(call(&c, "Flood", "[2000,16]").await.unwrap(), "2000");
        assert_eq!(*got.lock().unwrap(), (0..2000).collect::<Vec<u64>>());
        c.stop().await;
    }
}

pair_tests! {
    async fn client_results_answer_with_a_value_an_error_or_no_result(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let fmt = pair.protocol.format();
        c.on_invoke("Double", move |args, r| {
            let (n,): (i64,) = args.to_value().unwrap();
            r.ok(Payload::from_value(&(n * 2), fmt).unwrap());
        })
        .unwrap();
        assert_eq!(call(&c, "AskClient", r#"["double",21]"#).await.unwrap(), "42");

        // Answered later from another thread.
        c.on_invoke("Later", |args, r| {
            let args = args.clone();
            std::thread::spawn(move || {
                let (s,): (String,) = args.to_value().unwrap();
                r.ok(Payload::from_json(format!("\"{s}!\"")).unwrap());
            });
        })
        .unwrap();
        assert_eq!(call(&c, "AskClient", r#"["Later","hi"]"#).await.unwrap(), r#""hi!""#);

        c.on_invoke("Refuse", |_, r| r.error("not today")).unwrap();
        let e = call(&c, "AskClient", r#"["Refuse",1]"#).await.unwrap_err();
        assert!(matches!(&e, Error::Hub(m) if m.contains("not today")), "{e:?}");

        // No handler, a dropped responder, and only plain handlers: "Client didn't provide a result."
        c.on_invoke("Forget", |_, r| drop(r)).unwrap();
        c.on("PlainOnly", |_| {}).unwrap();
        for method in ["Missing", "Forget", "PlainOnly"] {
            let e = call(&c, "AskClient", &format!(r#"["{method}",1]"#)).await.unwrap_err();
            assert!(matches!(&e, Error::Hub(m) if m.contains(NO_RESULT_ERROR)), "{method}: {e:?}");
        }
        // A panicking handler answers with an error and the connection survives.
        c.on_invoke("Panics", |_, _| panic!("handler bug")).unwrap();
        let e = call(&c, "AskClient", r#"["Panics",1]"#).await.unwrap_err();
        assert!(matches!(&e, Error::Hub(m) if m.contains(NO_RESULT_ERROR)), "{e:?}");

        // A second result handler for the same method is refused (one answer per invocation).
        assert!(matches!(c.on_invoke("DOUBLE", |_, r| drop(r)), Err(Error::InvalidState(_))));
        assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
        c.stop().await;
    }
}

pair_tests! {
    async fn broadcast_and_groups_reach_the_right_connections(pair) {
        let hub = Hub::start();
        // The other member speaks another pair.
        let other = if pair == Pair::LONG_POLLING_MESSAGEPACK { Pair::WEBSOCKETS_JSON } else { Pair::LONG_POLLING_MESSAGEPACK };
        let a = connect(&hub, pair).await;
        let b = connect(&hub, other).await;
        let mut a_calls = Calls::attach(&a, "Msg");
        let mut b_calls = Calls::attach(&b, "Msg");
        call(&a, "Broadcast", r#"["Msg","everyone"]"#).await.unwrap();
        assert_eq!(text(&a_calls.next().await), r#"["everyone"]"#);
        assert_eq!(text(&b_calls.next().await), r#"["everyone"]"#);
        call(&b, "JoinGroup", r#"["g"]"#).await.unwrap();
        call(&a, "SendToGroup", r#"["g","Msg","members"]"#).await.unwrap();
        assert_eq!(text(&b_calls.next().await), r#"["members"]"#);
        // `a` is no member: the next thing it sees is its own broadcast.
        call(&a, "Broadcast", r#"["Msg","again"]"#).await.unwrap();
        assert_eq!(text(&a_calls.next().await), r#"["again"]"#);
        a.stop().await;
        b.stop().await;
    }
}

pair_tests! {
    async fn stop_fails_pending_invocations_and_ends_disconnected(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut events = Events::attach(&c);
        let pending = begin(&c, "Delay", "[60000]").await;
        c.stop().await;
        assert_eq!(pending.await, Err(Error::Closed(None)));
        assert_eq!(events.next().await, Event::Closed(None));
        assert_eq!(c.state(), ConnectionState::Disconnected);
    }
}

pair_tests! {
    async fn dropping_the_last_handle_stops_the_connection(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut events = Events::attach(&c);
        drop(c);
        assert_eq!(events.next().await, Event::Closed(None));
    }
}

#[tokio::test]
async fn builder_rejects_invalid_configurations_without_io() {
    use signalr_native::{TransportKind, TransportSet};
    let e = HubConnectionBuilder::new("not a url").build().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = HubConnectionBuilder::new("ftp://h/hub").build().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = HubConnectionBuilder::new("http://h/hub").skip_negotiation(true).build().unwrap_err();
    assert!(e.to_string().contains("only when WebSockets"), "{e}");
    let e = HubConnectionBuilder::new("http://h/hub").transports(TransportSet::NONE).build().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let sse = TransportSet::only(TransportKind::ServerSentEvents);
    let e = HubConnectionBuilder::new("http://h/hub").transports(sse).skip_negotiation(true).build().unwrap_err();
    assert!(e.to_string().contains("only when WebSockets"), "{e}");
    let e = HubConnectionBuilder::new("http://h/hub").stateful_reconnect(true).stateful_reconnect_buffer_size(0);
    let e = e.build().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = HubConnectionBuilder::new("http://h/hub").header("Bad Name", "v").build().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = HubConnectionBuilder::new("http://h/hub").trust_ca_pem(&b"junk"[..]).build().unwrap_err();
    assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    let e = HubConnectionBuilder::new("http://h/hub").server_timeout(std::time::Duration::ZERO).build().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn works_from_a_caller_without_a_tokio_runtime() {
    let hub = Hub::start();
    // Built outside any runtime: the connection's tasks run on the library's own runtime.
    let c = HubConnectionBuilder::new(hub.url("/hub")).build().unwrap();
    let mut calls = None;
    // An executor without I/O or timers: the caller side needs neither.
    let executor = tokio::runtime::Builder::new_current_thread().build().unwrap();
    executor.block_on(async {
        calls = Some(Calls::attach(&c, "Back"));
        c.start().await.unwrap();
        assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
        call(&c, "SendToCaller", r#"["Back","x"]"#).await.unwrap();
        let mut s = c.stream("Counter", json("[2,0]")).await.unwrap();
        assert_eq!(text(&s.next().await.unwrap().unwrap()), "0");
        c.stop().await;
    });
    assert_eq!(calls.unwrap().try_next().map(|p| text(&p)).as_deref(), Some(r#"["x"]"#));
}
