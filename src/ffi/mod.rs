//! The C ABI. Everything exported starts with `signalr_`; see `include/signalr.h` (generated from
//! these files by cbindgen) for the contract each function promises.
//!
//! Plumbing: `boundary` (panic boundary, argument checks), `result` (status codes and the
//! thread-local error message), `strings`, `userdata`. One file per C object after that.
#![allow(non_camel_case_types)]

#[macro_use]
mod boundary;
mod log;
mod result;
mod strings;
mod userdata;
mod version;

pub use log::*;
pub use result::*;
pub use strings::*;
pub use userdata::signalr_userdata_free;
pub use version::*;
