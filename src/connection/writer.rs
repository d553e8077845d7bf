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
    loop {
        let mut stop: Option<(Bytes, oneshot::Sender<()>)> = None;
        if frames.is_empty() {
            tokio::select! {
                biased;
                _ = session.ended() => break,
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
