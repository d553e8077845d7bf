//! The writer task of a session: drains the outgoing queue in order, batching whatever is queued
//! into one flush, and sends keep-alive pings when nothing else was sent for the interval (K-2).
//!
//! Stateful reconnect hook: every outgoing message passes `send_batch` here with its `trackable`
//! flag; that is where sent trackable messages will be counted and buffered for replay.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::keep_alive::IdleTimer;
use super::session::{Outgoing, Session};
use crate::error::Result;
use crate::transport::TransportWriter;

/// Most frames written per flush, so that one burst cannot delay the others' completion forever.
const MAX_BATCH: usize = 256;

pub(crate) async fn run(
    mut transport: TransportWriter,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    session: Arc<Session>,
    keep_alive: Option<(Duration, Bytes)>,
) {
    let mut frames: Vec<Bytes> = Vec::new();
    let mut written: Vec<oneshot::Sender<Result<()>>> = Vec::new();
    // H-8: one Ping right after the handshake; the server starts its client timeout after it.
    let mut idle = keep_alive.as_ref().map(|(interval, _)| IdleTimer::new(*interval));
    if let Some((_, ping)) = &keep_alive {
        frames.push(ping.clone());
    }
    let ended = session.ended();
    tokio::pin!(ended);
    loop {
        let mut stop: Option<(Bytes, oneshot::Sender<()>)> = None;
        if frames.is_empty() {
            tokio::select! {
                biased;
                _ = &mut ended => break,
                item = queue.recv() => match item {
                    None => break,
                    Some(item) => take(item, &mut frames, &mut written, &mut stop),
                },
                _ = async { idle.as_mut().unwrap().expired().await }, if idle.is_some() => {
                    frames.push(keep_alive.as_ref().unwrap().1.clone());
                }
            }
        }
        while stop.is_none() && frames.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(item) => take(item, &mut frames, &mut written, &mut stop),
                Err(_) => break,
            }
        }
        if let Some((close, _)) = &stop {
            frames.push(close.clone());
        }
        let outcome = transport.send_batch(&mut frames).await;
        frames.clear();
        if let Some(idle) = idle.as_mut() {
            idle.touch();
        }
        for tx in written.drain(..) {
            let _ = tx.send(outcome.clone());
        }
        if let Err(e) = outcome {
            session.writer_failed(e);
            return;
        }
        if let Some((_, done)) = stop {
            transport.close().await;
            let _ = done.send(());
            return;
        }
    }
    transport.close().await;
}

fn take(
    item: Outgoing,
    frames: &mut Vec<Bytes>,
    written: &mut Vec<oneshot::Sender<Result<()>>>,
    stop: &mut Option<(Bytes, oneshot::Sender<()>)>,
) {
    match item {
        // Stateful reconnect will count and buffer `trackable` frames here.
        Outgoing::Frame { bytes, trackable: _, written: tx } => {
            frames.push(bytes);
            written.extend(tx);
        }
        Outgoing::Stop { close, done } => *stop = Some((close, done)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use crate::connection::session::Session;
    use crate::protocol::HubProtocol;
    use crate::transport::{memory, TransportWriter};

    const PING: &[u8] = b"{\"type\":6}\x1e";

    #[tokio::test(start_paused = true)]
    async fn pings_go_out_only_after_a_quiet_interval_and_queued_frames_share_one_flush() {
        let (tx, mut sent) = mpsc::unbounded_channel();
        let writer = TransportWriter::Memory(memory::Writer { sent: tx });
        let start = Instant::now();
        let session = Session::start(
            HubProtocol::Json,
            writer,
            Some(Duration::from_secs(10)),
            &tokio::runtime::Handle::current(),
        )
        .unwrap();
        // H-8: one Ping right after the handshake.
        let (at, frames) = sent.recv().await.unwrap();
        assert_eq!((at - start, frames.as_slice()), (Duration::ZERO, &[bytes::Bytes::from_static(PING)][..]));
        // A message at 6 s postpones the next Ping to 16 s (K-2)...
        tokio::time::sleep(Duration::from_secs(6)).await;
        session.send(bytes::Bytes::from_static(b"a"), true).unwrap();
        session.send(bytes::Bytes::from_static(b"b"), true).unwrap();
        let (at, frames) = sent.recv().await.unwrap();
        assert_eq!(at - start, Duration::from_secs(6));
        assert_eq!(frames, ["a", "b"].map(|s| bytes::Bytes::from_static(s.as_bytes())), "one batch");
        let (at, frames) = sent.recv().await.unwrap();
        assert_eq!((at - start, frames[0].as_ref()), (Duration::from_secs(16), PING));
        // ...and an idle connection pings every interval.
        let (at, _) = sent.recv().await.unwrap();
        assert_eq!(at - start, Duration::from_secs(26));
        session.end(None);
    }
}
