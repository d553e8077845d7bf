//! SIGPIPE (plumbing). A write to a socket the peer closed raises SIGPIPE on Unix, whose default
//! action ends the process. Rust programs ignore it from startup, C programs usually do not, and
//! the library writes to sockets on its own threads and on callers' threads. So the first builder
//! turns the default action into "ignore" (the write then fails with EPIPE and the connection
//! closes with an error); a handler the host installed itself is left alone.

#[cfg(unix)]
pub(crate) fn ignore_sigpipe() {
    use std::ffi::c_int;
    use std::sync::Once;

    const SIGPIPE: c_int = 13; // the same on Linux, the BSDs and macOS
    const SIG_DFL: usize = 0;
    const SIG_IGN: usize = 1;
    extern "C" {
        fn signal(signum: c_int, handler: usize) -> usize;
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| unsafe {
        let previous = signal(SIGPIPE, SIG_IGN);
        if previous != SIG_DFL {
            signal(SIGPIPE, previous); // the host's own choice stays
        }
    });
}

#[cfg(not(unix))]
pub(crate) fn ignore_sigpipe() {}
