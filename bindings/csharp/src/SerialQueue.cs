using System;
using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;

namespace SignalR.Native
{
    /// <summary>Runs a connection's user callbacks (handlers, Closed/Reconnecting/Reconnected) one
    /// after another on the thread pool, in the order the library delivered them, awaiting each
    /// returned task before the next (as Microsoft's client awaits its handlers). The library's
    /// threads only enqueue, so user code that blocks or calls back into the connection can never
    /// stall or deadlock the library.</summary>
    internal sealed class SerialQueue
    {
        private readonly ConcurrentQueue<Func<Task>> work = new ConcurrentQueue<Func<Task>>();
        private readonly Logger logger;
        private int running;

        private static readonly WaitCallback DrainCallback = s => ((SerialQueue)s).Drain();

        internal SerialQueue(Logger logger) { this.logger = logger; }

        internal void Post(Func<Task> item)
        {
            work.Enqueue(item);
            if (Interlocked.CompareExchange(ref running, 1, 0) == 0)
                ThreadPool.UnsafeQueueUserWorkItem(DrainCallback, this);
        }

        private void Drain()
        {
            while (true)
            {
                Func<Task> item;
                while (work.TryDequeue(out item))
                {
                    Task pending;
                    try { pending = item(); }
                    catch (Exception e) { logger.Log(LogLevel.Error, "A handler threw an exception", e); continue; }
                    if (pending != null && !pending.IsCompleted)
                    {
                        // Resume draining once the handler's task ends (still holding `running`).
                        pending.ContinueWith((t, s) => { var q = (SerialQueue)s; q.Report(t); q.Drain(); },
                            this, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                        return;
                    }
                    Report(pending);
                }
                Volatile.Write(ref running, 0);
                // An item enqueued after the last TryDequeue but before the flag was cleared
                // would otherwise wait for the next Post.
                if (work.IsEmpty || Interlocked.CompareExchange(ref running, 1, 0) != 0) return;
            }
        }

        private void Report(Task t)
        {
            if (t != null && t.IsFaulted)
                logger.Log(LogLevel.Error, "A handler threw an exception", t.Exception.GetBaseException());
        }
    }
}
