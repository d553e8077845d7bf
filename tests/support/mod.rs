//! Shared helpers of the integration tests: a real test hub per test, and event recorders.
#![allow(dead_code, unused_macros)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use signalr_native::{
    ConnectionState, Error, HubConnection, HubConnectionBuilder, HubProtocol, Payload, TransportKind, TransportSet,
};
use tokio::sync::mpsc;

pub mod proxy;
pub mod scripted_http;

/// A running `test-hub` process, killed on drop.
pub struct Hub {
    child: Child,
    _stdin: ChildStdin,
    /// `http://127.0.0.1:PORT` (or https with TLS).
    pub base: String,
    /// The self-signed certificate's PEM file when started with TLS.
    pub cert: Option<PathBuf>,
}

/// The hub binary: `$TEST_HUB_BIN`, else `<target dir>/<profile>/test-hub`.
pub fn hub_binary(profile: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os("TEST_HUB_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join(profile).join(format!("test-hub{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let flag = if profile == "release" { " --release" } else { "" };
        panic!("test hub not found at {}: build it first: cargo build -p test-hub{flag}", bin.display());
    }
    bin
}

impl Hub {
    pub fn start() -> Hub {
        Hub::with_args(&[])
    }

    pub fn with_args(args: &[&str]) -> Hub {
        Hub::spawn(&hub_binary("debug"), args, None)
    }

    /// A hub serving https/wss with a fresh self-signed certificate.
    pub fn with_tls(args: &[&str]) -> Hub {
        let dir = std::env::temp_dir().join(format!("signalr-native-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join(format!("hub-{}.pem", unique()));
        Hub::spawn(&hub_binary("debug"), args, Some(cert))
    }

    pub fn spawn(bin: &std::path::Path, args: &[&str], tls_cert: Option<PathBuf>) -> Hub {
        let mut command = Command::new(bin);
        command.args(["--port", "0", "--exit-on-stdin-eof"]).args(args);
        if let Some(cert) = &tls_cert {
            command.arg("--tls").arg(cert);
        }
        let stderr = if std::env::var_os("TEST_HUB_LOG").is_some() { Stdio::inherit() } else { Stdio::null() };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("hub stdout");
        let base = line.trim().to_string();
        assert!(base.starts_with("http"), "hub printed {line:?} instead of its URL");
        Hub { child, _stdin: stdin, base, cert: tls_cert }
    }

    /// URL of a hub path, e.g. `hub.url("/hub")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Both hub protocols, for tests that run once per protocol.
pub const PROTOCOLS: [HubProtocol; 2] = [HubProtocol::Json, HubProtocol::MessagePack];

pub fn json(text: &str) -> Payload {
    Payload::from_json(text.to_string()).expect("valid JSON in test")
}

/// A payload as compact JSON text, whatever its format.
pub fn text(p: &Payload) -> String {
    let v: serde_json::Value = serde_json::from_str(&p.to_json().expect("payload to JSON")).unwrap();
    v.to_string()
}

/// The next item of a recorder; fails the test if none comes within a generous bound (a hang
/// guard, not a timing assertion).
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within 60 s"))
        .unwrap_or_else(|| panic!("{what} channel closed"))
}

/// A lifecycle event, as recorded by [`Events`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Closed(Option<Error>),
    Reconnecting(Error),
    Reconnected(Option<String>),
}

/// Records lifecycle callbacks in order, to be awaited one by one.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    pub fn attach(connection: &HubConnection) -> Events {
        let (tx, rx) = mpsc::unbounded_channel();
        let t = tx.clone();
        connection.on_close(move |e| {
            let _ = t.send(Event::Closed(e.cloned()));
        });
        let t = tx.clone();
        connection.on_reconnecting(move |e| {
            let _ = t.send(Event::Reconnecting(e.clone()));
        });
        connection.on_reconnected(move |id| {
            let _ = tx.send(Event::Reconnected(id.map(str::to_string)));
        });
        Events { rx }
    }

    pub async fn next(&mut self) -> Event {
        recv(&mut self.rx, "lifecycle event").await
    }

    /// No event is queued right now.
    pub fn none_pending(&mut self) -> bool {
        self.rx.try_recv().is_err()
    }
}

/// Records the arguments of every call to a client method, to be awaited one by one.
pub struct Calls {
    rx: mpsc::UnboundedReceiver<Payload>,
}

impl Calls {
    pub fn attach(connection: &HubConnection, method: &str) -> Calls {
        let (tx, rx) = mpsc::unbounded_channel();
        connection
            .on(method, move |args| {
                let _ = tx.send(args.clone());
            })
            .unwrap();
        Calls { rx }
    }

    pub async fn next(&mut self) -> Payload {
        recv(&mut self.rx, "call").await
    }

    pub fn try_next(&mut self) -> Option<Payload> {
        self.rx.try_recv().ok()
    }
}

/// A transport with a hub protocol it can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub transport: TransportKind,
    pub protocol: HubProtocol,
}

impl Pair {
    pub const WEBSOCKETS_JSON: Pair = Pair { transport: TransportKind::WebSockets, protocol: HubProtocol::Json };
    pub const WEBSOCKETS_MESSAGEPACK: Pair =
        Pair { transport: TransportKind::WebSockets, protocol: HubProtocol::MessagePack };
    pub const SERVER_SENT_EVENTS_JSON: Pair =
        Pair { transport: TransportKind::ServerSentEvents, protocol: HubProtocol::Json };
    pub const LONG_POLLING_JSON: Pair = Pair { transport: TransportKind::LongPolling, protocol: HubProtocol::Json };
    pub const LONG_POLLING_MESSAGEPACK: Pair =
        Pair { transport: TransportKind::LongPolling, protocol: HubProtocol::MessagePack };

    pub fn is_long_polling(self) -> bool {
        self.transport == TransportKind::LongPolling
    }
}

/// Every transport x protocol pair the spec allows (MessagePack never over Server-Sent Events).
pub const PAIRS: [Pair; 5] = [
    Pair::WEBSOCKETS_JSON,
    Pair::WEBSOCKETS_MESSAGEPACK,
    Pair::SERVER_SENT_EVENTS_JSON,
    Pair::LONG_POLLING_JSON,
    Pair::LONG_POLLING_MESSAGEPACK,
];

/// A protocol alone means WebSockets.
impl From<HubProtocol> for Pair {
    fn from(protocol: HubProtocol) -> Pair {
        Pair { transport: TransportKind::WebSockets, protocol }
    }
}

/// Defines each test once and runs it over every pair of [`PAIRS`]: `pair_tests! { async fn
/// name(pair) { … } … }` becomes a module `name` with one `#[tokio::test]` per pair
/// (`name::long_polling_messagepack`, …), so a failure names its pair. `json_pair_tests!` and
/// `messagepack_pair_tests!` do the same over the pairs of one protocol.
macro_rules! pair_tests {
    ($($tests:tt)*) => {
        tests_over_pairs!([
            websockets_json = WEBSOCKETS_JSON,
            websockets_messagepack = WEBSOCKETS_MESSAGEPACK,
            server_sent_events_json = SERVER_SENT_EVENTS_JSON,
            long_polling_json = LONG_POLLING_JSON,
            long_polling_messagepack = LONG_POLLING_MESSAGEPACK
        ] $($tests)*);
    };
}

macro_rules! json_pair_tests {
    ($($tests:tt)*) => {
        tests_over_pairs!([
            websockets_json = WEBSOCKETS_JSON,
            server_sent_events_json = SERVER_SENT_EVENTS_JSON,
            long_polling_json = LONG_POLLING_JSON
        ] $($tests)*);
    };
}

macro_rules! messagepack_pair_tests {
    ($($tests:tt)*) => {
        tests_over_pairs!([
            websockets_messagepack = WEBSOCKETS_MESSAGEPACK,
            long_polling_messagepack = LONG_POLLING_MESSAGEPACK
        ] $($tests)*);
    };
}

macro_rules! tests_over_pairs {
    ([$($test:ident = $pair:ident),*]) => {};
    ([$($test:ident = $pair:ident),*] async fn $name:ident($p:ident) $body:block $($rest:tt)*) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($p: support::Pair) $body

            $(
                #[tokio::test]
                async fn $test() {
                    run(support::Pair::$pair).await
                }
            )*
        }
        tests_over_pairs!([$($test = $pair),*] $($rest)*);
    };
}

/// A builder for `/hub` over exactly this pair's transport (a bare protocol: WebSockets).
pub fn builder(hub: &Hub, pair: impl Into<Pair>) -> HubConnectionBuilder {
    builder_at(&hub.url("/hub"), pair)
}

pub fn builder_at(url: &str, pair: impl Into<Pair>) -> HubConnectionBuilder {
    let pair = pair.into();
    HubConnectionBuilder::new(url).protocol(pair.protocol).transports(TransportSet::only(pair.transport))
}

/// A started connection to `/hub`.
pub async fn connect(hub: &Hub, pair: impl Into<Pair>) -> HubConnection {
    let pair = pair.into();
    let c = builder(hub, pair).build().unwrap();
    c.start().await.unwrap();
    assert_eq!(c.state(), ConnectionState::Connected);
    assert_eq!(c.transport(), Some(pair.transport));
    c
}

/// Invokes with JSON arguments and returns the result as compact JSON text.
pub async fn call(c: &HubConnection, method: &str, args: &str) -> Result<String, Error> {
    c.invoke(method, json(args)).await.map(|p| text(&p))
}

/// Queues an invocation and returns its pending result; the message is on its way when this
/// returns, so invocation ids follow call order.
pub async fn begin(c: &HubConnection, method: &str, args: &str) -> signalr_native::PendingInvocation {
    c.invoke_with_uploads(method, json(args), 0).await.unwrap().0
}

/// A one-connection WebSocket server speaking from a script, for what the test hub cannot do
/// (odd handshake answers). It records every frame the client sends. `start_on` gives the same
/// over Server-Sent Events or Long Polling (see `scripted_http`).
pub struct ScriptedServer {
    /// `ws://127.0.0.1:PORT/hub` (`http://…` for the HTTP transports)
    pub url: String,
    pub transport: TransportKind,
    /// Frames received from the client, in order (text frames as `Ok`, binary as `Err`).
    pub received: mpsc::UnboundedReceiver<Result<String, Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the scripted server sends after it read the handshake request.
pub enum Reply {
    Text(String),
    Binary(Vec<u8>),
    /// A close frame with this code and reason.
    Close(u16, String),
}

impl ScriptedServer {
    /// The script over `transport`; the client negotiates first on the HTTP transports.
    pub async fn start_on(transport: TransportKind, replies: Vec<Reply>) -> ScriptedServer {
        if transport == TransportKind::WebSockets {
            return ScriptedServer::start(replies).await;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hub", listener.local_addr().unwrap());
        let (tx, received) = mpsc::unbounded_channel();
        let task = tokio::spawn(scripted_http::serve(listener, transport, replies, tx));
        ScriptedServer { url, transport, received, task }
    }

    pub async fn start(replies: Vec<Reply>) -> ScriptedServer {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        use tokio_tungstenite::tungstenite::Message;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/hub", listener.local_addr().unwrap());
        let (tx, received) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let record = |m: Message| match m {
                Message::Text(t) => Some(Ok(t.to_string())),
                Message::Binary(b) => Some(Err(b.to_vec())),
                _ => None,
            };
            if let Some(Ok(m)) = ws.next().await {
                if let Some(r) = record(m) {
                    let _ = tx.send(r);
                }
            }
            for reply in replies {
                let m = match reply {
                    Reply::Text(t) => Message::text(t),
                    Reply::Binary(b) => Message::binary(b),
                    Reply::Close(code, reason) => {
                        Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))
                    }
                };
                if ws.send(m).await.is_err() {
                    return;
                }
            }
            while let Some(Ok(m)) = ws.next().await {
                if let Some(r) = record(m) {
                    let _ = tx.send(r);
                }
            }
        });
        ScriptedServer { url, transport: TransportKind::WebSockets, received, task }
    }

    pub async fn next_frame(&mut self) -> Result<String, Vec<u8>> {
        recv(&mut self.received, "frame").await
    }

    /// A builder for this server: straight to the WebSocket (skip negotiation), or negotiating
    /// the scripted HTTP transport.
    pub fn builder(&self, protocol: HubProtocol) -> HubConnectionBuilder {
        if self.transport == TransportKind::WebSockets {
            return ScriptedServer::builder_for(&self.url, protocol);
        }
        HubConnectionBuilder::new(&self.url).protocol(protocol).transports(TransportSet::only(self.transport))
    }

    /// A builder that connects straight to the WebSocket at `url` (skip negotiation).
    pub fn builder_for(url: &str, protocol: HubProtocol) -> HubConnectionBuilder {
        HubConnectionBuilder::new(url)
            .protocol(protocol)
            .skip_negotiation(true)
            .transports(TransportSet::only(TransportKind::WebSockets))
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
