//! Parsing throughput of the hub protocols: 1,000,000 `Flood`-like Invocations
//! (`Flood(i, "xxx…")`, 100-byte string) through `MessageReader`, in both protocols, fed either one
//! message per chunk (one WebSocket frame each) or in 64 KiB chunks (messages cross chunk edges).
//! Also times `HubProtocol::write` of the same messages into a reused buffer.
//!
//! Run: `cargo bench --bench protocol` (add `-- json` or `-- messagepack` for one protocol).

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use signalr_native::protocol::{HubMessage, HubProtocol, Invocation, MessageReader, Payload};

const COUNT: usize = 1_000_000;
const PAYLOAD_BYTES: usize = 100;
const BIG_CHUNK: usize = 64 * 1024;

fn flood(i: usize, protocol: HubProtocol, text: &str) -> HubMessage {
    HubMessage::Invocation(Invocation {
        headers: vec![],
        invocation_id: None,
        target: "Flood".into(),
        arguments: Payload::from_value(&(i, text), protocol.format()).unwrap(),
        stream_ids: vec![],
    })
}

fn report(label: &str, seconds: f64) {
    println!(
        "{label:<44} {:>6.2} M messages/s  ({:.0} ns/message)",
        COUNT as f64 / seconds / 1e6,
        seconds * 1e9 / COUNT as f64
    );
}

fn parse_all(protocol: HubProtocol, chunks: &[Bytes]) -> usize {
    let mut reader = MessageReader::new(protocol, 1 << 20);
    let mut n = 0;
    for chunk in chunks {
        reader.push(chunk.clone());
        while let Some(msg) = reader.next_message().unwrap() {
            black_box(&msg);
            n += 1;
        }
    }
    n
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let text = "x".repeat(PAYLOAD_BYTES);
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        if filter.as_deref().is_some_and(|f| f != protocol.name()) {
            continue;
        }
        let messages: Vec<HubMessage> = (0..COUNT).map(|i| flood(i, protocol, &text)).collect();

        // Untimed: the wire bytes, as one buffer and as one chunk per message.
        let mut wire = Vec::new();
        let mut per_message = Vec::with_capacity(COUNT);
        for msg in &messages {
            let start = wire.len();
            protocol.write(msg, &mut wire).unwrap();
            per_message.push(Bytes::copy_from_slice(&wire[start..]));
        }
        let wire = Bytes::from(wire);
        let big_chunks: Vec<Bytes> =
            (0..wire.len()).step_by(BIG_CHUNK).map(|at| wire.slice(at..(at + BIG_CHUNK).min(wire.len()))).collect();
        println!("{}: {COUNT} messages, {} bytes each on the wire", protocol.name(), wire.len() / COUNT);

        let mut out = Vec::with_capacity(256);
        let start = Instant::now();
        for msg in &messages {
            out.clear();
            protocol.write(msg, &mut out).unwrap();
            black_box(&out);
        }
        report(&format!("{}: write", protocol.name()), start.elapsed().as_secs_f64());

        for (label, chunks) in [("one message per chunk", &per_message), ("64 KiB chunks", &big_chunks)] {
            assert_eq!(parse_all(protocol, chunks), COUNT); // warm-up
            let start = Instant::now();
            let n = parse_all(protocol, chunks);
            let seconds = start.elapsed().as_secs_f64();
            assert_eq!(n, COUNT);
            report(&format!("{}: parse, {label}", protocol.name()), seconds);
        }

        // The parser alone, without memory traffic: the whole messages that fit in 64 KiB, as one
        // chunk parsed again and again from the cache (best of five rounds of COUNT messages).
        let fit = per_message.iter().scan(0, |size, m| {
            *size += m.len();
            (*size <= BIG_CHUNK).then_some(())
        });
        let fit = fit.count();
        let whole = Bytes::from(per_message[..fit].concat());
        let in_cache: Vec<Bytes> = (0..COUNT / fit).map(|_| whole.clone()).collect();
        let parsed = fit * in_cache.len();
        let best = (0..5)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(parse_all(protocol, &in_cache), parsed);
                start.elapsed().as_secs_f64() * COUNT as f64 / parsed as f64
            })
            .fold(f64::MAX, f64::min);
        report(&format!("{}: parse, one 64 KiB chunk from cache", protocol.name()), best);
    }
}
