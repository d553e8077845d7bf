//! State shared by every request of one test-hub process.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::connections::Registry;
use crate::faults::Faults;
use crate::groups::Groups;
use crate::options::Options;

pub struct App {
    pub opts: Options,
    /// `http://127.0.0.1:PORT` (or https), as printed on stdout; used for redirects.
    pub base_url: String,
    pub registry: Registry,
    pub groups: Groups,
    pub faults: Faults,
    next_client_invocation: AtomicU64,
}

impl App {
    pub fn new(opts: Options, base_url: String) -> Self {
        App {
            opts,
            base_url,
            registry: Registry::default(),
            groups: Groups::default(),
            faults: Faults::default(),
            next_client_invocation: AtomicU64::new(0),
        }
    }

    /// Ids of server-to-client invocations that expect a result: one counter for the whole
    /// server, as ASP.NET's lifetime manager uses.
    pub fn next_client_invocation_id(&self) -> String {
        (self.next_client_invocation.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }
}
