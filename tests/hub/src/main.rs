//! test-hub: a SignalR server that behaves toward clients as ASP.NET Core does (SPEC.md).
//! Prints its base URL as the first line of stdout, logs to stderr (`RUST_LOG`).

// Request handlers return ready-made HTTP answers (`Response`) as their error values.
#![allow(clippy::result_large_err)]

mod app;
mod auth;
mod connections;
mod faults;
mod groups;
mod hub_methods;
mod invocations;
mod negotiate;
mod options;
mod outbound;
mod request_info;
mod routes;
mod serve;
mod session;
mod signal;
mod stateful;
mod tls;
mod transports;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::app::App;
use crate::options::{Options, USAGE};

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("test-hub: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("test-hub: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test-hub: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| "warn".parse().expect("a valid default filter"));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).with(filter).init();
}

async fn run(opts: Options) -> Result<(), String> {
    let listener = TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", opts.host, opts.port))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let tls = match &opts.tls_cert_out {
        Some(path) => Some(tls::acceptor_with_new_certificate(path)?),
        None => None,
    };
    let base_url = format!("{}://{address}", if tls.is_some() { "https" } else { "http" });
    let exit_on_eof = opts.exit_on_stdin_eof;
    let app = Arc::new(App::new(opts, base_url.clone()));
    tokio::spawn(connections::reap_inactive(app.clone()));
    let router = routes::router(app);

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{base_url}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
    drop(stdout);

    tokio::select! {
        () = serve::serve(listener, tls, router) => Ok(()),
        () = shutdown_signal() => Ok(()),
        () = stdin_eof(), if exit_on_eof => Ok(()),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await.unwrap_or(()),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn stdin_eof() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}
