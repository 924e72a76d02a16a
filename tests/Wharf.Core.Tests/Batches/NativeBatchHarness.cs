using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Providers;
using Wharf.Core.Routing;
using Wharf.Providers;
using Wharf.Simulators;
using Wharf.Storage;

namespace Wharf.Core.Tests.Batches;

/// <summary>One OpenAI simulator for a class of tests.</summary>
public sealed class BatchSimulatorFixture : IAsyncLifetime
{
    public OpenAISimulator Simulator { get; private set; } = null!;

    public async Task InitializeAsync() => Simulator = await OpenAISimulator.StartAsync();

    public async Task DisposeAsync() => await Simulator.DisposeAsync();
}

/// <summary>
/// The native batch execution as a node composes it: the real SQLite catalog and disk store in a temp directory, the
/// providers (<c>up</c>: the <c>openai</c> adapter pointed at the simulator; <c>demo</c>: a <c>mock</c>), Wharf's core
/// services, and a fake clock that the simulator also times its requests by.
/// </summary>
internal sealed class NativeBatchHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly string _dataDir;

    private NativeBatchHarness(ServiceProvider services, string dataDir, FakeTimeProvider time, OpenAISimulator simulator, Workspace workspace)
    {
        _services = services;
        _dataDir = dataDir;
        Time = time;
        Simulator = simulator;
        Workspace = workspace;
    }

    public FakeTimeProvider Time { get; }

    public OpenAISimulator Simulator { get; }

    public Workspace Workspace { get; }

    public IBatchCatalog Catalog => _services.GetRequiredService<IBatchCatalog>();

    public BatchService Batches => _services.GetRequiredService<BatchService>();

    public FileService Files => _services.GetRequiredService<FileService>();

    public ProviderFileCopies Copies => _services.GetRequiredService<ProviderFileCopies>();

    public IBlobStore Blobs => _services.GetRequiredService<IBlobStore>();

    public IProvider Upstream => _services.GetRequiredService<IProviderRegistry>().TryGet("up", out var up) ? up.Provider : throw new InvalidOperationException();

    public NativeBatchExecution Execution => _services.GetServices<IBatchExecution>().OfType<NativeBatchExecution>().Single();

    public static async Task<NativeBatchHarness> StartAsync(OpenAISimulator simulator, int minPollSeconds = 5, int maxPollSeconds = 20)
    {
        simulator.ClearFaults();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        simulator.Clock = time;
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-native-batch-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Wharf:Providers:up:Type"] = "openai",
            ["Wharf:Providers:up:ApiKey"] = simulator.ApiKey,
            ["Wharf:Providers:up:BaseUrl"] = simulator.BaseUrl.ToString(),
            ["Wharf:Providers:demo:Type"] = "mock",
        }).Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddSingleton<TimeProvider>(time)
            .AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddEmbeddedStorage(dataDir);
        services.AddWharfProviders();
        services.AddWharfCore();
        services.Configure<BatchesOptions>(o =>
        {
            o.NativePollMinSeconds = minPollSeconds;
            o.NativePollMaxSeconds = maxPollSeconds;
        });
        services.Configure<RoutingOptions>(o =>
        {
            o.Default = ["up"];
            o.Models["gpt-4o-mini"] = ["demo", "up"];
            o.Models["only-on-mock"] = ["demo"];
        });
        var provider = services.BuildServiceProvider();
        var workspace = new Workspace { Id = "ws_00000000000000000000000000000001", Name = "default", CreatedAt = time.GetUtcNow().ToUnixTimeSeconds() };
        await provider.GetRequiredService<IWorkspaceCatalog>().InsertWorkspaceAsync(workspace, CancellationToken.None);
        return new NativeBatchHarness(provider, dataDir, time, simulator, workspace);
    }

    /// <summary>Lines of a chat completions batch, one per model, with custom ids <c>req-1</c>, <c>req-2</c>, ...</summary>
    public static string Lines(params string[] models) => string.Concat(models.Select((model, i) =>
        $$$"""{"custom_id":"req-{{{i + 1}}}","method":"POST","url":"/v1/chat/completions","body":{"model":"{{{model}}}","messages":[{"role":"user","content":"Say {{{i + 1}}}"}]}}""" + "\n"));

    public async Task<string> UploadAsync(string lines)
    {
        var staged = await Files.StageAsync(Workspace.Id, new MemoryStream(Encoding.UTF8.GetBytes(lines)), CancellationToken.None);
        await using var blob = staged.Value;
        var file = await Files.CreateAsync(Workspace.Id, new FileUploadRequest { Purpose = "batch", Filename = "input.jsonl" }, blob, CancellationToken.None);
        Assert.True(file.IsOk, file.IsOk ? null : file.Error.Message);
        return file.Value.Id;
    }

    public async Task<BatchRecord> CreateBatchAsync(string inputFileId, string? provider = null, string? metadataJson = null)
    {
        var created = await Batches.CreateAsync(Workspace, new BatchCreateRequest
        {
            InputFileId = inputFileId,
            Endpoint = "/v1/chat/completions",
            CompletionWindow = "24h",
            Execution = BatchExecution.Native,
            Provider = provider,
            MetadataJson = metadataJson,
        }, CancellationToken.None);
        Assert.True(created.IsOk, created.IsOk ? null : created.Error.Message);
        return created.Value;
    }

    /// <summary>Claims the batch for <paramref name="owner"/> (for a day: the tests renew nothing).</summary>
    public async Task<BatchLease> ClaimAsync(string batchId, string owner, CancellationToken cancelRequested = default)
    {
        long now = Time.GetUtcNow().ToUnixTimeMilliseconds();
        var claimed = await Catalog.ClaimAsync(owner, now, now + 86_400_000, [], CancellationToken.None);
        Assert.NotNull(claimed);
        Assert.Equal(batchId, claimed.Id);
        return new BatchLease(claimed, owner, cancelRequested);
    }

    public async Task<BatchRecord> GetAsync(string batchId) =>
        await Catalog.GetAsync(Workspace.Id, batchId, CancellationToken.None) ?? throw new InvalidOperationException("no such batch");

    /// <summary>
    /// Moves the clock to each poll time the execution stores, never past it, until <paramref name="run"/> ends or
    /// <paramref name="until"/> holds for the stored batch. Gives up (failing) after 30 s of real time.
    /// </summary>
    public async Task<BatchRecord> DriveAsync(Task run, string batchId, Func<BatchRecord, bool>? until = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (run.IsCompleted)
            {
                await run;
                return await GetAsync(batchId);
            }
            var batch = await GetAsync(batchId);
            if (until?.Invoke(batch) == true)
            {
                return batch;
            }
            if (batch.Native is { } native && native.NextPollAt > Time.GetUtcNow().ToUnixTimeSeconds())
            {
                Time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(native.NextPollAt));
            }
            await Task.WhenAny(run, Task.Delay(2));
        }
        throw new TimeoutException("The native batch did not get there within 30 s.");
    }

    public async Task<string> ReadFileAsync(string fileId)
    {
        var content = await Files.OpenContentAsync(Workspace.Id, fileId, CancellationToken.None);
        Assert.True(content.IsOk);
        await using (content.Value)
        {
            using var reader = new StreamReader(content.Value.Content, Encoding.UTF8);
            return await reader.ReadToEndAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
