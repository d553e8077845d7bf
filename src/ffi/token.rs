//! The access-token provider: `signalr_access_token_callback` and `signalr_token_request`.

use std::ffi::{c_char, c_void};
use std::future::Future;
use std::sync::{Arc, OnceLock, RwLock, Weak};

use tokio::sync::oneshot;

use super::boundary::{opt_str_arg, take_handle, to_handle, BoxCastable};
use super::builder::Slot;
use super::connection::Connection;
use super::dispatcher::{CallbackScope, Job};
use super::result::Failure;
use super::signalr_result;
use super::userdata::UserData;
use crate::Error;

/// Asks for the access token of the next request (negotiate or connect, reconnects included).
///
/// The callback completes `request` exactly once with `signalr_token_request_complete`, then or
/// later, from any thread; until then the connection waits.
/// Called on: the connection's callback thread (blocking there delays only this connection's
/// callbacks; `_blocking` functions return `SIGNALR_RESULT_WOULD_DEADLOCK`). Must not unwind.
pub type signalr_access_token_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, request: *mut signalr_token_request)>;

/// A pending access-token request, answered once with `signalr_token_request_complete`.
///
/// Thread safety: may be completed from any thread.
/// Ownership: consumed by `signalr_token_request_complete`.
pub struct signalr_token_request {
    _private: [u8; 0],
}

impl BoxCastable for signalr_token_request {
    type Inner = oneshot::Sender<crate::Result<String>>;
}

type Callback = unsafe extern "C" fn(*mut c_void, *mut signalr_token_request);

pub(crate) struct TokenSlot {
    callback: RwLock<Option<(Callback, UserData)>>,
    conn: OnceLock<Weak<Connection>>,
}

impl TokenSlot {
    pub fn new(callback: Callback, userdata: UserData) -> Arc<TokenSlot> {
        Arc::new(TokenSlot { callback: RwLock::new(Some((callback, userdata))), conn: OnceLock::new() })
    }

    /// Connects the slot to the connection whose callback thread runs it.
    pub fn bind(&self, conn: &Arc<Connection>) {
        let _ = self.conn.set(Arc::downgrade(conn));
    }

    /// The provider the core calls before each request.
    pub fn provider(self: &Arc<Self>) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = crate::Result<String>> + Send>> + Send + Sync + 'static {
        let slot = self.clone();
        move || {
            let slot = slot.clone();
            Box::pin(async move { slot.request().await })
        }
    }

    async fn request(self: Arc<Self>) -> crate::Result<String> {
        let (tx, rx) = oneshot::channel();
        let conn = self.conn.get().and_then(Weak::upgrade).ok_or_else(|| Error::Canceled("the connection was freed".into()))?;
        let slot = self.clone();
        conn.dispatcher.send(Job::Callback(Box::new(move |_| slot.call(tx))));
        drop(conn);
        rx.await.unwrap_or_else(|_| Err(Error::Canceled("the access token request was dropped unanswered".into())))
    }

    fn call(&self, tx: oneshot::Sender<crate::Result<String>>) {
        let guard = self.callback.read().unwrap_or_else(|p| p.into_inner());
        let Some((callback, userdata)) = guard.as_ref() else { return };
        let request = to_handle::<signalr_token_request>(tx);
        let _scope = CallbackScope::enter();
        unsafe { callback(userdata.ptr(), request) };
    }
}

impl Slot for TokenSlot {
    fn release(&self) {
        let taken = self.callback.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
    }
}

/// Answers an access-token request: `token` (NULL or "" = no token), or `error` (non-NULL = the
/// provider failed: the start or reconnect attempt fails with `SIGNALR_RESULT_UNAUTHORIZED` and
/// this text).
///
/// Ownership: consumes `request` (also on failure); strings are borrowed for the call.
/// Thread safety: any thread, at most once per request.
/// Errors: `NULL_PARAMETER` (`request`), `INVALID_UTF8` (the request is then answered with an
/// error).
#[no_mangle]
pub unsafe extern "C" fn signalr_token_request_complete(
    request: *mut signalr_token_request,
    token: *const c_char,
    error: *const c_char,
) -> signalr_result {
    ffi_call!({
        let tx = take_handle(request).ok_or_else(|| Failure::new(signalr_result::NullParameter, "`request` is NULL"))?;
        let answer = match (opt_str_arg(token, "token"), opt_str_arg(error, "error")) {
            (Err(f), _) | (_, Err(f)) => {
                let _ = tx.send(Err(Error::Unauthorized(format!("access token provider: {}", f.message))));
                return Err(f);
            }
            (Ok(_), Ok(Some(error))) => Err(Error::Unauthorized(format!("access token provider failed: {error}"))),
            (Ok(token), Ok(None)) => Ok(token.unwrap_or_default().to_owned()),
        };
        // The connection may have stopped waiting (stopped, freed): nothing to tell it then.
        let _ = tx.send(answer);
        Ok(())
    })
}
