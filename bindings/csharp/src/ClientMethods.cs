using System;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native
{
    /// <summary>The handlers of one client method and its two native registrations: a batch
    /// handler (signalr_connection_on_batch), which receives the calls that expect no result,
    /// many per callback, and an invocation handler (signalr_connection_on_invocation), which
    /// receives the calls with an invocation id and answers them. The handler list lives here,
    /// not in the library, so a method has one batch registration however many On(...) calls it
    /// has (with several, the library would hand over one call per batch). The list is replaced,
    /// never changed (copy-on-write under the lock of <see cref="ConnectionCore.Methods"/>); the
    /// library's thread only reads it. Native code holds this object as userdata (twice), never
    /// the connection.</summary>
    internal sealed class ClientMethod
    {
        private static readonly HandlerRegistration[] NoHandlers = new HandlerRegistration[0];

        private readonly ConnectionCore core;
        private readonly string name;
        private HandlerRegistration[] handlers = NoHandlers;
        private ResultHandlerRegistration result;

        /// <summary>The lower-cased name it is filed under in <see cref="ConnectionCore.Methods"/>.</summary>
        internal readonly string Key;

        /// <summary>The library's ids of the batch and invocation registrations.</summary>
        internal ulong BatchId, InvocationId;

        internal ClientMethod(ConnectionCore core, string name, string key)
        {
            this.core = core;
            this.name = name;
            Key = key;
        }

        // ---- under the lock of core.Methods

        internal bool IsEmpty { get { return handlers.Length == 0 && result == null; } }

        internal bool HasResultHandler { get { return result != null; } }

        internal void Add(HandlerRegistration handler)
        {
            var next = new HandlerRegistration[handlers.Length + 1];
            Array.Copy(handlers, next, handlers.Length);
            next[handlers.Length] = handler;
            Volatile.Write(ref handlers, next);
        }

        internal void SetResultHandler(ResultHandlerRegistration handler)
        {
            Volatile.Write(ref result, handler);
        }

        /// <summary>Takes one registration out; false when it is not (any more) here.</summary>
        internal bool Remove(object registration)
        {
            if (registration == result)
            {
                Volatile.Write(ref result, null);
                return true;
            }
            int i = Array.IndexOf(handlers, registration);
            if (i < 0) return false;
            var next = handlers.Length == 1 ? NoHandlers : new HandlerRegistration[handlers.Length - 1];
            Array.Copy(handlers, 0, next, 0, i);
            Array.Copy(handlers, i + 1, next, i, handlers.Length - i - 1);
            Volatile.Write(ref handlers, next);
            return true;
        }

        internal void Clear()
        {
            Volatile.Write(ref handlers, NoHandlers);
            Volatile.Write(ref result, null);
        }

        // ---- on the library's callback thread: take the handlers registered now (as the
        // library does for its own registrations) and hand the calls to the connection's queue.

        internal void OnBatch(IntPtr callsJson, UIntPtr callsLen, UIntPtr count)
        {
            HandlerRegistration[] hs = Volatile.Read(ref handlers);
            ResultHandlerRegistration r = Volatile.Read(ref result);
            if (hs.Length == 0 && r == null) return;   // removed meanwhile
            byte[] json = Utf8.Copy(callsJson, callsLen);   // kept as UTF-8: see CallBatch
            if (json == null) return;
            ulong n = count.ToUInt64();
            core.Queue.Post(new CallRun(core.Logger, name, json, n > int.MaxValue ? int.MaxValue : (int)n, hs, r, null).Start);
        }

        internal void OnInvocation(byte[] argsJson, ResponderHandle responder)
        {
            HandlerRegistration[] hs = Volatile.Read(ref handlers);
            ResultHandlerRegistration r = Volatile.Read(ref result);
            if (r == null || argsJson == null)
            {
                // No result is coming: freeing the responder answers "Client didn't provide a
                // result." now, as the library does for a method without a result handler.
                responder.Dispose();
                responder = null;
                r = null;
            }
            if ((hs.Length == 0 && r == null) || argsJson == null) return;
            core.Queue.Post(new CallRun(core.Logger, name, argsJson, -1, hs, r, responder).Start);
        }
    }

    /// <summary>Runs the handlers for the calls of one batch (or of one invocation) as one item of
    /// the connection's queue: for each call in order, every handler in registration order, then
    /// the client-result handler. The JSON is located once for the whole batch. A handler's
    /// exception or faulted task is logged and everything after it still runs; a task still
    /// running is awaited (on the thread pool) before the next handler, as the queue does between
    /// its items.</summary>
    internal sealed class CallRun
    {
        private static readonly Action<Task, object> Resume = (t, s) => ((CallRun)s).Resumed(t);

        private readonly Logger logger;
        private readonly string method;
        private readonly byte[] json;       // UTF-8
        private readonly int expected;      // calls in the batch; -1: one invocation's arguments
        private readonly HandlerRegistration[] handlers;
        private readonly ResultHandlerRegistration result;
        private readonly ResponderHandle responder;

        private CallBatch calls;
        private int call, next;             // what runs next: step `next` of call `call`
        private Task pending;
        private string pendingMethod;
        private TaskCompletionSource<bool> done;

        internal CallRun(Logger logger, string method, byte[] json, int expected,
            HandlerRegistration[] handlers, ResultHandlerRegistration result, ResponderHandle responder)
        {
            this.logger = logger;
            this.method = method;
            this.json = json;
            this.expected = expected;
            this.handlers = handlers;
            this.result = result;
            this.responder = responder;
        }

        /// <summary>The queue item: null when everything ran synchronously, else a task that
        /// ends when the last handler has (it never faults).</summary>
        internal Task Start()
        {
            try { calls = expected < 0 ? CallBatch.Single(json) : CallBatch.Parse(json, expected); }
            catch (FormatException e)
            {
                logger.Log(LogLevel.Error, "Could not read the calls of '" + method + "'", e);
                return null;
            }
            if (!Step()) return null;
            done = new TaskCompletionSource<bool>();
            Wait();
            return done.Task;
        }

        // Runs handlers until one returns a task still running (true: it is in `pending`) or
        // every call went through all of them (false).
        private bool Step()
        {
            HandlerRegistration[] hs = handlers;
            int steps = hs.Length + (result != null ? 1 : 0);
            int count = calls.Count;
            for (; call < count; call++, next = 0)
            {
                while (next < steps)
                {
                    int k = next++;
                    Task t;
                    string name;
                    if (k < hs.Length)
                    {
                        name = hs[k].Method;
                        try { t = hs[k].Invoke(calls, call); }
                        catch (Exception e)
                        {
                            Failed(name, e);
                            continue;
                        }
                    }
                    else
                    {
                        name = method;
                        t = result.Run(calls.CallText(call), responder);
                    }
                    if (t == null) continue;
                    if (!t.IsCompleted)
                    {
                        pending = t;
                        pendingMethod = name;
                        return true;
                    }
                    if (t.IsFaulted) Failed(name, t.Exception.GetBaseException());
                }
            }
            return false;
        }

        private void Wait()
        {
            pending.ContinueWith(Resume, this, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }

        private void Resumed(Task t)
        {
            try
            {
                if (t.IsFaulted) Failed(pendingMethod, t.Exception.GetBaseException());
                pending = null;
                if (Step())
                {
                    Wait();
                    return;
                }
            }
            catch (Exception e)
            {
                logger.Log(LogLevel.Error, "A handler threw an exception", e);
            }
            done.TrySetResult(true);
        }

        private void Failed(string name, Exception e)
        {
            logger.Log(LogLevel.Error, "The handler for '" + name + "' threw an exception", e);
        }
    }
}
