//! Negotiate shapes (v0/v1, stateful flag), authentication and the redirect hub.

mod common;

use common::{within, Hub};
use serde_json::json;

const TRANSPORTS: &str = r#"[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]"#;

#[tokio::test]
async fn negotiate_version_1_has_a_separate_token() {
    let hub = Hub::start(&[]).await;
    let response = within("negotiate", hub.http("POST", "/hub/negotiate?negotiateVersion=1", &[], b"")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.header("set-cookie").is_some_and(|c| c.starts_with("hub-affinity=")));
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["negotiateVersion"], 1);
    let id = body["connectionId"].as_str().unwrap();
    let token = body["connectionToken"].as_str().unwrap();
    assert_eq!(id.len(), 22);
    assert_ne!(id, token);
    assert_eq!(body["availableTransports"], serde_json::from_str::<serde_json::Value>(TRANSPORTS).unwrap());
    assert!(body.get("useStatefulReconnect").is_none());
}

#[tokio::test]
async fn negotiate_version_0_uses_the_id_as_token() {
    let hub = Hub::start(&[]).await;
    let body = within("negotiate", hub.negotiate("hub", "")).await;
    assert_eq!(body["negotiateVersion"], 0);
    assert!(body["connectionId"].is_string());
    assert!(body.get("connectionToken").is_none());
    // The id is what the transport requests use.
    let id = body["connectionId"].as_str().unwrap();
    let poll = hub.http("GET", &format!("/hub?id={id}"), &[], b"").await;
    assert_eq!(poll.status, 200);
}

#[tokio::test]
async fn versions_above_1_are_answered_with_1_and_bad_versions_with_an_error() {
    let hub = Hub::start(&[]).await;
    assert_eq!(hub.negotiate("hub", "?negotiateVersion=7").await["negotiateVersion"], 1);
    assert_eq!(
        hub.negotiate("hub", "?negotiateVersion=x").await,
        json!({"error": "The client requested a non-integer protocol version."})
    );
}

#[tokio::test]
async fn stateful_reconnect_is_echoed_only_when_asked() {
    let hub = Hub::start(&[]).await;
    let asked = hub.negotiate("hub", "?negotiateVersion=1&useStatefulReconnect=true").await;
    assert_eq!(asked["useStatefulReconnect"], true);
    let not_asked = hub.negotiate("hub", "?negotiateVersion=1&useStatefulReconnect=false").await;
    assert!(not_asked.get("useStatefulReconnect").is_none());
}

#[tokio::test]
async fn auth_hub_needs_a_bearer_token_on_every_request() {
    let hub = Hub::start(&[]).await;
    let refused = hub.http("POST", "/auth-hub/negotiate?negotiateVersion=1", &[], b"").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));

    let by_header = hub.http("POST", "/auth-hub/negotiate?negotiateVersion=1", &[("Authorization", "Bearer alice")], b"").await;
    assert_eq!(by_header.status, 200);
    let by_query = hub.http("POST", "/auth-hub/negotiate?negotiateVersion=1&access_token=bob", &[], b"").await;
    assert_eq!(by_query.status, 200);

    let token: serde_json::Value = serde_json::from_slice(&by_header.body).unwrap();
    let token = token["connectionToken"].as_str().unwrap();
    let poll_without = hub.http("GET", &format!("/auth-hub?id={token}"), &[], b"").await;
    assert_eq!(poll_without.status, 401);
    let poll_with = hub.http("GET", &format!("/auth-hub?id={token}"), &[("Authorization", "Bearer alice")], b"").await;
    assert_eq!(poll_with.status, 200);
}

#[tokio::test]
async fn redirect_hub_points_to_auth_hub_with_a_token() {
    let hub = Hub::start(&[]).await;
    let body = hub.negotiate("redirect-hub", "?negotiateVersion=1").await;
    assert_eq!(body, json!({"url": format!("{}/auth-hub", hub.base), "accessToken": "redirected-user"}));
    let looping = hub.negotiate("redirect-hub", "?loop=1&negotiateVersion=1").await;
    assert_eq!(looping, json!({"url": format!("{}/redirect-hub?loop=1", hub.base)}));
}

#[tokio::test]
async fn negotiate_only_answers_post() {
    let hub = Hub::start(&[]).await;
    assert_eq!(hub.http("GET", "/hub/negotiate", &[], b"").await.status, 405);
}
