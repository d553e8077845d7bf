// Builds official-client connections for a transport x protocol pair.
import { HttpTransportType, HubConnectionBuilder, JsonHubProtocol, LogLevel } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { RecordingProtocol } from "./protocol-wrappers.mjs";
import { withTimeout } from "./waiting.mjs";

/** Every transport x protocol pair the official client supports (MessagePack needs binary frames: no SSE). */
export const PAIRS = [
  { transport: "WebSockets", protocol: "json" },
  { transport: "ServerSentEvents", protocol: "json" },
  { transport: "LongPolling", protocol: "json" },
  { transport: "WebSockets", protocol: "messagepack" },
  { transport: "LongPolling", protocol: "messagepack" },
].map((pair) => ({ ...pair, label: `${pair.transport}/${pair.protocol}` }));

const LOG_LEVELS = { trace: LogLevel.Trace, debug: LogLevel.Debug, info: LogLevel.Information, warn: LogLevel.Warning, error: LogLevel.Error };
/** Client logging to stderr, off unless SIGNALR_LOG=trace|debug|info|warn|error. */
const logLevel = LOG_LEVELS[process.env.SIGNALR_LOG] ?? LogLevel.None;

/**
 * A HubConnection (not started) for `url`.
 * options: transport ("WebSockets" | "ServerSentEvents" | "LongPolling" | undefined = any),
 *   protocol ("json" | "messagepack"), retryPolicy (IRetryPolicy or delay array),
 *   stateful (withStatefulReconnect), statefulBufferBytes, serverTimeoutMs, keepAliveMs,
 *   accessTokenFactory, headers, skipNegotiation, WebSocket (constructor), hubProtocol (an IHubProtocol
 *   used instead of `protocol`), recording (wrap the protocol in a RecordingProtocol, reachable as
 *   connection.recording).
 */
export function buildConnection(url, options = {}) {
  const httpOptions = {};
  if (options.transport) httpOptions.transport = HttpTransportType[options.transport];
  if (options.accessTokenFactory) httpOptions.accessTokenFactory = options.accessTokenFactory;
  if (options.headers) httpOptions.headers = options.headers;
  if (options.skipNegotiation) httpOptions.skipNegotiation = true;
  if (options.WebSocket) httpOptions.WebSocket = options.WebSocket;

  const protocol = options.hubProtocol ?? (options.protocol === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol());
  const recording = options.recording ? new RecordingProtocol(protocol) : null;

  const builder = new HubConnectionBuilder()
    .withUrl(url, httpOptions)
    .withHubProtocol(recording ?? protocol)
    .configureLogging(logLevel);
  if (options.retryPolicy) builder.withAutomaticReconnect(options.retryPolicy);
  if (options.stateful) builder.withStatefulReconnect({ bufferSize: options.statefulBufferBytes });
  if (options.serverTimeoutMs) builder.withServerTimeout(options.serverTimeoutMs);
  if (options.keepAliveMs) builder.withKeepAliveInterval(options.keepAliveMs);

  const connection = builder.build();
  connection.recording = recording;
  return connection;
}

/** Tracks the connections a test file opens so that `stopAll` leaves nothing running. */
export class ConnectionPool {
  constructor() {
    this._connections = new Set();
  }

  /** Builds a connection and registers it for `stopAll` without starting it. */
  build(url, options) {
    const connection = buildConnection(url, options);
    this._connections.add(connection);
    return connection;
  }

  /** Builds and starts a connection. */
  async open(url, options) {
    const connection = this.build(url, options);
    await withTimeout(connection.start(), `start of ${options?.transport ?? "any"}/${options?.protocol ?? "json"} connection to ${url}`);
    return connection;
  }

  async stopAll() {
    await Promise.all([...this._connections].map((c) => c.stop().catch(() => {})));
    this._connections.clear();
  }
}
