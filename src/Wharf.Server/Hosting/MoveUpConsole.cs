using System.Globalization;
using Wharf.Storage.MoveUp;

namespace Wharf.Server.Hosting;

/// <summary>
/// The move-up command's progress as lines of text: the plan, a line per table copied and per table verified, a blob
/// line at the first blob, then at most once a second and at the last, and the summary.
/// </summary>
internal sealed class MoveUpConsole(TextWriter output, TimeProvider time) : IMoveUpProgress
{
    private static readonly TimeSpan BlobLineInterval = TimeSpan.FromSeconds(1);
    private readonly Lock _lock = new();
    private MoveUpPlan? _plan;
    private long _blobs, _copied, _bytes;
    private DateTimeOffset _lastBlobLine = DateTimeOffset.MinValue;

    public void Started(MoveUpPlan plan)
    {
        _plan = plan;
        Write($"Moving up the embedded store in {plan.DataDir}");
        Write($"  into {plan.Target}");
        Write($"  {Count(plan.Tables)} tables, {Count(plan.Rows)} rows; {Count(plan.Blobs)} blobs, {Bytes(plan.BlobBytes)}");
    }

    public void TableCopied(string table, long rows, long inserted) =>
        Write($"rows    {table}: {Count(rows)} ({Count(inserted)} copied, {Count(rows - inserted)} already there)");

    public void TableVerified(string table, long rows) => Write($"checked {table}: {Count(rows)} rows equal");

    public void BlobDone(string blobId, long bytes, bool copied)
    {
        lock (_lock)
        {
            _blobs++;
            _bytes += bytes;
            _copied += copied ? 1 : 0;
            var now = time.GetUtcNow();
            if (_blobs > 1 && _blobs < (_plan?.Blobs ?? 0) && now - _lastBlobLine < BlobLineInterval)
            {
                return;
            }
            _lastBlobLine = now;
            Write($"blobs   {Count(_blobs)} of {Count(_plan?.Blobs ?? 0)}, {Bytes(_bytes)} of {Bytes(_plan?.BlobBytes ?? 0)} ({Count(_copied)} copied, {Count(_blobs - _copied)} already there)");
        }
    }

    /// <summary>The summary on the output, or what is wrong on <paramref name="errors"/>.</summary>
    public void Finished(MoveUpResult result, TextWriter errors)
    {
        var totals = result.Totals;
        switch (result.Outcome)
        {
            case MoveUpOutcome.Verified:
                Write($"Verified: {Count(totals.Tables)} tables, {Count(totals.Rows)} rows ({Count(totals.RowsCopied)} copied by this run); "
                    + $"{Count(totals.Blobs)} blobs, {Bytes(totals.Bytes)} ({Count(totals.BlobsCopied)} blobs, {Bytes(totals.BytesCopied)} copied by this run, "
                    + $"{Count(totals.Blobs - totals.BlobsCopied)} already there). Every row is in PostgreSQL with every column equal, "
                    + "and every blob's SHA-256 in the bucket is its SHA-256 on disk.");
                Write("Next: start the nodes on these settings with Wharf:Storage:Catalog=postgres and Wharf:Storage:Blobs=s3 (docs/moving-up.md).");
                break;
            case MoveUpOutcome.Refused:
                foreach (string problem in result.Problems)
                {
                    errors.WriteLine("move-up: " + problem);
                }
                errors.WriteLine("move-up: refused; nothing was copied.");
                break;
            default:
                foreach (string problem in result.Problems)
                {
                    errors.WriteLine("move-up: mismatch: " + problem);
                }
                errors.WriteLine($"move-up: verification failed: {Count(result.Problems.Count)} difference(s) between the embedded store and the copy (docs/moving-up.md says what to do).");
                break;
        }
        errors.Flush();
    }

    private void Write(string line)
    {
        output.WriteLine(line);
        output.Flush();
    }

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        < 1024L * 1024 * 1024 => (bytes / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        _ => (bytes / (1024.0 * 1024 * 1024)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
    };
}
