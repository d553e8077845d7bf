//! A small chat client.
//!
//!     cargo run --example chat -- [--demo] [--messagepack] [--name NAME] [URL]
//!
//! Connects to the hub at URL (default `http://127.0.0.1:5000/hub`), prints every `Message` the
//! hub broadcasts, and broadcasts each line typed on stdin. With `--demo` it sends a few messages,
//! prints what comes back and exits.

use std::time::Duration;

use signalr_native::{HubConnectionBuilder, HubProtocol};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

const DEMO_LINES: [&str; 3] = ["hello from signalr-native", "two hub protocols, one client", "bye"];

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "http://127.0.0.1:5000/hub".to_string();
    let (mut demo, mut protocol, mut name) = (false, HubProtocol::Json, format!("user{}", std::process::id()));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--demo" => demo = true,
            "--messagepack" => protocol = HubProtocol::MessagePack,
            "--name" => name = args.next().ok_or("--name needs a value")?,
            "-h" | "--help" => {
                println!("usage: chat [--demo] [--messagepack] [--name NAME] [URL]");
                return Ok(());
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}").into()),
            other => url = other.to_string(),
        }
    }

    let connection = HubConnectionBuilder::new(&url).protocol(protocol).with_automatic_reconnect().build()?;
    let (received_tx, mut received) = mpsc::unbounded_channel::<(String, String)>();
    connection.on("Message", move |args| match args.to_value::<(String, String)>() {
        Ok((user, text)) => {
            println!("{user}: {text}");
            let _ = received_tx.send((user, text));
        }
        Err(e) => eprintln!("unexpected Message arguments: {e}"),
    })?;
    connection.on_reconnecting(|e| eprintln!("connection lost ({e}); reconnecting…"));
    connection.on_reconnected(|_| eprintln!("reconnected"));
    connection.on_close(|e| match e {
        Some(e) => eprintln!("connection closed: {e}"),
        None => eprintln!("connection closed"),
    });

    connection.start().await?;
    eprintln!("connected to {url} as {name} ({}); connection id {}", protocol.name(), connection.connection_id().unwrap_or_default());

    if demo {
        for line in DEMO_LINES {
            connection.invoke("Broadcast", connection.args(&("Message", &name, line))?).await?;
        }
        // Every broadcast comes back to us too; wait for our own three.
        let mut mine = 0;
        while mine < DEMO_LINES.len() {
            match tokio::time::timeout(Duration::from_secs(10), received.recv()).await {
                Ok(Some((user, _))) if user == name => mine += 1,
                Ok(Some(_)) => {}
                _ => return Err("the hub did not echo the demo messages".into()),
            }
        }
    } else {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            if line.trim().is_empty() {
                continue;
            }
            if let Err(e) = connection.invoke("Broadcast", connection.args(&("Message", &name, &line))?).await {
                eprintln!("not sent: {e}");
            }
        }
    }
    connection.stop().await;
    Ok(())
}
