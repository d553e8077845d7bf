using System;
using System.Threading;

namespace SignalR.Native
{
    /// <summary>Log levels as in Microsoft.Extensions.Logging (same values as signalr_log_level).</summary>
    public enum LogLevel : uint
    {
        Trace = 0,
        Debug = 1,
        Information = 2,
        Warning = 3,
        Error = 4,
        Critical = 5,
        None = 6,
    }

    /// <summary>Receives one log record. Called on any thread, possibly concurrently; keep it quick.</summary>
    public delegate void LogSink(LogLevel level, string category, string message);

    /// <summary>Where a connection's log records go: the wrapper's own records (e.g. a handler that
    /// threw) and the native library's records at or above <see cref="MinLevel"/>.</summary>
    internal sealed class Logger
    {
        internal static readonly Logger Default = new Logger(null, LogLevel.Warning);

        internal readonly LogSink Sink;
        internal readonly LogLevel MinLevel;

        internal Logger(LogSink sink, LogLevel minLevel) { Sink = sink; MinLevel = minLevel; }

        internal void Log(LogLevel level, string message, Exception error = null)
        {
            if (level < MinLevel || level == LogLevel.None) return;
            if (error != null) message = message + ": " + error;
            try
            {
                if (Sink != null) Sink(level, "SignalR.Native", message);
                else if (level >= LogLevel.Error) System.Diagnostics.Trace.TraceError("SignalR.Native: " + message);
                else System.Diagnostics.Trace.TraceWarning("SignalR.Native: " + message);
            }
            catch (Exception)
            {
                // A failing log sink must not take the caller (often a library callback) down.
            }
        }
    }

    /// <summary>The library's log callback is process-wide: one native registration fans the
    /// records out to every connection that configured a sink (copy-on-write subscriber list).</summary>
    internal static class NativeLog
    {
        private static readonly object Gate = new object();
        private static Logger[] subscribers = new Logger[0];
        private static bool installed;

        private static bool exiting;

        private static readonly NativeMethods.LogCallback Callback = OnLog;

        // The library's log thread runs managed code (attaching it to Mono), and Mono waits at
        // exit for attached threads: remove the callback at exit, which ends that thread.
        static NativeLog()
        {
            AppDomain.CurrentDomain.ProcessExit += (sender, e) => RemoveAtExit();
        }

        private static void RemoveAtExit()
        {
            lock (Gate)
            {
                exiting = true;
                if (installed) NativeMethods.signalr_log_set_callback(null, IntPtr.Zero, null, (uint)LogLevel.None);
                installed = false;
            }
        }

        internal static void Subscribe(Logger logger)
        {
            if (logger.Sink == null) return;
            lock (Gate)
            {
                var next = new Logger[subscribers.Length + 1];
                Array.Copy(subscribers, next, subscribers.Length);
                next[subscribers.Length] = logger;
                Volatile.Write(ref subscribers, next);
                Apply();
            }
        }

        internal static void Unsubscribe(Logger logger)
        {
            if (logger.Sink == null) return;
            lock (Gate)
            {
                int i = Array.IndexOf(subscribers, logger);
                if (i < 0) return;
                var next = new Logger[subscribers.Length - 1];
                Array.Copy(subscribers, 0, next, 0, i);
                Array.Copy(subscribers, i + 1, next, i, subscribers.Length - i - 1);
                Volatile.Write(ref subscribers, next);
                Apply();
            }
        }

        // Under Gate: the callback is installed while there are subscribers, with the native
        // filter at the lowest level any of them wants, and removed with the last one (and at
        // process exit) — removing it ends the library's log thread, the only thread that
        // enters managed code for logging (Mono waits at exit for attached threads).
        private static void Apply()
        {
            uint min = (uint)LogLevel.None;
            foreach (var s in subscribers) min = Math.Min(min, (uint)s.MinLevel);
            if (min == (uint)LogLevel.None || exiting)
            {
                if (installed) SignalRException.Check(NativeMethods.signalr_log_set_callback(null, IntPtr.Zero, null, min));
                installed = false;
            }
            else if (!installed)
            {
                SignalRException.Check(NativeMethods.signalr_log_set_callback(Callback, IntPtr.Zero, null, min));
                installed = true;
            }
            else
            {
                SignalRException.Check(NativeMethods.signalr_log_set_level(min));
            }
        }

        [MonoPInvokeCallback(typeof(NativeMethods.LogCallback))]
        private static void OnLog(IntPtr userdata, uint level, IntPtr target, UIntPtr targetLen, IntPtr message, UIntPtr messageLen)
        {
            try
            {
                Trampolines.Attached();
                var subs = Volatile.Read(ref subscribers);
                if (subs.Length == 0) return;
                string category = Utf8.Decode(target, targetLen);
                string text = Utf8.Decode(message, messageLen);
                foreach (var s in subs)
                {
                    if ((LogLevel)level < s.MinLevel) continue;
                    try { s.Sink((LogLevel)level, category, text); }
                    catch (Exception) { /* a throwing sink loses its record, nothing more */ }
                }
            }
            catch (Exception e)
            {
                Trampolines.Fatal(e);
            }
        }
    }
}
