//! The hub: method table (resolved case-insensitively), argument binding, invocation modes,
//! ASP.NET's error texts, and the methods of SPEC.md "Hub methods".

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use signalr_native::protocol::{
    Completion, CompletionResult, Format, HubMessage, HubProtocol, Invocation, Payload, StreamItem,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::app::App;
use crate::connections::Connection;
use crate::invocations::UploadEvent;
use crate::signal::Signal;
use crate::{faults, groups};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Echo,
    Add,
    Fail,
    Delay,
    Counter,
    Sum,
    UploadEcho,
    SendToCaller,
    Broadcast,
    JoinGroup,
    LeaveGroup,
    SendToGroup,
    AskClient,
    GetConnectionId,
    GetUser,
    GetRequestInfo,
    Flood,
    DropTransport,
    CloseWithError,
    Stall,
    SendMalformed,
    SendUnknownType,
    SendRaw,
    FailNextNegotiations,
    FailNextConnects,
    Record,
    GetRecorded,
}

pub struct Descriptor {
    pub name: &'static str,
    method: Method,
    /// Arguments besides upload streams; with `variadic`, the minimum.
    params: usize,
    variadic: bool,
    /// Returns a stream: must be called with StreamInvocation.
    streaming: bool,
    uploads: usize,
}

const fn invoke(name: &'static str, method: Method, params: usize) -> Descriptor {
    Descriptor { name, method, params, variadic: false, streaming: false, uploads: 0 }
}

const METHODS: &[Descriptor] = &[
    invoke("Echo", Method::Echo, 1),
    invoke("Add", Method::Add, 2),
    invoke("Fail", Method::Fail, 1),
    invoke("Delay", Method::Delay, 1),
    Descriptor { streaming: true, ..invoke("Counter", Method::Counter, 2) },
    Descriptor { uploads: 1, ..invoke("Sum", Method::Sum, 0) },
    Descriptor { streaming: true, uploads: 1, ..invoke("UploadEcho", Method::UploadEcho, 0) },
    Descriptor { variadic: true, ..invoke("SendToCaller", Method::SendToCaller, 1) },
    Descriptor { variadic: true, ..invoke("Broadcast", Method::Broadcast, 1) },
    invoke("JoinGroup", Method::JoinGroup, 1),
    invoke("LeaveGroup", Method::LeaveGroup, 1),
    Descriptor { variadic: true, ..invoke("SendToGroup", Method::SendToGroup, 2) },
    invoke("AskClient", Method::AskClient, 2),
    invoke("GetConnectionId", Method::GetConnectionId, 0),
    invoke("GetUser", Method::GetUser, 0),
    invoke("GetRequestInfo", Method::GetRequestInfo, 0),
    invoke("Flood", Method::Flood, 2),
    invoke("DropTransport", Method::DropTransport, 0),
    invoke("CloseWithError", Method::CloseWithError, 2),
    invoke("Stall", Method::Stall, 1),
    invoke("SendMalformed", Method::SendMalformed, 0),
    invoke("SendUnknownType", Method::SendUnknownType, 0),
    invoke("SendRaw", Method::SendRaw, 2),
    invoke("FailNextNegotiations", Method::FailNextNegotiations, 2),
    invoke("FailNextConnects", Method::FailNextConnects, 2),
    invoke("Record", Method::Record, 1),
    invoke("GetRecorded", Method::GetRecorded, 0),
];

/// Hub methods resolve case-insensitively, like ASP.NET.
fn lookup(target: &str) -> Option<&'static Descriptor> {
    METHODS.iter().find(|d| d.name.eq_ignore_ascii_case(target))
}

/// How a hub method failed; `text` gives the Completion error ASP.NET would send
/// (without `EnableDetailedErrors`).
#[derive(Debug)]
pub enum HubError {
    /// Wrong number or type of arguments.
    Binding,
    /// A HubException: its message reaches the client.
    Hub(String),
    /// Any other failure: the client only learns that something went wrong.
    Internal(String),
}

impl HubError {
    fn invoke_text(&self, method: &str) -> String {
        match self {
            HubError::Binding => format!("Failed to invoke '{method}' due to an error on the server."),
            HubError::Hub(message) => {
                format!("An unexpected error occurred invoking '{method}' on the server. HubException: {message}")
            }
            HubError::Internal(_) => format!("An unexpected error occurred invoking '{method}' on the server."),
        }
    }

    fn stream_text(&self, method: &str) -> String {
        match self {
            HubError::Binding => self.invoke_text(method),
            HubError::Hub(message) => {
                format!("An error occurred on the server while streaming results. HubException: {message}")
            }
            HubError::Internal(_) => "An error occurred on the server while streaming results.".into(),
        }
    }
}

/// One invocation of a hub method.
pub struct Call {
    pub app: Arc<App>,
    pub conn: Arc<Connection>,
    desc: &'static Descriptor,
    args: Vec<Payload>,
    uploads: Vec<mpsc::Receiver<UploadEvent>>,
    stream_ids: Vec<String>,
    protocol: HubProtocol,
    /// Held while a non-streaming invocation runs; see [`crate::invocations::Invocations::serial`].
    permit: Option<OwnedSemaphorePermit>,
}

impl Call {
    pub fn protocol(&self) -> HubProtocol {
        self.protocol
    }

    fn format(&self) -> Format {
        self.protocol.format()
    }

    /// Argument `i`, bound to `T`; a value of the wrong type is a binding error, as in ASP.NET.
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Result<T, HubError> {
        self.args.get(i).ok_or(HubError::Binding)?.to_value().map_err(|e| {
            tracing::debug!("argument {i} of {}: {e}", self.desc.name);
            HubError::Binding
        })
    }

    pub fn value<T: Serialize + ?Sized>(&self, value: &T) -> Result<Payload, HubError> {
        Payload::from_value(value, self.format()).map_err(|e| HubError::Internal(e.to_string()))
    }

    pub fn null(&self) -> Payload {
        Payload::null(self.format())
    }

    /// `Invocation(method, ...rest)` built from the arguments starting at `first`: the target
    /// name, then the arguments to pass on.
    pub fn invocation_from_args(&self, first: usize) -> Result<HubMessage, HubError> {
        let target: String = self.arg(first)?;
        if target.is_empty() {
            return Err(HubError::Hub("the method name is empty".into()));
        }
        let arguments = Payload::array(&self.args[first + 1..], self.format())
            .map_err(|e| HubError::Internal(e.to_string()))?;
        Ok(client_invocation(None, target, arguments))
    }

    fn close_uploads(&self) {
        for id in &self.stream_ids {
            self.conn.invocations.close_upload(id);
        }
    }
}

fn client_invocation(invocation_id: Option<String>, target: String, arguments: Payload) -> HubMessage {
    HubMessage::Invocation(Invocation { headers: Vec::new(), invocation_id, target, arguments, stream_ids: Vec::new() })
}

/// Sends `message` to every connection in `targets`, encoding it once per protocol.
pub async fn send_to_all(targets: &[Arc<Connection>], message: &HubMessage) {
    let mut encoded: [Option<Vec<u8>>; 2] = [None, None];
    for conn in targets {
        let Some(session) = conn.session() else { continue };
        let slot = &mut encoded[match session.protocol {
            HubProtocol::Json => 0,
            HubProtocol::MessagePack => 1,
        }];
        if slot.is_none() {
            let mut bytes = Vec::new();
            if let Err(e) = session.protocol.write(message, &mut bytes) {
                tracing::error!("cannot encode {message:?}: {e}");
                return;
            }
            *slot = Some(bytes);
        }
        if let Some(bytes) = slot {
            conn.send_encoded(bytes, message.is_trackable()).await;
        }
    }
}

/// Handles an Invocation (`is_stream` false) or StreamInvocation from the client: validates it
/// as ASP.NET's dispatcher does, then runs the method in its own task. Non-streaming calls
/// without upload streams wait for the previous one to finish first, holding up the caller
/// (the session's read loop) like ASP.NET's per-client invocation limit.
pub async fn dispatch(app: &Arc<App>, conn: &Arc<Connection>, invocation: Invocation, is_stream: bool) {
    let Some(session) = conn.session() else { return };
    let id = invocation.invocation_id.clone().filter(|id| !id.is_empty());
    let error_id = id.clone();
    let reject = |text: String| async {
        if let Some(id) = error_id {
            send_completion(conn, id, CompletionResult::Error(text)).await;
        }
    };
    let Some(desc) = lookup(&invocation.target) else {
        let target = &invocation.target;
        reject(format!("Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist.")).await;
        return;
    };
    let args = match invocation.arguments.array_items() {
        Ok(args) if args.len() == desc.params || (desc.variadic && args.len() >= desc.params) => args,
        _ => return reject(HubError::Binding.invoke_text(desc.name)).await,
    };
    if desc.streaming && !is_stream {
        let text = format!(
            "The client attempted to invoke the streaming '{}' method with a non-streaming invocation.",
            desc.name
        );
        return reject(text).await;
    }
    if !desc.streaming && is_stream {
        let text = format!(
            "The client attempted to invoke the non-streaming '{}' method with a streaming invocation.",
            desc.name
        );
        return reject(text).await;
    }
    if invocation.stream_ids.len() != desc.uploads {
        let error = HubError::Hub(format!(
            "Client sent {} stream(s), Hub method expects {}.",
            invocation.stream_ids.len(),
            desc.uploads
        ));
        return reject(error.invoke_text(desc.name)).await;
    }
    let uploads = invocation.stream_ids.iter().map(|sid| conn.invocations.open_upload(sid)).collect();
    let mut call = Call {
        app: app.clone(),
        conn: conn.clone(),
        desc,
        args,
        uploads,
        stream_ids: invocation.stream_ids,
        protocol: session.protocol,
        permit: None,
    };
    if desc.streaming {
        let Some(id) = id else { return };
        let Some(cancel) = conn.invocations.start_stream(&id) else {
            call.close_uploads();
            return reject(format!("Invocation ID '{id}' is already in use.")).await;
        };
        tokio::spawn(run_stream(call, id, cancel));
    } else if desc.uploads > 0 {
        tokio::spawn(run_invoke(call, id));
    } else {
        let permit = tokio::select! {
            permit = conn.invocations.serial.clone().acquire_owned() => permit.ok(),
            _ = conn.disposed.wait() => None,
        };
        let Some(permit) = permit else { return };
        call.permit = Some(permit);
        tokio::spawn(run_invoke(call, id));
    }
}

async fn send_completion(conn: &Connection, invocation_id: String, result: CompletionResult) {
    conn.send(&HubMessage::Completion(Completion { headers: Vec::new(), invocation_id, result })).await;
}

async fn run_invoke(mut call: Call, id: Option<String>) {
    let result = invoke_method(&mut call).await;
    call.close_uploads();
    if let Err(HubError::Internal(detail)) = &result {
        tracing::warn!(connection = %call.conn.id, "{} failed: {detail}", call.desc.name);
    }
    if let Some(id) = id {
        let result = match result {
            Ok(value) => CompletionResult::Value(value),
            Err(e) => CompletionResult::Error(e.invoke_text(call.desc.name)),
        };
        send_completion(&call.conn, id, result).await;
    }
    drop(call.permit.take());
}

async fn run_stream(mut call: Call, id: String, cancel: Arc<Signal>) {
    let sink = StreamSink { conn: call.conn.clone(), id: id.clone() };
    let result = tokio::select! {
        result = stream_method(&mut call, &sink) => result,
        _ = cancel.wait() => Ok(()),
    };
    call.close_uploads();
    call.conn.invocations.end_stream(&id);
    let result = match result {
        Ok(()) => CompletionResult::Void,
        Err(e) => CompletionResult::Error(e.stream_text(call.desc.name)),
    };
    send_completion(&call.conn, id, result).await;
}

/// Where a streaming method writes its items.
struct StreamSink {
    conn: Arc<Connection>,
    id: String,
}

impl StreamSink {
    async fn send(&self, item: Payload) -> Result<(), HubError> {
        let message = HubMessage::StreamItem(StreamItem { headers: Vec::new(), invocation_id: self.id.clone(), item });
        if self.conn.send(&message).await {
            Ok(())
        } else {
            Err(HubError::Internal("connection closed".into()))
        }
    }
}

async fn invoke_method(call: &mut Call) -> Result<Payload, HubError> {
    match call.desc.method {
        Method::Echo => Ok(call.args[0].clone()),
        Method::Add => add(call),
        Method::Fail => Err(HubError::Hub(call.arg(0)?)),
        Method::Delay => {
            let ms: u64 = call.arg(0)?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            call.value(&ms)
        }
        Method::Sum => sum(call).await,
        Method::SendToCaller => {
            let invocation = call.invocation_from_args(0)?;
            call.conn.send(&invocation).await;
            Ok(call.null())
        }
        Method::Broadcast => {
            let invocation = call.invocation_from_args(0)?;
            send_to_all(&call.app.registry.of_hub(call.conn.hub), &invocation).await;
            Ok(call.null())
        }
        Method::JoinGroup => groups::join_group(call).await,
        Method::LeaveGroup => groups::leave_group(call).await,
        Method::SendToGroup => groups::send_to_group(call).await,
        Method::AskClient => ask_client(call).await,
        Method::GetConnectionId => call.value(&call.conn.id),
        Method::GetUser => call.value(&call.conn.user),
        Method::GetRequestInfo => request_info(call),
        Method::Flood => flood(call).await,
        Method::DropTransport => faults::drop_transport(call).await,
        Method::CloseWithError => faults::close_with_error(call).await,
        Method::Stall => faults::stall(call).await,
        Method::SendMalformed => faults::send_malformed(call).await,
        Method::SendUnknownType => faults::send_unknown_type(call).await,
        Method::SendRaw => faults::send_raw(call).await,
        Method::FailNextNegotiations => faults::fail_next_negotiations(call).await,
        Method::FailNextConnects => faults::fail_next_connects(call).await,
        Method::Record => {
            call.conn.invocations.record(call.args[0].clone());
            Ok(call.null())
        }
        Method::GetRecorded => Payload::array(&call.conn.invocations.recorded(), call.format())
            .map_err(|e| HubError::Internal(e.to_string())),
        Method::Counter | Method::UploadEcho => Err(HubError::Internal("streaming method called as invoke".into())),
    }
}

async fn stream_method(call: &mut Call, sink: &StreamSink) -> Result<(), HubError> {
    match call.desc.method {
        Method::Counter => {
            let count: i64 = call.arg(0)?;
            let delay: u64 = call.arg(1)?;
            for i in 0..count {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                sink.send(call.value(&i)?).await?;
            }
            Ok(())
        }
        Method::UploadEcho => {
            let mut upload = call.uploads.pop().ok_or(HubError::Binding)?;
            loop {
                match upload.recv().await {
                    Some(UploadEvent::Item(item)) => sink.send(item).await?,
                    Some(UploadEvent::End(None)) => return Ok(()),
                    Some(UploadEvent::End(Some(error))) => return Err(HubError::Hub(error)),
                    None => return Err(HubError::Internal("connection closed".into())),
                }
            }
        }
        _ => Err(HubError::Internal("non-streaming method called as stream".into())),
    }
}

/// `a + b`: an integer when both are integers, else a float.
fn add(call: &Call) -> Result<Payload, HubError> {
    let a: serde_json::Value = call.arg(0)?;
    let b: serde_json::Value = call.arg(1)?;
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(total) = x.checked_add(y) {
            return call.value(&total);
        }
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => call.value(&(x + y)),
        _ => Err(HubError::Binding),
    }
}

/// The total of an upload stream of numbers; an upload ending with an error throws it.
async fn sum(call: &mut Call) -> Result<Payload, HubError> {
    let mut upload = call.uploads.pop().ok_or(HubError::Binding)?;
    let mut int_total: i64 = 0;
    let mut float_total: Option<f64> = None;
    loop {
        match upload.recv().await {
            Some(UploadEvent::Item(item)) => {
                let value: serde_json::Value = item
                    .to_value()
                    .map_err(|_| HubError::Hub("Failed to bind Stream message.".into()))?;
                match (value.as_i64(), float_total) {
                    (Some(n), None) if int_total.checked_add(n).is_some() => int_total += n,
                    _ => {
                        let n = value.as_f64().ok_or_else(|| HubError::Hub("Failed to bind Stream message.".into()))?;
                        float_total = Some(float_total.unwrap_or(int_total as f64) + n);
                    }
                }
            }
            Some(UploadEvent::End(None)) => break,
            Some(UploadEvent::End(Some(error))) => return Err(HubError::Hub(error)),
            None => return Err(HubError::Internal("connection closed".into())),
        }
    }
    match float_total {
        Some(total) => call.value(&total),
        None => call.value(&int_total),
    }
}

/// A client-result invocation on the caller; while waiting, the next invocation may run
/// (ASP.NET releases its per-client invocation limit for client results).
async fn ask_client(call: &mut Call) -> Result<Payload, HubError> {
    let method: String = call.arg(0)?;
    let arguments = Payload::array(&call.args[1..2], call.format()).map_err(|e| HubError::Internal(e.to_string()))?;
    let id = call.app.next_client_invocation_id();
    let result = call.conn.invocations.expect_client_result(&id);
    if !call.conn.send(&client_invocation(Some(id), method, arguments)).await {
        return Err(HubError::Internal("connection closed".into()));
    }
    drop(call.permit.take());
    match result.await {
        Ok(CompletionResult::Value(value)) => Ok(value),
        Ok(CompletionResult::Void) => Ok(call.null()),
        Ok(CompletionResult::Error(error)) => Err(HubError::Hub(error)),
        Err(_) => Err(HubError::Internal("connection closed while waiting for the client result".into())),
    }
}

fn request_info(call: &Call) -> Result<Payload, HubError> {
    let conn = &call.conn;
    let info = serde_json::json!({
        "transport": conn.transport().map(|t| t.name()),
        "protocol": call.protocol.name(),
        "handshakeVersion": conn.session().map(|s| s.version),
        "negotiate": conn.negotiate_info,
        "connect": conn.connect_info(),
        "send": conn.send_info(),
    });
    call.value(&info)
}

/// `count` Invocations `Flood(i, "xxx…")` to the caller, as fast as the transport takes them.
async fn flood(call: &mut Call) -> Result<Payload, HubError> {
    let count: u64 = call.arg(0)?;
    let payload_bytes: usize = call.arg(1)?;
    if payload_bytes > call.app.opts.max_message_bytes {
        return Err(HubError::Hub(format!(
            "payloadBytes {payload_bytes} is larger than the server's --max-message-bytes"
        )));
    }
    let text = call.value("x".repeat(payload_bytes).as_str())?;
    let format = call.format();
    // One message, its arguments replaced per call: the hub should cost its clients little.
    let mut message = client_invocation(None, "Flood".to_owned(), Payload::empty_array(format));
    for i in 0..count {
        let index = call.value(&i)?;
        let arguments = Payload::array(&[index, text.clone()], format).map_err(|e| HubError::Internal(e.to_string()))?;
        if let HubMessage::Invocation(invocation) = &mut message {
            invocation.arguments = arguments;
        }
        if !call.conn.send(&message).await {
            return Err(HubError::Internal("connection closed during Flood".into()));
        }
    }
    call.value(&count)
}
