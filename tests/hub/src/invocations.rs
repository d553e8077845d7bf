//! Per-connection bookkeeping of invocations in flight: server streams that CancelInvocation can
//! stop, upload streams fed by the client's StreamItems, and client results the server awaits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use signalr_native::protocol::{CompletionResult, Payload};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::signal::Signal;

/// Items buffered per upload stream before the dispatcher waits (ASP.NET `StreamBufferCapacity`).
const UPLOAD_BUFFER: usize = 10;

pub enum UploadEvent {
    Item(Payload),
    /// The client's Completion for the stream id: `Some(error)` when it ended with an error.
    End(Option<String>),
}

pub struct Invocations {
    /// Non-streaming invocations run one at a time (ASP.NET `MaximumParallelInvocationsPerClient` = 1).
    pub serial: Arc<Semaphore>,
    streams: Mutex<HashMap<String, Arc<Signal>>>,
    uploads: Mutex<HashMap<String, mpsc::Sender<UploadEvent>>>,
    client_results: Mutex<HashMap<String, oneshot::Sender<CompletionResult>>>,
    /// Values passed to `Record`, in processing order (read back with `GetRecorded`).
    recorded: Mutex<Vec<Payload>>,
}

impl Default for Invocations {
    fn default() -> Self {
        Invocations {
            serial: Arc::new(Semaphore::new(1)),
            streams: Mutex::default(),
            uploads: Mutex::default(),
            client_results: Mutex::default(),
            recorded: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Invocations {
    /// Registers a server stream; None if the id is already in use.
    pub fn start_stream(&self, id: &str) -> Option<Arc<Signal>> {
        let mut streams = lock(&self.streams);
        if streams.contains_key(id) {
            return None;
        }
        let cancel = Arc::new(Signal::default());
        streams.insert(id.to_owned(), cancel.clone());
        Some(cancel)
    }

    pub fn end_stream(&self, id: &str) {
        lock(&self.streams).remove(id);
    }

    /// CancelInvocation: only streams react (D-3).
    pub fn cancel_stream(&self, id: &str) {
        if let Some(cancel) = lock(&self.streams).get(id) {
            cancel.fire();
        }
    }

    pub fn open_upload(&self, stream_id: &str) -> mpsc::Receiver<UploadEvent> {
        let (tx, rx) = mpsc::channel(UPLOAD_BUFFER);
        lock(&self.uploads).insert(stream_id.to_owned(), tx);
        rx
    }

    pub fn upload(&self, stream_id: &str) -> Option<mpsc::Sender<UploadEvent>> {
        lock(&self.uploads).get(stream_id).cloned()
    }

    /// Removes the upload stream (its Completion arrived, or the hub method is done).
    pub fn close_upload(&self, stream_id: &str) -> Option<mpsc::Sender<UploadEvent>> {
        lock(&self.uploads).remove(stream_id)
    }

    pub fn expect_client_result(&self, id: &str) -> oneshot::Receiver<CompletionResult> {
        let (tx, rx) = oneshot::channel();
        lock(&self.client_results).insert(id.to_owned(), tx);
        rx
    }

    /// Delivers the client's Completion; false if nobody waits for that id.
    pub fn complete_client_result(&self, id: &str, result: CompletionResult) -> bool {
        match lock(&self.client_results).remove(id) {
            Some(tx) => {
                let _ = tx.send(result);
                true
            }
            None => false,
        }
    }

    pub fn record(&self, value: Payload) {
        lock(&self.recorded).push(value);
    }

    pub fn recorded(&self) -> Vec<Payload> {
        lock(&self.recorded).clone()
    }

    /// The connection ended: streams stop, uploads and client results fail.
    pub fn cancel_all(&self) {
        for cancel in lock(&self.streams).values() {
            cancel.fire();
        }
        lock(&self.uploads).clear();
        lock(&self.client_results).clear();
    }
}
