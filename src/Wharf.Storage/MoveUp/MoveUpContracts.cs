using System.ComponentModel.DataAnnotations;

namespace Wharf.Storage.MoveUp;

/// <summary>
/// Moving up: copies the embedded store of <c>Wharf:DataDir</c> (SQLite catalog, blobs on disk) into the PostgreSQL
/// catalog and the S3 bucket of the scale-out settings, with the same ids, and verifies the copy. Running it again
/// after an interruption continues where it stopped and ends verified.
/// </summary>
public interface IEmbeddedStoreMover
{
    Task<MoveUpResult> RunAsync(IMoveUpProgress progress, CancellationToken cancellationToken);
}

/// <summary>What a run tells while it works (called from several threads during the blob phase).</summary>
public interface IMoveUpProgress
{
    /// <summary>The checks passed and the copy starts.</summary>
    void Started(MoveUpPlan plan);

    /// <summary>A table's rows were all written: <paramref name="inserted"/> of <paramref name="rows"/> were not there yet.</summary>
    void TableCopied(string table, long rows, long inserted);

    /// <summary>Every row of a table was found in the target, equal in every column.</summary>
    void TableVerified(string table, long rows);

    /// <summary>A blob is in the bucket (copied now, or found there with its length) and its SHA-256 was compared.</summary>
    void BlobDone(string blobId, long bytes, bool copied);
}

/// <summary>What a run is about to copy: the source, the target (no credential), and how much.</summary>
public sealed record MoveUpPlan(string DataDir, string Target, int Tables, long Rows, long Blobs, long BlobBytes);

public enum MoveUpOutcome
{
    /// <summary>Everything was copied and the target holds exactly the source's rows and bytes.</summary>
    Verified,

    /// <summary>Nothing was written: the source, the target or the settings do not allow the run (see the problems).</summary>
    Refused,

    /// <summary>The copy ran but the target differs from the source (see the problems).</summary>
    Mismatch,
}

/// <summary>The end of a run: its outcome, what is wrong (one sentence each; never a value of a row or a blob), and the totals.</summary>
public sealed record MoveUpResult(MoveUpOutcome Outcome, IReadOnlyList<string> Problems, MoveUpTotals Totals);

public sealed record MoveUpTotals
{
    public int Tables { get; init; }

    public long Rows { get; init; }

    /// <summary>Rows written by this run (the others were there from an earlier one).</summary>
    public long RowsCopied { get; init; }

    public long Blobs { get; init; }

    /// <summary>Blobs sent by this run (the others were in the bucket with their length).</summary>
    public long BlobsCopied { get; init; }

    public long Bytes { get; init; }

    public long BytesCopied { get; init; }
}

/// <summary><c>Wharf:MoveUp</c>: how the move-up command works.</summary>
public sealed class MoveUpOptions
{
    public const string Section = "Wharf:MoveUp";

    /// <summary>Blobs copied and verified at once (each holds up to three 8 MiB parts in memory while it is sent).</summary>
    [Range(1, 64)]
    public int BlobConcurrency { get; set; } = 4;
}
