using System.Diagnostics;

namespace Wharf.Cli.Terminal;

/// <summary>
/// Progress without a terminal: one line per unfinished item on stderr at once and then every second (bytes, rate,
/// time left, or a batch's counts), and one line when an item ends. A log or a CI job sees the command alive.
/// </summary>
internal static class PlainProgress
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    public static async Task<T> RunAsync<T>(Func<IProgressBoard, Task<T>> work, CancellationToken cancellationToken)
    {
        var board = new Board();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ticker = TickAsync(board, stop.Token);
        try
        {
            return await work(board);
        }
        finally
        {
            await stop.CancelAsync();
            await ticker;
        }
    }

    private static async Task TickAsync(Board board, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                board.Report();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static void Write(string line)
    {
        lock (Console.Error)
        {
            Console.Error.WriteLine(line);
        }
    }

    private sealed class Board : IProgressBoard
    {
        private readonly List<IItem> _items = [];

        public ITransferProgress AddTransfer(string label, long totalBytes) => Add(new Transfer(label, totalBytes));

        public IBatchProgress AddBatch(string label) => Add(new Batch(label));

        public void Report()
        {
            IItem[] items;
            lock (_items)
            {
                items = [.. _items];
            }
            foreach (var item in items)
            {
                item.Report();
            }
        }

        private T Add<T>(T item)
            where T : IItem
        {
            lock (_items)
            {
                _items.Add(item);
            }
            item.Report();
            return item;
        }
    }

    private interface IItem
    {
        void Report();
    }

    private sealed class Transfer(string label, long total) : ITransferProgress, IItem
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _skipped;
        private long _moved;
        private int _finished;

        public void Advance(long bytes) => Interlocked.Add(ref _moved, bytes);

        public void Skip(long bytes) => Interlocked.Exchange(ref _skipped, bytes);

        public void Finish(string note)
        {
            if (Interlocked.Exchange(ref _finished, 1) == 0)
            {
                Write($"{label}: {note} ({Sizes.Bytes(total)} in {_clock.Elapsed.TotalSeconds:0.0} s)");
            }
        }

        public void Report()
        {
            if (Volatile.Read(ref _finished) != 0)
            {
                return;
            }
            long moved = Interlocked.Read(ref _moved);
            long done = Interlocked.Read(ref _skipped) + moved;
            double seconds = Math.Max(_clock.Elapsed.TotalSeconds, 0.001);
            double rate = moved / seconds;
            string left = rate > 0 && total > done ? $", {TimeSpan.FromSeconds(Math.Ceiling((total - done) / rate)):c} left" : "";
            int percent = total > 0 ? (int)(Math.Min(done, total) * 100 / total) : 0;
            Write($"{label}: {Sizes.Bytes(done)} / {Sizes.Bytes(total)} ({percent}%), {Sizes.Bytes((long)rate)}/s{left}");
        }
    }

    private sealed class Batch(string label) : IBatchProgress, IItem
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly Lock _gate = new();
        private string _status = "starting";
        private int _done;
        private int _total;
        private bool _finished;

        public void Update(string status, int done, int total)
        {
            lock (_gate)
            {
                (_status, _done, _total) = (status, done, total);
            }
        }

        public void Finish(string note)
        {
            lock (_gate)
            {
                if (_finished)
                {
                    return;
                }
                _finished = true;
            }
            Write($"{label}: {note} after {_clock.Elapsed.TotalSeconds:0.0} s");
        }

        public void Report()
        {
            string line;
            lock (_gate)
            {
                if (_finished)
                {
                    return;
                }
                line = $"{label}: {_status}, {_done}/{_total} requests done, {_clock.Elapsed.TotalSeconds:0} s";
            }
            Write(line);
        }
    }
}
