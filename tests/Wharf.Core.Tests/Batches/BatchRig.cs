using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Providers;
using Wharf.Core.Routing;
using Wharf.Core.Tests.Routing;
using Wharf.Storage;

namespace Wharf.Core.Tests.Batches;

/// <summary>
/// A provider for batch tests: answers a chat completion with usage at once, except for a request whose body holds
/// <c>"hold"</c>, which waits until it is cancelled (a line still in flight).
/// </summary>
internal sealed class HoldingProvider(string id) : IProvider
{
    private int _received;

    public string Id => id;

    public string Type => "holding";

    public IReadOnlySet<ProviderCapability> Capabilities { get; } = new HashSet<ProviderCapability>(ProviderCapabilities.ModelEndpoints);

    public int Received => Volatile.Read(ref _received);

    /// <summary>Whether requests holding <c>"hold"</c> wait; when false they are answered as the others.</summary>
    public bool Holding { get; set; } = true;

    public async Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _received);
        if (Holding && Encoding.UTF8.GetString(call.Body.Span).Contains("\"hold\"", StringComparison.Ordinal))
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        string body = Encoding.UTF8.GetString(call.Body.Span);
        if (body.Contains("\"pay\"", StringComparison.Ordinal))
        {
            // Not retried, not the request's fault: every candidate failed, the last one with an answer.
            return UpstreamFailure.FromAnswer(402, null, new UpstreamErrorDetail("insufficient_quota", "Your credit is exhausted.", null, null), null);
        }
        if (body.Contains("\"deep\"", StringComparison.Ordinal))
        {
            // Valid JSON nested deeper than a JsonDocument's default limit, pretty-printed over many lines.
            string deep = string.Concat(Enumerable.Repeat("{\n  \"a\": ", 70)) + "1" + string.Concat(Enumerable.Repeat("\n}", 70));
            return new ModelResponse(200, "application/json", new MemoryStream(Encoding.UTF8.GetBytes(deep)));
        }
        string json = """{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}""";
        return new ModelResponse(200, "application/json", new MemoryStream(Encoding.UTF8.GetBytes(json)));
    }

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFile>>(UpstreamFailure.Unsupported("holding"));

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<bool>>(UpstreamFailure.Unsupported("holding"));

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFilePage>>(UpstreamFailure.Unsupported("holding"));
}

/// <summary>
/// The gateway execution over the real embedded catalog (SQLite) and disk blob store in a temp directory, on a fake
/// clock, with one <see cref="HoldingProvider"/> as the default route.
/// </summary>
internal sealed class BatchRig : IAsyncDisposable
{
    public const int ChunkFlushMilliseconds = 100;

    private readonly ServiceProvider _services;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wharf-core-batches-" + Guid.NewGuid().ToString("N"));

    public BatchRig()
    {
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(Time);
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddEmbeddedStorage(_dir);
        services.AddSingleton<IProviderRegistry>(new TestRegistry(new RegisteredProvider(new FakeProvider("local"), true, null), new RegisteredProvider(Provider, true, null)));
        services.AddOptions();
        services.Configure<RoutingOptions>(o => o.Default = [Provider.Id]);
        services.Configure<BatchesOptions>(o =>
        {
            o.ChunkLines = 4;
            o.ChunkFlushMilliseconds = ChunkFlushMilliseconds;
        });
        services.AddWharfCore();
        services.AddSingleton<System.Diagnostics.Metrics.IMeterFactory>(Meters);
        services.AddSingleton<Wharf.Core.Telemetry.WharfMetrics>();
        _services = services.BuildServiceProvider();
    }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 5, 12, 0, 0, TimeSpan.Zero));

    public HoldingProvider Provider { get; } = new("holding");

    /// <summary>The meters of this rig's <see cref="Wharf.Core.Telemetry.WharfMetrics"/>, for a <see cref="BatchLineCounter"/>.</summary>
    public TestMeterFactory Meters { get; } = new();

    public Workspace Workspace { get; } = new() { Id = "ws_batches", Name = "batches", CreatedAt = 0 };

    public IBatchCatalog Catalog => _services.GetRequiredService<IBatchCatalog>();

    public IWorkspaceCatalog Workspaces => _services.GetRequiredService<IWorkspaceCatalog>();

    public GatewayBatchExecution Execution => (GatewayBatchExecution)_services.GetServices<IBatchExecution>().Single(e => e.Name == BatchExecution.Gateway);

    public static string Line(string customId, bool hold = false) => Line(customId, hold ? "hold" : "go");

    /// <summary>A request line whose message is <paramref name="content"/> (<c>hold</c>, <c>deep</c>, <c>pay</c>: see <see cref="HoldingProvider"/>).</summary>
    public static string Line(string customId, string content) =>
        $$$"""{"custom_id":"{{{customId}}}","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"{{{content}}}"}]}}""";

    /// <summary>A workspace, an input file holding <paramref name="lines"/> and a batch over it, validating.</summary>
    public async Task<BatchRecord> CreateBatchAsync(IEnumerable<string> lines, string prefix = "")
    {
        await _services.GetRequiredService<IWorkspaceCatalog>().InsertWorkspaceAsync(Workspace, CancellationToken.None);
        var files = _services.GetRequiredService<FileService>();
        var staged = await files.StageAsync(Workspace.Id, new MemoryStream(Encoding.UTF8.GetBytes(prefix + string.Join('\n', lines) + "\n")), CancellationToken.None);
        await using var blob = staged.Value;
        var file = await files.CreateAsync(Workspace.Id, new FileUploadRequest { Purpose = "batch", Filename = "in.jsonl" }, blob, CancellationToken.None);
        Assert.True(file.IsOk, file.IsOk ? null : file.Error.Message);
        var batch = await _services.GetRequiredService<BatchService>().CreateAsync(Workspace,
            new BatchCreateRequest { InputFileId = file.Value.Id, Endpoint = "/v1/chat/completions", CompletionWindow = "24h" }, CancellationToken.None);
        Assert.True(batch.IsOk, batch.IsOk ? null : batch.Error.Message);
        return batch.Value;
    }

    public async Task<BatchLease> ClaimAsync(string owner, string batchId)
    {
        long now = Time.GetUtcNow().ToUnixTimeMilliseconds();
        var claimed = await Catalog.ClaimAsync(owner, now, now + 30_000, [], CancellationToken.None);
        Assert.Equal(batchId, claimed?.Id);
        return new BatchLease(claimed!, owner, CancellationToken.None);
    }

    /// <summary>
    /// Runs the batch as <c>owner-a</c> until <paramref name="sent"/> lines were sent, lets its lease run out and has
    /// <c>owner-b</c> claim the batch, then advances the clock until <c>owner-a</c>'s next chunk is refused and its run
    /// stops. Returns <c>owner-b</c>'s lease.
    /// </summary>
    public async Task<BatchLease> TakeOverMidRunAsync(string batchId, int sent)
    {
        var run = Execution.RunAsync(await ClaimAsync("owner-a", batchId), CancellationToken.None);
        await WaitUntilAsync(() => Task.FromResult(Provider.Received == sent), "every line was sent");
        long later = Time.GetUtcNow().AddSeconds(31).ToUnixTimeMilliseconds();
        var takenOver = await Catalog.ClaimAsync("owner-b", later, later + 30_000, [], CancellationToken.None);
        Assert.Equal(batchId, takenOver?.Id);
        await WaitUntilAsync(() =>
        {
            Time.Advance(TimeSpan.FromMilliseconds(ChunkFlushMilliseconds));
            return Task.FromResult(run.IsCompleted);
        }, "the first owner stopped");
        await run;
        return new BatchLease(takenOver!, "owner-b", CancellationToken.None);
    }

    public async Task<BatchRecord> GetAsync(string batchId) => (await Catalog.GetAsync(Workspace.Id, batchId, CancellationToken.None))!;

    /// <summary>Polls (in real time, the clock stays) until <paramref name="condition"/> holds; fails after 10 s.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting until " + what);
            await Task.Delay(10);
        }
    }

    /// <summary>A result file's lines, parsed; none when there is no file.</summary>
    public async Task<List<JsonElement>> LinesOfAsync(string? fileId)
    {
        if (fileId is null)
        {
            return [];
        }
        var content = await _services.GetRequiredService<FileService>().OpenContentAsync(Workspace.Id, fileId, CancellationToken.None);
        Assert.True(content.IsOk);
        await using var opened = content.Value;
        using var reader = new StreamReader(opened.Content);
        var lines = new List<JsonElement>();
        while (await reader.ReadLineAsync() is { } line)
        {
            using var document = JsonDocument.Parse(line, new JsonDocumentOptions { MaxDepth = 256 });
            lines.Add(document.RootElement.Clone());
        }
        return lines;
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
