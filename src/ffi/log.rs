//! Process-wide logging to one C callback, with the official clients' level filter.
//!
//! The library logs through `tracing`; on the first `signalr_log_set_callback` a subscriber is
//! installed as the process's global default that forwards events at or above the chosen level.
//! Records are queued (bounded; when full they are dropped and counted) to one library log thread
//! that calls the callback: runtime threads never run C code nor wait for it, and the log thread
//! ends when the callback is removed (hosts such as Mono wait at exit for threads that ran
//! managed code).

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Once, RwLock};
use std::thread::JoinHandle;

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
/// Called on: the library's log thread, one record at a time, in the order they were emitted per
/// thread; the thread starts when the callback is installed and ends when it is removed or
/// replaced. When the callback falls behind, records are dropped (the next delivered record is
/// preceded by a warning with the count). Log records emitted from inside the callback itself are
/// dropped; `_blocking` functions return `SIGNALR_RESULT_WOULD_DEADLOCK` there. Must not unwind
/// (no C++ exceptions, no longjmp).
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

/// One log record, owned, on its way to the log thread.
struct Record {
    level: u32,
    target: String,
    message: String,
}

/// Records queued and not yet delivered, above which new records are dropped.
const QUEUE_LIMIT: usize = 4096;

/// What the log thread receives.
enum Item {
    Record(Record),
    /// Answered once everything queued before it was delivered (see `signalr_log_set_level`).
    Flushed(mpsc::SyncSender<()>),
}

/// The queue to the log thread of the installed callback.
struct Queue {
    records: mpsc::SyncSender<Item>,
    /// Records dropped since the last delivered one (queue full).
    dropped: Arc<AtomicU64>,
}

/// The installed callback's queue; dropping the last clone ends its log thread (after it drained).
static SINK: RwLock<Option<Arc<Queue>>> = RwLock::new(None);
static MIN_LEVEL: AtomicU32 = AtomicU32::new(signalr_log_level::None as u32);
static INSTALL: Once = Once::new();
/// The log thread of the installed callback.
static THREAD: std::sync::Mutex<Option<JoinHandle<()>>> = std::sync::Mutex::new(None);
/// Serialises `signalr_log_set_callback` calls.
static SET: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// Set on log threads: records emitted there (from inside the callback) are dropped.
    static ON_LOG_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Starts the log thread that calls `sink` for each queued record; it ends (releasing the user
/// data) once every sender is dropped and the queue is drained.
fn start(sink: Sink) -> std::io::Result<(Arc<Queue>, JoinHandle<()>)> {
    let (records, rx) = mpsc::sync_channel::<Item>(QUEUE_LIMIT);
    let dropped = Arc::new(AtomicU64::new(0));
    let count = dropped.clone();
    let thread = std::thread::Builder::new().name("signalr-log".into()).spawn(move || {
        ON_LOG_THREAD.with(|flag| flag.set(true));
        // Everything here is "inside a callback": `_blocking` calls return WOULD_DEADLOCK.
        let _scope = super::dispatcher::CallbackScope::enter();
        let deliver = |level: u32, target: &str, message: &str| {
            let (target, message) = (c_owned(target), c_owned(message));
            let call = || unsafe {
                (sink.callback)(
                    sink.userdata.ptr(),
                    level,
                    target.as_ptr().cast(),
                    target.len() - 1,
                    message.as_ptr().cast(),
                    message.len() - 1,
                )
            };
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
        };
        while let Ok(item) = rx.recv() {
            let record = match item {
                Item::Record(record) => record,
                Item::Flushed(ack) => {
                    let _ = ack.send(());
                    continue;
                }
            };
            let lost = count.swap(0, Ordering::Relaxed);
            if lost > 0 {
                let text = format!("{lost} log records were dropped: the log callback fell behind");
                deliver(signalr_log_level::Warning as u32, module_path!(), &text);
            }
            deliver(record.level, &record.target, &record.message);
        }
        drop(sink);
    })?;
    Ok((Arc::new(Queue { records, dropped }), thread))
}

fn c_owned(text: &str) -> String {
    let mut owned = String::with_capacity(text.len() + 1);
    owned.push_str(text);
    owned.push('\0');
    owned
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
        if ON_LOG_THREAD.with(|flag| flag.get()) {
            return;
        }
        // The lock is held until the record is queued, and the level checked again under it: a
        // level change (which takes it to write) then has no record in between check and queue.
        let sink = match SINK.read() {
            Ok(sink) => sink,
            Err(_) => return,
        };
        let Some(queue) = sink.as_ref() else { return };
        if !enabled(event.metadata().level()) {
            return;
        }
        let mut text = MessageText(String::new());
        event.record(&mut text);
        let record = Record {
            level: signalr_log_level::of(event.metadata().level()) as u32,
            target: event.metadata().target().to_owned(),
            message: text.0,
        };
        // Never wait for the callback: a full queue drops the record.
        if let Err(mpsc::TrySendError::Full(_)) = queue.records.try_send(Item::Record(record)) {
            queue.dropped.fetch_add(1, Ordering::Relaxed);
        }
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

/// Stores the level filter while the caller holds the sink lock's write side (`_sink`): emitters
/// check the level again under its read side until their record is queued, so none of the old
/// level is queued afterwards. The caller then rebuilds tracing's interest cache, outside the lock.
fn store_level(_sink: &mut Option<Arc<Queue>>, level: signalr_log_level) {
    MIN_LEVEL.store(level as u32, Ordering::Relaxed);
}

/// Sets (or, with a NULL `callback`, removes) the process-wide log callback and its level filter
/// (a `signalr_log_level` value: records below it are not produced).
///
/// Installing a callback starts the library's log thread, which calls it; replacing or removing
/// it ends that thread after the records already queued were delivered. Outside the log callback
/// this function waits for that (so after `signalr_log_set_callback(NULL, …)` returns, the
/// previous callback is no longer called and its log thread has ended); from inside the log
/// callback it returns at once and the thread ends after the callback returns.
///
/// Ownership: `userdata` is released with `userdata_free` (may be NULL), on the log thread, once
/// the callback is replaced or removed and no call of it is running. Thread safety: any thread.
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
        let (queue, thread) = match callback {
            Some(callback) => {
                install_subscriber()?;
                let (queue, thread) = start(Sink { callback, userdata })
                    .map_err(|e| Failure::new(signalr_result::Internal, format!("cannot start the log thread: {e}")))?;
                (Some(queue), Some(thread))
            }
            None => (None, None),
        };
        let guard = SET.lock().unwrap_or_else(|e| e.into_inner());
        let previous = {
            let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
            store_level(&mut sink, level);
            std::mem::replace(&mut *sink, queue)
        };
        let previous_thread = std::mem::replace(&mut *THREAD.lock().unwrap_or_else(|e| e.into_inner()), thread);
        tracing::callsite::rebuild_interest_cache();
        drop(guard);
        // The previous log thread ends once it drained its queue and the emitters that still hold
        // its queue (for a moment) let go; wait for it, unless this is that thread.
        drop(previous);
        if let Some(previous_thread) = previous_thread {
            if previous_thread.thread().id() != std::thread::current().id() {
                let _ = previous_thread.join();
            }
        }
        Ok(())
    })
}

/// Changes the level filter of the log callback (a `signalr_log_level` value).
///
/// Outside the log callback this function returns once the records produced before the change
/// were delivered: from then on the callback gets only records at or above `level`. From inside
/// the log callback it returns at once.
///
/// Thread safety: any thread. Errors: `SIGNALR_RESULT_INVALID_ARGUMENT` for an unknown level.
#[no_mangle]
pub extern "C" fn signalr_log_set_level(level: u32) -> signalr_result {
    ffi_call!({
        let level = enum_arg(level, "level", signalr_log_level::from_u32)?;
        let queue = {
            let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
            store_level(&mut sink, level);
            sink.clone()
        };
        tracing::callsite::rebuild_interest_cache();
        if let Some(queue) = queue.filter(|_| !ON_LOG_THREAD.with(|flag| flag.get())) {
            let (ack, flushed) = mpsc::sync_channel(1);
            if queue.records.send(Item::Flushed(ack)).is_ok() {
                let _ = flushed.recv();
            }
        }
        Ok(())
    })
}
