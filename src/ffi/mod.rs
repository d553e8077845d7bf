//! The C ABI. Everything exported starts with `signalr_`; see `include/signalr.h` (generated from
//! these files by cbindgen) for the contract each function promises.
//!
//! Plumbing: `boundary` (panic boundary, argument checks, handle casts), `result` (status codes
//! and the thread-local error message), `strings`, `userdata`, `dispatcher` (each connection's
//! callback thread), `operation` (asynchronous operations and their completions), `blocking`
//! (waiting on the calling thread for the `_blocking` functions), `spin` (how waiting threads
//! spin before they sleep). One file per C object after that.
#![allow(non_camel_case_types)]
// The safety contract of every exported function is the header's: pointers are NULL or live handles
// and strings of this API; each function documents what it borrows and what it consumes.
#![allow(clippy::missing_safety_doc)]

#[macro_use]
mod boundary;
mod blocking;
mod builder;
mod call_args;
mod connection;
mod dispatcher;
mod handlers;
mod invocation;
mod lifecycle;
mod log;
mod operation;
mod reconnect;
mod responder;
mod result;
mod signals;
mod spin;
mod stream;
mod strings;
mod token;
mod upload;
mod userdata;
mod version;

pub use builder::*;
pub use connection::*;
pub use handlers::*;
pub use invocation::*;
pub use lifecycle::*;
pub use log::*;
pub use operation::{signalr_completion_callback, signalr_stream_item_callback};
pub use reconnect::*;
pub use responder::*;
pub use result::*;
pub use stream::*;
pub use strings::*;
pub use token::*;
pub use upload::*;
pub use userdata::signalr_userdata_free;
pub use version::*;
