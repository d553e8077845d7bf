//! signalr-native: an ASP.NET Core SignalR client with a C ABI.
//!
//! `protocol` holds the hub protocols (JSON and MessagePack) and their framing; it is shared with the
//! test hub under `tests/hub`, whose fidelity the official client proves.

pub mod protocol;
pub mod ffi;
