using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native
{
    /// <summary>Connection states (values as the C API's signalr_connection_state).</summary>
    public enum HubConnectionState : uint
    {
        Disconnected = 0,
        Connecting = 1,
        Connected = 2,
        Disconnecting = 3,
        Reconnecting = 4,
    }

    /// <summary>A connection to a SignalR hub, shaped like Microsoft.AspNetCore.SignalR.Client's
    /// HubConnection. Build one with <see cref="HubConnectionBuilder"/>. All members may be used
    /// from any thread. Handlers and events run on the thread pool, one at a time, in the order
    /// the server sent them; task continuations never run on the library's threads.</summary>
    public sealed class HubConnection : IDisposable
    {
        private readonly ConnectionHandle handle;
        private readonly ConnectionCore core;

        internal HubConnection(ConnectionHandle handle, ConnectionCore core)
        {
            this.handle = handle;
            this.core = core;
        }

        // ---------------------------------------------------------------- lifecycle

        /// <summary>Raised when the connection closes for good (null after StopAsync).</summary>
        public event Func<Exception, Task> Closed
        {
            add { Subscribe(ref core.Closed, value); }
            remove { Unsubscribe(ref core.Closed, value); }
        }

        /// <summary>Raised when the connection was lost and automatic reconnect begins.</summary>
        public event Func<Exception, Task> Reconnecting
        {
            add { Subscribe(ref core.Reconnecting, value); }
            remove { Unsubscribe(ref core.Reconnecting, value); }
        }

        /// <summary>Raised after a successful reconnect, with the new connection id (null when
        /// negotiation is skipped).</summary>
        public event Func<string, Task> Reconnected
        {
            add { Subscribe(ref core.Reconnected, value); }
            remove { Unsubscribe(ref core.Reconnected, value); }
        }

        public HubConnectionState State
        {
            get { return (HubConnectionState)NativeMethods.signalr_connection_get_state(Handle); }
        }

        /// <summary>The id from negotiation; null when not connected or when negotiation is skipped.</summary>
        public string ConnectionId
        {
            get
            {
                IntPtr id;
                SignalRException.Check(NativeMethods.signalr_connection_get_connection_id(Handle, out id));
                return Utf8.TakeOwned(id);
            }
        }

        /// <summary>The transport in use (None when not connected).</summary>
        public HttpTransportType Transport
        {
            get { return (HttpTransportType)NativeMethods.signalr_connection_get_transport(Handle); }
        }

        /// <summary>Connects (negotiate, transport, handshake). Canceling the token aborts the start.</summary>
        public Task StartAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            return StartCall(cancellationToken, ud => NativeMethods.signalr_connection_start(
                Handle, Trampolines.Completion, ud, Trampolines.FreeUserdata), abortOnCancel: true);
        }

        /// <summary>Stops the connection; pending calls end with an exception. The token only
        /// stops the waiting.</summary>
        public Task StopAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            return StartCall(cancellationToken, ud => NativeMethods.signalr_connection_stop(
                Handle, Trampolines.Completion, ud, Trampolines.FreeUserdata), abortOnCancel: false);
        }

        /// <summary>Frees the native connection: it stops, every pending call ends (canceled), and
        /// no handler is called afterwards. Safe with calls in flight; idempotent.</summary>
        public void Dispose()
        {
            handle.Dispose();
            NativeLog.Unsubscribe(core.Logger);
            GC.SuppressFinalize(this);
        }

        // A connection collected without Dispose: its handle's own finalizer frees the native
        // side; this one only takes its log sink off the process-wide list.
        ~HubConnection()
        {
            NativeLog.Unsubscribe(core.Logger);
        }

        // ---------------------------------------------------------------- invoke

        /// <summary>Invokes a hub method with arguments given as JSON array text; returns the
        /// result as JSON text ("null" for a void method). Hub errors are <see cref="HubException"/>.</summary>
        public Task<string> InvokeRawAsync(string methodName, string argsJson, CancellationToken cancellationToken = default(CancellationToken))
        {
            return InvokeJson(methodName, argsJson, null, cancellationToken);
        }

        /// <summary>Invokes a hub method and reads its result as <paramref name="returnType"/>.
        /// Arguments that are <see cref="ClientStream{T}"/>s become upload streams.</summary>
        public async Task<object> InvokeCoreAsync(string methodName, Type returnType, object[] args, CancellationToken cancellationToken = default(CancellationToken))
        {
            List<IUploadSource> uploads;
            string argsJson = ArgsJson(args, out uploads);
            string json = await InvokeJson(methodName, argsJson, uploads, cancellationToken).ConfigureAwait(false);
            return core.Serializer.Deserialize(json, returnType);
        }

        /// <summary>Invokes a hub method and waits for it to finish, ignoring its result.</summary>
        public Task InvokeCoreAsync(string methodName, object[] args, CancellationToken cancellationToken = default(CancellationToken))
        {
            return InvokeCoreAsync(methodName, typeof(object), args, cancellationToken);
        }

        public async Task<TResult> InvokeAsync<TResult>(string methodName, CancellationToken cancellationToken = default(CancellationToken))
        {
            return (TResult)await InvokeCoreAsync(methodName, typeof(TResult), new object[0], cancellationToken).ConfigureAwait(false);
        }

        public async Task<TResult> InvokeAsync<TResult>(string methodName, object arg1, CancellationToken cancellationToken = default(CancellationToken))
        {
            return (TResult)await InvokeCoreAsync(methodName, typeof(TResult), new[] { arg1 }, cancellationToken).ConfigureAwait(false);
        }

        public async Task<TResult> InvokeAsync<TResult>(string methodName, object arg1, object arg2, CancellationToken cancellationToken = default(CancellationToken))
        {
            return (TResult)await InvokeCoreAsync(methodName, typeof(TResult), new[] { arg1, arg2 }, cancellationToken).ConfigureAwait(false);
        }

        public async Task<TResult> InvokeAsync<TResult>(string methodName, object arg1, object arg2, object arg3, CancellationToken cancellationToken = default(CancellationToken))
        {
            return (TResult)await InvokeCoreAsync(methodName, typeof(TResult), new[] { arg1, arg2, arg3 }, cancellationToken).ConfigureAwait(false);
        }

        public async Task<TResult> InvokeAsync<TResult>(string methodName, object arg1, object arg2, object arg3, object arg4, CancellationToken cancellationToken = default(CancellationToken))
        {
            return (TResult)await InvokeCoreAsync(methodName, typeof(TResult), new[] { arg1, arg2, arg3, arg4 }, cancellationToken).ConfigureAwait(false);
        }

        public async Task<TResult> InvokeAsync<TResult>(string methodName, object arg1, object arg2, object arg3, object arg4, object arg5, CancellationToken cancellationToken = default(CancellationToken))
        {
            return (TResult)await InvokeCoreAsync(methodName, typeof(TResult), new[] { arg1, arg2, arg3, arg4, arg5 }, cancellationToken).ConfigureAwait(false);
        }

        public Task InvokeAsync(string methodName, CancellationToken cancellationToken = default(CancellationToken))
        {
            return InvokeCoreAsync(methodName, typeof(object), new object[0], cancellationToken);
        }

        public Task InvokeAsync(string methodName, object arg1, CancellationToken cancellationToken = default(CancellationToken))
        {
            return InvokeCoreAsync(methodName, typeof(object), new[] { arg1 }, cancellationToken);
        }

        public Task InvokeAsync(string methodName, object arg1, object arg2, CancellationToken cancellationToken = default(CancellationToken))
        {
            return InvokeCoreAsync(methodName, typeof(object), new[] { arg1, arg2 }, cancellationToken);
        }

        public Task InvokeAsync(string methodName, object arg1, object arg2, object arg3, CancellationToken cancellationToken = default(CancellationToken))
        {
            return InvokeCoreAsync(methodName, typeof(object), new[] { arg1, arg2, arg3 }, cancellationToken);
        }

        public Task InvokeAsync(string methodName, object arg1, object arg2, object arg3, object arg4, CancellationToken cancellationToken = default(CancellationToken))
        {
            return InvokeCoreAsync(methodName, typeof(object), new[] { arg1, arg2, arg3, arg4 }, cancellationToken);
        }

        public Task InvokeAsync(string methodName, object arg1, object arg2, object arg3, object arg4, object arg5, CancellationToken cancellationToken = default(CancellationToken))
        {
            return InvokeCoreAsync(methodName, typeof(object), new[] { arg1, arg2, arg3, arg4, arg5 }, cancellationToken);
        }

        // ---------------------------------------------------------------- send

        /// <summary>Sends a hub method call without waiting for a result (done when written).</summary>
        public Task SendRawAsync(string methodName, string argsJson, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SendJson(methodName, argsJson, null, cancellationToken);
        }

        public Task SendCoreAsync(string methodName, object[] args, CancellationToken cancellationToken = default(CancellationToken))
        {
            List<IUploadSource> uploads;
            string argsJson;
            try { argsJson = ArgsJson(args, out uploads); }
            catch (Exception e) { return Task.FromException(e); }
            return SendJson(methodName, argsJson, uploads, cancellationToken);
        }

        public Task SendAsync(string methodName, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SendCoreAsync(methodName, new object[0], cancellationToken);
        }

        public Task SendAsync(string methodName, object arg1, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SendCoreAsync(methodName, new[] { arg1 }, cancellationToken);
        }

        public Task SendAsync(string methodName, object arg1, object arg2, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SendCoreAsync(methodName, new[] { arg1, arg2 }, cancellationToken);
        }

        public Task SendAsync(string methodName, object arg1, object arg2, object arg3, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SendCoreAsync(methodName, new[] { arg1, arg2, arg3 }, cancellationToken);
        }

        public Task SendAsync(string methodName, object arg1, object arg2, object arg3, object arg4, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SendCoreAsync(methodName, new[] { arg1, arg2, arg3, arg4 }, cancellationToken);
        }

        public Task SendAsync(string methodName, object arg1, object arg2, object arg3, object arg4, object arg5, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SendCoreAsync(methodName, new[] { arg1, arg2, arg3, arg4, arg5 }, cancellationToken);
        }

        // ---------------------------------------------------------------- streams

        /// <summary>Starts a server-to-client stream with JSON arguments; items are JSON texts.</summary>
        public HubStream<string> StreamRawAsync(string methodName, string argsJson, CancellationToken cancellationToken = default(CancellationToken))
        {
            return OpenStream<string>(methodName, argsJson, null, null, cancellationToken);
        }

        /// <summary>Starts a server-to-client stream; items are read as <typeparamref name="TItem"/>,
        /// in order. Canceling the token sends CancelInvocation. Arguments that are
        /// <see cref="ClientStream{T}"/>s become upload streams.</summary>
        public HubStream<TItem> StreamCoreAsync<TItem>(string methodName, object[] args, CancellationToken cancellationToken = default(CancellationToken))
        {
            List<IUploadSource> uploads;
            string argsJson = ArgsJson(args, out uploads);
            return OpenStream<TItem>(methodName, argsJson, uploads, core.Serializer, cancellationToken);
        }

        public HubStream<TItem> StreamAsync<TItem>(string methodName, CancellationToken cancellationToken = default(CancellationToken))
        {
            return StreamCoreAsync<TItem>(methodName, new object[0], cancellationToken);
        }

        public HubStream<TItem> StreamAsync<TItem>(string methodName, object arg1, CancellationToken cancellationToken = default(CancellationToken))
        {
            return StreamCoreAsync<TItem>(methodName, new[] { arg1 }, cancellationToken);
        }

        public HubStream<TItem> StreamAsync<TItem>(string methodName, object arg1, object arg2, CancellationToken cancellationToken = default(CancellationToken))
        {
            return StreamCoreAsync<TItem>(methodName, new[] { arg1, arg2 }, cancellationToken);
        }

        public HubStream<TItem> StreamAsync<TItem>(string methodName, object arg1, object arg2, object arg3, CancellationToken cancellationToken = default(CancellationToken))
        {
            return StreamCoreAsync<TItem>(methodName, new[] { arg1, arg2, arg3 }, cancellationToken);
        }

        public HubStream<TItem> StreamAsync<TItem>(string methodName, object arg1, object arg2, object arg3, object arg4, CancellationToken cancellationToken = default(CancellationToken))
        {
            return StreamCoreAsync<TItem>(methodName, new[] { arg1, arg2, arg3, arg4 }, cancellationToken);
        }

        public HubStream<TItem> StreamAsync<TItem>(string methodName, object arg1, object arg2, object arg3, object arg4, object arg5, CancellationToken cancellationToken = default(CancellationToken))
        {
            return StreamCoreAsync<TItem>(methodName, new[] { arg1, arg2, arg3, arg4, arg5 }, cancellationToken);
        }

        // ---------------------------------------------------------------- handlers

        /// <summary>Registers a handler that gets the arguments as JSON array text. Dispose the
        /// result to remove it.</summary>
        public IDisposable OnRaw(string methodName, Func<string, Task> handler)
        {
            if (handler == null) throw new ArgumentNullException(nameof(handler));
            return AddHandler(methodName, new HandlerRegistration(methodName, handler));
        }

        public IDisposable OnRaw(string methodName, Action<string> handler)
        {
            if (handler == null) throw new ArgumentNullException(nameof(handler));
            // The cast picks the plain overload: a lambda returning null would bind to the
            // client-result one (Task<string> converts to Task), which allows one per method.
            return OnRaw(methodName, (Func<string, Task>)(args => { handler(args); return null; }));
        }

        /// <summary>Registers a handler for arguments of the given types (Microsoft's On core).</summary>
        public IDisposable On(string methodName, Type[] parameterTypes, Func<object[], Task> handler)
        {
            if (parameterTypes == null) throw new ArgumentNullException(nameof(parameterTypes));
            if (handler == null) throw new ArgumentNullException(nameof(handler));
            return AddHandler(methodName, new HandlerRegistration(methodName, (Type[])parameterTypes.Clone(), core.Serializer, handler));
        }

        public IDisposable On(string methodName, Action handler)
        {
            return On(methodName, new Type[0], a => { handler(); return null; });
        }

        public IDisposable On<T1>(string methodName, Action<T1> handler)
        {
            return On(methodName, new[] { typeof(T1) }, a => { handler((T1)a[0]); return null; });
        }

        public IDisposable On<T1, T2>(string methodName, Action<T1, T2> handler)
        {
            return On(methodName, new[] { typeof(T1), typeof(T2) }, a => { handler((T1)a[0], (T2)a[1]); return null; });
        }

        public IDisposable On<T1, T2, T3>(string methodName, Action<T1, T2, T3> handler)
        {
            return On(methodName, new[] { typeof(T1), typeof(T2), typeof(T3) }, a => { handler((T1)a[0], (T2)a[1], (T3)a[2]); return null; });
        }

        public IDisposable On<T1>(string methodName, Func<T1, Task> handler)
        {
            return On(methodName, new[] { typeof(T1) }, a => handler((T1)a[0]));
        }

        /// <summary>Registers the client-result handler of a method (one per method): it gets the
        /// arguments as JSON array text and returns the result as JSON text; an exception becomes
        /// the error the server sees.</summary>
        public IDisposable OnRaw(string methodName, Func<string, Task<string>> handler)
        {
            if (handler == null) throw new ArgumentNullException(nameof(handler));
            return AddHandler(methodName, new ResultHandlerRegistration(core, methodName, handler));
        }

        /// <summary>Client-result handler core: arguments of the given types, a result of
        /// <paramref name="resultType"/>.</summary>
        public IDisposable On(string methodName, Type[] parameterTypes, Type resultType, Func<object[], Task<object>> handler)
        {
            if (parameterTypes == null) throw new ArgumentNullException(nameof(parameterTypes));
            if (handler == null) throw new ArgumentNullException(nameof(handler));
            var serializer = core.Serializer;   // the closure must not capture `this` (see ConnectionCore)
            return OnRaw(methodName, async json =>
            {
                object result = await handler(ReadArgs(serializer, json, parameterTypes)).ConfigureAwait(false);
                return serializer.Serialize(result, resultType);
            });
        }

        public IDisposable On<TResult>(string methodName, Func<TResult> handler)
        {
            return On(methodName, new Type[0], typeof(TResult), a => Task.FromResult<object>(handler()));
        }

        public IDisposable On<T1, TResult>(string methodName, Func<T1, TResult> handler)
        {
            return On(methodName, new[] { typeof(T1) }, typeof(TResult), a => Task.FromResult<object>(handler((T1)a[0])));
        }

        public IDisposable On<T1, TResult>(string methodName, Func<T1, Task<TResult>> handler)
        {
            return On(methodName, new[] { typeof(T1) }, typeof(TResult), async a => (object)await handler((T1)a[0]).ConfigureAwait(false));
        }

        public IDisposable On<T1, T2, TResult>(string methodName, Func<T1, T2, TResult> handler)
        {
            return On(methodName, new[] { typeof(T1), typeof(T2) }, typeof(TResult), a => Task.FromResult<object>(handler((T1)a[0], (T2)a[1])));
        }

        /// <summary>Removes every handler of a method.</summary>
        public void Remove(string methodName)
        {
            byte[] name = Encode(methodName, nameof(methodName));
            lock (core.Methods)
            {
                ClientMethod method;
                string key = methodName.ToLowerInvariant();
                if (core.Methods.TryGetValue(key, out method))
                {
                    core.Methods.Remove(key);
                    method.Clear();
                }
                SignalRException.Check(NativeMethods.signalr_connection_off(Handle, name));
            }
        }

        // Handlers are kept per method (ClientMethod); the library sees one batch handler and one
        // invocation handler per method, registered with the method's first handler and removed
        // with its last. `registration` is a HandlerRegistration or a ResultHandlerRegistration.
        private IDisposable AddHandler(string methodName, object registration)
        {
            byte[] name = Encode(methodName, nameof(methodName));
            var plain = registration as HandlerRegistration;
            ClientMethod method;
            lock (core.Methods)
            {
                ConnectionHandle h = Handle;
                string key = methodName.ToLowerInvariant();
                bool existing = core.Methods.TryGetValue(key, out method);
                if (!existing) method = new ClientMethod(core, methodName, key);
                if (plain != null) method.Add(plain);
                else if (method.HasResultHandler)
                    throw new SignalRException(ResultCode.InvalidState, "a result handler is already registered for '" + methodName + "'");
                else method.SetResultHandler((ResultHandlerRegistration)registration);
                if (!existing)
                {
                    // Handlers first, so no call that the registrations let through is dropped.
                    ulong batchId = 0, invocationId = 0;
                    Trampolines.Register(ud => NativeMethods.signalr_connection_on_batch(h, name,
                        Trampolines.BatchHandler, ud, Trampolines.FreeUserdata, out batchId), method);
                    try
                    {
                        Trampolines.Register(ud => NativeMethods.signalr_connection_on_invocation(h, name,
                            Trampolines.InvocationHandler, ud, Trampolines.FreeUserdata, out invocationId), method);
                    }
                    catch
                    {
                        NativeMethods.signalr_connection_remove_handler(h, batchId);
                        throw;
                    }
                    method.BatchId = batchId;
                    method.InvocationId = invocationId;
                    core.Methods.Add(key, method);
                }
            }
            return new Subscription(this, method, registration);
        }

        private void RemoveHandler(ClientMethod method, object registration)
        {
            lock (core.Methods)
            {
                if (!method.Remove(registration) || !method.IsEmpty) return;
                // The method's last handler: its registrations go (Remove may have done it already).
                ClientMethod filed;
                if (core.Methods.TryGetValue(method.Key, out filed) && filed == method) core.Methods.Remove(method.Key);
                NativeMethods.signalr_connection_remove_handler(handle, method.BatchId);
                NativeMethods.signalr_connection_remove_handler(handle, method.InvocationId);
            }
        }

        private sealed class Subscription : IDisposable
        {
            private HubConnection connection;
            private readonly ClientMethod method;
            private readonly object registration;

            internal Subscription(HubConnection connection, ClientMethod method, object registration)
            {
                this.connection = connection;
                this.method = method;
                this.registration = registration;
            }

            public void Dispose()
            {
                var c = Interlocked.Exchange(ref connection, null);
                if (c == null || c.handle.IsClosed) return;
                try { c.RemoveHandler(method, registration); }
                catch (ObjectDisposedException) { }
            }
        }

        // ---------------------------------------------------------------- plumbing

        private ConnectionHandle Handle
        {
            get
            {
                if (handle.IsClosed) throw new ObjectDisposedException(nameof(HubConnection));
                return handle;
            }
        }

        private static byte[] Encode(string s, string name)
        {
            if (s == null) throw new ArgumentNullException(name);
            return Utf8.Encode(s);
        }

        private static object[] ReadArgs(IJsonSerializer serializer, string json, Type[] types)
        {
            List<string> parts = Json.SplitArray(json);
            if (parts.Count != types.Length)
                throw new FormatException("expected " + types.Length + " argument(s), got " + parts.Count + ": " + json);
            var values = new object[types.Length];
            for (int i = 0; i < types.Length; i++) values[i] = serializer.Deserialize(parts[i], types[i]);
            return values;
        }

        private string ArgsJson(object[] args, out List<IUploadSource> uploads)
        {
            uploads = null;
            if (args == null) args = new object[0];
            var parts = new List<string>(args.Length);
            foreach (var a in args)
            {
                var upload = a as IUploadSource;
                if (upload != null)
                {
                    if (uploads == null) uploads = new List<IUploadSource>();
                    uploads.Add(upload);
                }
                else parts.Add(core.Serializer.Serialize(a, a == null ? typeof(object) : a.GetType()));
            }
            return Json.JoinArray(parts);
        }

        private Task StartCall(CancellationToken ct, Trampolines.RegisteringCall call, bool abortOnCancel)
        {
            if (ct.IsCancellationRequested) return Task.FromCanceled(ct);
            var completion = new CallCompletion();
            try { Trampolines.Register(call, completion); }
            catch (Exception e) { return Task.FromException(e); }
            if (ct.CanBeCanceled) WatchCancellation(completion, ct, abortOnCancel ? this : null);
            return completion.Source.Task;
        }

        private Task<string> InvokeJson(string methodName, string argsJson, List<IUploadSource> uploads, CancellationToken ct)
        {
            return CallWithUploads(ct, uploads, (ud, count, outs) => uploads == null
                ? NativeMethods.signalr_connection_invoke(Handle, Encode(methodName, nameof(methodName)), Encode(argsJson, nameof(argsJson)),
                    Trampolines.Completion, ud, Trampolines.FreeUserdata)
                : NativeMethods.signalr_connection_invoke_with_uploads(Handle, Encode(methodName, nameof(methodName)), Encode(argsJson, nameof(argsJson)),
                    count, outs, Trampolines.Completion, ud, Trampolines.FreeUserdata));
        }

        private Task SendJson(string methodName, string argsJson, List<IUploadSource> uploads, CancellationToken ct)
        {
            return CallWithUploads(ct, uploads, (ud, count, outs) => uploads == null
                ? NativeMethods.signalr_connection_send(Handle, Encode(methodName, nameof(methodName)), Encode(argsJson, nameof(argsJson)),
                    Trampolines.Completion, ud, Trampolines.FreeUserdata)
                : NativeMethods.signalr_connection_send_with_uploads(Handle, Encode(methodName, nameof(methodName)), Encode(argsJson, nameof(argsJson)),
                    count, outs, Trampolines.Completion, ud, Trampolines.FreeUserdata));
        }

        private delegate uint UploadCall(IntPtr userdata, UIntPtr count, IntPtr[] outUploads);

        private Task<string> CallWithUploads(CancellationToken ct, List<IUploadSource> uploads, UploadCall call)
        {
            if (ct.IsCancellationRequested) return Task.FromCanceled<string>(ct);
            var completion = new CallCompletion();
            IntPtr[] outs = uploads == null ? null : new IntPtr[uploads.Count];
            try
            {
                Trampolines.Register(ud => call(ud, new UIntPtr((uint)(outs == null ? 0 : outs.Length)), outs), completion);
            }
            catch (Exception e)
            {
                if (uploads != null) foreach (var u in uploads) u.Fail(e);
                return Task.FromException<string>(e);
            }
            BindUploads(uploads, outs);
            if (ct.CanBeCanceled) WatchCancellation(completion, ct, null);
            return completion.Source.Task;
        }

        private void BindUploads(List<IUploadSource> uploads, IntPtr[] outs)
        {
            if (uploads == null) return;
            for (int i = 0; i < uploads.Count; i++)
            {
                var handle = new UploadHandle(outs[i]);
                try { uploads[i].Bind(handle, core.Serializer); }
                catch (Exception e)
                {
                    handle.Dispose();
                    core.Logger.Log(LogLevel.Error, "Could not start upload stream " + i, e);
                }
            }
        }

        private HubStream<T> OpenStream<T>(string methodName, string argsJson, List<IUploadSource> uploads, IJsonSerializer serializer, CancellationToken ct)
        {
            var buffer = new StreamBuffer { Token = ct };
            if (ct.IsCancellationRequested)
            {
                buffer.Complete((uint)ResultCode.Canceled, null, null);
                return new HubStream<T>(buffer, new StreamHandle(), serializer, CancellationToken.None);
            }
            IntPtr[] outs = uploads == null ? null : new IntPtr[uploads.Count];
            StreamHandle stream = null;
            try
            {
                Trampolines.Register(ud => uploads == null
                    ? NativeMethods.signalr_connection_stream(Handle, Encode(methodName, nameof(methodName)), Encode(argsJson, nameof(argsJson)),
                        Trampolines.StreamItem, Trampolines.Completion, ud, Trampolines.FreeUserdata, out stream)
                    : NativeMethods.signalr_connection_stream_with_uploads(Handle, Encode(methodName, nameof(methodName)), Encode(argsJson, nameof(argsJson)),
                        new UIntPtr((uint)outs.Length), outs, Trampolines.StreamItem, Trampolines.Completion, ud, Trampolines.FreeUserdata, out stream),
                    buffer);
            }
            catch (Exception e)
            {
                if (uploads != null) foreach (var u in uploads) u.Fail(e);
                throw;
            }
            BindUploads(uploads, outs);
            return new HubStream<T>(buffer, stream, serializer, ct);
        }

        // Canceling stops the waiting (as Microsoft's client: an invocation is not canceled on
        // the server); for StartAsync it also stops the connection, which aborts the start.
        private static void WatchCancellation(CallCompletion completion, CancellationToken ct, HubConnection abort)
        {
            CancellationTokenRegistration reg = ct.Register(() =>
            {
                if (completion.Source.TrySetCanceled(ct) && abort != null && !abort.handle.IsClosed)
                {
                    try { NativeMethods.signalr_connection_stop(abort.handle, null, IntPtr.Zero, null); }
                    catch (ObjectDisposedException) { }
                }
            });
            completion.Source.Task.ContinueWith((t, r) => ((CancellationTokenRegistration)r).Dispose(), reg,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        private static void Subscribe<T>(ref T field, T value) where T : class
        {
            T current = Volatile.Read(ref field);
            while (true)
            {
                var next = (T)(object)Delegate.Combine((Delegate)(object)current, (Delegate)(object)value);
                T seen = Interlocked.CompareExchange(ref field, next, current);
                if (seen == current) return;
                current = seen;
            }
        }

        private static void Unsubscribe<T>(ref T field, T value) where T : class
        {
            T current = Volatile.Read(ref field);
            while (true)
            {
                var next = (T)(object)Delegate.Remove((Delegate)(object)current, (Delegate)(object)value);
                T seen = Interlocked.CompareExchange(ref field, next, current);
                if (seen == current) return;
                current = seen;
            }
        }
    }
}
