//! `signalr_upload`: the writer of one client-to-server stream argument.
//!
//! The handle exists before its invocation has gone out (the `_with_uploads` calls return at
//! once): what is written meanwhile waits in the handle and follows the invocation in order.

use std::ffi::c_char;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::boundary::{handle_ref, json_value_arg, str_arg, take_handle, to_handle, BoxCastable};
use super::connection::Connection;
use super::result::{code_of, Failure, FfiResult};
use super::signalr_result;
use crate::{Error, Payload, UploadStream};

/// One upload stream of a `_with_uploads` call.
///
/// Thread safety: its functions may be called from any thread, but one stream's items are
/// ordered only when written from one thread at a time.
/// Ownership: freed exactly once with `signalr_upload_free`, also after its connection was freed.
pub struct signalr_upload {
    _private: [u8; 0],
}

impl BoxCastable for signalr_upload {
    type Inner = Arc<Upload>;
}

pub(crate) struct Upload {
    state: Mutex<State>,
    conn: Weak<Connection>,
}

struct State {
    stage: Stage,
    /// `complete`, `complete_with_error` or `free` was called.
    finished: bool,
}

enum Stage {
    /// The invocation is not written yet; these follow it.
    Waiting(Vec<Command>),
    Open(UploadStream),
    /// The invocation failed or the connection went away.
    Failed(Error),
    Done,
}

enum Command {
    Item(Payload),
    End(Option<String>),
    /// Freed unfinished: the stream is canceled ("Stream canceled by client.").
    Abandon,
}

impl Upload {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn command(&self, command: Command) -> FfiResult {
        if !matches!(command, Command::Abandon) && self.conn.upgrade().is_none_or(|c| c.is_freed()) {
            return Err(Failure::new(signalr_result::ConnectionClosed, "the connection of this upload stream was freed"));
        }
        let mut state = self.lock();
        if state.finished {
            return Err(Failure::new(signalr_result::InvalidState, "the upload stream was already completed"));
        }
        if matches!(command, Command::End(_) | Command::Abandon) {
            state.finished = true;
        }
        match std::mem::replace(&mut state.stage, Stage::Done) {
            Stage::Waiting(mut queue) => {
                queue.push(command);
                state.stage = Stage::Waiting(queue);
                Ok(())
            }
            Stage::Open(stream) => {
                let (stream, outcome) = apply(stream, command);
                if let Some(stream) = stream {
                    state.stage = Stage::Open(stream);
                }
                outcome.map_err(Failure::from)
            }
            Stage::Failed(e) => {
                let failure = Failure::new(code_of(&e), e.to_string());
                state.stage = Stage::Failed(e);
                Err(failure)
            }
            Stage::Done => Err(Failure::new(signalr_result::InvalidState, "the upload stream was already completed")),
        }
    }
}

/// Applies a command; returns the stream while it stays open.
fn apply(stream: UploadStream, command: Command) -> (Option<UploadStream>, crate::Result<()>) {
    match command {
        Command::Item(item) => {
            let outcome = stream.send(item);
            (Some(stream), outcome)
        }
        Command::End(None) => (None, stream.complete()),
        Command::End(Some(error)) => (None, stream.fail(error)),
        Command::Abandon => (None, Ok(())), // dropping it sends the cancel error
    }
}

/// The upload handles of one call, until the core hands over its streams.
pub(crate) struct UploadSlots {
    uploads: Vec<Arc<Upload>>,
    attached: bool,
}

impl UploadSlots {
    pub fn new(conn: &Arc<Connection>, count: usize) -> (UploadSlots, Vec<Arc<Upload>>) {
        let uploads: Vec<Arc<Upload>> = (0..count)
            .map(|_| {
                Arc::new(Upload {
                    state: Mutex::new(State { stage: Stage::Waiting(Vec::new()), finished: false }),
                    conn: Arc::downgrade(conn),
                })
            })
            .collect();
        (UploadSlots { uploads: uploads.clone(), attached: false }, uploads)
    }

    /// Connects the handles to the core's streams once the invocation was written (or fails them).
    pub fn attach<T>(mut self, sent: crate::Result<(T, Vec<UploadStream>)>) -> crate::Result<T> {
        self.attached = true;
        match sent {
            Ok((value, streams)) => {
                for (upload, stream) in self.uploads.iter().zip(streams) {
                    let mut state = upload.lock();
                    let Stage::Waiting(queue) = std::mem::replace(&mut state.stage, Stage::Done) else { continue };
                    let mut open = Some(stream);
                    for command in queue {
                        let Some(stream) = open.take() else { break };
                        let (stream, outcome) = apply(stream, command);
                        if let Err(e) = outcome {
                            tracing::debug!("queued upload item not sent: {e}");
                        }
                        open = stream;
                    }
                    if let Some(stream) = open {
                        state.stage = Stage::Open(stream);
                    }
                }
                Ok(value)
            }
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    fn fail(&self, error: &Error) {
        for upload in &self.uploads {
            let mut state = upload.lock();
            if matches!(state.stage, Stage::Waiting(_)) {
                state.stage = Stage::Failed(error.clone());
            }
        }
    }
}

impl Drop for UploadSlots {
    fn drop(&mut self) {
        if !self.attached {
            // The call was canceled before its invocation went out.
            self.fail(&Error::Canceled("the invocation of this upload stream was canceled".into()));
        }
    }
}

/// Hands the handles to the caller's array.
pub(crate) fn fill_uploads(out: &mut [*mut signalr_upload], uploads: Vec<Arc<Upload>>) {
    for (slot, upload) in out.iter_mut().zip(uploads) {
        *slot = to_handle(upload);
    }
}

/// Sends one item (a JSON value, borrowed for the call).
///
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_STATE` (already completed),
/// `CONNECTION_CLOSED` (the connection went away or was freed), or the error of the invocation
/// that failed to go out.
#[no_mangle]
pub unsafe extern "C" fn signalr_upload_write(u: *mut signalr_upload, item_json: *const c_char) -> signalr_result {
    ffi_call!({
        let upload = handle_ref(u, "upload")?;
        let item = json_value_arg(item_json, "item_json")?;
        upload.command(Command::Item(item))
    })
}

/// Ends the stream normally. The handle must still be freed.
///
/// Errors: as `signalr_upload_write`.
#[no_mangle]
pub unsafe extern "C" fn signalr_upload_complete(u: *mut signalr_upload) -> signalr_result {
    ffi_call!({ handle_ref(u, "upload")?.command(Command::End(None)) })
}

/// Ends the stream with an error (the hub method sees it as an exception). The handle must
/// still be freed.
///
/// Errors: as `signalr_upload_write`.
#[no_mangle]
pub unsafe extern "C" fn signalr_upload_complete_with_error(u: *mut signalr_upload, error: *const c_char) -> signalr_result {
    ffi_call!({
        let upload = handle_ref(u, "upload")?;
        let error = str_arg(error, "error")?;
        upload.command(Command::End(Some(error.to_owned())))
    })
}

/// Frees an upload handle; a stream not completed yet ends with the error "Stream canceled by
/// client.". NULL is a no-op.
///
/// Ownership: consumes `u`.
#[no_mangle]
pub unsafe extern "C" fn signalr_upload_free(u: *mut signalr_upload) {
    ffi_value!((), {
        if let Some(upload) = take_handle(u) {
            let _ = upload.command(Command::Abandon);
        }
    })
}
