//! Tests across the protocol modules: both protocols, every message type, the checklist's
//! reference bytes, malformed input, chunking and the handshake.

use bytes::Bytes;
use serde_json::json;

use super::*;

const RS: u8 = 0x1E;
const MAX: usize = 1 << 20;

fn json_payload(text: &str) -> Payload {
    Payload::from_json(text.to_owned()).unwrap()
}

fn payload(value: serde_json::Value, format: Format) -> Payload {
    Payload::from_value(&value, format).unwrap()
}

fn write(protocol: HubProtocol, msg: &HubMessage) -> Vec<u8> {
    let mut out = Vec::new();
    protocol.write(msg, &mut out).unwrap();
    out
}

/// Every message in `bytes`, pushed as one chunk.
fn read_all(protocol: HubProtocol, bytes: &[u8]) -> Result<Vec<HubMessage>, ProtocolError> {
    let mut reader = MessageReader::new(protocol, MAX);
    reader.push(Bytes::copy_from_slice(bytes));
    let mut messages = Vec::new();
    while let Some(message) = reader.next_message()? {
        messages.push(message);
    }
    assert_eq!(reader.buffered_len(), 0, "complete input must be consumed");
    Ok(messages)
}

/// Parses one JSON record (separator added here).
fn parse_json(text: &str) -> Result<Option<HubMessage>, ProtocolError> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(RS);
    read_all(HubProtocol::Json, &bytes).map(|mut m| m.pop())
}

fn json_error(text: &str) -> String {
    parse_json(text).expect_err(text).to_string()
}

/// Frames one MessagePack body.
fn frame(body: &[u8]) -> Vec<u8> {
    let (prefix, n) = varint::encode(body.len() as u32);
    [&prefix[..n], body].concat()
}

fn parse_mp(body: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    read_all(HubProtocol::MessagePack, &frame(body)).map(|mut m| m.pop())
}

fn mp_error(body: &[u8]) -> String {
    parse_mp(body).expect_err(&format!("{body:02x?}")).to_string()
}

fn headers() -> Headers {
    vec![("a".into(), "1".into()), ("b\u{1e}".into(), "x\"y".into())]
}

/// One message of every type, with payloads in `format`.
fn all_messages(format: Format) -> Vec<HubMessage> {
    vec![
        HubMessage::Invocation(Invocation {
            headers: headers(),
            invocation_id: Some("1".into()),
            target: "Send".into(),
            arguments: payload(json!([1, "two", {"three": [3.5, null, true]}]), format),
            stream_ids: vec![],
        }),
        HubMessage::Invocation(Invocation {
            headers: vec![],
            invocation_id: None,
            target: "Fire".into(),
            arguments: Payload::empty_array(format),
            stream_ids: vec!["s1".into(), "s2".into()],
        }),
        HubMessage::StreamInvocation(Invocation {
            headers: vec![],
            invocation_id: Some("2".into()),
            target: "Counter".into(),
            arguments: payload(json!([10, 0]), format),
            stream_ids: vec!["7".into()],
        }),
        HubMessage::StreamItem(StreamItem {
            headers: headers(),
            invocation_id: "2".into(),
            item: payload(json!("x"), format),
        }),
        HubMessage::StreamItem(StreamItem { headers: vec![], invocation_id: "2".into(), item: Payload::null(format) }),
        HubMessage::Completion(Completion {
            headers: vec![],
            invocation_id: "1".into(),
            result: CompletionResult::Void,
        }),
        HubMessage::Completion(Completion {
            headers: vec![],
            invocation_id: "1".into(),
            result: CompletionResult::Value(Payload::null(format)),
        }),
        HubMessage::Completion(Completion {
            headers: headers(),
            invocation_id: "1".into(),
            result: CompletionResult::Value(payload(json!({"k": [1, -2, 18446744073709551615u64]}), format)),
        }),
        HubMessage::Completion(Completion {
            headers: vec![],
            invocation_id: "1".into(),
            result: CompletionResult::Error("boom \u{1e} \"quoted\"".into()),
        }),
        HubMessage::CancelInvocation { headers: headers(), invocation_id: "2".into() },
        HubMessage::Ping,
        HubMessage::Close(Close::default()),
        HubMessage::Close(Close { error: Some("bye".into()), allow_reconnect: true }),
        HubMessage::Close(Close { error: Some("bye".into()), allow_reconnect: false }),
        HubMessage::Ack { sequence_id: 0 },
        HubMessage::Ack { sequence_id: u64::MAX },
        HubMessage::Sequence { sequence_id: 1 },
    ]
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn every_message_round_trips_in_both_protocols() {
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let messages = all_messages(protocol.format());
        let mut wire = Vec::new();
        for msg in &messages {
            protocol.write(msg, &mut wire).unwrap();
        }
        assert_eq!(read_all(protocol, &wire).unwrap(), messages, "{protocol:?}");
    }
}

#[test]
fn payloads_in_the_other_format_are_transcoded_on_write() {
    for (protocol, other) in [(HubProtocol::Json, Format::MessagePack), (HubProtocol::MessagePack, Format::Json)] {
        let messages = all_messages(other);
        let mut wire = Vec::new();
        for msg in &messages {
            protocol.write(msg, &mut wire).unwrap();
        }
        let read = read_all(protocol, &wire).unwrap();
        let expected = all_messages(protocol.format());
        assert_eq!(read.len(), expected.len());
        for (got, want) in read.iter().zip(&expected) {
            // Same values, re-encoded in the protocol's format (compare as JSON values).
            assert_eq!(format!("{:?}", strip(got)), format!("{:?}", strip(want)), "{protocol:?}");
        }
    }
}

/// The message with payloads replaced by their JSON value, for format-independent comparison.
fn strip(msg: &HubMessage) -> (String, Vec<serde_json::Value>) {
    let value = |p: &Payload| serde_json::from_str::<serde_json::Value>(&p.to_json().unwrap()).unwrap();
    match msg {
        HubMessage::Invocation(i) | HubMessage::StreamInvocation(i) => {
            (format!("{:?}{:?}{}{:?}", i.headers, i.invocation_id, i.target, i.stream_ids), vec![value(&i.arguments)])
        }
        HubMessage::StreamItem(s) => (format!("{:?}{}", s.headers, s.invocation_id), vec![value(&s.item)]),
        HubMessage::Completion(Completion { headers, invocation_id, result: CompletionResult::Value(p) }) => {
            (format!("{headers:?}{invocation_id}"), vec![value(p)])
        }
        other => (format!("{other:?}"), vec![]),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON wire text

#[test]
fn json_wire_text() {
    let text = |msg: &HubMessage| String::from_utf8(write(HubProtocol::Json, msg)).unwrap();
    let args = json_payload("[1,\"a\"]");
    let inv =
        Invocation { headers: vec![], invocation_id: None, target: "m".into(), arguments: args, stream_ids: vec![] };
    assert_eq!(
        text(&HubMessage::Invocation(inv.clone())),
        "{\"type\":1,\"target\":\"m\",\"arguments\":[1,\"a\"]}\u{1e}"
    );
    let with_all = Invocation {
        headers: vec![("h".into(), "v".into())],
        invocation_id: Some("7".into()),
        stream_ids: vec!["3".into()],
        ..inv
    };
    assert_eq!(
        text(&HubMessage::StreamInvocation(with_all)),
        "{\"type\":4,\"headers\":{\"h\":\"v\"},\"invocationId\":\"7\",\"target\":\"m\",\"arguments\":[1,\"a\"],\"streamIds\":[\"3\"]}\u{1e}"
    );
    let completion = |result| HubMessage::Completion(Completion { headers: vec![], invocation_id: "1".into(), result });
    assert_eq!(text(&completion(CompletionResult::Void)), "{\"type\":3,\"invocationId\":\"1\"}\u{1e}");
    assert_eq!(
        text(&completion(CompletionResult::Value(Payload::null(Format::Json)))),
        "{\"type\":3,\"invocationId\":\"1\",\"result\":null}\u{1e}"
    );
    assert_eq!(
        text(&completion(CompletionResult::Error("e".into()))),
        "{\"type\":3,\"invocationId\":\"1\",\"error\":\"e\"}\u{1e}"
    );
    assert_eq!(text(&HubMessage::Ping), "{\"type\":6}\u{1e}");
    assert_eq!(text(&HubMessage::Close(Close::default())), "{\"type\":7}\u{1e}");
    assert_eq!(
        text(&HubMessage::Close(Close { error: Some("x".into()), allow_reconnect: true })),
        "{\"type\":7,\"error\":\"x\",\"allowReconnect\":true}\u{1e}"
    );
    assert_eq!(text(&HubMessage::Ack { sequence_id: 36 }), "{\"type\":8,\"sequenceId\":36}\u{1e}");
    assert_eq!(text(&HubMessage::Sequence { sequence_id: 2 }), "{\"type\":9,\"sequenceId\":2}\u{1e}");
    assert_eq!(
        text(&HubMessage::CancelInvocation { headers: vec![], invocation_id: "9".into() }),
        "{\"type\":5,\"invocationId\":\"9\"}\u{1e}"
    );
}

#[test]
fn record_separator_inside_strings_is_escaped_on_the_wire() {
    // Edge case 8 / F-2: from a typed value, in a target, a header and an error text.
    let msg = HubMessage::Invocation(Invocation {
        headers: vec![("k\u{1e}".into(), "v\u{1e}".into())],
        invocation_id: Some("i\u{1e}".into()),
        target: "t\u{1e}".into(),
        arguments: Payload::from_value(&("a\u{1e}b",), Format::Json).unwrap(),
        stream_ids: vec!["s\u{1e}".into()],
    });
    let wire = write(HubProtocol::Json, &msg);
    assert_eq!(wire.iter().filter(|&&b| b == RS).count(), 1, "only the terminator");
    assert_eq!(*wire.last().unwrap(), RS);
    assert!(String::from_utf8_lossy(&wire).contains("a\\u001eb"));
    assert_eq!(read_all(HubProtocol::Json, &wire).unwrap(), [msg]);
    // A hand-built payload holding a raw 0x1E is refused, and `out` stays untouched.
    let bad = Payload { format: Format::Json, bytes: Bytes::from_static(b"[\"a\x1eb\"]") };
    let mut out = b"keep".to_vec();
    let err = HubProtocol::Json
        .write(
            &HubMessage::Invocation(Invocation {
                headers: vec![],
                invocation_id: None,
                target: "t".into(),
                arguments: bad,
                stream_ids: vec![],
            }),
            &mut out,
        )
        .unwrap_err();
    assert!(err.message().contains("0x1E"), "{err}");
    assert_eq!(out, b"keep");
}

// ---------------------------------------------------------------------------------------------
// MessagePack reference bytes (MP-6, MP-11)

#[test]
fn messagepack_reference_bytes() {
    let mp = HubProtocol::MessagePack;
    // Invocation non-blocking: 96 01 80 c0 a6 'method' 91 2a 90
    let invocation: &[u8] = &[0x96, 0x01, 0x80, 0xC0, 0xA6, b'm', b'e', b't', b'h', b'o', b'd', 0x91, 0x2A, 0x90];
    let expected = HubMessage::Invocation(Invocation {
        headers: vec![],
        invocation_id: None,
        target: "method".into(),
        arguments: Payload::from_msgpack(vec![0x91, 0x2A]).unwrap(),
        stream_ids: vec![],
    });
    assert_eq!(parse_mp(invocation).unwrap().unwrap(), expected);
    assert_eq!(write(mp, &expected), frame(invocation));

    // Void Completion: 94 03 80 a3 'xyz' 02
    let completion: &[u8] = &[0x94, 0x03, 0x80, 0xA3, b'x', b'y', b'z', 0x02];
    let expected = HubMessage::Completion(Completion {
        headers: vec![],
        invocation_id: "xyz".into(),
        result: CompletionResult::Void,
    });
    assert_eq!(parse_mp(completion).unwrap().unwrap(), expected);
    assert_eq!(write(mp, &expected), frame(completion));

    // Close allowing reconnect: 93 07 a3 'xyz' c3
    let close: &[u8] = &[0x93, 0x07, 0xA3, b'x', b'y', b'z', 0xC3];
    let expected = HubMessage::Close(Close { error: Some("xyz".into()), allow_reconnect: true });
    assert_eq!(parse_mp(close).unwrap().unwrap(), expected);
    assert_eq!(write(mp, &expected), frame(close));

    // Ack 36: 92 08 cc 24 (uint8 form). We write the smallest form, 92 08 24; both parse (MP-8).
    assert_eq!(parse_mp(&[0x92, 0x08, 0xCC, 0x24]).unwrap().unwrap(), HubMessage::Ack { sequence_id: 36 });
    assert_eq!(write(mp, &HubMessage::Ack { sequence_id: 36 }), frame(&[0x92, 0x08, 0x24]));
    assert_eq!(
        parse_mp(&[0x92, 0x09, 0xCF, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap().unwrap(),
        HubMessage::Sequence { sequence_id: 1 << 32 }
    );

    // Ping is exactly 91 06, framed 02 91 06.
    assert_eq!(write(mp, &HubMessage::Ping), [0x02, 0x91, 0x06]);
    assert_eq!(parse_mp(&[0x91, 0x06]).unwrap().unwrap(), HubMessage::Ping);
}

#[test]
fn messagepack_layout_variants() {
    // Invocation with 5 elements (no streamIds), with 6, and with an extra 7th (MP-9).
    let base: &[u8] = &[0x01, 0x80, 0xA1, b'7', 0xA1, b'm', 0x90];
    let five = [&[0x95][..], base].concat();
    let six = [&[0x96][..], base, &[0x91, 0xA1, b's']].concat();
    let seven = [&[0x97][..], base, &[0x91, 0xA1, b's', 0xC3]].concat();
    let inv = |stream_ids: Vec<String>| {
        HubMessage::Invocation(Invocation {
            headers: vec![],
            invocation_id: Some("7".into()),
            target: "m".into(),
            arguments: Payload::empty_array(Format::MessagePack),
            stream_ids,
        })
    };
    assert_eq!(parse_mp(&five).unwrap().unwrap(), inv(vec![]));
    assert_eq!(parse_mp(&six).unwrap().unwrap(), inv(vec!["s".into()]));
    assert_eq!(parse_mp(&seven).unwrap().unwrap(), inv(vec!["s".into()]));
    // Empty-string id = fire-and-forget, as .NET reads it.
    let empty_id = [0x95, 0x01, 0x80, 0xA0, 0xA1, b'm', 0x90];
    assert!(matches!(
        parse_mp(&empty_id).unwrap().unwrap(),
        HubMessage::Invocation(Invocation { invocation_id: None, .. })
    ));

    // Completion kind 3 with nil, kind 2 with an extra element, kind 1 with its text.
    let value_nil = parse_mp(&[0x95, 0x03, 0x80, 0xA1, b'1', 0x03, 0xC0]).unwrap().unwrap();
    assert_eq!(
        value_nil,
        HubMessage::Completion(Completion {
            headers: vec![],
            invocation_id: "1".into(),
            result: CompletionResult::Value(Payload::null(Format::MessagePack)),
        })
    );
    let void_extra = parse_mp(&[0x95, 0x03, 0x80, 0xA1, b'1', 0x02, 0xC0]).unwrap().unwrap();
    assert!(matches!(void_extra, HubMessage::Completion(Completion { result: CompletionResult::Void, .. })));
    let error = parse_mp(&[0x95, 0x03, 0x80, 0xA1, b'1', 0x01, 0xA2, b'n', b'o']).unwrap().unwrap();
    assert!(
        matches!(error, HubMessage::Completion(Completion { result: CompletionResult::Error(e), .. }) if e == "no")
    );

    // Close with 2 elements (as TS writes it) and with nil error.
    assert_eq!(parse_mp(&[0x92, 0x07, 0xC0]).unwrap().unwrap(), HubMessage::Close(Close::default()));
    assert_eq!(
        parse_mp(&[0x92, 0x07, 0xA1, b'x']).unwrap().unwrap(),
        HubMessage::Close(Close { error: Some("x".into()), allow_reconnect: false })
    );
    // Extra trailing elements in every other type.
    assert_eq!(parse_mp(&[0x93, 0x06, 0x01, 0x02]).unwrap().unwrap(), HubMessage::Ping);
    assert_eq!(parse_mp(&[0x93, 0x08, 0x05, 0xC0]).unwrap().unwrap(), HubMessage::Ack { sequence_id: 5 });
    assert!(parse_mp(&[0x95, 0x02, 0x80, 0xA1, b'1', 0x2A, 0xC0]).unwrap().is_some());
    assert!(parse_mp(&[0x94, 0x05, 0x80, 0xA1, b'1', 0xC0]).unwrap().is_some());
    // Type in any integer encoding (MP-1).
    assert_eq!(parse_mp(&[0x91, 0xCC, 0x06]).unwrap().unwrap(), HubMessage::Ping);
    assert_eq!(parse_mp(&[0x91, 0xD3, 0, 0, 0, 0, 0, 0, 0, 6]).unwrap().unwrap(), HubMessage::Ping);
    // Headers with entries.
    let with_headers = parse_mp(&[0x93, 0x05, 0x81, 0xA1, b'k', 0xA1, b'v', 0xA1, b'1']).unwrap().unwrap();
    assert_eq!(
        with_headers,
        HubMessage::CancelInvocation { headers: vec![("k".into(), "v".into())], invocation_id: "1".into() }
    );
}

// ---------------------------------------------------------------------------------------------
// JSON parsing rules

#[test]
fn json_properties_in_any_order_and_unknown_ones_ignored() {
    let msg = parse_json(
        r#"{"arguments":[1,{"a":"}"}],"extra":{"deep":[1,2,{"x":null}]},"target":"m","streamIds":["s"],"type":1,"invocationId":"5","headers":{"h":"v"}}"#,
    )
    .unwrap()
    .unwrap();
    let HubMessage::Invocation(inv) = msg else { panic!("{msg:?}") };
    assert_eq!(inv.target, "m");
    assert_eq!(inv.invocation_id.as_deref(), Some("5"));
    assert_eq!(&inv.arguments.bytes[..], br#"[1,{"a":"}"}]"#);
    assert_eq!(inv.stream_ids, ["s"]);
    assert_eq!(inv.headers, [("h".to_string(), "v".to_string())]);
    // Edge case 10: Completion with an unknown extra property.
    assert!(parse_json(r#"{"type":3,"invocationId":"1","result":2,"newThing":true}"#).unwrap().is_some());
    // Escaped strings are decoded.
    let msg = parse_json(r#"{"type":1,"target":"Fl\u006fod","arguments":[]}"#).unwrap().unwrap();
    assert!(matches!(msg, HubMessage::Invocation(Invocation { target, .. }) if target == "Flood"));
    // Whitespace around the object and inside it.
    assert_eq!(parse_json(" \n{ \"type\" : 6 }\r\n").unwrap(), Some(HubMessage::Ping));
}

#[test]
fn json_completion_result_null_absent_and_error() {
    let result = |text: &str| match parse_json(text).unwrap().unwrap() {
        HubMessage::Completion(c) => c.result,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        result(r#"{"type":3,"invocationId":"1","result":null}"#),
        CompletionResult::Value(Payload::null(Format::Json))
    );
    assert_eq!(result(r#"{"type":3,"invocationId":"1"}"#), CompletionResult::Void);
    assert_eq!(result(r#"{"type":3,"invocationId":"1","error":"bad"}"#), CompletionResult::Error("bad".into()));
    // "error": null next to a result is no error.
    assert_eq!(
        result(r#"{"type":3,"invocationId":"1","result":[1],"error":null}"#),
        CompletionResult::Value(json_payload("[1]"))
    );
    assert_eq!(
        json_error(r#"{"type":3,"invocationId":"1","result":1,"error":"x"}"#),
        "Completion message carries both 'result' and 'error'"
    );
    assert_eq!(
        json_error(r#"{"type":3,"invocationId":"1","result":null,"error":"x"}"#),
        "Completion message carries both 'result' and 'error'"
    );
}

#[test]
fn json_stream_item_null_vs_missing() {
    let msg = parse_json(r#"{"type":2,"invocationId":"1","item":null}"#).unwrap().unwrap();
    assert_eq!(
        msg,
        HubMessage::StreamItem(StreamItem {
            headers: vec![],
            invocation_id: "1".into(),
            item: Payload::null(Format::Json)
        })
    );
    assert_eq!(json_error(r#"{"type":2,"invocationId":"1"}"#), "StreamItem message has no 'item'");
}

#[test]
fn json_validation_errors_name_the_problem() {
    let cases: &[(&str, &str)] = &[
        (r#"{"target":"m","arguments":[]}"#, "no 'type'"),
        (r#"{"type":"1","target":"m","arguments":[]}"#, "a number for 'type'"),
        (r#"{"type":null}"#, "a number for 'type'"),
        (r#"{"type":1,"arguments":[]}"#, "Invocation message has no 'target'"),
        (r#"{"type":1,"target":"","arguments":[]}"#, "Invocation message has an empty 'target'"),
        (r#"{"type":1,"target":5,"arguments":[]}"#, "a string for 'target'"),
        (r#"{"type":1,"target":"m"}"#, "Invocation message has no 'arguments'"),
        (r#"{"type":1,"target":"m","arguments":{"a":1}}"#, "Invocation 'arguments' must be an array"),
        (r#"{"type":1,"target":"m","arguments":[],"invocationId":7}"#, "a string for 'invocationId'"),
        (r#"{"type":1,"target":"m","arguments":[],"streamIds":"s"}"#, "an array of strings for 'streamIds'"),
        (r#"{"type":1,"target":"m","arguments":[],"streamIds":[1]}"#, "a string as stream id"),
        (r#"{"type":1,"target":"m","arguments":[],"headers":[]}"#, "an object of strings for 'headers'"),
        (r#"{"type":1,"target":"m","arguments":[],"headers":{"a":1}}"#, "a string as header value"),
        (r#"{"type":4,"target":"m","arguments":[]}"#, "StreamInvocation message has no 'invocationId'"),
        (
            r#"{"type":4,"invocationId":"","target":"m","arguments":[]}"#,
            "StreamInvocation message has an empty 'invocationId'",
        ),
        (r#"{"type":2,"item":1}"#, "StreamItem message has no 'invocationId'"),
        (r#"{"type":3}"#, "Completion message has no 'invocationId'"),
        (r#"{"type":3,"invocationId":"1","error":5}"#, "a string for 'error'"),
        (r#"{"type":5}"#, "CancelInvocation message has no 'invocationId'"),
        (r#"{"type":7,"allowReconnect":"yes"}"#, "a boolean for 'allowReconnect'"),
        (r#"{"type":8}"#, "Ack message has no 'sequenceId'"),
        (r#"{"type":9,"sequenceId":"1"}"#, "a non-negative integer for 'sequenceId'"),
        (r#"{"type":8,"sequenceId":-1}"#, "a non-negative integer for 'sequenceId'"),
        (r#"{"type":8,"sequenceId":1.5}"#, "a non-negative integer for 'sequenceId'"),
        (r#"[1,2]"#, "expected a JSON object"),
        (r#""text""#, "expected a JSON object"),
        (r#"{"type":1,"target":"m","arguments":[1,]}"#, "invalid JSON hub message"),
        (r#"{"type":6"#, "invalid JSON hub message"),
        (r#"{"type":6} x"#, "trailing characters"),
        ("", "empty JSON hub message"),
        ("  ", "empty JSON hub message"),
    ];
    for (text, needle) in cases {
        let err = json_error(text);
        assert!(err.contains(needle), "{text}: {err:?} should mention {needle:?}");
    }
}

#[test]
fn json_invalid_utf8_is_an_error() {
    for bytes in [&b"{\"type\":1,\"target\":\"\xff\",\"arguments\":[]}"[..], b"{\"type\":6,\"ignored\":\"\xc3\x28\"}"] {
        let mut wire = bytes.to_vec();
        wire.push(RS);
        let err = read_all(HubProtocol::Json, &wire).unwrap_err();
        assert!(err.message().contains("not valid UTF-8"), "{err}");
    }
}

#[test]
fn chunks_vouched_for_as_utf8_read_like_unchecked_ones() {
    // WebSocket text messages reach the reader as `Chunk::utf8_unchecked`; their records skip the
    // UTF-8 check. Every split into valid UTF-8 pieces (a text message always is one) must read
    // back the messages written, whether a record is parsed in place or joined across pieces.
    let msg = HubMessage::Invocation(Invocation {
        headers: vec![("ключ".into(), "値".into())],
        invocation_id: Some("1".into()),
        target: "Grüße😀".into(),
        arguments: payload(json!(["€uro", {"ü": "😀"}]), Format::Json),
        stream_ids: vec![],
    });
    let wire = [write(HubProtocol::Json, &msg), write(HubProtocol::Json, &msg)].concat();
    let text = std::str::from_utf8(&wire).unwrap();
    for split in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
        let mut reader = MessageReader::new(HubProtocol::Json, MAX);
        let mut got = Vec::new();
        for part in [&text[..split], &text[split..]] {
            // SAFETY: `part` is a `&str`.
            reader.push(unsafe { Chunk::utf8_unchecked(Bytes::copy_from_slice(part.as_bytes())) });
            while let Some(m) = reader.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, [msg.clone(), msg.clone()], "split at {split}");
    }
    // Bytes nobody vouched for are still checked.
    let mut bad = b"{\"type\":1,\"target\":\"\xff\",\"arguments\":[]}".to_vec();
    bad.push(RS);
    let mut reader = MessageReader::new(HubProtocol::Json, MAX);
    reader.push(Chunk::from(Bytes::from(bad)));
    assert!(reader.next_message().unwrap_err().message().contains("not valid UTF-8"));
}

#[test]
fn json_invocation_id_absent_null_or_empty_is_fire_and_forget() {
    for text in [
        r#"{"type":1,"target":"m","arguments":[]}"#,
        r#"{"type":1,"target":"m","arguments":[],"invocationId":null}"#,
        r#"{"type":1,"target":"m","arguments":[],"invocationId":""}"#,
    ] {
        let msg = parse_json(text).unwrap().unwrap();
        assert!(matches!(msg, HubMessage::Invocation(Invocation { invocation_id: None, .. })), "{text}");
    }
}

#[test]
fn unknown_message_types_are_skipped() {
    // Edge case 9, both protocols: the next message is still delivered.
    let mut wire = br#"{"type":99,"whatever":[1]}"#.to_vec();
    wire.push(RS);
    wire.extend_from_slice(br#"{"type":-1}"#);
    wire.push(RS);
    wire.extend_from_slice(br#"{"type":1.5}"#);
    wire.push(RS);
    wire.extend_from_slice(&write(HubProtocol::Json, &HubMessage::Ping));
    assert_eq!(read_all(HubProtocol::Json, &wire).unwrap(), [HubMessage::Ping]);

    let mut wire = frame(&[0x92, 0x63, 0xC0]);
    wire.extend(frame(&[0x91, 0xFF]));
    wire.extend(frame(&[0x91, 0x00]));
    wire.extend(write(HubProtocol::MessagePack, &HubMessage::Ping));
    assert_eq!(read_all(HubProtocol::MessagePack, &wire).unwrap(), [HubMessage::Ping]);
}

// ---------------------------------------------------------------------------------------------
// MessagePack parsing rules

#[test]
fn messagepack_validation_errors_name_the_problem() {
    let cases: &[(&[u8], &str)] = &[
        (&[0x01], "MessagePack hub message: expected an array, found an integer"),
        (&[0x90], "empty array"),
        (&[0x91, 0xA1, b'1'], "message type must be an integer, found a string"),
        (&[0x94, 0x01, 0x80, 0xC0, 0xA1, b'm'], "Invocation message has 4 elements, at least 5 are required"),
        (&[0x95, 0x01, 0x90, 0xC0, 0xA1, b'm', 0x90], "Invocation 'headers': expected a map, found an array"),
        (&[0x95, 0x01, 0xC0, 0xC0, 0xA1, b'm', 0x90], "Invocation 'headers': expected a map, found nil"),
        (
            &[0x95, 0x01, 0x81, 0xA1, b'k', 0x01, 0xC0, 0xA1, b'm', 0x90],
            "Invocation 'headers': expected a string, found an integer",
        ),
        (&[0x95, 0x01, 0x80, 0x05, 0xA1, b'm', 0x90], "Invocation 'invocationId': expected a string or nil"),
        (&[0x95, 0x01, 0x80, 0xC0, 0x05, 0x90], "Invocation 'target': expected a string, found an integer"),
        (&[0x95, 0x01, 0x80, 0xC0, 0xA0, 0x90], "Invocation message has an empty 'target'"),
        (&[0x95, 0x01, 0x80, 0xC0, 0xA2, 0xFF, 0xFE, 0x90], "Invocation 'target': string is not valid UTF-8"),
        (&[0x95, 0x01, 0x80, 0xC0, 0xA1, b'm', 0x80], "Invocation 'arguments': expected an array, found a map"),
        (&[0x96, 0x01, 0x80, 0xC0, 0xA1, b'm', 0x90, 0xC0], "Invocation 'streamIds': expected an array, found nil"),
        (&[0x96, 0x01, 0x80, 0xC0, 0xA1, b'm', 0x90, 0x91, 0x01], "Invocation 'streamIds': expected a string"),
        (&[0x95, 0x04, 0x80, 0xC0, 0xA1, b'm', 0x90], "StreamInvocation message has a nil 'invocationId'"),
        (&[0x94, 0x02, 0x80, 0xC0, 0x01], "StreamItem message has a nil 'invocationId'"),
        (&[0x93, 0x02, 0x80, 0xA1, b'1'], "StreamItem message has 3 elements, at least 4 are required"),
        (
            &[0x94, 0x03, 0x80, 0xA1, b'1', 0x01],
            "Completion message with an error result has 4 elements, 5 are required",
        ),
        (
            &[0x94, 0x03, 0x80, 0xA1, b'1', 0x03],
            "Completion message with a value result has 4 elements, 5 are required",
        ),
        (&[0x94, 0x03, 0x80, 0xA1, b'1', 0x04], "Completion result kind 4 is not 1 (error), 2 (void) or 3 (value)"),
        (&[0x94, 0x03, 0x80, 0xA1, b'1', 0xA1, b'2'], "Completion result kind: expected an integer, found a string"),
        (&[0x95, 0x03, 0x80, 0xA1, b'1', 0x01, 0xC0], "Completion 'error': expected a string, found nil"),
        (&[0x93, 0x03, 0x80, 0xA0], "Completion message has 3 elements"),
        (&[0x94, 0x03, 0x80, 0xA0, 0x02], "Completion message has an empty 'invocationId'"),
        (&[0x92, 0x05, 0x80], "CancelInvocation message has 2 elements, at least 3 are required"),
        (&[0x91, 0x07], "Close message has 1 elements, at least 2 are required"),
        (&[0x93, 0x07, 0xC0, 0x01], "Close 'allowReconnect': expected a boolean, found an integer"),
        (&[0x92, 0x07, 0x01], "Close 'error': expected a string or nil, found an integer"),
        (&[0x91, 0x08], "Ack message has 1 elements, at least 2 are required"),
        (&[0x92, 0x08, 0xFF], "Ack 'sequenceId': expected a non-negative integer, found a negative one"),
        (&[0x92, 0x09, 0xA1, b'1'], "Sequence 'sequenceId': expected an integer, found a string"),
        // Truncated inside the body (the frame is complete, the array is not).
        (&[0x95, 0x01, 0x80, 0xC0, 0xA1, b'm'], "ends in the middle of a value"),
        (&[0x94, 0x02, 0x80, 0xA1, b'1', 0x92, 0x01], "StreamItem 'item': MessagePack data ends in the middle"),
        (&[0x95, 0x01, 0x80, 0xC0, 0xA5, b'm'], "ends in the middle"),
        (&[0x91, 0xC1], "0xc1"),
    ];
    for (body, needle) in cases {
        let err = mp_error(body);
        assert!(err.contains(needle), "{body:02x?}: {err:?} should mention {needle:?}");
    }
}

#[test]
fn messagepack_framing_errors() {
    let mp = HubProtocol::MessagePack;
    let err = read_all(mp, &[0x00]).unwrap_err();
    assert!(err.message().contains("length prefix of 0"), "{err}");
    let err = read_all(mp, &[0xFF, 0xFF, 0xFF, 0xFF, 0x08]).unwrap_err();
    assert!(err.message().contains("2147483647"), "{err}");
    let err = read_all(mp, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).unwrap_err();
    assert_eq!(err.message(), "VarInt length prefix is longer than 5 bytes");
    // The 5-byte maximum is a valid prefix: with a small limit it is refused as oversized, at once.
    let mut reader = MessageReader::new(mp, 1000);
    reader.push(Bytes::from_static(&[0xFF, 0xFF, 0xFF, 0xFF, 0x07]));
    let err = reader.next_message().unwrap_err();
    assert_eq!(err.message(), "MessagePack message of 2147483647 bytes exceeds the limit of 1000 bytes");
    // A truncated frame is not an error while more may come: it waits.
    let mut reader = MessageReader::new(mp, MAX);
    reader.push(Bytes::from_static(&[0x03, 0x92, 0x08]));
    assert_eq!(reader.next_message().unwrap(), None);
    assert_eq!(reader.buffered_len(), 3);
    reader.push(Bytes::from_static(&[0x01]));
    assert_eq!(reader.next_message().unwrap(), Some(HubMessage::Ack { sequence_id: 1 }));
}

#[test]
fn varint_prefix_boundaries_through_the_reader() {
    // Edge case 43: bodies of 127, 128 and 16384 bytes (1-, 2- and 3-byte prefixes).
    for arg_len in [127 - 16, 128 - 16, 16_384 - 19] {
        let msg = HubMessage::StreamItem(StreamItem {
            headers: vec![],
            invocation_id: "1".into(),
            item: payload(json!("x".repeat(arg_len)), Format::MessagePack),
        });
        let wire = write(HubProtocol::MessagePack, &msg);
        let (len, prefix_len) = varint::read(&wire).unwrap().unwrap();
        assert_eq!(len as usize + prefix_len, wire.len());
        assert_eq!(read_all(HubProtocol::MessagePack, &wire).unwrap(), [msg]);
    }
    let body_len = |wire: &[u8]| varint::read(wire).unwrap().unwrap();
    let item = |n: usize| {
        write(
            HubProtocol::MessagePack,
            &HubMessage::StreamItem(StreamItem {
                headers: vec![],
                invocation_id: "1".into(),
                item: Payload::from_msgpack(
                    vec![0xC4; 1].into_iter().chain([n as u8]).chain(vec![0; n]).collect::<Vec<_>>(),
                )
                .unwrap(),
            }),
        )
    };
    // [2, {}, "1", bin8(n)] = 1+1+1+2 + 2+n = n+7 bytes.
    assert_eq!(body_len(&item(120)), (127, 1));
    assert_eq!(body_len(&item(121)), (128, 2));
}

// ---------------------------------------------------------------------------------------------
// Reader: chunks, limits, zero copy

#[test]
fn many_messages_in_one_chunk_are_read_in_order() {
    // Edge case 1.
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let messages = [
            HubMessage::Invocation(Invocation {
                headers: vec![],
                invocation_id: Some("1".into()),
                target: "T".into(),
                arguments: payload(json!([1]), protocol.format()),
                stream_ids: vec![],
            }),
            HubMessage::Ping,
            HubMessage::Completion(Completion {
                headers: vec![],
                invocation_id: "2".into(),
                result: CompletionResult::Value(payload(json!(42), protocol.format())),
            }),
        ];
        let wire: Vec<u8> = messages.iter().flat_map(|m| write(protocol, m)).collect();
        assert_eq!(read_all(protocol, &wire).unwrap(), messages);
    }
}

#[test]
fn messages_split_at_every_byte_are_reassembled() {
    // Edge case 7, and the VarInt split across chunks.
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let messages = all_messages(protocol.format());
        let wire: Vec<u8> = messages.iter().flat_map(|m| write(protocol, m)).collect();
        for split in 0..=wire.len() {
            let mut reader = MessageReader::new(protocol, MAX);
            let mut got = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                reader.push(Bytes::copy_from_slice(part));
                while let Some(m) = reader.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, messages, "{protocol:?} split at {split}");
            assert_eq!(reader.buffered_len(), 0);
        }
        // One byte per chunk.
        let mut reader = MessageReader::new(protocol, MAX);
        let mut got = Vec::new();
        for b in &wire {
            reader.push(Bytes::copy_from_slice(&[*b]));
            while let Some(m) = reader.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, messages, "{protocol:?} byte by byte");
    }
}

#[test]
fn payloads_are_slices_of_the_received_chunk() {
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let msg = HubMessage::Invocation(Invocation {
            headers: vec![],
            invocation_id: None,
            target: "Flood".into(),
            arguments: payload(json!([1, "x".repeat(100)]), protocol.format()),
            stream_ids: vec![],
        });
        let wire = Bytes::from([write(protocol, &msg), write(protocol, &msg)].concat());
        let range = wire.as_ptr_range();
        let mut reader = MessageReader::new(protocol, MAX);
        reader.push(wire.clone());
        for _ in 0..2 {
            let Some(HubMessage::Invocation(inv)) = reader.next_message().unwrap() else { panic!() };
            assert!(range.contains(&inv.arguments.bytes.as_ptr()), "{protocol:?}: arguments were copied");
            for item in inv.arguments.array_items().unwrap() {
                assert!(range.contains(&item.bytes.as_ptr()), "{protocol:?}: array item was copied");
            }
        }
    }
}

#[test]
fn json_limit_applies_with_and_without_separator() {
    let ping = b"{\"type\":6}"; // 10 bytes
    let mut reader = MessageReader::new(HubProtocol::Json, 10);
    reader.push(Bytes::from([&ping[..], &[RS]].concat()));
    assert_eq!(reader.next_message().unwrap(), Some(HubMessage::Ping));

    let mut reader = MessageReader::new(HubProtocol::Json, 9);
    reader.push(Bytes::from([&ping[..], &[RS]].concat()));
    let err = reader.next_message().unwrap_err();
    assert_eq!(err.message(), "JSON message of 10 bytes exceeds the limit of 9 bytes");

    let mut reader = MessageReader::new(HubProtocol::Json, 16);
    reader.push(Bytes::from_static(b"{\"type\":1,\"target\""));
    let err = reader.next_message().unwrap_err();
    assert!(err.message().contains("without a record separator"), "{err}");
    // The handshake is bounded the same way.
    let mut reader = MessageReader::new(HubProtocol::MessagePack, 16);
    reader.push(Bytes::from_static(b"{\"protocol\":\"messagepack\""));
    assert!(reader.next_handshake_request().is_err());
}

// ---------------------------------------------------------------------------------------------
// Handshake

#[test]
fn handshake_records_are_written_as_the_checklist_shows() {
    let mut out = Vec::new();
    HandshakeRequest { protocol: "json".into(), version: 1 }.write(&mut out);
    assert_eq!(out, b"{\"protocol\":\"json\",\"version\":1}\x1e");
    out.clear();
    HandshakeResponse { error: None }.write(&mut out);
    assert_eq!(out, b"{}\x1e");
    out.clear();
    HandshakeResponse { error: Some("Unsupported \u{1e}".into()) }.write(&mut out);
    assert_eq!(out, b"{\"error\":\"Unsupported \\u001e\"}\x1e");
}

#[test]
fn handshake_request_is_parsed() {
    let mut reader = MessageReader::new(HubProtocol::MessagePack, MAX);
    let mut wire = Vec::new();
    HandshakeRequest { protocol: "messagepack".into(), version: 2 }.write(&mut wire);
    wire.extend(write(HubProtocol::MessagePack, &HubMessage::Ping));
    reader.push(Bytes::from(wire));
    assert_eq!(
        reader.next_handshake_request().unwrap(),
        Some(HandshakeRequest { protocol: "messagepack".into(), version: 2 })
    );
    assert_eq!(reader.next_message().unwrap(), Some(HubMessage::Ping));

    for (text, needle) in [
        (r#"{"version":1}"#, "no 'protocol'"),
        (r#"{"protocol":"json"}"#, "no 'version'"),
        (r#"{"protocol":1,"version":1}"#, "'protocol' must be a string"),
        (r#"{"protocol":"json","version":-1}"#, "non-negative integer"),
        (r#"{"protocol":"json","version":"1"}"#, "'version' must be a number"),
        (r#"[]"#, "not a JSON object"),
        (r#"{"protocol""#, "not valid JSON"),
    ] {
        let mut reader = MessageReader::new(HubProtocol::Json, MAX);
        reader.push(Bytes::from([text.as_bytes(), &[RS]].concat()));
        let err = reader.next_handshake_request().unwrap_err();
        assert!(err.message().contains(needle), "{text}: {err}");
    }
}

#[test]
fn handshake_response_then_messages_in_the_same_chunk() {
    // Edge case 2 (JSON) and 3 (MessagePack: JSON handshake then two VarInt frames).
    let invocation = |format| {
        HubMessage::Invocation(Invocation {
            headers: vec![],
            invocation_id: None,
            target: "Hello".into(),
            arguments: payload(json!(["hi"]), format),
            stream_ids: vec![],
        })
    };
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let mut wire = b"{\"minorVersion\":1}\x1e".to_vec();
        wire.extend(write(protocol, &invocation(protocol.format())));
        wire.extend(write(protocol, &HubMessage::Ping));
        let mut reader = MessageReader::new(protocol, MAX);
        reader.push(Bytes::from(wire));
        assert_eq!(reader.next_handshake_response().unwrap(), Some(HandshakeResponse { error: None }));
        assert_eq!(reader.next_message().unwrap(), Some(invocation(protocol.format())));
        assert_eq!(reader.next_message().unwrap(), Some(HubMessage::Ping));
        assert_eq!(reader.next_message().unwrap(), None);
    }
}

#[test]
fn handshake_response_errors_and_partial_data() {
    let response = |bytes: &[u8]| {
        let mut reader = MessageReader::new(HubProtocol::Json, MAX);
        reader.push(Bytes::copy_from_slice(bytes));
        reader.next_handshake_response()
    };
    // H-4: the server's error text.
    assert_eq!(
        response(b"{\"error\":\"Requested protocol 'x' is not available.\"}\x1e").unwrap(),
        Some(HandshakeResponse { error: Some("Requested protocol 'x' is not available.".into()) })
    );
    // H-5 / edge case 5: a hub message instead of a response.
    let err = response(b"{\"type\":7}\x1e").unwrap_err();
    assert!(err.message().contains("'type'"), "{err}");
    // H-6: no separator yet = wait; unparsable JSON = error.
    assert_eq!(response(b"{}").unwrap(), None);
    assert!(response(b"{\x1e").unwrap_err().message().contains("not valid JSON"));
    assert!(response(b"{\"error\":5}\x1e").unwrap_err().message().contains("'error' must be a string"));
    assert!(response(b"\xff\x1e").is_err());

    // Completed by a later chunk.
    let mut reader = MessageReader::new(HubProtocol::MessagePack, MAX);
    reader.push(Bytes::from_static(b"{"));
    assert_eq!(reader.next_handshake_response().unwrap(), None);
    reader.push(Bytes::from_static(b"}\x1e\x02\x91"));
    assert_eq!(reader.next_handshake_response().unwrap(), Some(HandshakeResponse::default()));
    assert_eq!(reader.next_message().unwrap(), None);
    reader.push(Bytes::from_static(b"\x06"));
    assert_eq!(reader.next_message().unwrap(), Some(HubMessage::Ping));
}

// ---------------------------------------------------------------------------------------------
// Writer refusals and protocol names

#[test]
fn writers_refuse_messages_the_peer_would_reject() {
    let inv = |id: Option<&str>, target: &str, arguments: Payload| Invocation {
        headers: vec![],
        invocation_id: id.map(str::to_owned),
        target: target.into(),
        arguments,
        stream_ids: vec![],
    };
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let f = protocol.format();
        let cases = [
            (
                HubMessage::StreamInvocation(inv(None, "m", Payload::empty_array(f))),
                "StreamInvocation needs an invocation id",
            ),
            (HubMessage::Invocation(inv(None, "", Payload::empty_array(f))), "Invocation has an empty target"),
            (HubMessage::Invocation(inv(None, "m", Payload::null(f))), "Invocation arguments must be an array"),
        ];
        for (msg, expected) in cases {
            let mut out = vec![1, 2, 3];
            assert_eq!(protocol.write(&msg, &mut out).unwrap_err().message(), expected);
            assert_eq!(out, [1, 2, 3], "output untouched on error");
        }
        // A broken payload in the other format fails the transcoding, cleanly.
        let broken = Payload { format: Format::MessagePack, bytes: Bytes::from_static(&[0x92, 0x01]) };
        let msg = HubMessage::StreamItem(StreamItem { headers: vec![], invocation_id: "1".into(), item: broken });
        if protocol == HubProtocol::Json {
            let mut out = Vec::new();
            let err = protocol.write(&msg, &mut out).unwrap_err();
            assert!(err.message().starts_with("StreamItem 'item':"), "{err}");
            assert!(out.is_empty());
        }
    }
}

#[test]
fn protocol_names_and_formats() {
    assert_eq!(HubProtocol::from_name("json"), Some(HubProtocol::Json));
    assert_eq!(HubProtocol::from_name("messagepack"), Some(HubProtocol::MessagePack));
    assert_eq!(HubProtocol::from_name("Json"), None);
    assert_eq!(HubProtocol::from_name("msgpack"), None);
    assert_eq!(HubProtocol::Json.name(), "json");
    assert_eq!(HubProtocol::MessagePack.name(), "messagepack");
    assert_eq!(HubProtocol::Json.transfer_format(), "Text");
    assert_eq!(HubProtocol::MessagePack.transfer_format(), "Binary");
    assert_eq!(HubProtocol::MessagePack.format(), Format::MessagePack);
}

// ---------------------------------------------------------------------------------------------
// Payload helpers

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Point {
    x: i32,
    label: String,
    tags: Vec<String>,
}

#[test]
fn payload_from_json_validates() {
    assert_eq!(&Payload::from_json(" [1, 2] ").unwrap().bytes[..], b" [1, 2] ");
    for (text, needle) in [
        (&b"[1,"[..], "EOF while parsing"),
        (b"", "EOF while parsing"),
        (b"{\"a\" 1}", "expected `:`"),
        (b"1 2", "trailing characters"),
        (b"\"\x1e\"", "control character"),
        (b"\"\xff\"", "not valid UTF-8"),
    ] {
        let err = Payload::from_json(Bytes::copy_from_slice(text)).unwrap_err();
        assert!(err.message().contains(needle), "{text:?}: {err}");
    }
    assert!(Payload::from_msgpack(vec![0x92, 0x01]).is_err());
    assert!(Payload::from_msgpack(vec![0x01, 0x02]).is_err());
}

#[test]
fn payload_values_in_both_formats() {
    let point = Point { x: -3, label: "p\u{1e}".into(), tags: vec!["a".into()] };
    for format in [Format::Json, Format::MessagePack] {
        let p = Payload::from_value(&point, format).unwrap();
        assert_eq!(p.to_value::<Point>().unwrap(), point);
        assert_eq!(p.to_json().unwrap(), r#"{"x":-3,"label":"p\u001e","tags":["a"]}"#);
        let err = p.to_value::<Vec<u8>>().unwrap_err();
        assert!(err.message().contains("does not match the expected type"), "{err}");
        // Same-format conversion is a cheap clone of the same bytes.
        let same = p.convert(format).unwrap();
        assert_eq!(same.bytes.as_ptr(), p.bytes.as_ptr());
        let other = if format == Format::Json { Format::MessagePack } else { Format::Json };
        let converted = p.convert(other).unwrap();
        assert_eq!(converted.format, other);
        assert_eq!(converted.to_value::<Point>().unwrap(), point);
    }
    // JSON payloads come back borrowed.
    let p = json_payload("[1]");
    assert!(matches!(p.to_json().unwrap(), std::borrow::Cow::Borrowed("[1]")));
}

#[test]
fn payload_arrays() {
    for format in [Format::Json, Format::MessagePack] {
        let items =
            [payload(json!(1), format), payload(json!("two"), Format::Json), payload(json!([3]), Format::MessagePack)];
        let array = Payload::array(&items, format).unwrap();
        assert_eq!(array.format, format);
        assert!(array.is_array());
        assert_eq!(array.to_json().unwrap(), r#"[1,"two",[3]]"#);
        let back = array.array_items().unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1].to_value::<String>().unwrap(), "two");
        assert_eq!(Payload::array(&[], format).unwrap(), Payload::empty_array(format));
        assert!(Payload::empty_array(format).array_items().unwrap().is_empty());
        assert!(!Payload::null(format).is_array());
        assert_eq!(Payload::null(format).to_value::<Option<i32>>().unwrap(), None);
        assert!(Payload::null(format).array_items().is_err());
    }
    let err = json_payload("{\"a\":1}").array_items().unwrap_err();
    assert!(err.message().contains("not an array"), "{err}");
    // A MessagePack array that declares more elements than it holds.
    let liar =
        Payload { format: Format::MessagePack, bytes: Bytes::from_static(&[0xDD, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) };
    assert!(liar.array_items().unwrap_err().message().contains("ends in the middle"));
}

#[test]
fn large_json_integers_keep_their_text() {
    // M-7: the raw number text reaches the binder untouched.
    let msg = parse_json(r#"{"type":1,"target":"m","arguments":[12345678901234567890123]}"#).unwrap().unwrap();
    let HubMessage::Invocation(inv) = msg else { panic!() };
    assert_eq!(inv.arguments.array_items().unwrap()[0].bytes, "12345678901234567890123");
}

// ---------------------------------------------------------------------------------------------
// Robustness: corrupted input gives errors, never panics

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn corrupted_input_never_panics() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut outcomes = [0usize; 2]; // [ended cleanly, ended with an error]
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let mut clean = b"{}\x1e".to_vec();
        for msg in all_messages(protocol.format()) {
            protocol.write(&msg, &mut clean).unwrap();
        }
        for _ in 0..3000 {
            let mut wire = clean.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(wire.len());
                match rng.below(4) {
                    0 => wire[at] = rng.next() as u8,
                    1 => wire.truncate(at.max(1)),
                    2 => wire.insert(at, rng.next() as u8),
                    _ => wire[at] ^= 1 << rng.below(8),
                }
            }
            let mut reader = MessageReader::new(protocol, 4096);
            let mut at = 0;
            let mut failed = false;
            let mut handshake_done = false;
            while at < wire.len() && !failed {
                let end = (at + 1 + rng.below(64)).min(wire.len());
                reader.push(Bytes::copy_from_slice(&wire[at..end]));
                at = end;
                if !handshake_done {
                    match reader.next_handshake_response() {
                        Ok(Some(_)) => handshake_done = true,
                        Ok(None) => continue,
                        Err(_) => {
                            failed = true;
                            continue;
                        }
                    }
                }
                loop {
                    match reader.next_message() {
                        Ok(Some(msg)) => exercise(&msg),
                        Ok(None) => break,
                        Err(e) => {
                            assert!(!e.message().is_empty());
                            failed = true;
                            break;
                        }
                    }
                }
            }
            outcomes[usize::from(failed)] += 1;
        }
    }
    // The corruption must actually have produced both kinds of outcome.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}

/// Everything a consumer might do with a received message.
fn exercise(msg: &HubMessage) {
    let payloads: Vec<&Payload> = match msg {
        HubMessage::Invocation(i) | HubMessage::StreamInvocation(i) => vec![&i.arguments],
        HubMessage::StreamItem(s) => vec![&s.item],
        HubMessage::Completion(Completion { result: CompletionResult::Value(p), .. }) => vec![p],
        _ => vec![],
    };
    for p in payloads {
        let _ = p.to_json();
        let _ = p.convert(Format::Json);
        let _ = p.convert(Format::MessagePack);
        let _ = p.to_value::<serde_json::Value>();
        if let Ok(items) = p.array_items() {
            for item in items {
                let _ = item.to_json();
            }
        }
    }
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let _ = protocol.write(msg, &mut Vec::new());
    }
}

#[test]
fn messagepack_prefix_grows_when_transcoding_outgrows_the_estimate() {
    // "0.5" is 3 bytes of JSON but 9 bytes of MessagePack: the body ends up longer than the
    // writer's estimate and its length prefix needs one more byte than reserved.
    let floats = format!("[{}]", vec!["0.5"; 20].join(","));
    let msg =
        HubMessage::StreamItem(StreamItem { headers: vec![], invocation_id: "1".into(), item: json_payload(&floats) });
    let wire = write(HubProtocol::MessagePack, &msg);
    let (len, prefix_len) = varint::read(&wire).unwrap().unwrap();
    assert_eq!((prefix_len, len as usize + prefix_len), (2, wire.len()));
    let read = read_all(HubProtocol::MessagePack, &wire).unwrap();
    let [HubMessage::StreamItem(item)] = &read[..] else { panic!("{read:?}") };
    assert_eq!(item.item.to_json().unwrap(), floats);
}

#[test]
fn deeply_nested_payloads_are_refused_not_overflowed() {
    let deep_mp = Payload::from_msgpack([vec![0x91; 100_000], vec![0xC0]].concat()).unwrap();
    assert!(deep_mp.to_json().unwrap_err().message().contains("nested"));
    assert!(deep_mp.to_value::<serde_json::Value>().is_err());
    assert!(deep_mp.convert(Format::Json).is_err());
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    // Valid JSON (serde_json validates it without recursion), but refused where it is decoded.
    let raw = Payload::from_json(deep_json).unwrap();
    assert!(raw.convert(Format::MessagePack).is_err());
    assert!(raw.to_value::<serde_json::Value>().is_err());
}

#[test]
fn trackable_messages_are_types_1_to_5() {
    // SR-2: only Invocation, StreamItem, Completion, StreamInvocation and CancelInvocation count.
    for msg in all_messages(Format::Json) {
        let expected = !matches!(
            msg,
            HubMessage::Ping | HubMessage::Close(_) | HubMessage::Ack { .. } | HubMessage::Sequence { .. }
        );
        assert_eq!(msg.is_trackable(), expected, "{msg:?}");
    }
}
