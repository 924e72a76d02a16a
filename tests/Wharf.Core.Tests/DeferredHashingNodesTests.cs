using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Leases;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;

namespace Wharf.Core.Tests;

/// <summary>
/// The background SHA-256 pass on several nodes sharing one catalog and one blob store: a file is read by one node at a
/// time, whichever node queued it, and what a node that died or stopped left is hashed by another.
/// </summary>
public sealed class DeferredHashingNodesTests
{
    private const string Ws = "ws_0000000000000000000000000000000a";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly CallLog _log = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeFileCatalog _files;
    private readonly FakeBlobStore _blobs;
    private readonly GatedBlobStore _gated;
    private readonly FakeUploadCatalog _uploads;

    public DeferredHashingNodesTests()
    {
        _files = new FakeFileCatalog(_log);
        _blobs = new FakeBlobStore(_log);
        _gated = new GatedBlobStore(_blobs);
        _uploads = new FakeUploadCatalog(_log, _files);
    }

    private static CancellationToken Ct => CancellationToken.None;

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private (DeferredFileHasher Hasher, NodeIdentity Node) NewNode()
    {
        var node = new NodeIdentity();
        return (new DeferredFileHasher(_files, _uploads, _gated, node, _time, NullLogger<DeferredFileHasher>.Instance), node);
    }

    /// <summary>A file completed without its SHA-256, its bytes in the store; returns it with the SHA-256 it must get.</summary>
    private (FileRecord File, string Sha256) UnhashedFile(int size = 4096)
    {
        byte[] bytes = RandomNumberGenerator.GetBytes(size);
        var file = new FileRecord
        {
            Id = WharfIds.File(new IdGenerator(TimeProvider.System).Next()),
            WorkspaceId = Ws, Bytes = size, CreatedAt = 1, Filename = "big.bin", Purpose = "assistants",
            Status = FileStatus.Processed, Provider = "local", Sha256 = null,
        };
        _files.Files.Add(file.Id, file);
        _blobs.Blobs[file.Id] = bytes;
        return (file, Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    private bool Logged(string call)
    {
        lock (_log.Calls)
        {
            return _log.Calls.Contains(call);
        }
    }

    private int CountLogged(string call)
    {
        lock (_log.Calls)
        {
            return _log.Calls.Count(c => c == call);
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting until " + what);
            await Task.Delay(5);
        }
    }

    private static async Task StopAsync(CancellationTokenSource stop, Task running)
    {
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [Fact]
    public async Task A_file_queued_on_two_nodes_is_read_by_the_one_that_claimed_it_only()
    {
        var (file, sha) = UnhashedFile();
        var (a, nodeA) = NewNode();
        var (b, nodeB) = NewNode();
        _gated.Close();

        using var stopA = new CancellationTokenSource();
        var runningA = a.RunAsync(stopA.Token); // finds the file in the catalog, claims it, and blocks on its read
        await WaitUntilAsync(() => _gated.Waiting == 1, "node A reads the file");
        Assert.Equal(nodeA.Id, ClaimOf(file.Id).Owner);

        // Node B's sweep does not queue it (it is claimed), and a completion on node B that queues it is turned away.
        Assert.Equal(0, await b.EnqueueUnhashedAsync(Ct));
        Assert.True(b.Enqueue(Ws, file.Id));
        using var stopB = new CancellationTokenSource();
        var runningB = b.RunAsync(stopB.Token);
        await WaitUntilAsync(() => Logged($"claim-hashing:{file.Id}:{nodeB.Id}"), "node B asks for the file");
        await Task.Delay(50);
        Assert.Equal(1, _gated.Opens); // node B never opened it

        _gated.Open();
        await WaitUntilAsync(() => _files.Files[file.Id].Sha256 is not null, "node A sets the SHA-256");
        Assert.Equal(sha, _files.Files[file.Id].Sha256);
        Assert.Equal(1, _gated.Opens);
        Assert.Equal(1, CountLogged("set-sha256:" + file.Id));
        await StopAsync(stopA, runningA);
        await StopAsync(stopB, runningB);
    }

    [Fact]
    public async Task A_claim_left_by_a_node_that_died_runs_out_and_another_node_hashes_the_file()
    {
        var (file, sha) = UnhashedFile();
        // A node claimed the file, then died: no renewal, no release.
        Assert.True(await _files.ClaimHashingAsync(Ws, file.Id, "node_dead000000000000", NowMs, NowMs + (long)DeferredFileHasher.ClaimLength.TotalMilliseconds, Ct));
        var (b, nodeB) = NewNode();

        Assert.Equal(0, await b.EnqueueUnhashedAsync(Ct));
        _time.Advance(DeferredFileHasher.ClaimLength - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, await b.EnqueueUnhashedAsync(Ct));
        _time.Advance(TimeSpan.FromMilliseconds(1));

        using var stop = new CancellationTokenSource();
        var running = b.RunAsync(stop.Token); // its first scan is what a sweep does: the file is queued and hashed
        await WaitUntilAsync(() => _files.Files[file.Id].Sha256 is not null, "node B sets the SHA-256");
        Assert.Equal(sha, _files.Files[file.Id].Sha256);
        Assert.Equal(nodeB.Id, ClaimOf(file.Id).Owner);
        await StopAsync(stop, running);
    }

    [Fact]
    public async Task A_node_that_stops_mid_pass_gives_its_claim_up_and_another_node_hashes_the_file_at_once()
    {
        var (file, sha) = UnhashedFile();
        var (a, nodeA) = NewNode();
        var (b, _) = NewNode();
        _gated.Close();
        using var stopA = new CancellationTokenSource();
        var runningA = a.RunAsync(stopA.Token);
        await WaitUntilAsync(() => _gated.Waiting == 1, "node A reads the file");

        await StopAsync(stopA, runningA);
        Assert.True(Logged($"release-hashing:{file.Id}:{nodeA.Id}"));
        Assert.Null(_files.Files[file.Id].Sha256);

        _gated.Open();
        Assert.Equal(1, await b.EnqueueUnhashedAsync(Ct)); // no waiting for the claim to run out
        using var stopB = new CancellationTokenSource();
        var runningB = b.RunAsync(stopB.Token);
        await WaitUntilAsync(() => _files.Files[file.Id].Sha256 is not null, "node B sets the SHA-256");
        Assert.Equal(sha, _files.Files[file.Id].Sha256);
        await StopAsync(stopB, runningB);
    }

    [Fact]
    public async Task A_failed_pass_rests_the_file_on_every_node()
    {
        var (broken, _) = UnhashedFile();
        _blobs.Blobs.TryRemove(broken.Id, out _); // its bytes are lost: the pass cannot succeed
        var (a, nodeA) = NewNode();
        var (b, _) = NewNode();

        using var stopA = new CancellationTokenSource();
        var runningA = a.RunAsync(stopA.Token);
        await WaitUntilAsync(() => Logged($"claim-hashing:{broken.Id}:{nodeA.Id}") && ClaimOf(broken.Id).Until == NowMs + (long)DeferredFileHasher.RetryAfter.TotalMilliseconds,
            "node A rests the file");
        await StopAsync(stopA, runningA);
        Assert.Equal(nodeA.Id, ClaimOf(broken.Id).Owner); // kept through the stop: it rests, it is not being read

        // Not on node A only: node B leaves it alone too, until the rest is over.
        Assert.Equal(0, await b.EnqueueUnhashedAsync(Ct));
        _time.Advance(DeferredFileHasher.RetryAfter - TimeSpan.FromSeconds(1));
        Assert.Equal(0, await b.EnqueueUnhashedAsync(Ct));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await b.EnqueueUnhashedAsync(Ct));
    }

    [Fact]
    public async Task A_claim_is_renewed_while_a_long_pass_runs_and_a_pass_whose_claim_was_taken_over_stops()
    {
        var (file, _) = UnhashedFile();
        var (a, nodeA) = NewNode();
        _gated.Close();
        using var stopA = new CancellationTokenSource();
        var runningA = a.RunAsync(stopA.Token);
        await WaitUntilAsync(() => _gated.Waiting == 1, "node A reads the file");
        long claimMs = (long)DeferredFileHasher.ClaimLength.TotalMilliseconds;
        long firstDeadline = ClaimOf(file.Id).Until;
        Assert.Equal(NowMs + claimMs, firstDeadline);

        // Every third of the claim, node A renews it: past its first deadline, another node is still refused.
        _time.Advance(DeferredFileHasher.ClaimLength / 3);
        await WaitUntilAsync(() => ClaimOf(file.Id).Until == NowMs + claimMs, "node A renews its claim");
        _time.Advance(DeferredFileHasher.ClaimLength / 3 * 2);
        await WaitUntilAsync(() => ClaimOf(file.Id).Until == NowMs + claimMs, "node A renews its claim again");
        Assert.True(NowMs >= firstDeadline);
        Assert.False(await _files.ClaimHashingAsync(Ws, file.Id, "node_other00000000000", NowMs, NowMs + claimMs, Ct));
        Assert.Equal(nodeA.Id, ClaimOf(file.Id).Owner);

        // Node A was paused past its claim and another node took the file over: A's next renewal fails, its pass stops.
        lock (_files.HashClaims)
        {
            _files.HashClaims[file.Id] = ("node_other00000000000", NowMs + 10 * claimMs);
        }
        _time.Advance(DeferredFileHasher.ClaimLength / 3);
        await WaitUntilAsync(() => _gated.Waiting == 0, "node A's read is cancelled");
        _gated.Open();
        await Task.Delay(50);
        Assert.Null(_files.Files[file.Id].Sha256);
        Assert.False(Logged("set-sha256:" + file.Id));
        Assert.False(runningA.IsCompleted); // the node goes on with its queue
        await StopAsync(stopA, runningA);
        Assert.Equal("node_other00000000000", ClaimOf(file.Id).Owner); // its stop gives up nothing of another node's
    }

    private (string Owner, long Until) ClaimOf(string fileId)
    {
        lock (_files.HashClaims)
        {
            return _files.HashClaims[fileId];
        }
    }

    /// <summary>A blob store whose reads wait at a gate the test opens, so a pass can be held in the middle.</summary>
    private sealed class GatedBlobStore(FakeBlobStore inner) : IBlobStore
    {
        private volatile TaskCompletionSource _gate = Opened();
        private int _waiting;
        private int _opens;

        public int Waiting => Volatile.Read(ref _waiting);

        public int Opens => Volatile.Read(ref _opens);

        public void Close() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => _gate.TrySetResult();

        private static TaskCompletionSource Opened()
        {
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            gate.SetResult();
            return gate;
        }

        public async Task<Stream?> OpenReadAsync(string blobId, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _opens);
            Interlocked.Increment(ref _waiting);
            try
            {
                await _gate.Task.WaitAsync(cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
            return await inner.OpenReadAsync(blobId, cancellationToken);
        }

        public Task<StagedBlob?> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken) => inner.StageAsync(content, maxBytes, cancellationToken);

        public Task DeleteAsync(string blobId, CancellationToken cancellationToken) => inner.DeleteAsync(blobId, cancellationToken);

        public IAsyncEnumerable<BlobEntry> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

        public Task<int> SweepStagingAsync(DateTimeOffset olderThan, CancellationToken cancellationToken) => inner.SweepStagingAsync(olderThan, cancellationToken);

        public Task CheckAsync(CancellationToken cancellationToken) => inner.CheckAsync(cancellationToken);
    }
}
