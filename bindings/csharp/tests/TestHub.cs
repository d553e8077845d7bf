using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Runtime.Serialization;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native.Tests
{
    /// <summary>A test-hub process (tests/hub/SPEC.md): started with --port 0 and
    /// --exit-on-stdin-eof, so it goes away with this process even after a crash.</summary>
    internal sealed class TestHub
    {
        private static readonly List<TestHub> Started = new List<TestHub>();
        private static TestHub shared;

        private readonly Process process;

        /// <summary>The base URL, e.g. http://127.0.0.1:PORT.</summary>
        internal readonly string BaseUrl;

        internal string Hub { get { return BaseUrl + "/hub"; } }

        /// <summary>The hub most tests share (started on first use).</summary>
        internal static TestHub Shared
        {
            get
            {
                lock (Started) { return shared ?? (shared = new TestHub("")); }
            }
        }

        internal TestHub(string extraArgs)
        {
            string bin = Environment.GetEnvironmentVariable("TEST_HUB_BIN");
            if (string.IsNullOrEmpty(bin))
                bin = Path.GetFullPath(Path.Combine(AppDomain.CurrentDomain.BaseDirectory, "..", "debug", "test-hub"));
            if (!File.Exists(bin)) throw new FileNotFoundException("test hub not found (set TEST_HUB_BIN)", bin);
            var psi = new ProcessStartInfo(bin, "--port 0 --exit-on-stdin-eof " + extraArgs)
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
            };
            process = Process.Start(psi);
            BaseUrl = process.StandardOutput.ReadLine();
            if (BaseUrl == null || !BaseUrl.StartsWith("http", StringComparison.Ordinal))
                throw new InvalidOperationException("the test hub printed no URL: " + BaseUrl);
            lock (Started) Started.Add(this);
        }

        internal static void StopAll()
        {
            lock (Started)
            {
                foreach (var hub in Started)
                {
                    try { hub.process.StandardInput.Close(); hub.process.WaitForExit(5000); }
                    catch (Exception) { }
                    try { if (!hub.process.HasExited) hub.process.Kill(); }
                    catch (Exception) { }
                }
                Started.Clear();
                shared = null;
            }
        }
    }

    /// <summary>GetRequestInfo's answer (typed through the default serializer).</summary>
    [DataContract]
    internal sealed class RequestInfo
    {
        [DataMember(Name = "transport")] public string Transport;
        [DataMember(Name = "protocol")] public string Protocol;
        [DataMember(Name = "handshakeVersion")] public int HandshakeVersion;
        [DataMember(Name = "negotiate")] public RequestData Negotiate;
        [DataMember(Name = "connect")] public RequestData Connect;
        [DataMember(Name = "send")] public RequestData Send;
    }

    [DataContract]
    internal sealed class RequestData
    {
        [DataMember(Name = "headers")] public Dictionary<string, string> Headers;
        [DataMember(Name = "query")] public Dictionary<string, string> Query;
        [DataMember(Name = "cookies")] public Dictionary<string, string> Cookies;
    }

    /// <summary>A plain class (no attributes) for typed round trips.</summary>
    public sealed class Person
    {
        public string Name { get; set; }
        public int Age { get; set; }
        public List<string> Tags { get; set; }
    }

    internal static class Assert
    {
        internal static void True(bool condition, string what)
        {
            if (!condition) throw new Exception("assertion failed: " + what);
        }

        internal static void Equal<T>(T expected, T actual, string what = "value")
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new Exception(what + ": expected <" + expected + ">, got <" + actual + ">");
        }

        internal static void SequenceEqual<T>(IList<T> expected, IList<T> actual, string what = "sequence")
        {
            Equal(expected.Count, actual.Count, what + " length");
            for (int i = 0; i < expected.Count; i++) Equal(expected[i], actual[i], what + "[" + i + "]");
        }

        internal static async Task<TException> Throws<TException>(Func<Task> body, string what) where TException : Exception
        {
            try { await body().ConfigureAwait(false); }
            catch (TException e) { return e; }
            catch (Exception e) { throw new Exception(what + ": expected " + typeof(TException).Name + ", got " + e.GetType().Name + ": " + e.Message, e); }
            throw new Exception(what + ": expected " + typeof(TException).Name + ", nothing was thrown");
        }

        internal static TException ThrowsSync<TException>(Action body, string what) where TException : Exception
        {
            try { body(); }
            catch (TException e) { return e; }
            catch (Exception e) { throw new Exception(what + ": expected " + typeof(TException).Name + ", got " + e.GetType().Name + ": " + e.Message, e); }
            throw new Exception(what + ": expected " + typeof(TException).Name + ", nothing was thrown");
        }

        /// <summary>Waits for an event-driven task; the bound only turns a hang into a failure.</summary>
        internal static async Task<T> Eventually<T>(Task<T> task, string what)
        {
            if (await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(20))).ConfigureAwait(false) != task)
                throw new Exception("timed out waiting for " + what);
            return await task.ConfigureAwait(false);
        }

        internal static async Task Eventually(Task task, string what)
        {
            if (await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(20))).ConfigureAwait(false) != task)
                throw new Exception("timed out waiting for " + what);
            await task.ConfigureAwait(false);
        }
    }

    /// <summary>A task source for events, completing continuations off the signalling thread.</summary>
    internal sealed class Signal<T>
    {
        private readonly TaskCompletionSource<T> source = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        internal Task<T> Task { get { return source.Task; } }
        internal void Set(T value) { source.TrySetResult(value); }
    }

    /// <summary>Collects log records of a connection (ConfigureLogging) for assertions.</summary>
    internal sealed class LogCollector
    {
        private readonly List<string> records = new List<string>();
        private readonly Func<LogLevel, string, bool> watch;
        private readonly Signal<string> seen = new Signal<string>();

        internal LogCollector(Func<LogLevel, string, bool> watch = null) { this.watch = watch; }

        internal void Sink(LogLevel level, string category, string message)
        {
            lock (records) records.Add(level + " " + category + ": " + message);
            if (watch != null && watch(level, message)) seen.Set(message);
        }

        internal Task<string> Seen { get { return seen.Task; } }

        internal List<string> Records { get { lock (records) return new List<string>(records); } }
    }

    internal static class Tokens
    {
        internal static CancellationToken CanceledAfter(Task trigger)
        {
            var cts = new CancellationTokenSource();
            trigger.ContinueWith(_ => cts.Cancel(), TaskScheduler.Default);
            return cts.Token;
        }
    }
}
