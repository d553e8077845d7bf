// This library through its C# wrapper (bindings/csharp, over the C API), run by Mono, on the
// command line of every program of benches/compare (see benches/compare/rust/src/lib.rs):
//   mono bench-csharp.exe invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack
// Typed calls as an application would write them: InvokeAsync<string>("Echo", s), On<int, string>.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using SignalR.Native;

internal static class Bench
{
    private const int InFlight = 100;
    private const int ConnectBatch = 100;

    private static string url, protocol, echo;
    private static int count, payload;

    private static int WarmUp { get { return Math.Max(1, count / 10); } }

    private static int Main(string[] args)
    {
        if (args.Length != 5)
        {
            Console.Error.WriteLine("usage: bench-csharp.exe invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack");
            return 2;
        }
        url = args[1];
        count = int.Parse(args[2]);
        payload = int.Parse(args[3]);
        protocol = args[4];
        echo = new string('x', payload);
        switch (args[0])
        {
            case "invoke": Invoke().GetAwaiter().GetResult(); break;
            case "pipelined": Pipelined().GetAwaiter().GetResult(); break;
            case "flood": Flood().GetAwaiter().GetResult(); break;
            case "connect": Connect().GetAwaiter().GetResult(); break;
            case "idle": Idle().GetAwaiter().GetResult(); break;
            default: Console.Error.WriteLine("unknown scenario " + args[0]); return 2;
        }
        return 0;
    }

    private static HubConnection Connection()
    {
        var builder = new HubConnectionBuilder().WithUrl(url, HttpTransportType.WebSockets);
        if (protocol == "messagepack") builder.AddMessagePackProtocol();
        return builder.Build();
    }

    private static string Percentiles(List<double> seconds)
    {
        seconds.Sort();
        Func<double, double> at = p => seconds[(int)Math.Round((seconds.Count - 1) * p)] * 1e6;
        return "{" + Figure("p50_us", at(0.5)) + "," + Figure("p99_us", at(0.99)) + "}";
    }

    private static string Figure(string name, double value)
    {
        return string.Format(System.Globalization.CultureInfo.InvariantCulture, "\"{0}\":{1:F6}", name, value);
    }

    [DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetRusage(int who, long[] usage);

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void ExitNow(int status);

    /// User + system CPU seconds of the process (getrusage; TotalProcessorTime has 10 ms steps).
    private static double CpuSeconds()
    {
        var usage = new long[18]; // struct rusage: ru_utime and ru_stime (timeval) first
        GetRusage(0, usage);
        return usage[0] + usage[1] / 1e6 + usage[2] + usage[3] / 1e6;
    }

    private static long RssBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        foreach (var line in File.ReadAllLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:"))
                return long.Parse(line.Substring(6).Trim().Split(' ')[0]) * 1024;
        return 0;
    }

    private static async Task Invoke()
    {
        using (var c = Connection())
        {
            await c.StartAsync();
            var samples = new List<double>(count);
            var sw = new Stopwatch();
            for (int i = 0; i < count + WarmUp; i++)
            {
                sw.Restart();
                await c.InvokeAsync<string>("Echo", echo);
                if (i >= WarmUp) samples.Add(sw.Elapsed.TotalSeconds);
            }
            await c.StopAsync();
            Console.WriteLine(Percentiles(samples));
        }
    }

    private static async Task Pipelined()
    {
        using (var c = Connection())
        {
            await c.StartAsync();
            Func<int, Task> run = async n =>
            {
                int sent = 0;
                Func<Task> worker = async () =>
                {
                    while (Interlocked.Increment(ref sent) <= n)
                        await c.InvokeAsync<string>("Echo", echo);
                };
                await Task.WhenAll(Enumerable.Range(0, Math.Min(InFlight, n)).Select(_ => worker()));
            };
            await run(WarmUp);
            var sw = Stopwatch.StartNew();
            await run(count);
            double seconds = sw.Elapsed.TotalSeconds;
            await c.StopAsync();
            Console.WriteLine("{" + Figure("calls_per_s", count / seconds) + "}");
        }
    }

    private static async Task Flood()
    {
        using (var c = Connection())
        {
            int received = 0, expected = 0;
            var all = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            c.On<int, string>("Flood", (i, s) =>
            {
                if (Interlocked.Increment(ref received) == Volatile.Read(ref expected)) all.TrySetResult(true);
            });
            await c.StartAsync();
            Func<int, Task<Tuple<double, double>>> run = async n =>
            {
                all = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                Volatile.Write(ref received, 0);
                Volatile.Write(ref expected, n);
                double cpu = CpuSeconds();
                var sw = Stopwatch.StartNew();
                await c.InvokeAsync<int>("Flood", n, payload);
                await all.Task; // handlers run in order on the wrapper's queue, maybe after the result
                return Tuple.Create(sw.Elapsed.TotalSeconds, CpuSeconds() - cpu);
            };
            await run(WarmUp);
            var r = await run(count);
            await c.StopAsync();
            Console.WriteLine("{" + Figure("msgs_per_s", count / r.Item1) + "," + Figure("cpu_s", r.Item2) + "}");
        }
    }

    private static async Task Connect()
    {
        var samples = new List<double>(count);
        for (int i = 0; i < count + WarmUp; i++)
        {
            using (var c = Connection())
            {
                var sw = Stopwatch.StartNew();
                await c.StartAsync();
                if (i >= WarmUp) samples.Add(sw.Elapsed.TotalSeconds);
                await c.StopAsync();
            }
        }
        Console.WriteLine(Percentiles(samples));
    }

    private static async Task Idle()
    {
        var warm = Connection(); // warms the shared parts; not counted
        await warm.StartAsync();
        long before = RssBytes();
        var open = new List<HubConnection>(count);
        while (open.Count < count)
        {
            var batch = Enumerable.Range(0, Math.Min(ConnectBatch, count - open.Count)).Select(_ => Connection()).ToList();
            await Task.WhenAll(batch.Select(c => c.StartAsync()));
            open.AddRange(batch);
        }
        await Task.Delay(500);
        Console.WriteLine("{" + Figure("bytes_per_conn", (RssBytes() - before) / (double)count) + "}");
        Console.Out.Flush();
        ExitNow(0); // without closing every connection one by one (Environment.Exit would wait for them)
    }
}
