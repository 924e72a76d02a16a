using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Tests;

/// <summary>One instance of a storage back-end under test: catalogs for files, workspaces and keys, and a blob store.</summary>
public interface IStorageBackend : IAsyncDisposable
{
    IFileCatalog Files { get; }

    IKeyCatalog Keys { get; }

    IWorkspaceCatalog Workspaces { get; }

    IBlobStore Blobs { get; }

    IUploadCatalog Uploads { get; }

    IFileCopyCatalog Copies { get; }

    IBatchCatalog Batches { get; }

    ILeaseCatalog Leases { get; }

    IDeferredBlobDeletions DeferredBlobs { get; }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>A fresh, empty directory under the system temp dir, deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "wharf-storage-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>A non-seekable stream that hands out its content in small chunks of random size, as a network would.</summary>
public sealed class TrickleStream(byte[] content, int seed, int maxChunk = 7000) : Stream
{
    private readonly Random _random = new(seed);
    private int _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = Math.Min(Math.Min(buffer.Length, content.Length - _position), _random.Next(1, maxChunk + 1));
        content.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        return Read(buffer.Span);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

internal static class TestFiles
{
    public static FileRecord Make(string workspaceId, string id, long createdAt = 1_750_000_000, string purpose = "assistants",
        string status = "processed", string provider = "local", string? collection = null,
        IReadOnlyDictionary<string, string>? metadata = null, long? expiresAt = null, long bytes = 42) => new()
        {
            Id = id,
            WorkspaceId = workspaceId,
            Bytes = bytes,
            CreatedAt = createdAt,
            Filename = "file.txt",
            Purpose = purpose,
            Status = status,
            Provider = provider,
            Collection = collection,
            Metadata = metadata ?? FileRecord.EmptyMetadata,
            ExpiresAt = expiresAt,
            Sha256 = new string('0', 64),
        };
}
