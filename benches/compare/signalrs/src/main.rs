//! signalrs-client (crates.io) on the command line of every program of benches/compare (see
//! benches/compare/rust/src/lib.rs). It speaks JSON only; it has no stop: a client is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use signalrs_client::{hub::Hub, SignalRClient};
use tokio::sync::Notify;

const IN_FLIGHT: usize = 100;
const CONNECT_BATCH: usize = 100;
const SETTLE: Duration = Duration::from_millis(500);

struct Args {
    scenario: String,
    host: String,
    port: usize,
    hub: String,
    count: usize,
    payload: usize,
    protocol: String,
}

impl Args {
    fn parse() -> Args {
        let argv: Vec<String> = std::env::args().collect();
        if argv.len() != 6 {
            eprintln!("usage: {} invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack", argv[0]);
            std::process::exit(2);
        }
        let rest = argv[2].strip_prefix("http://").expect("http URL");
        let (authority, hub) = rest.split_once('/').expect("URL with a hub path");
        let (host, port) = authority.split_once(':').expect("URL with a port");
        Args {
            scenario: argv[1].clone(),
            host: host.to_string(),
            port: port.parse().unwrap(),
            hub: hub.to_string(),
            count: argv[3].parse().unwrap(),
            payload: argv[4].parse().unwrap(),
            protocol: argv[5].clone(),
        }
    }

    fn warm_up(&self) -> usize {
        (self.count / 10).max(1)
    }
}

async fn connect(args: &Args, hub: Option<Hub>) -> SignalRClient {
    let mut builder = SignalRClient::builder(&args.host).use_port(args.port).use_hub(&args.hub).use_unencrypted_connection();
    if let Some(hub) = hub {
        builder = builder.with_client_hub(hub);
    }
    builder.build().await.expect("connect")
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e6;
    format!("{{\"p50_us\":{:.3},\"p99_us\":{:.3}}}", at(0.5), at(0.99))
}

/// User + system CPU seconds of this process (all threads) so far.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

async fn invoke(args: &Args) {
    let client = connect(args, None).await;
    let echo = "x".repeat(args.payload);
    let mut samples = Vec::with_capacity(args.count);
    for i in 0..args.count + args.warm_up() {
        let t = Instant::now();
        let _: String = client.method("Echo").arg(echo.clone()).unwrap().invoke().await.unwrap();
        if i >= args.warm_up() {
            samples.push(t.elapsed());
        }
    }
    println!("{}", percentiles(samples));
}

async fn pipelined(args: &Args) {
    let client = connect(args, None).await;
    let echo = "x".repeat(args.payload);
    let run = |n: usize| {
        let (client, echo) = (&client, &echo);
        async move {
            let mut in_flight: FuturesUnordered<_> = FuturesUnordered::new();
            for _ in 0..n {
                if in_flight.len() == IN_FLIGHT {
                    let done: Result<String, _> = in_flight.next().await.unwrap();
                    done.unwrap();
                }
                in_flight.push(async move { client.method("Echo").arg(echo.clone()).unwrap().invoke::<String>().await });
            }
            while let Some(r) = in_flight.next().await {
                r.unwrap();
            }
        }
    };
    run(args.warm_up()).await;
    let t = Instant::now();
    run(args.count).await;
    println!("{{\"calls_per_s\":{:.1}}}", args.count as f64 / t.elapsed().as_secs_f64());
}

static RECEIVED: AtomicU64 = AtomicU64::new(0);
static EXPECTED: AtomicU64 = AtomicU64::new(0);
static ALL_RECEIVED: Notify = Notify::const_new();

async fn on_flood(_i: u64, _payload: String) {
    if RECEIVED.fetch_add(1, Ordering::Relaxed) + 1 == EXPECTED.load(Ordering::Relaxed) {
        ALL_RECEIVED.notify_one();
    }
}

async fn flood(args: &Args) {
    let client = connect(args, Some(Hub::default().method("Flood", on_flood))).await;
    let run = |n: usize| {
        let client = &client;
        async move {
            RECEIVED.store(0, Ordering::Relaxed);
            EXPECTED.store(n as u64, Ordering::Relaxed);
            let all = ALL_RECEIVED.notified();
            let cpu = cpu_seconds();
            let t = Instant::now();
            let _: u64 = client.method("Flood").arg(n).unwrap().arg(args.payload).unwrap().invoke().await.unwrap();
            // Each handler call is a spawned task: wait until the last one ran.
            if RECEIVED.load(Ordering::Relaxed) < n as u64 {
                all.await;
            }
            (t.elapsed(), cpu_seconds() - cpu)
        }
    };
    run(args.warm_up()).await;
    let (elapsed, cpu) = run(args.count).await;
    println!("{{\"msgs_per_s\":{:.1},\"cpu_s\":{:.6}}}", args.count as f64 / elapsed.as_secs_f64(), cpu);
}

async fn connect_time(args: &Args) {
    let mut samples = Vec::with_capacity(args.count);
    for i in 0..args.count + args.warm_up() {
        let t = Instant::now();
        let client = connect(args, None).await;
        if i >= args.warm_up() {
            samples.push(t.elapsed());
        }
        drop(client);
    }
    println!("{}", percentiles(samples));
}

async fn idle(args: &Args) {
    let _warm = connect(args, None).await;
    let before = rss_bytes();
    let mut open = Vec::with_capacity(args.count);
    while open.len() < args.count {
        let batch = CONNECT_BATCH.min(args.count - open.len());
        open.extend(futures::future::join_all((0..batch).map(|_| connect(args, None))).await);
    }
    tokio::time::sleep(SETTLE).await;
    println!("{{\"bytes_per_conn\":{:.1}}}", (rss_bytes().saturating_sub(before)) as f64 / args.count as f64);
    std::process::exit(0);
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.protocol != "json" {
        println!("{{\"unsupported\":\"signalrs-client speaks JSON only\"}}");
        return;
    }
    match args.scenario.as_str() {
        "invoke" => invoke(&args).await,
        "pipelined" => pipelined(&args).await,
        "flood" => flood(&args).await,
        "connect" => connect_time(&args).await,
        "idle" => idle(&args).await,
        other => panic!("unknown scenario {other}"),
    }
    std::process::exit(0);
}
