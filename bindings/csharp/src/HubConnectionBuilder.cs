using System;
using System.Collections.Generic;
using System.Threading.Tasks;

namespace SignalR.Native
{
    /// <summary>Transports (bit values as Microsoft's HttpTransportType); None = any.</summary>
    [Flags]
    public enum HttpTransportType : uint
    {
        None = 0,
        WebSockets = 1,
        ServerSentEvents = 2,
        LongPolling = 4,
    }

    /// <summary>Hub protocols (values as the C API's signalr_protocol).</summary>
    public enum HubProtocol : uint
    {
        Json = 0,
        MessagePack = 1,
    }

    /// <summary>Options of WithUrl, as Microsoft's HttpConnectionOptions.</summary>
    public sealed class HttpConnectionOptions
    {
        /// <summary>Transports the client may use (None = all).</summary>
        public HttpTransportType Transports { get; set; }

        /// <summary>Extra headers sent with every HTTP request.</summary>
        public IDictionary<string, string> Headers { get; } = new Dictionary<string, string>();

        /// <summary>Called before every negotiate and connect; null or "" = no token. Its
        /// synchronous part (up to its first await) runs on the connection's callback thread:
        /// keep it quick.</summary>
        public Func<Task<string>> AccessTokenProvider { get; set; }

        /// <summary>Connect straight over WebSockets without the negotiate request.</summary>
        public bool SkipNegotiation { get; set; }

        /// <summary>Timeout of each HTTP request (the library's default when null).</summary>
        public TimeSpan? HttpTimeout { get; set; }

        /// <summary>Extra trusted root certificates (PEM files), e.g. for a self-signed test server.</summary>
        public IList<string> TrustedCertificateFiles { get; } = new List<string>();
    }

    /// <summary>Decides the delays of automatic reconnect (as Microsoft's IRetryPolicy). Called
    /// on the connection's callback thread, in turn with its other callbacks; keep it quick.</summary>
    public interface IRetryPolicy
    {
        /// <summary>The delay before the next attempt, or null to stop reconnecting.</summary>
        TimeSpan? NextRetryDelay(RetryContext retryContext);
    }

    public sealed class RetryContext
    {
        public long PreviousRetryCount { get; set; }
        public TimeSpan ElapsedTime { get; set; }
        public Exception RetryReason { get; set; }
    }

    /// <summary>Configures and builds a <see cref="HubConnection"/>, as Microsoft's
    /// HubConnectionBuilder: <c>new HubConnectionBuilder().WithUrl(url).WithAutomaticReconnect().Build()</c>.</summary>
    public sealed class HubConnectionBuilder
    {
        private string url;
        private readonly HttpConnectionOptions options = new HttpConnectionOptions();
        private HubProtocol protocol = HubProtocol.Json;
        private bool automaticReconnect;
        private TimeSpan[] reconnectDelays;
        private IRetryPolicy retryPolicy;
        private bool statefulReconnect;
        private long? statefulBufferSize;
        private TimeSpan? serverTimeout, keepAliveInterval, handshakeTimeout;
        private long? maxMessageSize;
        private IJsonSerializer serializer = DefaultJsonSerializer.Instance;
        private LogSink logSink;
        private LogLevel logLevel = LogLevel.Information;
        private bool built;

        public HubConnectionBuilder WithUrl(string url)
        {
            this.url = url ?? throw new ArgumentNullException(nameof(url));
            return this;
        }

        public HubConnectionBuilder WithUrl(string url, HttpTransportType transports)
        {
            WithUrl(url);
            options.Transports = transports;
            return this;
        }

        public HubConnectionBuilder WithUrl(string url, Action<HttpConnectionOptions> configure)
        {
            WithUrl(url);
            if (configure != null) configure(options);
            return this;
        }

        /// <summary>Reconnects after 0, 2, 10 and 30 seconds, then gives up.</summary>
        public HubConnectionBuilder WithAutomaticReconnect()
        {
            automaticReconnect = true;
            reconnectDelays = null;
            retryPolicy = null;
            return this;
        }

        public HubConnectionBuilder WithAutomaticReconnect(TimeSpan[] reconnectDelays)
        {
            if (reconnectDelays == null) throw new ArgumentNullException(nameof(reconnectDelays));
            automaticReconnect = true;
            this.reconnectDelays = (TimeSpan[])reconnectDelays.Clone();
            retryPolicy = null;
            return this;
        }

        public HubConnectionBuilder WithAutomaticReconnect(IRetryPolicy retryPolicy)
        {
            automaticReconnect = true;
            reconnectDelays = null;
            this.retryPolicy = retryPolicy ?? throw new ArgumentNullException(nameof(retryPolicy));
            return this;
        }

        /// <summary>Keeps the connection (and replays unacknowledged messages) across a transport
        /// drop when the server supports it; <paramref name="bufferSize"/> bounds the replay buffer.</summary>
        public HubConnectionBuilder WithStatefulReconnect(long? bufferSize = null)
        {
            statefulReconnect = true;
            statefulBufferSize = bufferSize;
            return this;
        }

        public HubConnectionBuilder WithServerTimeout(TimeSpan timeout) { serverTimeout = timeout; return this; }

        public HubConnectionBuilder WithKeepAliveInterval(TimeSpan interval) { keepAliveInterval = interval; return this; }

        public HubConnectionBuilder WithHandshakeTimeout(TimeSpan timeout) { handshakeTimeout = timeout; return this; }

        public HubConnectionBuilder WithMaximumMessageSize(long bytes) { maxMessageSize = bytes; return this; }

        /// <summary>Uses the MessagePack hub protocol (the JSON ↔ MessagePack conversion happens in
        /// the native library; the C# API stays the same).</summary>
        public HubConnectionBuilder AddMessagePackProtocol() { protocol = HubProtocol.MessagePack; return this; }

        public HubConnectionBuilder AddJsonProtocol() { protocol = HubProtocol.Json; return this; }

        public HubConnectionBuilder WithProtocol(HubProtocol hubProtocol) { protocol = hubProtocol; return this; }

        /// <summary>Replaces the serializer of typed arguments and results.</summary>
        public HubConnectionBuilder WithSerializer(IJsonSerializer jsonSerializer)
        {
            serializer = jsonSerializer ?? throw new ArgumentNullException(nameof(jsonSerializer));
            return this;
        }

        /// <summary>Sends log records at or above <paramref name="minLevel"/> to <paramref name="sink"/>:
        /// the wrapper's own (e.g. handler exceptions) and the native library's. The library's log
        /// is process-wide, so its records of every connection reach every configured sink.</summary>
        public HubConnectionBuilder ConfigureLogging(LogSink sink, LogLevel minLevel = LogLevel.Information)
        {
            logSink = sink ?? throw new ArgumentNullException(nameof(sink));
            logLevel = minLevel;
            return this;
        }

        public HubConnection Build()
        {
            if (built) throw new InvalidOperationException("HubConnectionBuilder allows creation only of a single instance of HubConnection.");
            if (url == null) throw new InvalidOperationException("No URL: call WithUrl first.");
            built = true;

            var logger = logSink == null ? Logger.Default : new Logger(logSink, logLevel);
            var core = new ConnectionCore(serializer, logger);
            ConnectionHandle connection;
            using (var b = NewBuilder())
            {
                Configure(b, logger);
                IntPtr raw = b.Consume();
                SignalRException.Check(NativeMethods.signalr_builder_build(raw, out connection));
            }
            try
            {
                Trampolines.Register(ud => NativeMethods.signalr_connection_on_closed(connection, Trampolines.Closed, ud, Trampolines.FreeUserdata), core);
                Trampolines.Register(ud => NativeMethods.signalr_connection_on_reconnecting(connection, Trampolines.Reconnecting, ud, Trampolines.FreeUserdata), core);
                Trampolines.Register(ud => NativeMethods.signalr_connection_on_reconnected(connection, Trampolines.Reconnected, ud, Trampolines.FreeUserdata), core);
                NativeLog.Subscribe(logger);
            }
            catch
            {
                connection.Dispose();
                throw;
            }
            return new HubConnection(connection, core);
        }

        private BuilderHandle NewBuilder()
        {
            BuilderHandle b;
            SignalRException.Check(NativeMethods.signalr_builder_new(Utf8.Encode(url), out b));
            return b;
        }

        private void Configure(BuilderHandle b, Logger logger)
        {
            Check(NativeMethods.signalr_builder_set_transports(b, (uint)options.Transports));
            Check(NativeMethods.signalr_builder_set_skip_negotiation(b, options.SkipNegotiation));
            foreach (var h in options.Headers)
                Check(NativeMethods.signalr_builder_add_header(b, Utf8.Encode(h.Key), Utf8.Encode(h.Value)));
            if (options.AccessTokenProvider != null)
            {
                var reg = new AccessTokenRegistration(options.AccessTokenProvider, logger);
                Trampolines.Register(ud => NativeMethods.signalr_builder_set_access_token_provider(b, Trampolines.AccessToken, ud, Trampolines.FreeUserdata), reg);
            }
            if (options.HttpTimeout.HasValue) Check(NativeMethods.signalr_builder_set_http_timeout_ms(b, Ms(options.HttpTimeout.Value)));
            foreach (var file in options.TrustedCertificateFiles)
                Check(NativeMethods.signalr_builder_add_trusted_ca_file(b, Utf8.Encode(file)));
            Check(NativeMethods.signalr_builder_set_protocol(b, (uint)protocol));
            if (serverTimeout.HasValue) Check(NativeMethods.signalr_builder_set_server_timeout_ms(b, Ms(serverTimeout.Value)));
            if (keepAliveInterval.HasValue) Check(NativeMethods.signalr_builder_set_keep_alive_interval_ms(b, Ms(keepAliveInterval.Value)));
            if (handshakeTimeout.HasValue) Check(NativeMethods.signalr_builder_set_handshake_timeout_ms(b, Ms(handshakeTimeout.Value)));
            if (maxMessageSize.HasValue) Check(NativeMethods.signalr_builder_set_max_message_size(b, Size(maxMessageSize.Value)));
            if (retryPolicy != null)
            {
                var reg = new RetryPolicyRegistration(retryPolicy, logger);
                Trampolines.Register(ud => NativeMethods.signalr_builder_set_reconnect_policy(b, Trampolines.ReconnectPolicy, ud, Trampolines.FreeUserdata), reg);
            }
            else if (automaticReconnect)
            {
                ulong[] delays = null;
                if (reconnectDelays != null)
                {
                    delays = new ulong[reconnectDelays.Length];
                    for (int i = 0; i < delays.Length; i++) delays[i] = Ms(reconnectDelays[i]);
                }
                Check(NativeMethods.signalr_builder_set_automatic_reconnect(b, delays, new UIntPtr((uint)(delays == null ? 0 : delays.Length))));
            }
            if (statefulReconnect)
            {
                Check(NativeMethods.signalr_builder_set_stateful_reconnect(b, true));
                if (statefulBufferSize.HasValue)
                    Check(NativeMethods.signalr_builder_set_stateful_reconnect_buffer_size(b, Size(statefulBufferSize.Value)));
            }
        }

        private static void Check(uint rc) { SignalRException.Check(rc); }

        private static ulong Ms(TimeSpan t)
        {
            if (t < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(t), "a duration must not be negative");
            return (ulong)t.TotalMilliseconds;
        }

        private static UIntPtr Size(long bytes)
        {
            if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), "a size must not be negative");
            return new UIntPtr((ulong)bytes);
        }
    }
}
