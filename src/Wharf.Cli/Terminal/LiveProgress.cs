using Spectre.Console;

namespace Wharf.Cli.Terminal;

/// <summary>Live progress bars on the terminal (stderr), redrawn by Spectre.Console several times a second.</summary>
internal static class LiveProgress
{
    public static async Task<T> RunAsync<T>(Func<IProgressBoard, Task<T>> work, bool transfers)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        ProgressColumn[] columns = transfers
            ?
            [
                new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn(), new SpinnerColumn(),
            ]
            :
            [
                new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new SpinnerColumn(),
            ];
        return await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(columns)
            .StartAsync(context => work(new Board(context)));
    }

    private sealed class Board(ProgressContext context) : IProgressBoard
    {
        public ITransferProgress AddTransfer(string label, long totalBytes) =>
            new Transfer(context.AddTask(Markup.Escape(label), autoStart: true, maxValue: Math.Max(1, totalBytes)), label);

        public IBatchProgress AddBatch(string label)
        {
            var task = context.AddTask(Markup.Escape(label), autoStart: true, maxValue: 1);
            task.IsIndeterminate = true;
            return new Batch(task, label);
        }
    }

    private sealed class Transfer(ProgressTask task, string label) : ITransferProgress
    {
        public void Advance(long bytes) => task.Increment(bytes);

        public void Skip(long bytes) => task.Value = bytes;

        public void Finish(string note)
        {
            task.Description = Markup.Escape($"{label}: {note}");
            task.Value = task.MaxValue;
            task.StopTask();
        }
    }

    private sealed class Batch(ProgressTask task, string label) : IBatchProgress
    {
        public void Update(string status, int done, int total)
        {
            task.Description = Markup.Escape($"{label} {status} {done}/{total}");
            task.IsIndeterminate = total == 0;
            task.MaxValue = Math.Max(1, total);
            task.Value = done;
        }

        public void Finish(string note)
        {
            task.Description = Markup.Escape($"{label}: {note}");
            task.IsIndeterminate = false;
            task.Value = task.MaxValue;
            task.StopTask();
        }
    }
}
