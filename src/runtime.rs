//! Where the client's background tasks run: the caller's tokio runtime when the connection is
//! built inside one, else a library-owned multi-thread runtime created on first use (for callers
//! without tokio, such as the C API).

use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

/// The runtime to use: `explicit` if given, else the current one, else the library's own.
pub(crate) fn pick(explicit: Option<Handle>) -> Handle {
    explicit
        .or_else(|| Handle::try_current().ok())
        .unwrap_or_else(|| global().handle().clone())
}

/// The library-owned runtime (two worker threads are plenty for a client).
pub fn global() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("signalr-native")
            .enable_all()
            .build()
            .expect("cannot start the signalr-native runtime threads")
    })
}
