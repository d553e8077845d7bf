// The C# side of the wrapper's measurement (the same figures as capi_bench.c):
//   mono Bench.exe URL [json|messagepack] [invokes] [flood_count] [payload_bytes]
using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using SignalR.Native;

internal static class Bench
{
    private static int Main(string[] args)
    {
        string url = args[0];
        bool msgpack = args.Length > 1 && args[1] == "messagepack";
        int invokes = args.Length > 2 ? int.Parse(args[2]) : 2000;
        int flood = args.Length > 3 ? int.Parse(args[3]) : 100000;
        int payload = args.Length > 4 ? int.Parse(args[4]) : 32;
        Run(url, msgpack, invokes, flood, payload).GetAwaiter().GetResult();
        return 0;
    }

    private static async Task Run(string url, bool msgpack, int invokes, int flood, int payload)
    {
        var builder = new HubConnectionBuilder().WithUrl(url);
        if (msgpack) builder.AddMessagePackProtocol();
        using (var c = builder.Build())
        {
            int received = 0;
            var all = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            c.On<int, string>("Flood", (i, s) => { if (Interlocked.Increment(ref received) == flood) all.TrySetResult(true); });
            await c.StartAsync();

            // Invoke round trip: sequential typed Echo calls, after a warm-up.
            var lat = new double[invokes];
            var sw = new Stopwatch();
            for (int i = -invokes / 10; i < invokes; i++)
            {
                sw.Restart();
                await c.InvokeAsync<string>("Echo", "ping");
                sw.Stop();
                if (i >= 0) lat[i] = sw.Elapsed.TotalMilliseconds * 1000;
            }
            Array.Sort(lat);

            // Receive rate: typed handler, counted until every Flood message went through it.
            var total = Stopwatch.StartNew();
            await c.InvokeAsync<int>("Flood", flood, payload);
            await all.Task;
            double secs = total.Elapsed.TotalSeconds;

            Console.WriteLine("C# (Mono) {0}: invoke round trip median {1:F1} us p99 {2:F1} us ({3} calls); receive {4:F0} msg/s ({5} messages of {6} bytes)",
                msgpack ? "messagepack" : "json", lat[invokes / 2], lat[invokes * 99 / 100], invokes, flood / secs, flood, payload);
            await c.StopAsync();
        }
    }
}
