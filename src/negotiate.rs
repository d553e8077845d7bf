//! Negotiation (N-1 … N-13): `POST {url}/negotiate`, following redirects, ending with the URL
//! and token the transport connects with.

use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
use crate::transport::TransportKind;

/// Most redirects followed before giving up (N-8).
pub(crate) const MAX_REDIRECTS: usize = 100;

/// What the last negotiate of a start answered.
#[derive(Debug, Clone)]
pub(crate) struct Negotiated {
    /// What the application sees as the connection id.
    pub connection_id: Option<String>,
    /// The `id=` value for the transport (version 1: connectionToken, version 0: connectionId).
    pub connection_token: Option<String>,
    /// Transports in the server's order with their transfer formats.
    pub transports: Vec<(String, Vec<String>)>,
    /// The server agreed to stateful reconnect (only ever true when the client asked, N-9).
    pub stateful_reconnect: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    connection_id: Option<String>,
    connection_token: Option<String>,
    negotiate_version: Option<i64>,
    available_transports: Option<Vec<AvailableTransport>>,
    url: Option<String>,
    access_token: Option<String>,
    error: Option<String>,
    #[serde(default)]
    use_stateful_reconnect: bool,
    #[serde(rename = "ProtocolVersion")]
    protocol_version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AvailableTransport {
    transport: String,
    #[serde(default)]
    transfer_formats: Vec<String>,
}

/// `{base}/negotiate?{base query}&negotiateVersion=1` (N-1).
pub(crate) fn negotiate_url(base: &Url) -> Url {
    let mut url = base.clone();
    let path = format!("{}/negotiate", base.path().trim_end_matches('/'));
    url.set_path(&path);
    if !base.query_pairs().any(|(k, _)| k == "negotiateVersion") {
        url.query_pairs_mut().append_pair("negotiateVersion", "1");
    }
    url
}

/// Asks for stateful reconnect (N-2), unless the URL already does.
pub(crate) fn ask_for_stateful_reconnect(negotiate_url: &mut Url) {
    if !negotiate_url.query_pairs().any(|(k, _)| k == "useStatefulReconnect") {
        negotiate_url.query_pairs_mut().append_pair("useStatefulReconnect", "true");
    }
}

/// `{url}?…&id={token}` (N-10).
pub(crate) fn connect_url(base: &Url, token: Option<&str>) -> Url {
    let mut url = base.clone();
    if let Some(token) = token {
        url.query_pairs_mut().append_pair("id", token);
    }
    url
}

/// Interprets one negotiate response body. `Ok(Err(redirect))` = negotiate again at that URL
/// (with the given token if any). `asked_stateful`: the request asked for stateful reconnect.
pub(crate) fn parse_response(
    body: &[u8],
    asked_stateful: bool,
) -> Result<std::result::Result<Negotiated, (Url, Option<String>)>> {
    let r: Response = serde_json::from_slice(body)
        .map_err(|e| Error::Negotiation(format!("negotiate response is not valid JSON: {e}")))?;
    if let Some(error) = r.error {
        return Err(Error::Negotiation(error));
    }
    if r.protocol_version.is_some() {
        return Err(Error::Negotiation(
            "detected a connection attempt to an ASP.NET SignalR server; this client only supports \
             ASP.NET Core SignalR"
                .into(),
        ));
    }
    if let Some(url) = r.url {
        let url = Url::parse(&url)
            .map_err(|e| Error::Negotiation(format!("negotiate redirect URL '{url}' is invalid: {e}")))?;
        return Ok(Err((url, r.access_token)));
    }
    if r.use_stateful_reconnect && !asked_stateful {
        return Err(Error::Negotiation(
            "the server enabled stateful reconnect, which the client did not ask for".into(),
        ));
    }
    let version = r.negotiate_version.unwrap_or(0);
    let connection_token = if version >= 1 { r.connection_token } else { r.connection_id.clone() };
    if connection_token.is_none() {
        return Err(Error::Negotiation("negotiate response has no connection id".into()));
    }
    let transports = r
        .available_transports
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.transport, t.transfer_formats))
        .collect();
    Ok(Ok(Negotiated {
        connection_id: r.connection_id,
        connection_token,
        transports,
        stateful_reconnect: r.use_stateful_reconnect,
    }))
}

/// The server's transports in its order (T-1), each either to be tried or with the reason it is
/// skipped: unknown to the client, disallowed by the user, or unable to carry the protocol's
/// transfer format.
pub(crate) fn candidates(
    negotiated: &Negotiated,
    allowed: crate::transport::TransportSet,
    format: crate::protocol::Format,
    transfer_format: &str,
) -> Vec<std::result::Result<TransportKind, String>> {
    negotiated
        .transports
        .iter()
        .map(|(name, formats)| {
            let kind = TransportKind::from_name(name)
                .ok_or_else(|| format!("{name}: not supported by this client."))?;
            if !allowed.contains(kind) {
                return Err(format!("{kind}: disabled by the client."));
            }
            if !kind.carries(format) {
                return Err(format!("{kind}: {}", crate::transport::SSE_TEXT_ONLY));
            }
            if !formats.iter().any(|f| f == transfer_format) {
                return Err(format!("{kind}: the server does not offer the {transfer_format} transfer format on it."));
            }
            Ok(kind)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportSet;

    #[test]
    fn negotiate_url_appends_to_the_path_and_keeps_the_query() {
        let u = |s: &str| negotiate_url(&Url::parse(s).unwrap()).to_string();
        assert_eq!(u("http://h/hub"), "http://h/hub/negotiate?negotiateVersion=1");
        assert_eq!(u("http://h/hub/"), "http://h/hub/negotiate?negotiateVersion=1");
        assert_eq!(u("http://h/hub?a=1"), "http://h/hub/negotiate?a=1&negotiateVersion=1");
        assert_eq!(u("http://h/hub?negotiateVersion=0"), "http://h/hub/negotiate?negotiateVersion=0");
        let c = connect_url(&Url::parse("http://h/hub?a=1").unwrap(), Some("t k"));
        assert_eq!(c.as_str(), "http://h/hub?a=1&id=t+k");
    }

    #[test]
    fn version_0_uses_the_connection_id_as_token_and_version_1_the_token() {
        let v0 = parse_response(br#"{"connectionId":"c","availableTransports":[]}"#, false).unwrap().unwrap();
        assert_eq!(v0.connection_token.as_deref(), Some("c"));
        let v1 = parse_response(
            br#"{"negotiateVersion":1,"connectionId":"c","connectionToken":"t","extra":5,"availableTransports":[]}"#,
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((v1.connection_id.as_deref(), v1.connection_token.as_deref()), (Some("c"), Some("t")));
    }

    #[test]
    fn error_redirect_and_classic_server_answers() {
        let e = parse_response(br#"{"error":"nope"}"#, false).unwrap_err();
        assert_eq!(e, Error::Negotiation("nope".into()));
        let (url, token) = parse_response(br#"{"url":"http://x/y","accessToken":"t"}"#, false).unwrap().unwrap_err();
        assert_eq!((url.as_str(), token.as_deref()), ("http://x/y", Some("t")));
        let e = parse_response(br#"{"ProtocolVersion":"1.5"}"#, false).unwrap_err();
        assert!(e.to_string().contains("ASP.NET SignalR server"), "{e}");
        assert!(parse_response(b"{", false).is_err());
        let e = parse_response(br#"{"negotiateVersion":1,"connectionId":"c","connectionToken":"t","useStatefulReconnect":true}"#, false).unwrap_err();
        assert!(e.to_string().contains("did not ask"), "{e}");
        let asked = br#"{"negotiateVersion":1,"connectionId":"c","connectionToken":"t","useStatefulReconnect":true}"#;
        assert!(parse_response(asked, true).unwrap().unwrap().stateful_reconnect);
    }

    #[test]
    fn stateful_reconnect_is_asked_for_once() {
        let mut url = negotiate_url(&Url::parse("http://h/hub").unwrap());
        ask_for_stateful_reconnect(&mut url);
        assert_eq!(url.as_str(), "http://h/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true");
        let mut url = negotiate_url(&Url::parse("http://h/hub?useStatefulReconnect=true").unwrap());
        ask_for_stateful_reconnect(&mut url);
        assert_eq!(url.as_str(), "http://h/hub/negotiate?useStatefulReconnect=true&negotiateVersion=1");
    }

    #[test]
    fn transports_follow_the_server_order_filtered_by_client_and_format() {
        let n = parse_response(
            br#"{"negotiateVersion":1,"connectionId":"c","connectionToken":"t","availableTransports":[
              {"transport":"LongPolling","transferFormats":["Text","Binary"]},
              {"transport":"Carrier","transferFormats":["Text"]},
              {"transport":"ServerSentEvents","transferFormats":["Text"]},
              {"transport":"WebSockets","transferFormats":["Text","Binary"]}]}"#,
            false,
        )
        .unwrap()
        .unwrap();
        use crate::protocol::Format;
        use TransportKind::*;
        let tried = |allowed, format, transfer| -> Vec<TransportKind> {
            candidates(&n, allowed, format, transfer).into_iter().filter_map(|c| c.ok()).collect()
        };
        assert_eq!(tried(TransportSet::ALL, Format::Json, "Text"), vec![LongPolling, ServerSentEvents, WebSockets]);
        assert_eq!(tried(TransportSet::ALL, Format::MessagePack, "Binary"), vec![LongPolling, WebSockets]);
        assert_eq!(tried(TransportSet::only(WebSockets), Format::Json, "Text"), vec![WebSockets]);
        let reasons: Vec<String> = candidates(&n, TransportSet::only(ServerSentEvents), Format::MessagePack, "Binary")
            .into_iter()
            .filter_map(|c| c.err())
            .collect();
        assert_eq!(reasons[0], "LongPolling: disabled by the client.");
        assert_eq!(reasons[1], "Carrier: not supported by this client.");
        assert!(reasons[2].starts_with("ServerSentEvents: The Server-Sent Events transport only supports the 'Text'"), "{}", reasons[2]);
    }
}
