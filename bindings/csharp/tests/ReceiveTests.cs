using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native.Tests
{
    /// <summary>Hub-to-client calls, which the wrapper receives through the C API's batch handler
    /// (many calls per callback): floods, handler order, exceptions in mid-batch, raw arguments,
    /// and plain and client-result handlers on one method.</summary>
    internal sealed class ReceiveTests
    {
        private static async Task<HubConnection> Connected(Variant v, LogCollector log = null)
        {
            var builder = v.Builder(TestHub.Shared.Hub);
            if (log != null) builder.ConfigureLogging(log.Sink, LogLevel.Warning);
            var c = builder.Build();
            await c.StartAsync();
            return c;
        }

        // Waits until every call sent before this one has gone through the handlers (handlers
        // run in protocol order).
        private static async Task Drain(HubConnection c)
        {
            var marker = new Signal<int>();
            using (c.On<int>("Marker", i => marker.Set(i)))
            {
                await c.InvokeAsync("SendToCaller", "Marker", 1);
                await Assert.Eventually(marker.Task, "the marker call");
            }
        }

        private static int LeadingInt(string rawArgs)
        {
            int start = rawArgs.IndexOf('[') + 1;
            return int.Parse(rawArgs.Substring(start, rawArgs.IndexOf(',') - start).Trim());
        }

        [Test]
        public async Task FloodArrivesCompleteAndInOrder(Variant v)
        {
            const int N = 20000;
            const int Payload = 24;
            using (var c = await Connected(v))
            {
                // Two handlers on the method: for call i the typed one records 2i, then the raw one 2i+1.
                var events = new List<int>(2 * N);
                string badPayload = null, badRaw = null;
                var all = new Signal<bool>();
                c.On<int, string>("Flood", (i, payload) =>
                {
                    if (payload.Length != Payload || payload.Trim('x').Length != 0) badPayload = badPayload ?? (i + ": " + payload);
                    lock (events) events.Add(2 * i);
                });
                c.OnRaw("flood", args =>
                {
                    int i = LeadingInt(args);
                    if (args.Replace(" ", "") != "[" + i + ",\"" + new string('x', Payload) + "\"]") badRaw = badRaw ?? args;
                    lock (events) { events.Add(2 * i + 1); if (events.Count == 2 * N) all.Set(true); }
                });
                Assert.Equal(N, await c.InvokeAsync<int>("Flood", N, Payload), "Flood's result");
                await Assert.Eventually(all.Task, N + " Flood calls");
                await Drain(c);
                lock (events)
                {
                    Assert.Equal(2 * N, events.Count, "no call twice");
                    for (int k = 0; k < events.Count; k++)
                        if (events[k] != k) throw new Exception("order: event " + k + " is " + events[k]);
                }
                Assert.Equal(null, badPayload, "typed payloads");
                Assert.Equal(null, badRaw, "raw arguments");
            }
        }

        [Test]
        public async Task HandlerExceptionsInMidBatchAreLoggedAndLaterCallsRun(Variant v)
        {
            const int N = 5000;
            var log = new LogCollector();
            using (var c = await Connected(v, log))
            {
                var events = new List<int>(2 * N);
                var all = new Signal<bool>();
                // Call i: the first handler records 2i (and throws for i = 500, 1500, ...), the
                // second, asynchronous one records 2i+1 (its task faults for i = 700, 1700, ...;
                // it is still running when returned for i = 300, 900, 1300, ...: the next
                // handler waits for it).
                c.On<int, string>("Flood", (i, payload) =>
                {
                    if (i % 1000 == 500) throw new InvalidOperationException("flood boom " + i);
                    lock (events) events.Add(2 * i);
                });
                c.On("Flood", new[] { typeof(int), typeof(string) }, async a =>
                {
                    int i = (int)a[0];
                    if (i % 1000 == 700)
                    {
                        await Task.Yield();
                        throw new InvalidOperationException("async flood boom " + i);
                    }
                    if (i % 1000 == 300) await Task.Delay(1);
                    if (i % 1000 == 900) await Task.Yield();
                    lock (events)
                    {
                        events.Add(2 * i + 1);
                        if (i == N - 1) all.Set(true);
                    }
                });
                Assert.Equal(N, await c.InvokeAsync<int>("Flood", N, 8), "Flood's result");
                await Assert.Eventually(all.Task, "the last Flood call");

                var expected = new List<int>();
                for (int i = 0; i < N; i++)
                {
                    if (i % 1000 != 500) expected.Add(2 * i);
                    if (i % 1000 != 700) expected.Add(2 * i + 1);
                }
                lock (events) Assert.SequenceEqual(expected, events, "calls and handlers in order");

                var errors = log.Records.Where(r => r.StartsWith("Error ", StringComparison.Ordinal)).ToList();
                for (int i = 500; i < N; i += 1000)
                {
                    int n = i;
                    Assert.True(errors.Any(r => r.Contains("'Flood'") && r.Contains("flood boom " + n) && !r.Contains("async flood")), "logged: flood boom " + n);
                }
                for (int i = 700; i < N; i += 1000)
                {
                    int n = i;
                    Assert.True(errors.Any(r => r.Contains("'Flood'") && r.Contains("async flood boom " + n)), "logged: async flood boom " + n);
                }
                Assert.Equal(2 * N / 1000, errors.Count, "one error record per failure: " + string.Join(" / ", errors.Take(3)));
                Assert.Equal(HubConnectionState.Connected, c.State, "still connected");
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "still usable");
            }
        }

        [Test]
        public async Task OnRawGetsEachCallsArguments(Variant v)
        {
            const int N = 300;
            using (var c = await Connected(v))
            {
                var raws = new List<string>();
                var typed = new List<object[]>();
                c.OnRaw("Tricky", text => { lock (raws) raws.Add(text); });
                c.On("TRICKY", new[] { typeof(int), typeof(string), typeof(string), typeof(object), typeof(object), typeof(object), typeof(bool), typeof(double) },
                    a => { lock (raws) typed.Add(a); return null; });
                // Values whose text holds the scanner's delimiters and multi-byte UTF-8 (2, 3 and
                // 4 bytes); sent without waiting, so the hub's calls back come in a burst (several
                // per batch).
                const string Utf = "\u00e9\u20ac\U0001F600";
                Func<int, string> args = k => "[" + k + ",\"a,]\\\"b\\\\[{" + Utf + "\",\"" + Utf + "\",[1,[2,{\"x\":\"}" + Utf + "\"}]],{\"y\":[]},null,true,-1.5]";
                var sends = new List<Task>();
                for (int k = 0; k < N; k++) sends.Add(c.SendRawAsync("SendToCaller", "[\"Tricky\"," + args(k).Substring(1)));
                await Task.WhenAll(sends);
                await Drain(c);
                lock (raws)
                {
                    Assert.Equal(N, raws.Count, "raw calls");
                    Assert.Equal(N, typed.Count, "typed calls");
                    for (int k = 0; k < N; k++)
                    {
                        Assert.Equal(args(k), raws[k].Replace(" ", ""), "raw arguments of call " + k);
                        object[] a = typed[k];
                        Assert.Equal(k, (int)a[0], "int " + k);
                        Assert.Equal("a,]\"b\\[{" + Utf, (string)a[1], "string " + k);
                        Assert.Equal(Utf, (string)a[2], "multi-byte string " + k);
                        Assert.Equal("[1,[2,{\"x\":\"}" + Utf + "\"}]]", ((string)a[3]).Replace(" ", ""), "nested array " + k);
                        Assert.Equal("{\"y\":[]}", ((string)a[4]).Replace(" ", ""), "object " + k);
                        Assert.Equal(null, a[5], "null " + k);
                        Assert.Equal(true, (bool)a[6], "bool " + k);
                        Assert.Equal(-1.5, (double)a[7], "double " + k);
                    }
                }
            }
        }

        [Test]
        public async Task PlainAndResultHandlersShareAMethod(Variant v)
        {
            using (var c = await Connected(v))
            {
                var seen = new List<string>();
                var plain = c.On<string>("Both", s => { lock (seen) seen.Add("plain " + s); });
                var result = c.On<string, string>("both", s => { lock (seen) seen.Add("result " + s); return s + "!"; });
                var e = Assert.ThrowsSync<SignalRException>(() => c.On<string, string>("BOTH", s => s), "a second result handler");
                Assert.Equal(ResultCode.InvalidState, e.Code, "code");

                const string X = "x\u00e9\u20ac\U0001F600";            // multi-byte UTF-8 through the invocation path
                Assert.Equal(X + "!", await c.InvokeAsync<string>("AskClient", "Both", X), "client result");
                await c.InvokeAsync("SendToCaller", "Both", "y");     // no result expected: both run, the value goes nowhere
                await Drain(c);
                lock (seen) Assert.SequenceEqual(new List<string> { "plain " + X, "result " + X, "plain y", "result y" }, seen, "handlers");

                result.Dispose();
                var h = await Assert.Throws<HubException>(() => c.InvokeAsync<string>("AskClient", "Both", "z"), "no result handler");
                Assert.True(h.Message.Contains("Client didn't provide a result."), "no-result text: " + h.Message);
                await Drain(c);
                lock (seen) Assert.Equal("plain z", seen.Last(), "the plain handler still runs");
                c.On<string, string>("Both", s => s + "?");          // a result handler again
                Assert.Equal("w?", await c.InvokeAsync<string>("AskClient", "Both", "w"), "new client result");

                plain.Dispose();
                plain.Dispose();                                    // idempotent
                c.Remove("both");
                h = await Assert.Throws<HubException>(() => c.InvokeAsync<string>("AskClient", "Both", "q"), "no handler at all");
                Assert.True(h.Message.Contains("Client didn't provide a result."), "no-handler text: " + h.Message);
                int count;
                lock (seen) count = seen.Count;
                await c.InvokeAsync("SendToCaller", "Both", "gone");
                await Drain(c);
                lock (seen) Assert.Equal(count, seen.Count, "removed handlers no longer run");
            }
        }

        [Test]
        public async Task HandlerRemovedInsideAHandlerStopsLaterCalls(Variant v)
        {
            using (var c = await Connected(v))
            {
                int first = 0, second = 0;
                IDisposable h1 = null;
                h1 = c.On<int, string>("Flood", (i, p) => { if (Interlocked.Increment(ref first) == 10) h1.Dispose(); });
                c.On<int, string>("Flood", (i, p) => Interlocked.Increment(ref second));
                await c.InvokeAsync<int>("Flood", 2000, 4);
                await Drain(c);
                Assert.Equal(2000, Volatile.Read(ref second), "the other handler got every call");
                // Calls already handed to the connection's queue still reach it (as before the
                // removal took effect); later ones do not.
                int afterFlood = Volatile.Read(ref first);
                Assert.True(afterFlood >= 10, "the handler ran: " + afterFlood);
                await c.InvokeAsync<int>("Flood", 100, 4);
                await Drain(c);
                Assert.Equal(afterFlood, Volatile.Read(ref first), "nothing after removal");
                Assert.Equal(2100, Volatile.Read(ref second), "the other handler still runs");
            }
        }
    }
}
