// A small chat client over SignalR.Native.
//
//     mono Chat.exe [--demo] [--messagepack] [--name NAME] [URL]
//
// Connects to the hub at URL (default http://127.0.0.1:5000/hub), prints every `Message` the hub
// broadcasts, and broadcasts each line typed on stdin. With --demo it sends a few messages, waits
// until they come back and exits. Build with bindings/csharp/build.sh (the test hub serves the
// Broadcast method this uses).
using System;
using System.Threading;
using System.Threading.Tasks;
using SignalR.Native;

internal static class Chat
{
    private static readonly string[] DemoLines = { "hello from signalr-native", "C# over the C API", "bye" };

    private static int Main(string[] args)
    {
        try
        {
            return Run(args).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("chat: " + e.Message);
            return 1;
        }
    }

    private static async Task<int> Run(string[] args)
    {
        string url = "http://127.0.0.1:5000/hub";
        bool demo = false, messagePack = false;
        string name = "user" + System.Diagnostics.Process.GetCurrentProcess().Id;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--demo": demo = true; break;
                case "--messagepack": messagePack = true; break;
                case "--name":
                    if (++i == args.Length) throw new ArgumentException("--name needs a value");
                    name = args[i];
                    break;
                case "-h":
                case "--help":
                    Console.WriteLine("usage: Chat.exe [--demo] [--messagepack] [--name NAME] [URL]");
                    return 0;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException("unknown option " + args[i]);
                    url = args[i];
                    break;
            }
        }

        var builder = new HubConnectionBuilder().WithUrl(url).WithAutomaticReconnect();
        if (messagePack) builder.AddMessagePackProtocol();
        using (var connection = builder.Build())
        {
            int mine = 0;
            var allMine = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            connection.On<string, string>("Message", (user, text) =>
            {
                Console.WriteLine(user + ": " + text);
                if (user == name && Interlocked.Increment(ref mine) == DemoLines.Length) allMine.TrySetResult(true);
            });
            connection.Reconnecting += e => { Console.Error.WriteLine("connection lost (" + e.Message + "); reconnecting…"); return Task.CompletedTask; };
            connection.Reconnected += id => { Console.Error.WriteLine("reconnected"); return Task.CompletedTask; };
            connection.Closed += e => { Console.Error.WriteLine(e == null ? "connection closed" : "connection closed: " + e.Message); return Task.CompletedTask; };

            await connection.StartAsync();
            Console.Error.WriteLine("connected to " + url + " as " + name + " (" + (messagePack ? "messagepack" : "json") +
                                    "); connection id " + connection.ConnectionId);

            if (demo)
            {
                foreach (var line in DemoLines) await connection.InvokeAsync("Broadcast", "Message", name, line);
                // Every broadcast comes back to us too; wait for our own.
                var timeout = Task.Delay(TimeSpan.FromSeconds(10));
                if (await Task.WhenAny(allMine.Task, timeout) != allMine.Task)
                    throw new Exception("the hub did not echo the demo messages");
            }
            else
            {
                string line;
                while ((line = Console.ReadLine()) != null)
                {
                    if (line.Trim().Length == 0) continue;
                    try { await connection.InvokeAsync("Broadcast", "Message", name, line); }
                    catch (Exception e) { Console.Error.WriteLine("not sent: " + e.Message); }
                }
            }
            await connection.StopAsync();
        }
        return 0;
    }
}
