using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Models;

/// <summary>
/// A Wharf server in front of OpenAI simulators on loopback, with one provider per situation: <c>sim</c> (the
/// default route), <c>backup</c>, <c>down</c> (a port nothing listens on), <c>badkey</c> (sim with a wrong key),
/// <c>limited</c> (MaxConcurrency 2), <c>slow</c> (TimeoutSeconds 1), <c>mock</c>, and <c>off</c> (disabled).
/// Retries wait a millisecond or two, so that fallbacks are quick. Shared by the model-request test classes,
/// which run one after another (faults are scripted per model name, one name per test).
/// </summary>
public sealed class UpstreamsFixture : IAsyncLifetime
{
    public const string SimKey = "sk-sim-primary-5f1d2c3b4a69788796a5b4c3";
    public const string BackupKey = "sk-sim-backup-0a1b2c3d4e5f60718293a4b5";
    public const string LimitedKey = "sk-sim-limited-99aa88bb77cc66dd55ee44ff";
    public const string SlowKey = "sk-sim-slow-1234abcd5678ef901234abcd56";
    public const string WrongKey = "sk-wrong-7c6b5a4938271605f4e3d2c1b0a9";
    public const string DownKey = "sk-down-00112233445566778899aabbccddee";

    public static readonly string[] Keys = [SimKey, BackupKey, LimitedKey, SlowKey, WrongKey, DownKey];

    public OpenAISimulator Sim { get; private set; } = null!;
    public OpenAISimulator Backup { get; private set; } = null!;
    public OpenAISimulator Limited { get; private set; } = null!;
    public OpenAISimulator Slow { get; private set; } = null!;
    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Sim = await OpenAISimulator.StartAsync(SimKey);
        Backup = await OpenAISimulator.StartAsync(BackupKey);
        Limited = await OpenAISimulator.StartAsync(LimitedKey);
        Slow = await OpenAISimulator.StartAsync(SlowKey);
        Slow.Always = Fault.Delay(TimeSpan.FromSeconds(60));
        Server = await WharfServer.StartAsync(
        [
            .. Provider("sim", "openai", Sim.BaseUrl, SimKey),
            .. Provider("backup", "openai", Backup.BaseUrl, BackupKey),
            .. Provider("down", "openai", RefusedPort.Url("/v1"), DownKey),
            .. Provider("badkey", "openai", Sim.BaseUrl, WrongKey),
            .. Provider("limited", "openai", Limited.BaseUrl, LimitedKey), "--Wharf:Providers:limited:MaxConcurrency=2",
            .. Provider("slow", "openai", Slow.BaseUrl, SlowKey), "--Wharf:Providers:slow:TimeoutSeconds=1",
            "--Wharf:Providers:mock:Type=mock",
            "--Wharf:Providers:off:Type=mock", "--Wharf:Providers:off:Enabled=false",
            "--Wharf:Routing:Default:0=sim",
            .. Route("fallback-model", "down", "backup"),
            .. Route("all-fail-model", "sim", "backup"),
            .. Route("malformed-model", "sim", "backup"),
            .. Route("stream-fallback-model", "sim", "backup"),
            .. Route("creds-model", "badkey", "backup"),
            .. Route("rejected-model", "sim", "backup"),
            .. Route("slow-model", "slow"),
            .. Route("off-model", "off"),
            "--Wharf:Routing:RetryBaseDelayMilliseconds=1",
            "--Wharf:Routing:RetryMaxDelayMilliseconds=2",
        ]);
    }

    private static string[] Provider(string id, string type, Uri baseUrl, string key) =>
        [$"--Wharf:Providers:{id}:Type={type}", $"--Wharf:Providers:{id}:BaseUrl={baseUrl}", $"--Wharf:Providers:{id}:ApiKey={key}"];

    private static IEnumerable<string> Route(string model, params string[] providers) =>
        providers.Select((p, i) => $"--Wharf:Routing:Models:{model}:{i}={p}");

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Sim.DisposeAsync();
        await Backup.DisposeAsync();
        await Limited.DisposeAsync();
        await Slow.DisposeAsync();
    }

    /// <summary>The model requests a simulator received for <paramref name="model"/>.</summary>
    public static List<RecordedRequest> CallsFor(UpstreamSimulator simulator, string model) =>
        [.. simulator.Requests.Where(r => ModelOf(r) == model)];

    private static string? ModelOf(RecordedRequest request)
    {
        try
        {
            using var body = JsonDocument.Parse(request.Body);
            return body.RootElement.TryGetProperty("model", out var model) ? model.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static ByteArrayContent Json(string text)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(text));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }
}

[CollectionDefinition(Name)]
public sealed class UpstreamsCollection : ICollectionFixture<UpstreamsFixture>
{
    public const string Name = "upstreams";
}
