using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Core.Files;
using Wharf.Core.Uploads;

namespace Wharf.Core.Tests;

/// <summary>The running hash's table: bounded per workspace, so one workspace cannot take another's place.</summary>
public sealed class UploadHasherTests
{
    private const string Noisy = "ws_00000000000000000000000000000001";
    private const string Quiet = "ws_00000000000000000000000000000002";

    private static UploadHasher NewHasher(int maxPending) => new(
        new FakeBlobStore(new CallLog()),
        Microsoft.Extensions.Options.Options.Create(new FilesOptions { MaxPendingUploadsPerWorkspace = maxPending }),
        NullLogger<UploadHasher>.Instance);

    private static string Upload(int n) => "upload_" + n.ToString("x32", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void AFullWorkspaceDoesNotStopAnotherFromBeingTracked()
    {
        var hasher = NewHasher(maxPending: 3);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(0, hasher.Reserve(Noisy, Upload(i)));
        }
        Assert.Equal(-1, hasher.Reserve(Noisy, Upload(3)));
        Assert.Equal(3, hasher.Tracked(Noisy));

        // The other workspace has its own room, whatever the first one does.
        Assert.Equal(0, hasher.Reserve(Quiet, Upload(0)));
        Assert.Equal(1, hasher.Reserve(Quiet, Upload(0)));
        Assert.Equal(1, hasher.Tracked(Quiet));

        // An upload already tracked goes on taking places; a forgotten one makes room for another.
        Assert.Equal(1, hasher.Reserve(Noisy, Upload(2)));
        hasher.Forget(Noisy, Upload(0));
        Assert.Equal(0, hasher.Reserve(Noisy, Upload(3)));
        Assert.Equal(3, hasher.Tracked(Noisy));
        Assert.Equal(4, hasher.Tracked());
    }

    [Fact]
    public void ForgettingEveryUploadLeavesNothing()
    {
        var hasher = NewHasher(maxPending: 10);
        for (int i = 0; i < 10; i++)
        {
            hasher.Reserve(Noisy, Upload(i));
            hasher.Finish(Noisy, Upload(i), 0, null);
        }
        hasher.Forget(Noisy, Upload(0));
        hasher.Forget(Noisy, Upload(0)); // twice: no harm
        hasher.Forget(Quiet, Upload(1)); // the same upload id in another workspace is another upload
        Assert.Equal(9, hasher.Tracked(Noisy));
        for (int i = 1; i < 10; i++)
        {
            hasher.Forget(Noisy, Upload(i));
        }
        Assert.Equal(0, hasher.Tracked(Noisy));
        Assert.Equal(0, hasher.Tracked());
    }

    [Fact]
    public async Task ConcurrentReservesNeverTrackMoreThanTheBound()
    {
        var hasher = NewHasher(maxPending: 5);
        await Task.WhenAll(Enumerable.Range(0, 64).Select(i => Task.Run(() => hasher.Reserve(Noisy, Upload(i)))));
        Assert.Equal(5, hasher.Tracked(Noisy));
        Assert.Equal(5, hasher.Tracked());
    }
}
