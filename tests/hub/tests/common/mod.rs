//! Test helpers: start the real test-hub binary, talk raw HTTP/1.1 and WebSocket to it.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

pub const RS: char = '\u{1e}';

/// A running test-hub; killed on drop (and it exits on its own when our stdin pipe closes).
pub struct Hub {
    pub base: String,
    pub addr: String,
    _child: Child,
}

impl Hub {
    pub async fn start(extra: &[&str]) -> Hub {
        let mut child = Command::new(env!("CARGO_BIN_EXE_test-hub"))
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("test-hub starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await.expect("URL line");
        let base = line.trim().to_owned();
        let addr = base.split("://").nth(1).expect("scheme://host:port").to_owned();
        Hub { base, addr, _child: child }
    }

    /// One HTTP request on a fresh connection (`Connection: close`), read to the end.
    pub async fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        let mut stream = TcpStream::connect(&self.addr).await.expect("connect");
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        HttpResponse::parse(&raw)
    }

    /// Opens a request whose response streams (SSE); returns the stream after the request is sent.
    pub async fn open(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> TcpStream {
        let mut stream = TcpStream::connect(&self.addr).await.expect("connect");
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        stream
    }

    /// `POST /hub/negotiate?negotiateVersion=1` (or `query` as given) and its JSON.
    pub async fn negotiate(&self, hub: &str, query: &str) -> Value {
        let response = self.http("POST", &format!("/{hub}/negotiate{query}"), &[], b"").await;
        assert_eq!(response.status, 200, "negotiate: {}", response.text());
        serde_json::from_slice(&response.body).expect("negotiate JSON")
    }

    pub async fn websocket(&self, path_and_query: &str) -> Ws {
        let url = format!("ws://{}{path_and_query}", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
        Ws { ws }
    }

    /// A negotiated WebSocket connection that completed the JSON handshake.
    pub async fn json_connection(&self) -> Ws {
        let negotiation = self.negotiate("hub", "?negotiateVersion=1").await;
        let token = negotiation["connectionToken"].as_str().unwrap();
        let mut ws = self.websocket(&format!("/hub?id={token}")).await;
        ws.send_text(&format!("{{\"protocol\":\"json\",\"version\":1}}{RS}")).await;
        assert_eq!(ws.next_text().await, format!("{{}}{RS}"));
        ws
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn parse(raw: &[u8]) -> HttpResponse {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
            body = dechunk(&body);
        }
        HttpResponse { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
    out
}

pub struct Ws {
    pub ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws.send(Message::binary(data.to_vec())).await.expect("send");
    }

    /// The next data frame, skipping ping/pong frames.
    pub async fn next_frame(&mut self) -> Message {
        loop {
            match self.ws.next().await.expect("socket open").expect("read") {
                Message::Ping(_) | Message::Pong(_) => continue,
                message => return message,
            }
        }
    }

    pub async fn next_text(&mut self) -> String {
        match self.next_frame().await {
            Message::Text(text) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next JSON hub message, skipping Pings (type 6); frames may hold several messages.
    pub async fn next_json(&mut self, pending: &mut Vec<Value>) -> Value {
        loop {
            if !pending.is_empty() {
                let message = pending.remove(0);
                if message["type"] != 6 {
                    return message;
                }
                continue;
            }
            let text = self.next_text().await;
            for record in text.split(RS).filter(|r| !r.is_empty()) {
                pending.push(serde_json::from_str(record).expect("JSON message"));
            }
        }
    }

    /// Sends one JSON hub message and returns the next message received (Pings skipped).
    pub async fn call(&mut self, pending: &mut Vec<Value>, message: Value) -> Value {
        self.send_text(&format!("{message}{RS}")).await;
        within("answer", self.next_json(pending)).await
    }

    /// Reads until the socket ends; returns the close frame's code if there was one.
    pub async fn closed(&mut self) -> Option<u16> {
        while let Some(next) = self.ws.next().await {
            match next {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }
}

/// Waits for an event; a generous bound only so a broken hub fails the test instead of hanging.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
