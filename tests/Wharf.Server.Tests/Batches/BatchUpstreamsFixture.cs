using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Batches;

/// <summary>
/// A Wharf server that runs batches in front of OpenAI simulators on loopback: <c>sim</c> (the default route),
/// <c>backup</c>, <c>down</c> (a port nothing listens on), <c>limited</c> (MaxConcurrency 2) and the <c>mock</c>
/// provider. Chunks of 5 lines written every 100 ms, so that results show while a batch runs; retries wait a
/// millisecond or two. Faults are scripted per model name, one name per test.
/// </summary>
public sealed class BatchUpstreamsFixture : IAsyncLifetime
{
    public const string SimKey = "sk-sim-batches-5f1d2c3b4a69788796a5b4c3";
    public const string BackupKey = "sk-sim-batches-backup-0a1b2c3d4e5f6071";
    public const string LimitedKey = "sk-sim-batches-limited-99aa88bb77cc66dd";
    public const int ChunkLines = 5;

    public OpenAISimulator Sim { get; private set; } = null!;
    public OpenAISimulator Backup { get; private set; } = null!;
    public OpenAISimulator Limited { get; private set; } = null!;
    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Sim = await OpenAISimulator.StartAsync(SimKey);
        Backup = await OpenAISimulator.StartAsync(BackupKey);
        Limited = await OpenAISimulator.StartAsync(LimitedKey);
        Server = await WharfServer.StartAsync(
        [
            .. Provider("sim", Sim.BaseUrl, SimKey),
            .. Provider("backup", Backup.BaseUrl, BackupKey),
            .. Provider("down", RefusedPort.Url("/v1"), "sk-down-00112233445566778899aabbccdd"),
            .. Provider("limited", Limited.BaseUrl, LimitedKey), "--Wharf:Providers:limited:MaxConcurrency=2",
            "--Wharf:Providers:mock:Type=mock",
            "--Wharf:Routing:Default:0=sim",
            "--Wharf:Routing:Models:fallback-model:0=down",
            "--Wharf:Routing:Models:fallback-model:1=backup",
            "--Wharf:Routing:RetryBaseDelayMilliseconds=1",
            "--Wharf:Routing:RetryMaxDelayMilliseconds=2",
            "--Wharf:Batches:PollIntervalMilliseconds=100",
            "--Wharf:Batches:ChunkLines=" + ChunkLines,
            "--Wharf:Batches:ChunkFlushMilliseconds=100",
        ]);
    }

    private static string[] Provider(string id, Uri baseUrl, string key) =>
        [$"--Wharf:Providers:{id}:Type=openai", $"--Wharf:Providers:{id}:BaseUrl={baseUrl}", $"--Wharf:Providers:{id}:ApiKey={key}"];

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Sim.DisposeAsync();
        await Backup.DisposeAsync();
        await Limited.DisposeAsync();
    }
}
