using Wharf.Storage.MoveUp;
using Wharf.Storage.S3;
using Wharf.Storage.Tests.S3;
using Xunit.Abstractions;

namespace Wharf.Storage.Tests.MoveUp;

/// <summary>Memory use of moving up does not grow with a blob's size: a few staging parts and a hash buffer, never the blob.</summary>
[Collection(AloneCollection.Name)]
public sealed class MoveUpMemoryTests(ITestOutputHelper output)
{
    private const long MiB = 1024 * 1024;

    [Fact]
    public async Task Moving_a_blob_of_two_hundred_mebibytes_allocates_a_few_parts_not_the_blob()
    {
        await using var rig = await MoveUpRig.CreateAsync();
        long length = 200 * MiB + 321;
        const string BlobId = "file-large0000000000000001";
        await using (var staged = (await rig.Disk.StageAsync(new GeneratedContent(length, seed: 7), long.MaxValue, CancellationToken.None))!)
        {
            await staged.CommitAsync(BlobId, CancellationToken.None);
        }
        // Warmed up first: the clients' first requests and the part buffers' pool allocate once per process.
        var (warmStore, _, _) = await SharedS3rver.NewStoreAsync();
        using (warmStore)
        {
            await using var warm = await warmStore.StageAsync(new GeneratedContent(3 * S3BlobStore.PartBytes, seed: 1), long.MaxValue, CancellationToken.None);
        }

        long before = GC.GetTotalAllocatedBytes(precise: true);
        var result = await rig.Mover(blobConcurrency: 1).RunAsync(new RecordedProgress(), CancellationToken.None);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.True(result.Outcome == MoveUpOutcome.Verified, string.Join("\n", result.Problems));
        Assert.Equal((1L, length), (result.Totals.BlobsCopied, result.Totals.BytesCopied));
        output.WriteLine($"moving {length / MiB} MiB allocated {allocated / MiB} MiB ({allocated} bytes)");
        // Every allocation of the process counts (the catalogs opened, the tables mapped and compared too): the bound
        // is a few parts of 8 MiB, while the blob is 25 of them.
        Assert.True(allocated < 6 * S3BlobStore.PartBytes, $"moving {length} bytes allocated {allocated} bytes");
    }
}
