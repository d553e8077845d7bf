//! This library through its Rust API (see the crate docs for the command line).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bench_compare::{cpu_seconds, emit, percentiles_us, rss_bytes, Args, Protocol, Scenario, CONNECT_BATCH, IN_FLIGHT, SETTLE};
use futures_util::stream::{FuturesUnordered, StreamExt};
use signalr_native::{HubConnection, HubConnectionBuilder, HubProtocol, TransportKind, TransportSet};

fn connection(args: &Args) -> HubConnection {
    let protocol = match args.protocol {
        Protocol::Json => HubProtocol::Json,
        Protocol::MessagePack => HubProtocol::MessagePack,
    };
    HubConnectionBuilder::new(args.url.clone())
        .transports(TransportSet::only(TransportKind::WebSockets))
        .protocol(protocol)
        .build()
        .expect("build")
}

async fn started(args: &Args) -> HubConnection {
    let c = connection(args);
    c.start().await.expect("start");
    c
}

async fn invoke(args: &Args) {
    let c = started(args).await;
    let echo = c.args(&[args.echo_text()]).unwrap();
    for _ in 0..args.warm_up() {
        c.invoke("Echo", echo.clone()).await.unwrap();
    }
    let mut samples = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let t = Instant::now();
        c.invoke("Echo", echo.clone()).await.unwrap();
        samples.push(t.elapsed());
    }
    c.stop().await;
    let (p50, p99) = percentiles_us(samples);
    emit(&[("p50_us", p50), ("p99_us", p99)]);
}

async fn pipelined(args: &Args) {
    let c = started(args).await;
    let echo = c.args(&[args.echo_text()]).unwrap();
    let run = |n: usize| {
        let c = c.clone();
        let echo = echo.clone();
        async move {
            let mut in_flight: FuturesUnordered<_> = FuturesUnordered::new();
            let call = |c: HubConnection, echo: signalr_native::Payload| async move { c.invoke("Echo", echo).await };
            for _ in 0..n {
                if in_flight.len() == IN_FLIGHT {
                    let done: signalr_native::Result<signalr_native::Payload> = in_flight.next().await.unwrap();
                    done.unwrap();
                }
                in_flight.push(call(c.clone(), echo.clone()));
            }
            while let Some(r) = in_flight.next().await {
                r.unwrap();
            }
        }
    };
    run(args.warm_up()).await;
    let t = Instant::now();
    run(args.count).await;
    let elapsed = t.elapsed();
    c.stop().await;
    emit(&[("calls_per_s", args.count as f64 / elapsed.as_secs_f64())]);
}

async fn flood(args: &Args) {
    let c = started(args).await;
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    c.on("Flood", move |_args| {
        r.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    let run = async |n: usize| {
        received.store(0, Ordering::Relaxed);
        let flood_args = c.args(&(n, args.payload)).unwrap();
        let cpu = cpu_seconds();
        let t = Instant::now();
        c.invoke("Flood", flood_args).await.unwrap();
        // Handlers run before the Completion that follows the flood is dispatched.
        let elapsed = t.elapsed();
        assert_eq!(received.load(Ordering::Relaxed), n as u64);
        (elapsed, cpu_seconds() - cpu)
    };
    run(args.warm_up()).await;
    let (elapsed, cpu) = run(args.count).await;
    c.stop().await;
    emit(&[("msgs_per_s", args.count as f64 / elapsed.as_secs_f64()), ("cpu_s", cpu)]);
}

async fn connect(args: &Args) {
    let mut samples = Vec::with_capacity(args.count);
    for i in 0..args.count + args.warm_up() {
        let c = connection(args);
        let t = Instant::now();
        c.start().await.expect("start");
        if i >= args.warm_up() {
            samples.push(t.elapsed());
        }
        c.stop().await;
    }
    let (p50, p99) = percentiles_us(samples);
    emit(&[("p50_us", p50), ("p99_us", p99)]);
}

async fn idle(args: &Args) {
    // The shared parts (runtime, HTTP client, TLS roots) are warmed by a first connection that
    // is not counted.
    let _warm = started(args).await;
    let before = rss_bytes();
    let mut open = Vec::with_capacity(args.count);
    while open.len() < args.count {
        let batch: Vec<_> = (0..CONNECT_BATCH.min(args.count - open.len())).map(|_| connection(args)).collect();
        let starts: FuturesUnordered<_> = batch.iter().map(|c| c.start()).collect();
        for r in starts.collect::<Vec<_>>().await {
            r.expect("start");
        }
        open.extend(batch);
    }
    tokio::time::sleep(SETTLE).await;
    let after = rss_bytes();
    emit(&[("bytes_per_conn", after.saturating_sub(before) as f64 / args.count as f64)]);
    std::process::exit(0); // without closing 10,000 connections one by one
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        match args.scenario {
            Scenario::Invoke => invoke(&args).await,
            Scenario::Pipelined => pipelined(&args).await,
            Scenario::Flood => flood(&args).await,
            Scenario::Connect => connect(&args).await,
            Scenario::Idle => idle(&args).await,
        }
    });
}
