using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Errors;
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

    /// <summary>The meters of this harness's <see cref="Wharf.Core.Telemetry.WharfMetrics"/>, for a <see cref="BatchLineCounter"/>.</summary>
    public TestMeterFactory Meters { get; private init; } = null!;

    public OpenAISimulator Simulator { get; }

    public Workspace Workspace { get; }

    public IBatchCatalog Catalog => _services.GetRequiredService<IBatchCatalog>();

    public BatchService Batches => _services.GetRequiredService<BatchService>();

    public FileService Files => _services.GetRequiredService<FileService>();

    public ProviderFileCopies Copies => _services.GetRequiredService<ProviderFileCopies>();

    public IBlobStore Blobs => _services.GetRequiredService<IBlobStore>();

    public IProvider Upstream => _services.GetRequiredService<IProviderRegistry>().TryGet("up", out var up) ? up.Provider : throw new InvalidOperationException();

    public NativeBatchExecution Execution => _services.GetServices<IBatchExecution>().OfType<NativeBatchExecution>().Single();

    /// <param name="store">Wraps the disk store (to make it fail), when given.</param>
    /// <param name="up">Wraps the provider <c>up</c> (to change what it says of itself), when given.</param>
    public static async Task<NativeBatchHarness> StartAsync(
        OpenAISimulator simulator, int minPollSeconds = 5, int maxPollSeconds = 20, Func<IBlobStore, IBlobStore>? store = null,
        Func<IProvider, IProvider>? up = null)
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
            // The same upstream, allowed two models only.
            ["Wharf:Providers:narrow:Type"] = "openai",
            ["Wharf:Providers:narrow:ApiKey"] = simulator.ApiKey,
            ["Wharf:Providers:narrow:BaseUrl"] = simulator.BaseUrl.ToString(),
            ["Wharf:Providers:narrow:Models:0"] = "gpt-4o-mini",
            ["Wharf:Providers:narrow:Models:1"] = "narrow-model",
        }).Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddSingleton<TimeProvider>(time)
            .AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddEmbeddedStorage(dataDir);
        if (store is not null)
        {
            var disk = services.Last(d => d.ServiceType == typeof(IBlobStore));
            services.Remove(disk);
            services.AddSingleton<IBlobStore>(sp => store((IBlobStore)disk.ImplementationFactory!(sp)));
        }
        services.AddWharfProviders();
        if (up is not null)
        {
            var registry = services.Last(d => d.ServiceType == typeof(IProviderRegistry));
            services.Remove(registry);
            services.AddSingleton(registry.ImplementationType!);
            services.AddSingleton<IProviderRegistry>(sp => new WrappedRegistry((IProviderRegistry)sp.GetRequiredService(registry.ImplementationType!), up));
        }
        services.AddWharfCore();
        var meters = new TestMeterFactory();
        services.AddSingleton<System.Diagnostics.Metrics.IMeterFactory>(meters);
        services.AddSingleton<Wharf.Core.Telemetry.WharfMetrics>();
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
        return new NativeBatchHarness(provider, dataDir, time, simulator, workspace) { Meters = meters };
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
        var created = await TryCreateBatchAsync(inputFileId, provider, metadataJson);
        Assert.True(created.IsOk, created.IsOk ? null : created.Error.Message);
        return created.Value;
    }

    public Task<Result<BatchRecord>> TryCreateBatchAsync(
        string inputFileId, string? provider = null, string? metadataJson = null, string execution = BatchExecution.Native) =>
        Batches.CreateAsync(Workspace, new BatchCreateRequest
        {
            InputFileId = inputFileId,
            Endpoint = "/v1/chat/completions",
            CompletionWindow = "24h",
            Execution = execution,
            Provider = provider,
            MetadataJson = metadataJson,
        }, CancellationToken.None);

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
    /// Does what the engine does with a native batch: claims it for <paramref name="owner"/> whenever the catalog hands
    /// it out, runs the execution until it returns, gives the lease up, and moves the clock to the stored next poll
    /// (never past it), until the batch is final or <paramref name="until"/> holds for the stored batch (checked
    /// between runs). Each run must return by itself (within 10 s of real time): a run that waited holding the lease
    /// would fail here.
    /// </summary>
    public async Task<BatchRecord> DriveAsync(string batchId, string owner, Func<BatchRecord, bool>? until = null, CancellationToken cancelRequested = default)
    {
        for (int runs = 0; runs < 1000; runs++)
        {
            var batch = await GetAsync(batchId);
            if (batch.IsFinal || until?.Invoke(batch) == true)
            {
                return batch;
            }
            if (batch.Native is { } native && native.NextPollAt > Time.GetUtcNow().ToUnixTimeSeconds())
            {
                Time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(native.NextPollAt));
            }
            var lease = await ClaimAsync(batchId, owner, cancelRequested);
            await Execution.RunAsync(lease, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            Runs++;
            await Catalog.ReleaseLeaseAsync(batchId, owner, CancellationToken.None);
        }
        throw new TimeoutException("The native batch did not get there within 1000 runs.");
    }

    /// <summary>Runs of the execution <see cref="DriveAsync"/> made.</summary>
    public int Runs { get; private set; }

    /// <summary>Claims the next batch the catalog hands out now, if any (released at once: only whether it would be).</summary>
    public async Task<string?> ClaimableAsync()
    {
        long now = Time.GetUtcNow().ToUnixTimeMilliseconds();
        var claimed = await Catalog.ClaimAsync("probe", now, now + 1000, [], CancellationToken.None);
        if (claimed is not null)
        {
            await Catalog.ReleaseLeaseAsync(claimed.Id, "probe", CancellationToken.None);
        }
        return claimed?.Id;
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

/// <summary>The providers of another registry, with <c>up</c> wrapped.</summary>
internal sealed class WrappedRegistry(IProviderRegistry inner, Func<IProvider, IProvider> wrap) : IProviderRegistry
{
    private readonly IReadOnlyList<RegisteredProvider> _all = [.. inner.All.Select(p => p.Id == "up" ? p with { Provider = wrap(p.Provider) } : p)];

    public IReadOnlyList<RegisteredProvider> All => _all;

    public bool TryGet(string id, out RegisteredProvider provider)
    {
        provider = _all.FirstOrDefault(p => p.Id == id)!;
        return provider is not null;
    }
}
