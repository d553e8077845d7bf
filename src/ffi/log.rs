//! Process-wide logging to one C callback, with the official clients' level filter.
//!
//! The library logs through `tracing`; on the first `signalr_log_set_callback` a subscriber is
//! installed as the process's global default that forwards events at or above the chosen level.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use super::boundary::enum_arg;
use super::result::{Failure, FfiResult};
use super::signalr_result;
use super::userdata::{signalr_userdata_free, UserData};

/// Log levels, as in Microsoft.Extensions.Logging. `NONE` as a filter turns logging off.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum signalr_log_level {
    Trace = 0,
    Debug = 1,
    Information = 2,
    Warning = 3,
    Error = 4,
    Critical = 5,
    None = 6,
}

impl signalr_log_level {
    fn from_u32(value: u32) -> Option<Self> {
        use signalr_log_level::*;
        [Trace, Debug, Information, Warning, Error, Critical, None].into_iter().find(|l| *l as u32 == value)
    }

    fn of(level: &Level) -> Self {
        match *level {
            Level::TRACE => Self::Trace,
            Level::DEBUG => Self::Debug,
            Level::INFO => Self::Information,
            Level::WARN => Self::Warning,
            Level::ERROR => Self::Error,
        }
    }
}

/// Receives one log record.
///
/// `target` (the library module, e.g. "signalr_native::connection") and `message` are borrowed
/// UTF-8, NUL-terminated, valid only until the callback returns.
/// Called on: any library thread, possibly concurrently; log records emitted from inside the
/// callback itself are dropped. Must not unwind (no C++ exceptions, no longjmp).
pub type signalr_log_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        level: u32,
        target: *const c_char,
        target_len: usize,
        message: *const c_char,
        message_len: usize,
    ),
>;

struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, u32, *const c_char, usize, *const c_char, usize),
    userdata: UserData,
}

static SINK: RwLock<Option<Arc<Sink>>> = RwLock::new(None);
static MIN_LEVEL: AtomicU32 = AtomicU32::new(signalr_log_level::None as u32);
static INSTALL: Once = Once::new();

thread_local! {
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn enabled(level: &Level) -> bool {
    signalr_log_level::of(level) as u32 >= MIN_LEVEL.load(Ordering::Relaxed)
}

struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // The level can change at run time: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        enabled(metadata.level())
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let sink = match SINK.read().map(|s| s.clone()) {
            Ok(Some(sink)) => sink,
            _ => return,
        };
        if IN_CALLBACK.with(|flag| flag.replace(true)) {
            return;
        }
        let mut text = MessageText(String::new());
        event.record(&mut text);
        let mut message = text.0;
        message.push('\0');
        let mut target = event.metadata().target().to_owned();
        target.push('\0');
        let level = signalr_log_level::of(event.metadata().level()) as u32;
        let _scope = super::dispatcher::CallbackScope::enter();
        unsafe {
            (sink.callback)(
                sink.userdata.ptr(),
                level,
                target.as_ptr().cast(),
                target.len() - 1,
                message.as_ptr().cast(),
                message.len() - 1,
            )
        };
        IN_CALLBACK.with(|flag| flag.set(false));
    }
}

/// `message` first, then the other fields as ` name=value`.
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

fn install_subscriber() -> FfiResult {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(Forward);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            result = Err(Failure::new(
                signalr_result::InvalidState,
                "another tracing subscriber is already the process's global default",
            ));
        }
    });
    result
}

fn set_level(level: signalr_log_level) {
    MIN_LEVEL.store(level as u32, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}

/// Sets (or, with a NULL `callback`, removes) the process-wide log callback and its level filter
/// (a `signalr_log_level` value: records below it are not produced).
///
/// Ownership: `userdata` is released with `userdata_free` (may be NULL) once the callback is
/// replaced or removed and no call of it is running. Thread safety: any thread.
/// Errors: `SIGNALR_RESULT_INVALID_ARGUMENT` for an unknown level; `SIGNALR_RESULT_INVALID_STATE`
/// when the host process already installed its own global `tracing` subscriber.
#[no_mangle]
pub extern "C" fn signalr_log_set_callback(
    callback: signalr_log_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
    min_level: u32,
) -> signalr_result {
    ffi_call!({
        let userdata = UserData::new(userdata, userdata_free);
        let level = enum_arg(min_level, "min_level", signalr_log_level::from_u32)?;
        let sink = match callback {
            Some(callback) => {
                install_subscriber()?;
                Some(Arc::new(Sink { callback, userdata }))
            }
            None => None,
        };
        let previous = std::mem::replace(&mut *SINK.write().unwrap_or_else(|e| e.into_inner()), sink);
        set_level(level);
        drop(previous); // released when the last running call of it returns
        Ok(())
    })
}

/// Changes the level filter of the log callback (a `signalr_log_level` value).
///
/// Thread safety: any thread. Errors: `SIGNALR_RESULT_INVALID_ARGUMENT` for an unknown level.
#[no_mangle]
pub extern "C" fn signalr_log_set_level(level: u32) -> signalr_result {
    ffi_call!({
        set_level(enum_arg(level, "level", signalr_log_level::from_u32)?);
        Ok(())
    })
}
