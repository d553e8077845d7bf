using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native.Tests
{
    /// <summary>Lifecycle, handlers, options, reconnect and disposal.</summary>
    internal sealed class ConnectionTests
    {
        [Test]
        public async Task StartStopStateAndConnectionId(Variant v)
        {
            using (var c = v.Builder(TestHub.Shared.Hub).Build())
            {
                Assert.Equal(HubConnectionState.Disconnected, c.State, "before start");
                Assert.Equal(null, c.ConnectionId, "no id before start");
                var closed = new Signal<Exception>();
                c.Closed += err => { closed.Set(err); return Task.CompletedTask; };
                await c.StartAsync();
                Assert.Equal(HubConnectionState.Connected, c.State, "after start");
                Assert.Equal(v.Transport, c.Transport, "transport");
                Assert.True(!string.IsNullOrEmpty(c.ConnectionId), "has an id");
                Assert.Equal(c.ConnectionId, await c.InvokeAsync<string>("GetConnectionId"), "server's id");
                var info = await c.InvokeAsync<RequestInfo>("GetRequestInfo");
                Assert.Equal(v.TransportName, info.Transport, "server-side transport");
                Assert.Equal(v.ProtocolName, info.Protocol, "server-side protocol");
                await c.StopAsync();
                Assert.Equal(HubConnectionState.Disconnected, c.State, "after stop");
                Assert.Equal(null, await Assert.Eventually(closed.Task, "Closed"), "clean close has no error");
                var e = await Assert.Throws<SignalRException>(() => c.InvokeAsync<int>("Add", 1, 2), "invoke when stopped");
                Assert.Equal(ResultCode.InvalidState, e.Code, "code");
                await c.StartAsync();                      // a stopped connection starts again
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "after restart");
            }
        }

        [Test]
        public async Task StartFailuresAreExceptions()
        {
            // Nothing listens on port 1.
            using (var c = new HubConnectionBuilder().WithUrl("http://127.0.0.1:1/hub").Build())
            {
                var e = await Assert.Throws<SignalRException>(() => c.StartAsync(), "unreachable server");
                Assert.True(e.Code == ResultCode.NegotiationFailed || e.Code == ResultCode.TransportFailed, "code " + e.Code);
                Assert.Equal(HubConnectionState.Disconnected, c.State, "state");
            }
            using (var c = new HubConnectionBuilder().WithUrl(TestHub.Shared.BaseUrl + "/auth-hub").Build())
            {
                var e = await Assert.Throws<SignalRException>(() => c.StartAsync(), "no token");
                Assert.Equal(ResultCode.Unauthorized, e.Code, "code");
            }
            using (var c = new HubConnectionBuilder().WithUrl(TestHub.Shared.Hub).Build())
            {
                var cts = new CancellationTokenSource();
                cts.Cancel();
                await Assert.Throws<OperationCanceledException>(() => c.StartAsync(cts.Token), "canceled start");
            }
        }

        [Test]
        public void BuilderValidatesItsInput()
        {
            var e = Assert.ThrowsSync<SignalRException>(() => new HubConnectionBuilder().WithUrl("not a url").Build(), "bad URL");
            Assert.Equal(ResultCode.InvalidArgument, e.Code, "code");
            Assert.ThrowsSync<InvalidOperationException>(() => new HubConnectionBuilder().Build(), "no URL");
            var b = new HubConnectionBuilder().WithUrl(TestHub.Shared.Hub);
            b.Build().Dispose();
            Assert.ThrowsSync<InvalidOperationException>(() => b.Build(), "second Build");
            Assert.ThrowsSync<ArgumentOutOfRangeException>(
                () => new HubConnectionBuilder().WithUrl(TestHub.Shared.Hub).WithServerTimeout(TimeSpan.FromSeconds(-1)).Build(), "negative timeout");
        }

        [Test]
        public async Task OptionsReachTheServer()
        {
            int tokenCalls = 0;
            using (var c = new HubConnectionBuilder()
                .WithUrl(TestHub.Shared.BaseUrl + "/auth-hub", o =>
                {
                    o.Headers["X-Custom"] = "custom value";
                    o.AccessTokenProvider = async () =>
                    {
                        Interlocked.Increment(ref tokenCalls);
                        await Task.Yield();                  // completes later, on another thread
                        return "alice";
                    };
                    o.Transports = HttpTransportType.WebSockets;
                    o.HttpTimeout = TimeSpan.FromSeconds(30);
                })
                .WithServerTimeout(TimeSpan.FromSeconds(40))
                .WithKeepAliveInterval(TimeSpan.FromSeconds(5))
                .WithHandshakeTimeout(TimeSpan.FromSeconds(10))
                .WithMaximumMessageSize(1 << 20)
                .Build())
            {
                await c.StartAsync();
                Assert.Equal("alice", await c.InvokeAsync<string>("GetUser"), "token became the user");
                Assert.True(Volatile.Read(ref tokenCalls) >= 1, "token provider called");
                var info = await c.InvokeAsync<RequestInfo>("GetRequestInfo");
                Assert.Equal("custom value", info.Negotiate.Headers["x-custom"], "header on negotiate");
                Assert.Equal("WebSockets", info.Transport, "transport");
            }
        }

        [Test]
        public async Task AccessTokenProviderFailureFailsTheStart()
        {
            using (var c = new HubConnectionBuilder()
                .WithUrl(TestHub.Shared.BaseUrl + "/auth-hub", o => o.AccessTokenProvider = () => { throw new InvalidOperationException("no token today"); })
                .Build())
            {
                var e = await Assert.Throws<SignalRException>(() => c.StartAsync(), "provider threw");
                Assert.True(e.Message.Contains("no token today"), "carries the provider's error: " + e.Message);
            }
        }

        [Test]
        public async Task TrustedCertificatesForTls()
        {
            string pem = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "csharp-hub-" + Guid.NewGuid().ToString("N") + ".pem");
            var hub = new TestHub("--tls " + pem);
            try
            {
                Assert.True(hub.BaseUrl.StartsWith("https://", StringComparison.Ordinal), "https hub: " + hub.BaseUrl);
                using (var c = new HubConnectionBuilder().WithUrl(hub.Hub, o => o.TrustedCertificateFiles.Add(pem)).Build())
                {
                    await c.StartAsync();
                    Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "over TLS");
                }
                using (var c = new HubConnectionBuilder().WithUrl(hub.Hub).Build())
                {
                    await Assert.Throws<SignalRException>(() => c.StartAsync(), "self-signed certificate not trusted");
                }
                Assert.ThrowsSync<SignalRException>(() => new HubConnectionBuilder()
                    .WithUrl(hub.Hub, o => o.TrustedCertificateFiles.Add(pem + ".missing")).Build(), "missing CA file");
            }
            finally
            {
                System.IO.File.Delete(pem);
            }
        }

        [Test]
        public async Task SkipNegotiation()
        {
            using (var c = new HubConnectionBuilder()
                .WithUrl(TestHub.Shared.Hub, o => { o.SkipNegotiation = true; o.Transports = HttpTransportType.WebSockets; })
                .Build())
            {
                await c.StartAsync();
                Assert.Equal(null, c.ConnectionId, "no id without negotiate");
                var info = await c.InvokeAsync<RequestInfo>("GetRequestInfo");
                Assert.Equal(null, info.Negotiate, "no negotiate request");
            }
        }

        [Test]
        public async Task HandlersRunInOrderAndCanBeRemoved(Variant v)
        {
            using (var c = v.Builder(TestHub.Shared.Hub).Build())
            {
                await c.StartAsync();
                var seen = new List<int>();
                var all = new Signal<bool>();
                c.On<int, string>("Flood", (i, payload) =>
                {
                    lock (seen) { seen.Add(i); if (seen.Count == 300) all.Set(true); }
                });
                Assert.Equal(300, await c.InvokeAsync<int>("Flood", 300, 16), "Flood");
                await Assert.Eventually(all.Task, "300 Flood messages");
                Assert.SequenceEqual(Enumerable.Range(0, 300).ToList(), seen, "order");

                int first = 0, second = 0;
                var h1 = c.On<int>("Tick", i => Interlocked.Increment(ref first));
                c.On<int>("Tick", i => Interlocked.Increment(ref second));
                var marker = new Signal<int>();
                c.On<int>("Marker", i => marker.Set(i));

                await c.InvokeAsync("SendToCaller", "Tick", 1);
                h1.Dispose();
                await c.InvokeAsync("SendToCaller", "Tick", 2);
                c.Remove("tick");
                await c.InvokeAsync("SendToCaller", "Tick", 3);
                await c.InvokeAsync("SendToCaller", "Marker", 9);
                // Handlers run in protocol order, so once Marker ran every Tick has been handled.
                Assert.Equal(9, await Assert.Eventually(marker.Task, "Marker"), "marker");
                Assert.Equal(1, Volatile.Read(ref first), "removed handler ran once");
                Assert.Equal(2, Volatile.Read(ref second), "other handler ran until Remove");
            }
        }

        [Test]
        public async Task HandlerExceptionsAreLoggedAndNotFatal(Variant v)
        {
            var log = new LogCollector((level, message) => level == LogLevel.Error && message.Contains("handler boom"));
            using (var c = v.Builder(TestHub.Shared.Hub).ConfigureLogging(log.Sink, LogLevel.Debug).Build())
            {
                await c.StartAsync();
                c.On<string>("Boom", s => { throw new InvalidOperationException("handler boom " + s); });
                var after = new Signal<string>();
                c.On<string>("After", s => after.Set(s));
                await c.InvokeAsync("SendToCaller", "Boom", "1");
                await c.InvokeAsync("SendToCaller", "After", "still alive");
                Assert.Equal("still alive", await Assert.Eventually(after.Task, "After"), "later handler");
                string logged = await Assert.Eventually(log.Seen, "the logged handler exception");
                Assert.True(logged.Contains("Boom"), "names the method: " + logged);
                Assert.Equal(HubConnectionState.Connected, c.State, "still connected");
                Assert.True(log.Records.Any(r => !r.Contains(" SignalR.Native: ")), "native records reach the sink too: " + string.Join(" / ", log.Records.Take(5)));

                // A handler with the wrong argument types is logged the same way.
                c.On<int>("Wrong", i => { });
                await c.InvokeAsync("SendToCaller", "Wrong", "not a number");
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "still usable");
            }
        }

        [Test]
        public async Task BlockingInsideAHandlerDoesNotDeadlock(Variant v)
        {
            using (var c = v.Builder(TestHub.Shared.Hub).Build())
            {
                await c.StartAsync();
                var result = new Signal<int>();
                // Blocking on a call from a handler: handlers run on the thread pool, completions
                // do not wait for handlers, so this returns.
                c.On<int>("Block", i => result.Set(c.InvokeAsync<int>("Add", i, 1).Result));
                await c.InvokeAsync("SendToCaller", "Block", 41);
                Assert.Equal(42, await Assert.Eventually(result.Task, "blocking handler"), "result");
            }
        }

        [Test]
        public async Task ClosedEventCarriesTheServerError(Variant v)
        {
            using (var c = v.Builder(TestHub.Shared.Hub).Build())
            {
                var closed = new Signal<Exception>();
                c.Closed += err => { closed.Set(err); return Task.CompletedTask; };
                c.Closed += e => { throw new Exception("a failing Closed handler does not stop the others"); };
                await c.StartAsync();
                await Assert.Throws<Exception>(() => c.InvokeAsync("CloseWithError", "server says bye", false), "pending invoke fails on close");
                var error = await Assert.Eventually(closed.Task, "Closed");
                Assert.True(error != null && error.Message.Contains("server says bye"), "error text: " + error);
                Assert.Equal(HubConnectionState.Disconnected, c.State, "state");
            }
        }

        [Test]
        public async Task AutomaticReconnectRaisesReconnectingAndReconnected(Variant v)
        {
            using (var c = v.Builder(TestHub.Shared.Hub).WithAutomaticReconnect(new[] { TimeSpan.Zero }).Build())
            {
                var reconnecting = new Signal<Exception>();
                var reconnected = new Signal<string>();
                c.Reconnecting += e => { reconnecting.Set(e); return Task.CompletedTask; };
                c.Reconnected += id => { reconnected.Set(id); return Task.CompletedTask; };
                await c.StartAsync();
                string firstId = c.ConnectionId;
                var drop = c.InvokeAsync("DropTransport");
                Assert.True(await Assert.Eventually(reconnecting.Task, "Reconnecting") != null, "Reconnecting has the error");
                string newId = await Assert.Eventually(reconnected.Task, "Reconnected");
                await Assert.Throws<Exception>(() => drop, "the call that dropped the transport fails");
                Assert.Equal(HubConnectionState.Connected, c.State, "connected again");
                Assert.True(newId != null && newId != firstId, "a new connection id");
                Assert.Equal(newId, c.ConnectionId, "ConnectionId updated");
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "usable after reconnect");
            }
        }

        [Test]
        public async Task StatefulReconnectKeepsTheConnection()
        {
            using (var c = new HubConnectionBuilder().WithUrl(TestHub.Shared.Hub, HttpTransportType.WebSockets)
                .WithStatefulReconnect(1 << 20).Build())
            {
                var reconnecting = 0;
                c.Reconnecting += e => { Interlocked.Increment(ref reconnecting); return Task.CompletedTask; };
                await c.StartAsync();
                string id = c.ConnectionId;
                Assert.Equal(2, (await c.InvokeAsync<RequestInfo>("GetRequestInfo")).HandshakeVersion, "handshake version");
                await c.InvokeAsync("Record", 1);
                await c.SendAsync("DropTransport");        // no completion comes for this one
                await c.SendAsync("Record", 2);            // buffered, delivered after the re-connect
                Assert.Equal(7, await c.InvokeAsync<int>("Add", 3, 4), "call across the drop");
                Assert.Equal("[1,2]", (await c.InvokeRawAsync("GetRecorded", "[]")).Replace(" ", ""), "recorded across the drop");
                Assert.Equal(id, c.ConnectionId, "same connection");
                Assert.Equal(HubConnectionState.Connected, c.State, "connected");
                Assert.Equal(0, Volatile.Read(ref reconnecting), "no Reconnecting event");
            }
        }

        private sealed class CountingPolicy : IRetryPolicy
        {
            internal readonly List<long> Counts = new List<long>();
            internal int Attempts;

            public TimeSpan? NextRetryDelay(RetryContext context)
            {
                lock (Counts) Counts.Add(context.PreviousRetryCount);
                if (context.RetryReason == null) throw new Exception("no retry reason");
                return Interlocked.Increment(ref Attempts) <= 2 ? TimeSpan.Zero : (TimeSpan?)null;
            }
        }

        [Test]
        public async Task RetryPolicyDecidesAndCanGiveUp()
        {
            var hub = new TestHub("");
            var policy = new CountingPolicy();
            using (var c = new HubConnectionBuilder().WithUrl(hub.Hub).WithAutomaticReconnect(policy).Build())
            {
                var closed = new Signal<Exception>();
                c.Closed += err => { closed.Set(err); return Task.CompletedTask; };
                await c.StartAsync();
                // Every reconnect attempt fails: negotiate answers 500.
                await c.InvokeAsync("FailNextNegotiations", 100, 500);
                var drop = c.InvokeAsync("DropTransport");
                var error = await Assert.Eventually(closed.Task, "Closed after the policy gave up");
                Assert.True(error != null, "closed with an error");
                lock (policy.Counts) Assert.SequenceEqual(new List<long> { 0, 1, 2 }, policy.Counts, "PreviousRetryCount");
                Assert.Equal(HubConnectionState.Disconnected, c.State, "state");
                await Assert.Throws<Exception>(() => drop, "dropped call");
            }
        }

        [Test]
        public async Task DisposeWithCallsInFlight(Variant v)
        {
            var c = v.Builder(TestHub.Shared.Hub).Build();
            await c.StartAsync();
            var slow = c.InvokeAsync<int>("Delay", 30000);
            var stream = c.StreamAsync<int>("Counter", 100000, 50);
            Assert.True(await stream.MoveNextAsync(), "stream running");
            var upload = new ClientStream<int>();
            var sum = c.InvokeAsync<int>("Sum", upload);
            c.Dispose();
            await Assert.Throws<OperationCanceledException>(() => slow, "pending invoke after Dispose");
            await Assert.Throws<OperationCanceledException>(async () => { while (await stream.MoveNextAsync()) { } }, "stream after Dispose");
            await Assert.Throws<OperationCanceledException>(() => sum, "upload invoke after Dispose");
            Assert.ThrowsSync<ObjectDisposedException>(() => { var s = c.State; }, "State after Dispose");
            await Assert.Throws<ObjectDisposedException>(() => c.InvokeAsync<int>("Add", 1, 2), "invoke after Dispose");
            await Assert.Throws<Exception>(() => upload.WriteAsync(1), "write to the upload of a freed connection");
            stream.Dispose();
            upload.Dispose();
            c.Dispose();                                  // idempotent
        }

        [Test]
        public async Task DisposeFromInsideAHandler(Variant v)
        {
            var c = v.Builder(TestHub.Shared.Hub).Build();
            await c.StartAsync();
            var disposed = new Signal<bool>();
            var issued = new Signal<bool>();
            c.On<int>("Quit", i => { issued.Task.Wait(); c.Dispose(); disposed.Set(true); });
            var stream = c.StreamAsync<int>("Counter", 100000, 50);
            Assert.True(await stream.MoveNextAsync(), "stream running");
            await c.SendAsync("SendToCaller", "Quit", 1);
            var pending = c.InvokeAsync<int>("Delay", 30000);   // queued behind SendToCaller on the hub
            issued.Set(true);
            await Assert.Eventually(disposed.Task, "Dispose inside the handler");
            await Assert.Throws<OperationCanceledException>(() => pending, "pending invoke");
            await Assert.Throws<OperationCanceledException>(async () => { while (await stream.MoveNextAsync()) { } }, "stream");
        }

        [Test]
        public async Task UndisposedConnectionsAreFinalized()
        {
            // A connection dropped without Dispose: its handle's finalizer frees the native side.
            // On a thread of its own, so no stale stack slot (Mono scans stacks conservatively)
            // keeps the connection reachable.
            WeakReference weak = null;
            var t = new Thread(() => { weak = StartAndForget().GetAwaiter().GetResult(); });
            t.Start();
            t.Join();
            for (int i = 0; i < 10 && weak.IsAlive; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                await Task.Yield();
            }
            Assert.True(!weak.IsAlive, "connection collected");
        }

        private static async Task<WeakReference> StartAndForget()
        {
            var c = new HubConnectionBuilder().WithUrl(TestHub.Shared.Hub).Build();
            c.On<int>("X", i => { });
            await c.StartAsync();
            Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "works");
            return new WeakReference(c);
        }
    }
}
