//! Stateful reconnect (SR-1 … SR-11) against the test hub, which drops the transport on request
//! (`DropTransport`), plus a scripted server for what the hub never does on its own (withhold
//! Acks, send a bad Sequence).

#[macro_use]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use signalr_native::{ConnectionState, Error, HubConnection, HubConnectionBuilder, HubProtocol, TransportKind, TransportSet};
use support::proxy::Proxy;
use support::*;
use tokio::sync::mpsc;

fn stateful(hub: &Hub, protocol: HubProtocol) -> HubConnectionBuilder {
    builder(hub, protocol).stateful_reconnect(true)
}

async fn request_info(c: &HubConnection) -> Value {
    serde_json::from_str(&call(c, "GetRequestInfo", "[]").await.unwrap()).unwrap()
}

/// Arguments of a handler call as JSON values.
fn args(p: &signalr_native::Payload) -> Vec<Value> {
    serde_json::from_str(&text(p)).unwrap()
}

/// Every call of the client methods `Flood` and `n`, in the order the connection processed them.
fn record_calls(c: &HubConnection) -> mpsc::UnboundedReceiver<(&'static str, i64)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = tx.clone();
    c.on("Flood", move |p| {
        let _ = t.send(("Flood", args(p)[0].as_i64().unwrap()));
    })
    .unwrap();
    c.on("n", move |p| {
        let _ = tx.send(("n", args(p)[0].as_i64().unwrap()));
    })
    .unwrap();
    rx
}

#[tokio::test]
async fn stateful_reconnect_is_asked_for_and_handshake_version_2_follows() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let c = stateful(&hub, protocol).build().unwrap();
        c.start().await.unwrap();
        let info = request_info(&c).await;
        assert_eq!(info["negotiate"]["query"]["useStatefulReconnect"], "true", "{info}");
        assert_eq!(info["handshakeVersion"], 2, "{info}");
        c.stop().await;

        // Without the option nothing changes (N-2, D-1).
        let c = connect(&hub, protocol).await;
        let info = request_info(&c).await;
        assert!(info["negotiate"]["query"].get("useStatefulReconnect").is_none(), "{info}");
        assert_eq!(info["handshakeVersion"], 1, "{info}");
        c.stop().await;
    }
    // A `useStatefulReconnect=true` query in the URL turns the feature on as well.
    let c = HubConnectionBuilder::new(hub.url("/hub?useStatefulReconnect=true")).build().unwrap();
    c.start().await.unwrap();
    assert_eq!(request_info(&c).await["handshakeVersion"], 2);
    c.stop().await;
}

#[tokio::test]
async fn a_dropped_transport_is_repaired_without_events_and_calls_in_flight_complete_once() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let c = stateful(&hub, protocol).with_automatic_reconnect().build().unwrap();
        let mut events = Events::attach(&c);
        let mut notes = Calls::attach(&c, "note");
        c.start().await.unwrap();
        let id = c.connection_id().unwrap();

        // In flight across the drop: an invoke, a stream, an upload and the DropTransport call.
        let delay = begin(&c, "Delay", "[300]").await;
        let mut counter = c.stream("Counter", json("[6,50]")).await.unwrap();
        let (sum, mut uploads) = c.invoke_with_uploads("Sum", json("[]"), 1).await.unwrap();
        let upload = uploads.pop().unwrap();
        upload.send(json("1")).unwrap();
        upload.send(json("2")).unwrap();
        let dropped = begin(&c, "DropTransport", "[]").await;
        // Written while the transport is down or just back: replayed or sent, never lost.
        upload.send(json("3")).unwrap();
        c.send("SendToCaller", json(r#"["note","after the drop"]"#)).await.unwrap();
        upload.complete().unwrap();

        // DropTransport's own Completion was buffered by the hub and replayed on the new socket.
        assert_eq!(text(&dropped.await.unwrap()), "null");
        assert_eq!(text(&delay.await.unwrap()), "300");
        assert_eq!(text(&sum.await.unwrap()), "6");
        let mut items = Vec::new();
        while let Some(item) = counter.next().await {
            items.push(text(&item.unwrap()));
        }
        assert_eq!(items, ["0", "1", "2", "3", "4", "5"], "every stream item once, in order");
        assert_eq!(text(&notes.next().await), r#"["after the drop"]"#);

        // Same connection: same id, Connected throughout, no reconnect events (SR-7).
        assert_eq!(c.connection_id(), Some(id.clone()));
        assert_eq!(c.state(), ConnectionState::Connected);
        assert_eq!(call(&c, "GetConnectionId", "[]").await.unwrap(), format!("\"{id}\""));
        assert!(events.none_pending(), "no reconnecting/reconnected/closed events");
        assert!(notes.try_next().is_none(), "no duplicate");
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));
    }
}

#[tokio::test]
async fn the_websocket_is_reopened_with_the_same_id_a_fresh_token_and_no_negotiate() {
    let hub = Hub::start();
    let proxy = Proxy::start(&hub.base).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let c = builder_at(&proxy.url("/hub"), HubProtocol::Json)
        .stateful_reconnect(true)
        .access_token_provider(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok(format!("tok{n}")) }
        })
        .build()
        .unwrap();
    c.start().await.unwrap();
    assert_eq!(call(&c, "DropTransport", "[]").await.unwrap(), "null");
    let requests = proxy.requests();
    let kinds: Vec<_> = requests.iter().map(|r| if r.is_negotiate() { "negotiate" } else { r.method.as_str() }).collect();
    assert_eq!(kinds, ["negotiate", "GET", "GET"], "no second negotiate (SR-7)");
    assert!(requests[1].is_websocket() && requests[2].is_websocket());
    assert_eq!(requests[1].query("id"), requests[2].query("id"), "the same connection token");
    // A-3: the token provider is asked for the re-open too.
    let auth: Vec<_> = requests.iter().map(|r| r.header("authorization").unwrap_or("")).collect();
    assert_eq!(auth, ["Bearer tok0", "Bearer tok1", "Bearer tok2"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    c.stop().await;
}

/// The flood of the issue: numbered messages both ways while the hub drops the transport again and
/// again; both sides must see each exactly once and in order.
async fn flood_with_drops(hub: &Hub, protocol: HubProtocol, buffer: usize, records: i64) {
    let c = stateful(hub, protocol).stateful_reconnect_buffer_size(buffer).build().unwrap();
    let mut events = Events::attach(&c);
    let mut calls = record_calls(&c);
    c.start().await.unwrap();
    let id = c.connection_id();

    // A stream the hub runs beside the invocations, so drops also cut it mid-flow.
    let mut counter = c.stream("Counter", json("[500,2]")).await.unwrap();
    let mut expected = Vec::new(); // what the client's handlers must see, in order
    let mut floods = Vec::new();
    let mut notes = Vec::new();
    let mut drops = Vec::new();
    for i in 0..records {
        // Client → hub: numbered fire-and-forget messages.
        c.send("Record", json(&format!("[{i}]"))).await.unwrap();
        // Hub → client: numbered Flood messages, and numbered notes among them. The hub runs
        // invocations one at a time, so its output follows this order.
        if i % (records / 6) == 3 {
            floods.push(begin(&c, "Flood", "[150,24]").await);
            expected.extend((0..150).map(|k| ("Flood", k)));
        }
        if i % 40 == 20 {
            notes.push(begin(&c, "SendToCaller", &format!(r#"["n",{i}]"#)).await);
            expected.push(("n", i));
        }
        // Again and again: the hub cuts the socket while messages flow both ways.
        if i % (records / 12) == 7 {
            drops.push(begin(&c, "DropTransport", "[]").await);
        }
    }
    let drop_count = drops.len();
    let mut items = Vec::new();
    while let Some(item) = counter.next().await {
        items.push(text(&item.unwrap()).parse::<i64>().unwrap());
    }
    assert_eq!(items, (0..500).collect::<Vec<_>>(), "{protocol:?}, buffer {buffer}: stream items");
    for flood in floods {
        assert_eq!(text(&flood.await.unwrap()), "150");
    }
    for note in notes.into_iter().chain(drops) {
        assert_eq!(text(&note.await.unwrap()), "null");
    }

    // Server side: every Record exactly once, in order.
    let recorded: Vec<i64> = serde_json::from_str(&call(&c, "GetRecorded", "[]").await.unwrap()).unwrap();
    assert_eq!(recorded, (0..records).collect::<Vec<_>>(), "{protocol:?}, buffer {buffer}");
    // Client side: GetRecorded completed after everything the hub sent before it was handled.
    let mut seen = Vec::new();
    while let Ok(call) = calls.try_recv() {
        seen.push(call);
    }
    if let Some(i) = (0..seen.len().min(expected.len())).find(|&i| seen[i] != expected[i]) {
        panic!("{protocol:?}, buffer {buffer}: call {i} was {:?}, expected {:?}", seen[i], expected[i]);
    }
    assert_eq!(seen.len(), expected.len(), "{protocol:?}, buffer {buffer}: count");

    assert!(drop_count >= 12, "{drop_count} drops");
    assert_eq!(c.connection_id(), id);
    assert_eq!(c.state(), ConnectionState::Connected);
    assert!(events.none_pending(), "no lifecycle events during the flood");
    c.stop().await;
    assert_eq!(events.next().await, Event::Closed(None));
}

#[tokio::test]
async fn flood_both_ways_across_repeated_drops_arrives_exactly_once_in_order() {
    // A roomy hub buffer: the hub runs invocations one at a time and reads our Acks in order, so a
    // hub send waiting for an Ack queued behind our next invocation would stall both sides.
    let hub = Hub::with_args(&["--stateful-buffer-bytes", "50000000"]);
    for protocol in PROTOCOLS {
        flood_with_drops(&hub, protocol, signalr_native::DEFAULT_STATEFUL_RECONNECT_BUFFER_SIZE, 1800).await;
        // A small client buffer: senders keep waiting for Acks while the drops happen.
        flood_with_drops(&hub, protocol, 600, 120).await;
    }
}

#[tokio::test]
async fn a_failed_stateful_reconnect_falls_back_to_automatic_reconnect_or_close() {
    for protocol in PROTOCOLS {
        // FailNextConnects is global to a hub: one hub per case.
        let hub = Hub::start();
        let c = stateful(&hub, protocol).reconnect_delays(vec![Duration::ZERO]).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        let id = c.connection_id().unwrap();
        call(&c, "FailNextConnects", r#"["WebSockets",1]"#).await.unwrap();
        // The hub runs streams beside other calls (invocations one at a time).
        let mut pending = c.stream("Counter", json("[10,60000]")).await.unwrap();
        let e = call(&c, "DropTransport", "[]").await.unwrap_err();
        let Event::Reconnecting(reason) = events.next().await else { panic!("expected reconnecting") };
        assert!(matches!(reason, Error::Transport(_)), "{reason:?}");
        assert!(matches!(e, Error::Closed(Some(_))), "{e:?}");
        // E-1: calls pending at the loss fail (the new connection cannot complete them).
        assert!(matches!(pending.next().await, Some(Err(Error::Closed(Some(_))))));
        let Event::Reconnected(Some(new_id)) = events.next().await else { panic!("expected reconnected") };
        assert_ne!(new_id, id, "a brand-new connection");
        // The new connection is stateful again.
        assert_eq!(request_info(&c).await["handshakeVersion"], 2);
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));

        // Without automatic reconnect the connection closes.
        let hub = Hub::start();
        let c = stateful(&hub, protocol).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        call(&c, "FailNextConnects", r#"["WebSockets",1]"#).await.unwrap();
        let _ = call(&c, "DropTransport", "[]").await.unwrap_err();
        let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
        assert!(matches!(cause, Error::Transport(_)), "{cause:?}");
        assert_eq!(c.state(), ConnectionState::Disconnected);
    }
}

#[tokio::test]
async fn a_close_message_still_ends_a_stateful_connection() {
    let hub = Hub::start();
    for protocol in PROTOCOLS {
        let c = stateful(&hub, protocol).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        let _ = c.send("CloseWithError", json(r#"["bye",false]"#)).await;
        assert_eq!(events.next().await, Event::Closed(Some(Error::ServerClosed("bye".into()))));
        assert_eq!(c.state(), ConnectionState::Disconnected);
    }
}

#[tokio::test]
async fn without_negotiation_there_is_no_stateful_reconnect() {
    let hub = Hub::start();
    let c = stateful(&hub, HubProtocol::Json)
        .skip_negotiation(true)
        .transports(TransportSet::only(TransportKind::WebSockets))
        .build()
        .unwrap();
    let mut events = Events::attach(&c);
    c.start().await.unwrap();
    assert_eq!(request_info(&c).await["handshakeVersion"], 1);
    let _ = call(&c, "DropTransport", "[]").await.unwrap_err();
    let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
    assert!(matches!(cause, Error::Transport(_)), "{cause:?}");
}

/// A TCP proxy in front of the hub that strips `useStatefulReconnect` from every request line:
/// the hub then answers negotiate like a server without stateful reconnect. Reports whether the
/// client asked.
async fn proxy_without_stateful(hub: &Hub) -> (String, mpsc::UnboundedReceiver<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = hub.base.trim_start_matches("http://").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hub", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let target = target.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match client.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let (line, rest) = head.split_once("\r\n").unwrap();
                if line.contains("/negotiate") {
                    let _ = tx.send(line.contains("useStatefulReconnect=true"));
                }
                let line = line.replace("&useStatefulReconnect=true", "");
                // One request per TCP connection, so that every request line passes here.
                let upgrade = rest.to_ascii_lowercase().contains("upgrade: websocket");
                let rest: String = if upgrade {
                    rest.to_string()
                } else {
                    let headers = rest.lines().filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"));
                    headers.map(|l| format!("{l}\r\n")).collect::<String>() + "Connection: close\r\n\r\n"
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                if server.write_all(format!("{line}\r\n{rest}").as_bytes()).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_server_that_does_not_offer_it_gets_an_ordinary_connection() {
    let hub = Hub::start();
    let (url, mut asked) = proxy_without_stateful(&hub).await;
    for protocol in PROTOCOLS {
        let c = HubConnectionBuilder::new(&url)
            .protocol(protocol)
            .stateful_reconnect(true)
            .reconnect_delays(vec![Duration::ZERO])
            .build()
            .unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        assert!(recv(&mut asked, "negotiate").await, "the client asked for stateful reconnect");
        let info = request_info(&c).await;
        assert!(info["negotiate"]["query"].get("useStatefulReconnect").is_none(), "{info}");
        assert_eq!(info["handshakeVersion"], 1, "not offered: version 1");
        let id = c.connection_id().unwrap();
        // A drop is an ordinary loss: automatic reconnect with a new connection.
        let mut pending = c.stream("Counter", json("[10,60000]")).await.unwrap();
        let _ = call(&c, "DropTransport", "[]").await.unwrap_err();
        let Event::Reconnecting(_) = events.next().await else { panic!("expected reconnecting") };
        assert!(matches!(pending.next().await, Some(Err(Error::Closed(Some(_))))));
        let Event::Reconnected(Some(new_id)) = events.next().await else { panic!("expected reconnected") };
        assert_ne!(new_id, id);
        assert!(recv(&mut asked, "negotiate").await);
        assert_eq!(call(&c, "Echo", "[5]").await.unwrap(), "5");
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));
    }
}

/// A server that speaks negotiate (offering stateful reconnect) and hands each WebSocket to the
/// test, which then plays the server's part frame by frame.
mod scripted {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    pub struct Socket(WebSocketStream<TcpStream>);

    impl Socket {
        /// The next text frame's records (JSON protocol), Pings left out.
        pub async fn records(&mut self) -> Vec<String> {
            loop {
                let next = tokio::time::timeout(std::time::Duration::from_secs(60), self.0.next());
                match next.await.expect("a frame within 60 s") {
                    Some(Ok(Message::Text(t))) => {
                        let records: Vec<String> = t
                            .split('\x1e')
                            .filter(|r| !r.is_empty() && *r != r#"{"type":6}"#)
                            .map(str::to_string)
                            .collect();
                        if !records.is_empty() {
                            return records;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("socket ended: {other:?}"),
                }
            }
        }

        pub async fn send(&mut self, records: &[&str]) {
            let text: String = records.iter().map(|r| format!("{r}\x1e")).collect();
            self.0.send(Message::text(text)).await.unwrap();
        }

        /// Ends the socket without a close handshake (a dropped transport).
        pub fn cut(self) {
            drop(self);
        }
    }

    pub struct Server {
        pub url: String,
        sockets: mpsc::UnboundedReceiver<Socket>,
        /// One message per upgrade request left unanswered.
        held: mpsc::UnboundedReceiver<()>,
    }

    impl Server {
        pub async fn start() -> Server {
            Server::answering(usize::MAX).await
        }

        /// A server that answers only the first `upgrades` WebSocket requests; later ones get no
        /// answer at all (a re-open that hangs).
        pub async fn answering(upgrades: usize) -> Server {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hub", listener.local_addr().unwrap());
            let (tx, sockets) = mpsc::unbounded_channel();
            let (held_tx, held) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                while let Ok((tcp, _)) = listener.accept().await {
                    tokio::spawn(serve(tcp, tx.clone(), held_tx.clone(), answered.clone(), upgrades));
                }
            });
            Server { url, sockets, held }
        }

        /// Waits until an upgrade request is being held unanswered.
        pub async fn held(&mut self) {
            let next = tokio::time::timeout(std::time::Duration::from_secs(60), self.held.recv());
            next.await.expect("a held upgrade within 60 s").expect("server running");
        }

        pub async fn socket(&mut self) -> Socket {
            let next = tokio::time::timeout(std::time::Duration::from_secs(60), self.sockets.recv());
            next.await.expect("a WebSocket within 60 s").expect("server running")
        }
    }

    async fn serve(
        mut tcp: TcpStream,
        sockets: mpsc::UnboundedSender<Socket>,
        held: mpsc::UnboundedSender<()>,
        answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        upgrades: usize,
    ) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match tcp.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        if head.starts_with("POST ") {
            let body = r#"{"negotiateVersion":1,"connectionId":"c","connectionToken":"t","useStatefulReconnect":true,"availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(response.as_bytes()).await;
            return;
        }
        let key = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key")))
            .map(|(_, v)| v.trim().to_string())
            .expect("a WebSocket upgrade");
        if answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= upgrades {
            // Hold the request unanswered until the client gives up.
            let _ = held.send(());
            let _ = tcp.read(&mut byte).await;
            return;
        }
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        if tcp.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        let ws = WebSocketStream::from_raw_socket(tcp, Role::Server, None).await;
        let _ = sockets.send(Socket(ws));
    }
}

/// A connected stateful client of the scripted server, with its socket after the handshake.
async fn scripted_connection(
    server: &mut scripted::Server,
    buffer: usize,
) -> (HubConnection, scripted::Socket, Events) {
    let c = HubConnectionBuilder::new(&server.url)
        .stateful_reconnect(true)
        .stateful_reconnect_buffer_size(buffer)
        .build()
        .unwrap();
    let events = Events::attach(&c);
    let start = tokio::spawn({
        let c = c.clone();
        async move { c.start().await }
    });
    let mut socket = server.socket().await;
    assert_eq!(socket.records().await, [r#"{"protocol":"json","version":2}"#]);
    socket.send(&["{}"]).await;
    start.await.unwrap().unwrap();
    (c, socket, events)
}

#[tokio::test]
async fn sends_wait_while_the_unacknowledged_bytes_are_at_the_limit() {
    let mut server = scripted::Server::start().await;
    let (c, mut socket, _events) = scripted_connection(&mut server, 100).await;
    let big = "x".repeat(150);
    // Under the limit: done when written.
    c.send("m", json(r#"["small"]"#)).await.unwrap();
    assert_eq!(socket.records().await, [r#"{"type":1,"target":"m","arguments":["small"]}"#]);
    // This one reaches the limit: it goes out, but the send completes only after an Ack (SR-6).
    let sending = c.send("m", json(&format!(r#"["{big}"]"#)));
    tokio::pin!(sending);
    tokio::select! {
        biased;
        r = &mut sending => panic!("completed before any Ack: {r:?}"),
        records = socket.records() => assert!(records[0].contains(&big)),
    }
    // Acknowledging only the first message leaves the big one over the limit.
    // The probe is handled after the Ack, on the same receive task.
    let mut probe = Calls::attach(&c, "probe");
    socket.send(&[r#"{"type":8,"sequenceId":1}"#, r#"{"type":1,"target":"probe","arguments":[]}"#]).await;
    tokio::select! {
        biased;
        r = &mut sending => panic!("completed while still over the limit: {r:?}"),
        _ = probe.next() => {}
    }
    socket.send(&[r#"{"type":8,"sequenceId":2}"#]).await;
    tokio::time::timeout(Duration::from_secs(60), sending).await.expect("released by the Ack").unwrap();
    c.stop().await;
}

#[tokio::test]
async fn the_client_acks_skips_duplicates_and_rejects_a_sequence_from_the_future() {
    let mut server = scripted::Server::start().await;
    let (c, mut socket, mut events) = scripted_connection(&mut server, 100_000).await;
    let mut calls = Calls::attach(&c, "m");
    socket.send(&[r#"{"type":1,"target":"m","arguments":[1]}"#, r#"{"type":6}"#]).await;
    socket.send(&[r#"{"type":1,"target":"m","arguments":[2]}"#]).await;
    assert_eq!(text(&calls.next().await), "[1]");
    assert_eq!(text(&calls.next().await), "[2]");
    // About a second later one Ack covers both; Pings are not counted (SR-2, SR-5).
    assert_eq!(socket.records().await, [r#"{"type":8,"sequenceId":2}"#]);

    // The client sends one message, then the socket drops.
    c.send("Record", json("[1]")).await.unwrap();
    assert_eq!(socket.records().await, [r#"{"type":1,"target":"Record","arguments":[1]}"#]);
    socket.cut();
    // Re-connect with the same token, no negotiate, no handshake: Sequence{1} and the replay.
    let mut socket = server.socket().await;
    let mut records = socket.records().await;
    while records.len() < 2 {
        records.extend(socket.records().await);
    }
    assert_eq!(records, [r#"{"type":9,"sequenceId":1}"#, r#"{"type":1,"target":"Record","arguments":[1]}"#]);
    // Ignored before our Sequence; then a replay of 2 (already processed) and a new 3.
    socket.send(&[r#"{"type":1,"target":"m","arguments":["early"]}"#]).await;
    socket.send(&[
        r#"{"type":9,"sequenceId":2}"#,
        r#"{"type":1,"target":"m","arguments":[2]}"#,
        r#"{"type":1,"target":"m","arguments":[3]}"#,
    ])
    .await;
    assert_eq!(text(&calls.next().await), "[3]");
    assert_eq!(socket.records().await, [r#"{"type":8,"sequenceId":3}"#]);
    assert!(calls.try_next().is_none(), "the duplicate and the early message were skipped");
    assert!(events.none_pending());
    assert_eq!(c.state(), ConnectionState::Connected);

    // A Sequence beyond what was received is a protocol error that ends the connection (SR-9).
    socket.cut();
    let mut socket = server.socket().await;
    let _ = socket.records().await; // the client's Sequence
    socket.send(&[r#"{"type":9,"sequenceId":9}"#]).await;
    let Event::Closed(Some(Error::Protocol(m))) = events.next().await else { panic!("expected a protocol error") };
    assert!(m.contains("Sequence ID greater"), "{m}");
}

// Stateful reconnect needs a WebSocket (SR-1): over Server-Sent Events and Long Polling it is
// asked for but stays off, and everything behaves as without it.
tests_over_pairs!([
    server_sent_events_json = SERVER_SENT_EVENTS_JSON,
    long_polling_json = LONG_POLLING_JSON,
    long_polling_messagepack = LONG_POLLING_MESSAGEPACK
]
    async fn without_websockets_stateful_reconnect_stays_off(pair) {
        let hub = Hub::start();
        let c = builder(&hub, pair).stateful_reconnect(true).reconnect_delays(vec![Duration::ZERO]).build().unwrap();
        let mut events = Events::attach(&c);
        let mut calls = record_calls(&c);
        c.start().await.unwrap();
        assert_eq!(c.transport(), Some(pair.transport));
        let info = request_info(&c).await;
        assert_eq!(info["negotiate"]["query"]["useStatefulReconnect"], "true", "{info}");
        assert_eq!(info["handshakeVersion"], 1, "{info}");

        // Traffic both ways arrives once and in order (no Acks or Sequences involved).
        for i in 0..200 {
            c.send("Record", json(&format!("[{i}]"))).await.unwrap();
        }
        assert_eq!(call(&c, "Flood", "[100,8]").await.unwrap(), "100");
        let recorded: Vec<i64> = serde_json::from_str(&call(&c, "GetRecorded", "[]").await.unwrap()).unwrap();
        assert_eq!(recorded, (0..200).collect::<Vec<_>>());
        let mut seen = Vec::new();
        while let Ok(call) = calls.try_recv() {
            seen.push(call);
        }
        assert_eq!(seen, (0..100).map(|k| ("Flood", k)).collect::<Vec<_>>());

        // A drop is an ordinary loss: automatic reconnect with a new connection.
        let id = c.connection_id().unwrap();
        let _ = call(&c, "DropTransport", "[]").await;
        let Event::Reconnecting(_) = events.next().await else { panic!("expected reconnecting") };
        let Event::Reconnected(Some(new_id)) = events.next().await else { panic!("expected reconnected") };
        assert_ne!(new_id, id);
        assert_eq!(call(&c, "Echo", "[5]").await.unwrap(), "5");
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));
    }
);

#[tokio::test]
async fn a_re_open_that_hangs_is_bounded_by_the_server_timeout() {
    let mut server = scripted::Server::answering(1).await;
    let c = HubConnectionBuilder::new(&server.url)
        .stateful_reconnect(true)
        .keep_alive_interval(Duration::from_millis(200))
        .server_timeout(Duration::from_millis(3000))
        .build()
        .unwrap();
    let mut events = Events::attach(&c);
    let start = tokio::spawn({
        let c = c.clone();
        async move { c.start().await }
    });
    let mut socket = server.socket().await;
    let _ = socket.records().await;
    socket.send(&["{}"]).await;
    start.await.unwrap().unwrap();
    let pending = begin(&c, "Anything", "[]").await;
    socket.cut();
    // The second upgrade is never answered: without a bound the client would wait for the HTTP
    // timeout (100 s) while looking Connected.
    let Event::Closed(Some(Error::Transport(m))) = events.next().await else { panic!("expected a transport error") };
    assert!(m.contains("stateful re-connect failed") && m.contains("re-opening the WebSocket took longer"), "{m}");
    assert!(matches!(pending.await, Err(Error::Closed(Some(_)))));
    assert_eq!(c.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn stop_during_a_re_open_closes_without_error() {
    let mut server = scripted::Server::answering(1).await;
    let (c, socket, mut events) = scripted_connection(&mut server, 100_000).await;
    let pending = begin(&c, "Anything", "[]").await;
    socket.cut();
    server.held().await; // the client is re-opening, still Connected
    assert_eq!(c.state(), ConnectionState::Connected);
    c.stop().await;
    assert_eq!(events.next().await, Event::Closed(None));
    assert_eq!(pending.await, Err(Error::Closed(None)));
    assert_eq!(c.state(), ConnectionState::Disconnected);
}
