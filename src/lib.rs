//! signalr-native: an ASP.NET Core SignalR client with a C ABI.
//!
//! `protocol` holds the hub protocols (JSON and MessagePack) and their framing; it is shared with the
//! test hub under `tests/hub`, whose fidelity the official client proves.
//!
//! The client: [`HubConnectionBuilder`] configures and builds a [`HubConnection`]; `negotiate`,
//! `transport` and `connection` implement the official clients' behaviour (checklist IDs in
//! `shared/docs/protocol-checklist.md` are cited in comments).
//!
//! ```no_run
//! # async fn demo() -> signalr_native::Result<()> {
//! use signalr_native::HubConnectionBuilder;
//! let connection = HubConnectionBuilder::new("http://localhost:5000/hub").build()?;
//! connection.on("ReceiveMessage", |args| println!("{}", args.to_json().unwrap()))?;
//! connection.start().await?;
//! let sum = connection.invoke("Add", connection.args(&(1, 2))?).await?;
//! assert_eq!(sum.to_value::<i64>().unwrap(), 3);
//! connection.stop().await;
//! # Ok(()) }
//! ```

pub mod protocol;

mod builder;
mod connection;
mod error;
mod http;
mod id_map;
mod negotiate;
pub mod reconnect;
pub mod runtime;
mod tls;
pub mod transport;

pub use builder::{
    AccessTokenProvider, HubConnectionBuilder, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HTTP_TIMEOUT,
    DEFAULT_KEEP_ALIVE_INTERVAL, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SERVER_TIMEOUT,
    DEFAULT_STATEFUL_RECONNECT_BUFFER_SIZE,
};
pub use connection::{
    CloseCallback, ConnectionState, Handler, HandlerId, HubConnection, HubStream, PendingInvocation,
    ReconnectedCallback, ReconnectingCallback, Responder, ResultHandler, UploadStream, NO_RESULT_ERROR,
    UPLOAD_CANCELED_ERROR,
};
pub use error::{Error, Result};
pub use protocol::{Format, HubProtocol, Payload};
pub use reconnect::{DelayListPolicy, ReconnectPolicy, RetryContext};
pub use tls::TlsOptions;
pub use transport::{TransportKind, TransportSet};
pub mod ffi;
