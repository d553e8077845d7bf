//! `signalr_builder`: every option of a connection, then `signalr_builder_build`.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use super::boundary::{enum_arg, handle_mut, out_arg, slice_arg, str_arg, take_handle, to_handle, BoxCastable};
use super::connection::{signalr_connection, Connection};
use super::reconnect::{signalr_reconnect_policy_callback, PolicySlot};
use super::result::{Failure, FfiResult};
use super::signalr_result;
use super::token::{signalr_access_token_callback, TokenSlot};
use super::userdata::{signalr_userdata_free, UserData};
use crate::{HubConnectionBuilder, HubProtocol, TransportSet};

/// Options of a connection to build.
///
/// Thread safety: single owner, not thread-safe: use it from one thread at a time.
/// Ownership: freed with `signalr_builder_free`, or consumed by `signalr_builder_build`.
pub struct signalr_builder {
    _private: [u8; 0],
}

impl BoxCastable for signalr_builder {
    type Inner = Builder;
}

/// Transports (`uint32_t` bit values as the official `HttpTransportType`); a mask of them selects
/// transports, 0 meaning all.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum signalr_transport {
    None = 0,
    Websockets = 1,
    ServerSentEvents = 2,
    LongPolling = 4,
}

/// Hub protocols (`uint32_t` values). Arguments and results cross the C API as JSON either way.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum signalr_protocol {
    Json = 0,
    Messagepack = 1,
}

/// A user callback the connection keeps (access-token provider, reconnect policy): released at
/// the connection's teardown, after its last call returned.
pub(crate) trait Slot: Send + Sync {
    fn release(&self);
}

pub(crate) struct Builder {
    core: HubConnectionBuilder,
    /// Callbacks are applied by `build`, so that replacing or removing one needs nothing of the core.
    token: Option<Arc<TokenSlot>>,
    reconnect: Reconnect,
}

enum Reconnect {
    Off,
    Delays(Vec<Duration>),
    Callback(Arc<PolicySlot>),
}

impl Builder {
    fn update(&mut self, f: impl FnOnce(HubConnectionBuilder) -> HubConnectionBuilder) {
        let core = std::mem::replace(&mut self.core, HubConnectionBuilder::new(""));
        self.core = f(core);
    }
}

unsafe fn builder<'a>(b: *mut signalr_builder) -> FfiResult<&'a mut Builder> {
    handle_mut(b, "builder")
}

/// A builder for the hub at `url` (`http`, `https`, `ws` or `wss`; checked by
/// `signalr_builder_build`). Options not set keep the official clients' defaults.
///
/// The first call makes the process ignore SIGPIPE if its action is still the default (which
/// would end the process when a peer closes a socket during a write); a handler the program
/// installed itself is kept.
/// Ownership: `url` is borrowed for the call; `*out` belongs to the caller.
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_new(url: *const c_char, out: *mut *mut signalr_builder) -> signalr_result {
    ffi_call!({
        let out = out_arg(out, "out")?;
        let url = str_arg(url, "url")?;
        super::signals::ignore_sigpipe();
        *out = to_handle(Builder { core: HubConnectionBuilder::new(url), token: None, reconnect: Reconnect::Off });
        Ok(())
    })
}

/// Transports the client may use: a mask of `signalr_transport` bits, 0 = all (default).
///
/// Errors: `NULL_PARAMETER`, `INVALID_ARGUMENT` (unknown bits).
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_transports(b: *mut signalr_builder, transport_mask: u32) -> signalr_result {
    ffi_call!({
        let b = builder(b)?;
        let set = TransportSet::from_bits(transport_mask).map_err(Failure::from)?;
        b.update(|core| core.transports(set));
        Ok(())
    })
}

/// Connects straight to the URL without negotiating (allowed only with WebSockets as the only
/// transport; checked by `signalr_builder_build`).
///
/// Errors: `NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_skip_negotiation(b: *mut signalr_builder, skip: bool) -> signalr_result {
    ffi_call!({
        builder(b)?.update(|core| core.skip_negotiation(skip));
        Ok(())
    })
}

/// Adds an HTTP header sent on negotiate and on the transport's requests (checked by
/// `signalr_builder_build`).
///
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_add_header(
    b: *mut signalr_builder,
    name: *const c_char,
    value: *const c_char,
) -> signalr_result {
    ffi_call!({
        let b = builder(b)?;
        let (name, value) = (str_arg(name, "name")?, str_arg(value, "value")?);
        b.update(|core| core.header(name, value));
        Ok(())
    })
}

/// Sets the access-token provider, asked before every negotiate and every connect (reconnects
/// included). A NULL `callback` removes it. Replacing one releases the previous user data.
///
/// Ownership: `userdata` is released with `userdata_free` exactly once: when replaced, when the
/// builder is freed or fails to build, or at the connection's teardown; also before this
/// function returns when it fails.
/// Errors: `NULL_PARAMETER` (`b`).
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_access_token_provider(
    b: *mut signalr_builder,
    callback: signalr_access_token_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({
        let userdata = UserData::new(userdata, userdata_free);
        let b = builder(b)?;
        b.token = callback.map(|cb| TokenSlot::new(cb, userdata));
        Ok(())
    })
}

/// The hub protocol, a `signalr_protocol` value (default JSON).
///
/// Errors: `NULL_PARAMETER`, `INVALID_ARGUMENT` (unknown value).
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_protocol(b: *mut signalr_builder, protocol: u32) -> signalr_result {
    ffi_call!({
        let b = builder(b)?;
        let protocol = enum_arg(protocol, "protocol", |v| match v {
            0 => Some(HubProtocol::Json),
            1 => Some(HubProtocol::MessagePack),
            _ => None,
        })?;
        b.update(|core| core.protocol(protocol));
        Ok(())
    })
}

/// Timeout of each HTTP request and of the WebSocket connect, in ms (default 100 000).
///
/// Errors: `NULL_PARAMETER`; 0 fails `signalr_builder_build` with `INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_http_timeout_ms(b: *mut signalr_builder, ms: u64) -> signalr_result {
    ffi_call!({
        builder(b)?.update(|core| core.http_timeout(Duration::from_millis(ms)));
        Ok(())
    })
}

/// Closes the connection when nothing arrived for this long, in ms (default 30 000).
///
/// Errors: `NULL_PARAMETER`; 0 fails `signalr_builder_build` with `INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_server_timeout_ms(b: *mut signalr_builder, ms: u64) -> signalr_result {
    ffi_call!({
        builder(b)?.update(|core| core.server_timeout(Duration::from_millis(ms)));
        Ok(())
    })
}

/// Sends a ping when nothing was sent for this long, in ms (default 15 000).
///
/// Errors: `NULL_PARAMETER`; 0 fails `signalr_builder_build` with `INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_keep_alive_interval_ms(b: *mut signalr_builder, ms: u64) -> signalr_result {
    ffi_call!({
        builder(b)?.update(|core| core.keep_alive_interval(Duration::from_millis(ms)));
        Ok(())
    })
}

/// Fails the start when the handshake answer takes longer, in ms (default 15 000).
///
/// Errors: `NULL_PARAMETER`; 0 fails `signalr_builder_build` with `INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_handshake_timeout_ms(b: *mut signalr_builder, ms: u64) -> signalr_result {
    ffi_call!({
        builder(b)?.update(|core| core.handshake_timeout(Duration::from_millis(ms)));
        Ok(())
    })
}

/// Largest message accepted from the server, in bytes (default 32 MiB); larger ones close the
/// connection.
///
/// Errors: `NULL_PARAMETER`; 0 fails `signalr_builder_build` with `INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_max_message_size(b: *mut signalr_builder, bytes: usize) -> signalr_result {
    ffi_call!({
        builder(b)?.update(|core| core.max_message_bytes(bytes));
        Ok(())
    })
}

/// Automatic reconnect with these delays in ms, then stop; NULL/`count` 0 = the official
/// defaults 0, 2 000, 10 000, 30 000. Replaces a reconnect policy callback.
///
/// Ownership: `delays_ms` is borrowed for the call.
/// Errors: `NULL_PARAMETER` (`b`, or `delays_ms` with `count` > 0).
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_automatic_reconnect(
    b: *mut signalr_builder,
    delays_ms: *const u64,
    count: usize,
) -> signalr_result {
    ffi_call!({
        let b = builder(b)?;
        let delays = slice_arg(delays_ms, count, "delays_ms")?;
        b.reconnect = Reconnect::Delays(if delays.is_empty() {
            crate::reconnect::DEFAULT_RETRY_DELAYS_MS.iter().map(|&ms| Duration::from_millis(ms)).collect()
        } else {
            delays.iter().map(|&ms| Duration::from_millis(ms)).collect()
        });
        Ok(())
    })
}

/// Automatic reconnect driven by a callback that returns the delay before the next attempt in
/// ms, or -1 (any negative value) to stop. Replaces automatic-reconnect delays; a NULL
/// `callback` turns automatic reconnect off.
///
/// Ownership: `userdata` as for `signalr_builder_set_access_token_provider`.
/// Errors: `NULL_PARAMETER` (`b`).
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_reconnect_policy(
    b: *mut signalr_builder,
    callback: signalr_reconnect_policy_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({
        let userdata = UserData::new(userdata, userdata_free);
        let b = builder(b)?;
        b.reconnect = match callback {
            Some(cb) => Reconnect::Callback(PolicySlot::new(cb, userdata)),
            None => Reconnect::Off,
        };
        Ok(())
    })
}

/// Stateful reconnect (the server replays what a dropped connection missed).
///
/// Errors: `NULL_PARAMETER`; `signalr_builder_build` fails with `INVALID_ARGUMENT` when this
/// library version does not support it.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_stateful_reconnect(b: *mut signalr_builder, enabled: bool) -> signalr_result {
    ffi_call!({
        builder(b)?.update(|core| core.stateful_reconnect(enabled));
        Ok(())
    })
}

/// Size in bytes of the buffer of messages kept for replay by stateful reconnect (default
/// 100 000).
///
/// Errors: `NULL_PARAMETER`; 0 fails `signalr_builder_build` with `INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_set_stateful_reconnect_buffer_size(b: *mut signalr_builder, bytes: usize) -> signalr_result {
    ffi_call!({
        builder(b)?.update(|core| core.stateful_reconnect_buffer_size(bytes));
        Ok(())
    })
}

/// Trusts the CA certificate(s) of a PEM document (`len` bytes, borrowed for the call) in
/// addition to the platform's roots.
///
/// Errors: `NULL_PARAMETER`, `INVALID_ARGUMENT` (no certificate in it).
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_add_trusted_ca_pem(
    b: *mut signalr_builder,
    pem: *const u8,
    len: usize,
) -> signalr_result {
    ffi_call!({
        let b = builder(b)?;
        let pem = slice_arg(pem, len, "pem")?.to_vec();
        crate::TlsOptions::default().add_pem(&pem).map_err(Failure::from)?;
        b.update(|core| core.trust_ca_pem(pem));
        Ok(())
    })
}

/// Trusts the CA certificate(s) of a PEM file (read now, and again by `signalr_builder_build`).
///
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_ARGUMENT` (unreadable, or no certificate in it).
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_add_trusted_ca_file(b: *mut signalr_builder, path: *const c_char) -> signalr_result {
    ffi_call!({
        let b = builder(b)?;
        let path = str_arg(path, "path")?;
        crate::TlsOptions::default().add_pem_file(path.as_ref()).map_err(Failure::from)?;
        b.update(|core| core.trust_ca_pem_file(path));
        Ok(())
    })
}

/// Validates the options (no I/O) and creates the connection, `DISCONNECTED`.
///
/// Ownership: consumes `b` even on failure (do not use or free it afterwards); `*out` belongs to
/// the caller (`signalr_connection_free`).
/// Errors: `NULL_PARAMETER`, `INVALID_ARGUMENT` (bad URL, header, timeout, transport choice,
/// certificate, unsupported option).
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_build(b: *mut signalr_builder, out: *mut *mut signalr_connection) -> signalr_result {
    ffi_call!({
        let builder = take_handle(b).ok_or_else(|| Failure::new(signalr_result::NullParameter, "`builder` is NULL"))?;
        let out = out_arg(out, "out")?;
        let Builder { mut core, token, reconnect } = *builder;
        let mut bound_policy = None;
        let mut slots: Vec<Arc<dyn Slot>> = Vec::new();
        if let Some(token) = &token {
            core = core.access_token_provider(token.provider());
            slots.push(token.clone());
        }
        match reconnect {
            Reconnect::Off => {}
            Reconnect::Delays(delays) => core = core.reconnect_delays(delays),
            Reconnect::Callback(policy) => {
                core = core.reconnect_policy(policy.policy());
                bound_policy = Some(policy.clone());
                slots.push(policy);
            }
        }
        let hub = core.runtime(crate::runtime::global().handle().clone()).build().map_err(Failure::from)?;
        let conn = Connection::new(hub, slots)?;
        if let Some(token) = token {
            token.bind(&conn);
        }
        if let Some(policy) = bound_policy {
            policy.bind(&conn);
        }
        *out = to_handle(conn);
        Ok(())
    })
}

/// Frees a builder that was not built. NULL is a no-op.
///
/// Ownership: consumes `b`; releases the user data of its callbacks.
#[no_mangle]
pub unsafe extern "C" fn signalr_builder_free(b: *mut signalr_builder) {
    ffi_value!((), {
        drop(take_handle(b));
    })
}
