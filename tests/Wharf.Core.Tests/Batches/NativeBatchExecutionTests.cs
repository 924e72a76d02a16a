using System.Text;
using System.Text.Json;
using Wharf.Core.Batches;
using Wharf.Core.Ids;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Core.Tests.Batches;

public sealed class NativeBatchExecutionTests(BatchSimulatorFixture fixture) : IClassFixture<BatchSimulatorFixture>
{
    private readonly OpenAISimulator _sim = fixture.Simulator;

    /// <summary>The batch creates the simulator received after its first <paramref name="skip"/> requests.</summary>
    private IEnumerable<RecordedRequest> Creates(int skip) =>
        _sim.Requests.Skip(skip).Where(r => r.Method == "POST" && r.Path == "/v1/batches");

    private IEnumerable<RecordedRequest> Polls(string upstreamId) =>
        _sim.Requests.Where(r => r.Method == "GET" && r.Path == "/v1/batches/" + upstreamId);

    private string SimulatedFileText(string fileId) => Encoding.UTF8.GetString(_sim.Files.Single(f => f.Id == fileId).Content);

    [Fact]
    public async Task ABatchRunsOnTheFirstRoutedProviderWithABatchApiAndItsResultsAreCopiedIntoWharf()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        _sim.SetRule("broken", Fault.Status(400, """{"error":{"message":"Unsupported value: 'messages'.","type":"invalid_request_error","param":"messages","code":null}}"""));
        string lines = NativeBatchHarness.Lines("gpt-4o-mini", "broken", "gpt-4o-mini");
        string input = await harness.UploadAsync(lines);
        var batch = await harness.CreateBatchAsync(input, metadataJson: """{"team":"search"}""");
        int started = _sim.Requests.Count;

        var ended = await harness.DriveAsync(batch.Id, "node-a");

        // "gpt-4o-mini" routes to demo (a mock: no batch API), then up: up is chosen.
        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Equal("up", ended.Native!.Provider);
        var upstream = Assert.Single(_sim.Batches, b => b.Id == ended.Native.UpstreamBatchId);
        Assert.Single(Creates(started));
        Assert.Equal(batch.Id, upstream.Metadata[NativeBatchExecution.MetadataKey]);
        Assert.Equal("search", upstream.Metadata["team"]);
        Assert.Equal(lines, Encoding.UTF8.GetString(_sim.Files.Single(f => f.Id == upstream.InputFileId).Content));
        Assert.Equal(new BatchRequestCounts(3, 2, 1), ended.RequestCounts);
        int words = _sim.ReplyText.Split(' ').Length;
        Assert.Equal(new BatchUsage(18, 0, 2 * words, 0, 18 + 2 * words), ended.Usage);
        Assert.NotNull(ended.InProgressAt);
        Assert.NotNull(ended.FinalizingAt);
        Assert.NotNull(ended.CompletedAt);
        Assert.Empty(ended.Errors);

        // The result files are Wharf's own files, byte for byte the upstream's.
        Assert.Equal(SimulatedFileText(upstream.OutputFileId!), await harness.ReadFileAsync(ended.OutputFileId!));
        Assert.Equal(SimulatedFileText(upstream.ErrorFileId!), await harness.ReadFileAsync(ended.ErrorFileId!));
        var output = (await harness.ReadFileAsync(ended.OutputFileId!)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["req-1", "req-3"], output.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("custom_id").GetString()));
        var file = (await harness.Files.GetAsync(harness.Workspace.Id, ended.OutputFileId!, CancellationToken.None)).Value;
        Assert.Equal("batch_output", file.Purpose);
    }

    [Fact]
    public async Task ANamedProviderIsUsedWhateverTheLinesModelRoutesTo()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("only-on-mock")), provider: "up");

        var ended = await harness.DriveAsync(batch.Id, "node-a");

        Assert.Equal((BatchStatus.Completed, "up"), (ended.Status, ended.Native!.Provider));
    }

    [Fact]
    public async Task AModelNoProviderWithABatchApiServesFailsTheBatchSayingWhyWithoutCallingUpstream()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("only-on-mock", "gpt-4o-mini")));
        int received = _sim.Received;

        await harness.Execution.RunAsync(await harness.ClaimAsync(batch.Id, "node-a"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        var ended = await harness.GetAsync(batch.Id);
        Assert.Equal(BatchStatus.Failed, ended.Status);
        var error = Assert.Single(ended.Errors);
        Assert.Equal(("no_batch_provider", 1), (error.Code, error.Line));
        Assert.Contains("'demo'", error.Message, StringComparison.Ordinal);
        Assert.Contains("gateway", error.Message, StringComparison.Ordinal);
        Assert.Null(ended.Native);
        Assert.Equal(received, _sim.Received);
    }

    [Fact]
    public async Task ACrashBetweenTheUpstreamCreateAndItsRecordResumesWithThatBatchInsteadOfCreatingASecond()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        string input = await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini", "gpt-4o-mini"));
        var batch = await harness.CreateBatchAsync(input);
        int started = _sim.Requests.Count;

        // The first owner recorded its choice, copied the input and created the upstream batch, then died before
        // recording the batch's id.
        var first = await harness.ClaimAsync(batch.Id, "node-a");
        Assert.NotNull(await harness.Catalog.UpdateAsync(first.Batch with { Native = new NativeBatchState("up", null, 0, 0) }, "node-a", CancellationToken.None));
        string copy = (await harness.Copies.EnsureCopyAsync(harness.Workspace.Id, input, harness.Upstream, "input_file_id", CancellationToken.None)).Value.Value;
        var orphan = (await harness.Upstream.CreateBatchAsync(
            new UpstreamBatchCreate(copy, "/v1/chat/completions", "24h", new Dictionary<string, string> { [NativeBatchExecution.MetadataKey] = batch.Id }), CancellationToken.None)).Value;
        // Another batch, newer, of another Wharf batch: listed first, and not ours.
        var other = (await harness.Upstream.CreateBatchAsync(
            new UpstreamBatchCreate(copy, "/v1/chat/completions", "24h", new Dictionary<string, string> { [NativeBatchExecution.MetadataKey] = "batch_someone_else" }), CancellationToken.None)).Value;
        await harness.Catalog.ReleaseLeaseAsync(batch.Id, "node-a", CancellationToken.None);

        var ended = await harness.DriveAsync(batch.Id, "node-b");

        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Equal(orphan.Id, ended.Native!.UpstreamBatchId);
        Assert.NotEqual(other.Id, ended.Native.UpstreamBatchId);
        Assert.Equal(2, Creates(started).Count()); // the two made above: none by the resumed run
        Assert.Contains(_sim.Requests, r => r.Method == "GET" && r.Path == "/v1/batches");
        Assert.Equal(new BatchRequestCounts(2, 2, 0), ended.RequestCounts);
    }

    /// <summary>
    /// A provider whose batches carry no metadata (Anthropic's): a create whose answer is lost may have been done, and
    /// a batch made there could not be found again, so the batch fails saying so instead of creating a second one that
    /// would run and be billed twice; and nothing is ever looked up in its list.
    /// </summary>
    [Theory]
    [InlineData(UpstreamFailureKind.ConnectionFailed)]
    [InlineData(UpstreamFailureKind.Timeout)]
    [InlineData(UpstreamFailureKind.Answered)] // a 500, which may come after the work was accepted
    public async Task ACreateWithoutAnAnswerOnAProviderWhoseBatchesCarryNoMetadataFailsTheBatchInsteadOfCreatingTwice(UpstreamFailureKind lost)
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim, up: inner => new AnswerLosingProvider(inner, lost));
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini")));
        int started = _sim.Requests.Count;

        var ended = await harness.DriveAsync(batch.Id, "node-a");

        Assert.Equal(BatchStatus.Failed, ended.Status);
        var error = Assert.Single(ended.Errors!);
        Assert.Equal(NativeBatchExecution.UpstreamBatchUnknown, error.Code);
        Assert.Contains("'up'", error.Message, StringComparison.Ordinal);
        Assert.Single(Creates(started)); // the one whose answer was lost: none again
        Assert.DoesNotContain(_sim.Requests.Skip(started), r => r.Method == "GET" && r.Path == "/v1/batches");
    }

    /// <summary>A provider whose batches carry no metadata and whose answers to a batch create are lost after it is done.</summary>
    private sealed class AnswerLosingProvider(IProvider inner, UpstreamFailureKind lost) : IProvider
    {
        public string Id => inner.Id;

        public string Type => inner.Type;

        public IReadOnlySet<ProviderCapability> Capabilities => inner.Capabilities;

        public bool BatchesCarryMetadata => false;

        public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) => inner.SendModelRequestAsync(call, cancellationToken);

        public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) => inner.UploadFileAsync(upload, cancellationToken);

        public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) => inner.DeleteFileAsync(upstreamFileId, cancellationToken);

        public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) => inner.ListFilesAsync(query, cancellationToken);

        public async Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken)
        {
            Assert.True((await inner.CreateBatchAsync(batch, cancellationToken)).IsOk);
            return lost switch
            {
                UpstreamFailureKind.Timeout => UpstreamFailure.Timeout(),
                UpstreamFailureKind.Answered => UpstreamFailure.FromAnswer(500, null, null, null),
                _ => UpstreamFailure.ConnectionFailed("The connection dropped."),
            };
        }

        public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) => inner.GetBatchAsync(upstreamBatchId, cancellationToken);

        public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) => inner.ListBatchesAsync(query, cancellationToken);
    }

    [Fact]
    public async Task AResumeWithTheProviderChosenButNothingUpstreamLooksFirstThenCreatesOnce()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini")));
        int started = _sim.Requests.Count;
        var first = await harness.ClaimAsync(batch.Id, "node-a");
        Assert.NotNull(await harness.Catalog.UpdateAsync(first.Batch with { Native = new NativeBatchState("up", null, 0, 0) }, "node-a", CancellationToken.None));
        await harness.Catalog.ReleaseLeaseAsync(batch.Id, "node-a", CancellationToken.None);
        int before = _sim.Requests.Count;

        var ended = await harness.DriveAsync(batch.Id, "node-b");

        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Single(Creates(started));
        var calls = _sim.Requests.Skip(before).Select(r => (r.Method, r.Path)).ToList();
        int looked = calls.IndexOf(("GET", "/v1/batches"));
        Assert.True(looked >= 0 && looked < calls.IndexOf(("POST", "/v1/batches")), string.Join(", ", calls));
    }

    [Fact]
    public async Task PollsBackOffDoublingToTheMaximumAndARestartResumesTheStoredSchedule()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim, minPollSeconds: 5, maxPollSeconds: 20);
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini")));
        int started = _sim.Requests.Count;

        var polled = await harness.DriveAsync(batch.Id, "node-a", b => b.Native?.Polls == 4);

        string upstreamId = polled.Native!.UpstreamBatchId!;
        long created = Creates(started).Single().At.ToUnixTimeSeconds();
        long[] pollTimes = [.. Polls(upstreamId).Select(r => r.At.ToUnixTimeSeconds())];
        Assert.Equal([created + 5, created + 15, created + 35], pollTimes);
        Assert.Equal(created + 55, polled.Native.NextPollAt);
        Assert.Equal(BatchStatus.InProgress, polled.Status);

        // Nobody holds it meanwhile, and no node is handed it before the stored time: its next poll is at it.
        Assert.Null(await harness.ClaimableAsync());
        harness.Time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(created + 54));
        Assert.Null(await harness.ClaimableAsync());
        var after = await harness.DriveAsync(batch.Id, "node-b", b => b.Native?.Polls == 5);
        Assert.Equal(created + 55, Polls(upstreamId).Last().At.ToUnixTimeSeconds());
        Assert.Equal(created + 75, after.Native!.NextPollAt);

        hold.Release();
        Assert.Equal(BatchStatus.Completed, (await harness.DriveAsync(batch.Id, "node-b")).Status);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ACancelIsPassedOnUpstreamAndTheBatchEndsCancelledWithWhatWasDone(bool askedOnThisNode)
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        _sim.HoldAfterLines = 1;
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini")));
        var running = await harness.DriveAsync(batch.Id, "node-a", b => b.Native?.UpstreamBatchId is not null);
        var upstream = _sim.Batches.Single(b => b.Id == running.Native!.UpstreamBatchId);
        while (upstream.Counts.Completed < 1)
        {
            await Task.Delay(2);
        }
        Assert.True(running.Native!.NextPollAt > harness.Time.GetUtcNow().ToUnixTimeSeconds());
        Assert.Null(await harness.ClaimableAsync());

        // The cancel makes the batch due at once: it is handed out and the cancel passed on without waiting for the poll.
        long askedAt = harness.Time.GetUtcNow().ToUnixTimeSeconds();
        Assert.True((await harness.Batches.CancelAsync(harness.Workspace.Id, batch.Id, CancellationToken.None)).IsOk);
        Assert.Equal(batch.Id, await harness.ClaimableAsync());
        using var cancelHere = new CancellationTokenSource();
        if (askedOnThisNode)
        {
            cancelHere.Cancel(); // what BatchSignals does for a cancel asked on this node
        }
        var ended = await harness.DriveAsync(batch.Id, askedOnThisNode ? "node-a" : "node-b", cancelRequested: cancelHere.Token);

        Assert.Equal(BatchStatus.Cancelled, ended.Status);
        Assert.NotNull(ended.CancellingAt);
        Assert.NotNull(ended.CancelledAt);
        var cancel = Assert.Single(_sim.Requests, r => r.Method == "POST" && r.Path == $"/v1/batches/{upstream.Id}/cancel");
        Assert.Equal(askedAt, cancel.At.ToUnixTimeSeconds());
        Assert.Equal("cancelled", upstream.Status);
        Assert.Equal(new BatchRequestCounts(3, 1, 0), ended.RequestCounts);
        string output = await harness.ReadFileAsync(ended.OutputFileId!);
        Assert.Equal("req-1", JsonDocument.Parse(output.Trim()).RootElement.GetProperty("custom_id").GetString());
        Assert.Null(ended.ErrorFileId);
    }

    [Fact]
    public async Task ACancelAskedBeforeAnythingWentUpstreamEndsTheBatchWithoutCreatingOne()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini")));
        int started = _sim.Requests.Count;
        Assert.True((await harness.Batches.CancelAsync(harness.Workspace.Id, batch.Id, CancellationToken.None)).IsOk);

        await harness.Execution.RunAsync(await harness.ClaimAsync(batch.Id, "node-a"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(BatchStatus.Cancelled, (await harness.GetAsync(batch.Id)).Status);
        Assert.Empty(Creates(started));
    }

    [Fact]
    public async Task ABatchThatFailsUpstreamFailsWithTheUpstreamsErrors()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        _sim.EndNextBatch(SimulatedBatchEnd.Failed, "token_limit_exceeded", "Enqueued token limit reached for gpt-4o-mini.");
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini")));

        var ended = await harness.DriveAsync(batch.Id, "node-a");

        Assert.Equal(BatchStatus.Failed, ended.Status);
        Assert.NotNull(ended.FailedAt);
        var error = Assert.Single(ended.Errors);
        Assert.Equal(("token_limit_exceeded", "Enqueued token limit reached for gpt-4o-mini."), (error.Code, error.Message));
        Assert.Null(ended.OutputFileId);
        Assert.Null(ended.ErrorFileId);
    }

    [Fact]
    public async Task ABatchThatExpiresUpstreamExpiresWithItsPartialResults()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        _sim.EndNextBatch(SimulatedBatchEnd.Expired);
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini")));

        var ended = await harness.DriveAsync(batch.Id, "node-a");

        Assert.Equal((BatchStatus.Expired, new BatchRequestCounts(4, 2, 0)), (ended.Status, ended.RequestCounts));
        Assert.NotNull(ended.ExpiredAt);
        Assert.Equal(2, (await harness.ReadFileAsync(ended.OutputFileId!)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task PollFailuresAreTheUpstreamsAndAreRetriedAtTheNextPoll()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini")));
        var created = await harness.DriveAsync(batch.Id, "node-a", b => b.Native?.UpstreamBatchId is not null);
        _sim.Always = Fault.Status(503);

        var failing = await harness.DriveAsync(batch.Id, "node-a", b => b.Native?.Polls >= 4);
        // Still as the create's answer left it: no poll answered since.
        Assert.Equal(BatchStatus.Validating, failing.Status);
        Assert.Empty(failing.Errors);
        Assert.True(Polls(created.Native!.UpstreamBatchId!).Count() >= 3);

        _sim.Always = null;
        hold.Release();
        Assert.Equal(BatchStatus.Completed, (await harness.DriveAsync(batch.Id, "node-a")).Status);
    }

    [Fact]
    public async Task PollFailuresThatPersistPastTheWindowFailTheBatchNamingItsUpstreamBatch()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim, minPollSeconds: 60, maxPollSeconds: 3600);
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini")));
        var created = await harness.DriveAsync(batch.Id, "node-a", b => b.Native?.UpstreamBatchId is not null);
        _sim.Always = Fault.Status(503);

        var ended = await harness.DriveAsync(batch.Id, "node-a");

        Assert.Equal(BatchStatus.Failed, ended.Status);
        var error = Assert.Single(ended.Errors);
        Assert.Equal("upstream_unavailable", error.Code);
        Assert.Contains(created.Native!.UpstreamBatchId!, error.Message, StringComparison.Ordinal);
        Assert.True(harness.Time.GetUtcNow().ToUnixTimeSeconds() >= batch.ExpiresAt);
        hold.Release();
    }

    [Fact]
    public async Task AResumeWhileCopyingTheResultsCopiesOnlyTheFileNotCopiedYet()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        _sim.SetRule("broken", Fault.Status(400));
        string input = await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini", "broken"));
        var batch = await harness.CreateBatchAsync(input);
        string copy = (await harness.Copies.EnsureCopyAsync(harness.Workspace.Id, input, harness.Upstream, "input_file_id", CancellationToken.None)).Value.Value;
        var upstream = (await harness.Upstream.CreateBatchAsync(
            new UpstreamBatchCreate(copy, "/v1/chat/completions", "24h", new Dictionary<string, string> { [NativeBatchExecution.MetadataKey] = batch.Id }), CancellationToken.None)).Value;
        var simulated = await _sim.WaitForBatchEndAsync(upstream.Id);

        // The first owner saw it end and copied its output file, then died before the error file.
        var first = await harness.ClaimAsync(batch.Id, "node-a");
        Assert.NotNull(await harness.Catalog.UpdateAsync(first.Batch with { Status = BatchStatus.Finalizing, Native = new NativeBatchState("up", upstream.Id, 0, 1) }, "node-a", CancellationToken.None));
        var download = (await harness.Upstream.DownloadFileAsync(simulated.OutputFileId!, CancellationToken.None)).Value;
        await using (download)
        {
            await using var staged = (await harness.Blobs.StageAsync(download.Content, long.MaxValue, CancellationToken.None))!;
            string part = WharfIds.Hex(WharfIds.PartPrefix, UInt128.Parse("123456789", System.Globalization.CultureInfo.InvariantCulture));
            await staged.CommitAsync(part, CancellationToken.None);
            Assert.True(await harness.Catalog.RecordChunkAsync(new BatchChunk
            {
                BatchId = batch.Id, WorkspaceId = harness.Workspace.Id, Kind = BatchFileKind.Output, PartId = part,
                Bytes = staged.Length, Sha256 = staged.Sha256, CreatedAt = 1, Lines = [],
            }, "node-a", CancellationToken.None));
        }
        await harness.Catalog.ReleaseLeaseAsync(batch.Id, "node-a", CancellationToken.None);
        string outputPath = $"/v1/files/{simulated.OutputFileId}/content";
        int outputDownloads = _sim.Requests.Count(r => r.Path == outputPath);

        var ended = await harness.DriveAsync(batch.Id, "node-b");

        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Equal(outputDownloads, _sim.Requests.Count(r => r.Path == outputPath));
        Assert.Equal(SimulatedFileText(simulated.OutputFileId!), await harness.ReadFileAsync(ended.OutputFileId!));
        Assert.Equal(SimulatedFileText(simulated.ErrorFileId!), await harness.ReadFileAsync(ended.ErrorFileId!));
    }

    [Fact]
    public async Task ARunReturnsWhileItsUpstreamBatchRunsAndTheBatchIsHandedOutAgainOnlyWhenItsPollIsDue()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini")));

        // The run creates the upstream batch, stores its next poll and returns: it does not wait holding an engine slot.
        await harness.Execution.RunAsync(await harness.ClaimAsync(batch.Id, "node-a"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await harness.Catalog.ReleaseLeaseAsync(batch.Id, "node-a", CancellationToken.None);

        var waiting = await harness.GetAsync(batch.Id);
        Assert.False(waiting.IsFinal);
        Assert.NotNull(waiting.Native!.UpstreamBatchId);
        long due = waiting.Native.NextPollAt;
        Assert.Equal(harness.Time.GetUtcNow().ToUnixTimeSeconds() + 5, due);
        Assert.Null(await harness.ClaimableAsync());
        harness.Time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(due - 1));
        Assert.Null(await harness.ClaimableAsync());
        harness.Time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(due));
        Assert.Equal(batch.Id, await harness.ClaimableAsync());

        hold.Release();
        Assert.Equal(BatchStatus.Completed, (await harness.DriveAsync(batch.Id, "node-a")).Status);
    }

    [Fact]
    public async Task AStoreFailureWhileCopyingAResultInIsWharfsNotTheUpstreamsAndTheCopyIsTriedAgain()
    {
        FailingStore? store = null;
        await using var harness = await NativeBatchHarness.StartAsync(_sim, store: inner => store = new FailingStore(inner));
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini", "gpt-4o-mini")));
        store!.FailStages(1);

        var ended = await harness.DriveAsync(batch.Id, "node-a");

        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Empty(ended.Errors);
        Assert.Equal(1, store.Failed);
        var upstream = _sim.Batches.Single(b => b.Id == ended.Native!.UpstreamBatchId);
        Assert.Equal(2, _sim.Requests.Count(r => r.Path == $"/v1/files/{upstream.OutputFileId}/content"));
        Assert.Equal(SimulatedFileText(upstream.OutputFileId!), await harness.ReadFileAsync(ended.OutputFileId!));
    }

    [Fact]
    public void ThePollIntervalDoublesFromTheMinimumUpToTheMaximum()
    {
        var options = new BatchesOptions { NativePollMinSeconds = 5, NativePollMaxSeconds = 300 };
        Assert.Equal([5, 10, 20, 40, 80, 160, 300, 300], Enumerable.Range(0, 8).Select(i => NativeBatchExecution.PollInterval(options, i).TotalSeconds));
        Assert.Equal(300, NativeBatchExecution.PollInterval(options, 1000).TotalSeconds);
        Assert.Equal(7, NativeBatchExecution.PollInterval(new BatchesOptions { NativePollMinSeconds = 7, NativePollMaxSeconds = 2 }, 3).TotalSeconds);
    }
}
