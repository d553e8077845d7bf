using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native
{
    /// <summary>Buffers a server-to-client stream: the library appends items (in order) and then
    /// the outcome; the reader takes them at its own pace. One lock per stream.</summary>
    internal sealed class StreamBuffer : ICompletion, IStreamItems
    {
        private readonly object gate = new object();
        private readonly Queue<string> items = new Queue<string>();
        private TaskCompletionSource<bool> waiter;
        private bool done;
        private Exception failure;
        internal CancellationToken Token;

        public void OnItem(string json)
        {
            TaskCompletionSource<bool> w;
            lock (gate)
            {
                items.Enqueue(json);
                w = waiter;
                waiter = null;
            }
            if (w != null) w.TrySetResult(true);
        }

        public void Complete(uint result, string error, string json)
        {
            TaskCompletionSource<bool> w;
            lock (gate)
            {
                done = true;
                if (result == (uint)ResultCode.Canceled)
                    failure = Token.IsCancellationRequested ? new OperationCanceledException(Token) : new OperationCanceledException(error ?? "The stream was canceled.");
                else if (result != 0)
                    failure = SignalRException.FromResult(result, error);
                w = waiter;
                waiter = null;
            }
            if (w != null) w.TrySetResult(true);
        }

        /// <summary>Takes the next item; false with <paramref name="wait"/> set when none is there yet.</summary>
        internal bool TryTake(out string json, out Task wait)
        {
            lock (gate)
            {
                if (items.Count > 0) { json = items.Dequeue(); wait = null; return true; }
                json = null;
                if (done)
                {
                    wait = null;
                    if (failure != null) throw Rethrowable(failure);
                    return false;
                }
                if (waiter == null) waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = waiter.Task;
                return false;
            }
        }

        // A fresh exception each time: the stored one may be thrown to several readers.
        private static Exception Rethrowable(Exception e)
        {
            var oce = e as OperationCanceledException;
            if (oce != null) return new OperationCanceledException(oce.Message, oce, oce.CancellationToken);
            var se = (SignalRException)e;
            return se is HubException ? new HubException(se.Message) : new SignalRException(se.Code, se.Message);
        }
    }

    /// <summary>A stream from the server, read item by item in order:
    /// <c>while (await stream.MoveNextAsync()) Use(stream.Current);</c> (in C# 8 and later also
    /// <c>await foreach</c>). Ends normally, with the server's error as an exception, or with
    /// OperationCanceledException when the CancellationToken given to StreamAsync fires. Dispose
    /// cancels a stream that is still running.</summary>
    public sealed class HubStream<T> : IDisposable
    {
        private readonly StreamBuffer buffer;
        private readonly StreamHandle handle;
        private readonly IJsonSerializer serializer;
        private CancellationTokenRegistration registration, enumeratorRegistration;

        internal HubStream(StreamBuffer buffer, StreamHandle handle, IJsonSerializer serializer, CancellationToken token)
        {
            this.buffer = buffer;
            this.handle = handle;
            this.serializer = serializer;
            if (token.CanBeCanceled)
                registration = token.Register(s => ((HubStream<T>)s).Cancel(), this);
        }

        /// <summary>The item the last successful MoveNextAsync produced.</summary>
        public T Current { get; private set; }

        /// <summary>For <c>await foreach</c>: the stream itself; a cancelable token cancels the
        /// stream as the one given to StreamAsync does.</summary>
        public HubStream<T> GetAsyncEnumerator(CancellationToken cancellationToken = default(CancellationToken))
        {
            if (cancellationToken.CanBeCanceled)
                enumeratorRegistration = cancellationToken.Register(s => ((HubStream<T>)s).Cancel(), this);
            return this;
        }

        /// <summary>Waits for the next item: true with <see cref="Current"/> set, false at the end.</summary>
        public async Task<bool> MoveNextAsync()
        {
            while (true)
            {
                string json;
                Task wait;
                bool got;
                try { got = buffer.TryTake(out json, out wait); }
                catch (Exception) { Dispose(); throw; }
                if (got)
                {
                    Current = typeof(T) == typeof(string) && serializer == null ? (T)(object)json : (T)serializer.Deserialize(json, typeof(T));
                    return true;
                }
                if (wait == null) { Dispose(); return false; }
                await wait.ConfigureAwait(false);
            }
        }

        /// <summary>Reads the rest of the stream into a list.</summary>
        public async Task<List<T>> ToListAsync()
        {
            var list = new List<T>();
            while (await MoveNextAsync().ConfigureAwait(false)) list.Add(Current);
            return list;
        }

        /// <summary>Asks the server to stop the stream; the reader then gets OperationCanceledException.</summary>
        public void Cancel()
        {
            if (handle.IsClosed) return;
            try { NativeMethods.signalr_stream_cancel(handle); }
            catch (ObjectDisposedException) { }
        }

        /// <summary>Releases the native stream (canceling it if still running); done
        /// automatically when the stream ends.</summary>
        public void Dispose()
        {
            registration.Dispose();
            enumeratorRegistration.Dispose();
            handle.Dispose();
        }
    }

    /// <summary>Internal face of <see cref="ClientStream{T}"/>, bound to a native upload when the
    /// call that carries it starts.</summary>
    internal interface IUploadSource
    {
        void Bind(UploadHandle upload, IJsonSerializer serializer);
        void Fail(Exception e);
    }

    /// <summary>A client-to-server (upload) stream. Pass it as an argument of InvokeAsync,
    /// SendAsync or StreamAsync (it becomes one of the call's stream ids, after the other
    /// arguments), then write items and Complete it. Items written before the call starts are
    /// buffered and sent when it does.</summary>
    public sealed class ClientStream<T> : IUploadSource, IDisposable
    {
        private readonly object gate = new object();
        private List<T> pending = new List<T>();
        private IJsonSerializer serializer = DefaultJsonSerializer.Instance;
        private UploadHandle upload;
        private bool completed;
        private string completionError;
        private Exception bindFailure;

        /// <summary>Sends one item (serialized with the connection's serializer).</summary>
        public Task WriteAsync(T item, CancellationToken cancellationToken = default(CancellationToken))
        {
            if (cancellationToken.IsCancellationRequested) return Task.FromCanceled(cancellationToken);
            try
            {
                lock (gate)
                {
                    if (bindFailure != null) throw new InvalidOperationException("The call carrying this stream failed.", bindFailure);
                    if (completed) throw new InvalidOperationException("The stream is already completed.");
                    if (upload == null) pending.Add(item);
                    else Write(item);
                }
                return Task.CompletedTask;
            }
            catch (Exception e) { return Task.FromException(e); }
        }

        /// <summary>Ends the stream; with an error the server sees the stream fail with its message.</summary>
        public void Complete(Exception error = null)
        {
            lock (gate)
            {
                if (completed) return;
                completed = true;
                completionError = error == null ? null : (error.Message ?? error.GetType().Name);
                if (upload != null) Finish();
            }
        }

        public void Dispose()
        {
            lock (gate)
            {
                completed = true;
                if (upload != null) upload.Dispose();
            }
        }

        void IUploadSource.Bind(UploadHandle handle, IJsonSerializer s)
        {
            lock (gate)
            {
                if (upload != null) throw new InvalidOperationException("A ClientStream can be used by one call only.");
                upload = handle;
                serializer = s;
                foreach (var item in pending) Write(item);
                pending = null;
                if (completed) Finish();
            }
        }

        void IUploadSource.Fail(Exception e)
        {
            lock (gate) { if (upload == null) bindFailure = e; }
        }

        // Under gate, bound.
        private void Write(T item)
        {
            string json = serializer.Serialize(item, typeof(T));
            SignalRException.Check(NativeMethods.signalr_upload_write(upload, Utf8.Encode(json)));
        }

        // Under gate, bound and completed: tell the library, then release the native upload.
        private void Finish()
        {
            uint rc = completionError == null
                ? NativeMethods.signalr_upload_complete(upload)
                : NativeMethods.signalr_upload_complete_with_error(upload, Utf8.Encode(completionError));
            var e = rc == 0 ? null : SignalRException.Last(rc);
            upload.Dispose();
            if (e != null) throw e;
        }
    }
}
