using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;

namespace SignalR.Native.Tests
{
    /// <summary>Marks a test: <c>Task Name()</c>, or <c>Task Name(Variant v)</c> to run it once per
    /// transport/protocol variant.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class TestAttribute : Attribute { }

    /// <summary>A small test runner (no NUnit needed): runs every [Test] in order, prints one line
    /// per test and `N passed, N failed`, exits non-zero on any failure.
    /// Usage: SignalR.Native.Tests.exe [name-substring ...]</summary>
    internal static class Runner
    {
        // A hang guard, not a timing assertion: a test that is still running after this fails.
        private static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

        private static int Main(string[] args)
        {
            int passed = 0, failed = 0;
            var failures = new List<string>();
            try
            {
                foreach (var test in Discover())
                {
                    if (args.Length > 0 && !args.Any(a => test.Name.IndexOf(a, StringComparison.OrdinalIgnoreCase) >= 0)) continue;
                    var started = DateTime.UtcNow;
                    string error = Run(test.Body);
                    var ms = (int)(DateTime.UtcNow - started).TotalMilliseconds;
                    if (error == null) { passed++; Console.WriteLine("PASS " + test.Name + " (" + ms + " ms)"); }
                    else { failed++; failures.Add(test.Name); Console.WriteLine("FAIL " + test.Name + " (" + ms + " ms): " + error); }
                }
            }
            finally
            {
                TestHub.StopAll();
            }
            if (failures.Count > 0) Console.WriteLine("failed: " + string.Join(", ", failures));
            Console.WriteLine(passed + " passed, " + failed + " failed");
            Console.Out.Flush();
            return failed == 0 && passed > 0 ? 0 : 1;
        }

        private static string Run(Func<Task> body)
        {
            try
            {
                var task = Task.Run(body);
                if (!task.Wait(Guard)) return "still running after " + Guard.TotalSeconds + " s (hang guard)";
                return null;
            }
            catch (AggregateException e)
            {
                return e.GetBaseException().ToString();
            }
            catch (Exception e)
            {
                return e.ToString();
            }
        }

        private sealed class TestCase
        {
            internal string Name;
            internal Func<Task> Body;
        }

        private static IEnumerable<TestCase> Discover()
        {
            foreach (var type in typeof(Runner).Assembly.GetTypes().OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                var methods = type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance)
                    .Where(m => m.GetCustomAttribute<TestAttribute>() != null)
                    .OrderBy(m => m.MetadataToken);
                foreach (var m in methods)
                {
                    var method = m;
                    var ps = method.GetParameters();
                    if (ps.Length == 1 && ps[0].ParameterType == typeof(Variant))
                    {
                        foreach (var v in Variant.All)
                        {
                            var variant = v;
                            yield return new TestCase
                            {
                                Name = type.Name + "." + method.Name + "[" + variant + "]",
                                Body = () => Call(type, method, new object[] { variant }),
                            };
                        }
                    }
                    else
                    {
                        yield return new TestCase
                        {
                            Name = type.Name + "." + method.Name,
                            Body = () => Call(type, method, new object[0]),
                        };
                    }
                }
            }
        }

        private static Task Call(Type type, MethodInfo method, object[] args)
        {
            try
            {
                var result = method.Invoke(method.IsStatic ? null : Activator.CreateInstance(type), args);
                return result as Task ?? Task.CompletedTask;
            }
            catch (TargetInvocationException e)
            {
                return Task.FromException(e.InnerException);
            }
        }
    }

    /// <summary>One transport × hub protocol combination the feature tests run over.</summary>
    internal sealed class Variant
    {
        internal readonly HttpTransportType Transport;
        internal readonly HubProtocol Protocol;

        private Variant(HttpTransportType transport, HubProtocol protocol) { Transport = transport; Protocol = protocol; }

        // MessagePack is binary, which Server-Sent Events cannot carry (the hub refuses it).
        internal static readonly Variant[] All =
        {
            new Variant(HttpTransportType.WebSockets, HubProtocol.Json),
            new Variant(HttpTransportType.WebSockets, HubProtocol.MessagePack),
            new Variant(HttpTransportType.ServerSentEvents, HubProtocol.Json),
            new Variant(HttpTransportType.LongPolling, HubProtocol.Json),
            new Variant(HttpTransportType.LongPolling, HubProtocol.MessagePack),
        };

        internal HubConnectionBuilder Builder(string url)
        {
            return new HubConnectionBuilder().WithUrl(url, Transport).WithProtocol(Protocol);
        }

        internal string ProtocolName { get { return Protocol == HubProtocol.Json ? "json" : "messagepack"; } }

        internal string TransportName
        {
            get
            {
                switch (Transport)
                {
                    case HttpTransportType.WebSockets: return "WebSockets";
                    case HttpTransportType.ServerSentEvents: return "ServerSentEvents";
                    default: return "LongPolling";
                }
            }
        }

        public override string ToString() { return TransportName + "/" + ProtocolName; }
    }
}
