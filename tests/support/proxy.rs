//! A recording HTTP/1.1 proxy in front of the test hub: it forwards every byte unchanged and
//! records the head of every request (method, target, headers), so tests can check what each
//! request of each transport carried. It can also answer the next requests of a method itself
//! (e.g. with 401) instead of forwarding them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The head of one request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, e.g. `/hub?id=…`.
    pub target: String,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The status the proxy answered itself instead of forwarding (see `refuse_next`).
    pub refused: Option<u16>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(&format!("http://x{}", self.target)).ok()?;
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn is_negotiate(&self) -> bool {
        self.path().ends_with("/negotiate")
    }

    pub fn is_websocket(&self) -> bool {
        self.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    pub fn is_event_stream(&self) -> bool {
        self.method == "GET" && self.header("accept") == Some("text/event-stream")
    }
}

#[derive(Default)]
struct Shared {
    requests: Vec<Request>,
    /// Answer the next requests of a method with a status instead of forwarding them.
    refuse: VecDeque<(String, u16)>,
}

pub struct Proxy {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), s.clone()));
            }
        });
        Proxy { base, shared, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// The next request with `method` (after those already queued) is answered `status` by the
    /// proxy itself.
    pub fn refuse_next(&self, method: &str, status: u16) {
        self.shared.lock().unwrap().refuse.push_back((method.to_string(), status));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: String, shared: Arc<Mutex<Shared>>) {
    let Ok(server) = TcpStream::connect(&upstream).await else { return };
    let (mut from_client, to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let to_client = Arc::new(tokio::sync::Mutex::new(to_client));
    let back = to_client.clone();
    let responses = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if back.lock().await.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = back.lock().await.shutdown().await;
    });
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    'requests: loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => break 'requests,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let request = parse_head(&buf[..head_end]);
        let length: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let raw_after = request.is_websocket() || request.header("transfer-encoding").is_some();
        while buf.len() < head_end + length {
            match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => break 'requests,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let refused = {
            let mut shared = shared.lock().unwrap();
            let refused = match shared.refuse.front() {
                Some((method, status)) if *method == request.method => {
                    let status = *status;
                    shared.refuse.pop_front();
                    Some(status)
                }
                _ => None,
            };
            shared.requests.push(Request { refused, ..request });
            refused
        };
        let message: Vec<u8> = buf.drain(..head_end + length).collect();
        if let Some(status) = refused {
            let answer = format!("HTTP/1.1 {status} Refused by proxy\r\nContent-Length: 0\r\n\r\n");
            if to_client.lock().await.write_all(answer.as_bytes()).await.is_err() {
                break;
            }
            continue;
        }
        if to_server.write_all(&message).await.is_err() {
            break;
        }
        if raw_after {
            // A WebSocket (or a chunked body): relay the rest as it is, recording nothing more.
            if to_server.write_all(&buf).await.is_err() {
                break;
            }
            let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
            break;
        }
    }
    let _ = to_server.shutdown().await;
    let _ = responses.await;
}

pub fn parse_head(head: &[u8]) -> Request {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Request { method, target, headers, refused: None }
}
