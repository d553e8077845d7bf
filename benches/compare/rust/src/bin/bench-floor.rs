//! The floor: a bare tokio-tungstenite client that does the SignalR exchange by hand (negotiate
//! as one raw HTTP request, the handshake as text) and fully parses every record it receives
//! (serde_json; rmp-serde into a JSON value for MessagePack). Nothing any SignalR client can
//! skip, so the least any of them can cost. Command line: see the crate docs.

use std::time::{Duration, Instant};

use bench_compare::{cpu_seconds, emit, percentiles_us, rss_bytes, Args, Protocol, Scenario, CONNECT_BATCH, IN_FLIGHT, SETTLE};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("the floor speaks plain http only");
    let slash = rest.find('/').unwrap_or(rest.len());
    (rest[..slash].to_string(), rest[slash..].to_string())
}

/// POST {hub}/negotiate?negotiateVersion=1 over a fresh TCP connection; the connection token.
async fn negotiate(url: &str) -> String {
    let (authority, path) = split_url(url);
    let mut tcp = TcpStream::connect(&authority).await.expect("connect for negotiate");
    let request = format!(
        "POST {path}/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let body_at = memchr::memmem::find(&response, b"\r\n\r\n").expect("HTTP response head") + 4;
    assert!(response.starts_with(b"HTTP/1.1 200"), "negotiate failed: {}", String::from_utf8_lossy(&response));
    let body: Value = serde_json::from_slice(&response[body_at..]).expect("negotiate body (Content-Length framing)");
    body["connectionToken"].as_str().expect("connectionToken").to_string()
}

async fn connect(args: &Args) -> Ws {
    let token = negotiate(&args.url).await;
    let ws_url = format!("{}?id={token}", args.url.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.expect("WebSocket upgrade");
    let name = match args.protocol {
        Protocol::Json => "json",
        Protocol::MessagePack => "messagepack",
    };
    ws.send(Message::text(format!("{{\"protocol\":\"{name}\",\"version\":1}}\u{1e}"))).await.unwrap();
    let answer = ws.next().await.expect("handshake answer").unwrap().into_data();
    assert!(answer.starts_with(b"{}\x1e"), "handshake failed: {}", String::from_utf8_lossy(&answer));
    ws
}

fn invocation(args: &Args, id: u64, target: &str, arguments: Value) -> Message {
    match args.protocol {
        Protocol::Json => {
            let text = serde_json::json!({"type": 1, "invocationId": id.to_string(), "target": target, "arguments": arguments});
            Message::text(format!("{text}\u{1e}"))
        }
        Protocol::MessagePack => {
            let headers = std::collections::HashMap::<String, String>::new();
            let body = rmp_serde::to_vec(&(1, headers, id.to_string(), target, arguments, Vec::<String>::new())).unwrap();
            let mut framed = Vec::with_capacity(body.len() + 5);
            let mut len = body.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                framed.push(if len > 0 { byte | 0x80 } else { byte });
                if len == 0 {
                    break;
                }
            }
            framed.extend_from_slice(&body);
            Message::binary(framed)
        }
    }
}

/// Parses every record of a frame; returns them as JSON values (MessagePack arrays stay arrays).
fn records(args: &Args, frame: &[u8], out: &mut Vec<Value>) {
    match args.protocol {
        Protocol::Json => {
            for record in frame.split(|&b| b == 0x1e).filter(|r| !r.is_empty()) {
                out.push(serde_json::from_slice(record).expect("JSON record"));
            }
        }
        Protocol::MessagePack => {
            let mut rest = frame;
            while !rest.is_empty() {
                let (mut len, mut shift, mut used) = (0usize, 0, 0);
                loop {
                    let b = rest[used];
                    used += 1;
                    len |= ((b & 0x7f) as usize) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                out.push(rmp_serde::from_slice(&rest[used..used + len]).expect("MessagePack record"));
                rest = &rest[used + len..];
            }
        }
    }
}

/// (type, invocation id) of a parsed record.
fn kind(args: &Args, record: &Value) -> (u64, Option<String>) {
    match args.protocol {
        Protocol::Json => (record["type"].as_u64().unwrap_or(0), record["invocationId"].as_str().map(str::to_string)),
        Protocol::MessagePack => (record[0].as_u64().unwrap_or(0), record[2].as_str().map(str::to_string)),
    }
}

async fn next_frame(ws: &mut Ws) -> Vec<u8> {
    loop {
        match ws.next().await.expect("connection open").expect("frame") {
            Message::Text(t) => return t.as_bytes().to_vec(),
            Message::Binary(b) => return b.to_vec(),
            _ => continue,
        }
    }
}

async fn invoke(args: &Args) {
    let mut ws = connect(args).await;
    let echo = Value::from(vec![Value::from(args.echo_text())]);
    let mut samples = Vec::with_capacity(args.count);
    let mut parsed = Vec::new();
    for i in 0..(args.count + args.warm_up()) as u64 {
        let t = Instant::now();
        ws.send(invocation(args, i, "Echo", echo.clone())).await.unwrap();
        let id = i.to_string();
        'wait: loop {
            let frame = next_frame(&mut ws).await;
            parsed.clear();
            records(args, &frame, &mut parsed);
            for r in &parsed {
                if kind(args, r) == (3, Some(id.clone())) {
                    break 'wait;
                }
            }
        }
        if i >= args.warm_up() as u64 {
            samples.push(t.elapsed());
        }
    }
    let (p50, p99) = percentiles_us(samples);
    emit(&[("p50_us", p50), ("p99_us", p99)]);
}

async fn pipelined(args: &Args) {
    let ws = connect(args).await;
    let (mut sink, mut stream) = ws.split();
    let echo = Value::from(vec![Value::from(args.echo_text())]);
    let mut run = async |n: usize, first_id: u64| {
        let (mut sent, mut done) = (0usize, 0usize);
        while sent < n.min(IN_FLIGHT) {
            sink.send(invocation(args, first_id + sent as u64, "Echo", echo.clone())).await.unwrap();
            sent += 1;
        }
        let mut parsed = Vec::new();
        while done < n {
            let frame = match stream.next().await.unwrap().unwrap() {
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Binary(b) => b.to_vec(),
                _ => continue,
            };
            parsed.clear();
            records(args, &frame, &mut parsed);
            for r in &parsed {
                if kind(args, r).0 == 3 {
                    done += 1;
                    if sent < n {
                        sink.send(invocation(args, first_id + sent as u64, "Echo", echo.clone())).await.unwrap();
                        sent += 1;
                    }
                }
            }
        }
    };
    run(args.warm_up(), 1_000_000_000).await;
    let t = Instant::now();
    run(args.count, 0).await;
    emit(&[("calls_per_s", args.count as f64 / t.elapsed().as_secs_f64())]);
}

async fn flood(args: &Args) {
    let mut ws = connect(args).await;
    let mut run = async |n: usize| {
        let cpu = cpu_seconds();
        let t = Instant::now();
        ws.send(invocation(args, 0, "Flood", serde_json::json!([n, args.payload]))).await.unwrap();
        let mut received = 0usize;
        let mut parsed = Vec::new();
        'receive: loop {
            let frame = next_frame(&mut ws).await;
            parsed.clear();
            records(args, &frame, &mut parsed);
            for r in &parsed {
                match kind(args, r).0 {
                    1 => received += 1,
                    3 => break 'receive,
                    _ => {}
                }
            }
        }
        assert_eq!(received, n);
        (t.elapsed(), cpu_seconds() - cpu)
    };
    run(args.warm_up()).await;
    let (elapsed, cpu) = run(args.count).await;
    emit(&[("msgs_per_s", args.count as f64 / elapsed.as_secs_f64()), ("cpu_s", cpu)]);
}

async fn connect_time(args: &Args) {
    let mut samples = Vec::with_capacity(args.count);
    for i in 0..args.count + args.warm_up() {
        let t = Instant::now();
        let mut ws = connect(args).await;
        if i >= args.warm_up() {
            samples.push(t.elapsed());
        }
        ws.close(None).await.unwrap();
    }
    let (p50, p99) = percentiles_us(samples);
    emit(&[("p50_us", p50), ("p99_us", p99)]);
}

/// An idle connection: reads and parses what comes, and pings every 15 s as clients do.
async fn keep_idle(args: &'static Args, mut ws: Ws) {
    let mut ping = tokio::time::interval(Duration::from_secs(15));
    let mut parsed = Vec::new();
    loop {
        tokio::select! {
            _ = ping.tick() => {
                let ping = match args.protocol {
                    Protocol::Json => Message::text("{\"type\":6}\u{1e}"),
                    Protocol::MessagePack => Message::binary(vec![2u8, 0x91, 6]),
                };
                if ws.send(ping).await.is_err() { return; }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => { parsed.clear(); records(args, t.as_bytes(), &mut parsed); }
                Some(Ok(Message::Binary(b))) => { parsed.clear(); records(args, &b, &mut parsed); }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    }
}

async fn idle(args: &'static Args) {
    tokio::spawn(keep_idle(args, connect(args).await));
    let before = rss_bytes();
    let mut opened = 0;
    while opened < args.count {
        let batch = CONNECT_BATCH.min(args.count - opened);
        let connections = futures_util::future::join_all((0..batch).map(|_| connect(args))).await;
        for ws in connections {
            tokio::spawn(keep_idle(args, ws));
        }
        opened += batch;
    }
    tokio::time::sleep(SETTLE).await;
    let after = rss_bytes();
    emit(&[("bytes_per_conn", after.saturating_sub(before) as f64 / args.count as f64)]);
    std::process::exit(0);
}

fn main() {
    let args: &'static Args = Box::leak(Box::new(Args::parse()));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        match args.scenario {
            Scenario::Invoke => invoke(args).await,
            Scenario::Pipelined => pipelined(args).await,
            Scenario::Flood => flood(args).await,
            Scenario::Connect => connect_time(args).await,
            Scenario::Idle => idle(args).await,
        }
    });
}
