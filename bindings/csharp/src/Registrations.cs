using System;
using System.Collections.Generic;
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

        /// <summary>The client methods with handlers, by lower-cased name (the library matches
        /// names case-insensitively). Also the lock for registering and removing handlers.</summary>
        internal readonly Dictionary<string, ClientMethod> Methods = new Dictionary<string, ClientMethod>();

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

    /// <summary>One On(...)/OnRaw(...) handler of a client method: raw (it gets a call's
    /// arguments as JSON array text) or typed (it gets them read as its parameter types). Its
    /// <see cref="ClientMethod"/> runs it for each call.</summary>
    internal sealed class HandlerRegistration
    {
        internal readonly string Method;
        private readonly Func<string, Task> raw;
        private readonly Type[] types;
        private readonly IJsonSerializer serializer;
        private readonly Func<object[], Task> typed;

        internal HandlerRegistration(string method, Func<string, Task> raw)
        {
            Method = method;
            this.raw = raw;
        }

        internal HandlerRegistration(string method, Type[] types, IJsonSerializer serializer, Func<object[], Task> typed)
        {
            Method = method;
            this.types = types;
            this.serializer = serializer;
            this.typed = typed;
        }

        /// <summary>Runs the handler for call <paramref name="call"/> of <paramref name="calls"/>;
        /// throws what the handler throws, and FormatException for arguments that do not fit.</summary>
        internal Task Invoke(CallBatch calls, int call)
        {
            return raw != null ? raw(calls.CallText(call)) : typed(calls.ReadArgs(call, serializer, types));
        }
    }

    /// <summary>The client-result handler of a method: its value (or its exception's message)
    /// answers the server through the responder, which is consumed exactly once. Calls that
    /// expect no result run it too, without a responder (its value goes nowhere).</summary>
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

        /// <summary>Never faults: the handler's failure is logged and, with a responder, sent.</summary>
        internal async Task Run(string argsJson, ResponderHandle responder)
        {
            string result = null;
            Exception failure = null;
            try { result = await handler(argsJson).ConfigureAwait(false); }
            catch (Exception e) { failure = e; }

            if (failure != null)
                core.Logger.Log(LogLevel.Error, "The client-result handler for '" + method + "' threw an exception", failure);
            IntPtr r = responder == null ? IntPtr.Zero : responder.Consume();
            if (r == IntPtr.Zero) return;
            uint rc = failure == null
                ? NativeMethods.signalr_responder_complete(r, Utf8.Encode(result ?? "null"))
                : NativeMethods.signalr_responder_complete_with_error(r, Utf8.Encode(failure.Message));
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
