//! Server-Sent Events transport (S-1 … S-6): the server's messages arrive as the events of one
//! long `GET` (`Accept: text/event-stream`); the client sends with `POST` (see `http_send`).
//! Text only: the event stream cannot carry MessagePack.

use bytes::Bytes;
use memchr::{memchr, memchr2};
use reqwest::Method;
use tokio_util::sync::CancellationToken;

use super::http_send::PostSender;
use super::ConnectRequest;
use crate::error::{Error, Result};
use crate::http::{request_error, status_error, TransportHttp};
use crate::protocol::Format;

/// S-1: what the official clients say when asked for a binary protocol over SSE.
pub(crate) const TEXT_ONLY: &str =
    "The Server-Sent Events transport only supports the 'Text' transfer format (use the JSON protocol, \
     or WebSockets or Long Polling for MessagePack).";

pub(crate) async fn connect(request: ConnectRequest) -> Result<(Reader, Writer)> {
    if request.format != Format::Json {
        return Err(Error::NotSupported(TEXT_ONLY.into()));
    }
    let http = TransportHttp::new(request.http, &request.headers, request.auth, request.timeout)?;
    // A-4: the event-stream GET carries the token as `access_token` (as the official clients do;
    // servers read it there for SSE) and, since a native client can, as a header too.
    let mut get_url = request.url.clone();
    if let Some(token) = http.auth.current() {
        get_url.query_pairs_mut().append_pair("access_token", &token);
    }
    // The GET lasts as long as the connection: only its opening is timed.
    let opening = http
        .request(Method::GET, &get_url)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send();
    let response = match tokio::time::timeout(request.timeout, opening).await {
        Err(_) => {
            return Err(Error::Timeout(format!(
                "the Server-Sent Events request took longer than {} ms to open",
                request.timeout.as_millis()
            )))
        }
        Ok(r) => r.map_err(|e| request_error(&Method::GET, &request.url, e))?,
    };
    if !response.status().is_success() {
        return Err(status_error("the Server-Sent Events request", &request.url, response.status()));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/event-stream") {
        return Err(Error::Transport(format!(
            "the Server-Sent Events request was answered with Content-Type '{content_type}', not text/event-stream"
        )));
    }
    let closed = CancellationToken::new();
    let reader = Reader { response, events: EventStream::default(), closed: closed.clone() };
    let writer = Writer { sender: PostSender::new(http, request.url, request.format, "ServerSentEvents"), closed };
    Ok((reader, writer))
}

pub(crate) struct Reader {
    response: reqwest::Response,
    events: EventStream,
    closed: CancellationToken,
}

impl Reader {
    /// The data of the next events (S-4). Cancel-safe: a chunk is parsed as soon as it arrives.
    pub async fn recv(&mut self) -> Option<Result<Bytes>> {
        loop {
            if let Some(data) = self.events.take_data() {
                return Some(Ok(data));
            }
            let chunk = tokio::select! {
                biased;
                _ = self.closed.cancelled() => return None,
                chunk = self.response.chunk() => chunk,
            };
            match chunk {
                Ok(Some(bytes)) => self.events.push(&bytes),
                // S-6: the end of the stream closes the transport.
                Ok(None) => return None,
                Err(e) => {
                    return Some(Err(Error::Transport(format!(
                        "the Server-Sent Events stream failed: {}",
                        crate::error::with_sources(&e)
                    ))))
                }
            }
        }
    }
}

pub(crate) struct Writer {
    pub sender: PostSender,
    closed: CancellationToken,
}

impl Writer {
    /// Ends the event stream: the reader stops and the GET is dropped, which tells the server.
    pub fn close(&mut self) {
        self.closed.cancel();
    }
}

/// An incremental `text/event-stream` parser (WHATWG HTML, "Interpreting an event stream"):
/// lines end in CRLF, LF or CR (also when a CRLF is split between chunks); `:` lines are
/// comments; an event's `data:` lines are joined with LF; a blank line ends the event. Only the
/// data of `message` events is kept; `id` and `retry` are irrelevant here.
#[derive(Default)]
pub(crate) struct EventStream {
    /// A line not yet terminated at the end of the last chunk.
    partial: Vec<u8>,
    /// The data of the event being read, each line followed by LF.
    data: Vec<u8>,
    /// The event has an `event:` field naming a type other than `message`.
    other_type: bool,
    /// The last chunk ended with CR: an LF at the start of the next one ends nothing.
    after_cr: bool,
    /// The first line was seen (a byte-order mark may precede it).
    started: bool,
    /// Data of complete events, concatenated, not yet taken.
    ready: Vec<u8>,
}

impl EventStream {
    pub fn push(&mut self, mut chunk: &[u8]) {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while let Some(end) = memchr2(b'\r', b'\n', chunk) {
            if self.partial.is_empty() {
                self.line(&chunk[..end]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[..end]);
                self.line(&line);
                line.clear();
                self.partial = line; // keeps the allocation
            }
            let cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.partial.extend_from_slice(chunk);
    }

    /// The data of the events completed so far, if any.
    pub fn take_data(&mut self) -> Option<Bytes> {
        (!self.ready.is_empty()).then(|| Bytes::from(std::mem::take(&mut self.ready)))
    }

    fn line(&mut self, mut line: &[u8]) {
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return; // a comment
        }
        let (field, value) = match memchr(b':', line) {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => self.other_type = !value.is_empty() && value != b"message",
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        if !self.data.is_empty() && !self.other_type {
            self.data.pop(); // the LF after the last line
            if self.ready.is_empty() {
                std::mem::swap(&mut self.ready, &mut self.data);
            } else {
                self.ready.extend_from_slice(&self.data);
            }
        }
        self.data.clear();
        self.other_type = false;
    }
}

#[cfg(test)]
mod tests {
    use super::EventStream;

    /// Feeds `chunks` and returns the data delivered after each chunk.
    fn parse(chunks: &[&[u8]]) -> Vec<String> {
        let mut events = EventStream::default();
        chunks
            .iter()
            .map(|c| {
                events.push(c);
                events.take_data().map(|b| String::from_utf8(b.to_vec()).unwrap()).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn events_end_at_a_blank_line_with_any_line_ending() {
        assert_eq!(parse(&[b":\r\ndata: {}\x1e\r\n\r\n"]), ["{}\x1e"]);
        assert_eq!(parse(&[b"data: a\n\n"]), ["a"]);
        assert_eq!(parse(&[b"data: a\r\rdata: b\r\n\r\n"]), ["ab"]);
        // Two events in one chunk: their data is delivered in order.
        assert_eq!(parse(&[b"data: 1\x1e\r\n\r\ndata: 2\x1e\r\n\r\n"]), ["1\x1e2\x1e"]);
    }

    #[test]
    fn multi_line_data_is_joined_with_line_feeds() {
        assert_eq!(parse(&[b"data: a\r\ndata: b\r\ndata:c\r\n\r\n"]), ["a\nb\nc"]);
        // An empty data line adds an empty line; only one space after the colon is removed.
        assert_eq!(parse(&[b"data: a\ndata:\ndata:  b\n\n"]), ["a\n\n b"]);
    }

    #[test]
    fn comments_other_fields_and_other_event_types_are_ignored() {
        assert_eq!(parse(&[b": hello\r\nid: 7\r\nretry: 10\r\ndata: x\r\n\r\n"]), ["x"]);
        assert_eq!(parse(&[b"event: ping\ndata: skipped\n\nevent: message\ndata: kept\n\n"]), ["kept"]);
        // A field without a colon is a field with an empty value; a blank line without data
        // dispatches nothing.
        assert_eq!(parse(&[b"data\n\n\n\ndata: y\n\n"]), ["y"]);
        assert_eq!(parse(&[b"\xEF\xBB\xBFdata: bom\n\n"]), ["bom"]);
    }

    #[test]
    fn events_split_anywhere_between_chunks() {
        assert_eq!(parse(&[b"da", b"ta: he", b"llo\r", b"\n", b"\r", b"\n"]), ["", "", "", "", "hello", ""]);
        // A CR at the end of a chunk ends the line; the LF that follows in the next chunk does not
        // end another one (which would dispatch the event early).
        assert_eq!(parse(&[b"data: a\r", b"\ndata: b\r\n\r\n"]), ["", "a\nb"]);
        assert_eq!(parse(&[b"data: a\r", b"\r"]), ["", "a"]);
        // Every split point of a stream gives the same data.
        let stream: &[u8] = b":\r\ndata: {\"type\":6}\x1e\r\n\r\ndata: x\rdata: y\n\r\n";
        for split in 0..=stream.len() {
            let out = parse(&[&stream[..split], &stream[split..]]).concat();
            assert_eq!(out, "{\"type\":6}\x1ex\ny", "split at {split}");
        }
        // An event cut by the end of the stream is not delivered.
        assert_eq!(parse(&[b"data: unfinished\r\n"]), [""]);
    }
}
