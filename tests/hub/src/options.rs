//! Command line of the test hub (see SPEC.md "Command line").

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "usage: test-hub [--host 127.0.0.1] [--port 0] [--tls CERT_OUT] \
[--keep-alive-ms 15000] [--client-timeout-ms 30000] [--handshake-timeout-ms 15000] \
[--stateful-buffer-bytes 100000] [--max-message-bytes 33554432] [--disconnect-timeout-ms 30000] \
[--poll-timeout-ms 90000] [--exit-on-stdin-eof]";

#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    /// Serve https/wss and write the self-signed certificate (PEM) to this path.
    pub tls_cert_out: Option<PathBuf>,
    pub keep_alive: Duration,
    pub client_timeout: Duration,
    pub handshake_timeout: Duration,
    pub stateful_buffer_bytes: usize,
    pub max_message_bytes: usize,
    /// How long a connection without an active transport is kept (ASP.NET `DisconnectTimeout`):
    /// negotiated but never connected, Long Polling between polls, stateful WebSocket dropped.
    pub disconnect_timeout: Duration,
    /// How long a Long Polling poll waits for data before answering 200 with no body.
    pub poll_timeout: Duration,
    pub exit_on_stdin_eof: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "127.0.0.1".into(),
            port: 0,
            tls_cert_out: None,
            keep_alive: Duration::from_millis(15_000),
            client_timeout: Duration::from_millis(30_000),
            handshake_timeout: Duration::from_millis(15_000),
            stateful_buffer_bytes: 100_000,
            max_message_bytes: 32 * 1024 * 1024,
            disconnect_timeout: Duration::from_millis(30_000),
            poll_timeout: Duration::from_millis(90_000),
            exit_on_stdin_eof: false,
        }
    }
}

impl Options {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut opts = Options::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--exit-on-stdin-eof" {
                opts.exit_on_stdin_eof = true;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--host" => opts.host = value,
                "--port" => opts.port = number(&flag, &value)?,
                "--tls" => opts.tls_cert_out = Some(PathBuf::from(value)),
                "--keep-alive-ms" => opts.keep_alive = millis(&flag, &value)?,
                "--client-timeout-ms" => opts.client_timeout = millis(&flag, &value)?,
                "--handshake-timeout-ms" => opts.handshake_timeout = millis(&flag, &value)?,
                "--stateful-buffer-bytes" => opts.stateful_buffer_bytes = number(&flag, &value)?,
                "--max-message-bytes" => opts.max_message_bytes = number(&flag, &value)?,
                "--disconnect-timeout-ms" => opts.disconnect_timeout = millis(&flag, &value)?,
                "--poll-timeout-ms" => opts.poll_timeout = millis(&flag, &value)?,
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(opts)
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: '{value}' is not a valid number"))
}

fn millis(flag: &str, value: &str) -> Result<Duration, String> {
    let ms: u64 = number(flag, value)?;
    if ms == 0 {
        return Err(format!("{flag} must be greater than 0"));
    }
    Ok(Duration::from_millis(ms))
}
