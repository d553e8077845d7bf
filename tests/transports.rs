//! Transports against the test hub, seen through a recording proxy: fallback in the server's
//! order, the access token and the negotiate cookie on every request of every transport, 401
//! renewal, and what is special to Server-Sent Events and Long Polling (DELETE on stop, 204).

#[macro_use]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use signalr_native::{ConnectionState, Error, HubConnection, HubConnectionBuilder, HubProtocol, TransportKind, TransportSet};
use support::proxy::{Proxy, Request};
use support::*;

/// A token provider answering `tok0`, `tok1`, … and the number of calls so far.
fn counting_tokens(builder: HubConnectionBuilder) -> (HubConnectionBuilder, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let builder = builder.access_token_provider(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok(format!("tok{n}")) }
    });
    (builder, calls)
}

/// What a transport request is, for readable assertions.
fn kind(r: &Request) -> &'static str {
    match (r.method.as_str(), r.is_negotiate()) {
        (_, true) => "negotiate",
        ("GET", _) if r.is_websocket() => "websocket",
        ("GET", _) if r.is_event_stream() => "event-stream",
        ("GET", _) => "poll",
        ("POST", _) => "send",
        ("DELETE", _) => "delete",
        _ => "other",
    }
}

fn kinds(requests: &[Request]) -> Vec<&'static str> {
    requests.iter().map(kind).collect()
}

async fn admin(hub: &Hub) -> HubConnection {
    connect(hub, HubProtocol::Json).await
}

#[tokio::test]
async fn fallback_follows_the_server_order_and_negotiates_again_after_a_failure() {
    let hub = Hub::start();
    let admin = admin(&hub).await;
    let proxy = Proxy::start(&hub.base).await;

    // WebSockets refused: a fresh negotiate (new token, T-2), then Server-Sent Events.
    call(&admin, "FailNextConnects", r#"["WebSockets",1]"#).await.unwrap();
    let (b, tokens) = counting_tokens(HubConnectionBuilder::new(proxy.url("/hub")));
    let c = b.build().unwrap();
    c.start().await.unwrap();
    assert_eq!(c.transport(), Some(TransportKind::ServerSentEvents));
    assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
    let requests = proxy.requests();
    assert_eq!(kinds(&requests)[..4], ["negotiate", "websocket", "negotiate", "event-stream"]);
    assert_ne!(requests[1].query("id"), requests[3].query("id"), "the second attempt uses a new connection token");
    // The provider is asked for each negotiate and each connect.
    assert_eq!(tokens.load(Ordering::SeqCst), 4);
    c.stop().await;

    // WebSockets and Server-Sent Events refused: Long Polling.
    call(&admin, "FailNextConnects", r#"["WebSockets",1]"#).await.unwrap();
    call(&admin, "FailNextConnects", r#"["ServerSentEvents",1]"#).await.unwrap();
    let c = HubConnectionBuilder::new(hub.url("/hub")).build().unwrap();
    c.start().await.unwrap();
    assert_eq!(c.transport(), Some(TransportKind::LongPolling));
    assert_eq!(call(&c, "Add", "[2,3]").await.unwrap(), "5");
    c.stop().await;

    // MessagePack never tries Server-Sent Events.
    call(&admin, "FailNextConnects", r#"["WebSockets",1]"#).await.unwrap();
    let before = proxy.requests().len();
    let c = HubConnectionBuilder::new(proxy.url("/hub")).protocol(HubProtocol::MessagePack).build().unwrap();
    c.start().await.unwrap();
    assert_eq!(c.transport(), Some(TransportKind::LongPolling));
    assert_eq!(kinds(&proxy.requests()[before..])[..4], ["negotiate", "websocket", "negotiate", "poll"]);
    c.stop().await;

    // Transports the user disallowed are skipped.
    let sse_lp = TransportSet::only(TransportKind::ServerSentEvents).with(TransportKind::LongPolling);
    let c = HubConnectionBuilder::new(hub.url("/hub")).transports(sse_lp).build().unwrap();
    c.start().await.unwrap();
    assert_eq!(c.transport(), Some(TransportKind::ServerSentEvents));
    c.stop().await;
    admin.stop().await;
}

#[tokio::test]
async fn when_every_transport_fails_the_error_lists_each_failure() {
    let hub = Hub::start();
    let admin = admin(&hub).await;
    for transport in ["WebSockets", "ServerSentEvents", "LongPolling"] {
        call(&admin, "FailNextConnects", &format!(r#"["{transport}",1]"#)).await.unwrap();
    }
    let c = HubConnectionBuilder::new(hub.url("/hub")).build().unwrap();
    let e = c.start().await.unwrap_err();
    let Error::Transport(text) = &e else { panic!("expected a transport error, got {e:?}") };
    assert!(text.starts_with("Unable to connect to the server with any of the available transports. "), "{text}");
    for transport in ["WebSockets failed: ", "ServerSentEvents failed: ", "LongPolling failed: "] {
        let at = text.find(transport).unwrap_or_else(|| panic!("{transport} missing in {text}"));
        assert!(text[at..].contains("500"), "{text}");
    }
    assert_eq!(c.state(), ConnectionState::Disconnected);
    assert!(!text.contains("id="), "the connection token stays out of messages: {text}");

    // One allowed transport: its own error, as it is.
    call(&admin, "FailNextConnects", r#"["LongPolling",1]"#).await.unwrap();
    let c = builder(&hub, Pair::LONG_POLLING_JSON).build().unwrap();
    let e = c.start().await.unwrap_err();
    assert!(matches!(&e, Error::Transport(m) if m.contains("500") && !m.contains("Unable")), "{e:?}");
    admin.stop().await;
}

#[tokio::test]
async fn messagepack_over_server_sent_events_fails_at_start_with_a_clear_error() {
    let hub = Hub::start();
    let proxy = Proxy::start(&hub.base).await;
    let c = HubConnectionBuilder::new(proxy.url("/hub"))
        .protocol(HubProtocol::MessagePack)
        .transports(TransportSet::only(TransportKind::ServerSentEvents))
        .build()
        .unwrap();
    let e = c.start().await.unwrap_err();
    assert!(
        matches!(&e, Error::Negotiation(m) if m.contains("only supports the 'Text' transfer format")),
        "{e:?}"
    );
    assert_eq!(kinds(&proxy.requests()), ["negotiate"], "no transport was attempted");
}

pair_tests! {
    async fn token_cookie_and_headers_reach_every_request(pair) {
        let hub = Hub::start();
        let proxy = Proxy::start(&hub.base).await;
        let c = builder_at(&proxy.url("/auth-hub?tenant=blue"), pair)
            .header("X-Custom", "hello")
            .access_token_provider(|| async { Ok("secret".to_string()) })
            .build()
            .unwrap();
        c.start().await.unwrap();
        assert_eq!(call(&c, "GetUser", "[]").await.unwrap(), r#""secret""#);
        let mut s = c.stream("Counter", json("[3,0]")).await.unwrap();
        while let Some(item) = s.next().await {
            item.unwrap();
        }
        c.send("Echo", json("[1]")).await.unwrap();
        c.stop().await;

        let requests = proxy.requests();
        let seen = kinds(&requests);
        let expected: &[&str] = match pair.transport {
            TransportKind::WebSockets => &["negotiate", "websocket"],
            TransportKind::ServerSentEvents => &["negotiate", "event-stream", "send"],
            TransportKind::LongPolling => &["negotiate", "poll", "send", "delete"],
        };
        for k in expected {
            assert!(seen.contains(k), "no {k} request in {seen:?}");
        }
        for (i, r) in requests.iter().enumerate() {
            let what = format!("{} {} ({})", r.method, r.target, kind(r));
            // A-1 … A-5: the token on every request, as a header.
            assert_eq!(r.header("authorization"), Some("Bearer secret"), "{what}");
            // A-6, A-7: user and protocol headers, and the base URL's query.
            assert_eq!(r.header("x-custom"), Some("hello"), "{what}");
            assert_eq!(r.header("x-requested-with"), Some("XMLHttpRequest"), "{what}");
            assert!(r.header("user-agent").is_some_and(|v| v.starts_with("Microsoft SignalR/")), "{what}");
            assert_eq!(r.query("tenant").as_deref(), Some("blue"), "{what}");
            // A-8: the affinity cookie set by negotiate, on every later request.
            if i > 0 {
                assert!(r.header("cookie").is_some_and(|v| v.contains("hub-affinity=")), "{what}");
            }
            // A-4: the event stream also carries the token in the query; nothing else does.
            let in_query = r.query("access_token");
            if r.is_event_stream() {
                assert_eq!(in_query.as_deref(), Some("secret"), "{what}");
            } else {
                assert_eq!(in_query, None, "{what}");
            }
            // L-1: polls carry a cache buster; A-9: sends say what their body is.
            if kind(r) == "poll" {
                assert!(r.query("_").is_some(), "{what}");
            }
            if kind(r) == "send" {
                let body_type = match r.header("content-type") {
                    Some(t) => t,
                    None => panic!("{what} has no content type"),
                };
                let is_handshake = requests[..i].iter().all(|p| kind(p) != "send");
                let text = pair.protocol == HubProtocol::Json || is_handshake;
                let expected = if text { "text/plain;charset=UTF-8" } else { "application/octet-stream" };
                assert_eq!(body_type, expected, "{what}");
            }
        }
        // Every transport request names the connection negotiate made.
        let ids: Vec<Option<String>> = requests[1..].iter().map(|r| r.query("id")).collect();
        assert!(ids.iter().all(|id| id.is_some() && *id == ids[0]), "{ids:?}");
    }
}

/// The provider is asked again after a 401 on a send or a poll, and the request is sent once more
/// with the new token (A-1).
#[tokio::test]
async fn a_401_on_a_send_or_a_poll_renews_the_token_and_retries_once() {
    let hub = Hub::start();
    for pair in [Pair::SERVER_SENT_EVENTS_JSON, Pair::LONG_POLLING_JSON, Pair::LONG_POLLING_MESSAGEPACK] {
        let proxy = Proxy::start(&hub.base).await;
        let (b, tokens) = counting_tokens(builder_at(&proxy.url("/auth-hub"), pair));
        let c = b.build().unwrap();
        c.start().await.unwrap();
        let asked = tokens.load(Ordering::SeqCst);
        assert_eq!(asked, 2, "negotiate and connect");

        proxy.refuse_next("POST", 401);
        assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3", "{pair:?}");
        assert_eq!(tokens.load(Ordering::SeqCst), asked + 1, "{pair:?}");
        let posts: Vec<Request> = proxy.requests().into_iter().filter(|r| r.method == "POST" && !r.is_negotiate()).collect();
        let refused = posts.iter().position(|r| r.refused == Some(401)).expect("a refused POST");
        assert_eq!(posts[refused].header("authorization"), Some("Bearer tok1"), "{pair:?}");
        assert_eq!(posts[refused + 1].header("authorization"), Some("Bearer tok2"), "{pair:?}");
        assert!(posts[refused + 1].refused.is_none());
        if pair.is_long_polling() {
            // A poll is answered 401: renewed and polled again; messages keep flowing.
            proxy.refuse_next("GET", 401);
            assert_eq!(call(&c, "Add", "[2,2]").await.unwrap(), "4");
            assert_eq!(call(&c, "Add", "[3,3]").await.unwrap(), "6");
            let polls: Vec<Request> = proxy.requests().into_iter().filter(|r| kind(r) == "poll").collect();
            let refused = polls.iter().position(|r| r.refused == Some(401)).expect("a refused poll");
            assert_eq!(polls[refused].header("authorization"), Some("Bearer tok2"), "{pair:?}");
            assert_eq!(polls[refused + 1].header("authorization"), Some("Bearer tok3"), "{pair:?}");
            assert_eq!(tokens.load(Ordering::SeqCst), asked + 2, "{pair:?}");
        }
        assert_eq!(c.state(), ConnectionState::Connected);
        c.stop().await;
    }
}

#[tokio::test]
async fn a_second_401_fails_the_send_and_closes_with_unauthorized() {
    let hub = Hub::start();
    let proxy = Proxy::start(&hub.base).await;
    let (b, _tokens) = counting_tokens(builder_at(&proxy.url("/auth-hub"), Pair::LONG_POLLING_JSON));
    let c = b.build().unwrap();
    let mut events = Events::attach(&c);
    c.start().await.unwrap();
    proxy.refuse_next("POST", 401);
    proxy.refuse_next("POST", 401);
    let e = call(&c, "Add", "[1,2]").await.unwrap_err();
    assert!(matches!(&e, Error::Closed(Some(cause)) if matches!(**cause, Error::Unauthorized(_))), "{e:?}");
    let Event::Closed(Some(cause)) = events.next().await else { panic!("expected a close with error") };
    assert!(matches!(cause, Error::Unauthorized(_)), "{cause:?}");
}

json_pair_tests! {
    async fn messages_with_line_breaks_survive_the_transport(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut calls = Calls::attach(&c, "Raw");
        // JSON whitespace may hold line breaks; Server-Sent Events sends them as several `data:`
        // lines (joined again by the client, S-3).
        let frame = "{\"type\":1,\n\"target\":\"Raw\",\r\n\"arguments\":[\"a\\nb\"]}\u{1e}";
        let frames = serde_json::to_string(&[frame]).unwrap();
        call(&c, "SendRaw", &format!("[{frames},false]")).await.unwrap();
        assert_eq!(text(&calls.next().await), r#"["a\nb"]"#);
        // And strings with line breaks go both ways.
        assert_eq!(call(&c, "Echo", r#"["x\ny\r\nz"]"#).await.unwrap(), r#""x\ny\r\nz""#);
        c.stop().await;
    }
}

#[tokio::test]
async fn long_polling_stop_sends_delete_after_the_close_message() {
    let hub = Hub::start();
    for pair in [Pair::LONG_POLLING_JSON, Pair::LONG_POLLING_MESSAGEPACK] {
        let proxy = Proxy::start(&hub.base).await;
        let c = builder_at(&proxy.url("/hub"), pair).build().unwrap();
        let mut events = Events::attach(&c);
        c.start().await.unwrap();
        assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
        c.stop().await;
        assert_eq!(events.next().await, Event::Closed(None));
        let requests = proxy.requests();
        // C-4 then L-5: the Close message is the last send, and a DELETE follows it (a poll
        // already on its way may still arrive after the DELETE).
        let close_send = requests.iter().rposition(|r| kind(r) == "send").unwrap();
        let delete = requests.iter().rposition(|r| kind(r) == "delete").expect("a DELETE");
        assert!(close_send < delete, "{:?}", kinds(&requests));
        assert_eq!(requests.iter().filter(|r| kind(r) == "delete").count(), 1);
        assert_eq!(requests[delete].query("id"), requests[1].query("id"));
        assert!(requests[delete].query("_").is_none(), "no cache buster on DELETE");
    }
}

/// L-2: a poll answered 204 means the server ended the connection: a close without error. The
/// hub answers a pending poll 204 when a newer poll of the same connection arrives.
#[tokio::test]
async fn long_polling_204_closes_without_error() {
    let hub = Hub::start();
    let proxy = Proxy::start(&hub.base).await;
    let c = builder_at(&proxy.url("/hub"), Pair::LONG_POLLING_JSON).build().unwrap();
    let mut events = Events::attach(&c);
    c.start().await.unwrap();
    assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
    let id = proxy.requests()[1].query("id").unwrap();
    // Another poll of this connection (straight to the hub) takes over: the client's gets 204.
    // If the client was between two polls, its next poll takes over from ours instead (ours gets
    // 204): then poll again, until the connection is gone (404).
    let client = reqwest::Client::new();
    let url = format!("{}/hub?id={id}", hub.base);
    let takeover = tokio::spawn(async move {
        let mut statuses = Vec::new();
        loop {
            let status = client.get(&url).send().await.unwrap().status().as_u16();
            statuses.push(status);
            if status != 204 {
                return statuses;
            }
        }
    });
    assert_eq!(events.next().await, Event::Closed(None));
    assert_eq!(c.state(), ConnectionState::Disconnected);
    // The client's DELETE ended the connection on the hub.
    let statuses = takeover.await.unwrap();
    assert_eq!(statuses.last(), Some(&404), "{statuses:?}");
}

#[tokio::test]
async fn sends_queued_during_a_post_share_the_next_post() {
    let hub = Hub::start();
    for pair in [Pair::SERVER_SENT_EVENTS_JSON, Pair::LONG_POLLING_JSON, Pair::LONG_POLLING_MESSAGEPACK] {
        let proxy = Proxy::start(&hub.base).await;
        let c = builder_at(&proxy.url("/hub"), pair).build().unwrap();
        c.start().await.unwrap();
        let posts_before = proxy.requests().iter().filter(|r| kind(r) == "send").count();
        let n = 300;
        let sends: Vec<_> = (0..n).map(|i| c.send("Record", c.args(&(i,)).unwrap())).collect();
        for r in futures_util::future::join_all(sends).await {
            r.unwrap();
        }
        let recorded = call(&c, "GetRecorded", "[]").await.unwrap();
        let expected: Vec<i32> = (0..n).collect();
        assert_eq!(recorded, serde_json::to_string(&expected).unwrap(), "{pair:?}");
        let posts = proxy.requests().iter().filter(|r| kind(r) == "send").count() - posts_before;
        // 300 messages and the GetRecorded invocation in far fewer POSTs.
        assert!(posts < n as usize / 2, "{pair:?}: {posts} POSTs for {n} sends");
        c.stop().await;
    }
}

#[tokio::test]
async fn server_sent_events_and_long_polling_over_tls() {
    let hub = Hub::with_tls(&[]);
    let cert = hub.cert.clone().unwrap();
    for pair in [Pair::SERVER_SENT_EVENTS_JSON, Pair::LONG_POLLING_JSON, Pair::LONG_POLLING_MESSAGEPACK] {
        let c = builder(&hub, pair).trust_ca_pem_file(&cert).build().unwrap();
        c.start().await.unwrap();
        assert_eq!(c.transport(), Some(pair.transport));
        assert_eq!(call(&c, "Echo", r#"["secure"]"#).await.unwrap(), r#""secure""#);
        c.stop().await;
    }
}

#[tokio::test]
async fn when_every_transport_is_refused_with_401_start_fails_unauthorized() {
    let hub = Hub::start();
    let proxy = Proxy::start(&hub.base).await;
    // The WebSocket upgrade, the event-stream GET, the first poll and its one retry.
    for _ in 0..4 {
        proxy.refuse_next("GET", 401);
    }
    let (b, tokens) = counting_tokens(HubConnectionBuilder::new(proxy.url("/auth-hub")));
    let e = b.build().unwrap().start().await.unwrap_err();
    let Error::Unauthorized(text) = &e else { panic!("expected Unauthorized, got {e:?}") };
    for transport in ["WebSockets failed: ", "ServerSentEvents failed: ", "LongPolling failed: "] {
        assert!(text.contains(transport), "{text}");
    }
    // Three negotiates and three connects, plus one renewal for the refused poll.
    assert_eq!(tokens.load(Ordering::SeqCst), 7);
    let refused: Vec<&str> = proxy.requests().iter().filter(|r| r.refused.is_some()).map(kind).collect();
    assert_eq!(refused, ["websocket", "event-stream", "poll", "poll"]);
}
