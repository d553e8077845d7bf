using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native.Tests
{
    /// <summary>Invoke, send and streams in both directions, over every variant.</summary>
    internal sealed class CallTests
    {
        private static async Task<HubConnection> Connected(Variant v)
        {
            var c = v.Builder(TestHub.Shared.Hub).Build();
            await c.StartAsync();
            return c;
        }

        [Test]
        public async Task InvokeRawJsonRoundTrips(Variant v)
        {
            using (var c = await Connected(v))
            {
                string result = await c.InvokeRawAsync("Echo", "[{\"a\":[1,2.5,\"x\",true,null],\"b\":{\"c\":\"é\\\"\"}}]");
                Assert.Equal("{\"a\":[1,2.5,\"x\",true,null],\"b\":{\"c\":\"é\\\"\"}}", result.Replace(" ", ""), "echoed JSON");
                Assert.Equal("null", await c.InvokeRawAsync("Record", "[1]"), "void result");
            }
        }

        [Test]
        public async Task InvokeTypedThroughDefaultSerializer(Variant v)
        {
            using (var c = await Connected(v))
            {
                Assert.Equal(5, await c.InvokeAsync<int>("Add", 2, 3), "Add");
                Assert.Equal(5000000000L, await c.InvokeAsync<long>("Add", 4000000000L, 1000000000L), "Add long");
                Assert.Equal(4.0, await c.InvokeAsync<double>("Add", 1.5, 2.5), "Add double");
                Assert.Equal("héllo \"quoted\"\n", await c.InvokeAsync<string>("Echo", "héllo \"quoted\"\n"), "Echo string");
                Assert.Equal(null, await c.InvokeAsync<string>("Echo", (object)null), "Echo null");
                Assert.Equal(true, await c.InvokeAsync<bool>("Echo", true), "Echo bool");
                var person = new Person { Name = "Ada", Age = 36, Tags = new List<string> { "x", "y" } };
                var back = await c.InvokeAsync<Person>("Echo", person);
                Assert.Equal("Ada", back.Name, "Name");
                Assert.Equal(36, back.Age, "Age");
                Assert.SequenceEqual(person.Tags, back.Tags, "Tags");
                var list = await c.InvokeAsync<List<int>>("Echo", new List<int> { 3, 1, 2 });
                Assert.SequenceEqual(new List<int> { 3, 1, 2 }, list, "list");
                var dict = await c.InvokeAsync<Dictionary<string, int>>("Echo", new Dictionary<string, int> { { "k", 7 } });
                Assert.Equal(7, dict["k"], "dictionary");
                string id = await c.InvokeAsync<string>("GetConnectionId");
                Assert.Equal(c.ConnectionId, id, "GetConnectionId");
                await c.InvokeAsync("Record", "done");
            }
        }

        [Test]
        public async Task HubErrorsAreHubExceptionsWithTheServerText(Variant v)
        {
            using (var c = await Connected(v))
            {
                var e = await Assert.Throws<HubException>(() => c.InvokeAsync<int>("Fail", "boom"), "Fail");
                Assert.Equal("An unexpected error occurred invoking 'Fail' on the server. HubException: boom", e.Message, "message");
                Assert.Equal(ResultCode.HubError, e.Code, "code");
                e = await Assert.Throws<HubException>(() => c.InvokeRawAsync("Nope", "[]"), "unknown method");
                Assert.Equal("Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.", e.Message, "message");
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "still usable");
            }
        }

        [Test]
        public async Task InvalidArgumentsThrowWithoutCrashing(Variant v)
        {
            using (var c = await Connected(v))
            {
                var e = await Assert.Throws<SignalRException>(() => c.InvokeRawAsync("Echo", "[1,"), "malformed JSON");
                Assert.Equal(ResultCode.InvalidJson, e.Code, "code");
                e = await Assert.Throws<SignalRException>(() => c.InvokeRawAsync("Echo", "{\"not\":\"array\"}"), "object args");
                Assert.Equal(ResultCode.InvalidJson, e.Code, "code");
                await Assert.Throws<ArgumentNullException>(() => c.InvokeRawAsync(null, "[]"), "null method");
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "still usable");
            }
        }

        [Test]
        public async Task UserCodeNeverRunsOnLibraryThreads()
        {
            using (var c = new HubConnectionBuilder().WithUrl(TestHub.Shared.Hub).Build())
            {
                await c.StartAsync().ConfigureAwait(false);
                for (int i = 0; i < 20; i++)
                {
                    await c.InvokeAsync<int>("Add", i, 1).ConfigureAwait(false);
                    // ConfigureAwait(false) resumes where the task completed: the thread pool, not
                    // the library thread that reported the result.
                    Assert.True(Thread.CurrentThread.IsThreadPoolThread, "invoke continuation on a pool thread");
                }
                var inHandler = new Signal<bool>();
                c.On<int>("Where", i => inHandler.Set(Thread.CurrentThread.IsThreadPoolThread));
                await c.InvokeAsync("SendToCaller", "Where", 1).ConfigureAwait(false);
                Assert.True(await Assert.Eventually(inHandler.Task, "handler"), "handler on a pool thread");
                var items = c.StreamAsync<int>("Counter", 5, 0);
                while (await items.MoveNextAsync().ConfigureAwait(false))
                    Assert.True(Thread.CurrentThread.IsThreadPoolThread, "stream continuation on a pool thread");
            }
        }

        [Test]
        public async Task ManyConcurrentInvocationsEachGetTheirResult(Variant v)
        {
            using (var c = await Connected(v))
            {
                var tasks = Enumerable.Range(0, 200).Select(i => c.InvokeAsync<int>("Add", i, 1000)).ToArray();
                int[] results = await Task.WhenAll(tasks);
                for (int i = 0; i < results.Length; i++) Assert.Equal(i + 1000, results[i], "result " + i);
            }
        }

        [Test]
        public async Task InvokeCancellationStopsWaiting(Variant v)
        {
            using (var c = await Connected(v))
            {
                var cts = new CancellationTokenSource();
                // The hub runs one invocation of a connection at a time (as ASP.NET does), so keep
                // the abandoned call short enough for the next one to follow it.
                var slow = c.InvokeAsync<int>("Delay", 1500, cts.Token);
                cts.Cancel();
                await Assert.Throws<OperationCanceledException>(() => slow, "canceled invoke");
                Assert.True(slow.IsCanceled, "task is canceled");
                await Assert.Throws<OperationCanceledException>(() => c.InvokeAsync<int>("Add", 1, 2, cts.Token), "already canceled token");
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "still usable");
            }
        }

        [Test]
        public async Task SendIsOrderedWithInvocations(Variant v)
        {
            using (var c = await Connected(v))
            {
                for (int i = 0; i < 20; i++) await c.SendAsync("Record", i);
                await c.SendRawAsync("Record", "[\"raw\"]");
                var recorded = await c.InvokeRawAsync("GetRecorded", "[]");
                Assert.Equal("[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,\"raw\"]", recorded.Replace(" ", ""), "recorded");
            }
        }

        [Test]
        public async Task StreamItemsArriveInOrder(Variant v)
        {
            using (var c = await Connected(v))
            {
                var items = await c.StreamAsync<int>("Counter", 50, 0).ToListAsync();
                Assert.SequenceEqual(Enumerable.Range(0, 50).ToList(), items, "items");
                var raw = await c.StreamRawAsync("Counter", "[3,0]").ToListAsync();
                Assert.SequenceEqual(new List<string> { "0", "1", "2" }, raw, "raw items");
            }
        }

        [Test]
        public async Task StreamCancellationTokenCancelsOnTheServer(Variant v)
        {
            using (var c = await Connected(v))
            {
                var cts = new CancellationTokenSource();
                using (var stream = c.StreamAsync<int>("Counter", 100000, 20, cts.Token))
                {
                    Assert.True(await stream.MoveNextAsync(), "first item");
                    Assert.Equal(0, stream.Current, "first");
                    Assert.True(await stream.MoveNextAsync(), "second item");
                    cts.Cancel();
                    await Assert.Throws<OperationCanceledException>(async () => { while (await stream.MoveNextAsync()) { } }, "canceled stream");
                }
                // The token of GetAsyncEnumerator (what `await foreach` passes) cancels too.
                var cts2 = new CancellationTokenSource();
                var e2 = c.StreamAsync<int>("Counter", 100000, 20).GetAsyncEnumerator(cts2.Token);
                Assert.True(await e2.MoveNextAsync(), "first item");
                cts2.Cancel();
                await Assert.Throws<OperationCanceledException>(async () => { while (await e2.MoveNextAsync()) { } }, "canceled enumerator");
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "still usable");
            }
        }

        [Test]
        public async Task StreamErrorsAreExceptions(Variant v)
        {
            using (var c = await Connected(v))
            {
                var e = await Assert.Throws<HubException>(() => c.StreamAsync<int>("Nope").ToListAsync(), "unknown stream method");
                Assert.True(e.Message.Contains("Nope"), "names the method: " + e.Message);
            }
        }

        [Test]
        public async Task UploadStreamToInvoke(Variant v)
        {
            using (var c = await Connected(v))
            {
                var upload = new ClientStream<int>();
                await upload.WriteAsync(100);               // buffered until the call starts
                var sum = c.InvokeAsync<int>("Sum", upload);
                for (int i = 1; i <= 10; i++) await upload.WriteAsync(i);
                upload.Complete();
                Assert.Equal(155, await sum, "sum");

                var failing = new ClientStream<int>();
                var failed = c.InvokeAsync<int>("Sum", failing);
                await failing.WriteAsync(1);
                failing.Complete(new Exception("client gave up"));
                var e = await Assert.Throws<HubException>(() => failed, "upload error");
                Assert.True(e.Message.Contains("client gave up"), "carries the error: " + e.Message);
            }
        }

        [Test]
        public async Task UploadStreamToStreamAndSend(Variant v)
        {
            using (var c = await Connected(v))
            {
                var upload = new ClientStream<string>();
                var echo = c.StreamAsync<string>("UploadEcho", upload);
                var words = new[] { "a", "b\"", "ç" };
                foreach (var w in words) await upload.WriteAsync(w);
                upload.Complete();
                Assert.SequenceEqual(words.ToList(), await echo.ToListAsync(), "echoed");

                var sent = new ClientStream<int>();
                var send = c.SendAsync("Sum", sent);
                await sent.WriteAsync(1);
                sent.Complete();
                await send;
                Assert.Equal(3, await c.InvokeAsync<int>("Add", 1, 2), "still usable");
            }
        }

        [Test]
        public async Task HandlersGetTypedArguments(Variant v)
        {
            using (var c = await Connected(v))
            {
                var got = new Signal<string>();
                c.On<string, int, Person>("Typed", (s, i, p) => got.Set(s + "|" + i + "|" + p.Name + "|" + p.Tags.Count));
                await c.InvokeAsync("SendToCaller", "Typed", "x", 42, new Person { Name = "Bo", Tags = new List<string> { "t" } });
                Assert.Equal("x|42|Bo|1", await Assert.Eventually(got.Task, "Typed"), "arguments");

                var raw = new Signal<string>();
                c.OnRaw("RAW", args => raw.Set(args));    // names match case-insensitively
                await c.InvokeAsync("SendToCaller", "raw", 1, "two");
                Assert.Equal("[1,\"two\"]", (await Assert.Eventually(raw.Task, "raw")).Replace(" ", ""), "raw arguments");

                // Plain raw handlers (Action<string>) are not client-result handlers: a method
                // may have several, and each gets every call.
                var first = new Signal<string>();
                var second = new Signal<string>();
                c.OnRaw("Twin", (Action<string>)(args => first.Set(args)));
                c.OnRaw("Twin", (Action<string>)(args => second.Set(args)));
                await c.InvokeAsync("SendToCaller", "Twin", 7);
                Assert.Equal("[7]", await Assert.Eventually(first.Task, "first Twin handler"), "first handler");
                Assert.Equal("[7]", await Assert.Eventually(second.Task, "second Twin handler"), "second handler");
            }
        }

        [Test]
        public async Task ClientResults(Variant v)
        {
            using (var c = await Connected(v))
            {
                c.On<string, string>("Upper", s => s.ToUpperInvariant());
                Assert.Equal("HI", await c.InvokeAsync<string>("AskClient", "Upper", "hi"), "sync result");

                c.On<int, int>("Twice", async i => { await Task.Yield(); return i * 2; });
                Assert.Equal(42, await c.InvokeAsync<int>("AskClient", "Twice", 21), "async result");

                c.OnRaw("RawResult", args => Task.FromResult("{\"got\":" + args + "}"));
                Assert.Equal("{\"got\":[5]}", (await c.InvokeRawAsync("AskClient", "[\"RawResult\",5]")).Replace(" ", ""), "raw result");

                c.On("Refuse", (Func<string, string>)(s => { throw new InvalidOperationException("no " + s); }));
                var e = await Assert.Throws<HubException>(() => c.InvokeAsync<string>("AskClient", "Refuse", "way"), "client error");
                Assert.True(e.Message.Contains("no way"), "the client's error text: " + e.Message);

                e = await Assert.Throws<HubException>(() => c.InvokeAsync<string>("AskClient", "Nobody", "x"), "no handler");
                Assert.True(e.Message.Contains("Client didn't provide a result."), "no-handler text: " + e.Message);
            }
        }
    }
}
