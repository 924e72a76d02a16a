using Wharf.Core.Ids;
using Wharf.Storage.S3;
using Xunit.Abstractions;

namespace Wharf.Storage.Tests.S3;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AloneCollection
{
    /// <summary>Tests that measure the whole process: they run after the others, one at a time.</summary>
    public const string Name = "Alone";
}

/// <summary>Memory use of the S3 store does not grow with the content: a few parts, never the file.</summary>
[Collection(AloneCollection.Name)]
public sealed class S3MemoryTests(ITestOutputHelper output)
{
    private const long MiB = 1024 * 1024;

    [Fact]
    public async Task StagingTwoHundredMebibytesAllocatesAFewPartsNotTheFile()
    {
        var (store, _, _) = await SharedS3rver.NewStoreAsync();
        using var _ = store;
        long length = 200 * MiB + 123;
        // Warmed up first: the client's first request and the part buffers' pool allocate once per process.
        await using (var warm = await store.StageAsync(new GeneratedContent(3 * S3BlobStore.PartBytes, seed: 1), long.MaxValue, CancellationToken.None))
        {
        }

        long before = GC.GetTotalAllocatedBytes(precise: true);
        await using var staged = await store.StageAsync(new GeneratedContent(length, seed: 2), long.MaxValue, CancellationToken.None);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.NotNull(staged);
        Assert.Equal(length, staged.Length);
        output.WriteLine($"staging {length / MiB} MiB allocated {allocated / MiB} MiB ({allocated} bytes)");
        // Every allocation of the process counts, not only the live ones: the bound is a few parts of 8 MiB.
        Assert.True(allocated < 4 * S3BlobStore.PartBytes, $"staging {length} bytes allocated {allocated} bytes");
        Assert.Equal(GeneratedContent.Sha256(length, seed: 2), staged.Sha256);
        await staged.CommitAsync(WharfIds.File(new IdGenerator(TimeProvider.System).Next()), CancellationToken.None);
    }
}
