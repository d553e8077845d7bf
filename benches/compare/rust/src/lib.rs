//! What every benchmark program of `benches/compare` shares: the command line, the figures it
//! prints (one JSON line on stdout) and the process measurements (CPU time, resident memory).
//!
//! Command line of every program (in every language):
//! `PROGRAM SCENARIO HUB_URL COUNT PAYLOAD_BYTES PROTOCOL`, scenarios:
//! - `invoke`: COUNT sequential `Echo(s)` calls (s = PAYLOAD_BYTES characters) after COUNT/10
//!   warm-up calls → `{"p50_us", "p99_us"}`;
//! - `pipelined`: COUNT `Echo(s)` calls with 100 in flight → `{"calls_per_s"}`;
//! - `flood`: `Flood(COUNT, PAYLOAD_BYTES)` into a handler → `{"msgs_per_s", "cpu_s"}` (client
//!   CPU seconds, user + system, while receiving);
//! - `connect`: COUNT sequential starts (negotiate, WebSocket upgrade, handshake), each stopped
//!   before the next → `{"p50_us", "p99_us"}`;
//! - `idle`: COUNT connections open at once → `{"bytes_per_conn"}` (resident memory growth).
//!
//! A combination the client lacks prints `{"unsupported": "why"}`.

use std::time::Duration;

pub const IN_FLIGHT: usize = 100;
/// How many connections start at once in the `idle` scenario.
pub const CONNECT_BATCH: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Invoke,
    Pipelined,
    Flood,
    Connect,
    Idle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Json,
    MessagePack,
}

pub struct Args {
    pub scenario: Scenario,
    pub url: String,
    pub count: usize,
    pub payload: usize,
    pub protocol: Protocol,
}

impl Args {
    pub fn parse() -> Args {
        let argv: Vec<String> = std::env::args().collect();
        let usage = || -> ! {
            eprintln!("usage: {} invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack", argv[0]);
            std::process::exit(2)
        };
        if argv.len() != 6 {
            usage();
        }
        let scenario = match argv[1].as_str() {
            "invoke" => Scenario::Invoke,
            "pipelined" => Scenario::Pipelined,
            "flood" => Scenario::Flood,
            "connect" => Scenario::Connect,
            "idle" => Scenario::Idle,
            _ => usage(),
        };
        let protocol = match argv[5].as_str() {
            "json" => Protocol::Json,
            "messagepack" => Protocol::MessagePack,
            _ => usage(),
        };
        let (Ok(count), Ok(payload)) = (argv[3].parse(), argv[4].parse()) else { usage() };
        Args { scenario, url: argv[2].clone(), count, payload, protocol }
    }

    /// The string `Echo` gets back and forth.
    pub fn echo_text(&self) -> String {
        "x".repeat(self.payload)
    }

    pub fn warm_up(&self) -> usize {
        (self.count / 10).max(1)
    }
}

/// Prints the figures as one JSON object line.
pub fn emit(fields: &[(&str, f64)]) {
    let mut map = serde_json::Map::new();
    for (k, v) in fields {
        map.insert((*k).to_string(), serde_json::json!(v));
    }
    println!("{}", serde_json::Value::Object(map));
}

pub fn unsupported(why: &str) -> ! {
    println!("{}", serde_json::json!({ "unsupported": why }));
    std::process::exit(0)
}

/// p50 and p99 in microseconds.
pub fn percentiles_us(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// User + system CPU seconds of this process (all threads) so far.
pub fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Resident set size of this process in bytes (VmRSS).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Lets freshly opened connections settle (their first reads and keep-alive timers) before the
/// resident memory is read.
pub const SETTLE: Duration = Duration::from_millis(500);
