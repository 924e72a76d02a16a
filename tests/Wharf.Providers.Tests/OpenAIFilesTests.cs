using System.Security.Cryptography;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

public sealed class OpenAIFilesTests(OpenAISimulatorFixture fixture) : IClassFixture<OpenAISimulatorFixture>, IAsyncLifetime
{
    private readonly OpenAISimulator _sim = fixture.Simulator;
    private ProviderHarness _harness = null!;

    private IProvider Provider => _harness["up"];

    public Task InitializeAsync()
    {
        _sim.ClearFaults();
        _harness = ProviderHarness.Start(("up:Type", "openai"), ("up:ApiKey", _sim.ApiKey), ("up:BaseUrl", _sim.BaseUrl.ToString()));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    [Fact]
    public async Task AnUploadSendsTheBytesPurposeAndFilenameAsMultipartAndReturnsTheUpstreamsFile()
    {
        byte[] content = RandomNumberGenerator.GetBytes(300_000);
        var outcome = await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(content), content.Length, "données \"v2\".jsonl", "batch", "application/jsonl"), CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        var file = outcome.Value;
        Assert.StartsWith("file-sim", file.Id, StringComparison.Ordinal);
        Assert.Equal((300_000L, "données \"v2\".jsonl", "batch", "processed"), (file.Bytes, file.Filename, file.Purpose, file.Status));

        var sent = _sim.Requests[^1];
        Assert.Equal(("POST", "/v1/files"), (sent.Method, sent.Path));
        Assert.Equal("Bearer " + _sim.ApiKey, sent.Header("Authorization"));
        Assert.Equal(content, sent.Upload!.Content);
        Assert.Equal(("batch", "données \"v2\".jsonl", "application/jsonl"), (sent.Upload.Purpose, sent.Upload.Filename, sent.Upload.ContentType));
        // The length is declared (computed from the file's), not sent chunked.
        Assert.True(long.Parse(sent.Header("Content-Length")!, System.Globalization.CultureInfo.InvariantCulture) > 300_000);
        Assert.Null(sent.Header("Transfer-Encoding"));
    }

    [Fact]
    public async Task AnUploadStreamsTheFileAsItIsReadInsteadOfBufferingIt()
    {
        // The source gives its second half only once the upstream has the request: a client that buffered the
        // whole file before sending would never get there.
        var source = new GatedStream(first: new byte[1 << 20], second: new byte[1 << 20], _sim.WaitForReceivedAsync(_sim.Received + 1));
        var outcome = await Provider.UploadFileAsync(new UpstreamFileUpload(source, 2 << 20, "big.bin", "user_data", null), CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        Assert.Equal(2L << 20, outcome.Value.Bytes);
        Assert.Equal("application/octet-stream", _sim.Requests[^1].Upload!.ContentType);
    }

    [Fact]
    public async Task AnUploadTheUpstreamRefusesIsItsVerdictOnTheRequest()
    {
        _sim.Enqueue(Fault.Status(400, """{"error":{"message":"Invalid file format for Batch API.","type":"invalid_request_error","param":"file","code":"invalid_file_format"}}"""));
        var failure = (await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream([1, 2, 3]), 3, "x.txt", "batch", null), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.RequestRejected, 400, false), (failure.Category, failure.Status!.Value, failure.Retryable));
        Assert.Equal(("invalid_file_format", "Invalid file format for Batch API.", "file"), (failure.Error!.Code, failure.Error.Message, failure.Error.Param));
    }

    [Fact]
    public async Task AnUploadAnsweredWithoutAFileObjectIsMalformed()
    {
        _sim.Enqueue(Fault.MalformedJson());
        var failure = (await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream([1]), 1, "x.txt", "batch", null), CancellationToken.None)).Failure!;
        Assert.Equal(UpstreamFailureKind.Malformed, failure.Kind);
    }

    [Fact]
    public async Task AnUploadLeftWithoutAnAnswerTimesOut()
    {
        var hold = new Hold();
        _sim.Enqueue(Fault.Hold(hold));
        var upload = Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(new byte[1000]), 1000, "x.txt", "batch", null), CancellationToken.None);
        await _sim.WaitForInFlightAsync(1).WaitAsync(TimeSpan.FromSeconds(10));
        var failure = (await _harness.AdvanceUntilDoneAsync(upload, TimeSpan.FromSeconds(60))).Failure!;
        Assert.Equal(UpstreamFailureKind.Timeout, failure.Kind);
        hold.Release();
    }

    [Fact]
    public async Task AnUploadTheUpstreamStopsReadingTimesOutInsteadOfHangingAndItsBodyIsLeftUnfinished()
    {
        var hold = new Hold();
        _sim.HoldRequestBodies = hold;
        int completed = _sim.Completed;
        int files = _sim.Files.Count;
        var source = new ZeroStream(1L << 30);
        var upload = Provider.UploadFileAsync(new UpstreamFileUpload(source, source.Length, "big.bin", "batch", null), CancellationToken.None);
        await _sim.WaitForInFlightAsync(1).WaitAsync(TimeSpan.FromSeconds(10));

        // The upstream reads nothing: once the buffers between are full, the writes stall.
        await source.WaitForStallAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(source.Position < source.Length);
        _harness.Time.Advance(TimeSpan.FromSeconds(299));
        Assert.False(upload.IsCompleted);

        var failure = (await _harness.AdvanceUntilDoneAsync(upload, TimeSpan.FromSeconds(1))).Failure!;
        Assert.Equal(UpstreamFailureKind.Timeout, failure.Kind);

        // The connection is gone: once the upstream reads again, it finds the body cut short and stores nothing.
        hold.Release();
        await _sim.WaitForCompletedAsync(completed + 1).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(files, _sim.Files.Count);
    }

    [Fact]
    public async Task AnUploadThatKeepsMovingIsNotCutByTheTimeoutHoweverLongItTakesInAll()
    {
        // Each piece of the file takes two thirds of the (300 s) timeout to read: ten of them, far more in all.
        var source = new ZeroStream(10 * 64 * 1024, onRead: () => _harness.Time.Advance(TimeSpan.FromSeconds(200)), pieceBytes: 64 * 1024);
        var outcome = await Provider.UploadFileAsync(new UpstreamFileUpload(source, source.Length, "slow.bin", "batch", null), CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        Assert.Equal(source.Length, outcome.Value.Bytes);
    }

    [Fact]
    public async Task ADeleteRemovesTheUpstreamsCopyAndAnUnknownIdCountsAsDeleted()
    {
        var file = _sim.AddFile("a.txt", "assistants", [1, 2, 3]);
        var deleted = await Provider.DeleteFileAsync(file.Id, CancellationToken.None);
        Assert.True(deleted.IsOk);
        Assert.True(deleted.Value);
        Assert.DoesNotContain(_sim.Files, f => f.Id == file.Id);
        Assert.Equal(("DELETE", "/v1/files/" + file.Id), (_sim.Requests[^1].Method, _sim.Requests[^1].Path));

        var again = await Provider.DeleteFileAsync(file.Id, CancellationToken.None);
        Assert.True(again.IsOk);
        Assert.True(again.Value);
    }

    [Fact]
    public async Task AFailedDeleteIsAFailure()
    {
        _sim.Enqueue(Fault.Status(503));
        var failure = (await Provider.DeleteFileAsync("file-x", CancellationToken.None)).Failure!;
        Assert.Equal((503, true), (failure.Status!.Value, failure.Retryable));
    }

    [Fact]
    public async Task TheListPassesLimitAfterOrderAndPurposeThroughAndMapsThePage()
    {
        foreach (var stale in _sim.Files)
        {
            await Provider.DeleteFileAsync(stale.Id, CancellationToken.None);
        }
        var files = Enumerable.Range(0, 5).Select(i => _sim.AddFile($"f{i}.jsonl", "batch", new byte[i + 1], createdAt: 1_700_000_000 + i)).ToList();
        _sim.AddFile("other.txt", "assistants", [9]);

        var first = await Provider.ListFilesAsync(new UpstreamFileQuery(2, null, "asc", "batch"), CancellationToken.None);
        Assert.True(first.IsOk);
        Assert.Equal([files[0].Id, files[1].Id], first.Value.Data.Select(f => f.Id));
        Assert.True(first.Value.HasMore);
        Assert.Equal("?limit=2&order=asc&purpose=batch", _sim.Requests[^1].Query);
        Assert.Equal((2L, 1_700_000_001L, "f1.jsonl", "batch"), (first.Value.Data[1].Bytes, first.Value.Data[1].CreatedAt, first.Value.Data[1].Filename, first.Value.Data[1].Purpose));

        var last = await Provider.ListFilesAsync(new UpstreamFileQuery(10, files[2].Id, "asc", "batch"), CancellationToken.None);
        Assert.Equal([files[3].Id, files[4].Id], last.Value.Data.Select(f => f.Id));
        Assert.False(last.Value.HasMore);
        Assert.Equal($"?limit=10&after={files[2].Id}&order=asc&purpose=batch", _sim.Requests[^1].Query);

        var all = await Provider.ListFilesAsync(new UpstreamFileQuery(null, null, null, null), CancellationToken.None);
        Assert.Equal(6, all.Value.Data.Count);
        Assert.Equal("", _sim.Requests[^1].Query);
    }

    [Fact]
    public async Task AListTheUpstreamRefusesIsAFailure()
    {
        _sim.Enqueue(Fault.Status(401));
        var failure = (await Provider.ListFilesAsync(new UpstreamFileQuery(null, null, null, null), CancellationToken.None)).Failure!;
        Assert.Equal(FailureCategory.CredentialsInvalidOrForbidden, failure.Category);
    }

    /// <summary>
    /// <paramref name="length"/> zero bytes, at most <paramref name="pieceBytes"/> a read, each read first running
    /// <paramref name="onRead"/>; tells when the reads stop (the writer they feed is stalled).
    /// </summary>
    private sealed class ZeroStream(long length, Action? onRead = null, int pieceBytes = int.MaxValue) : AsyncReadOnlyStream
    {
        private long _position;

        public override long Length => length;

        public override long Position
        {
            get => Interlocked.Read(ref _position);
            set => throw new NotSupportedException();
        }

        /// <summary>Completes once no read came for half a second while the stream was not at its end.</summary>
        public async Task WaitForStallAsync()
        {
            long seen = -1;
            while (true)
            {
                await Task.Delay(500);
                long now = Position;
                if (now == seen && now < length)
                {
                    return;
                }
                seen = now;
            }
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            onRead?.Invoke();
            int count = (int)Math.Min(Math.Min(buffer.Length, pieceBytes), length - Position);
            buffer.Span[..count].Clear();
            Interlocked.Add(ref _position, count);
            return ValueTask.FromResult(count);
        }

    }

    /// <summary>Gives <paramref name="first"/> at once, then <paramref name="second"/> once <paramref name="gate"/> completes.</summary>
    private sealed class GatedStream(byte[] first, byte[] second, Task gate) : AsyncReadOnlyStream
    {
        private int _position;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position >= first.Length)
            {
                await gate.WaitAsync(cancellationToken);
            }
            byte[] all = _position < first.Length ? first : second;
            int offset = _position < first.Length ? _position : _position - first.Length;
            int count = Math.Min(buffer.Length, all.Length - offset);
            all.AsMemory(offset, count).CopyTo(buffer);
            _position += count;
            return count;
        }

    }

    /// <summary>A stream read only asynchronously, forward, and never written.</summary>
    private abstract class AsyncReadOnlyStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Read asynchronously.");

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
