//! The three transports, as ASP.NET Core's `Http.Connections` serves them.

pub mod long_polling;
pub mod sse;
pub mod websockets;
