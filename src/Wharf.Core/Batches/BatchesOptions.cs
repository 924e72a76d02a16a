using System.ComponentModel.DataAnnotations;

namespace Wharf.Core.Batches;

/// <summary>Options under <c>Wharf:Batches</c>.</summary>
public sealed class BatchesOptions
{
    public const string Section = "Wharf:Batches";

    /// <summary>Most lines an input file may hold (OpenAI's limit: 50,000).</summary>
    [Range(1, 1_000_000)]
    public int MaxLines { get; set; } = 50_000;

    /// <summary>Largest input file, in bytes (OpenAI's limit: 200 MB).</summary>
    [Range(1, long.MaxValue)]
    public long MaxInputBytes { get; set; } = 200L * 1024 * 1024;

    /// <summary>Largest single input line, in bytes (a line is one model request body and its envelope).</summary>
    [Range(1024, int.MaxValue)]
    public int MaxLineBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Lines of one batch in flight at once on this node (gateway execution).</summary>
    [Range(1, 10_000)]
    public int LineConcurrency { get; set; } = 64;

    /// <summary>Lines of one workspace's batches in flight at once on this node, over all its batches.</summary>
    [Range(1, 100_000)]
    public int MaxConcurrencyPerWorkspace { get; set; } = 256;

    /// <summary>Batches this node works on at once.</summary>
    [Range(1, 1000)]
    public int MaxConcurrentBatches { get; set; } = 4;

    /// <summary>
    /// How long a claimed batch stays this node's without a renewal (renewed every third of it). After a crash,
    /// another node or the restarted one takes the batch over once it runs out.
    /// </summary>
    [Range(2, 3600)]
    public int LeaseSeconds { get; set; } = 30;

    /// <summary>How often the engine looks for batches to claim (a batch created on this node is claimed at once).</summary>
    [Range(10, 60_000)]
    public int PollIntervalMilliseconds { get; set; } = 1000;

    /// <summary>Result lines written to the store as one chunk, at most (a chunk is also written when a second passes).</summary>
    [Range(1, 100_000)]
    public int ChunkLines { get; set; } = 1000;

    /// <summary>
    /// Bytes of result lines written to the store as one chunk, at most (a chunk is written once it holds
    /// <c>ChunkLines</c> lines or this many bytes, whichever comes first), so that large answers (embeddings) keep
    /// the memory of a run bounded.
    /// </summary>
    [Range(64 * 1024, 1024 * 1024 * 1024)]
    public int ChunkBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Longest a finished line's result waits in memory before its chunk is written, in milliseconds.</summary>
    [Range(10, 60_000)]
    public int ChunkFlushMilliseconds { get; set; } = 1000;

    /// <summary>Largest answer body a line's result keeps, in bytes; a larger answer is an error line.</summary>
    [Range(1024, int.MaxValue)]
    public int MaxResultBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>First wait between two polls of a native batch upstream, in seconds; doubles up to the maximum.</summary>
    [Range(1, 3600)]
    public int NativePollMinSeconds { get; set; } = 5;

    /// <summary>Longest wait between two polls of a native batch upstream, in seconds.</summary>
    [Range(1, 86_400)]
    public int NativePollMaxSeconds { get; set; } = 300;
}
