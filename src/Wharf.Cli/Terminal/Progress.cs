namespace Wharf.Cli.Terminal;

/// <summary>One transfer's progress (an upload or a download of one file): bytes moved of a known total.</summary>
internal interface ITransferProgress
{
    /// <summary>Counts bytes moved; safe from several parts in parallel.</summary>
    void Advance(long bytes);

    /// <summary>Sets the bytes already there (a resumed transfer starts past zero), without counting them as speed.</summary>
    void Skip(long bytes);

    /// <summary>The transfer ended (done or failed): its line stops moving and shows <paramref name="note"/>.</summary>
    void Finish(string note);
}

/// <summary>A batch's progress: its status and lines finished of its total.</summary>
internal interface IBatchProgress
{
    void Update(string status, int done, int total);

    void Finish(string note);
}

/// <summary>Where a long command shows what it does, so the user never waits a second without feedback.</summary>
internal interface IProgressBoard
{
    ITransferProgress AddTransfer(string label, long totalBytes);

    IBatchProgress AddBatch(string label);
}

/// <summary>
/// Picks how progress is shown: live bars (Spectre.Console) on stderr when stdout and stderr are both a terminal,
/// otherwise a plain line per item to stderr every second. Stdout is left to the command's result (a table or
/// exactly one JSON document).
/// </summary>
internal static class ProgressDisplay
{
    public static bool IsInteractive => !Console.IsOutputRedirected && !Console.IsErrorRedirected;

    public static Task<T> RunTransfersAsync<T>(Func<IProgressBoard, Task<T>> work, CancellationToken cancellationToken) =>
        IsInteractive ? LiveProgress.RunAsync(work, transfers: true) : PlainProgress.RunAsync(work, cancellationToken);

    public static Task<T> RunBatchesAsync<T>(Func<IProgressBoard, Task<T>> work, CancellationToken cancellationToken) =>
        IsInteractive ? LiveProgress.RunAsync(work, transfers: false) : PlainProgress.RunAsync(work, cancellationToken);
}
