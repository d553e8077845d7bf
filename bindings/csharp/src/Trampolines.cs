using System;
using System.Runtime.InteropServices;
using System.Threading.Tasks;

namespace SignalR.Native
{
    /// <summary>Marks a static method the native library calls back; Mono AOT and Unity's IL2CPP
    /// need it (they match the attribute by name, so a local definition is enough).</summary>
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type delegateType) { DelegateType = delegateType; }
        public Type DelegateType { get; }
    }

    /// <summary>What a completion callback reports (invoke/start/stop/send/stream end).</summary>
    internal interface ICompletion
    {
        void Complete(uint result, string error, string json);
    }

    /// <summary>Where stream items go (called in order, before the stream's completion).</summary>
    internal interface IStreamItems
    {
        void OnItem(string json);
    }

    /// <summary>The static entry points the native library calls. Each gets the per-registration
    /// state back from its userdata (a GCHandle made by <see cref="Pin"/>), copies the borrowed
    /// strings and hands off; none runs user code except log sinks, retry policies and the
    /// synchronous part of an access-token provider (until its first await), which the C API
    /// calls synchronously. The delegates live in static readonly fields, so they are never
    /// collected while native code holds their function pointers.</summary>
    internal static class Trampolines
    {
        internal static readonly NativeMethods.UserdataFree FreeUserdata = OnFreeUserdata;
        internal static readonly NativeMethods.CompletionCallback Completion = OnCompletion;
        internal static readonly NativeMethods.StreamItemCallback StreamItem = OnStreamItem;
        internal static readonly NativeMethods.BatchHandlerCallback BatchHandler = OnBatchHandler;
        internal static readonly NativeMethods.InvocationHandlerCallback InvocationHandler = OnInvocationHandler;
        internal static readonly NativeMethods.ErrorEventCallback Closed = OnClosed;
        internal static readonly NativeMethods.ErrorEventCallback Reconnecting = OnReconnecting;
        internal static readonly NativeMethods.ReconnectedCallback Reconnected = OnReconnected;
        internal static readonly NativeMethods.AccessTokenCallback AccessToken = OnAccessToken;
        internal static readonly NativeMethods.ReconnectPolicyCallback ReconnectPolicy = OnReconnectPolicy;

        /// <summary>Roots <paramref name="state"/> for native code; released only by
        /// <see cref="FreeUserdata"/>, which the library calls exactly once per registration
        /// (also when the registering call fails), after the last callback using it.</summary>
        internal static IntPtr Pin(object state)
        {
            return GCHandle.ToIntPtr(GCHandle.Alloc(state));
        }

        internal delegate uint RegisteringCall(IntPtr userdata);

        /// <summary>Runs a registering C call with <paramref name="state"/> pinned as its
        /// userdata and throws on failure. Once the C function has run, the library releases the
        /// pin through FreeUserdata (also when it failed); an exception thrown before it ran
        /// (argument encoding, a disposed SafeHandle) releases it here.</summary>
        internal static void Register(RegisteringCall call, object state)
        {
            IntPtr ud = Pin(state);
            uint rc;
            try { rc = call(ud); }
            catch
            {
                GCHandle.FromIntPtr(ud).Free();
                throw;
            }
            SignalRException.Check(rc);
        }

        private static T Target<T>(IntPtr userdata) where T : class
        {
            Attached();
            return (T)GCHandle.FromIntPtr(userdata).Target;
        }

        [ThreadStatic] private static bool attached;

        /// <summary>A library thread that calls into managed code is attached to the runtime as a
        /// foreground thread, and Mono waits for every foreground thread at exit — the library's
        /// threads never end, so the process would hang. Mark them background on first entry.</summary>
        internal static void Attached()
        {
            if (attached) return;
            attached = true;
            System.Threading.Thread.CurrentThread.IsBackground = true;
        }

        /// <summary>An exception escaped the catch-all of a trampoline (e.g. the logger itself
        /// failed): unwinding into native code is undefined, so stop the process loudly.</summary>
        internal static void Fatal(Exception e)
        {
            Environment.FailFast("SignalR.Native: exception in a native callback: " + e);
        }

        [MonoPInvokeCallback(typeof(NativeMethods.UserdataFree))]
        private static void OnFreeUserdata(IntPtr userdata)
        {
            try { Attached(); GCHandle.FromIntPtr(userdata).Free(); }
            catch (Exception e) { Fatal(e); }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.CompletionCallback))]
        private static void OnCompletion(IntPtr userdata, uint result, IntPtr error, UIntPtr errorLen, IntPtr json, UIntPtr jsonLen)
        {
            try
            {
                Target<ICompletion>(userdata).Complete(result, Utf8.Decode(error, errorLen), Utf8.Decode(json, jsonLen));
            }
            catch (Exception e) { Fatal(e); }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.StreamItemCallback))]
        private static void OnStreamItem(IntPtr userdata, IntPtr json, UIntPtr jsonLen)
        {
            try { Target<IStreamItems>(userdata).OnItem(Utf8.Decode(json, jsonLen)); }
            catch (Exception e) { Fatal(e); }
        }

        // The calls of a client method that expect no result, many per callback: the whole
        // batch is copied once and goes to the connection's queue as one item.
        [MonoPInvokeCallback(typeof(NativeMethods.BatchHandlerCallback))]
        private static void OnBatchHandler(IntPtr userdata, IntPtr method, UIntPtr methodLen, IntPtr calls, UIntPtr callsLen, UIntPtr count)
        {
            try { Target<ClientMethod>(userdata).OnBatch(calls, callsLen, count); }
            catch (Exception e) { Fatal(e); }
        }

        // A call of a client method with an invocation id (client results).
        [MonoPInvokeCallback(typeof(NativeMethods.InvocationHandlerCallback))]
        private static void OnInvocationHandler(IntPtr userdata, IntPtr method, UIntPtr methodLen, IntPtr args, UIntPtr argsLen, IntPtr responder)
        {
            try
            {
                // Own the responder first, so it is answered (or freed) whatever happens next.
                var owned = new ResponderHandle(responder);
                Target<ClientMethod>(userdata).OnInvocation(Utf8.Copy(args, argsLen), owned);
            }
            catch (Exception e) { Fatal(e); }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.ErrorEventCallback))]
        private static void OnClosed(IntPtr userdata, uint result, IntPtr error, UIntPtr errorLen)
        {
            try { Target<ConnectionCore>(userdata).OnClosed(result, Utf8.Decode(error, errorLen)); }
            catch (Exception e) { Fatal(e); }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.ErrorEventCallback))]
        private static void OnReconnecting(IntPtr userdata, uint result, IntPtr error, UIntPtr errorLen)
        {
            try { Target<ConnectionCore>(userdata).OnReconnecting(result, Utf8.Decode(error, errorLen)); }
            catch (Exception e) { Fatal(e); }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.ReconnectedCallback))]
        private static void OnReconnected(IntPtr userdata, IntPtr connectionId, UIntPtr len)
        {
            try { Target<ConnectionCore>(userdata).OnReconnected(Utf8.Decode(connectionId, len)); }
            catch (Exception e) { Fatal(e); }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.AccessTokenCallback))]
        private static void OnAccessToken(IntPtr userdata, IntPtr request)
        {
            try { Target<AccessTokenRegistration>(userdata).Provide(request); }
            catch (Exception e) { Fatal(e); }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.ReconnectPolicyCallback))]
        private static long OnReconnectPolicy(IntPtr userdata, ulong previousRetryCount, ulong elapsedMs, IntPtr reason, UIntPtr reasonLen)
        {
            try
            {
                return Target<RetryPolicyRegistration>(userdata).NextDelayMs(previousRetryCount, elapsedMs, Utf8.Decode(reason, reasonLen));
            }
            catch (Exception e) { Fatal(e); return -1; }
        }
    }

    /// <summary>Fires a task source once; continuations run on the thread pool, never inline on
    /// the library thread that reported the outcome.</summary>
    internal sealed class CallCompletion : ICompletion
    {
        internal readonly TaskCompletionSource<string> Source =
            new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Complete(uint result, string error, string json)
        {
            if (result == 0) Source.TrySetResult(json);
            else if (result == (uint)ResultCode.Canceled) Source.TrySetCanceled();
            else Source.TrySetException(SignalRException.FromResult(result, error));
        }
    }
}
