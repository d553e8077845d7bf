using System;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native
{
    /// <summary>State shared by a connection and its native callbacks. It holds no reference to
    /// the connection's handle, so an undisposed, unreachable HubConnection can still be finalized
    /// (the handle's finalizer frees the native connection, which releases this).</summary>
    internal sealed class ConnectionCore
    {
        internal readonly IJsonSerializer Serializer;
        internal readonly Logger Logger;
        internal readonly SerialQueue Queue;

        internal Func<Exception, Task> Closed;
        internal Func<Exception, Task> Reconnecting;
        internal Func<string, Task> Reconnected;

        internal ConnectionCore(IJsonSerializer serializer, Logger logger)
        {
            Serializer = serializer;
            Logger = logger;
            Queue = new SerialQueue(logger);
        }

        internal void OnClosed(uint result, string error)
        {
            Exception e = result == 0 ? null : SignalRException.FromResult(result, error);
            Queue.Post(() => Raise(Volatile.Read(ref Closed), e, "Closed"));
        }

        internal void OnReconnecting(uint result, string error)
        {
            Exception e = SignalRException.FromResult(result == 0 ? (uint)ResultCode.ConnectionClosed : result, error);
            Queue.Post(() => Raise(Volatile.Read(ref Reconnecting), e, "Reconnecting"));
        }

        internal void OnReconnected(string connectionId)
        {
            Queue.Post(() => Raise(Volatile.Read(ref Reconnected), connectionId, "Reconnected"));
        }

        // Every subscriber runs, even when an earlier one throws; each failure is logged.
        private async Task Raise<T>(Func<T, Task> handlers, T arg, string name)
        {
            if (handlers == null) return;
            foreach (Func<T, Task> h in handlers.GetInvocationList())
            {
                try
                {
                    Task t = h(arg);
                    if (t != null) await t.ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    Logger.Log(LogLevel.Error, "A " + name + " event handler threw an exception", e);
                }
            }
        }
    }

    /// <summary>One On(...) registration: the library's arguments (a JSON array) go through the
    /// connection's queue to the user's handler.</summary>
    internal sealed class HandlerRegistration
    {
        private readonly ConnectionCore core;
        private readonly string method;
        private readonly Func<string, Task> handler;

        internal HandlerRegistration(ConnectionCore core, string method, Func<string, Task> handler)
        {
            this.core = core;
            this.method = method;
            this.handler = handler;
        }

        internal void Dispatch(string argsJson)
        {
            core.Queue.Post(() => Run(argsJson));
        }

        private Task Run(string argsJson)
        {
            try { return handler(argsJson); }
            catch (Exception e)
            {
                core.Logger.Log(LogLevel.Error, "The handler for '" + method + "' threw an exception", e);
                return null;
            }
        }
    }

    /// <summary>One client-result handler: its value (or its exception's message) answers the
    /// server through the responder, which is consumed exactly once.</summary>
    internal sealed class ResultHandlerRegistration
    {
        private readonly ConnectionCore core;
        private readonly string method;
        private readonly Func<string, Task<string>> handler;

        internal ResultHandlerRegistration(ConnectionCore core, string method, Func<string, Task<string>> handler)
        {
            this.core = core;
            this.method = method;
            this.handler = handler;
        }

        internal void Dispatch(string argsJson, ResponderHandle responder)
        {
            core.Queue.Post(() => Run(argsJson, responder));
        }

        private async Task Run(string argsJson, ResponderHandle responder)
        {
            string result = null;
            Exception failure = null;
            try { result = await handler(argsJson).ConfigureAwait(false); }
            catch (Exception e) { failure = e; }

            IntPtr r = responder.Consume();
            if (r == IntPtr.Zero) return;
            uint rc;
            if (failure == null)
            {
                rc = NativeMethods.signalr_responder_complete(r, Utf8.Encode(result ?? "null"));
            }
            else
            {
                core.Logger.Log(LogLevel.Error, "The client-result handler for '" + method + "' threw an exception", failure);
                rc = NativeMethods.signalr_responder_complete_with_error(r, Utf8.Encode(failure.Message));
            }
            if (rc != 0)
                core.Logger.Log(LogLevel.Warning, "Could not answer the server's '" + method + "' invocation: " + SignalRException.Last(rc).Message);
        }
    }

    /// <summary>Calls the user's AccessTokenProvider and completes the library's request once.</summary>
    internal sealed class AccessTokenRegistration
    {
        private readonly Func<Task<string>> provider;
        private readonly Logger logger;

        internal AccessTokenRegistration(Func<Task<string>> provider, Logger logger)
        {
            this.provider = provider;
            this.logger = logger;
        }

        internal void Provide(IntPtr request)
        {
            Task<string> token;
            try { token = provider() ?? Task.FromResult<string>(null); }
            catch (Exception e) { token = Task.FromException<string>(e); }
            token.ContinueWith((t, r) => Complete((IntPtr)r, t), request, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        private void Complete(IntPtr request, Task<string> t)
        {
            uint rc;
            if (t.Status == TaskStatus.RanToCompletion)
            {
                rc = NativeMethods.signalr_token_request_complete(request, Utf8.Encode(t.Result), null);
            }
            else
            {
                Exception e = t.IsFaulted ? t.Exception.GetBaseException() : new OperationCanceledException();
                logger.Log(LogLevel.Error, "The AccessTokenProvider failed", e);
                rc = NativeMethods.signalr_token_request_complete(request, null, Utf8.Encode(e.Message));
            }
            if (rc != 0) logger.Log(LogLevel.Warning, "Could not complete the access-token request: " + SignalRException.Last(rc).Message);
        }
    }

    /// <summary>Asks the user's IRetryPolicy for the next reconnect delay.</summary>
    internal sealed class RetryPolicyRegistration
    {
        private readonly IRetryPolicy policy;
        private readonly Logger logger;

        internal RetryPolicyRegistration(IRetryPolicy policy, Logger logger)
        {
            this.policy = policy;
            this.logger = logger;
        }

        internal long NextDelayMs(ulong previousRetryCount, ulong elapsedMs, string reason)
        {
            try
            {
                var context = new RetryContext
                {
                    PreviousRetryCount = (long)previousRetryCount,
                    ElapsedTime = TimeSpan.FromMilliseconds(elapsedMs),
                    RetryReason = reason == null ? null : new SignalRException(ResultCode.ConnectionClosed, reason),
                };
                TimeSpan? delay = policy.NextRetryDelay(context);
                if (delay == null) return -1;
                return (long)Math.Max(0, delay.Value.TotalMilliseconds);
            }
            catch (Exception e)
            {
                logger.Log(LogLevel.Error, "The IRetryPolicy threw an exception; reconnecting stops", e);
                return -1;
            }
        }
    }
}
