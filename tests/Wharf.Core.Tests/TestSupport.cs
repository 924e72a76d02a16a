namespace Wharf.Core.Tests;

/// <summary>A clock that always answers the same instant.</summary>
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}

/// <summary>A clock whose every reading is one millisecond earlier than the one before.</summary>
internal sealed class BackwardsTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _next = start;

    public override DateTimeOffset GetUtcNow()
    {
        var now = _next;
        _next = _next.AddMilliseconds(-1);
        return now;
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}

internal static class ResultAssertions
{
    /// <summary>The result's error, after asserting that it is one.</summary>
    public static Wharf.Core.Errors.WharfError ErrorOf<T>(this Wharf.Core.Errors.Result<T> result)
    {
        Assert.False(result.IsOk, "Expected an error result.");
        return result.Error;
    }
}

/// <summary>Files as a completed upload in parts leaves them, written straight into the fakes.</summary>
internal static class PartBuiltFiles
{
    /// <summary>A completed upload's file: three parts, their blobs, their rows as segments.</summary>
    public static (Wharf.Core.Files.FileRecord File, byte[] Content, List<string> PartIds) Add(
        Wharf.Core.Ids.IdGenerator ids, FakeFileCatalog files, FakeUploadCatalog uploads, FakeBlobStore blobs,
        string workspaceId, long createdAt, long? expiresAt = null)
    {
        string fileId = Wharf.Core.Ids.WharfIds.File(ids.Next());
        string uploadId = Wharf.Core.Ids.WharfIds.Hex(Wharf.Core.Ids.WharfIds.UploadPrefix, ids.Next());
        byte[][] parts = [System.Security.Cryptography.RandomNumberGenerator.GetBytes(1000), System.Security.Cryptography.RandomNumberGenerator.GetBytes(2000), System.Security.Cryptography.RandomNumberGenerator.GetBytes(500)];
        var partIds = new List<string>();
        for (int i = 0; i < parts.Length; i++)
        {
            string partId = Wharf.Core.Ids.WharfIds.Hex(Wharf.Core.Ids.WharfIds.PartPrefix, ids.Next());
            blobs.Blobs[partId] = parts[i];
            uploads.Parts.Add(new FakeUploadCatalog.PartRow(new Wharf.Core.Uploads.UploadPartRecord
            {
                Id = partId, UploadId = uploadId, WorkspaceId = workspaceId, Bytes = parts[i].Length, Sha256 = "", CreatedAt = 1,
            }) { FileId = fileId, Seq = i });
            partIds.Add(partId);
        }
        var file = new Wharf.Core.Files.FileRecord
        {
            Id = fileId, WorkspaceId = workspaceId, Bytes = parts.Sum(p => p.Length), CreatedAt = createdAt, Filename = "f",
            Purpose = "assistants", Status = Wharf.Core.Files.FileStatus.Processed, Provider = "local", Sha256 = null, Segmented = true,
            ExpiresAt = expiresAt,
        };
        files.Files[fileId] = file;
        return (file, [.. parts.SelectMany(p => p)], partIds);
    }
}
