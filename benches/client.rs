//! Client benchmarks against the release test hub (not a test: it prints figures).
//!
//!     cargo build --release -p test-hub && cargo bench --bench client
//!
//! - sequential invoke round trip (`Add`), p50/p99, over every transport x protocol pair
//!   (WebSockets, Server-Sent Events, Long Polling; JSON and MessagePack), plus a bare
//!   tokio-tungstenite client doing the same exchange as the floor to compare with;
//! - server-to-client receive rate (`Flood`, 100-byte and 10 KB payloads) into a handler, over
//!   every pair;
//! - resident memory per idle connection with 1,000 connections in this process;
//! - the same round trip and receive rate on WebSockets with stateful reconnect on, beside off.
//!
//! `BENCH_QUICK=1` shrinks every count (a smoke run); `BENCH_ONLY=flood` runs only the JSON
//! 100-byte flood (for a profiler); `BENCH_ONLY=stateful` only the stateful comparison.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use signalr_native::{HubConnection, HubConnectionBuilder, HubProtocol, Payload, TransportKind, TransportSet};

struct HubProcess {
    child: Child,
    base: String,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_hub() -> HubProcess {
    let bin = std::env::var_os("TEST_HUB_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        target.join("release").join("test-hub")
    });
    if !bin.exists() {
        panic!("release hub not found at {}: build it first: cargo build --release -p test-hub", bin.display());
    }
    let mut child = Command::new(&bin)
        .args(["--port", "0", "--exit-on-stdin-eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the hub");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    HubProcess { child, base: line.trim().to_string() }
}

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Every transport x protocol pair the spec allows (MessagePack never over Server-Sent Events).
const PAIRS: [(TransportKind, HubProtocol); 5] = [
    (TransportKind::WebSockets, HubProtocol::Json),
    (TransportKind::WebSockets, HubProtocol::MessagePack),
    (TransportKind::ServerSentEvents, HubProtocol::Json),
    (TransportKind::LongPolling, HubProtocol::Json),
    (TransportKind::LongPolling, HubProtocol::MessagePack),
];

fn label(transport: TransportKind, protocol: HubProtocol) -> String {
    let t = match transport {
        TransportKind::WebSockets => "WS",
        TransportKind::ServerSentEvents => "SSE",
        TransportKind::LongPolling => "LP",
    };
    format!("{t}/{}", protocol.name())
}

async fn connect(hub: &HubProcess, transport: TransportKind, protocol: HubProtocol, stateful: bool) -> HubConnection {
    let c = HubConnectionBuilder::new(format!("{}/hub", hub.base))
        .protocol(protocol)
        .transports(TransportSet::only(transport))
        .stateful_reconnect(stateful)
        .build()
        .unwrap();
    c.start().await.unwrap();
    assert_eq!(c.transport(), Some(transport));
    c
}

async fn invoke_latency(
    hub: &HubProcess,
    transport: TransportKind,
    protocol: HubProtocol,
    stateful: bool,
    n: usize,
) -> (Duration, Duration) {
    let c = connect(hub, transport, protocol, stateful).await;
    let args = c.args(&(1, 2)).unwrap();
    for _ in 0..n / 10 {
        c.invoke("Add", args.clone()).await.unwrap();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.invoke("Add", args.clone()).await.unwrap();
        samples.push(t.elapsed());
    }
    c.stop().await;
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// The same exchange with a bare tokio-tungstenite client (skip-negotiation WebSocket, JSON).
async fn bare_latency(hub: &HubProcess, n: usize) -> (Duration, Duration) {
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/hub", hub.base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text("{\"protocol\":\"json\",\"version\":1}\u{1e}")).await.unwrap();
    let _handshake = ws.next().await.unwrap().unwrap();
    let mut samples = Vec::with_capacity(n);
    for i in 0..(n + n / 10) {
        let msg = format!("{{\"type\":1,\"invocationId\":\"{i}\",\"target\":\"Add\",\"arguments\":[1,2]}}\u{1e}");
        let t = Instant::now();
        ws.send(Message::text(msg)).await.unwrap();
        loop {
            let frame = ws.next().await.unwrap().unwrap();
            if frame.to_text().unwrap_or("").contains("\"type\":3") {
                break;
            }
        }
        if i >= n / 10 {
            samples.push(t.elapsed());
        }
    }
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// The hub's own sending rate: a bare WebSocket client that only counts messages (JSON).
async fn bare_receive_rate(hub: &HubProcess, count: u64, payload: usize) -> f64 {
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/hub", hub.base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text("{\"protocol\":\"json\",\"version\":1}\u{1e}")).await.unwrap();
    let _handshake = ws.next().await.unwrap().unwrap();
    let t = Instant::now();
    let msg = format!("{{\"type\":1,\"invocationId\":\"0\",\"target\":\"Flood\",\"arguments\":[{count},{payload}]}}\u{1e}");
    ws.send(Message::text(msg)).await.unwrap();
    let mut seen = 0u64;
    loop {
        let frame = ws.next().await.unwrap().unwrap();
        let data = frame.into_data();
        seen += memchr::memchr_iter(0x1e, &data).count() as u64;
        // The Completion is the short last message of the exchange (possibly sharing a frame).
        let tail = &data[data.len().saturating_sub(80)..];
        if tail.windows(8).any(|w| w == b"\"type\":3") {
            break;
        }
    }
    assert!(seen > count);
    count as f64 / t.elapsed().as_secs_f64()
}

async fn receive_rate(
    hub: &HubProcess,
    transport: TransportKind,
    protocol: HubProtocol,
    stateful: bool,
    count: u64,
    payload: usize,
) -> f64 {
    let c = connect(hub, transport, protocol, stateful).await;
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    c.on("Flood", move |_args: &Payload| {
        r.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    let t = Instant::now();
    c.invoke("Flood", c.args(&(count, payload)).unwrap()).await.unwrap();
    let elapsed = t.elapsed();
    // Handlers run before the Completion that follows the flood is dispatched.
    assert_eq!(received.load(Ordering::Relaxed), count);
    c.stop().await;
    count as f64 / elapsed.as_secs_f64()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn idle_memory(hub: &HubProcess, n: usize) -> f64 {
    // Warm up the shared parts (TLS roots, HTTP client, runtime) so they are not counted.
    let warm = connect(hub, TransportKind::WebSockets, HubProtocol::Json, false).await;
    warm.stop().await;
    let before = rss_kib();
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        connections.push(
            HubConnectionBuilder::new(format!("{}/hub", hub.base))
                .transports(TransportSet::only(TransportKind::WebSockets))
                .build()
                .unwrap(),
        );
    }
    for chunk in connections.chunks(50) {
        let starts: Vec<_> = chunk.iter().map(|c| c.start()).collect();
        for r in futures_util::future::join_all(starts).await {
            r.unwrap();
        }
    }
    let after = rss_kib();
    for c in &connections {
        c.stop().await;
    }
    (after.saturating_sub(before)) as f64 * 1024.0 / n as f64
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let hub = start_hub();
        let q = quick();
        if std::env::var("BENCH_ONLY").as_deref() == Ok("flood") {
            // For profilers: only the client's receive path.
            let rate = receive_rate(&hub, TransportKind::WebSockets, HubProtocol::Json, false, 2_000_000, 100).await;
            println!("json 100 B flood: {rate:.0} msg/s");
            return;
        }
        if std::env::var("BENCH_ONLY").as_deref() == Ok("stateful") {
            stateful_comparison(&hub, q).await;
            return;
        }
        let n_invoke = if q { 500 } else { 20_000 };
        // HTTP transports pay a request per send (and Long Polling one per receive): fewer calls.
        let n_http = if q { 200 } else { 5_000 };
        println!("signalr-native client benchmarks (hub {})", hub.base);
        println!();
        println!("invoke round trip, sequential Add calls ({n_invoke} on WebSockets, {n_http} on SSE / Long Polling):");
        let (p50, p99) = bare_latency(&hub, n_invoke).await;
        println!("  {:<22}  p50 {:>7.1} us   p99 {:>7.1} us", "bare tokio-tungstenite", us(p50), us(p99));
        for (transport, protocol) in PAIRS {
            let n = if transport == TransportKind::WebSockets { n_invoke } else { n_http };
            let (p50, p99) = invoke_latency(&hub, transport, protocol, false, n).await;
            println!("  {:<22}  p50 {:>7.1} us   p99 {:>7.1} us", label(transport, protocol), us(p50), us(p99));
        }
        println!();
        println!("server-to-client receive rate into a handler (Flood):");
        for (payload, count) in [(100usize, if q { 20_000u64 } else { 1_000_000 }), (10_240, if q { 2_000 } else { 50_000 })] {
            let rate = bare_receive_rate(&hub, count, payload).await;
            println!("  {:<14} {:>6} B x {:>8}: {:>10.0} msg/s  (hub ceiling: bare WebSocket client, JSON)", "bare", payload, count, rate);
            for (transport, protocol) in PAIRS {
                let count = if transport == TransportKind::WebSockets { count } else { count / 5 };
                let rate = receive_rate(&hub, transport, protocol, false, count, payload).await;
                println!(
                    "  {:<14} {:>6} B x {:>8}: {:>10.0} msg/s  ({:.1} MB/s payload)",
                    label(transport, protocol),
                    payload,
                    count,
                    rate,
                    rate * payload as f64 / 1e6
                );
            }
        }
        println!();
        let n = if q { 100 } else { 1_000 };
        let per = idle_memory(&hub, n).await;
        println!("resident memory per idle connection ({n} connections, JSON): {:.1} KiB", per / 1024.0);
        println!();
        stateful_comparison(&hub, q).await;
    });
}

/// WebSockets with stateful reconnect off and on: what the replay buffer and the Acks cost.
async fn stateful_comparison(hub: &HubProcess, q: bool) {
    let n = if q { 500 } else { 20_000 };
    let count = if q { 20_000 } else { 1_000_000 };
    println!("stateful reconnect on WebSockets (round trip: {n} sequential Add; receive: {count} x 100 B Flood):");
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        for stateful in [false, true] {
            let (p50, p99) = invoke_latency(hub, TransportKind::WebSockets, protocol, stateful, n).await;
            let rate = receive_rate(hub, TransportKind::WebSockets, protocol, stateful, count, 100).await;
            println!(
                "  {:<12} stateful {:<5}  p50 {:>7.1} us   p99 {:>7.1} us   receive {:>10.0} msg/s",
                protocol.name(),
                stateful,
                us(p50),
                us(p99),
                rate
            );
        }
    }
}
