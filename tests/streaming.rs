//! Server-to-client streams and client-to-server (upload) streams against the test hub.

#[macro_use]
mod support;

use signalr_native::{Error, UPLOAD_CANCELED_ERROR};
use support::*;

pair_tests! {
    async fn server_stream_delivers_items_in_order_then_ends(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut s = c.stream("Counter", json("[5,0]")).await.unwrap();
        let mut items = Vec::new();
        while let Some(item) = s.next().await {
            items.push(text(&item.unwrap()));
        }
        assert_eq!(items, ["0", "1", "2", "3", "4"]);
        assert!(s.next().await.is_none(), "a completed stream stays ended");
        c.stop().await;
    }
}

pair_tests! {
    async fn server_stream_error_is_the_last_item(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        // Wrong argument types: the hub answers the StreamInvocation with an error Completion.
        let mut s = c.stream("Counter", json(r#"["x","y"]"#)).await.unwrap();
        let first = s.next().await.expect("an error item");
        assert!(matches!(first, Err(Error::Hub(_))), "{first:?}");
        assert!(s.next().await.is_none());
        c.stop().await;
    }
}

pair_tests! {
    async fn cancelling_a_stream_stops_it_and_the_connection_stays_usable(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut s = c.stream("Counter", json("[1000000,1]")).await.unwrap();
        assert_eq!(text(&s.next().await.unwrap().unwrap()), "0");
        assert_eq!(text(&s.next().await.unwrap().unwrap()), "1");
        s.cancel(); // sends CancelInvocation
        // A fresh stream after the cancel works and items of the old one never show up in it.
        let mut s2 = c.stream("Counter", json("[2,0]")).await.unwrap();
        assert_eq!(text(&s2.next().await.unwrap().unwrap()), "0");
        assert_eq!(text(&s2.next().await.unwrap().unwrap()), "1");
        assert!(s2.next().await.is_none());
        assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
        c.stop().await;
    }
}

pair_tests! {
    async fn pending_stream_fails_when_the_connection_stops(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let mut s = c.stream("Counter", json("[10,60000]")).await.unwrap();
        c.stop().await;
        assert_eq!(s.next().await, Some(Err(Error::Closed(None))));
        assert!(s.next().await.is_none());
    }
}

pair_tests! {
    async fn upload_stream_items_and_completion_reach_the_hub(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let (result, mut uploads) = c.invoke_with_uploads("Sum", json("[]"), 1).await.unwrap();
        let upload = uploads.pop().unwrap();
        for n in [1, 2, 3, 4] {
            upload.send(json(&n.to_string())).unwrap();
        }
        upload.complete().unwrap();
        assert_eq!(text(&result.await.unwrap()), "10");
        c.stop().await;
    }
}

pair_tests! {
    async fn upload_stream_errors_reach_the_hub(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let (result, mut uploads) = c.invoke_with_uploads("Sum", json("[]"), 1).await.unwrap();
        let upload = uploads.pop().unwrap();
        upload.send(json("1")).unwrap();
        upload.fail("sensor broke").unwrap();
        let e = result.await.unwrap_err();
        assert!(matches!(&e, Error::Hub(m) if m.contains("sensor broke")), "{e:?}");

        // Dropped without completing: the hub sees "Stream canceled by client.".
        let (result, uploads) = c.invoke_with_uploads("Sum", json("[]"), 1).await.unwrap();
        drop(uploads);
        let e = result.await.unwrap_err();
        assert!(matches!(&e, Error::Hub(m) if m.contains(UPLOAD_CANCELED_ERROR)), "{e:?}");
        c.stop().await;
    }
}

pair_tests! {
    async fn upload_into_a_server_stream_echoes_in_order(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let (mut echoed, mut uploads) = c.stream_with_uploads("UploadEcho", json("[]"), 1).await.unwrap();
        let upload = uploads.pop().unwrap();
        for word in ["a", "b", "c"] {
            upload.send(json(&format!("\"{word}\""))).unwrap();
            assert_eq!(text(&echoed.next().await.unwrap().unwrap()), format!("\"{word}\""));
        }
        upload.complete().unwrap();
        assert!(echoed.next().await.is_none());

        // send with an upload: fire-and-forget, the stream still flows.
        let mut uploads = c.send_with_uploads("Sum", json("[]"), 1).await.unwrap();
        let upload = uploads.pop().unwrap();
        upload.send(json("1")).unwrap();
        upload.complete().unwrap();
        assert_eq!(call(&c, "Add", "[1,2]").await.unwrap(), "3");
        c.stop().await;
    }
}

pair_tests! {
    async fn uploads_of_a_lost_connection_fail_and_write_nothing(pair) {
        let hub = Hub::start();
        let c = connect(&hub, pair).await;
        let (result, mut uploads) = c.invoke_with_uploads("Sum", json("[]"), 1).await.unwrap();
        let upload = uploads.pop().unwrap();
        c.stop().await;
        assert_eq!(result.await, Err(Error::Closed(None)));
        assert!(matches!(upload.send(json("1")), Err(Error::Closed(_))));
        assert!(matches!(upload.complete(), Err(Error::Closed(_))));
    }
}
